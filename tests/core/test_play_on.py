"""Play-on: a game the material rule decides goes on with cheap searches to a real end (--play-on-simulations)."""

from __future__ import annotations

import dataclasses

import chess
import numpy as np
import pytest

from l4demons.encoding import material_balance
from l4demons.network import NetConfig, build_network
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, compiled as compiled_selfplay, play_games, reference
from l4demons.selfplay.reference import Game

from core_support import require_core

RULES = ("checkmate", "stalemate", "insufficient", "fifty_moves", "repetition")
"""Terminations by a rule of chess."""
TWO_QUEENS = "4k3/8/8/8/8/8/8/QQ2K3 w - - 0 1"


def _game(cfg: SelfPlayConfig, fen: str = TWO_QUEENS) -> Game:
    game = Game(cfg, np.random.default_rng(0))
    game.board = chess.Board(fen)
    return game


def _play(game: Game, moves: list[str], value: float = 0.0) -> None:
    for uci in moves:
        assert game.outcome is None, game.outcome
        game.play(chess.Move.from_uci(uci), value)


def test_the_material_rule_marks_the_game_decided_and_mate_ends_it() -> None:
    cfg = SelfPlayConfig(material_win=5, material_win_plies=1, play_on_simulations=2, resign_threshold=-0.9,
                         resign_moves=1, resign_playthrough=0.0)
    game = _game(cfg)
    assert game.may_resign
    _play(game, ["a1a7"])
    assert game.outcome is None and game.decided and not game.may_resign
    _play(game, ["e8f8"], value=-0.95)  # the side behind would resign: recorded, not played
    assert game.outcome is None and game.would_resign == chess.BLACK
    _play(game, ["b1b8"])
    assert game.outcome == ("checkmate", 1)


def test_a_decided_game_at_the_length_cap_is_adjudicated_as_any_other() -> None:
    cfg = SelfPlayConfig(max_plies=4, adjudicate_material=3, material_win=5, material_win_plies=1,
                         play_on_simulations=2, resign_threshold=-1.0)
    game = _game(cfg)
    _play(game, ["e1e2", "e8e7", "e2e3"])
    assert game.decided and game.outcome is None
    _play(game, ["e7e6"])
    assert game.outcome == ("max_plies", 1)
    without = _game(dataclasses.replace(cfg, play_on_simulations=0))
    _play(without, ["e1e2"])
    assert without.outcome == ("material", 1) and not without.decided


def test_play_on_needs_a_search() -> None:
    with pytest.raises(ValueError, match="play_on_simulations"):
        SelfPlayConfig(play_on_simulations=1)


@pytest.mark.parametrize("compiled", [False, True])
def test_played_on_positions_are_cheap_and_never_policy_targets(compiled: bool) -> None:
    """Every search before the decision is full (16 simulations), every one after it 2 and no policy target."""
    if compiled:
        require_core()
    cfg = SelfPlayConfig(simulations=16, fast_simulations=16, full_search_prob=1.0, max_plies=60, material_win=2,
                         material_win_plies=3, play_on_simulations=2, resign_threshold=-1.0, concurrent_games=1)
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    (game,) = play_games(ev, cfg, 1, np.random.default_rng(3), compiled=compiled)
    n, on = len(game), game.played_on
    assert 0 < on < n and game.termination != "material"
    several = np.diff(game.policy_offsets) > 1  # a single legal move is never a policy target
    assert np.array_equal(game.full_search[: n - on], several[: n - on])
    assert not game.full_search[n - on:].any()
    assert ev.evaluations <= (n - on) * cfg.simulations + on * cfg.play_on_simulations


class _ReachedEnding(Game):
    """A game that reached a won ending in play: the material rule applies, as in any game from the opening."""

    def __init__(self, cfg: SelfPlayConfig, rng, start: chess.Board | None = None, ending: bool = True) -> None:
        super().__init__(cfg, rng, start, ending)
        self.from_ending = False


def test_won_endings_played_on_reach_a_rule_of_chess(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight seeded won endings (KQvK, KRvK...) under the material rule: without play-on it scores them all after
    four plies; with it they go on to mate, stalemate or another rule of chess, their real outcome."""
    monkeypatch.setattr(reference, "Game", _ReachedEnding)
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=200, material_win=5, material_win_plies=4,
                         resign_threshold=-1.0, endgame_share=1.0, concurrent_games=8)
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    runs = {}
    for play_on in (0, 4):
        cfg_now = dataclasses.replace(cfg, play_on_simulations=play_on)
        runs[play_on] = play_games(ev, cfg_now, 8, np.random.default_rng(5), compiled=False)
    off, on = ([g.termination for g in runs[k]] for k in (0, 4))
    assert sum(t == "material" for t in off) >= 7, off
    assert "material" not in on and sum(t in RULES for t in on) >= 7, on
    assert sum(t in RULES for t in on) > sum(t in RULES for t in off)
    assert all(g.played_on > 0 for g in runs[4] if len(g) > cfg.material_win_plies)


FORCED_REPLY = "8/7P/pp6/5P2/k1Pp4/4Q3/3K1P1p/R7 b - - 0 1"
"""Black to move has one legal move, White a queen and a rook ahead: the material rule decides the game at once."""


def _evaluator_for_forced_starts(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> Evaluator:
    """A tiny net's evaluator, every game of either implementation starting from FORCED_REPLY."""
    if compiled:
        require_core()

    def same_start(n_games, cfg, seed):
        return {i: (chess.Board(FORCED_REPLY), False) for i in range(n_games)}

    monkeypatch.setattr(compiled_selfplay, "game_starts", same_start)
    monkeypatch.setattr(reference, "game_starts", same_start)
    return Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))


@pytest.mark.parametrize("compiled", [False, True])
def test_played_on_moves_are_the_searchs_best_without_noise(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four games from the same start, decided after its forced first move: with --play-on-noise 0 every played-on
    move is the search's best, so the games are one game; with the usual noise each is its own."""
    ev = _evaluator_for_forced_starts(compiled, monkeypatch)
    cfg = SelfPlayConfig(simulations=8, fast_simulations=8, max_plies=40, material_win=5, material_win_plies=1,
                         play_on_simulations=4, resign_threshold=-1.0, concurrent_games=4)

    def games(noise: float) -> list:
        return play_games(ev, dataclasses.replace(cfg, play_on_noise=noise), 4, np.random.default_rng(2),
                          compiled=compiled)

    greedy, sampled = games(0.0), games(1.0)
    assert all(g.played_on == len(g) - 1 for g in greedy + sampled)
    assert len({tuple(g.moves) for g in greedy}) == 1
    assert len({tuple(g.moves) for g in sampled}) == 4


def test_play_on_noise_is_not_negative() -> None:
    with pytest.raises(ValueError, match="play_on_noise"):
        SelfPlayConfig(play_on_noise=-0.5)


def test_a_decided_game_ends_after_its_play_on_plies_as_at_the_length_cap() -> None:
    cfg = SelfPlayConfig(max_plies=300, adjudicate_material=3, material_win=5, material_win_plies=1,
                         play_on_simulations=2, play_on_plies=3, resign_threshold=-1.0)
    game = _game(cfg)
    _play(game, ["e1e2"])
    assert game.decided and game.decided_ply == 1
    _play(game, ["e8e7", "e2e3"])
    assert game.outcome is None
    _play(game, ["e7e6"])
    assert game.outcome == ("play_on_plies", 1)
    unlimited = _game(dataclasses.replace(cfg, play_on_plies=0))
    _play(unlimited, ["e1e2", "e8e7", "e2e3", "e7e6", "e3e4"])
    assert unlimited.outcome is None


@pytest.mark.parametrize("compiled", [False, True])
def test_play_on_plies_caps_every_played_on_game(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """From a start decided after its forced first move, each game ends within 6 plies of play-on: by a rule of
    chess, or scored by the lead it ends with, as at the length cap."""
    ev = _evaluator_for_forced_starts(compiled, monkeypatch)
    cfg = SelfPlayConfig(simulations=8, fast_simulations=8, max_plies=200, material_win=5, material_win_plies=1,
                         play_on_simulations=4, play_on_plies=6, resign_threshold=-1.0, concurrent_games=4)
    games = play_games(ev, cfg, 4, np.random.default_rng(2), compiled=compiled)
    assert all(g.played_on == len(g) - 1 <= 6 for g in games)
    capped = [g for g in games if g.termination == "play_on_plies"]
    assert capped and all(len(g) == 7 for g in capped)
    for g in capped:
        board = chess.Board(FORCED_REPLY)
        for uci in g.moves:
            board.push_uci(uci)
        lead = material_balance(board)
        assert g.results[0] == -((lead >= 3) - (lead <= -3))  # Black moved first
    assert all(g.termination in RULES for g in games if g.termination != "play_on_plies")


def test_play_on_plies_is_not_negative() -> None:
    with pytest.raises(ValueError, match="play_on_plies"):
        SelfPlayConfig(play_on_plies=-1)
