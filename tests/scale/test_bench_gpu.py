"""``bench/gpu.py``: its flags, its table, the training log's timings, and a CPU phase run in-process."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def gpu(bench_script):
    return bench_script("gpu")


def test_quick_plan_is_small_and_flags_override_it(gpu):
    args = gpu.parse_args(["--device", "cpu", "--quick", "--minutes", "0.1", "--nets", "tiny"])
    plan = gpu.make_plan(args)
    assert args.device == "cpu" and plan.nets == ("tiny",) and plan.minutes == 0.1
    assert max(plan.batches) <= 64 and plan.total_s < gpu.Plan().total_s
    full = gpu.make_plan(gpu.parse_args([]))
    assert full.nets == ("small", "medium") and 4096 in full.batches and 1024 in full.concurrent
    with pytest.raises(SystemExit):
        gpu.parse_args(["--phases", "inference,nonsense"])


def test_table_rows_escape_pipes_and_save_atomically(gpu, tmp_path):
    report = gpu.Report(tmp_path / "out", "title line")
    report.add(gpu.Row("inference", "b2c32-se", "eager, batch 16", "1,000 evals/s", "1.00x eager"))
    report.add(gpu.Row("learner", note="failed: a | b\nc"))
    report.raw["x"] = 1
    report.save()
    table = (tmp_path / "out" / "gpu_table.md").read_text()
    assert table.startswith("title line\n\n| phase | net | setting | result | ratio | GPU busy | note |")
    assert "| learner |  |  |  |  |  | failed: a / b c |" in table
    assert json.loads((tmp_path / "out" / "gpu.json").read_text()) == {"x": 1}
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_cycle_times_and_shares_from_log_lines_and_metrics(gpu):
    lines = [(0.0, "[TRAIN] cycle 1: self-play, 40 games"),
             (6.0, "[TRAIN] cycle 1: 40 games, 9000 positions in 6s (24000 games/h); results max_plies 40"),
             (8.0, "[LOSS] cycle 1: train 4.4 (policy 3.4, value 1.0), validation n/a (30 steps, window 9000)"),
             (10.0, "[TRAIN] cycle 2: self-play, 40 games")]  # cycle 2 cut off: not timed
    times = gpu.cycle_times(lines)
    assert times == {1: {"selfplay": 6.0, "backprop": 2.0}}
    rows = [{"cycle": 1, "seconds": 10.0, "measure_seconds": 2.0, "games": 40, "steps": 30, "elo": None},
            {"cycle": 2, "seconds": 10.0, "measure_seconds": 0.0, "games": 40, "steps": 60, "elo": 12.0,
             "elo_cycle": 1, "best": True}]
    s = gpu.training_summary(rows, times)
    assert s["cycles"] == 2 and s["seconds_per_cycle"] == 10.0 and s["measure_share"] == 0.1
    assert s["rated_commits"] == 1 and s["rating_lag"] == 1.0 and s["promotions"] == 1  # cycle 2 carried cycle 1's Elo
    assert s["selfplay_share"] == 0.6 and s["backprop_share"] == 0.2 and s["last_elo"] == 12.0
    assert gpu.training_summary([], {}) == {"cycles": 0}
    assert gpu.share(None) == "n/a" and gpu.busy_text(None) == "n/a" and gpu.busy_text(42.4) == "42%"


def test_busy_sampler_averages_a_window(gpu):
    sampler = gpu.BusySampler(0)
    sampler.samples = [(1.0, 10.0), (2.0, 30.0), (5.0, 90.0)]
    assert sampler.mean(0.5, 2.5) == 20.0 and sampler.mean(3.0, 4.0) is None


def test_cpu_inference_phase_and_a_failing_phase_print_one_table(gpu, tmp_path, capsys):
    out = tmp_path / "gpu_out"
    assert gpu.main(["--device", "cpu", "--quick", "--nets", "tiny", "--phases", "inference", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "torch " in printed and "CPUs" in printed and "compiled core" in printed
    assert "| inference | b2c32-se-mat | eager, batch 16 |" in printed and "1.00x eager" in printed
    raw = json.loads((out / "gpu.json").read_text())
    assert raw["peaks"]["b2c32-se-mat"]["evals_s"] > 0 and raw["machine"]["device"] == "cpu"
    # A phase that raises leaves its error in its cell and the table still comes out.
    assert gpu.main(["--device", "cpu", "--quick", "--nets", "b0c0x", "--phases", "learner", "--out", str(out)]) == 0
    assert "| learner |  |  | failed |  |  | ValueError: unknown network size" in capsys.readouterr().out
