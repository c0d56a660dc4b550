"""Self-play: many games at once in one process, each move a Gumbel search.

All games in flight share every network call (one
:func:`l4demons.search.run_step` per call), so a CPU core sees batches of
hundreds of leaves instead of one. The games run in the compiled core
(:mod:`l4demons.core`) when it is available: it fills one contiguous batch
and Python only runs the network. The Python implementation (:mod:`.reference`) is the
reference the core is tested against and the fallback without it; both
play the same games for the same seed (each game draws its random numbers
from its own :class:`~l4demons.search.noise.NoiseStream`).

- Playout-cap randomisation (KataGo): a fraction of moves get a full search
  and become policy targets; the rest get a fast search and only teach the
  value head. More games per hour, same policy-target quality.
- Resignation when the search value stays below a threshold; a fraction of
  games is played out anyway and reports whether resigning would have been
  wrong.
- Draw adjudication when the search value stays near zero late in a game
  (off by default: an untrained net calls every position a draw).
- A maximum game length; at that length the game is a draw, or, with
  material adjudication on, a win for the side at least N pawns ahead; and
  a lead of ``material_win`` pawns kept for ``material_win_plies`` plies
  ends the game as a win. These are training-label heuristics for
  bootstrapping (an untrained net's games rarely end in mate), never used
  in play; ``--adjudicate-material 0 --material-win 0`` turns them off.
- Play-on (KataGo's reduced visits once a game is decided; on by default):
  with ``play_on_simulations`` set, the material rule no longer ends a game but
  marks it decided, and the game goes on with searches of that many
  simulations, never full ones (``full_search`` 0: those positions teach
  the value head only), to mate, stalemate, another rule of chess or the
  length cap. A decided game is played as one from a won ending
  (:mod:`l4demons.endgames`): no material rule and no resignation (a
  would-be resignation is recorded as in a played-out game), so its label
  is the real outcome; ``GameRecord.played_on`` counts its cheap plies.
- Starts other than the opening (:func:`game_starts`): a share of games
  from the opening a piece short (:mod:`l4demons.odds`, played by the
  usual rules; a tenth by default) and, optionally, a share from simple
  won endings (:mod:`l4demons.endgames`).

A finished game is a :class:`GameRecord` of compact arrays: about 100 bytes
per position plus the sparse policy.

The package: :mod:`.config` (what to play and where games start),
:mod:`.record` (how a game ends and what it leaves), :mod:`.reference` and
:mod:`.compiled` (the two implementations); :func:`play_games` picks one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from l4demons import core
from l4demons.search import Evaluator
from l4demons.selfplay.compiled import play_compiled
from l4demons.selfplay.config import SelfPlayConfig, game_starts
from l4demons.selfplay.record import GameRecord, game_over, rescore
from l4demons.selfplay.reference import play_reference

__all__ = ["GameRecord", "SelfPlayConfig", "game_over", "game_starts", "play_games", "rescore"]


def play_games(
    evaluator: Evaluator,
    cfg: SelfPlayConfig,
    n_games: int,
    rng: np.random.Generator,
    on_game: Callable[[GameRecord], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    compiled: bool | None = None,
) -> list[GameRecord]:
    """Play ``n_games`` with up to ``cfg.concurrent_games`` in flight.

    Games do not wait for each other: every network call takes the leaves
    that each game's current search wants now, and a game whose search has
    finished plays its move and starts the next search at once, so batches
    stay large. ``should_stop`` is polled between network calls; when it
    turns true the games in flight are dropped and the finished ones returned.
    ``compiled`` picks the compiled core (True) or the Python reference
    (False); the default uses the core when :func:`l4demons.core.enabled`.
    """
    seed = int(rng.integers(0, 2**63))
    if core.enabled() if compiled is None else compiled:
        return play_compiled(evaluator, cfg, n_games, seed, on_game, should_stop)
    return play_reference(evaluator, cfg, n_games, seed, on_game, should_stop)

