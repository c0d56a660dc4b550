"""Several training processes on one machine (``torchrun``), one training run.

Under ``torchrun --nproc-per-node N -m l4demons train`` every rank runs the
same lifecycle with these rules:

- only rank 0 talks to the hub; it picks the commit to start from and the
  others load that same commit (:func:`broadcast`);
- each rank plays ``games / N`` self-play games on its own device, then the
  games are gathered so every rank holds the same replay window;
- the learner is wrapped in DistributedDataParallel (NCCL on GPUs, gloo on
  CPU); each rank samples its own batch, gradients are averaged, so the
  effective batch is ``batch_size * N`` at the same learning rate;
- a stop request on any rank stops all of them at the same step
  (:func:`any_rank`), so no rank waits forever in a collective;
- rank 0 measures Elo and commits, then sends its weights to the others
  (a merge with another trainer may have changed them).

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a
cheap no-op, so the single-process path has no special cases.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init_world(device: str) -> World:
    """Join the process group torchrun set up; a one-process world otherwise."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=60))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local)


def rank_device(device: str, world: World) -> str:
    """Each rank's own GPU under torchrun; the CPU stays the CPU."""
    if device == "cuda" and world.active:
        return f"cuda:{world.local_rank}"
    return device


def broadcast(obj: T, world: World) -> T:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if not world.active:
        return obj
    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_lists(items: list[T], world: World) -> list[T]:
    """Every rank's list, concatenated in rank order, on every rank."""
    if not world.active:
        return items
    out: list[list[T]] = [None] * world.size  # type: ignore[list-item]
    dist.all_gather_object(out, items)
    return [x for part in out for x in part]


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank when it is true on any rank."""
    if not world.active:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def sync_module(module: torch.nn.Module, world: World) -> None:
    """Copy rank 0's parameters and buffers into every rank's module."""
    if not world.active:
        return
    for t in list(module.state_dict().values()):
        dist.broadcast(t, src=0)


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def close_world(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()
