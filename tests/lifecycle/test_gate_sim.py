"""bench/gate_sim.py, the gate model the README's choice of yield rule rests on: its runs obey the real SPRT."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def gate_sim(bench_script):
    return bench_script("gate_sim")


def test_a_much_stronger_net_is_promoted_and_an_equal_one_rarely(gate_sim):
    rising = np.where(np.arange(40) < 10, 0.0, 400.0)  # from cycle 10 on, the nets are 400 Elo stronger
    for rule in ("yield", "lean", "finish"):
        trace, promotions, weaker = gate_sim.simulate(rule, rising, np.random.default_rng(0), 2.2, 0.35, 100, 1.0)
        assert promotions >= 1 and weaker == 0 and trace[-1] == 400.0, rule
    flat = np.zeros(60)
    promoted = sum(gate_sim.simulate("lean", flat, np.random.default_rng(s), 2.2, 0.35, 100, 1.0)[1] for s in range(10))
    assert promoted <= 3  # an equal net passes the SPRT about 5% of tests


def test_the_table_has_a_row_per_rule(gate_sim, capsys):
    assert gate_sim.main(["--runs", "2", "--cycles", "30"]) == 0
    out = capsys.readouterr().out
    assert all(f"| {rule} |" in out for rule in ("yield", "lean", "finish"))
