"""The random numbers of self-play, drawn the same way in Python and in the compiled core.

SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit counter through a mixing
function; tiny, fast, and easy to write identically in two languages
(``_core/noise.hpp`` is the other copy). With the same seed, the reference
search and the compiled one see the same uniforms and the same Gumbels, so
tests can compare their moves and policy targets position by position.

Each self-play game draws from its own stream (:func:`game_seed`), so a
game's moves do not depend on which other games happened to share its
network calls.
"""

from __future__ import annotations

import math

import numpy as np

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    """SplitMix64's output function (a bijection of 64-bit integers)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def game_seed(seed: int, index: int) -> int:
    """The stream of game number ``index`` of a self-play run seeded with ``seed``."""
    return mix64((seed & _MASK) ^ mix64((index + 0x632BE59BD9B4E019) & _MASK))


class NoiseStream:
    """A SplitMix64 stream with the two draws self-play needs, named as numpy's Generator names them."""

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    def _next(self) -> int:
        self._state = (self._state + _GAMMA) & _MASK
        return mix64(self._state)

    def random(self) -> float:
        """Uniform in [0, 1) (53 random bits)."""
        return (self._next() >> 11) * 2.0**-53

    def gumbel(self, size: int) -> np.ndarray:
        """``size`` standard Gumbels, ``-log(-log(u))`` with u strictly inside (0, 1)."""
        out = np.empty(size)
        for i in range(size):
            u = ((self._next() >> 12) + 0.5) * 2.0**-52
            out[i] = -math.log(-math.log(u))
        return out
