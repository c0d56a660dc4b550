"""--precision: bf16 autocast where the hardware has it, float32 elsewhere (its learning: test_replay_learner.py)."""

import pytest

from l4demons import devices
from l4demons.learner import LearnerConfig


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
