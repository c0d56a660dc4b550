"""--precision: bf16 autocast where the hardware has it, float32 elsewhere; the weights stay float32."""

import numpy as np
import pytest
import torch

from l4demons import devices
from l4demons.learner import Learner, LearnerConfig
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.search import Evaluator
from l4demons.selfplay import SelfPlayConfig, play_games


def _cpuinfo(tmp_path, flags: str) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
    return str(path)


@pytest.mark.parametrize("flags, native", [
    ("avx2 avx512f avx512_bf16 avx512_vnni", True),  # Zen 4, Cooper Lake
    ("avx2 avx512f amx_tile amx_bf16", True),  # Sapphire Rapids
    ("avx2 avx512f avx512bw avx512_vnni", False),  # Skylake-SP, Ice Lake: bf16 only emulated
    ("avx2", False),
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    assert devices.cpu_has_bf16(_cpuinfo(tmp_path, flags)) is native


def test_unreadable_cpu_flags_mean_no_bf16(tmp_path):
    assert devices.cpu_has_bf16(str(tmp_path / "absent")) is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_uses_bf16_only_where_the_cpu_has_it(monkeypatch, native):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: native)
    assert devices.learner_precision("auto", "cpu") == ("bf16" if native else "fp32")
    assert devices.learner_precision("fp32", "cpu") == "fp32"
    assert devices.learner_precision("bf16", "cpu") == "bf16"  # asked for: emulated where not native


def test_an_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        LearnerConfig(precision="fp16")
    with pytest.raises(ValueError, match="unknown precision"):
        devices.learner_precision("half", "cpu")


def test_the_train_cli_rejects_an_unknown_precision_in_one_line(capsys, tmp_path):
    from l4demons.cli import main

    assert main(["train", "--hub", str(tmp_path / "hub"), "--cycles", "1", "--precision", "fp16"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown precision 'fp16'" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "hub").exists()


@pytest.fixture(scope="module")
def window():
    ev = Evaluator(build_network(NetConfig.from_name("tiny"), seed=0))
    games = play_games(ev, SelfPlayConfig(simulations=8, fast_simulations=4, max_plies=50, concurrent_games=10), 10,
                       np.random.default_rng(0))
    w = ReplayWindow()
    w.add(ReplayChunk.from_games("a", games, validation_every=0))
    return w


def test_bf16_steps_learn_as_float32_steps_do_and_keep_float32_weights(window):
    """The same steps from the same weights: the losses fall alike and the weights stay float32."""
    def run(precision: str):
        torch.manual_seed(0)
        learner = Learner(build_network(NetConfig.from_name("tiny"), seed=1),
                          LearnerConfig(batch_size=64, lr=3e-3, warmup_steps=1, precision=precision))
        rng = np.random.default_rng(0)
        first = learner.train_steps(window, 5, rng)
        for _ in range(6):
            last = learner.train_steps(window, 10, rng)
        return learner, first, last

    f32, f32_first, f32_last = run("fp32")
    bf16, bf16_first, bf16_last = run("bf16")
    assert f32.precision == "fp32" and bf16.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in bf16.net.parameters())
    assert bf16_last.value < 0.8 * bf16_first.value and bf16_last.policy < bf16_first.policy
    assert abs(bf16_last.total - f32_last.total) < 0.05 * f32_last.total
    # not the same arithmetic: bf16 really ran
    assert bf16_last.total != f32_last.total
