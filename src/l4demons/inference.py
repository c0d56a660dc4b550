"""The network call, as fast as each device allows, behind one interface.

``build_forward(net, device, backend)`` returns a :class:`Forward`::

    forward = build_forward(net, "cpu")             # backend="auto"
    policy, wdl = forward(planes)                    # [B, 20, 8, 8] -> [B, 4672], [B, 3]
    forward.load_state_dict(new_weights)             # next training cycle, same architecture

Inputs are float32 planes on any device; outputs are float32 logits on the
CPU (the search reads them there), owned by the caller. Every backend keeps
a plain eager copy of the network as its reference: when it is built and
after every weights change, a probe batch must give eager's logits within
the backend's :attr:`Forward.tolerance`, or the backend refuses to run.

Backends (``bench/inference.py`` measures them side by side):

- ``eager``: PyTorch as written; the reference.
- ``channels_last``: the same module with NHWC weights and inputs.
- ``compile``: ``torch.compile(dynamic=True)``: three compiles per process
  (batch 1, 2-15, 16+; seconds to a minute each on a CPU); new weights are
  copied into the parameters in place, so no recompile per cycle.
- ``onnxruntime`` / ``openvino``: the net exported to ONNX in memory and
  loaded into an ONNX Runtime session / an OpenVINO CPU model. Their graphs
  fold the weights in (batch norm into convolutions), so new weights mean a
  new export and session (``Forward.rebuild_seconds``; ~0.3 s for the small net).
- CUDA only: ``bf16`` (eager under bf16 autocast), ``cuda-graphs`` and
  ``cuda-graphs-bf16`` (one captured graph per bucket of batch sizes; a
  batch is padded up to the next bucket; weights are copied in place, which
  the graphs see). Host buffers are pinned and copies non-blocking.

``auto`` tries :data:`AUTO_ORDER` for the device and keeps the first backend
that builds and passes the probe; each one skipped costs one log line.
Thread counts: torch backends follow ``torch.set_num_threads`` of the
process; ONNX Runtime and OpenVINO take ``threads`` (default: torch's count).
"""

from __future__ import annotations

import abc
import copy
import importlib.util
import inspect
import io
import logging
import time
import warnings
from typing import Callable, Mapping

import torch
from torch import nn

from l4demons.encoding import NUM_PLANES, POLICY_SIZE

log = logging.getLogger(__name__)

Logits = tuple[torch.Tensor, torch.Tensor]

BACKENDS = ("eager", "channels_last", "compile", "onnxruntime", "openvino", "bf16", "cuda-graphs", "cuda-graphs-bf16")
"""Every backend name :func:`build_forward` accepts, besides ``auto``."""

CUDA_ONLY = frozenset({"bf16", "cuda-graphs", "cuda-graphs-bf16"})

AUTO_ORDER = {
    "cpu": ("onnxruntime", "openvino", "eager"),
    "cuda": ("cuda-graphs-bf16", "cuda-graphs", "bf16", "eager"),
}
"""What ``auto`` tries per device type, fastest first. CPU, measured by bench/inference.py: ONNX Runtime
1.45-1.7x eager's evals/s at batches 16-256 and 3x at batch 1 (small net, one thread), OpenVINO about
the same at large batches and slower at small ones. CUDA: not measured yet; graphs under bf16 by expectation."""

FP32_TOLERANCE = 1e-3
"""Max abs difference of any logit from eager's for the float32 backends (they measure ~1e-7)."""

BF16_TOLERANCE = 0.05
"""The same for bf16 backends, plus 2% of the largest logit (bf16 keeps 8 bits of mantissa)."""

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
"""Batch sizes a CUDA graph is captured for; steps of at most 1.5x waste at most a third on padding."""


class InferenceError(RuntimeError):
    """A backend that cannot run here; ``backend="auto"`` or ``"eager"`` always can."""


class UnknownBackendError(ValueError):
    """A backend name that is not one of :data:`BACKENDS` or ``auto``."""


def _probe_planes(device: torch.device) -> torch.Tensor:
    """A fixed batch of sparse 0/1 planes, like real positions."""
    gen = torch.Generator().manual_seed(20)
    return (torch.rand(5, NUM_PLANES, 8, 8, generator=gen) < 0.15).float().to(device)


class Forward(abc.ABC):
    """Planes ``[B, 20, 8, 8]`` float32 -> (policy logits ``[B, 4672]``, WDL logits ``[B, 3]``), float32 on CPU."""

    name: str = ""
    """The backend's name, one of :data:`BACKENDS`."""
    tolerance: float = FP32_TOLERANCE
    """Max abs difference from eager's logits this backend promises."""
    rtol: float = 0.0
    """Plus this fraction of the largest eager logit."""

    def __init__(self, net: nn.Module, device: torch.device, threads: int) -> None:
        self.device = device
        self.threads = threads
        raw = getattr(net, "module", net)  # unwrap DistributedDataParallel
        raw = getattr(raw, "_orig_mod", raw)  # unwrap torch.compile
        self.reference = copy.deepcopy(raw).to(device).eval().requires_grad_(False)
        """Plain eager copy: the numbers every backend must match."""
        self.rebuild_seconds = 0.0
        """Time the last weights change took (export and session for ONNX backends, a copy for the others)."""
        self._setup()
        self.check()

    def __call__(self, planes: torch.Tensor) -> Logits:
        planes = torch.as_tensor(planes)
        if planes.ndim != 4 or tuple(planes.shape[1:]) != (NUM_PLANES, 8, 8):
            raise ValueError(f"planes must be [B, {NUM_PLANES}, 8, 8], got {list(planes.shape)}")
        if planes.shape[0] == 0:
            return torch.empty(0, POLICY_SIZE), torch.empty(0, 3)
        with torch.inference_mode():
            return self._run(planes.float())

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """New weights of the same architecture, as cheaply as this backend allows; checked against eager."""
        t0 = time.perf_counter()
        self.reference.load_state_dict(state)
        self._load(state)
        self.rebuild_seconds = time.perf_counter() - t0
        log.debug("new weights in the %s backend in %.2f s", self.name, self.rebuild_seconds)
        self.check()

    def check(self) -> float:
        """Max abs logit difference from eager on the probe batch.

        :raises InferenceError: the difference exceeds this backend's tolerance.
        """
        x = _probe_planes(self.device)
        with torch.inference_mode():
            ref = [t.float().cpu() for t in self.reference(x)]
        diff, largest = 0.0, 0.0
        for g, r in zip(self(x), ref):
            finite = torch.isfinite(r)  # weights that give NaN in eager too are not the backend's fault
            if not torch.equal(torch.isfinite(g), finite):
                diff = float("inf")
            elif finite.any():
                diff = max(diff, (g[finite] - r[finite]).abs().max().item())
                largest = max(largest, r[finite].abs().max().item())
        limit = self.tolerance + self.rtol * largest
        if diff > limit:
            raise InferenceError(f"backend {self.name} differs from eager by {diff:.3g} (> {limit:.3g}): use eager")
        return diff

    def _setup(self) -> None:
        """Build what the backend needs from ``self.reference`` (called once)."""

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        """Bring the backend to ``self.reference``'s new weights (default: it reads them in place)."""

    @abc.abstractmethod
    def _run(self, planes: torch.Tensor) -> Logits:
        """The network on a non-empty float32 batch, under inference mode."""


def _to_host(policy: torch.Tensor, wdl: torch.Tensor) -> Logits:
    return policy.float().cpu(), wdl.float().cpu()


class Eager(Forward):
    name = "eager"

    def _run(self, planes: torch.Tensor) -> Logits:
        return _to_host(*self.reference(planes.to(self.device)))


class ChannelsLast(Forward):
    name = "channels_last"

    def _setup(self) -> None:
        self.module = copy.deepcopy(self.reference).to(memory_format=torch.channels_last)

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)  # copy_ keeps each weight's NHWC layout

    def _run(self, planes: torch.Tensor) -> Logits:
        x = planes.to(self.device).contiguous(memory_format=torch.channels_last)
        return _to_host(*self.module(x))


class Compiled(Forward):
    name = "compile"

    def _setup(self) -> None:
        # Parameters are graph inputs (not frozen constants), so copying new weights in
        # place is seen by the compiled code without a recompile. Batch sizes compile
        # three times: 1, 2-15 and 16 or more (PyTorch's convolution specialises them).
        self.module = copy.deepcopy(self.reference)
        self.fn = torch.compile(self.module, dynamic=True)
        t0 = time.perf_counter()
        self(_probe_planes(self.device))
        log.info("torch.compile of the network took %.1f s", time.perf_counter() - t0)

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)

    def _run(self, planes: torch.Tensor) -> Logits:
        # Always a fresh inference-mode tensor: the compiled code is guarded on the input's
        # kind, and a caller's ordinary tensor would otherwise compile a second copy.
        return _to_host(*self.fn(planes.to(self.device).clone()))


def onnx_bytes(net: nn.Module, device: torch.device) -> bytes:
    """The network as an ONNX model with a dynamic batch, in memory.

    The TorchScript exporter takes ~0.3 s; where a PyTorch release has
    dropped it, the torch.export one (needs ``onnxscript``, several seconds).
    """
    if importlib.util.find_spec("onnx") is None:
        raise InferenceError("the ONNX export needs the onnx package (pip install onnx)")
    example = _probe_planes(device)
    names = {"input_names": ["planes"], "output_names": ["policy", "wdl"]}
    # Before PyTorch 2.5 there is no `dynamo` argument and the TorchScript exporter is the only one.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        try:
            buf = io.BytesIO()
            axes = {"planes": {0: "batch"}, "policy": {0: "batch"}, "wdl": {0: "batch"}}
            torch.onnx.export(net, (example,), buf, dynamic_axes=axes, **legacy, **names)
            return buf.getvalue()
        except (TypeError, AttributeError, NotImplementedError, RuntimeError) as e:
            if not legacy:
                raise
            log.info("TorchScript ONNX export unavailable (%s); torch.export takes seconds per export", e)
        batch = torch.export.Dim("batch", min=1, max=65536)
        program = torch.onnx.export(net, (example,), dynamo=True, dynamic_shapes={"planes": {0: batch}}, verbose=False,
                                    **names)
        return program.model_proto.SerializeToString()


class _OnnxForward(Forward):
    """A runtime fed the exported graph; new weights mean a new export and a new session."""

    package = ""

    def _setup(self) -> None:
        if importlib.util.find_spec(self.package) is None:
            raise InferenceError(f"{self.package} is not installed (pip install {self.package})")
        if self.device.type != "cpu":
            raise InferenceError(f"the {self.name} backend runs on the CPU only")
        self._open(onnx_bytes(self.reference, self.device))

    def _load(self, state: Mapping[str, torch.Tensor]) -> None:
        self._setup()

    @abc.abstractmethod
    def _open(self, model: bytes) -> None:
        """Load the ONNX model into the runtime, ``self.threads`` intra-op threads."""


class OnnxRuntime(_OnnxForward):
    name = package = "onnxruntime"

    def _open(self, model: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def _run(self, planes: torch.Tensor) -> Logits:
        policy, wdl = self.session.run(None, {"planes": planes.cpu().contiguous().numpy()})
        return torch.from_numpy(policy), torch.from_numpy(wdl)


class OpenVino(_OnnxForward):
    name = package = "openvino"

    def _open(self, model: bytes) -> None:
        import openvino as ov

        # f32 on purpose: OpenVINO defaults to bf16 on CPUs that have it.
        config = {"INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "f32"}
        core = ov.Core()
        self.request = core.compile_model(core.read_model(model), "CPU", config).create_infer_request()

    def _run(self, planes: torch.Tensor) -> Logits:
        out = self.request.infer({0: planes.cpu().contiguous().numpy()}, share_inputs=True)  # outputs are copies
        return torch.from_numpy(out[0]), torch.from_numpy(out[1])


class _HostStaging:
    """Pinned host buffers, grown as needed, for non-blocking copies to and from a GPU (no-op on the CPU)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.buffers: dict[str, torch.Tensor] = {}

    def _pinned(self, key: str, like: torch.Tensor) -> torch.Tensor:
        buf = self.buffers.get(key)
        if buf is None or buf.shape[0] < like.shape[0]:
            rows = max(like.shape[0], 2 * (0 if buf is None else buf.shape[0]))
            buf = self.buffers[key] = torch.empty((rows, *like.shape[1:]), pin_memory=True)
        return buf[: like.shape[0]]

    def stage(self, planes: torch.Tensor) -> torch.Tensor:
        """``planes`` where a non-blocking copy to the device can start from (pinned host memory)."""
        if self.device.type != "cuda" or planes.device.type == "cuda":
            return planes
        return self._pinned("planes", planes).copy_(planes)

    def download(self, policy: torch.Tensor, wdl: torch.Tensor) -> Logits:
        """Float32 copies on the CPU, owned by the caller."""
        if self.device.type != "cuda":
            return policy.float().cpu(), wdl.float().cpu()
        host = [self._pinned(key, t).copy_(t, non_blocking=True) for key, t in (("policy", policy), ("wdl", wdl))]
        torch.cuda.current_stream(self.device).synchronize()
        return host[0].clone(), host[1].clone()


class _Staged(Forward):
    """The reference network behind pinned host buffers, optionally under bf16 autocast."""

    bf16 = False

    def _setup(self) -> None:
        self.staging = _HostStaging(self.device)

    def _forward(self, x: torch.Tensor) -> Logits:
        # No autocast weight cache: under a CUDA graph the casts are recorded, so new weights are seen.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            policy, wdl = self.reference(x)
        return policy.float(), wdl.float()


class Bf16(_Staged):
    name = "bf16"
    bf16 = True
    tolerance = BF16_TOLERANCE
    rtol = 0.02

    def _run(self, planes: torch.Tensor) -> Logits:
        return self.staging.download(*self._forward(self.staging.stage(planes).to(self.device, non_blocking=True)))


Runner = Callable[[torch.Tensor], Logits]


class Bucketed(_Staged):
    """Each batch runs at the next of a few fixed sizes (padded); larger ones are split.

    :meth:`_runner` makes the function for one size; eval-mode layers treat
    rows independently, so padding rows change no real row's logits. On the
    CPU this is only a harness that tests the bucketing with eager runners.
    """

    name = "bucketed"
    buckets: tuple[int, ...] = DEFAULT_BUCKETS

    def _setup(self) -> None:
        super()._setup()
        self.runners: dict[int, Runner] = {}

    def bucket(self, n: int) -> int:
        """The size a batch of ``n`` rows runs at (``n`` at most the largest bucket)."""
        return next(b for b in self.buckets if b >= n)

    def _runner(self, size: int) -> Runner:
        """A function of at most ``size`` rows (any device) -> float32 logits of those rows on the device."""

        def run(x: torch.Tensor) -> Logits:
            padded = torch.zeros((size, *x.shape[1:]), device=self.device)
            padded[: x.shape[0]] = x
            policy, wdl = self._forward(padded)
            return policy[: x.shape[0]], wdl[: x.shape[0]]

        return run

    def _run(self, planes: torch.Tensor) -> Logits:
        parts = []
        for chunk in planes.split(self.buckets[-1]):
            size = self.bucket(chunk.shape[0])
            if size not in self.runners:
                self.runners[size] = self._runner(size)
            parts.append(self.staging.download(*self.runners[size](self.staging.stage(chunk))))
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p for p, _ in parts]), torch.cat([w for _, w in parts])


class CudaGraphs(Bucketed):
    name = "cuda-graphs"

    def _setup(self) -> None:
        super()._setup()
        self.pool = None
        with torch.cuda.device(self.device):  # capture and replay on this GPU, whichever is current
            for size in sorted(self.buckets, reverse=True):  # largest first: the smaller graphs share its pool
                self.runners[size] = self._runner(size)

    def _run(self, planes: torch.Tensor) -> Logits:
        with torch.cuda.device(self.device):
            return super()._run(planes)

    def _runner(self, size: int) -> Runner:
        static_in = torch.zeros(size, NUM_PLANES, 8, 8, device=self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(2):  # warm-up: cuDNN picks its kernels outside the capture
                self._forward(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph, pool=self.pool):
            policy, wdl = self._forward(static_in)
        self.pool = graph.pool()

        def run(x: torch.Tensor) -> Logits:
            n = x.shape[0]
            static_in[:n].copy_(x, non_blocking=True)  # rows past n keep older positions: harmless
            graph.replay()
            return policy[:n], wdl[:n]

        return run


class CudaGraphsBf16(CudaGraphs):
    name = "cuda-graphs-bf16"
    bf16 = True
    tolerance = BF16_TOLERANCE
    rtol = 0.02


_CLASSES: dict[str, type[Forward]] = {
    c.name: c for c in (Eager, ChannelsLast, Compiled, OnnxRuntime, OpenVino, Bf16, CudaGraphs, CudaGraphsBf16)
}


def build_forward(net: nn.Module, device: str | torch.device = "cpu", backend: str = "auto",
                  threads: int | None = None) -> Forward:
    """The network call for ``device`` with ``backend`` (``auto``: the fastest that works here).

    ``net`` is copied (the caller's module is never touched); ``threads`` is
    for ONNX Runtime and OpenVINO (default: ``torch.get_num_threads()``).

    :raises UnknownBackendError: ``backend`` is not ``auto`` or one of :data:`BACKENDS`.
    :raises InferenceError: the backend asked for cannot run here.
    """
    device = torch.device(device)
    threads = threads or torch.get_num_threads()
    if backend != "auto":
        if backend not in _CLASSES:
            raise UnknownBackendError(f"unknown inference backend {backend!r}: use auto or one of {', '.join(BACKENDS)}")
        return _build(backend, net, device, threads)
    *candidates, last = AUTO_ORDER.get(device.type, ("eager",))
    for name in candidates:
        try:
            return _build(name, net, device, threads)
        except InferenceError as e:
            log.info("inference backend %s skipped: %s", name, e)
    return _build(last, net, device, threads)


def _build(name: str, net: nn.Module, device: torch.device, threads: int) -> Forward:
    if name in CUDA_ONLY and device.type != "cuda":
        raise InferenceError(f"the {name} backend runs on CUDA only: on {device.type} use auto or eager")
    if name.endswith("bf16") and not torch.cuda.is_bf16_supported():
        raise InferenceError(f"this GPU has no bf16: use cuda-graphs or eager instead of {name}")
    t0 = time.perf_counter()
    try:
        forward = _CLASSES[name](net, device, threads)
    except InferenceError:
        raise
    except Exception as e:  # noqa: BLE001 - exporters and runtimes fail in many ways; eager stays
        raise InferenceError(f"backend {name} failed to build ({type(e).__name__}: {str(e)[:160]})") from e
    forward.rebuild_seconds = time.perf_counter() - t0
    log.debug("inference backend %s on %s built in %.2f s", name, device, forward.rebuild_seconds)
    return forward
