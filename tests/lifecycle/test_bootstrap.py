"""The material rule retires once the value head agrees with it."""

from __future__ import annotations

import chess
import numpy as np

from l4demons.encoding import encode_positions
from l4demons.lifecycle import bootstrap

UP_A_QUEEN = "rnb1kbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"


def test_material_lead_is_seen_from_the_side_to_move():
    boards = [chess.Board(UP_A_QUEEN), chess.Board(UP_A_QUEEN.replace(" w ", " b ")), chess.Board()]
    assert bootstrap.material_lead(encode_positions(boards)).tolist() == [9, -9, 0]


def test_agreement_counts_only_decisive_leads():
    boards = [chess.Board(UP_A_QUEEN), chess.Board(UP_A_QUEEN.replace(" w ", " b ")), chess.Board()]
    records = encode_positions(boards)
    # The side ahead says it wins, the side behind says it loses: both agree. The start is not decisive.
    assert bootstrap.agreement_counts(records, np.array([0.8, -0.7, 0.9]), 5) == (2, 2)
    assert bootstrap.agreement_counts(records, np.array([0.1, 0.7, 0.9]), 5) == (2, 0)


def test_the_rule_retires_only_with_enough_agreeing_evidence():
    checks = agreed = 0.0
    for _ in range(3):  # too few positions, though all agree
        checks, agreed = bootstrap.update(checks, agreed, 30, 30)
    assert not bootstrap.rule_retired(checks, agreed, 0.9)
    for _ in range(10):  # plenty, but only 80% agree
        checks, agreed = bootstrap.update(checks, agreed, 100, 80)
    assert not bootstrap.rule_retired(checks, agreed, 0.9)
    for _ in range(20):
        checks, agreed = bootstrap.update(checks, agreed, 100, 97)
    assert bootstrap.rule_retired(checks, agreed, 0.9)
    assert not bootstrap.rule_retired(checks, agreed, 1.01)  # above 1: never


# A game where White keeps a queen more for eight quiet plies, and one with a half-finished exchange:
# White's queen has just taken a rook (Black to move, 5 down), Black takes the queen back (White to move, 4 down).
QUEEN_UP = ["rnb1kbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
            "rnb1kbnr/pppppppp/8/8/8/5N2/PPPPPPPP/RNBQKB1R b KQkq - 1 1",
            "r1b1kbnr/pppppppp/2n5/8/8/5N2/PPPPPPPP/RNBQKB1R w KQkq - 2 2",
            "r1b1kbnr/pppppppp/2n5/8/8/2N2N2/PPPPPPPP/R1BQKB1R b KQkq - 3 2",
            "r1b1kb1r/pppppppp/2n2n2/8/8/2N2N2/PPPPPPPP/R1BQKB1R w KQkq - 4 3",
            "r1b1kb1r/pppppppp/2n2n2/8/4P3/2N2N2/PPPP1PPP/R1BQKB1R b KQkq - 0 3",
            "r1b1kb1r/pppp1ppp/2n2n2/4p3/4P3/2N2N2/PPPP1PPP/R1BQKB1R w KQkq - 0 4",
            "r1b1kb1r/pppp1ppp/2n2n2/4p3/4P3/2N2N2/PPPPBPPP/R1BQK2R b KQkq - 1 4"]
EXCHANGE = ["rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
            "Qnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNB1KBNR b KQk - 0 1",  # Black to move, a rook down
            "qnb1kbnr/pppppppp/8/8/8/8/PPPPPPPP/RNB1KBNR w KQk - 0 2",  # White to move, a queen for a rook down
            "qnb1kbnr/pppppppp/8/8/8/5N2/PPPPPPPP/RNB1KB1R b KQk - 1 2"]


def _chunk(games: list[list[str]], values: list[list[float]]):
    records = encode_positions([chess.Board(fen) for game in games for fen in game])
    offsets = np.cumsum([0] + [len(g) for g in games])
    return records, np.array([v for vs in values for v in vs]), offsets


def test_only_quiet_leads_are_checked():
    leader_wins = [0.8 if i % 2 == 0 else -0.8 for i in range(8)]  # White to move at even plies
    records, values, offsets = _chunk([QUEEN_UP, EXCHANGE], [leader_wins, [0.0, 0.0, 0.0, 0.0]])
    lead = bootstrap.material_lead(records)
    assert lead[:8].tolist() == [9, -9] * 4 and lead[9:11].tolist() == [-5, -4]
    # Six quiet queen-up positions (the last two of a game have no two plies after them); the exchange not at all.
    assert bootstrap.agreement_counts(records, values, 5, offsets) == (6, 6)
    # Counted as before, the exchange's value near 0 (the rook is a move from being paid for) is a disagreement.
    assert bootstrap.agreement_counts(records, values, 5) == (9, 8)


def test_the_rule_retires_on_quiet_agreement_and_not_without_it():
    leader_wins = [0.8 if i % 2 == 0 else -0.8 for i in range(8)]
    unsure = [0.1 if i % 2 == 0 else -0.1 for i in range(8)]
    for values, retires in ((leader_wins, True), (unsure, False)):
        records, v, offsets = _chunk([QUEEN_UP, EXCHANGE] * 20, [values, [0.0] * 4] * 20)
        checks = agreed = 0.0
        for _ in range(10):  # ten cycles of the same games
            checks, agreed = bootstrap.update(checks, agreed, *bootstrap.agreement_counts(records, v, 5, offsets))
        assert bootstrap.rule_retired(checks, agreed, 0.9) is retires
        if retires:  # the old count, exchanges included, would never have let it go at 80% agreement
            old = bootstrap.agreement_counts(records, v, 5)
            assert old[1] / old[0] < 0.9


def test_the_retired_material_rule_keeps_deciding_games_that_play_on():
    from l4demons.checkpoint import TrainingState
    from l4demons.selfplay import SelfPlayConfig

    retired = TrainingState(material_retired=True)
    assert bootstrap.selfplay_config(SelfPlayConfig(material_win=5, play_on_simulations=0), retired).material_win == 0
    # With play-on the rule ends no game (it only switches to cheap searches): nothing to retire.
    kept = bootstrap.selfplay_config(SelfPlayConfig(material_win=5, play_on_simulations=8), retired)
    assert kept.material_win == 5 and kept.play_on_simulations == 8


def test_under_play_on_agreement_is_counted_but_the_rule_never_retires():
    from types import SimpleNamespace

    from l4demons.checkpoint import TrainingState

    leader_wins = [0.8 if i % 2 == 0 else -0.8 for i in range(8)]
    records, values, offsets = _chunk([QUEEN_UP] * 60, [leader_wins] * 60)
    chunk = SimpleNamespace(positions=records, values=values, game_offsets=offsets)
    playing_on, ending = TrainingState(), TrainingState()
    for _ in range(5):
        bootstrap.note_material_leads(playing_on, chunk, 5, 0.9, play_on=True)
        bootstrap.note_material_leads(ending, chunk, 5, 0.9, play_on=False)
    assert ending.material_retired  # the same agreement retires the rule that ends games
    assert not playing_on.material_retired
    assert playing_on.material_checks > ending.material_checks >= bootstrap.MIN_CHECKS  # it keeps counting
    assert playing_on.material_agreed == playing_on.material_checks
