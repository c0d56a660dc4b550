"""``l4demons train``'s configuration: every field is a flag, every default is here."""

from __future__ import annotations

import dataclasses

from l4demons.learner import LearnerConfig
from l4demons.network import NetConfig
from l4demons.selfplay import SelfPlayConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run; every field is a ``l4demons train`` flag."""

    hub: str | None = None
    """Checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB or the local hub)."""
    cycles: int | None = None
    """Stop after this many cycles (default: run until --hours or Ctrl-C)."""
    hours: float | None = None
    """Start no new cycle after this many hours."""
    games: int = 40
    """Self-play games per cycle."""
    steps: int = 100
    """Backprop steps per cycle."""
    net: str | None = None
    """Network size for a new hub (bNcM or a preset); must match an existing hub's."""
    workers: int = 0
    """Self-play processes (0: one per core, or one per GPU)."""
    device: str = "auto"
    """auto, cpu or cuda."""
    seed: int = 0
    """Seed of the initial weights and of the first run's RNG."""
    replay_capacity: int = 200_000
    """Training positions kept in the replay window."""
    elo_seconds: float = 120.0
    """Time budget of the per-cycle Elo estimate (0 disables it)."""
    elo_games: int = 40
    """Most games of the per-cycle Elo estimate."""
    elo_nodes: int = 64
    """Search nodes per move of the bot in Elo games."""
    selfplay: SelfPlayConfig = SelfPlayConfig()
    learner: LearnerConfig = LearnerConfig()
    # -- hub traffic, storage and the stop path (lifecycle/commit.py) --
    commit_interval: float | None = None
    """Fewest seconds between commits; cycles in between are folded into the next (None: 180 on hf://, 0 local)."""
    max_repo_gb: float | None = None
    """Keep the hub under this many GB: delete old optimizer states and replay chunks for good (None: no limit)."""
    squash_history: bool = False
    """If pruning cannot keep the hub under --max-repo-gb, squash its history (old model.pt versions go)."""
    stop_seconds: float = 20.0
    """After a stop signal, the time the final commit may take: weights first, the optimizer state if time is left."""

    def __post_init__(self) -> None:
        if self.commit_interval is not None and self.commit_interval < 0:
            raise ValueError("--commit-interval must be 0 or more")
        if self.max_repo_gb is not None and self.max_repo_gb <= 0:
            raise ValueError("--max-repo-gb must be positive")
        if self.stop_seconds <= 0:
            raise ValueError("--stop-seconds must be positive")
        if self.cycles is not None and self.cycles < 0:
            raise ValueError("--cycles must be 0 or more")
        if self.hours is not None and self.hours <= 0:
            raise ValueError("--hours must be positive")
        if self.games < 1:
            raise ValueError("--games must be at least 1")
        if self.steps < 0:
            raise ValueError("--steps must be 0 or more")
        if self.workers < 0:
            raise ValueError("--workers must be 0 or more")
        if self.net is not None:
            NetConfig.from_name(self.net)


def config_record(cfg: TrainConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("hub", None)
    return d
