"""The anchors file shipped with the package, and re-measuring it."""

from __future__ import annotations

import json

import pytest

from l4demons.elo.anchors import FIXED, STOCKFISH_LABELS, Anchor, AnchorSet, calibrate, load_anchors, save_anchors
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


def test_nearest_and_lookup() -> None:
    anchors = load_anchors()
    near = anchors.nearest(1400, 2)
    assert {a.name for a in near} == {"sf-elo1350", "sf-elo1500"}
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
    result = calibrate(out, games_per_pair=2, label_check_games=2, workers=0, on_pair=seen.append)
    loaded = load_anchors(out)
    assert {a.name for a in loaded.anchors} == {a.name for a in result.anchors}
    assert {"random", "material", "sf-elo1350", "sf-elo2850"} <= {a.name for a in loaded.anchors}
    assert loaded["sf-elo1350"].source == "label" and loaded["random"].source == "measured"
    assert len(seen) == len(loaded.provenance["results"]) + len(loaded.provenance["label_checks"])
    rows = loaded.provenance["results"] + loaded.provenance["label_checks"]
    assert loaded.provenance["games"] == sum(r["wins"] + r["draws"] + r["losses"] for r in rows) == 9 * 2 + 8 + 2 * 2
