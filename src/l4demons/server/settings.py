"""The HTTP server's settings: one frozen dataclass, read from flags and the environment here only."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

DEFAULT_PORT = 5058


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` and ``serve.py`` need."""

    hub: str | None = None
    """Checkpoint hub: a directory or ``hf://owner/repo``; None means ``$L4D_HUB``, else the local hub."""
    token: str | None = None
    """Hugging Face token; None means ``$HF_TOKEN`` or the saved login."""
    file: str = "model_best.pt"
    """``model_best.pt`` or ``model.pt`` on the hub, or a local ``.pt`` file."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    """``$SERVE_PORT`` when set."""
    allow_random: bool = False
    """Serve an untrained network when no weights exist anywhere (else /move answers 503)."""
    random_net: str = "small"
    """Size of that untrained network."""
    threads: int | None = None
    """Torch CPU threads; None leaves torch's default (all cores)."""
    cache_dir: Path | None = None
    """Where served weights are cached for offline restarts; None: ``$L4D_CACHE`` or ~/.cache/l4demons/weights."""
    max_move_ms: float = 30_000.0
    """No move searches longer than this, whatever the clock says."""
    max_body_bytes: int = 1_000_000
    """Larger /move bodies are refused with 413."""
    warmup: bool = True
    """Run a few searches after loading so the first move is not slowed by kernel set-up."""

    @classmethod
    def from_env(cls, **overrides: object) -> ServeSettings:
        """Defaults, then the environment (``SERVE_PORT``), then ``overrides`` that are not None.

        :raises ValueError: ``SERVE_PORT`` is not a port number.
        """
        values: dict[str, object] = {}
        if os.environ.get("SERVE_PORT"):
            try:
                values["port"] = int(os.environ["SERVE_PORT"])
            except ValueError:
                raise ValueError(f"SERVE_PORT={os.environ['SERVE_PORT']!r} is not a port number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
