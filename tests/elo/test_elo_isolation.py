"""Stockfish is an opponent for measurement and a teacher for warm starts only: the bot never reaches it."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import l4demons

PACKAGE = Path(l4demons.__file__).parent
ENGINE_USE = re.compile(r"^\s*(import chess\.engine|from chess\.engine |from chess import .*\bengine\b)|popen_uci|"
                        r"l4demons\.elo\.engines", re.MULTILINE)


def test_only_the_elo_and_pretrain_packages_drive_external_engines() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if not {"elo", "pretrain"} & set(path.relative_to(PACKAGE).parts)
        and ENGINE_USE.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.skipif(importlib.util.find_spec("l4demons.bot") is None, reason="l4demons.bot not written yet")
def test_importing_the_bot_loads_neither_elo_nor_pretrain_nor_chess_engine() -> None:
    code = ("import sys, l4demons.bot; print(sorted(m for m in sys.modules if m == 'chess.engine' "
            "or m.startswith('l4demons.elo') or m.startswith('l4demons.pretrain')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
