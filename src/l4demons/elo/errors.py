"""Exceptions of the Elo machinery; each message says what to do."""

from __future__ import annotations


class EloError(Exception):
    """Base class of failures while measuring Elo."""


class StockfishNotFound(EloError, FileNotFoundError):
    """No Stockfish binary where we looked (flag, ``L4D_STOCKFISH``, PATH, /usr/games)."""


class UnknownPlayerKind(EloError, ValueError):
    """A :class:`~l4demons.elo.players.PlayerSpec` names a kind nobody registered."""


class BadTimeControl(EloError, ValueError):
    """A ``--tc`` the player cannot use; the message lists the forms it can."""


class AnchorFileError(EloError, ValueError):
    """The anchors file is missing, unreadable or lacks a field."""


class PlotUnavailable(EloError, ImportError):
    """matplotlib is not installed; ``pip install matplotlib`` (or ``l4demons[plot]``)."""
