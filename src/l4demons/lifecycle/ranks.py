"""DDP ranks kept level: rank 0 starts and commits the run, the other ranks take its state.

Under ``torchrun`` every rank plays its share of the games and takes
backprop steps on one DistributedDataParallel net; only rank 0 reads the
hub, measures and commits. :func:`share_start` gives every rank rank 0's
starting point (weights, counters, metrics, replay window, head, RNG) and
wraps the learner's net in DDP; :func:`share_after_commit` brings them
level again after rank 0 committed, and perhaps merged another trainer's
commit. One process: both are no-ops.
"""

from __future__ import annotations

import torch

from l4demons.distributed import any_rank, broadcast, sync_module
from l4demons.lifecycle.run_state import RunState
from l4demons.replay import ReplayWindow


def share_start(run: RunState) -> None:
    """Give every rank rank 0's starting point, and wrap the learner's net in DDP."""
    if not run.world.active:
        return
    main = run.world.is_main
    payload = broadcast(
        (run.weights(), run.net_cfg, run.state, run.metrics, run.replay.chunks, run.head,
         run.rng.bit_generator.state) if main else None,
        run.world,
    )
    if not main:
        state_dict, net_cfg, run.state, run.metrics, chunks, run.head, rng_state = payload
        run.build_net(net_cfg, state_dict)
        if run.state.learner:
            run.learner.load_state_dict(run.state.learner)
        run.rng.bit_generator.state = rng_state
        for chunk in chunks:
            run.replay.add(chunk)
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(run.device).index] if run.device.startswith("cuda") else None
    run.learner.net = DistributedDataParallel(run.net, device_ids=ids)


def share_after_commit(run: RunState) -> None:
    """Rank 0 committed (and may have merged): bring the other ranks level."""
    if not run.world.active:
        return
    run.state, run.metrics, run.head = broadcast((run.state, run.metrics, run.head), run.world)
    sync_module(run.net, run.world)
    names = broadcast(run.replay.names, run.world)
    if any_rank(names != run.replay.names, run.world):
        chunks = broadcast(run.replay.chunks, run.world)
        run.replay = ReplayWindow(run.replay.capacity, run.replay.played_on_weight)
        for chunk in chunks:
            run.replay.add(chunk)
