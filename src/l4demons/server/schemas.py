"""Request and response bodies of the HTTP contract (docs/serving.md), apart from internal types.

Field names are the ChessHacks bot-server contract's: do not rename them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

MAX_TIMELEFT_MS = 2**53 - 1
"""The largest integer a JavaScript client can send exactly (about 285,000 years)."""


class MoveRequest(BaseModel):
    """``POST /move``: the game so far and the bot's clock."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    pgn: StrictStr
    """The game so far; the position to move in is its mainline's end."""
    timeleft: StrictInt = Field(ge=0, le=MAX_TIMELEFT_MS)
    """The bot's remaining clock in milliseconds (an integer; ``true`` is not one)."""


class MoveResponse(BaseModel):
    """``200`` answer of ``POST /move``."""

    move: str
    """The chosen move in UCI notation (``e2e4``, ``e7e8q``)."""
    error: None = None
    time_taken: float
    """Milliseconds from reading the request to answering it."""
    move_probs: dict[str, float]
    """Search probabilities over the legal moves (UCI -> probability), summing to about 1."""
    logs: str
    """A human-readable line about the search."""


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: ``error`` says what is wrong; the move fields are null."""

    error: str
    move: None = None
    time_taken: float | None = None
    move_probs: None = None
    logs: None = None


class RunningResponse(BaseModel):
    """``POST /``: the server is up (the model may still be loading; see ``/health``)."""

    running: bool = True


class HealthResponse(BaseModel):
    """``GET /health``: the served model's state and origin."""

    running: bool = True
    state: str
    """``loading``, ``ready`` or ``failed``."""
    hub: str | None = None
    file: str | None = None
    commit: str | None = None
    origin: str | None = None
    """``hub``, ``cache`` (offline restart), ``local file`` or ``random``."""
    device: str | None = None
    net: str | None = None
    error: str | None = None
    note: str | None = None
    load_seconds: float | None = None
    version: str


def describe_validation_error(err: ValidationError) -> str:
    """One line a person can act on, e.g. ``timeleft must be a non-negative integer ... (got true)``."""
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "body"
        if e["type"] == "missing":
            parts.append(f"missing field {field!r}")
        elif field == "timeleft":
            parts.append(f"timeleft must be a non-negative integer of milliseconds (got {_json_repr(e.get('input'))})")
        elif field == "pgn":
            parts.append(f"pgn must be a string (got {_json_repr(e.get('input'))})")
        else:
            parts.append(f"{field}: {e['msg']}")
    return "; ".join(parts)


def _json_repr(value: object) -> str:
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
