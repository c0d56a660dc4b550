"""The learner: backprop steps on the replay window, and the validation loss.

The losses and their targets are :mod:`l4demons.losses`'s.
Weight decay comes from AdamW. The learning rate warms up linearly, then
halves every ``lr_halflife`` self-play positions the run has generated, to
a floor (by default 1: it stays at its peak); the optimizer, the scheduler
(its peak rate included) and the step counter are part of the training
state, so a resumed run continues the same schedule, and a warm start's
annealed rate (:meth:`Learner.set_lr`) carries over to the self-play that
follows it.

After a warm start, a batch draws :func:`teacher_share` of its rows from the
teacher's labelled positions (``replay.py``'s teacher chunks), a share that
halves every ``teacher_halflife`` self-play training positions; their value
target is the teacher's own value, self-play rows keep the game-result mix.

With ``ema_steps`` the learner also keeps an exponential
moving average of the weights over about that many recent steps (KataGo
plays and exports averaged weights; Polyak averaging):
:meth:`Learner.played_state_dict` is what self-play, the measurer and
``model_best.pt`` use, while training continues from the raw weights
(``model.pt``). The average is part of the learner's state.

Under DistributedDataParallel each rank samples its own batch from its own
RNG stream; gradients are averaged, so the effective batch is
``batch_size * world_size`` at the same learning rate.

Batches are assembled on the learner's device (``ReplayWindow.on_device``)
and the losses are summed there: a step never waits for the device, and
the losses are read once per ``train_steps`` call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Iterable

import numpy as np
import torch

from l4demons.devices import check_precision, learner_precision
from l4demons.losses import Losses, batch_losses, mean_losses, summed_losses
from l4demons.replay import ReplayWindow
from l4demons.replay_device import TrainBatch


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    batch_size: int = 256
    """Positions per step (per rank under DDP)."""
    lr: float = 4e-3
    """Peak learning rate (AdamW) of a new run.

    A resumed run keeps its commit's: after a warm start, a tenth of the
    warm start's --lr (``Learner.set_lr``). From random weights, 45 minutes
    each, over each arm's last 4 nets, every pair won: 2e-3 against 1e-3
    +86 Elo [+38, +137]; 4e-3 against 2e-3 +195 [+143, +255] (README, Arms).
    By default it stays there (--lr-floor 1: no decay).
    """
    weight_decay: float = 1e-3
    """Decoupled weight decay (AdamW)."""
    warmup_steps: int = 100
    """Linear warm-up from lr/10 over this many steps."""
    lr_halflife: float = 60_000.0
    """Self-play training positions over which the learning rate halves, down to --lr-floor of its peak (0: constant
    after the warm-up).

    The rate follows the positions the run has generated in all (the
    committed counter), so a resumed run carries on where its commit was;
    :meth:`Learner.decay_for` applies it each cycle. With the default floor
    of 1 nothing decays; at 60k a floor of 0.25 comes after about 120k
    positions, the first few minutes of an hour on two cores here.
    Chosen by games together with --ema-steps 100 (then at a floor of 0.1):
    over three seeds, 30 minutes each on one core, the two together against
    neither gave +0, +83 and +95 Elo (each arm's last 4 nets), +58 [+31, +87]
    over 360 games (README, Arms).
    """
    lr_floor: float = 1.0
    """The decayed learning rate's floor, as a fraction of its peak (--lr-halflife); 1: no decay.

    At the peak of 4e-3, from random weights, over each arm's last 4 nets,
    every pair won: 0.25 against 0.1 +92 Elo [+46, +141]; then 1 (a constant
    rate, the played nets still averaged by --ema-steps) against 0.25, in
    two runs, +92 [+46, +141] and +158 [+109, +213] (README, Arms).
    """
    value_weight: float = 0.25
    """Weight of the value loss beside the policy loss."""
    value_target_mix: float = 0.3
    """Share of the search's own value in the value target (the rest is the game result).

    A game gives all its positions one label; with few games the value head
    learns which game a position came from. The search value (Lc0's
    q-ratio) differs per position and keeps the head honest.
    """
    played_on_value_weight: float = 0.25
    """Weight of the value loss of a position played on after the material rule decided its game.

    Those positions get cheap searches and no policy target (KataGo's
    "fast" positions, whose value it weighs about 0.1), but they are the
    ones that carry the game's real outcome, so they keep more. The window,
    the data seen and the sample-reuse target count them at this weight too
    (``ReplayChunk.train_weight``). 0.5 against 0.25, 45 minutes each from
    random weights: -17 Elo [-60, +25] over each arm's last 4 nets, with a
    queen priced lower, not higher (README, Arms).
    """
    teacher_share: float = 0.5
    """Share of each batch drawn from a warm start's labelled positions at the hand-off to self-play.

    It halves every --teacher-halflife self-play training positions and the
    labelled positions leave the window once it falls under 1%, so self-play
    builds on what the teacher taught instead of washing it out in the first
    cycles (0: they leave at the first cycle). Those rows' value target is
    the teacher's own value, whatever --value-target-mix says.
    """
    teacher_halflife: float = 1_000_000
    """Self-play training positions over which the teacher's share of a batch halves.

    Half an hour of default self-play on 2 cores after a warm start made
    278k positions (README), so the share is 0.5 at the hand-off, about
    0.41 half an hour later and 0.34 after an hour; it falls under 1%, when
    the labelled positions leave the window, after about 5.6M positions.
    Chosen by games: from one warm start, 30 minutes each, the newest net
    of a run at this halflife beat one at 25k (whose share fell to 10%, as
    100k's did on the full machine) by +67 Elo [+12, +127] (README).
    """

    material_weight: float = 0.25
    """Weight of the material head's loss beside the policy loss (a net without the head has none).

    The target is the side to move's material lead ``replay.MATERIAL_AHEAD_PLIES`` later, in units of
    :data:`~l4demons.losses.MATERIAL_SCALE` pawns, clipped to +-2 of them; the loss is the squared error.
    """

    precision: str = "auto"
    """The learner's arithmetic: auto (bf16 autocast where the hardware has it natively: a GPU with bf16, a CPU
    with avx512_bf16 or AMX; float32 elsewhere), bf16 or fp32.

    Autocast runs the convolutions and matrix products in bfloat16 and keeps
    the weights, the optimizer and the losses in float32 (no loss scaling is
    needed). On this project's 2-core Zen 4 a b3c32 step took 45 ms against
    67 ms in float32, and from random weights, 45 minutes each on one core,
    bf16 made 1.28 times the positions and won by +47 Elo [+10, +85] over
    each arm's last 4 nets (README, Arms, "The learner in bf16").
    """

    ema_steps: int = 100
    """Play an average of the weights over about this many recent steps (0: the raw weights).

    An exponential moving average (decay 1 - 1/N, warmed up over the first
    steps): self-play, the Elo games, the gate and model_best.pt use it,
    while training goes on from the raw weights, which model.pt keeps.
    Alone, from random weights, 100 steps against the raw weights gave +114
    Elo [+68, +164], -24 [-67, +18] and -95 [-143, -50] on last nets in
    three arms runs, +86 =167 -87 together; with --lr-halflife 60000 it won
    +58 [+31, +87] over three seeds and each run's last 4 nets (README, Arms).
    """

    def __post_init__(self) -> None:
        if self.ema_steps < 0:
            raise ValueError("ema_steps must be 0 or more")
        check_precision(self.precision)
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.lr <= 0:
            raise ValueError("lr must be positive")
        if not 0.0 <= self.value_target_mix <= 1.0:
            raise ValueError("value_target_mix must be in [0, 1]")
        if not 0.0 <= self.played_on_value_weight <= 1.0:
            raise ValueError("played_on_value_weight must be in [0, 1]")
        if not 0.0 <= self.teacher_share <= 1.0:
            raise ValueError("teacher_share must be in [0, 1]")
        if self.teacher_halflife <= 0:
            raise ValueError("teacher_halflife must be positive")
        if self.material_weight < 0:
            raise ValueError("material_weight must be 0 or more")
        if self.lr_halflife < 0:
            raise ValueError("lr_halflife must be 0 (off) or positive")
        if not 0.0 < self.lr_floor <= 1.0:
            raise ValueError("lr_floor must be in (0, 1]")


TEACHER_FLOOR = 0.01
"""A teacher share under this is none: the teacher's positions leave the window."""


def teacher_share(cfg: LearnerConfig, positions: float) -> float:
    """Share of a batch from the teacher after ``positions`` self-play training positions since the hand-off.

    ``cfg.teacher_share`` halving every ``cfg.teacher_halflife`` positions;
    0 once under :data:`TEACHER_FLOOR`.
    """
    share = cfg.teacher_share * 0.5 ** (max(0.0, positions) / cfg.teacher_halflife)
    return share if share >= TEACHER_FLOOR else 0.0


class Learner:
    """Owns the optimizer and the schedule of one (possibly DDP-wrapped) network."""

    def __init__(self, net: torch.nn.Module, cfg: LearnerConfig, device: str | torch.device = "cpu") -> None:
        self.net = net
        self.cfg = cfg
        self.device = torch.device(device)
        self.step = 0
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        warm = max(1, cfg.warmup_steps)
        # bf16 autocast (cfg.precision): no loss scaling needed, and the losses are computed in float32.
        self.precision = learner_precision(cfg.precision, self.device)
        """``bf16`` or ``fp32``: what ``cfg.precision`` means on this device."""
        self._autocast = ((lambda: torch.autocast(self.device.type, dtype=torch.bfloat16))
                          if self.precision == "bf16" else contextlib.nullcontext)
        self.decay = 1.0
        """The learning rate's factor from --lr-halflife (:meth:`decay_for`), on top of the warm-up."""
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: (0.1 + 0.9 * min(1.0, s / warm)) * self.decay
        )
        self.ema: dict[str, torch.Tensor] | None = None
        """The averaged weights (``cfg.ema_steps``), on the device; None when off."""
        self._ema_updates = 0
        if cfg.ema_steps:
            self.reset_average()
        self.material = bool(getattr(getattr(self._raw_net(), "cfg", None), "material_head", False))
        """Whether the net has the material head (and so a material loss)."""

    def _raw_net(self) -> torch.nn.Module:
        raw = getattr(self.net, "module", self.net)  # DistributedDataParallel
        return getattr(raw, "_orig_mod", raw)  # torch.compile

    def reset_average(self) -> None:
        """Start the average again from the current weights (a new run, or weights from elsewhere)."""
        self.ema = {k: v.detach().clone() for k, v in self._raw_net().state_dict().items()}
        self._ema_updates = 0

    @torch.no_grad()
    def _update_average(self) -> None:
        self._ema_updates += 1
        decay = min(1.0 - 1.0 / self.cfg.ema_steps, (1.0 + self._ema_updates) / (10.0 + self._ema_updates))
        for k, v in self._raw_net().state_dict().items():
            if v.is_floating_point():
                self.ema[k].lerp_(v.detach(), 1.0 - decay)
            else:
                self.ema[k].copy_(v)

    def played_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights the run plays, on the CPU: the average with ``ema_steps``, else the raw weights."""
        source = self.ema if self.ema is not None else self._raw_net().state_dict()
        return {k: v.detach().to("cpu").clone() for k, v in source.items()}

    @property
    def lr(self) -> float:
        """The schedule's peak learning rate (``cfg.lr`` unless :meth:`set_lr` changed it)."""
        return float(self.scheduler.base_lrs[0])

    def set_lr(self, lr: float) -> None:
        """The peak learning rate from now on, the current step's rate included.

        It is the scheduler's ``base_lrs``, saved in its state: a run resumed
        from a commit keeps it (a warm start's annealed rate stays for the
        self-play after it).
        """
        sched = self.scheduler
        sched.base_lrs = [lr] * len(sched.base_lrs)
        factor = sched.lr_lambdas[0](sched.last_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * factor
        sched._last_lr = [group["lr"] for group in self.optimizer.param_groups]  # what get_last_lr() reports

    def decay_for(self, train_positions: float) -> float:
        """The learning rate for a run that has generated ``train_positions`` self-play training positions: halved
        every ``cfg.lr_halflife`` of them, never under ``cfg.lr_floor`` of the peak; returns the current rate."""
        if self.cfg.lr_halflife:
            self.decay = max(self.cfg.lr_floor, 0.5 ** (train_positions / self.cfg.lr_halflife))
            self.set_lr(self.lr)  # this step's rate follows at once
        return self.current_lr

    @property
    def current_lr(self) -> float:
        """This step's learning rate: the peak, the warm-up and the decay together."""
        return float(self.scheduler.get_last_lr()[0])

    def teacher_share(self, replay: ReplayWindow, train_positions: int) -> float:
        """The share of each batch from ``replay``'s teacher chunks, the run having generated ``train_positions``
        self-play training positions (:func:`teacher_share`; 0 without teacher chunks)."""
        if not replay.teacher_positions:
            return 0.0
        return teacher_share(self.cfg, train_positions - replay.handoff_positions)

    def train_steps(
        self,
        replay: ReplayWindow,
        steps: int,
        rng: np.random.Generator,
        teacher_share: float = 0.0,
        on_step: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Losses:
        """Up to ``steps`` optimizer steps; mean losses of the steps taken.

        Each batch is assembled on the device; the losses are summed there and
        read once at the end: no step waits for the accelerator to report
        back. ``teacher_share`` of each batch's rows come from the window's
        teacher chunks (:meth:`teacher_share`; all of them when it holds
        nothing else). ``on_step(step)`` is called after each step (a
        progress bar).

        :raises ValueError: the window holds no training position.
        """
        data = replay.on_device(self.device)
        cfg = self.cfg
        self.net.train()
        total = torch.zeros(3, device=self.device)
        done = 0
        for _ in range(steps):
            if should_stop():
                break
            batch = data.sample(cfg.batch_size, rng, teacher_share)
            with self._autocast():
                p, v, m = batch_losses(self.net, batch, cfg.value_target_mix, cfg.played_on_value_weight,
                                       self.material)
            loss = p + cfg.value_weight * v + cfg.material_weight * m
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self._update_average()
            self.step += 1
            done += 1
            total += torch.stack([p.detach(), v.detach(), m.detach()])
            if on_step is not None:
                on_step(self.step)
        self.net.eval()
        return Losses(*(total / max(done, 1)).tolist())

    @torch.no_grad()
    def validation_losses(self, replay: ReplayWindow, teacher: bool = False) -> Losses | None:
        """Losses over the held-out games, weighted per position as in training; None when there are none yet.

        Self-play's held-out games only (a loss comparable from cycle to
        cycle whatever the teacher's share), or with ``teacher`` the teacher's.
        """
        return self.losses(replay.on_device(self.device).validation_batches(self.cfg.batch_size, teacher=teacher))

    @torch.no_grad()
    def losses(self, batches: Iterable[TrainBatch]) -> Losses | None:
        """Weighted mean losses over all positions of ``batches``; None when there are none."""
        self.net.eval()
        sums = torch.zeros(6, device=self.device)  # each loss x its weight, and the weight
        n = 0
        for b in batches:
            sums += summed_losses(self.net, b, self.cfg.value_target_mix, self.cfg.played_on_value_weight,
                                  self.material)
            n += len(b)
        return mean_losses(sums) if n else None

    def state_dict(self) -> dict:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "step": self.step}
        if self.ema is not None:
            state["ema"] = self.played_state_dict()
            state["ema_updates"] = self._ema_updates
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.load_schedule(state)

    def load_schedule(self, state: dict) -> None:
        """The scheduler, step counter and average of a saved state (all but the optimizer)."""
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        if self.ema is not None and state.get("ema") is not None:  # else: the average starts from these weights
            self.ema = {k: v.to(self.device) for k, v in state["ema"].items()}
            self._ema_updates = int(state.get("ema_updates", 0))
