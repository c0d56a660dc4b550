"""The network call: one batch of leaves in, legal-move logits and values out.

This is the one place where the search layer runs the network, so an
inference backend can be swapped in here. On a GPU: bf16 autocast where
supported, the batch's pinned host buffers go to the device without
blocking, the legal logits are gathered on the device, and one small
pinned copy brings logits and values back together.
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import torch

from l4demons.encoding import NUM_PLANES, encode_positions, planes_from_positions
from l4demons.search.batch import BatchBuffers, LeafBatch


class Evaluator:
    """Runs the network on batches of leaves; counts what it evaluated."""

    def __init__(self, net: torch.nn.Module, device: str | torch.device = "cpu", backend: str | None = None) -> None:
        """``backend``: an :mod:`l4demons.inference` backend name; default ``auto`` on a CPU and the eager
        device path (with the gather on the device) on a GPU. Build it after ``torch.set_num_threads``."""
        from l4demons.inference import build_forward

        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        eager = backend == "eager" or (self.device.type != "cpu" and backend is None)
        self.forward = None if eager else build_forward(self.net, self.device, backend or "auto")
        """The fast forward pass (CPU-side outputs), or None: ``net`` itself, eager, on its device."""
        self.evaluations = 0
        self.calls = 0
        self.net_seconds = 0.0
        """Time inside network calls (copies, forward pass, gather); the rest of a search is the search."""
        use_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self._autocast = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
        )
        self._host: torch.Tensor | None = None  # pinned landing buffer for the answers (GPU only)
        self._threads = threading.local()  # which threads have run the network

    @torch.inference_mode()
    def warm_thread(self) -> None:
        """Run the network once on this thread unless it already has.

        A thread's first forward pass pays a one-time set-up (on this CPU
        30-50 ms for the tiny net, measured); run it before a search counts
        on its step times. Not counted as an evaluation.
        """
        if getattr(self._threads, "warm", False):
            return
        zeros = torch.zeros(1, NUM_PLANES, 8, 8, device=self.device)
        if self.forward is not None:
            self.forward(zeros)
        else:
            with self._autocast():
                self.net(zeros)
        self._threads.warm = True

    def load_state_dict(self, state_dict: dict) -> None:
        """New weights of the same network (the next cycle's), into the net and the backend."""
        self.net.load_state_dict(state_dict)
        if self.forward is not None:
            self.forward.load_state_dict(state_dict)

    def new_buffers(self, rows: int = 64) -> BatchBuffers:
        """Host buffers for batches this evaluator will run (pinned when the network is on a GPU)."""
        return BatchBuffers(rows, pin=self.device.type == "cuda")

    @torch.inference_mode()
    def evaluate(self, batch: LeafBatch) -> tuple[np.ndarray, np.ndarray]:
        """Every leaf's legal-move logits (concatenated in ``batch.flat``'s order) and values (W - L), float32.

        The arrays stay valid until the next call (on a GPU they are views of one pinned buffer).
        """
        t0 = time.perf_counter()
        if self.forward is not None:
            planes, flat = batch.planes, batch.flat
            policy, wdl = self.forward(planes)
        else:
            planes = batch.planes.to(self.device, non_blocking=True)
            flat = batch.flat.to(self.device, non_blocking=True)
            with self._autocast():
                policy, wdl = self.net(planes)
        logits = policy.float().reshape(-1).index_select(0, flat)
        wdl = torch.softmax(wdl.float(), dim=1)
        answer = torch.cat((logits, wdl[:, 0] - wdl[:, 2]))
        if answer.device.type != "cpu":
            answer = self._to_host(answer)
        out = answer.numpy()
        self.net_seconds += time.perf_counter() - t0
        self.evaluations += batch.rows
        self.calls += 1
        n = flat.shape[0]
        return out[:n], out[n:]

    @torch.inference_mode()
    def head_wdl(self, boards: list) -> list[tuple[float, float, float]]:
        """The network's own win/draw/loss probabilities for each board, side to move's view (one call, no search).

        The same forward pass as :meth:`evaluate` (the backend, or the eager net under its autocast), but
        the three outputs kept apart. Not counted in ``evaluations``: no search node comes of it.
        """
        planes = torch.from_numpy(planes_from_positions(encode_positions(boards)))
        if self.forward is not None:
            _, logits = self.forward(planes)
        else:
            with self._autocast():
                _, logits = self.net(planes.to(self.device))
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        return [(float(w), float(d), float(lo)) for w, d, lo in probs]

    def _to_host(self, answer: torch.Tensor) -> torch.Tensor:
        n = answer.shape[0]
        if self._host is None or self._host.shape[0] < n:
            self._host = torch.empty(max(n, 2 * (0 if self._host is None else self._host.shape[0])),
                                     dtype=torch.float32, pin_memory=True)
        host = self._host[:n]
        host.copy_(answer, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host
