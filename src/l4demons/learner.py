"""The learner: backprop steps on the replay window, and the validation loss.

Loss per position = policy cross-entropy against the search's improved
policy (illegal moves masked out, weighted by whether the position got a
full search) + cross-entropy of the WDL head against the game result.
Weight decay comes from AdamW. The learning rate warms up linearly, then
stays constant; the optimizer, the scheduler and the step counter are part
of the training state, so a resumed run continues the same schedule.

Under DistributedDataParallel each rank samples its own batch from its own
RNG stream; gradients are averaged, so the effective batch is
``batch_size * world_size`` at the same learning rate.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from l4demons.encoding import POLICY_SIZE
from l4demons.replay import Batch, ReplayWindow


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    batch_size: int = 256
    """Positions per step (per rank under DDP)."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    weight_decay: float = 1e-3
    """Decoupled weight decay (AdamW)."""
    warmup_steps: int = 100
    """Linear warm-up from lr/10 over this many steps."""
    value_weight: float = 0.25
    """Weight of the value loss beside the policy loss."""
    value_target_mix: float = 0.3
    """Share of the search's own value in the value target (the rest is the game result).

    A game gives all its positions one label; with few games the value head
    learns which game a position came from. The search value (Lc0's
    q-ratio) differs per position and keeps the head honest.
    """

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if not 0.0 <= self.value_target_mix <= 1.0:
            raise ValueError("value_target_mix must be in [0, 1]")


@dataclasses.dataclass(frozen=True)
class Losses:
    policy: float
    value: float

    @property
    def total(self) -> float:
        return self.policy + self.value


def value_target(batch: Batch, mix: float) -> np.ndarray:
    """WDL target ``[B, 3]``: the game result, with ``mix`` of the search value as (max(q,0), 1-|q|, max(-q,0))."""
    if mix == 0.0:
        return batch.wdl
    q = np.clip(batch.search_value, -1.0, 1.0)
    from_q = np.stack([np.maximum(q, 0.0), 1.0 - np.abs(q), np.maximum(-q, 0.0)], axis=1)
    return ((1.0 - mix) * batch.wdl + mix * from_q).astype(np.float32)


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device``: through pinned memory and a non-blocking copy on CUDA."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def batch_losses(
    net: torch.nn.Module, batch: Batch, device: torch.device, value_mix: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(policy loss, value loss) of one batch, as tensors with gradients.

    The sparse policy target (legal moves only, about 1% of the 4672
    entries) crosses to the device as is and is scattered into the dense
    target and the legal-move mask there.
    """
    n = len(batch)
    planes = _to_device(batch.planes, device)
    index = _to_device(batch.policy_index, device)
    target = torch.zeros(n * POLICY_SIZE, device=device).index_put_((index,), _to_device(batch.policy_prob, device))
    legal = torch.zeros(n * POLICY_SIZE, dtype=torch.bool, device=device).index_fill_(0, index, True)
    weight = _to_device(batch.policy_weight, device)
    wdl = _to_device(value_target(batch, value_mix), device)
    policy_logits, value_logits = net(planes)
    logp = F.log_softmax(policy_logits.float().masked_fill(~legal.view(n, POLICY_SIZE), -1e9), dim=1)
    per_pos = -(target.view(n, POLICY_SIZE) * logp).sum(dim=1)
    policy_loss = (per_pos * weight).sum() / weight.sum().clamp(min=1.0)
    value_loss = F.cross_entropy(value_logits.float(), wdl)
    return policy_loss, value_loss


class Learner:
    """Owns the optimizer and the schedule of one (possibly DDP-wrapped) network."""

    def __init__(self, net: torch.nn.Module, cfg: LearnerConfig, device: str | torch.device = "cpu") -> None:
        self.net = net
        self.cfg = cfg
        self.device = torch.device(device)
        self.step = 0
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        warm = max(1, cfg.warmup_steps)
        # bf16 on GPUs that have it: no loss scaling needed, and the losses are computed in float32.
        bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self._autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: 0.1 + 0.9 * min(1.0, s / warm)
        )

    def train_steps(
        self,
        replay: ReplayWindow,
        steps: int,
        rng: np.random.Generator,
        on_step: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Losses:
        """Up to ``steps`` optimizer steps; mean losses of the steps taken.

        The losses are summed on the device and read once at the end: no
        step waits for the accelerator to report back. ``on_step(step)`` is
        called after each step (a progress bar).
        """
        self.net.train()
        total = torch.zeros(2, device=self.device)
        done = 0
        for _ in range(steps):
            if should_stop():
                break
            batch = replay.sample(self.cfg.batch_size, rng)
            with self._autocast():
                p, v = batch_losses(self.net, batch, self.device, self.cfg.value_target_mix)
            loss = p + self.cfg.value_weight * v
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            done += 1
            total += torch.stack([p.detach(), v.detach()])
            if on_step is not None:
                on_step(self.step)
        self.net.eval()
        pol, val = (total / max(done, 1)).tolist()
        return Losses(pol, val)

    @torch.no_grad()
    def validation_losses(self, replay: ReplayWindow) -> Losses | None:
        """Mean losses over the held-out games; None when there are none yet."""
        self.net.eval()
        batches = replay.validation_batches(self.cfg.batch_size)
        if not batches:
            return None
        total = torch.zeros(2, device=self.device)
        n = 0
        for b in batches:
            p, v = batch_losses(self.net, b, self.device, self.cfg.value_target_mix)
            total += torch.stack([p, v]) * len(b)
            n += len(b)
        pol, val = (total / n).tolist()
        return Losses(pol, val)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
