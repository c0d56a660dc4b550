"""Elo, measured against calibrated opponents (see ``docs/elo.md``).

Modules, bottom up:

* :mod:`~l4demons.elo.rating`: the arithmetic (ML fit, intervals, LOS, SPRT).
* :mod:`~l4demons.elo.players`, :mod:`~l4demons.elo.engines`: who plays
  (random mover, material grabber, Stockfish, the net) and the picklable
  :class:`PlayerSpec` that builds them in worker processes.
* :mod:`~l4demons.elo.openings`, :mod:`~l4demons.elo.game`,
  :mod:`~l4demons.elo.pool`, :mod:`~l4demons.elo.match`: where games
  start, one game, the worker processes that play them, and matches
  with PGN.
* :mod:`~l4demons.elo.anchors`: known ratings, and :func:`calibrate`.
* :mod:`~l4demons.elo.estimate`, :mod:`~l4demons.elo.h2h`: what the
  lifecycle and the CLI call. :mod:`~l4demons.elo.report`: the PNG.

Stockfish lives only here, as an opponent; the bot never imports this
package.
"""

from l4demons.elo.anchors import Anchor, AnchorSet, calibrate, load_anchors
from l4demons.elo.errors import AnchorFileError, BadTimeControl, EloError, PlotUnavailable, StockfishNotFound
from l4demons.elo.estimate import EloEstimate, apply_tc, format_table, full_measurement, quick_estimate
from l4demons.elo.h2h import HeadToHead, format_head_to_head, head_to_head
from l4demons.elo.players import PlayerSpec
from l4demons.elo.report import draw_report

__all__ = [
    "Anchor", "AnchorFileError", "AnchorSet", "BadTimeControl", "EloError", "EloEstimate", "HeadToHead", "PlayerSpec",
    "PlotUnavailable", "StockfishNotFound", "apply_tc", "calibrate", "draw_report", "format_head_to_head",
    "format_table", "full_measurement", "head_to_head", "load_anchors", "quick_estimate",
]
