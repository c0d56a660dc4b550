import dataclasses
import math

import numpy as np
import pytest
import torch

from l4demons.encoding import POLICY_SIZE
from l4demons.learner import Learner, LearnerConfig
from l4demons.losses import batch_losses
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.replay_device import TrainBatch
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


def _train_on_a_fixed_small_dataset(games, **cfg):
    """65 steps of the tiny net on ``games``: ``(learner, losses of the first 5 steps, of the last 10)``."""
    torch.manual_seed(0)
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("a", games, validation_every=0))
    learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1),
                      LearnerConfig(batch_size=64, lr=3e-3, warmup_steps=1, **cfg))
    rng = np.random.default_rng(0)
    first = learner.train_steps(window, 5, rng)
    for _ in range(6):
        last = learner.train_steps(window, 10, rng)
    return learner, first, last


@pytest.fixture(scope="module")
def fp32_training(games):
    """The float32 run on the fixed small dataset, shared by the tests that read it (one xdist group)."""
    return _train_on_a_fixed_small_dataset(games, precision="fp32")


@pytest.mark.xdist_group("fp32_training")
def test_loss_falls_on_a_fixed_small_dataset(fp32_training):
    learner, first, last = fp32_training
    # Few-simulation targets are nearly uniform, so the policy loss sits close to their entropy:
    # it falls a little; the value loss falls a lot.
    assert last.value < 0.8 * first.value and last.policy < first.policy
    assert learner.step == 65


@pytest.mark.xdist_group("fp32_training")
def test_bf16_steps_learn_as_float32_steps_do_and_keep_float32_weights(games, fp32_training):
    """The same steps from the same weights (--precision): the losses fall alike and the weights stay float32."""
    f32, f32_first, f32_last = fp32_training
    bf16, bf16_first, bf16_last = _train_on_a_fixed_small_dataset(games, precision="bf16")
    assert f32.precision == "fp32" and bf16.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in bf16.net.parameters())
    assert bf16_last.value < 0.8 * bf16_first.value and bf16_last.policy < bf16_first.policy
    assert abs(bf16_last.total - f32_last.total) < 0.05 * f32_last.total
    # not the same arithmetic: bf16 really ran
    assert bf16_last.total != f32_last.total


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


def _played_on(games, counts):
    """The games with their last ``counts[i]`` positions marked as played on after the game was decided."""
    return [dataclasses.replace(g, played_on=min(k, len(g))) for g, k in zip(games, counts)]


def test_played_on_positions_round_trip(tmp_path, games):
    marked = _played_on(games, [3, 0, 7, 1, 0, 2, 5, 0, 4, 9])
    chunk = ReplayChunk.from_games("000002-playon", marked, validation_every=3)
    for g, lo, hi in zip(marked, chunk.game_offsets[:-1], chunk.game_offsets[1:]):
        # a game's played-on positions are its last ones
        assert chunk.played_on[lo:hi].tolist() == [False] * (len(g) - g.played_on) + [True] * g.played_on
    chunk.save(tmp_path / "c.npz")
    back = ReplayChunk.load(tmp_path / "c.npz")
    assert back.played_on.dtype == bool and np.array_equal(back.played_on, chunk.played_on)
    assert back.played_on.sum() == sum(g.played_on for g in marked)


def test_a_chunk_written_before_play_on_loads_with_none_played_on(tmp_path, games):
    chunk = ReplayChunk.from_games("000003-old", _played_on(games, [2] * len(games)))
    arrays = {k: getattr(chunk, k) for k in ("positions", "policy_offsets", "policy_indices", "policy_probs",
                                             "full_search", "results", "game_offsets", "validation")}
    np.savez_compressed(tmp_path / "old.npz", name=np.array(chunk.name), **arrays)  # no values, no played_on
    old = ReplayChunk.load(tmp_path / "old.npz")
    assert old.played_on.dtype == bool and len(old.played_on) == len(chunk) and not old.played_on.any()
    assert not old.values.any() and np.array_equal(old.positions, chunk.positions)
    # built in code without them (as probes.material_chunk does): none played on either
    assert not dataclasses.replace(chunk, played_on=None).played_on.any()


def test_train_weight_counts_played_on_positions_at_their_weight(games):
    chunk = ReplayChunk.from_games("000004-w", _played_on(games, [4] * len(games)), validation_every=3)
    train = chunk.position_mask(False)
    n_train, n_played = int(train.sum()), int((train & chunk.played_on).sum())
    assert 0 < n_played < n_train and (chunk.played_on & ~train).any()  # held-out games have some too
    assert chunk.train_weight(1.0) == n_train
    assert chunk.train_weight(0.25) == pytest.approx(n_train - n_played + 0.25 * n_played)
    assert chunk.train_weight(0.0) == n_train - n_played
    # the window's capacity counts the same weight
    window = ReplayWindow(capacity=10**6, played_on_weight=0.25)
    window.add(chunk)
    assert window.train_weight == pytest.approx(chunk.train_weight(0.25)) and window.train_positions == n_train
    with pytest.raises(ValueError):
        ReplayWindow(played_on_weight=1.5)


def test_the_window_keeps_more_games_when_played_on_positions_count_less(games):
    chunks = [ReplayChunk.from_games(f"c{k}", _played_on(games, [len(g) // 2 for g in games]), validation_every=0)
              for k in range(3)]
    capacity = int(0.75 * chunks[0].train_weight(1.0))  # 3/4 of a chunk; 1.5 chunks at weight 0
    full, light = ReplayWindow(capacity), ReplayWindow(capacity, played_on_weight=0.0)
    for c in chunks:
        full.add(c)
        light.add(c)
    assert len(full.chunks) == 1 and len(light.chunks) == 2


class _FixedNet(torch.nn.Module):
    """Policy logits of zero; value logits (2, 0, 0) where input square a1 of plane 0 is empty, (0, 0, 2) where set."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, planes):
        x = planes[:, 0, 0, 0:1]
        value = ((1 - x) * torch.tensor([2.0, 0.0, 0.0]) + x * torch.tensor([0.0, 0.0, 2.0])) * self.scale
        return torch.zeros(len(planes), POLICY_SIZE), value


def test_value_loss_weighs_played_on_positions_by_the_config():
    legal = torch.zeros(2, POLICY_SIZE, dtype=torch.bool)
    legal[:, :4] = True
    policy = legal.float() / 4  # uniform over 4 legal moves: the zero logits' loss is log 4
    planes = torch.zeros(2, 20, 8, 8)
    planes[1, 0, 0, 0] = 1.0
    batch = TrainBatch(planes=planes, policy=policy, legal=legal,
                       policy_weight=torch.tensor([1.0, 0.0]), wdl=torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]),
                       search_value=torch.zeros(2), played_on=torch.tensor([False, True]),
                       teacher=torch.tensor([False, False]), material=torch.zeros(2))
    # both positions were won: row 0's value logits say win (a small loss), row 1's say loss (a large one)
    small, large = math.log(math.exp(2) + 2) - 2, math.log(math.exp(2) + 2)
    for weight in (1.0, 0.25, 0.0):
        cfg = LearnerConfig(played_on_value_weight=weight, value_target_mix=0.0)
        expected_value = (small + weight * large) / (1 + weight)
        p, v, m = batch_losses(_FixedNet(), batch, cfg.value_target_mix, cfg.played_on_value_weight)
        assert p.item() == pytest.approx(math.log(4), rel=1e-5) and v.item() == pytest.approx(expected_value, rel=1e-5)
        assert m.item() == 0.0  # no material head
        # the validation loss weighs alike, also when the positions come in separate batches
        halves = [TrainBatch(*(getattr(batch, f.name)[i : i + 1] for f in dataclasses.fields(TrainBatch))) for i in (0, 1)]
        learner = Learner(_FixedNet(), cfg)
        for batches in ([batch], halves):
            val = learner.losses(batches)
            assert val.policy == pytest.approx(math.log(4), rel=1e-5)
            assert val.value == pytest.approx(expected_value, rel=1e-5)
    with pytest.raises(ValueError):
        LearnerConfig(played_on_value_weight=-0.1)


def test_train_steps_calls_back_and_stops(games):
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("a", games))
    learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1), LearnerConfig(batch_size=16))
    seen = []
    losses = learner.train_steps(window, 10, np.random.default_rng(0), on_step=seen.append,
                                 should_stop=lambda: len(seen) >= 3)
    assert seen == [1, 2, 3] and learner.step == 3 and losses.policy > 0 and losses.value > 0
    with pytest.raises(ValueError, match="no training positions"):
        learner.train_steps(ReplayWindow(), 1, np.random.default_rng(0))


def test_the_material_target_looks_ahead_within_its_game_from_the_side_to_move():
    import chess

    from l4demons.encoding import encode_positions, material_lead
    from l4demons.replay import material_ahead

    # Black's knight takes a pawn at ply 3, White's knight takes it back at ply 4 (White 2 up from then on).
    board, boards = chess.Board(), []
    for uci in ["e2e4", "g8f6", "b1c3", "f6e4", "c3e4", "d7d5", "e4g3", "d5d4"]:
        boards.append(board.copy())
        board.push_uci(uci)
    boards.append(board.copy())  # 9 positions
    records = encode_positions(boards + boards[:3])  # a second, 3-position game
    offsets = np.array([0, 9, 12])
    lead_now = [0, 0, 0, 0, -1, -2, 2, -2, 2]  # side to move's lead at each ply of the first game
    assert material_lead(records)[:9].tolist() == lead_now
    # two plies ahead: the same side to move; one ply ahead: the other side's lead, negated
    assert material_ahead(records, offsets, 2)[:7].tolist() == lead_now[2:9]
    assert material_ahead(records, offsets, 1)[:8].tolist() == [-x for x in lead_now[1:9]]
    # past a game's end: its last position (ply 8, White to move, 2 up), seen from each side to move
    assert material_ahead(records, offsets, 12)[:9].tolist() == [2, -2, 2, -2, 2, -2, 2, -2, 2]
    assert material_ahead(records, offsets, 12)[9:].tolist() == [0, 0, 0]  # the second game's own last position


def test_the_material_head_learns_its_target_on_self_play_rows_only(games):
    window = ReplayWindow()
    window.add(ReplayChunk.from_games("a", games))
    assert np.abs(window.chunks[0].material).max() > 0  # random games trade material
    net = build_network(NetConfig.from_name("b2c32-mat"), seed=1)
    learner = Learner(net, LearnerConfig(batch_size=64, lr=3e-3, warmup_steps=1))
    before = learner.losses([TrainBatch.from_batch(b) for b in window.validation_batches(64, teacher=False)]
                            or [TrainBatch.from_batch(window.sample(64, np.random.default_rng(1)))])
    learner.train_steps(window, 60, np.random.default_rng(0))
    after = learner.losses([TrainBatch.from_batch(window.sample(256, np.random.default_rng(1)))])
    assert before.material > 0 and after.material < 0.7 * before.material
    # a teacher's rows carry no material loss; a net without the head has none
    batch = TrainBatch.from_batch(window.sample(32, np.random.default_rng(2)))
    batch.teacher = torch.ones(32, dtype=torch.bool)
    assert batch_losses(net, batch, material=True)[2].item() == 0.0
    plain = Learner(build_network(NetConfig.from_name("b2c32"), seed=1), LearnerConfig(batch_size=16))
    assert plain.train_steps(window, 2, np.random.default_rng(0)).material == 0.0
