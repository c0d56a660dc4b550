"""The training losses and their targets, for the learner (self-play and the warm start alike) and the benches.

Loss per position (:func:`position_losses`) = policy cross-entropy against
the search's improved policy (illegal moves masked out; weight 1 where the
position got a full search, else 0) + cross-entropy of the WDL head against
:func:`value_target` (the game result mixed with the search's value; a
teacher's row takes the teacher's value; weight ``played_on_weight`` for
positions played on after the game was decided) +, for a net with the
material head (``NetConfig.material_head``), the squared error of its
prediction of the material lead a few plies later (``replay.material_ahead``;
self-play rows only). :func:`batch_losses` takes the weighted means.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from l4demons.replay import Batch
from l4demons.replay_device import TrainBatch


MATERIAL_SCALE = 8.0
"""Pawns per unit of the material head's target (a lead of 16 pawns or more is 2)."""


@dataclasses.dataclass(frozen=True)
class Losses:
    """Mean losses. ``total`` (the commits' "Loss") is policy + value, comparable whatever the net's heads;
    ``material`` is the material head's loss (0 without it)."""

    policy: float
    value: float
    material: float = 0.0

    @property
    def total(self) -> float:
        return self.policy + self.value


def value_target(batch: Batch, mix: float) -> np.ndarray:
    """WDL target ``[B, 3]``: the game result, with ``mix`` of the search value as (max(q,0), 1-|q|, max(-q,0)).

    A teacher's row takes it wholly from its search value, the teacher's q.
    """
    q = np.clip(batch.search_value, -1.0, 1.0)
    from_q = np.stack([np.maximum(q, 0.0), 1.0 - np.abs(q), np.maximum(-q, 0.0)], axis=1)
    m = np.where(batch.teacher, np.float32(1.0), np.float32(mix))[:, None]
    return ((1 - m) * batch.wdl + m * from_q).astype(np.float32)


def value_target_tensor(batch: TrainBatch, mix: float) -> torch.Tensor:
    """:func:`value_target` on the device, ``[B, 3]``."""
    q = batch.search_value.clamp(-1.0, 1.0)
    from_q = torch.stack([q.clamp(min=0.0), 1.0 - q.abs(), (-q).clamp(min=0.0)], dim=1)
    m = torch.where(batch.teacher, 1.0, mix).unsqueeze(1)
    return (1 - m) * batch.wdl + m * from_q


def position_losses(net: torch.nn.Module, batch: TrainBatch, value_mix: float = 0.0,
                    played_on_weight: float = 1.0, material: bool = False) -> tuple[torch.Tensor, ...]:
    """``[B]`` each: policy loss, its weight, value loss, its weight, material loss, its weight.

    A position's policy weight is 1 where its policy came from a full search,
    else 0; its value weight is ``played_on_weight`` where it was played on
    after the game was decided, else 1. With ``material`` (a net with the
    material head) the material loss is its squared error on self-play rows
    (weight 1; a teacher's row, whose positions need not follow each other, 0);
    without, both are 0.
    """
    if material:
        policy_logits, value_logits, predicted = net(batch.planes, material=True)
        target = (batch.material / MATERIAL_SCALE).clamp(-2.0, 2.0)
        material_loss = (predicted.float() - target) ** 2
        material_weight = (~batch.teacher).float()
    else:
        policy_logits, value_logits = net(batch.planes)
        material_loss = material_weight = torch.zeros(len(batch), device=batch.planes.device)
    logp = F.log_softmax(policy_logits.float().masked_fill(~batch.legal, -1e9), dim=1)
    policy = -(batch.policy * logp).sum(dim=1)
    value = F.cross_entropy(value_logits.float(), value_target_tensor(batch, value_mix), reduction="none")
    return (policy, batch.policy_weight, value, torch.where(batch.played_on, played_on_weight, 1.0),
            material_loss, material_weight)


def _weighted_mean(loss: torch.Tensor, weight: torch.Tensor, floor: float) -> torch.Tensor:
    """``sum(loss * weight) / max(sum(weight), floor)``: 0 where nothing has weight."""
    return (loss * weight).sum() / weight.sum().clamp(min=floor)


# Floors of the weight sums: a batch without a full search has no policy loss (weights are 0 or 1, so a
# floor of 1 changes nothing else); the value weights can all be small but are never all 0 unless
# played_on_value_weight is; a batch of teacher rows has no material loss.
_POLICY_FLOOR, _VALUE_FLOOR, _MATERIAL_FLOOR = 1.0, 1e-6, 1.0


def batch_losses(net: torch.nn.Module, batch: TrainBatch, value_mix: float = 0.0,
                 played_on_weight: float = 1.0, material: bool = False) -> tuple[torch.Tensor, ...]:
    """(policy loss, value loss, material loss) of one batch, weighted means, as tensors with gradients."""
    p, pw, v, vw, m, mw = position_losses(net, batch, value_mix, played_on_weight, material)
    return (_weighted_mean(p, pw, _POLICY_FLOOR), _weighted_mean(v, vw, _VALUE_FLOOR),
            _weighted_mean(m, mw, _MATERIAL_FLOOR))


def summed_losses(net: torch.nn.Module, batch: TrainBatch, value_mix: float = 0.0,
                  played_on_weight: float = 1.0, material: bool = False) -> torch.Tensor:
    """``[6]``: each of :func:`position_losses`' losses times its weight, then the weight, summed over the batch."""
    losses = position_losses(net, batch, value_mix, played_on_weight, material)
    return torch.stack([t.sum() for loss, w in zip(losses[::2], losses[1::2]) for t in (loss * w, w)])


def mean_losses(sums: torch.Tensor) -> Losses:
    """The weighted means of :func:`summed_losses` added up over batches (floored as :func:`batch_losses`)."""
    pol, pw, val, vw, mat, mw = sums.tolist()
    return Losses(pol / max(pw, _POLICY_FLOOR), val / max(vw, _VALUE_FLOOR), mat / max(mw, _MATERIAL_FLOOR))
