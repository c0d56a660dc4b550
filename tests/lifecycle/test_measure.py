"""Measurement beside learning: the measurer keeps up with fast cycles and applies only games played."""

from __future__ import annotations

from l4demons.hub.local import LocalHub
from l4demons.lifecycle import TrainConfig
from l4demons.lifecycle.best_net import BestNet
from l4demons.lifecycle.measure import Measurer
from l4demons.lifecycle.run_state import RunState
from l4demons.network import NetConfig


def measuring_run(tmp_path, **flags) -> tuple[RunState, BestNet, Measurer]:
    cfg = TrainConfig(net="tiny", elo_nodes=1, elo_games=2, device="cpu", **flags)
    run = RunState.open(cfg, LocalHub(tmp_path / "hub"))
    run.build_net(NetConfig.from_name("tiny"), seed=0)
    best = BestNet(run)
    best.load_from(None)
    return run, best, Measurer(run, best, game_workers=0)


def test_fast_cycles_never_commit_a_measurement_without_games(tmp_path):
    """Cycles that come faster than games: each net offered replaces the one not begun, every Elo applied
    comes from games, and the newest net offered is the one rated last."""
    run, best, measurer = measuring_run(tmp_path, elo_seconds=30.0, gate_games=0)
    measurer.begin(selfplay_workers=1)
    try:
        rated = []
        for cycle in range(1, 7):  # six "cycles" as fast as the loop can go
            measurer.offer(cycle)
            collected = measurer.collect(training_seconds=1.0)
            if collected.elo is not None:
                assert collected.elo.games > 0, "a measurement without games was applied"
                rated.append(collected.elo_cycle)
        measurer.wait_idle()
        last = measurer.collect(training_seconds=1.0)
        if last.elo is not None:
            rated.append(last.elo_cycle)
    finally:
        measurer.close()
    assert rated and rated[-1] == 6, rated  # it kept up: the newest net was rated
    assert rated == sorted(set(rated)), rated  # newer nets only, each at most once
    assert run.state.elo is not None and run.state.elo_pool
    assert not list(run.workdir.glob("candidate-*.pt"))  # nets rated or skipped leave no file behind


def test_a_stronger_net_offered_becomes_the_best_by_its_own_weights(tmp_path, material_net, caplog):
    """The measurer rates the net, then gates it against the best; the promotion it applies commits the
    tested net's weights (a file of that cycle), and later training does not change them. The next gate
    plays the new best at once, before the trainer has committed it."""
    from l4demons.learner import LearnerConfig
    from l4demons.network import NetConfig, build_network, save_weights

    cfg = NetConfig(blocks=2, channels=32, value_hidden=64, value_head="pool")
    run = RunState.open(TrainConfig(elo_nodes=16, elo_games=2, elo_seconds=600.0, gate_games=40, device="cpu",
                                    learner=LearnerConfig(ema_steps=0)),  # the net offered is the net loaded here
                        LocalHub(tmp_path / "hub"))
    run.build_net(cfg, seed=1)  # the best: random weights
    best = BestNet(run)
    best.load_from(None)
    measurer = Measurer(run, best, game_workers=0)
    measurer.begin(selfplay_workers=1)
    try:
        run.net.load_state_dict(material_net("pool")[1].state_dict())  # "cycle 4" learned material
        measurer.offer(4)
        measurer.wait_idle()
        run.net.load_state_dict(build_network(cfg, seed=2).state_dict())  # training goes on
        with caplog.at_level("INFO", logger="l4demons.train"):
            measurer.offer(5)
            measurer.wait_idle()
        collected = measurer.collect(training_seconds=1.0)
    finally:
        measurer.close()
    promoted = [g for g in collected.gates if g.cycle == 4]
    assert promoted and promoted[0].promoted, collected
    assert "cycle 5's net against model_best.pt (cycle 4)" in caplog.text
    assert collected.best == best.path and run.state.best_cycle == 4
    save_weights(material_net("pool")[1], cfg, tmp_path / "cycle4.pt")
    assert collected.best.read_bytes() == (tmp_path / "cycle4.pt").read_bytes()


def test_a_stale_undecided_gate_yields_to_the_newest_rated_net(tmp_path):
    """The measuring thread's step after rating a net: a gate in flight that has played its games without a
    verdict is handed to collect() as kept out, and the new net's gate begins; a younger gate plays on, and the
    rated net's file is dropped."""
    from l4demons.lifecycle.gate import SUPERSEDE_CYCLES, SUPERSEDE_GAMES, Gate

    run, best, measurer = measuring_run(tmp_path, gate_games=100)
    old = tmp_path / "candidate-2.pt"
    old.write_bytes(b"net of cycle 2")
    gate = Gate(2, old, best.path, None, nodes=1, max_games=100, wins=7, draws=SUPERSEDE_GAMES - 14, losses=7)
    young = tmp_path / "candidate-3.pt"
    young.write_bytes(b"net of cycle 3")
    assert measurer._gate_after_rating(gate, 3, young) is gate and not young.exists()
    newest = tmp_path / "candidate-9.pt"
    newest.write_bytes(b"net of cycle 9")
    after = measurer._gate_after_rating(gate, 2 + SUPERSEDE_CYCLES + 2, newest)
    assert after is not gate and after.candidate == newest and after.games == 0
    collected = measurer.collect(training_seconds=1.0)
    assert collected.gates == (gate,) and gate.superseded_by == 9 and collected.best is None
    assert run.state.best_cycle is None and not old.exists()  # kept out; its file is gone
