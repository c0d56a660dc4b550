"""The inference backends give eager's numbers, follow new weights, and fall back to eager."""

from __future__ import annotations

import copy
import importlib.util
import logging
import subprocess
import sys

import pytest
import torch

from l4demons.inference import (
    AUTO_ORDER,
    BF16_TOLERANCE,
    BACKENDS,
    CUDA_ONLY,
    FP32_TOLERANCE,
    Bf16,
    Bucketed,
    Eager,
    InferenceError,
    UnknownBackendError,
    build_forward,
)
from l4demons.network import NetConfig, build_network

CPU_BACKENDS = [b for b in BACKENDS if b not in CUDA_ONLY and b not in ("compile", "openvino")]
REQUIRES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
"""Packages a backend needs besides torch."""


def planes(batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 20, 8, 8, generator=gen) < 0.15).float()


@pytest.fixture(scope="module")
def nets() -> tuple[torch.nn.Module, torch.nn.Module]:
    """Two different tiny networks, in eval mode, with non-trivial batch-norm statistics."""
    out = []
    for seed in (0, 1):
        net = build_network(NetConfig.from_name("tiny"), seed=seed)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(seed)
            for name, buf in net.named_buffers():
                if name.endswith("running_mean"):
                    buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
                elif name.endswith("running_var"):
                    buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
        out.append(net.eval())
    return out[0], out[1]


def eager(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        return net(x)


def max_diff(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def installed(backend: str) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in REQUIRES.get(backend, ()))


def needs(backend: str) -> None:
    if not installed(backend):
        pytest.skip(f"{backend} needs {', '.join(REQUIRES[backend])}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backend_equals_eager_and_follows_new_weights(backend: str, nets) -> None:
    needs(backend)
    first, second = nets
    forward = build_forward(first, "cpu", backend)
    assert forward.name == backend
    for batch in (1, 7, 64):
        x = planes(batch, seed=batch)
        policy, wdl = forward(x)
        assert policy.shape == (batch, 4672) and wdl.shape == (batch, 3)
        assert policy.dtype == wdl.dtype == torch.float32 and policy.device.type == "cpu"
        assert max_diff((policy, wdl), eager(first, x)) <= FP32_TOLERANCE
    x = planes(32, seed=5)
    forward.load_state_dict(second.state_dict())
    assert max_diff(forward(x), eager(second, x)) <= FP32_TOLERANCE
    assert max_diff(forward(x), eager(first, x)) > 100 * FP32_TOLERANCE  # the new weights are in use


def test_openvino_equals_eager_in_its_own_process() -> None:
    """OpenVINO is not a dependency; loaded into the test process it made a later test that sends
    SIGINT to the process crash, so it runs in a child of its own."""
    needs("openvino")
    script = (
        "import torch\n"
        "from l4demons.inference import build_forward\n"
        "from l4demons.network import NetConfig, build_network\n"
        "first, second = (build_network(NetConfig.from_name('tiny'), seed=s).eval() for s in (0, 1))\n"
        "x = torch.rand(33, 20, 8, 8)\n"
        "forward = build_forward(first, 'cpu', 'openvino')\n"
        "forward.load_state_dict(second.state_dict())\n"
        "with torch.inference_mode():\n"
        "    ref = second(x)\n"
        "print(max((a - b).abs().max().item() for a, b in zip(forward(x), ref)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) <= FP32_TOLERANCE


@pytest.mark.slow
def test_compile_follows_new_weights_without_recompiling(nets) -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    first, second = nets
    forward = build_forward(first, "cpu", "compile")
    batches = [planes(9), planes(23)]  # both compiled batch ranges of 2 or more
    for x in batches:
        assert max_diff(forward(x), eager(first, x)) <= FP32_TOLERANCE
    graphs = counters["stats"]["unique_graphs"]
    forward.load_state_dict(second.state_dict())
    for x in batches:
        assert max_diff(forward(x), eager(second, x)) <= FP32_TOLERANCE
    assert counters["stats"]["unique_graphs"] == graphs


def test_forward_leaves_the_callers_network_alone(nets) -> None:
    first, second = nets
    net = build_network(NetConfig.from_name("tiny"), seed=2).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    forward = build_forward(net, "cpu", "eager")
    forward.load_state_dict(second.state_dict())
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_auto_takes_the_first_backend_that_works_here(nets) -> None:
    expected = next(b for b in AUTO_ORDER["cpu"] if installed(b))
    assert build_forward(nets[0], "cpu").name == expected


def test_auto_falls_back_to_eager_with_one_log_line(nets, monkeypatch, caplog) -> None:
    for module in ("onnxruntime", "openvino"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with caplog.at_level(logging.INFO, logger="l4demons.inference"):
        forward = build_forward(nets[0], "cpu")
    assert forward.name == "eager"
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == len(AUTO_ORDER["cpu"]) - 1
    assert "not installed" in skipped[0].getMessage()


def test_a_backend_that_disagrees_with_eager_is_refused(nets) -> None:
    class Wrong(Eager):
        name = "wrong"

        def _run(self, planes):
            policy, wdl = super()._run(planes)
            return policy + 0.01, wdl

    with pytest.raises(InferenceError, match="differs from eager"):
        Wrong(nets[0], torch.device("cpu"), 1)


def test_weights_that_give_nan_in_eager_are_not_blamed_on_the_backend(nets) -> None:
    state = {k: v.clone() for k, v in nets[1].state_dict().items()}
    state["value_fc.2.bias"][0] = float("nan")  # the win logit is NaN in eager too
    forward = build_forward(nets[0], "cpu")
    forward.load_state_dict(state)
    policy, wdl = forward(planes(4))
    assert torch.isnan(wdl[:, 0]).all() and torch.isfinite(wdl[:, 1:]).all() and torch.isfinite(policy).all()


def test_unknown_and_cuda_only_backends_say_what_to_use(nets) -> None:
    with pytest.raises(UnknownBackendError, match="use auto or one of"):
        build_forward(nets[0], "cpu", "tensorrt")
    for backend in sorted(CUDA_ONLY):
        with pytest.raises(InferenceError, match="CUDA only"):
            build_forward(nets[0], "cpu", backend)


def test_bad_shapes_are_refused_and_empty_batches_answered(nets) -> None:
    forward = build_forward(nets[0], "cpu", "eager")
    with pytest.raises(ValueError, match=r"\[B, 20, 8, 8\]"):
        forward(torch.zeros(3, 19, 8, 8))
    policy, wdl = forward(torch.zeros(0, 20, 8, 8))
    assert policy.shape == (0, 4672) and wdl.shape == (0, 3)


def test_batches_are_padded_to_buckets_and_split_above_the_largest(nets) -> None:
    """The CUDA-graph bucketing, with eager runners on the CPU."""

    class Small(Bucketed):
        buckets = (1, 4, 8)

    first, second = nets
    forward = Small(first, torch.device("cpu"), 1)
    for batch in (1, 3, 8, 19):
        x = planes(batch, seed=batch)
        got = forward(x)
        assert got[0].shape == (batch, 4672)
        assert max_diff(got, eager(first, x)) <= FP32_TOLERANCE
    assert sorted(forward.runners) == [1, 4, 8]  # 5 (the probe) ran at 8, 3 at 4, 19 as 8 + 8 + 3
    forward.load_state_dict(second.state_dict())
    x = planes(6)
    assert max_diff(forward(x), eager(second, x)) <= FP32_TOLERANCE


def test_bf16_stays_within_its_stated_tolerance(nets) -> None:
    """bf16 autocast on the CPU, as the CUDA bf16 backends run it; a trained-size net, not tiny."""
    net = build_network(NetConfig.from_name("small"), seed=0).eval()
    forward = Bf16(net, torch.device("cpu"), 1)
    x = planes(64)
    ref = eager(net, x)
    diff = max_diff(forward(x), ref)
    assert 0 < diff <= BF16_TOLERANCE + 0.02 * max(t.abs().max().item() for t in ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", sorted(CUDA_ONLY))
def test_cuda_backends_equal_eager_and_follow_new_weights(backend: str, nets) -> None:
    if backend.endswith("bf16") and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    first, second = (copy.deepcopy(n).to("cuda") for n in nets)
    forward = build_forward(first, "cuda", backend)
    for batch in (1, 5, 100, 3000):
        x = planes(batch, seed=batch)
        got = forward(x)
        assert got[0].device.type == "cpu" and got[0].shape == (batch, 4672)
        ref = tuple(t.cpu() for t in eager(first, x.cuda()))
        assert max_diff(got, ref) <= forward.tolerance + forward.rtol * ref[0].abs().max().item()
    forward.load_state_dict(second.state_dict())
    x = planes(40)
    ref = tuple(t.cpu() for t in eager(second, x.cuda()))
    assert max_diff(forward(x), ref) <= forward.tolerance + forward.rtol * ref[0].abs().max().item()
