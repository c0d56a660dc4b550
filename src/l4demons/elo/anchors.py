"""Anchors: players of known rating, and how their ratings were measured.

Stockfish 15.1's ``UCI_Elo`` levels (1350..2850) are taken at their labels
(calibrated by the Stockfish authors at 60s+0.6s against CCRL 40/4; above
about 1700 they are known to be inflated, and we do not correct them).
Below Stockfish's floor there is nothing calibrated, so we measure a
ladder of cheap players once, by a maximum-likelihood fit with
``sf-elo1350`` fixed at 1350:

    random < material~r0.75 < material~r0.5 < material
           < sf-elo1350~r0.35 < ~r0.25 < ~r0.15 < ~r0.08 < ~r0.04 < sf-elo1350

``X~rP`` is player X playing a uniformly random move with probability P.
Stockfish at 1350 beats the material grabber every game, and the grabber
beats the random mover nearly every game, so these noisy rungs are what
make each step of the ladder measurable (a step of 100..300 Elo, not 600).
Each rung plays its neighbours one and two steps away.

Stockfish plays at ``depth = 1 + int(level)``, the depth at which it picks
its handicapped move whatever the clock, so its play approximates the
60s+0.6s calibration while costing milliseconds (only approximates: a long
search leaves deeper hash entries that a shallow one lacks). The file's
``label_checks`` record how well adjacent low labels hold at this limit.
Stockfish's handicap is seeded from the clock, so no two calibrations give
the same games; the file records what one gave. Re-measure with :func:`calibrate` (``l4demons elo --calibrate``).

Depth-limited Stockfish is not the Stockfish a user meets: Stockfish at
``UCI_Elo`` 1350 given 0.1 s a move (:data:`CLEAN_STOCKFISH`,
``sf-elo1350@t0.1``) searches far deeper between its handicapped picks and
fills its hash with what it found, and plays stronger than the
``sf-elo1350`` rung. It is an anchor of its own, measured rather than
labelled: it plays :data:`FIXED` alone, so its rating is ``1350`` plus that
one pairing's maximum-likelihood difference and the ladder's other ratings
are what they would be without it (:func:`measure_anchor` adds it to an
existing file without re-measuring the ladder; :func:`calibrate` measures it
with the rest). Its strength depends on the machine's speed (0.1 s is more
search on a faster core), so the file says which machine measured it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import chess

from l4demons.atomic import atomic_write
from l4demons.elo.engines import find_stockfish
from l4demons.elo.errors import AnchorFileError
from l4demons.elo.game import DEFAULT_MAX_PLIES
from l4demons.elo.match import play_match
from l4demons.elo.openings import MAX_OPENINGS, find_book, load_openings
from l4demons.elo.players import PlayerSpec
from l4demons.elo.rating import EloInterval, PairResult, fit_ratings, pairwise_elo

log = logging.getLogger(__name__)

ANCHORS_FILE = Path(__file__).parent / "data" / "anchors.json"
"""The anchors shipped with the package; ``$L4D_ANCHORS`` overrides it."""

STOCKFISH_LABELS: tuple[int, ...] = (1350, 1500, 1700, 2000, 2300, 2600, 2850)
"""``UCI_Elo`` levels used as anchors at their labelled rating."""

FIXED = "sf-elo1350"
"""The anchor whose label pins the calibration ladder."""

CLEAN_STOCKFISH = PlayerSpec.stockfish(elo=1350, time=0.1)
"""Stockfish ``UCI_LimitStrength`` at ``UCI_Elo`` 1350 and 0.1 s a move, as a user plays it (``sf-elo1350@t0.1``)."""

CLEAN_GAMES = 40
"""Games :func:`calibrate` and :func:`measure_anchor` play between an extra anchor and :data:`FIXED`
(about 5 s a game at 0.1 s a move)."""

PLAYERS_NOTE = ("random: uniform legal move; material: one-ply material grabber; X~rP: X, but a uniformly "
                "random legal move with probability P; sf-eloN: Stockfish UCI_LimitStrength at UCI_Elo N, at "
                "depth 1 + int(level); sf-eloN@tS: the same at S seconds a move (its hash kept between moves "
                "of a game), as a user plays it")
"""What the players' names mean (the file's ``calibration.players``)."""


def calibration_ladder() -> tuple[PlayerSpec, ...]:
    """The players measured by :func:`calibrate`, weakest first, ending at :data:`FIXED`."""
    sf = PlayerSpec.stockfish(elo=1350)
    material = PlayerSpec.material()
    return (
        PlayerSpec.random(), material.with_noise(0.75), material.with_noise(0.5), material,
        *(sf.with_noise(rate) for rate in (0.35, 0.25, 0.15, 0.08, 0.04)), sf,
    )


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A player with a known rating."""

    spec: PlayerSpec
    elo: float
    lo: float
    """Lower end of the 95% interval (equal to ``elo`` for a label)."""
    hi: float
    source: str
    """``label`` (Stockfish's own calibration) or ``measured`` (our fit)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def error(self) -> float:
        return max(self.hi - self.elo, self.elo - self.lo)


@dataclasses.dataclass(frozen=True)
class AnchorSet:
    """All anchors plus how they were measured."""

    anchors: tuple[Anchor, ...]
    provenance: Mapping[str, Any]

    def __getitem__(self, name: str) -> Anchor:
        for anchor in self.anchors:
            if anchor.name == name:
                return anchor
        raise KeyError(f"no anchor named {name!r}; known: {[a.name for a in self.anchors]}")

    def sorted(self) -> list[Anchor]:
        return sorted(self.anchors, key=lambda a: a.elo)

    def nearest(self, elo: float, count: int = 2) -> list[Anchor]:
        """The ``count`` anchors closest to ``elo``, closest first."""
        return sorted(self.anchors, key=lambda a: abs(a.elo - elo))[:count]


def _spec_to_json(spec: PlayerSpec) -> dict[str, Any]:
    return {"kind": spec.kind, "params": dict(spec.params)}


def _spec_from_json(data: Mapping[str, Any]) -> PlayerSpec:
    return PlayerSpec.make(data["kind"], **data.get("params", {}))


def load_anchors(path: str | os.PathLike[str] | None = None) -> AnchorSet:
    """Read the anchors file (``path``, ``$L4D_ANCHORS``, or the packaged one).

    :raises AnchorFileError: missing or malformed; re-create it with
        ``l4demons elo --calibrate``.
    """
    where = Path(path or os.environ.get("L4D_ANCHORS") or ANCHORS_FILE)
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
        anchors = tuple(
            Anchor(_spec_from_json(row["spec"]), float(row["elo"]), float(row["lo"]), float(row["hi"]), row["source"])
            for row in data["anchors"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AnchorFileError(f"cannot read anchors from {where} ({exc}); re-create it with "
                              "`l4demons elo --calibrate`") from exc
    return AnchorSet(anchors, data.get("calibration", {}))


def save_anchors(anchor_set: AnchorSet, path: str | os.PathLike[str]) -> None:
    """Write ``anchor_set`` as JSON atomically (``.tmp`` then rename)."""
    def num(a: Anchor, x: float) -> float | int:
        return int(x) if a.source == "label" and float(x).is_integer() else round(x, 1)  # a label stays 1350

    rows = [
        {"name": a.name, "spec": _spec_to_json(a.spec), "elo": num(a, a.elo), "lo": num(a, a.lo),
         "hi": num(a, a.hi), "source": a.source}
        for a in anchor_set.sorted()
    ]
    text = json.dumps({"format": 1, "anchors": rows, "calibration": dict(anchor_set.provenance)}, indent=1)
    atomic_write(path, text + "\n")


def _stockfish_version() -> str:
    try:
        out = subprocess.run([find_stockfish()], input="uci\nquit\n", capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return next((line[8:] for line in out.stdout.splitlines() if line.startswith("id name ")), "unknown")


def calibrate(
    path: str | os.PathLike[str] | None = ANCHORS_FILE,
    *,
    games_per_pair: int = 60,
    label_check_games: int = 40,
    workers: int | None = None,
    book: str | os.PathLike[str] | None = None,
    seed: int = 0,
    max_plies: int = DEFAULT_MAX_PLIES,
    on_pair: Callable[[PairResult], None] | None = None,
    extra_anchors: Sequence[PlayerSpec] = (CLEAN_STOCKFISH,),
    extra_games: int = CLEAN_GAMES,
) -> AnchorSet:
    """Re-measure the ladder below Stockfish's floor and write the anchors file.

    Neighbours on the ladder play ``games_per_pair`` games, rungs two apart
    half that; ``label_check_games`` between adjacent low ``UCI_Elo``
    levels check that the labels hold at our depth limit (recorded only,
    not used to move the labels). Each of ``extra_anchors`` plays
    ``extra_games`` against :data:`FIXED` alone (0: none is measured).
    ``path=None`` writes nothing.
    """
    started = time.monotonic()
    ladder = calibration_ladder()
    plan = [(ladder[i + 1], ladder[i], games_per_pair) for i in range(len(ladder) - 1)]
    plan += [(ladder[i + 2], ladder[i], games_per_pair // 2) for i in range(len(ladder) - 2)]
    fixed = ladder[-1]
    taken = {r.name for r in ladder} | {PlayerSpec.stockfish(elo=e).name for e in STOCKFISH_LABELS}
    extras = [spec for spec in extra_anchors if spec.name not in taken] if extra_games > 0 else []
    plan += [(spec, fixed, extra_games) for spec in extras]
    results: list[PairResult] = []
    for k, (a, b, games) in enumerate(plan):
        results.append(_play_pair(a, b, games, workers=workers, book=book, seed=seed + k, max_plies=max_plies))
        if on_pair is not None:
            on_pair(results[-1])
    fit = fit_ratings(results, {FIXED: 1350.0})
    checks = []
    low = STOCKFISH_LABELS[:3] if label_check_games > 0 else ()
    for k, (weak_elo, strong_elo) in enumerate(zip(low, low[1:], strict=False)):
        weak, strong = PlayerSpec.stockfish(elo=weak_elo), PlayerSpec.stockfish(elo=strong_elo)
        openings = load_openings(min(MAX_OPENINGS, (label_check_games + 1) // 2), seed=seed + 100 + k,
                                 book=book)
        match = play_match(strong, weak, openings, label_check_games, workers=workers, max_plies=max_plies,
                           seed=seed + 100 + k, event="l4demons calibration")
        pair = PairResult(strong.name, weak.name, match.wins, match.draws, match.losses)
        diff = pairwise_elo(pair.wins, pair.draws, pair.losses)
        checks.append({**dataclasses.asdict(pair), "label_diff": strong_elo - weak_elo,
                       "measured_diff": round(diff.elo, 1), "lo": round(diff.lo, 1), "hi": round(diff.hi, 1)})
        if on_pair is not None:
            on_pair(pair)
    anchors = [Anchor(spec, fit[spec.name].elo, fit[spec.name].lo, fit[spec.name].hi, "measured")
               for spec in (*ladder, *extras) if spec.name != FIXED]
    anchors += [Anchor(PlayerSpec.stockfish(elo=e), e, e, e, "label") for e in STOCKFISH_LABELS]
    provenance = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": f"l4demons elo --calibrate --games {games_per_pair}",
        "method": "maximum-likelihood logistic Elo over all pairs below, draws = half a point, one virtual "
                  "draw added to a 0%/100% pairing; 95% intervals from the Fisher information",
        "fixed": {FIXED: 1350},
        "stockfish": _stockfish_version(),
        "stockfish_limit": "depth = 1 + int(level): the depth where Stockfish picks its handicapped move, "
                           "so its play approximates the 60s+0.6s calibration (without the deeper hash "
                           "entries a long search leaves; see label_checks); 1 thread, 16 MB hash",
        "games_per_pair": {"neighbours": games_per_pair, "two_apart": games_per_pair // 2,
                           "label_checks": label_check_games},
        "workers": workers if workers is not None else "one per core",
        "players": PLAYERS_NOTE,
        "labels_note": "UCI_Elo labels are Stockfish's (60s+0.6s vs CCRL 40/4); above ~1700 inflated",
        "openings": f"Polyglot book {find_book(book)}" if find_book(book) else "built-in lines",
        "max_plies": max_plies,
        "games": sum(p.games for p in results) + sum(c["wins"] + c["draws"] + c["losses"] for c in checks),
        "seconds": round(time.monotonic() - started, 1),
        "python_chess": chess.__version__,
        "results": [dataclasses.asdict(p) for p in results],
        "label_checks": checks,
    }
    if extras:
        provenance["extra_anchors"] = [_extra_note(spec, extra_games, workers) for spec in extras]
    anchor_set = AnchorSet(tuple(anchors), provenance)
    if path is not None:
        save_anchors(anchor_set, path)
        log.info("wrote %d anchors to %s", len(anchors), path)
    return anchor_set


def measure_anchor(
    spec: PlayerSpec = CLEAN_STOCKFISH,
    path: str | os.PathLike[str] | None = ANCHORS_FILE,
    *,
    games: int = CLEAN_GAMES,
    source: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    book: str | os.PathLike[str] | None = None,
    seed: int = 0,
    max_plies: int = DEFAULT_MAX_PLIES,
) -> AnchorSet:
    """Add (or re-measure) one anchor without re-measuring the ladder: ``spec`` plays ``games``
    games against :data:`FIXED` alone, and is rated by the same maximum-likelihood fit as the
    ladder (with the file's other pairings in it; a player joined to the fixed anchor alone
    moves no one else). The anchors of ``source`` (default: the packaged file or
    ``$L4D_ANCHORS``) with ``spec`` added, its games in ``results``, are written to ``path``
    (``None``: nothing written).

    :raises AnchorFileError: ``source`` cannot be read.
    :raises ValueError: ``spec`` is a rung of the ladder or a labelled anchor (re-measure those
        with :func:`calibrate`), or ``games`` is not positive.
    """
    if games < 1:
        raise ValueError(f"games must be at least 1, got {games}")
    old = load_anchors(source)
    if spec.name in {r.name for r in calibration_ladder()} or any(
            a.name == spec.name and a.source == "label" for a in old.anchors):
        raise ValueError(f"{spec.name} is part of the ladder; re-measure it with `l4demons elo --calibrate`")
    started, load = time.monotonic(), _load()
    pair = _play_pair(spec, calibration_ladder()[-1], games, workers=workers, book=book, seed=seed + 1000,
                      max_plies=max_plies)
    provenance = dict(old.provenance)
    earlier = [r for r in provenance.get("results", []) if spec.name not in (r["a"], r["b"])]
    dropped = sum(r["wins"] + r["draws"] + r["losses"] for r in provenance.get("results", [])) - sum(
        r["wins"] + r["draws"] + r["losses"] for r in earlier)
    results = [PairResult(r["a"], r["b"], r["wins"], r["draws"], r["losses"]) for r in earlier] + [pair]
    fit = fit_ratings(results, {FIXED: 1350.0})[spec.name]
    note = _extra_note(spec, games, workers)
    note.update(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                command=f"l4demons.elo.anchors.measure_anchor(PlayerSpec.make({spec.kind!r}, "
                        f"**{dict(spec.params)!r}), games={games})",
                seconds=round(time.monotonic() - started, 1), load_at_start=load)
    provenance.update(
        results=[dataclasses.asdict(r) for r in results],
        games=int(provenance.get("games", 0)) - dropped + pair.games,
        extra_anchors=[n for n in provenance.get("extra_anchors", []) if n.get("name") != spec.name] + [note],
        players=PLAYERS_NOTE,
    )
    anchors = tuple(a for a in old.anchors if a.name != spec.name) + (
        Anchor(spec, fit.elo, fit.lo, fit.hi, "measured"),)
    anchor_set = AnchorSet(anchors, provenance)
    if path is not None:
        save_anchors(anchor_set, path)
        log.info("%s: %.0f [%.0f, %.0f] from %d games against %s; wrote %s", spec.name, fit.elo, fit.lo, fit.hi,
                 pair.games, FIXED, path)
    return anchor_set


def _play_pair(a: PlayerSpec, b: PlayerSpec, games: int, *, workers: int | None, book, seed: int,
               max_plies: int) -> PairResult:
    openings = load_openings(min(MAX_OPENINGS, max(1, (games + 1) // 2)), seed=seed, book=book)
    match = play_match(a, b, openings, games, workers=workers, max_plies=max_plies, seed=seed,
                       event="l4demons calibration")
    return PairResult(a.name, b.name, match.wins, match.draws, match.losses)


def _machine() -> str:
    """The CPU's model name and core count, e.g. ``AMD EPYC 7B13, 2 cores``."""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{model or platform.machine() or 'unknown CPU'}, {os.cpu_count()} cores"


def _load() -> float | None:
    """The machine's one-minute load average (a time-limited player is weaker on a busy machine)."""
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return None


def _extra_note(spec: PlayerSpec, games: int, workers: int | None) -> dict[str, Any]:
    """How an extra anchor was measured: against whom, how many games, on what machine."""
    return {"name": spec.name, "against": FIXED, "games": games,
            "machine": _machine(),
            "workers": workers if workers is not None else "one per core",
            "note": "measured against the fixed anchor alone, so the ladder's other ratings do not move; "
                    "a time-limited player's strength depends on the machine's speed"}


def performance(anchor: Anchor, wins: int, draws: int, losses: int) -> EloInterval:
    """Rating shown against one anchor: its rating plus the pairwise difference."""
    diff = pairwise_elo(wins, draws, losses)
    return EloInterval(anchor.elo + diff.elo, anchor.elo + diff.lo, anchor.elo + diff.hi, diff.games)

