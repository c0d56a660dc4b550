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
