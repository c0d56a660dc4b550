"""``l4demons train``'s configuration: every field is a flag, every default is here."""

from __future__ import annotations

import dataclasses

from l4demons.learner import LearnerConfig
from l4demons.lifecycle.budgets import WindowConfig
from l4demons.network import NetConfig
from l4demons.selfplay import SelfPlayConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run; every field is a ``l4demons train`` flag (see :mod:`l4demons.flags`)."""

    hub: str | None = None
    """Checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB or the local hub)."""
    cycles: int | None = None
    """Stop after this many cycles (default: run until --hours or Ctrl-C)."""
    hours: float | None = None
    """Start no new cycle after this many hours."""
    games: int = 40
    """Self-play games per round; a cycle plays rounds until --cycle-seconds of self-play."""
    cycle_seconds: float = 10.0
    """Self-play of a cycle lasts at least this long: rounds of --games games, none started that would probably end
    more than a quarter past it (per-cycle costs stay small on fast hardware; 0: one round)."""
    steps: int | None = None
    """Backprop steps per cycle (default: as many as --sample-reuse asks for)."""
    sample_reuse: float = 4.0
    """Times the learner draws each training position, on average over the run (KataGo's reuse; 2 and 8 against 4:
    +0 and -76 Elo in 45-minute arms runs with the learner in bf16, README)."""
    net: str | None = None
    """Network size for a new hub (bNcM or a preset; default b3c32-mat on a CPU, small on a GPU); must match an
    existing hub's."""
    workers: int = 0
    """Self-play processes (0: one per core, or one per GPU)."""
    device: str = "auto"
    """Where the learner and self-play run: auto (CUDA when present), cpu or cuda."""
    seed: int = 0
    """Seed of the initial weights and of the first run's RNG."""
    elo_share: float = 0.2
    """Share of the machine's cores that measure (Elo games and the best-model gate) beside training."""
    elo_seconds: float | None = None
    """Game seconds of measuring per cycle instead of --elo-share (0: no Elo, no gate)."""
    elo_games: int = 40
    """Most Elo games of one net."""
    elo_nodes: int = 64
    """Search nodes per move of the bot in Elo and gate games."""
    elo_halflife: float = 10.0
    """Minutes of training after which an Elo game counts half in the pooled estimate."""
    gate_games: int = 100
    """Most games of a net's sequential test against model_best.pt (0: no gate, the newest net is the best)."""
    material_trust: float = 0.9
    """Retire the material rule (--material-win) once search values agree with decisive leads this often (>1: never)."""
    window: WindowConfig = WindowConfig()
    selfplay: SelfPlayConfig = SelfPlayConfig()
    learner: LearnerConfig = LearnerConfig()
    # -- hub traffic, storage and the stop path (lifecycle/commit.py) --
    commit_interval: float | None = None
    """Fewest seconds between commits; cycles in between are folded into the next (default: 180 on hf://, 0 on a local hub)."""
    max_repo_gb: float | None = None
    """Keep the hub under this many GB: delete old optimizer states and replay chunks for good (default: no limit)."""
    squash_history: bool = False
    """If pruning cannot keep the hub under --max-repo-gb, squash its history (old model.pt versions go)."""
    stop_seconds: float = 20.0
    """After a stop signal, the time the final commit may take: weights first, the optimizer state if time is left."""

    @property
    def measures(self) -> bool:
        """Whether cycles spend any time on Elo games."""
        return self.elo_share > 0 if self.elo_seconds is None else self.elo_seconds > 0

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
        if self.cycle_seconds < 0:
            raise ValueError("--cycle-seconds must be 0 or more")
        if self.steps is not None and self.steps < 0:
            raise ValueError("--steps must be 0 or more")
        if self.sample_reuse <= 0:
            raise ValueError("--sample-reuse must be positive")
        if not 0 <= self.elo_share < 1:
            raise ValueError("--elo-share must be in [0, 1)")
        if self.elo_seconds is not None and self.elo_seconds < 0:
            raise ValueError("--elo-seconds must be 0 or more")
        if self.elo_halflife <= 0:
            raise ValueError("--elo-halflife must be positive")
        if self.elo_games < 1 or self.elo_nodes < 1 or self.gate_games < 0:
            raise ValueError("--elo-games and --elo-nodes must be at least 1, --gate-games 0 or more")
        if self.material_trust <= 0:
            raise ValueError("--material-trust must be positive")
        if self.workers < 0:
            raise ValueError("--workers must be 0 or more")
        if self.net is not None:
            NetConfig.from_name(self.net)


def config_record(cfg: TrainConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d.pop("hub", None)
    return d
