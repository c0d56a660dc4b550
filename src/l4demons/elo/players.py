"""Players the Elo machinery pits against each other.

A :class:`Player` is anything that picks a move for a board. The measured
candidate (the net) and the anchors (a random mover, a one-ply material
grabber, Stockfish at a calibrated strength) all look the same to a match.

Players hold processes and weights, so they cannot cross a process
boundary. A match therefore ships a :class:`PlayerSpec` (small, frozen,
picklable) to each worker and :func:`build_player` turns it into a player
there. New kinds are added with :func:`register_kind`; the ``"net"`` kind
imports :mod:`l4demons.bot` lazily so this package never needs the network
code to measure anchors (and Stockfish never enters the bot).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import chess
import chess.engine

from l4demons.elo.engines import stockfish_player
from l4demons.elo.errors import UnknownPlayerKind
from l4demons.encoding import material_balance, piece_value

if TYPE_CHECKING:
    from l4demons.bot import Bot, SearchInfo

MATE_SCORE = 1000
"""What a mate is worth to the grabber: more than any material."""

NET_SEARCH_PARAMS = ("c_puct", "fpu_reduction", "batch_size", "reuse_tree", "policy_temp")
"""Search settings a ``net`` player may be given (:meth:`PlayerSpec.net`)."""

@runtime_checkable
class Player(Protocol):
    """Something that plays chess moves."""

    name: str
    """Short id used in PGN headers, tables and the anchors file."""
    last_nodes: int | None
    """Nodes the last :meth:`choose` searched; None when that move came from no search."""

    def new_game(self, seed: int) -> None:
        """Called before each game: reseed, forget engine state."""

    def choose(self, board: chess.Board) -> chess.Move:
        """A legal move for the side to move; the board is left unchanged."""

    def close(self) -> None:
        """Release processes and memory; the player is not used afterwards."""


class RandomMover:
    """Plays a uniformly random legal move: the floor of the rating ladder."""

    last_nodes = None

    def __init__(self, seed: int = 0, name: str = "random") -> None:
        self.name = name
        self._rng = random.Random(seed)

    def new_game(self, seed: int) -> None:
        self._rng.seed(seed)

    def choose(self, board: chess.Board) -> chess.Move:
        return self._rng.choice(list(board.generate_legal_moves()))

    def close(self) -> None:
        pass


def material_gain(board: chess.Board, move: chess.Move) -> int:
    """Material the mover wins by ``move``: the captured piece plus promotion gain."""
    gain = 0
    if board.is_en_passant(move):
        gain += piece_value(chess.PAWN)
    else:
        captured = board.piece_type_at(move.to_square)
        if captured is not None:
            gain += piece_value(captured)
    if move.promotion is not None:
        gain += piece_value(move.promotion) - piece_value(chess.PAWN)
    return gain


class MaterialGrabber:
    """One ply of greed: the move that leaves the best material balance.

    A mate scores :data:`MATE_SCORE`; a move that ends the game in a draw
    (stalemate, insufficient material) scores 0 relative to the current
    balance, so a grabber that is ahead does not stalemate a bare king and
    one that is behind takes the draw. Ties, the usual case, are broken at
    random, which makes it a random mover that never misses a capture.
    """

    last_nodes = None

    def __init__(self, seed: int = 0, name: str = "material") -> None:
        self.name = name
        self._rng = random.Random(seed)

    def new_game(self, seed: int) -> None:
        self._rng.seed(seed)

    def choose(self, board: chess.Board) -> chess.Move:
        us = board.turn
        balance = material_balance(board, us)
        best_score = -math.inf
        best: list[chess.Move] = []
        for move in list(board.generate_legal_moves()):
            score = float(material_gain(board, move))
            board.push(move)
            try:
                if not any(board.generate_legal_moves()):
                    score = MATE_SCORE if board.is_check() else -balance
                elif board.is_insufficient_material():
                    score = -balance
            finally:
                board.pop()
            if score > best_score:
                best_score, best = score, [move]
            elif score == best_score:
                best.append(move)
        return self._rng.choice(best)

    def close(self) -> None:
        pass


class NoisyPlayer:
    """Plays a uniformly random move with probability ``rate``, else ``inner``'s.

    Mixing Stockfish with random moves gives a dial of strength between the
    random mover and Stockfish's floor (UCI_Elo 1350), which no Stockfish
    option reaches; calibration chains these rungs.
    """

    def __init__(self, inner: Player, rate: float, seed: int = 0, name: str | None = None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"random move rate must be in [0, 1], got {rate}")
        self.name = name or f"{inner.name}~r{rate:g}"
        self.rate = rate
        self._inner = inner
        self._rng = random.Random(seed)
        self._random_move = False

    def new_game(self, seed: int) -> None:
        self._rng.seed(seed)
        self._inner.new_game(seed)

    @property
    def last_nodes(self) -> int | None:
        return None if self._random_move else self._inner.last_nodes

    def choose(self, board: chess.Board) -> chess.Move:
        self._random_move = self._rng.random() < self.rate
        if self._random_move:
            return self._rng.choice(list(board.generate_legal_moves()))
        return self._inner.choose(board)

    def close(self) -> None:
        self._inner.close()


class NetPlayer:
    """The bot's network with search, at a node budget (or a time) per move."""

    def __init__(self, path: str, nodes: int | None = 200, device: str = "cpu", name: str | None = None,
                 time: float | None = None, search: dict[str, Any] | None = None) -> None:
        """``search``: the bot's search settings other than the defaults: ``c_puct``, ``fpu_reduction``,
        ``batch_size``, ``policy_temp`` (:class:`~l4demons.search.PuctConfig`), ``reuse_tree`` (:class:`~l4demons.bot.Bot`)."""
        from l4demons.bot import Bot  # lazy: anchors need no torch
        from l4demons.devices import resolve_device
        from l4demons.search import PuctConfig

        self.name = name or f"net:{Path(path).name}"
        self.last_nodes: int | None = None
        self.nodes = nodes
        self.movetime_ms = None if time is None else 1000.0 * time
        search = dict(search or {})
        reuse = bool(search.pop("reuse_tree", True))
        dev = resolve_device(device)
        self._bot: Bot | None = Bot.from_file(path, device=dev, puct=PuctConfig.for_device(dev, **search),
                                              reuse_tree=reuse)
        self._bot.warmup()  # as the front doors do: the first timed move must not pay the set-up

    def new_game(self, seed: int) -> None:
        pass

    def choose(self, board: chess.Board) -> chess.Move:
        if self._bot is None:
            raise RuntimeError(f"{self.name} was closed")
        final: list[SearchInfo] = []
        move = self._bot.choose_move(board, nodes=self.nodes, movetime_ms=self.movetime_ms, on_info=final.append,
                                     info_interval_ms=math.inf)[0]
        self.last_nodes = final[-1].nodes if final else 0
        return move

    def close(self) -> None:
        self._bot = None


ParamValue = int | float | str | bool | None


@dataclasses.dataclass(frozen=True)
class PlayerSpec:
    """How to build a player in another process; picklable and hashable.

    ``PlayerSpec.stockfish(elo=1350)`` -> ``sf-elo1350``.
    """

    kind: str
    """Registered kind: ``random``, ``material``, ``stockfish`` or ``net``."""
    params: tuple[tuple[str, ParamValue], ...] = ()
    """Keyword arguments of the kind's factory, sorted by name."""
    label: str = ""
    """Display name; empty means derive one from kind and params."""

    def param(self, key: str, default: ParamValue = None) -> ParamValue:
        """The value of parameter ``key``, or ``default``."""
        return dict(self.params).get(key, default)

    @property
    def name(self) -> str:
        """Stable id, e.g. ``random``, ``sf-elo1350``, ``sf-skill0@d1``."""
        if self.label:
            return self.label
        p = dict(self.params)
        noise = p.pop("noise", None)
        if noise is not None:
            return f"{dataclasses.replace(self, params=tuple(sorted(p.items()))).name}~r{noise:g}"
        if self.kind == "stockfish":
            base = f"sf-elo{p['elo']}" if p.get("elo") is not None else f"sf-skill{p.get('skill', 20)}"
            limit = "".join(f"@{k[0]}{p[k]}" for k in ("nodes", "depth", "time") if p.get(k) is not None)
            return base + limit
        if self.kind == "net":
            budget = f"{p['time']:g}s" if p.get("time") is not None else f"{p.get('nodes')}"
            return f"net:{Path(str(p.get('path'))).name}@{budget}"
        return self.kind

    @classmethod
    def make(cls, kind: str, label: str = "", **params: ParamValue) -> PlayerSpec:
        clean = tuple(sorted((k, v) for k, v in params.items() if v is not None))
        return cls(kind, clean, label)

    def with_noise(self, rate: float) -> PlayerSpec:
        """This player, but a uniformly random move with probability ``rate``."""
        return PlayerSpec.make(self.kind, self.label, **{**dict(self.params), "noise": float(rate)})

    @classmethod
    def random(cls) -> PlayerSpec:
        return cls.make("random")

    @classmethod
    def material(cls) -> PlayerSpec:
        return cls.make("material")

    @classmethod
    def stockfish(
        cls,
        elo: int | None = None,
        skill: int | None = None,
        *,
        nodes: int | None = None,
        depth: int | None = None,
        time: float | None = None,
        path: str | None = None,
    ) -> PlayerSpec:
        return cls.make("stockfish", elo=elo, skill=skill, nodes=nodes, depth=depth, time=time, path=path)

    @classmethod
    def net(cls, path: str | os.PathLike[str], nodes: int | None = 200, device: str = "cpu",
            time: float | None = None, label: str = "", **search: ParamValue) -> PlayerSpec:
        """The bot from a weights file, searching ``nodes`` per move (or ``time`` seconds if nodes is None);
        ``search``: settings of its search other than the defaults (see :class:`NetPlayer`)."""
        unknown = set(search) - set(NET_SEARCH_PARAMS)
        if unknown:
            raise ValueError(f"unknown search setting(s) {sorted(unknown)}: known are {list(NET_SEARCH_PARAMS)}")
        return cls.make("net", label, path=str(path), nodes=nodes, device=device, time=time, **search)


Factory = Callable[[PlayerSpec, int], Player]
_FACTORIES: dict[str, Factory] = {}


def register_kind(kind: str, factory: Factory) -> None:
    """Teach :func:`build_player` a new kind (call at import time of the defining module)."""
    _FACTORIES[kind] = factory


def build_player(spec: PlayerSpec, seed: int = 0) -> Player:
    """The player a spec describes, built in the calling process.

    :raises UnknownPlayerKind: the kind was never registered.
    """
    try:
        factory = _FACTORIES[spec.kind]
    except KeyError:
        raise UnknownPlayerKind(f"unknown player kind {spec.kind!r}; known: {sorted(_FACTORIES)}") from None
    params = dict(spec.params)
    noise = params.pop("noise", None)
    if noise is None:
        return factory(spec, seed)
    inner = factory(dataclasses.replace(spec, params=tuple(sorted(params.items()))), seed)
    return NoisyPlayer(inner, float(noise), seed, name=spec.name)


def _stockfish_factory(spec: PlayerSpec, seed: int) -> Player:
    p: dict[str, Any] = dict(spec.params)
    limit = None
    if any(p.get(k) is not None for k in ("nodes", "depth", "time")):
        limit = chess.engine.Limit(nodes=p.get("nodes"), depth=p.get("depth"), time=p.get("time"))
    return stockfish_player(p.get("elo"), p.get("skill"), limit, path=p.get("path"), name=spec.name)


register_kind("random", lambda spec, seed: RandomMover(seed, name=spec.name))
register_kind("material", lambda spec, seed: MaterialGrabber(seed, name=spec.name))
register_kind("stockfish", _stockfish_factory)
def _net_factory(spec: PlayerSpec, seed: int) -> Player:
    p: dict[str, Any] = dict(spec.params)
    nodes = p.get("nodes", None if p.get("time") is not None else 200)
    search = {k: p[k] for k in NET_SEARCH_PARAMS if k in p}
    return NetPlayer(str(p["path"]), nodes, str(p.get("device", "cpu")), name=spec.name, time=p.get("time"),
                     search=search)


register_kind("net", _net_factory)
