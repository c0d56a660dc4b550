"""The best-model gate: ``model_best.pt`` changes only for a net that a sequential test finds stronger over the board."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from l4demons.lifecycle.gate import play_gate
from l4demons.network import NetConfig, build_network, save_weights
from l4demons.probes import probe

CFG = NetConfig(blocks=2, channels=32, value_hidden=64, value_head="pool")


@pytest.fixture(scope="module")
def nets(tmp_path_factory, material_net):
    """A net that has learned material (the learning-signal test's, trained once a session), and the same net
    deliberately weakened (it wants to be behind)."""
    good = material_net("pool")[1]
    assert probe(good).sees_material
    weak = build_network(CFG, seed=0)
    weak.load_state_dict(good.state_dict())
    with torch.no_grad():  # swap win and loss, and turn the policy upside down
        last = weak.value_fc[-1]
        last.weight[[0, 2]] = last.weight[[2, 0]].clone()
        last.bias[[0, 2]] = last.bias[[2, 0]].clone()
        weak.policy_out.weight.neg_()
        weak.policy_out.bias.neg_()
    assert not probe(weak).sees_material
    folder = tmp_path_factory.mktemp("gate")
    save_weights(good, CFG, folder / "good.pt")
    save_weights(weak, CFG, folder / "weak.pt")
    return folder / "good.pt", folder / "weak.pt"


def test_a_weakened_net_never_becomes_the_best(nets):
    good, weak = nets
    for seed in range(3):
        gate = play_gate(weak, good, nodes=16, games=20, seed=seed, workers=0)
        assert gate.done and not gate.promoted, gate.summary()
        assert gate.verdict == "H0" or gate.games == 20


def test_one_pair_never_decides():
    from l4demons.lifecycle.gate import Gate

    gate = Gate(1, Path("a.pt"), Path("b.pt"), None, nodes=1, max_games=100, wins=2)
    assert gate.verdict is None and not gate.promoted and not gate.done
    gate.wins = 15  # fifteen straight wins are enough
    assert gate.promoted and gate.done


def test_the_stronger_net_passes_the_gate_on_enough_games(nets):
    good, weak = nets
    gate = play_gate(good, weak, nodes=16, games=40, seed=0, workers=0)
    assert gate.promoted and gate.wins > gate.losses, gate.summary()
    assert gate.games > 2  # decided by the test, not by one pair


def test_an_undecided_gate_yields_only_after_its_games_to_a_much_newer_net(tmp_path):
    """A gate still undecided after SUPERSEDE_GAMES games gives way to a net SUPERSEDE_CYCLES newer; before
    those games, to a net only a little newer, or once decided, it plays on."""
    from l4demons.lifecycle.gate import SUPERSEDE_CYCLES, SUPERSEDE_GAMES, Gate

    gate = Gate(3, tmp_path / "c3.pt", tmp_path / "best.pt", None, nodes=1, max_games=100)
    gate.wins, gate.draws, gate.losses = 7, SUPERSEDE_GAMES - 14, 7  # even: no verdict yet
    assert gate.verdict is None and not gate.done
    newer = 3 + SUPERSEDE_CYCLES
    assert gate.yields_to(newer) and not gate.yields_to(newer - 1)
    gate.draws -= 1  # one game short
    assert not gate.yields_to(newer + 10)
    decided = Gate(3, tmp_path / "c3.pt", tmp_path / "best.pt", None, nodes=1, max_games=100, wins=0, draws=0,
                   losses=SUPERSEDE_GAMES)
    assert decided.verdict == "H0" and not decided.yields_to(newer)
    gate.draws += 1
    gate.superseded_by = newer
    assert gate.done and not gate.promoted and f"yielded to cycle {newer}'s net" in gate.summary()


def test_a_gate_leaning_to_its_candidate_plays_on_instead_of_yielding(tmp_path):
    """Past SUPERSEDE_GAMES, a gate whose LLR has reached SUPERSEDE_LLR keeps its candidate however new the
    newest net is; the same games leaning the other way, or only a little its way, give way."""
    from l4demons.lifecycle.gate import SUPERSEDE_CYCLES, SUPERSEDE_GAMES, SUPERSEDE_LLR, Gate

    newer = 3 + SUPERSEDE_CYCLES + 10
    leaning = Gate(3, tmp_path / "c3.pt", tmp_path / "best.pt", None, nodes=1, max_games=100,
                   wins=11, draws=SUPERSEDE_GAMES - 14, losses=3)  # the README hour's cycle 34 gate, LLR +1.93
    assert leaning.verdict is None and leaning.llr >= SUPERSEDE_LLR
    assert not leaning.yields_to(newer)
    against = Gate(3, tmp_path / "c3.pt", tmp_path / "best.pt", None, nodes=1, max_games=100,
                   wins=5, draws=SUPERSEDE_GAMES - 14, losses=9)
    slightly = Gate(3, tmp_path / "c3.pt", tmp_path / "best.pt", None, nodes=1, max_games=100,
                    wins=9, draws=SUPERSEDE_GAMES - 14, losses=5)
    assert against.verdict is None and slightly.verdict is None and 0 < slightly.llr < SUPERSEDE_LLR
    assert against.yields_to(newer) and slightly.yields_to(newer)
