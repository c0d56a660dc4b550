"""The state a training run owns, in one place: what every part of the run reads and writes.

A run is a loop (:mod:`.trainer`) and parts that each take this state:
starting or resuming it (:mod:`.start`), committing it (:mod:`.commit`),
measuring its nets (:mod:`.measure`), and bringing DDP ranks level
(:mod:`.ranks`). Nothing reaches into another part; what they share is
here, named:

- the run's fixed surroundings: configuration, hub, stop flag, device, work
  folder, outbox of commits waiting on disk, the DDP world;
- what it trains: the network and its config, the learner, the training
  state that goes into every commit (counters, RNG, Elo pool), the metrics
  rows and the replay window;
- where it stands on the hub: the head it builds on and the weights at that
  head (the base of a merge when another trainer commits first).

The warm start (:mod:`l4demons.pretrain.run`) builds the same state and
uses the same parts.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch

from l4demons.checkpoint import TrainingState
from l4demons.devices import resolve_device
from l4demons.distributed import World
from l4demons.hub import Hub, open_hub
from l4demons.learner import Learner
from l4demons.lifecycle.common import TrainError
from l4demons.lifecycle.config import TrainConfig
from l4demons.network import NetConfig, atomic_torch_save, build_network, weights_dict
from l4demons.outbox import Outbox
from l4demons.replay import ReplayWindow
from l4demons.signals import StopFlag


@dataclasses.dataclass(eq=False)
class RunState:
    """One training run's state; see the module docstring."""

    cfg: TrainConfig
    hub: Hub
    stop: StopFlag
    device: str
    workdir: Path
    outbox: Outbox
    rng: np.random.Generator
    replay: ReplayWindow
    world: World = dataclasses.field(default_factory=World)
    head: str | None = None
    """The hub commit this run builds on (None: an empty hub)."""
    net_cfg: NetConfig | None = None
    net: torch.nn.Module | None = None
    learner: Learner | None = None
    base_state: dict | None = None
    """Weights at ``head``: the base of a merge (see :mod:`l4demons.merge`)."""
    state: TrainingState = dataclasses.field(default_factory=TrainingState)
    metrics: list[dict] = dataclasses.field(default_factory=list)

    @classmethod
    def open(cls, cfg: TrainConfig, hub: Hub | None = None, stop: StopFlag | None = None) -> RunState:
        """A run before its start: the hub opened, a fresh work folder, nothing trained yet."""
        try:
            device = resolve_device(cfg.device)
        except ValueError as e:
            raise TrainError(str(e)) from e
        hub = hub if hub is not None else open_hub(cfg.hub)
        return cls(cfg=cfg, hub=hub, stop=stop or StopFlag(), device=device,
                   workdir=Path(tempfile.mkdtemp(prefix="l4demons-")), outbox=Outbox(hub.uri),
                   rng=np.random.default_rng(cfg.seed),
                   replay=ReplayWindow(cfg.window.min_positions, cfg.learner.played_on_value_weight))

    def build_net(self, net_cfg: NetConfig, state_dict: dict | None = None, seed: int | None = None) -> None:
        """A network (random from ``seed``, or ``state_dict``) and a fresh learner for it."""
        self.net_cfg = net_cfg
        self.net = build_network(net_cfg, seed).to(self.device)
        if state_dict is not None:
            self.net.load_state_dict(state_dict)
        self.learner = Learner(self.net, self.cfg.learner, self.device)

    def weights(self) -> dict:
        """The network's weights as committed (CPU tensors, no DDP wrapper)."""
        return weights_dict(self.net, self.net_cfg)["state_dict"]

    def played_weights(self) -> dict:
        """The weights the run plays (self-play, Elo games, the gate, ``model_best.pt``): the learner's
        average of recent weights with ``--ema-steps``, else the raw ones."""
        return self.learner.played_state_dict()

    def save_played(self, path: Path) -> None:
        """:meth:`played_weights` as a weights file (``network.save_weights``' format), atomically."""
        atomic_torch_save({**weights_dict(self.net, self.net_cfg), "state_dict": self.played_weights()}, path)

    def mark_committed(self, head: str) -> None:
        """``head`` now holds this run's weights: later merges build on them."""
        self.head = head
        self.base_state = self.weights()
