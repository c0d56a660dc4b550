"""The network: a residual tower with a policy head and a win/draw/loss head.

Sizes are named like KataGo's (``b6c64`` = 6 residual blocks of 64
channels). A new hub's default (:func:`default_net`) is small enough to
self-play at a useful rate on two CPU cores; the larger presets are for
GPUs.

A weights file (``model.pt``) is a plain dict of tensors and primitives:
``{"format": ..., "config": NetConfig as a dict, "state_dict": {...}}``,
loadable with ``torch.load(..., weights_only=True)``. Loading rebuilds the
network from the stored config, as nanoGPT's checkpoints do, and refuses a
file whose encoding version differs from this code's.

Weights files come from hubs other people write, so a config is checked
field by field before anything is built (every field bounded, its type
exact), and its parameter count is bounded too (:func:`max_params`,
``L4D_MAX_PARAMS``): one hub commit must not be able to exhaust the
memory of a server or a trainer. Every problem is one line in a
:class:`WeightsError`.
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

DEFAULT_MAX_PARAMS = 100_000_000
"""Largest network accepted unless ``L4D_MAX_PARAMS`` says otherwise: 400 MB of float32
weights (the ``large`` preset has about 11 million parameters)."""
_FIELD_BOUNDS = {
    "blocks": (1, 64),
    "channels": (8, 1024),
    "value_hidden": (1, 4096),
    "encoding_version": (1, 1_000_000),
}
"""Inclusive bounds of the integer fields (``se_ratio`` is bounded by ``channels``)."""
MATERIAL_HIDDEN = 32
"""Width of the material head's hidden layer."""
_FILE_SLACK_BYTES = 16 << 20
"""Room in a weights file beyond the float32 tensors: batch-norm buffers, names, the config."""


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
    material_head: bool = False
    """An auxiliary head on the value head's features that predicts the material lead a few plies ahead
    (KataGo's auxiliary targets): a target that differs from position to position, where the game result
    is one label for all of a game's positions. Training only: play reads policy and value."""
    encoding_version: int = ENCODING_VERSION
    """The board encoding the network was trained on."""

    def __post_init__(self) -> None:
        """:raises ValueError: a field of the wrong type or out of bounds, or a net over :func:`max_params`."""
        for name, (low, high) in _FIELD_BOUNDS.items():
            _check_int(name, getattr(self, name), low, high)
        if not isinstance(self.se, bool):
            raise ValueError(f"se must be true or false, got {self.se!r}")
        _check_int("se_ratio", self.se_ratio, 1, self.channels)
        if not isinstance(self.material_head, bool):
            raise ValueError(f"material_head must be true or false, got {self.material_head!r}")
        if self.value_head not in ("fc", "pool"):
            raise ValueError(f"value_head must be fc or pool, got {self.value_head!r}")
        limit = max_params()
        if self.parameters > limit:
            raise ValueError(f"network {self.name} has {self.parameters:,} parameters, over the limit of {limit:,} "
                             "(raise L4D_MAX_PARAMS to allow it)")

    @property
    def parameters(self) -> int:
        """Trainable parameters of the network this config builds (counted without building it)."""
        c, squeeze = self.channels, self.channels // self.se_ratio
        conv_bn = c * c * 9 + 2 * c
        se = (c * squeeze + squeeze) + (squeeze * 2 * c + 2 * c) if self.se else 0
        stem = NUM_PLANES * c * 9 + 2 * c
        policy = (c * c + 2 * c) + (c * 73 + 73)
        value_in = 32 * 64 if self.value_head == "fc" else 2 * 32
        value = (c * 32 + 2 * 32) + (value_in * self.value_hidden + self.value_hidden) + (self.value_hidden * 3 + 3)
        material = (value_in * MATERIAL_HIDDEN + MATERIAL_HIDDEN) + (MATERIAL_HIDDEN + 1) if self.material_head else 0
        return stem + self.blocks * (2 * conv_bn + se) + policy + value + material

    @property
    def name(self) -> str:
        """``b6c64-se``; ``-fc`` marks Lc0's fully connected value head (the first nets' head), ``-mat`` the
        material head."""
        return (f"b{self.blocks}c{self.channels}" + ("-se" if self.se else "")
                + ("-fc" if self.value_head == "fc" else "") + ("-mat" if self.material_head else ""))

    @classmethod
    def from_name(cls, name: str) -> NetConfig:
        """``"b6c64"``, ``"b10c128"`` (``-nose``: no squeeze-excitation, ``-fc``: the fully connected value
        head, ``-mat``: the material head) or a preset name (see :data:`PRESETS`).

        :raises ValueError: the name is neither, or the net is out of bounds (see :meth:`__post_init__`).
        """
        if name in PRESETS:
            return dataclasses.replace(PRESETS[name])  # checked again: the parameter bound may have changed
        m = re.fullmatch(r"b(\d+)c(\d+)(-se|-nose)?(-fc)?(-mat)?", name)
        if not m:
            raise ValueError(f"unknown network size {name!r}: use bNcM (e.g. b6c64) or one of {sorted(PRESETS)}")
        return cls(blocks=int(m[1]), channels=int(m[2]), se=m[3] != "-nose", value_head="fc" if m[4] else "pool",
                   material_head=bool(m[5]))


def max_params() -> int:
    """The largest network accepted: ``$L4D_MAX_PARAMS``, else :data:`DEFAULT_MAX_PARAMS`.

    :raises ValueError: ``L4D_MAX_PARAMS`` is not a positive integer.
    """
    raw = os.environ.get("L4D_MAX_PARAMS", "").replace("_", "").strip()
    if not raw:
        return DEFAULT_MAX_PARAMS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"L4D_MAX_PARAMS={os.environ['L4D_MAX_PARAMS']!r} is not a positive whole number of parameters")
    return int(raw)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int:  # bool is an int subclass, and a float or a string is no size
        raise ValueError(f"{name} must be a whole number, got {_short_repr(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


PRESETS = {
    "tiny": NetConfig(blocks=2, channels=32, value_hidden=64, value_head="pool", material_head=True),
    "small": NetConfig(blocks=6, channels=64, value_head="pool", material_head=True),
    "medium": NetConfig(blocks=10, channels=128, value_head="pool", material_head=True),
    "large": NetConfig(blocks=15, channels=192, value_hidden=256, value_head="pool", material_head=True),
}
"""Named sizes: ``small`` is a GPU's default (:data:`DEFAULT_NETS`), ``medium``/``large`` are for larger GPU
runs. All have the material head: from random weights, 30 minutes each on one core, b6c64 with it beat b6c64
without by +199 Elo [+154, +250] and +151 [+102, +206] in two runs (README, "Arms"); ``bNcM`` without
``-mat`` is the net without it."""

DEFAULT_NETS = {"cpu": "b3c32-mat", "cuda": "small"}
"""The size of a new hub's net where ``--net`` names none, by the learner's device. On a CPU, b3c32 with the
material head: from random weights, 45 minutes each on one core, b4c48 made 2.1 times the positions of b6c64 and
beat it by +232 Elo [+175, +303], then b3c32 made 2.0 times the positions of b4c48 and beat it by +165 Elo
[+112, +226] (README, Arms, "The net's size, from random weights"). b2c32 beat b3c32 by +50 [+10, +91] at 0.1 s
a move in 45 minutes, by +29 [-5, +63] after 15 more, and was even at equal search: not the default. On a GPU,
``small`` (b6c64) until a GPU measures the sizes there (``bench/gpu.py``)."""


def default_net(device: str) -> str:
    """:data:`DEFAULT_NETS`' size for ``device`` (``cpu``, ``cuda`` or ``cuda:N``)."""
    return DEFAULT_NETS["cuda" if device.startswith("cuda") else "cpu"]


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
        if cfg.material_head:
            self.material_fc = nn.Sequential(nn.Linear(value_in, MATERIAL_HIDDEN), nn.ReLU(),
                                             nn.Linear(MATERIAL_HIDDEN, 1))

    def forward(self, planes: torch.Tensor, material: bool = False) -> tuple[torch.Tensor, ...]:
        """(policy, value); with ``material`` (a net with the material head, training) also the predicted
        material lead ``[B]`` (in the learner's units)."""
        x = self.tower(self.stem(planes))
        # [B, 73, 8, 8] -> [B, 8, 8, 73] -> [B, 4672]: index = square * 73 + move type.
        policy = self.policy_out(self.policy_conv(x)).permute(0, 2, 3, 1).reshape(-1, POLICY_SIZE)
        v = self.value_conv(x)
        if self.cfg.value_head == "pool":  # [B, 32, 8, 8] -> [B, 64]: mean and max over the board
            v = torch.cat([v.mean(dim=(2, 3)), v.amax(dim=(2, 3))], dim=1)
        features = v.flatten(1)
        value = self.value_fc(features)
        if material:
            return policy, value, self.material_fc(features).squeeze(1)
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

    :raises WeightsError: the file is larger than any net :func:`max_params`
        allows, truncated, holds pickled code, is not a weights file, holds a
        config out of bounds (see :class:`NetConfig`), or was made for another
        encoding version. The message is one line.
    """
    try:
        limit = max_params()
    except ValueError as e:
        raise WeightsError(str(e)) from e
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise WeightsError(f"{path} cannot be read ({type(e).__name__}: {_one_line(e)[:120]})") from e
    if size > 4 * limit + _FILE_SLACK_BYTES:  # float32 tensors; refused before torch reads a byte
        raise WeightsError(f"{path} is {size:,} bytes, more than a network of at most {limit:,} parameters takes "
                           "(raise L4D_MAX_PARAMS to allow it)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise WeightsError(f"{path} is not a loadable weights file ({type(e).__name__}: {_one_line(e)[:120]})") from e
    if not isinstance(blob, dict) or blob.get("format") != WEIGHTS_FORMAT:
        raise WeightsError(f"{path} is not an L4Demons weights file")
    config, state = blob.get("config"), blob.get("state_dict")
    if not isinstance(config, dict):
        raise WeightsError(f"{path} holds no network config")
    try:
        cfg = NetConfig(**config)
    except (TypeError, ValueError) as e:
        raise WeightsError(f"{path} holds an unusable network config: {_one_line(e)}") from e
    if cfg.encoding_version != ENCODING_VERSION:
        raise WeightsError(
            f"{path} was trained on board encoding v{cfg.encoding_version}, this code speaks v{ENCODING_VERSION}"
        )
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{path} holds no state dict of named tensors")
    return cfg, state


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


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
        raise WeightsError(f"{path}: weights do not match their config {cfg.name}: {_one_line(e)[:160]}") from e
    return net.to(device).eval(), cfg
