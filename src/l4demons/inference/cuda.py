"""CUDA backends: bf16 autocast, and CUDA graphs captured per bucket of batch sizes, fed from pinned buffers."""

from __future__ import annotations

from typing import Callable

import torch

from l4demons.encoding import NUM_PLANES
from l4demons.inference.forward import BF16_TOLERANCE, Forward, Logits

DEFAULT_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
"""Batch sizes a CUDA graph is captured for; steps of at most 1.5x waste at most a third on padding."""


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


