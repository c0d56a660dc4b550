import numpy as np
import pytest
import torch

from l4demons.learner import Learner, LearnerConfig
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games


@pytest.fixture(scope="module")
def games():
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    cfg = SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=50, concurrent_games=10)
    return play_games(ev, cfg, 10, np.random.default_rng(0))


def test_chunk_round_trip_and_whole_game_validation(tmp_path, games):
    chunk = ReplayChunk.from_games("000001-test", games, validation_every=3)
    path = tmp_path / "c.npz"
    chunk.save(path)
    back = ReplayChunk.load(path)
    assert back.name == chunk.name and len(back) == sum(len(g) for g in games)
    for field in ("positions", "policy_indices", "policy_probs", "results", "validation"):
        assert np.array_equal(getattr(back, field), getattr(chunk, field))
    assert 0 < back.validation.sum() < back.games
    val, train = back.position_mask(True), back.position_mask(False)
    assert not (val & train).any() and (val | train).all()
    # every game is entirely on one side
    for g in range(back.games):
        lo, hi = back.game_offsets[g], back.game_offsets[g + 1]
        assert len(set(val[lo:hi])) == 1


def test_compact_storage(games):
    chunk = ReplayChunk.from_games("x", games)
    nbytes = sum(getattr(chunk, f).nbytes for f in ("positions", "policy_offsets", "policy_indices", "policy_probs", "full_search", "results"))
    assert nbytes / len(chunk) < 256  # a replay window of 200k positions stays under ~50 MB


def test_batches_hold_targets(games):
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("a", games))
    batch = window.sample(32, np.random.default_rng(0))
    assert batch.planes.shape == (32, 20, 8, 8)
    assert np.allclose(batch.policy.sum(1), 1, atol=1e-2)
    assert not (batch.policy[~batch.legal] > 0).any()
    assert np.allclose(batch.wdl.sum(1), 1)


def test_window_drops_oldest_chunks(games):
    window = ReplayWindow(capacity=len(games[0]) + 1)
    first, second = ReplayChunk.from_games("a", games[:5]), ReplayChunk.from_games("b", games[5:])
    window.add(first)
    dropped = window.add(second)
    assert [c.name for c in dropped] == ["a"] and window.names == ["b"]


def test_loss_falls_on_a_fixed_small_dataset(games):
    torch.manual_seed(0)
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("a", games, validation_every=0))
    learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1), LearnerConfig(batch_size=64, lr=3e-3, warmup_steps=1))
    rng = np.random.default_rng(0)
    first = learner.train_steps(window, 5, rng)
    for _ in range(6):
        last = learner.train_steps(window, 10, rng)
    # Few-simulation targets are nearly uniform, so the policy loss sits close to their entropy:
    # it falls a little; the value loss falls a lot.
    assert last.value < 0.8 * first.value and last.policy < first.policy
    assert learner.step == 65


def test_learner_state_round_trip(games):
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("a", games))
    net = build_network(NetConfig.from_name("tiny"), seed=1)
    learner = Learner(net, LearnerConfig(batch_size=16))
    learner.train_steps(window, 3, np.random.default_rng(0))
    other = Learner(build_network(NetConfig.from_name("tiny"), seed=2), LearnerConfig(batch_size=16))
    other.load_state_dict(learner.state_dict())
    assert other.step == 3
    assert other.scheduler.get_last_lr() == learner.scheduler.get_last_lr()
    a = learner.optimizer.state_dict()["state"][0]["exp_avg"]
    b = other.optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(a, b)
