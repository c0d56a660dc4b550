"""Warm starts: supervised training from a teacher engine or PGN games before self-play (``l4demons pretrain``).

:mod:`.labels` turns a teacher's judgement into targets, :mod:`.pgn` reads
games, :mod:`.hub_positions` draws the hub's own self-play positions for the
teacher to label, :mod:`.run` collects, trains and commits like a cycle.
"""

from l4demons.pretrain.run import PretrainConfig, PretrainError, WarmStart

__all__ = ["PretrainConfig", "PretrainError", "WarmStart"]
