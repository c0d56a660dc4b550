"""The hand-off from a warm start to self-play: the annealed learning rate stays, the teacher's positions
stay a decaying share of each batch with their own value target, and leave once that share is negligible."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from l4demons.checkpoint import OPTIMIZER_FILE, STATE_FILE, TrainingState, load_optimizer, replay_file
from l4demons.hub.local import LocalHub
from l4demons.learner import TEACHER_FLOOR, Learner, LearnerConfig, teacher_share
from l4demons.losses import value_target
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk, ReplayWindow, is_teacher
from l4demons.replay_device import TrainBatch
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games
from train_cli import FAST_RESUME, ok, run_here

from test_pgn import GAMES

TINY = ["--net", "tiny", "--elo-seconds", "0", "--batch-size", "8", "--workers", "1"]


@pytest.fixture(scope="module")
def games():
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=40, concurrent_games=10)
    return play_games(ev, cfg, 10, np.random.default_rng(5))


def teacher_chunk(games, name: str = "000001-warm-0a1b2c3d", handoff: int = 0) -> ReplayChunk:
    """The games as a teacher's chunk: every position's value a distinct q, its result a decisive one."""
    chunk = ReplayChunk.from_games(name, games, validation_every=3)
    values = np.linspace(-0.9, 0.9, len(chunk)).astype(np.float16)
    return dataclasses.replace(chunk, values=values, results=np.where(values >= 0, 1, -1).astype(np.int8),
                               handoff_positions=handoff)


def selfplay_chunk(games, k: int) -> ReplayChunk:
    return ReplayChunk.from_games(f"{k:06d}-5e1f{k:04d}", games, validation_every=3)


def test_the_teacher_share_halves_every_halflife_and_ends_under_one_percent():
    cfg = LearnerConfig(teacher_share=0.5, teacher_halflife=100_000)
    assert teacher_share(cfg, 0) == 0.5
    assert teacher_share(cfg, 100_000) == pytest.approx(0.25)
    assert teacher_share(cfg, 300_000) == pytest.approx(0.0625)
    assert teacher_share(cfg, -5) == 0.5  # positions before the hand-off do not count
    shares = [teacher_share(cfg, n) for n in range(0, 1_000_000, 10_000)]
    assert all(a >= b for a, b in zip(shares, shares[1:]))
    # 0.5 / 2**(n / 100k) < 1% from n = 100k * log2(50), about 564k
    assert teacher_share(cfg, 564_000) >= TEACHER_FLOOR and teacher_share(cfg, 565_000) == 0.0
    assert teacher_share(LearnerConfig(teacher_share=0.0), 0) == 0.0
    with pytest.raises(ValueError):
        LearnerConfig(teacher_share=1.5)
    with pytest.raises(ValueError):
        LearnerConfig(teacher_halflife=0)


def test_batches_carry_the_teacher_share(games):
    window = ReplayWindow()
    window.add(teacher_chunk(games[:5]))
    window.add(selfplay_chunk(games[5:], 2))
    rng = np.random.default_rng(0)
    for share in (0.5, 0.1, 0.013):
        rows = [window.sample(64, rng, share).teacher for _ in range(200)]
        assert np.mean(rows) == pytest.approx(share, abs=0.01)
        per_batch = [r.sum() for r in rows]
        assert max(per_batch) - min(per_batch) <= 1  # the count is share x 64 rounded, not a coin per row
    assert not window.sample(64, rng, 0.0).teacher.any()
    # the device assembles the same batches
    for share in (0.0, 0.3, 1.0):
        reference = TrainBatch.from_batch(window.sample(33, np.random.default_rng(7), share))
        batch = window.on_device("cpu").sample(33, np.random.default_rng(7), share)
        for f in dataclasses.fields(TrainBatch):
            assert torch.equal(getattr(reference, f.name), getattr(batch, f.name)), f.name
    # a side with no positions gives all rows to the other
    alone = ReplayWindow()
    alone.add(teacher_chunk(games[:5]))
    assert alone.sample(16, rng, 0.0).teacher.all() and alone.on_device("cpu").sample(16, rng).teacher.all()
    selfplay = ReplayWindow()
    selfplay.add(selfplay_chunk(games[5:], 2))
    assert not selfplay.sample(16, rng, 0.5).teacher.any()


def test_teacher_rows_take_their_value_target_from_the_teacher(games):
    window = ReplayWindow()
    window.add(teacher_chunk(games[:5]))
    window.add(selfplay_chunk(games[5:], 2))
    batch = window.sample(256, np.random.default_rng(1), 0.5)
    t = batch.teacher
    assert 0 < t.sum() < len(t)
    q = batch.search_value
    from_q = np.stack([np.maximum(q, 0), 1 - np.abs(q), np.maximum(-q, 0)], axis=1)
    for mix in (0.0, 0.3):
        target = value_target(batch, mix)
        assert np.allclose(target[t], from_q[t])  # the teacher's q, not its drawn result
        assert np.allclose(target[~t], (1 - mix) * batch.wdl[~t] + mix * from_q[~t])
    assert not np.allclose(batch.wdl[t], from_q[t])


def test_teacher_chunks_stay_apart_from_the_window_until_their_share_is_negligible(tmp_path, games):
    window = ReplayWindow(capacity=1)
    warm = teacher_chunk(games[:5], handoff=1000)
    window.add(warm)
    for k in range(2, 5):
        dropped = window.add(selfplay_chunk(games[5:], k))
        assert warm not in dropped
    assert window.names == [warm.name, "000004-5e1f0004"]  # self-play keeps only its newest chunk
    assert window.train_weight == selfplay_chunk(games[5:], 4).train_weight(1.0)  # the teacher counts for nothing
    assert window.teacher_positions == warm.position_mask(False).sum() and window.handoff_positions == 1000
    learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1),
                      LearnerConfig(batch_size=16, teacher_share=0.5, teacher_halflife=100))
    assert learner.teacher_share(window, 1000) == 0.5  # decays from the hand-off on
    assert learner.teacher_share(window, 1100) == pytest.approx(0.25)
    assert learner.teacher_share(window, 1600) == 0.0
    # validation: self-play's held-out games, or the teacher's
    assert learner.validation_losses(window) == learner.losses(
        TrainBatch.from_batch(b) for b in window.validation_batches(16))
    assert learner.validation_losses(window, teacher=True) != learner.validation_losses(window)
    assert not any(b.teacher.any() for b in window.validation_batches(16))
    assert all(b.teacher.all() for b in window.validation_batches(16, teacher=True))
    assert window.drop_teacher() == [warm] and window.names == ["000004-5e1f0004"]
    assert learner.teacher_share(window, 1000) == 0.0 and window.drop_teacher() == []
    # the hand-off point travels with the chunk; a chunk written before it loads as 0
    warm.save(tmp_path / "warm.npz")
    assert ReplayChunk.load(tmp_path / "warm.npz").handoff_positions == 1000
    with np.load(tmp_path / "warm.npz") as z:
        np.savez(tmp_path / "old.npz", **{k: z[k] for k in z.files if k != "handoff_positions"})
    assert ReplayChunk.load(tmp_path / "old.npz").handoff_positions == 0


def committed_lr(hub: LocalHub) -> list[float]:
    """The head's learning rates: the schedule's peak, the scheduler's last rate, the optimizer's rate."""
    state = TrainingState.load(hub.download(STATE_FILE))
    optimizer = load_optimizer(hub.download(OPTIMIZER_FILE))
    sched = state.learner["scheduler"]
    return [*sched["base_lrs"], *sched["_last_lr"], *(g["lr"] for g in optimizer["param_groups"])]


def annealed(lr: float) -> list:
    """The rates of a learner past its warm-up at peak ``lr``."""
    return [pytest.approx(lr)] * 3


def test_self_play_after_a_warm_start_keeps_its_annealed_rate_and_then_lets_the_teacher_go(
        tmp_path, monkeypatch, capsys):
    pgn = tmp_path / "games.pgn"
    pgn.write_text(GAMES * 30)
    hub_dir = tmp_path / "hub"
    hub = LocalHub(hub_dir)
    ok(run_here(["train", "--hub", str(hub_dir), "--cycles", "0", "--lr", "0.002", "--net", "tiny", *FAST_RESUME],
                tmp_path, monkeypatch, capsys))
    assert committed_lr(hub)[0] == 0.002  # a new run's --lr, as before
    pretrain = ["pretrain", "--hub", str(hub_dir), "--pgn", str(pgn), "--positions", "300", "--lr", "0.003", *TINY]
    ok(run_here(pretrain, tmp_path, monkeypatch, capsys))  # on a hub with a learner: trains at --lr
    assert committed_lr(hub) == annealed(0.0003)
    warm = next(n for n in TrainingState.load(hub.download(STATE_FILE)).replay_chunks if is_teacher(n))

    # self-play goes on at the annealed rate (not train's --lr default); its window keeps one chunk at a time
    # (the rate's decay by positions, on by default, would scale that rate down: test_lr_decay.py)
    cycle = ["train", "--hub", str(hub_dir), "--cycles", "2", "--games", "2", "--steps", "3",
             "--window-min-positions", "1", "--window-max-positions", "1", "--lr-halflife", "0", *FAST_RESUME]
    out = ok(run_here(cycle, tmp_path, monkeypatch, capsys))
    assert "teacher positions: 50.0% of each batch" in out
    assert committed_lr(hub) == annealed(0.0003)
    state = TrainingState.load(hub.download(STATE_FILE))
    assert state.cycle == 3 and len(state.replay_chunks) == 2 and state.replay_chunks[0] == warm
    assert replay_file(warm) in hub.list_files()

    # its share gone under 1%, the teacher's chunk leaves the window and the head
    out = ok(run_here([*cycle[:4], "1", *cycle[5:], "--teacher-halflife", "1"], tmp_path, monkeypatch, capsys))
    assert "leave the window" in out and warm in out
    state = TrainingState.load(hub.download(STATE_FILE))
    assert not any(is_teacher(n) for n in state.replay_chunks) and replay_file(warm) not in hub.list_files()
    assert committed_lr(hub) == annealed(0.0003)

    # a second warm start on this hub: trains at its --lr again, hands off at a tenth, its decay from here
    ok(run_here(pretrain, tmp_path, monkeypatch, capsys))
    assert committed_lr(hub) == annealed(0.0003)
    state = TrainingState.load(hub.download(STATE_FILE))
    second = ReplayChunk.load(hub.download(replay_file(next(n for n in state.replay_chunks if is_teacher(n)))))
    assert second.handoff_positions == state.train_positions > 0
