"""Each charger's own random stream, in under 100 bytes.

Every charger draws from a stream of its own, seeded from the run's seed and its ID, so that
the same seed plays the same fleet whatever order the chargers run in. `random.Random` would
do, but its Mersenne Twister state is 2.5 KiB per charger: an eighth of an idle charger's
memory. `RandomStream` keeps 64 bits (SplitMix64, which passes BigCrush and is what Java's
SplittableRandom uses) and draws its distributions with the standard library's own code.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import MutableSequence, Sequence
from typing import Any, TypeVar, cast

__all__ = ["RandomStream", "Rng"]

_MASK = (1 << 64) - 1
_T = TypeVar("_T")
_R = random.Random


class RandomStream:
    """The part of `random.Random`'s interface the chargers use."""

    __slots__ = ("_state", "gauss_next")

    def __init__(self, seed: str) -> None:
        digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
        self._state = int.from_bytes(digest, "big")
        self.gauss_next: float | None = None
        """Used by `random.Random.gauss`, as on a Random."""

    def _next(self) -> int:
        state = self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1), 53 random bits, as `random.Random.random`."""
        return (self._next() >> 11) * (1.0 / (1 << 53))

    def getrandbits(self, k: int) -> int:
        bits, have = 0, 0
        while have < k:
            bits, have = (bits << 64) | self._next(), have + 64
        return bits >> (have - k)

    def _randbelow(self, n: int) -> int:
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return r

    # The distributions are the standard library's, run on this stream.
    @property
    def _as_random(self) -> _R:
        return cast(_R, self)

    def uniform(self, a: float, b: float) -> float:
        return _R.uniform(self._as_random, a, b)

    def expovariate(self, lambd: float) -> float:
        return _R.expovariate(self._as_random, lambd)

    def normalvariate(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return _R.normalvariate(self._as_random, mu, sigma)

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return _R.gauss(self._as_random, mu, sigma)

    def lognormvariate(self, mu: float, sigma: float) -> float:
        return _R.lognormvariate(self._as_random, mu, sigma)

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return _R.randrange(self._as_random, start, stop, step)

    def randint(self, a: int, b: int) -> int:
        return _R.randint(self._as_random, a, b)

    def choice(self, seq: Sequence[_T]) -> _T:
        return _R.choice(self._as_random, seq)

    def choices(self, population: Sequence[_T], weights: Sequence[float] | None = None, *,
                cum_weights: Sequence[float] | None = None, k: int = 1) -> list[_T]:
        return _R.choices(self._as_random, population, weights, cum_weights=cum_weights, k=k)

    def sample(self, population: Sequence[_T], k: int) -> list[_T]:
        return _R.sample(self._as_random, population, k)

    def shuffle(self, x: MutableSequence[Any]) -> None:
        _R.shuffle(self._as_random, x)


Rng = random.Random | RandomStream
"""What the charger side draws from: a charger's stream, or a Random (tests, tools)."""
