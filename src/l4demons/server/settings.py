"""The HTTP server's settings: one frozen dataclass, read from flags and the environment here only."""

from __future__ import annotations

import dataclasses
import os

DEFAULT_PORT = 5058


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` and ``serve.py`` need."""

    hub: str | None = None
    """Checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB, else the local hub)."""
    token: str | None = None
    """Hugging Face token (default: $HF_TOKEN or the saved login)."""
    file: str = "model_best.pt"
    """Weights to play: model_best.pt or model.pt on the hub, or a local .pt file."""
    device: str = "auto"
    """Where the network runs: auto (CUDA when present), cpu or cuda."""
    host: str = "0.0.0.0"
    """Address to listen on. ``0.0.0.0`` (the contract's) is every network the machine is on: the
    server has no authentication and no TLS, so anyone who can reach the port can make it search.
    ``127.0.0.1`` keeps it to this machine; in front of the internet, put a reverse proxy before it."""
    port: int = DEFAULT_PORT
    """Port to listen on ($SERVE_PORT when set)."""
    allow_random: bool = False
    """Serve an untrained network when no weights exist anywhere (else /move answers 503)."""
    random_net: str | None = None
    """Size of that untrained network (bNcM or a preset; default: the size ``l4demons train`` starts on
    that device, :func:`l4demons.network.default_net`)."""
    threads: int | None = None
    """Torch CPU threads (default: all cores)."""
    max_move_ms: float = 30_000.0
    """Longest search of one move in milliseconds, whatever the clock says."""
    max_body_bytes: int = 1_000_000
    """Larger /move bodies are refused with 413, counted while they stream in (chunked or not)."""
    body_timeout_s: float = 10.0
    """A /move body not received whole within this many seconds is refused with 408."""
    max_pgn_chars: int = 100_000
    """Longest PGN accepted (a 4,000-ply game with a comment on every move fits)."""
    max_pgn_plies: int = 4_000
    """Most half-moves in a PGN's mainline."""
    max_pgn_variations: int = 200
    """Most variations in a PGN (they are skipped, not played out)."""
    max_moves: int = 64
    """Most /move requests handled at once, from arrival to answer (the concurrent games of a
    tournament); their searches share network calls. More get 503 at once, without being read."""
    parse_threads: int = 2
    """Threads that read PGNs and JSON off the event loop."""
    load_wait_fraction: float = 0.25
    """While the weights load, a /move waits for them at most this fraction of its clock; past that
    it is answered with a legal move chosen without the network."""
    warmup: bool = True
    """Run a few searches after loading so the first move is not slowed by kernel set-up."""

    @classmethod
    def from_env(cls, **overrides: object) -> ServeSettings:
        """Defaults, then the environment (``SERVE_PORT``), then ``overrides`` that are not None.

        :raises ValueError: ``SERVE_PORT`` is not a port number, or a value is out of bounds.
        """
        values: dict[str, object] = {}
        if os.environ.get("SERVE_PORT"):
            try:
                values["port"] = int(os.environ["SERVE_PORT"])
            except ValueError:
                raise ValueError(f"SERVE_PORT={os.environ['SERVE_PORT']!r} is not a port number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        """:raises ValueError: a limit that is not positive, or a port out of range."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not a port number (0-65535)")
        for name in ("max_move_ms", "max_body_bytes", "body_timeout_s", "max_pgn_chars", "max_pgn_plies",
                     "max_moves", "parse_threads"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.max_pgn_variations < 0 or not 0 <= self.load_wait_fraction <= 1:
            raise ValueError("max_pgn_variations must be 0 or more and load_wait_fraction between 0 and 1")
