"""One network call for many leaves, from however many searches."""

from __future__ import annotations

import contextlib
import time
from typing import Iterable, Protocol

import numpy as np
import torch

from l4demons.encoding import planes_from_positions
from l4demons.search.tree import Leaf


class Search(Protocol):
    done: bool

    def collect(self) -> list[Leaf]: ...

    def deliver(self, leaf: Leaf, logits: np.ndarray, value: float) -> None: ...


class Evaluator:
    """Runs the network on packed positions; counts what it evaluated.

    On CUDA it evaluates under bf16 autocast (where supported) — the search
    needs priors and values, not the last bits of precision.
    """

    def __init__(self, net: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.evaluations = 0
        self.calls = 0
        self.net_seconds = 0.0
        """Time inside the network's forward pass (the rest of a search is Python)."""
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self._autocast = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
        )

    @torch.inference_mode()
    def evaluate(self, leaves: list[Leaf]) -> tuple[list[np.ndarray], np.ndarray]:
        """Policy logits over each leaf's legal moves, and values (W - L)."""
        records = np.stack([leaf.record for leaf in leaves])
        planes = torch.from_numpy(planes_from_positions(records)).to(self.device, non_blocking=True)
        t0 = time.perf_counter()
        with self._autocast():
            policy, wdl = self.net(planes)
        wdl = torch.softmax(wdl.float(), dim=1).cpu().numpy()
        policy = policy.float().cpu().numpy()
        lengths = [len(leaf.indices) for leaf in leaves]
        rows = np.repeat(np.arange(len(leaves)), lengths)
        cols = np.fromiter((i for leaf in leaves for i in leaf.indices), dtype=np.int64, count=len(rows))
        flat = policy[rows, cols]
        values = wdl[:, 0] - wdl[:, 2]
        self.net_seconds += time.perf_counter() - t0
        self.evaluations += len(leaves)
        self.calls += 1
        return np.split(flat, np.cumsum(lengths)[:-1]), values


def run_searches(searches: Iterable[Search], evaluator: Evaluator) -> None:
    """Drive searches to completion, batching all their leaves per network call."""
    active = list(searches)
    while active:
        leaves = [leaf for s in active for leaf in s.collect()]
        if leaves:
            logits, values = evaluator.evaluate(leaves)
            for leaf, lg, v in zip(leaves, logits, values):
                leaf.owner.deliver(leaf, lg, float(v))
        active = [s for s in active if not s.done]
