"""Compiled self-play against the Python reference, and the fallback when the core is off or missing."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from l4demons import core
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import GameRecord, SelfPlayConfig, play_games
from l4demons.selfplay.compiled import CORE_FIELDS, SHARED_FIELDS

from core_support import Float64Net, require_core

CONFIGS = {
    "default-short": SelfPlayConfig(simulations=16, fast_simulations=4, max_plies=80, concurrent_games=3),
    "resign": SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=120, resign_threshold=0.1,
                             resign_moves=2, resign_playthrough=0.5, concurrent_games=4, material_win=0),
    "draw-adjudication": SelfPlayConfig(simulations=8, fast_simulations=2, draw_threshold=0.9, draw_min_ply=20,
                                        draw_plies=4, resign_threshold=-1.0, concurrent_games=2),
    "material": SelfPlayConfig(simulations=4, fast_simulations=2, full_search_prob=0.5, max_plies=150,
                               material_win=2, material_win_plies=3, adjudicate_material=1, concurrent_games=5,
                               play_on_simulations=0),
    "long": SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=300, material_win=0, adjudicate_material=0,
                           resign_threshold=-1.0, concurrent_games=3),
    # half the games from won endings, with the material rule and resignation eager to end any that they may
    "endgames": SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=60, endgame_share=0.5, material_win=3,
                               material_win_plies=2, resign_threshold=0.5, resign_moves=1, resign_playthrough=0.0,
                               concurrent_games=4, sample_plies=10),
    # every game a piece short from the first ply: the material rule ends them as it ends a game from the opening
    "odds": SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=60, odds_share=1.0, material_win=3,
                           material_win_plies=2, play_on_simulations=0, concurrent_games=4),
    # the material rule decides games early; they play on with 2-simulation searches, the side behind would resign
    # (resign_threshold 0: about half the time with a random net) but may not, and the length cap scores the rest
    "play-on": SelfPlayConfig(simulations=8, fast_simulations=4, full_search_prob=0.5, max_plies=120, material_win=2,
                              material_win_plies=3, play_on_simulations=2, resign_threshold=0.0, resign_moves=2,
                              resign_playthrough=0.5, concurrent_games=4),
}


def same_game(a: GameRecord, b: GameRecord) -> None:
    assert a.moves == b.moves
    assert a.positions.tobytes() == b.positions.tobytes()
    assert np.array_equal(a.policy_offsets, b.policy_offsets)
    assert np.array_equal(a.policy_indices, b.policy_indices)
    # float16 targets: equal unless a float64 sum's last bit moved one across a rounding boundary
    np.testing.assert_allclose(a.policy_probs.astype(np.float32), b.policy_probs.astype(np.float32), atol=1e-3)
    np.testing.assert_allclose(a.values.astype(np.float32), b.values.astype(np.float32), atol=1e-3)
    assert np.array_equal(a.full_search, b.full_search)
    assert np.array_equal(a.results, b.results)
    assert (a.termination, a.false_resign, a.would_resign, a.played_on) == \
        (b.termination, b.false_resign, b.would_resign, b.played_on)
    for field in dataclasses.fields(GameRecord):
        value = getattr(a, field.name)
        if isinstance(value, np.ndarray):
            assert value.dtype == getattr(b, field.name).dtype, field.name


@pytest.mark.parametrize("name", list(CONFIGS))
def test_compiled_self_play_plays_the_reference_games(name: str) -> None:
    require_core()
    cfg = CONFIGS[name]
    net = Float64Net("tiny", seed=7)
    games = {}
    n = 3 if name == "long" else 6
    for compiled in (False, True):
        games[compiled] = play_games(Evaluator(net), cfg, n, np.random.default_rng(42), compiled=compiled)
    assert len(games[False]) == len(games[True]) == n
    for a, b in zip(games[False], games[True]):
        same_game(a, b)
    if name != "default-short":  # the rule each config is about did end some game
        ends = {g.termination for g in games[True]} | {"played out" for g in games[True] if g.would_resign}
        ends |= {"played on" for g in games[True] if g.played_on}
        wanted = {"resign": {"resign", "played out"}, "draw-adjudication": {"adjudicated_draw"},
                  "material": {"material"}, "odds": {"material"}, "play-on": {"played on", "played out", "checkmate"}}.get(name, set())
        assert wanted <= ends, ends
        if name == "play-on":
            assert "material" not in ends and all(g.played_on < len(g) for g in games[True]), ends


def test_the_core_implements_every_self_play_setting() -> None:
    assert set(CORE_FIELDS) | set(SHARED_FIELDS) == {f.name for f in dataclasses.fields(SelfPlayConfig)}


def test_many_games_in_flight_fill_big_batches() -> None:
    require_core()
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=8, concurrent_games=200)
    games = play_games(ev, cfg, 200, np.random.default_rng(0))
    assert len(games) == 200 and all(1 <= len(g) <= 8 for g in games)
    assert ev.evaluations / ev.calls > 400  # about 4 leaves per game per call


def test_stop_request_returns_the_finished_games() -> None:
    require_core()
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    seen: list[GameRecord] = []
    cfg = SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=10, concurrent_games=2)
    games = play_games(ev, cfg, 50, np.random.default_rng(0), on_game=seen.append, should_stop=lambda: len(seen) >= 3)
    assert 3 <= len(games) < 50 and games == seen


def test_switched_off_the_reference_plays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L4D_CORE", "0")
    assert not core.enabled()
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    games = play_games(ev, SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=12, concurrent_games=2), 2,
                       np.random.default_rng(0))
    assert len(games) == 2 and all(len(g) == 12 for g in games)


def test_a_missing_core_is_said_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("L4D_CORE", raising=False)
    monkeypatch.setattr(core, "_core", None)
    monkeypatch.setattr(core, "_problem", "it is not built (no compiler)")
    monkeypatch.setattr(core, "_reported", False)
    with caplog.at_level(logging.WARNING, logger="l4demons.core"):
        assert not core.enabled() and not core.enabled()
    lines = [r for r in caplog.records if r.name == "l4demons.core"]
    assert len(lines) == 1 and "pure-Python" in lines[0].getMessage()
    with pytest.raises(RuntimeError, match="unavailable"):
        core.module()
