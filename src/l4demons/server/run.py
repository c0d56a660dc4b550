"""Running the HTTP server: ``l4demons serve`` (and ``python serve.py``, which calls it).

The settings come from :class:`~l4demons.server.settings.ServeSettings`
(flags generated from it by the CLI, ``$SERVE_PORT`` read there); this
module only checks what must fail before the port opens and runs uvicorn.

Bind address: the contract's ``0.0.0.0`` listens on every network the
machine is on, and the server has no authentication and no TLS: anyone who
reaches the port can make it search (within ``--max-moves`` at once). Use
``--host 127.0.0.1`` to play on this machine only, and put a reverse proxy
(TLS, rate limits) in front of it on the internet.
"""

from __future__ import annotations

import logging
import sys

from l4demons.server.settings import ServeSettings

log = logging.getLogger("l4demons.serve")


class ServeError(Exception):
    """The server cannot start as asked (the message says what to change)."""


def serve(settings: ServeSettings, quiet: bool = False) -> None:
    """Serve until interrupted.

    :raises ServeError: ``--device cuda`` on a machine without a CUDA GPU.
    """
    import uvicorn

    from l4demons.server.app import create_app

    if settings.device == "cuda":
        import torch  # the one check worth a slow import: fail now, not in the background

        if not torch.cuda.is_available():
            raise ServeError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu)")
    log.info("[SERVE] http://%s:%d/  (model loading in the background; GET /health)", settings.host, settings.port)
    # Parsing and searching threads hold the interpreter; a short switch interval lets the event
    # loop take it back within a millisecond, so POST / and /health answer at once under load.
    sys.setswitchinterval(0.001)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="warning" if quiet else "info", access_log=False)
