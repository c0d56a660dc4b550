"""Openings: from the Polyglot book when there is one, built-in lines when not."""

from __future__ import annotations

import pytest

from l4demons.elo import openings
from l4demons.elo.openings import BUILTIN_OPENINGS, book_openings, find_book, load_openings


def test_builtin_lines_are_legal_and_distinct() -> None:
    assert len(BUILTIN_OPENINGS) >= 12
    fens = {o.board().fen() for o in BUILTIN_OPENINGS}
    assert len(fens) == len(BUILTIN_OPENINGS)
    assert all(not o.board().is_game_over() for o in BUILTIN_OPENINGS)


@pytest.mark.skipif(find_book() is None, reason="no Polyglot book installed (apt-get install gnuchess-book)")
def test_book_walks_are_weighted_seeded_and_deduplicated() -> None:
    book = find_book()
    assert book is not None
    lines = book_openings(book, 30, plies=8, seed=1)
    assert len(lines) == 30
    assert len({o.board().board_fen() + str(o.board().turn) for o in lines}) == 30
    assert all(4 <= len(o.moves) <= 8 for o in lines)
    assert lines == book_openings(book, 30, plies=8, seed=1)
    assert lines != book_openings(book, 30, plies=8, seed=2)


def test_falls_back_to_builtin_lines_without_a_book(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("L4D_BOOK", raising=False)
    monkeypatch.setattr(openings, "DEBIAN_BOOK", str(tmp_path / "missing.bin"))
    assert find_book() is None
    lines = load_openings(20, seed=3)
    assert len(lines) == 20
    assert set(lines) <= set(BUILTIN_OPENINGS)
    assert len(set(lines)) == len(BUILTIN_OPENINGS)  # all used before any repeats
    corrupt = tmp_path / "bad.bin"
    corrupt.write_bytes(b"\x00" * 5)
    assert load_openings(3, book=corrupt)  # unreadable book: warn, fall back
