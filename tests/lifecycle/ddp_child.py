"""Run under torchrun by test_ddp.py: one lifecycle cycle, or learner steps on fixed data.

Each rank writes what the test compares to ``<out>/rank<R>.pt``. The single-process
run of :func:`learn` (world size 1, no process group) is called by the test itself.
"""

import os
import sys

import numpy as np
import torch

from l4demons.hub.local import LocalHub
from l4demons.learner import Learner, LearnerConfig
from l4demons.lifecycle import TrainConfig, Trainer
from l4demons.network import NetConfig, build_network
from l4demons.replay import ReplayChunk, ReplayWindow
from l4demons.selfplay import SelfPlayConfig


def cycle(out: str, hub: str, rank: int) -> None:
    cfg = TrainConfig(cycles=1, games=4, cycle_seconds=0, steps=4, net="tiny", workers=1, elo_seconds=0, device="cpu",
                      selfplay=SelfPlayConfig(simulations=4, fast_simulations=2, max_plies=30, concurrent_games=4),
                      learner=LearnerConfig(batch_size=32))
    trainer = Trainer(cfg, LocalHub(hub))
    trainer.run()
    torch.save({k: v for k, v in trainer.run_state.net.state_dict().items()}, f"{out}/rank{rank}.pt")


def learn(out: str, chunk: str, rank: int, world: int) -> None:
    """Fixed data, DDP (world > 1, under torchrun) vs one process with the same total batch."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if world > 1:
        dist.init_process_group("gloo")
    window = ReplayWindow()
    window.add(ReplayChunk.load(chunk))
    net = build_network(NetConfig.from_name("tiny"), seed=0)
    learner = Learner(net, LearnerConfig(batch_size=64 // world, lr=2e-3, warmup_steps=1))
    if world > 1:
        learner.net = DistributedDataParallel(net)
    losses = [learner.train_steps(window, 1, np.random.default_rng([step, rank])) for step in range(40)]
    torch.save({"losses": [l.total for l in losses], "value_losses": [l.value for l in losses],
                "weights": net.state_dict()}, f"{out}/rank{rank}.pt")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(1)
    if mode == "cycle":
        cycle(out, sys.argv[3], rank)
    else:
        learn(out, sys.argv[3], rank, int(os.environ.get("WORLD_SIZE", "1")))
