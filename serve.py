"""Serve the bot over HTTP: ``python serve.py [--hub hf://me/L4Demons] [--file model_best.pt] [--device cuda]``.

The ChessHacks bot-server contract (``POST /``, ``POST /move``), ``GET /health``
and a board to play on at http://localhost:5058/. Weights load from the hub
in the background (cached on disk for offline restarts); ``POST /`` answers
at once. See docs/serving.md.

Bind address: the contract's ``0.0.0.0`` listens on every network the
machine is on, and the server has no authentication and no TLS: anyone who
reaches the port can make it search (within ``--max-moves`` at once). Use
``--host 127.0.0.1`` to play on this machine only, and put a reverse proxy
(TLS, rate limits) in front of it on the internet.
"""

from __future__ import annotations

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serve.py", description="Serve the L4Demons bot over HTTP (ChessHacks contract).")
    p.add_argument("--hub", default=None, help="checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB, else the local hub)")
    p.add_argument("--token", default=None, help="Hugging Face token (default: $HF_TOKEN or the saved login)")
    p.add_argument("--file", default="model_best.pt", help="model_best.pt (default), model.pt, or a local .pt file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the network runs (auto: CUDA when present)")
    p.add_argument("--host", default="0.0.0.0",
                   help="address to listen on (default 0.0.0.0: every network, no authentication; "
                        "127.0.0.1 for this machine only)")
    p.add_argument("--port", type=int, default=None, help="port (default: $SERVE_PORT, else 5058)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--allow-random", action="store_true", help="serve an untrained network when no weights exist anywhere")
    p.add_argument("--max-move-ms", type=float, default=None, help="longest search per move whatever the clock says (default 30000)")
    p.add_argument("--max-moves", type=int, default=None,
                   help="most /move requests handled at once; more get 503 (default 64)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    import uvicorn

    from l4demons.server import ServeSettings, create_app

    try:
        settings = ServeSettings.from_env(hub=args.hub, token=args.token, file=args.file, device=args.device,
                                          host=args.host, port=args.port, threads=args.threads,
                                          allow_random=args.allow_random or None, max_move_ms=args.max_move_ms,
                                          max_moves=args.max_moves)
    except ValueError as e:
        print(f"serve.py: error: {e}", file=sys.stderr)
        return 2
    if settings.device == "cuda":
        import torch  # the one check worth a slow import: fail now, not in the background

        if not torch.cuda.is_available():
            print("serve.py: error: --device cuda was asked for, but no CUDA GPU is available (use --device cpu)", file=sys.stderr)
            return 2
    print(f"[SERVE] http://{settings.host}:{settings.port}/  (model loading in the background; GET /health)", file=sys.stderr)
    # Parsing and searching threads hold the interpreter; a short switch interval lets the event
    # loop take it back within a millisecond, so POST / and /health answer at once under load.
    sys.setswitchinterval(0.001)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="warning" if args.quiet else "info", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
