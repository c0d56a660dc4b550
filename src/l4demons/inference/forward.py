"""The interface every inference backend implements, and the check that keeps it honest.

:class:`Forward` holds a plain eager copy of the network as its reference;
after it is built and after every weights change a fixed probe batch must
give eager's logits within the backend's tolerance, or it refuses to run.
"""

from __future__ import annotations

import abc
import copy
import logging
import time
from typing import Mapping

import torch
from torch import nn

from l4demons.encoding import NUM_PLANES, POLICY_SIZE

log = logging.getLogger(__name__)

Logits = tuple[torch.Tensor, torch.Tensor]

FP32_TOLERANCE = 1e-3
"""Max abs difference of any logit from eager's for the float32 backends (they measure ~1e-7)."""

BF16_TOLERANCE = 0.05
"""The same for bf16 backends, plus 2% of the largest logit (bf16 keeps 8 bits of mantissa)."""


class InferenceError(RuntimeError):
    """A backend that cannot run here; ``backend="auto"`` or ``"eager"`` always can."""


class UnknownBackendError(ValueError):
    """A backend name that is not one of :data:`BACKENDS` or ``auto``."""


def probe_planes(device: torch.device) -> torch.Tensor:
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
        x = probe_planes(self.device)
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


def to_host(policy: torch.Tensor, wdl: torch.Tensor) -> Logits:
    return policy.float().cpu(), wdl.float().cpu()


