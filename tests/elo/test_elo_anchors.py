"""The anchors file shipped with the package, and re-measuring it."""

from __future__ import annotations

import json

import pytest

from l4demons.elo.anchors import (
    CLEAN_STOCKFISH,
    FIXED,
    STOCKFISH_LABELS,
    Anchor,
    AnchorSet,
    calibrate,
    load_anchors,
    measure_anchor,
    save_anchors,
)
from l4demons.elo.engines import find_stockfish
from l4demons.elo.errors import AnchorFileError, StockfishNotFound
from l4demons.elo.players import PlayerSpec


def _has_stockfish() -> bool:
    try:
        find_stockfish()
    except StockfishNotFound:
        return False
    return True


def test_shipped_ladder_is_clearly_ordered_with_intervals() -> None:
    anchors = load_anchors()
    random, material, sf = anchors["random"], anchors["material"], anchors["sf-elo1350"]
    # "Clearly": the 95% intervals do not overlap.
    assert random.hi < material.lo
    assert material.hi < sf.lo == sf.elo == 1350
    assert random.lo < random.elo < random.hi and material.lo < material.elo < material.hi
    assert [anchors[f"sf-elo{e}"].elo for e in STOCKFISH_LABELS] == list(STOCKFISH_LABELS)


def test_shipped_file_says_how_it_was_measured() -> None:
    provenance = load_anchors().provenance
    for key in ("date", "command", "method", "fixed", "stockfish", "stockfish_limit", "openings", "games", "results"):
        assert provenance.get(key), key
    assert provenance["games"] >= sum(r["wins"] + r["draws"] + r["losses"] for r in provenance["results"])
    played = {r["a"] for r in provenance["results"]} | {r["b"] for r in provenance["results"]}
    assert played >= {"random", "material", FIXED}


def test_clean_stockfish_is_a_measured_anchor_that_played_the_fixed_one_alone() -> None:
    anchors = load_anchors()
    clean = anchors[CLEAN_STOCKFISH.name]
    assert clean.name == "sf-elo1350@t0.1" and clean.spec == CLEAN_STOCKFISH and clean.source == "measured"
    # At 0.1 s a move, Stockfish 1350 is clearly stronger than the depth-limited rung of the same label.
    assert anchors[FIXED].elo < clean.lo < clean.elo < clean.hi
    pairs = [r for r in anchors.provenance["results"] if clean.name in (r["a"], r["b"])]
    assert [(r["a"], r["b"]) for r in pairs] == [(clean.name, FIXED)]
    note = next(n for n in anchors.provenance["extra_anchors"] if n["name"] == clean.name)
    assert note["games"] == pairs[0]["wins"] + pairs[0]["draws"] + pairs[0]["losses"] and note["machine"]


def test_nearest_and_lookup() -> None:
    anchors = load_anchors()
    near = anchors.nearest(1950, 2)
    assert [a.name for a in near] == ["sf-elo2000", "sf-elo1700"]
    with pytest.raises(KeyError, match="no anchor named"):
        anchors["nobody"]


def test_save_load_round_trip_and_bad_files(tmp_path, monkeypatch) -> None:
    original = AnchorSet((Anchor(PlayerSpec.random(), -40.0, -90.0, 10.0, "measured"),
                          Anchor(PlayerSpec.stockfish(elo=1350), 1350, 1350, 1350, "label")), {"games": 3})
    path = tmp_path / "anchors.json"
    save_anchors(original, path)
    loaded = load_anchors(path)
    assert loaded.anchors == original.anchors and loaded.provenance == {"games": 3}
    monkeypatch.setenv("L4D_ANCHORS", str(path))
    assert load_anchors().anchors == original.anchors
    (tmp_path / "bad.json").write_text(json.dumps({"anchors": [{"elo": 3}]}))
    with pytest.raises(AnchorFileError, match="--calibrate"):
        load_anchors(tmp_path / "bad.json")
    with pytest.raises(AnchorFileError):
        load_anchors(tmp_path / "missing.json")


@pytest.mark.skipif(not _has_stockfish(), reason="stockfish not installed")
def test_calibrate_writes_a_complete_file(tmp_path) -> None:
    out = tmp_path / "anchors.json"
    seen = []
    extra = PlayerSpec.stockfish(elo=1350, nodes=20)  # a cheap stand-in for the clean 0.1 s anchor
    result = calibrate(out, games_per_pair=2, label_check_games=2, workers=0, on_pair=seen.append,
                       extra_anchors=(extra,), extra_games=2)
    loaded = load_anchors(out)
    assert {a.name for a in loaded.anchors} == {a.name for a in result.anchors}
    assert {"random", "material", "sf-elo1350", "sf-elo2850", extra.name} <= {a.name for a in loaded.anchors}
    assert loaded["sf-elo1350"].source == "label" and loaded["random"].source == "measured"
    assert loaded[extra.name].source == "measured" and loaded[extra.name].lo < loaded[extra.name].hi
    assert [n["name"] for n in loaded.provenance["extra_anchors"]] == [extra.name]
    assert len(seen) == len(loaded.provenance["results"]) + len(loaded.provenance["label_checks"])
    rows = loaded.provenance["results"] + loaded.provenance["label_checks"]
    assert loaded.provenance["games"] == sum(r["wins"] + r["draws"] + r["losses"] for r in rows) == 9 * 2 + 8 + 2 * 2 + 2


@pytest.mark.skipif(not _has_stockfish(), reason="stockfish not installed")
def test_an_anchor_is_added_against_the_fixed_one_without_moving_the_ladder(tmp_path) -> None:
    shipped = load_anchors()
    extra = PlayerSpec.stockfish(elo=1350, nodes=20)
    out = tmp_path / "anchors.json"
    measure_anchor(extra, out, games=2, workers=0)
    measure_anchor(extra, out, games=2, workers=0, source=out)  # measured again: replaced, not added twice
    loaded = load_anchors(out)
    assert [a for a in loaded.anchors if a.name != extra.name] == [a for a in shipped.anchors if a.name != extra.name]
    added = loaded[extra.name]
    assert added.source == "measured" and added.lo < added.elo < added.hi
    mine = [r for r in loaded.provenance["results"] if extra.name in (r["a"], r["b"])]
    assert len(mine) == 1 and mine[0]["b"] == FIXED and mine[0]["wins"] + mine[0]["draws"] + mine[0]["losses"] == 2
    assert loaded.provenance["games"] == shipped.provenance["games"] - _games_of(shipped, extra.name) + 2
    assert [n["name"] for n in loaded.provenance["extra_anchors"]].count(extra.name) == 1


def _games_of(anchor_set: AnchorSet, name: str) -> int:
    return sum(r["wins"] + r["draws"] + r["losses"] for r in anchor_set.provenance["results"] if name in (r["a"], r["b"]))


def test_ladder_rungs_and_labels_are_re_measured_only_by_calibrate(tmp_path) -> None:
    for spec in (PlayerSpec.material(), PlayerSpec.stockfish(elo=1350), PlayerSpec.stockfish(elo=2000)):
        with pytest.raises(ValueError, match="--calibrate"):
            measure_anchor(spec, tmp_path / "a.json", games=2)
    with pytest.raises(ValueError, match="games"):
        measure_anchor(CLEAN_STOCKFISH, tmp_path / "a.json", games=0)
    assert not (tmp_path / "a.json").exists()
