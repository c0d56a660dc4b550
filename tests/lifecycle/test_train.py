"""The training lifecycle through the real CLI, on the local hub."""

from __future__ import annotations

import dataclasses

import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from l4demons.checkpoint import (BEST_FILE, METRICS_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, TrainingState,
                                 load_optimizer_parts, read_metrics)
from l4demons.hub.local import LocalHub
from l4demons.lifecycle import INITIAL_MESSAGE, TrainConfig, Trainer
from l4demons.network import load_network

from train_cli import (FAST, FAST_RESUME, cli_env, main_in_process, ok, one_line_error_in_process, run_here,
                       start_cli, wait_for_line)

CYCLE_MESSAGE = re.compile(r"^Training cycle (\d+), Elo ~(\S+), Loss (\d+\.\d+|n/a)")

pytestmark = pytest.mark.slow


def titles(hub: LocalHub) -> list[str]:
    return [c.message.splitlines()[0] for c in reversed(hub.history())]


def test_first_run_initialises_then_second_run_resumes(tmp_path, hub_dir, monkeypatch, capsys):
    first = run_here(["train", "--hub", str(hub_dir), "--cycles", "1", "--games", "10", "--steps", "3", *FAST],
                     tmp_path, monkeypatch, capsys)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "empty hub" in first.stdout and "future runs will fine-tune" in first.stdout
    hub = LocalHub(hub_dir)
    assert titles(hub)[0] == INITIAL_MESSAGE
    m = CYCLE_MESSAGE.match(titles(hub)[1])
    assert m and m.group(1) == "1"
    assert BEST_FILE in hub.list_files()  # the first validation loss is the best ever
    assert "Best model - cycle 1, loss=" in hub.history()[0].message

    second = run_here(["train", "--hub", str(hub_dir), "--cycles", "1", "--games", "2", "--steps", "3", *FAST_RESUME],
                      tmp_path, monkeypatch, capsys)
    assert second.returncode == 0, second.stderr + second.stdout
    assert "resuming from commit" in second.stdout and "cycle 1" in second.stdout
    assert CYCLE_MESSAGE.match(titles(hub)[2]).group(1) == "2"
    state = TrainingState.load(hub.download(STATE_FILE))
    assert state.cycle == 2 and state.learner["step"] == 6 and state.games == 12
    rows = read_metrics(hub.download(METRICS_FILE))
    assert [r["cycle"] for r in rows] == [1, 2]
    load_network(hub.download(MODEL_FILE))

    history = run_here(["history", "--hub", str(hub_dir)], tmp_path, monkeypatch, capsys)
    assert history.returncode == 0
    assert "Training cycle 2" in history.stdout and INITIAL_MESSAGE in history.stdout


def test_resume_restores_optimizer_and_counters(tmp_path, hub_dir):
    hub = LocalHub(hub_dir)
    cfg = TrainConfig(cycles=1, games=3, cycle_seconds=0, steps=4, net="tiny", workers=1, elo_seconds=0,
                      selfplay=TrainConfig().selfplay.__class__(simulations=4, fast_simulations=2, max_plies=30),
                      learner=TrainConfig().learner.__class__(batch_size=32))
    first = Trainer(cfg, hub)
    first.run()
    saved = TrainingState.load(hub.download(STATE_FILE))
    resumed = Trainer(TrainConfig(cycles=0, workers=1, elo_seconds=0), hub)
    resumed.run()
    assert resumed.run_state.state.cycle == 1
    assert resumed.run_state.learner.step == 4
    mine, theirs = resumed.run_state.learner.optimizer.state_dict(), first.run_state.learner.optimizer.state_dict()
    for k, v in theirs["state"].items():
        assert torch.equal(mine["state"][k]["exp_avg"], v["exp_avg"])
    assert resumed.run_state.learner.scheduler.get_last_lr() == first.run_state.learner.scheduler.get_last_lr()
    assert resumed.run_state.replay.names == saved.replay_chunks
    assert resumed.run_state.rng.bit_generator.state == first.run_state.rng.bit_generator.state


@pytest.mark.parametrize("phase,args,ready", [
    ("self-play", ["--games", "500", "--steps", "3"], "cycle 1: self-play"),
    ("backprop", ["--games", "2", "--steps", "1000000"], "cycle 1: 2 games"),
])
def test_sigint_saves_commits_and_exits_zero(tmp_path, hub_dir, phase, args, ready, monkeypatch, capsys):
    ok(run_here(["train", "--hub", str(hub_dir), "--cycles", "0", *FAST],
                tmp_path, monkeypatch, capsys))  # initial commit
    proc = start_cli(["train", "--hub", str(hub_dir), "--cycles", "1", *args, *FAST_RESUME], tmp_path)
    seen: list[str] = []
    wait_for_line(proc, ready, seen)
    proc.send_signal(signal.SIGINT)
    out = "".join(seen) + proc.stdout.read()
    assert proc.wait(timeout=120) == 0, out
    last = LocalHub(hub_dir).history()[0].message
    assert CYCLE_MESSAGE.match(last) and "(interrupted)" in last, out
    assert "SIGINT received" in out


def test_a_stop_short_of_time_commits_the_weights_and_reuses_the_last_optimizer_state(tmp_path, hub_dir, monkeypatch,
                                                                                     capsys):
    ok(run_here(["train", "--hub", str(hub_dir), "--cycles", "1", "--games", "2", "--steps", "2", *FAST], tmp_path,
                monkeypatch, capsys))
    hub = LocalHub(hub_dir)
    parent = hub.head()
    proc = start_cli(["train", "--hub", str(hub_dir), "--cycles", "1", "--games", "500", "--steps", "3",
                      "--stop-seconds", "0.5", *FAST_RESUME], tmp_path)
    seen: list[str] = []
    wait_for_line(proc, "cycle 2: self-play", seen)
    proc.send_signal(signal.SIGINT)
    out = "".join(seen) + proc.stdout.read()
    assert proc.wait(timeout=120) == 0, out
    assert "too few to upload the optimizer state too" in out, out
    info = hub.history()[0]
    assert info.parent == parent and "(interrupted)" in info.message
    for name, same in (("optimizer.pt", True), ("metrics.jsonl", False), ("training_state.pt", False)):
        assert (hub.download(name).read_bytes() == hub.download(name, parent).read_bytes()) == same, name
    resumed = run_here(["train", "--hub", str(hub_dir), "--cycles", "0", *FAST_RESUME], tmp_path, monkeypatch, capsys)
    assert resumed.returncode == 0 and f"resuming from commit {info.id[:8]}: cycle 2" in resumed.stdout
    assert "fresh optimizer" not in resumed.stdout + resumed.stderr


SECOND_SIGNAL_CHILD = """
import os, signal, sys
from l4demons import signals
signals.REPEAT_WINDOW_S = 0.0  # the second signal counts as a second ask at once
stop = signals.StopFlag()
with stop.handle_signals():
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.requested, "first SIGINT must only ask"
    print("asked", flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    print("still running after the second SIGINT", flush=True)
sys.exit(0)
"""

ONE_STOP_CHILD = """
import os, signal, sys
from l4demons.signals import StopFlag
stop = StopFlag()
with stop.handle_signals():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):  # one stop, sent to every process
        os.kill(os.getpid(), sig)
    print("still running, stop:", stop.reason, flush=True)
sys.exit(0)
"""


def test_second_sigint_exits_at_once(tmp_path):
    result = subprocess.run([sys.executable, "-c", SECOND_SIGNAL_CHILD], capture_output=True, text=True,
                            env=cli_env(tmp_path), timeout=60)
    assert result.returncode == 130
    assert "asked" in result.stdout and "still running" not in result.stdout


def test_copies_of_one_stop_are_one_stop(tmp_path):
    result = subprocess.run([sys.executable, "-c", ONE_STOP_CHILD], capture_output=True, text=True,
                            env=cli_env(tmp_path), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "still running, stop: SIGINT" in result.stdout
    assert result.stdout.count("received") + result.stderr.count("received") <= 1


@pytest.mark.parametrize("args,expect", [
    (["--bogus-flag"], "unrecognized arguments"),
    (["--net", "b0c64"], "blocks must be"),
    (["--games", "0"], "must be at least 1"),
    (["--net", "enormous"], "unknown network size"),
])
def test_bad_flags_fail_in_one_line_and_write_nothing(hub_dir, capsys, args, expect):
    code, _out, err = main_in_process(["train", "--hub", str(hub_dir), *args], capsys)
    assert code == 2
    assert expect in err and "Traceback" not in err
    assert not hub_dir.exists() or LocalHub(hub_dir).head() is None


def test_unwritable_hub_path_fails_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    one_line_error_in_process(["train", "--hub", str(blocker / "hub"), "--cycles", "1", *FAST], capsys)


def test_hub_of_another_architecture_is_refused(hub_dir, capsys):
    hub = LocalHub(hub_dir)
    Trainer(TrainConfig(cycles=0, net="tiny", workers=1, elo_seconds=0), hub).run()  # what `train --cycles 0` commits
    head = hub.head()
    assert head is not None
    line = one_line_error_in_process(["train", "--hub", str(hub_dir), "--cycles", "1", "--net", "small"], capsys)
    assert "holds b2c32" in line
    assert LocalHub(hub_dir).head() == head


def test_a_new_hub_gets_the_devices_default_net_unless_the_flag_names_one(tmp_path):
    from l4demons.lifecycle.best_net import BestNet
    from l4demons.lifecycle.commit import Committer
    from l4demons.lifecycle.run_state import RunState
    from l4demons.lifecycle.start import start
    from l4demons.network import NetConfig, default_net

    assert (default_net("cpu"), default_net("cuda"), default_net("cuda:1")) == ("b3c32-mat", "small", "small")
    hub = LocalHub(tmp_path / "default")
    Trainer(TrainConfig(cycles=0, workers=1, elo_seconds=0, device="cpu"), hub).run()
    assert load_network(hub.download(MODEL_FILE))[1] == NetConfig.from_name("b3c32-mat")

    def initial_net(name: str, net: str | None = None) -> NetConfig:
        run = RunState.open(TrainConfig(cycles=0, net=net, device="cpu"), LocalHub(tmp_path / name))
        try:
            start(run, Committer(run, BestNet(run)))  # as the warm start starts a new hub
            return load_network(run.hub.download(MODEL_FILE))[1]
        finally:
            shutil.rmtree(run.workdir, ignore_errors=True)

    assert initial_net("device") == NetConfig.from_name("b3c32-mat")
    assert initial_net("flag", net="b3c32") == NetConfig.from_name("b3c32")


def test_two_initial_commits_of_one_seed_differ(tmp_path):
    """Two trainers starting one empty hub at once build the same seed-0 weights; their initial commits must still
    differ, or the Hugging Face client skips the second as empty and that trainer takes the other's commit for
    its own (no conflict, no merge) instead of resuming from it."""
    states = []
    for name in ("a", "b"):
        hub = LocalHub(tmp_path / name)
        Trainer(TrainConfig(hub=str(hub.path), cycles=0, net="tiny"), hub).run()
        states.append(TrainingState.load(hub.download(STATE_FILE)))
        assert load_network(hub.download(MODEL_FILE))[0].state_dict().keys()
    assert states[0].initialised_by and states[0].initialised_by != states[1].initialised_by


def test_with_weight_averaging_the_best_is_the_average_and_model_pt_the_raw_weights(tmp_path, hub_dir):
    hub = LocalHub(hub_dir)
    cfg = TrainConfig(cycles=1, games=3, steps=6, net="tiny", workers=1, elo_seconds=0, cycle_seconds=0,
                      selfplay=TrainConfig().selfplay.__class__(simulations=4, fast_simulations=2, max_plies=30),
                      learner=TrainConfig().learner.__class__(batch_size=32, ema_steps=4))
    trainer = Trainer(cfg, hub)
    trainer.run()
    learner = trainer.run_state.learner
    best = torch.load(hub.download(BEST_FILE), weights_only=True)["state_dict"]
    raw = torch.load(hub.download(MODEL_FILE), weights_only=True)["state_dict"]
    played = learner.played_state_dict()
    assert all(torch.equal(best[k], played[k]) for k in played)  # what the gate would play is the average
    assert all(torch.equal(raw[k], v.cpu()) for k, v in learner.net.state_dict().items())
    assert not torch.equal(best["policy_out.weight"], raw["policy_out.weight"])
    resumed = Trainer(TrainConfig(cycles=0, workers=1, elo_seconds=0, learner=cfg.learner), hub)
    resumed.run()
    again = resumed.run_state.learner.played_state_dict()
    assert all(torch.equal(again[k], played[k]) for k in played)  # the average is part of the commit
    # ...in optimizer.pt, beside the optimizer's moments: the light training state stays light
    assert "ema" not in TrainingState.load(hub.download(STATE_FILE)).learner
    assert "ema" in load_optimizer_parts(hub.download(OPTIMIZER_FILE))


def test_the_learning_rate_decays_with_the_positions_generated(tmp_path, hub_dir):
    hub = LocalHub(hub_dir)
    cfg = TrainConfig(cycles=1, games=3, steps=3, net="tiny", workers=1, elo_seconds=0, cycle_seconds=0,
                      selfplay=TrainConfig().selfplay.__class__(simulations=4, fast_simulations=2, max_plies=30),
                      learner=TrainConfig().learner.__class__(batch_size=32, warmup_steps=1, lr_halflife=1.0,
                                                              lr_floor=0.25))
    Trainer(cfg, hub).run()
    row = read_metrics(hub.download(METRICS_FILE))[-1]
    assert row["train_positions"] > 8 and row["lr"] == pytest.approx(cfg.learner.lr * 0.25)  # at its floor


def test_a_resume_keeps_a_window_that_grew_past_its_minimum(tmp_path, hub_dir):
    from l4demons.lifecycle.budgets import WindowConfig

    hub = LocalHub(hub_dir)
    cfg = TrainConfig(cycles=4, games=3, steps=1, net="tiny", workers=1, elo_seconds=0, cycle_seconds=0,
                      window=WindowConfig(min_positions=60, max_positions=100_000),
                      selfplay=TrainConfig().selfplay.__class__(simulations=4, fast_simulations=2, max_plies=30),
                      learner=TrainConfig().learner.__class__(batch_size=16))
    Trainer(cfg, hub).run()
    saved = TrainingState.load(hub.download(STATE_FILE))
    assert len(saved.replay_chunks) >= 2 and saved.train_positions > 60  # grown past the minimum
    resumed = Trainer(dataclasses.replace(cfg, cycles=0), hub)
    resumed.run()
    assert resumed.run_state.replay.names == saved.replay_chunks
