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

Modules: ``forward`` (the interface and its check against eager), ``cpu``
(the backends any device runs), ``cuda`` (the CUDA-only ones); this one
picks among them.
"""

from __future__ import annotations

import logging
import time

import torch
from torch import nn

from l4demons.inference.cpu import ChannelsLast, Compiled, Eager, OnnxRuntime, OpenVino, onnx_bytes
from l4demons.inference.cuda import DEFAULT_BUCKETS, Bf16, Bucketed, CudaGraphs, CudaGraphsBf16
from l4demons.inference.forward import BF16_TOLERANCE, FP32_TOLERANCE, Forward, InferenceError, Logits, \
    UnknownBackendError

__all__ = ["AUTO_ORDER", "BACKENDS", "BF16_TOLERANCE", "CUDA_ONLY", "DEFAULT_BUCKETS", "FP32_TOLERANCE", "Bf16",
           "Bucketed", "ChannelsLast", "Compiled", "CudaGraphs", "CudaGraphsBf16", "Eager", "Forward",
           "InferenceError", "Logits", "OnnxRuntime", "OpenVino", "UnknownBackendError", "build_forward",
           "onnx_bytes"]

log = logging.getLogger(__name__)

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
