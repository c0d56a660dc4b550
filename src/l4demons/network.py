"""The network: a residual tower with a policy head and a win/draw/loss head.

Sizes are named like KataGo's (``b6c64`` = 6 residual blocks of 64
channels). The default is small enough to self-play at a useful rate on two
CPU cores; the larger presets are for GPUs.

A weights file (``model.pt``) is a plain dict of tensors and primitives:
``{"format": ..., "config": NetConfig as a dict, "state_dict": {...}}``,
loadable with ``torch.load(..., weights_only=True)``. Loading rebuilds the
network from the stored config, as nanoGPT's checkpoints do, and refuses a
file whose encoding version differs from this code's.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from l4demons.atomic import atomic_write
from l4demons.encoding import ENCODING_VERSION, NUM_PLANES, POLICY_SIZE

WEIGHTS_FORMAT = "l4demons-weights-v1"


class WeightsError(ValueError):
    """A weights file that cannot be used here (corrupt, pickled code, other architecture)."""


@dataclasses.dataclass(frozen=True)
class NetConfig:
    """Everything needed to rebuild a network; stored in every weights file."""

    blocks: int = 6
    """Residual blocks in the tower."""
    channels: int = 64
    """Convolution channels of the tower."""
    se: bool = True
    """Squeeze-and-excitation in each block (cheap global context)."""
    se_ratio: int = 4
    """Channel reduction inside the SE layer."""
    value_hidden: int = 128
    """Width of the value head's hidden layer."""
    value_head: str = "fc"
    """``fc``: Lc0's head (1x1 conv to 32 planes, flattened, fully connected). ``pool``: KataGo's (1x1 conv,
    then the board-wide mean and max of each plane, fully connected): far fewer weights, and material, a sum
    over squares, is one mean away."""
    encoding_version: int = ENCODING_VERSION
    """The board encoding the network was trained on."""

    def __post_init__(self) -> None:
        if not 1 <= self.blocks <= 64:
            raise ValueError(f"blocks must be between 1 and 64, got {self.blocks}")
        if not 8 <= self.channels <= 1024:
            raise ValueError(f"channels must be between 8 and 1024, got {self.channels}")
        if self.value_head not in ("fc", "pool"):
            raise ValueError(f"value_head must be fc or pool, got {self.value_head!r}")
        if self.se and self.channels // self.se_ratio < 1:
            raise ValueError(f"se_ratio {self.se_ratio} too large for {self.channels} channels")

    @property
    def name(self) -> str:
        return f"b{self.blocks}c{self.channels}" + ("-se" if self.se else "")

    @classmethod
    def from_name(cls, name: str) -> NetConfig:
        """``"b6c64"``, ``"b10c128"`` or a preset name (see :data:`PRESETS`).

        :raises ValueError: the name is neither.
        """
        if name in PRESETS:
            return PRESETS[name]
        m = re.fullmatch(r"b(\d+)c(\d+)(-se|-nose)?", name)
        if not m:
            raise ValueError(f"unknown network size {name!r}: use bNcM (e.g. b6c64) or one of {sorted(PRESETS)}")
        return cls(blocks=int(m[1]), channels=int(m[2]), se=m[3] != "-nose")


PRESETS = {
    "tiny": NetConfig(blocks=2, channels=32, value_hidden=64),
    "small": NetConfig(blocks=6, channels=64),
    "medium": NetConfig(blocks=10, channels=128),
    "large": NetConfig(blocks=15, channels=192, value_hidden=256),
}
"""Named sizes: ``small`` is the CPU default, ``medium``/``large`` are for GPUs."""


class SqueezeExcite(nn.Module):
    """Channel gating from the board-wide average (Lc0's SE variant with bias)."""

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // ratio)
        self.fc2 = nn.Linear(channels // ratio, 2 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.relu(self.fc1(x.mean(dim=(2, 3))))
        w, b = self.fc2(s).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * torch.sigmoid(w) + b


class ResidualBlock(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.se = SqueezeExcite(c, cfg.se_ratio) if cfg.se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.se is not None:
            y = self.se(y)
        return F.relu(x + y)


class ChessNet(nn.Module):
    """Planes ``[B, 20, 8, 8]`` -> policy logits ``[B, 4672]``, WDL logits ``[B, 3]``.

    WDL is from the side to move's point of view: (win, draw, loss).
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(NUM_PLANES, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.tower = nn.Sequential(*[ResidualBlock(cfg) for _ in range(cfg.blocks)])
        self.policy_conv = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.policy_out = nn.Conv2d(c, 73, 1)
        self.value_conv = nn.Sequential(nn.Conv2d(c, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        value_in = 32 * 64 if cfg.value_head == "fc" else 2 * 32
        self.value_fc = nn.Sequential(nn.Linear(value_in, cfg.value_hidden), nn.ReLU(), nn.Linear(cfg.value_hidden, 3))

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.tower(self.stem(planes))
        # [B, 73, 8, 8] -> [B, 8, 8, 73] -> [B, 4672]: index = square * 73 + move type.
        policy = self.policy_out(self.policy_conv(x)).permute(0, 2, 3, 1).reshape(-1, POLICY_SIZE)
        v = self.value_conv(x)
        if self.cfg.value_head == "pool":  # [B, 32, 8, 8] -> [B, 64]: mean and max over the board
            v = torch.cat([v.mean(dim=(2, 3)), v.amax(dim=(2, 3))], dim=1)
        value = self.value_fc(v.flatten(1))
        return policy, value


def build_network(cfg: NetConfig, seed: int | None = None) -> ChessNet:
    """A freshly initialised network (deterministic when ``seed`` is given)."""
    if seed is None:
        return ChessNet(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ChessNet(cfg)


def weights_dict(net: nn.Module, cfg: NetConfig) -> dict:
    """What goes into a weights file: tensors on CPU, no ``module.`` prefixes."""
    raw = getattr(net, "module", net)  # unwrap DistributedDataParallel
    raw = getattr(raw, "_orig_mod", raw)  # unwrap torch.compile
    state = {k: v.detach().to("cpu").clone() for k, v in raw.state_dict().items()}
    return {"format": WEIGHTS_FORMAT, "config": dataclasses.asdict(cfg), "state_dict": state}


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same directory, fsync, then rename."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())


def save_weights(net: nn.Module, cfg: NetConfig, path: str | os.PathLike) -> None:
    """Write a weights file atomically."""
    atomic_torch_save(weights_dict(net, cfg), path)


def read_weights(path: str | os.PathLike) -> tuple[NetConfig, dict[str, torch.Tensor]]:
    """Config and state dict of a weights file, without building the net.

    :raises WeightsError: the file is truncated, holds pickled code, is not a
        weights file, or was made for another encoding version.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise WeightsError(f"{path} is not a loadable weights file ({type(e).__name__}: {str(e)[:120]})") from e
    if not isinstance(blob, dict) or blob.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{path} is not an L4Demons weights file")
    try:
        cfg = NetConfig(**blob["config"])
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{path} holds an unusable network config: {e}") from e
    if cfg.encoding_version != ENCODING_VERSION:
        raise WeightsError(
            f"{path} was trained on board encoding v{cfg.encoding_version}, this code speaks v{ENCODING_VERSION}"
        )
    return cfg, blob["state_dict"]


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ChessNet, NetConfig]:
    """Rebuild the network stored in a weights file, in eval mode on ``device``.

    :raises WeightsError: see :func:`read_weights`; also when the tensors do
        not fit the stored config.
    """
    cfg, state = read_weights(path)
    net = ChessNet(cfg)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not match their config {cfg.name}: {str(e)[:160]}") from e
    return net.to(device).eval(), cfg
