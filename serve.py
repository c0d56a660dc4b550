"""Serve the bot over HTTP: ``python serve.py [--hub hf://me/L4Demons] [--file model_best.pt] [--device cuda]``.

The same as ``l4demons serve`` (this file is kept for the ChessHacks layout,
which runs ``serve.py`` from the repository root): the ChessHacks
bot-server contract (``POST /``, ``POST /move``), ``GET /health`` and a
board to play on at http://localhost:5058/. Flags: ``l4demons serve --help``;
the contract and the bind address's risk: docs/serving.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from l4demons.cli import main
except ImportError:  # run from a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from l4demons.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["serve", *sys.argv[1:]]))
