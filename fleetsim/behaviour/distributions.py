"""Random quantities a behaviour draws: session lengths, energies, powers, answer delays.

A `Distribution` is a small frozen value with a `sample(rng)` and an analytic `mean`, so that
profile summaries can say what a fleet will do before it runs and tests can check what it did.
Truncation (`low`/`high`) clamps samples, as real EV sessions have floors and ceilings.
"""

from __future__ import annotations

import functools
import math
import random
from typing import Any, Literal

import attrs

from fleetsim.behaviour.random_stream import Rng

__all__ = ["Distribution", "as_distribution"]

Kind = Literal["fixed", "uniform", "normal", "lognormal", "exponential"]


def _finite_non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen
class Distribution:
    """`fixed` (mean), `uniform` (low..high), `normal`/`lognormal` (mean, sd) and `exponential`
    (mean); every kind is clamped to [low, high]."""

    kind: Kind = "fixed"
    mean: float = attrs.field(default=0.0, validator=_finite_non_negative)
    sd: float = attrs.field(default=0.0, validator=_finite_non_negative)
    low: float = attrs.field(default=0.0, validator=_finite_non_negative)
    high: float = attrs.field(default=math.inf)

    def __attrs_post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"high ({self.high:g}) must not be below low ({self.low:g})")
        if self.kind == "uniform" and not math.isfinite(self.high):
            raise ValueError("a uniform distribution needs both low and high")
        if self.kind in ("normal", "lognormal") and self.sd <= 0:
            raise ValueError(f"a {self.kind} distribution needs sd > 0")
        if self.kind in ("lognormal", "exponential") and self.mean <= 0:
            raise ValueError(f"a {self.kind} distribution needs mean > 0")

    def sample(self, rng: Rng) -> float:
        kind = self.kind
        if kind == "fixed":
            value = self.mean
        elif kind == "uniform":
            return rng.uniform(self.low, self.high)
        elif kind == "exponential":
            value = rng.expovariate(1.0 / self.mean)
        elif kind == "normal":
            value = rng.gauss(self.mean, self.sd)
        else:
            sigma2 = math.log1p((self.sd / self.mean) ** 2)
            value = rng.lognormvariate(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2))
        return min(max(value, self.low), self.high)

    @property
    def expected(self) -> float:
        """The mean after clamping, for rate estimates (clamping a long tail moves it)."""
        if self.kind == "uniform":
            return (self.low + self.high) / 2
        if self.kind == "fixed":
            return min(max(self.mean, self.low), self.high)
        return _sampled_mean(self)

    def length_biased(self, rng: Rng) -> float:
        """A sample weighted by its own size: the total length of a session found in progress
        at a random instant (longer sessions are more likely to be caught), by rejection."""
        ceiling = self.high if math.isfinite(self.high) else _sampled_max(self)
        if ceiling <= 0:
            return 0.0
        while True:
            value = self.sample(rng)
            if rng.random() * ceiling <= value:
                return value

    def scaled(self, factor: float) -> Distribution:
        """The same shape in other units (seconds / time scale, kWh to Wh...)."""
        return Distribution(self.kind, self.mean * factor, self.sd * factor, self.low * factor,
                            self.high * factor)


@functools.cache
def _sampled_mean(distribution: Distribution) -> float:
    """A fixed-seed Monte Carlo mean: deterministic, and within a fraction of a percent."""
    rng = random.Random(0)
    return math.fsum(distribution.sample(rng) for _ in range(_MEAN_SAMPLES)) / _MEAN_SAMPLES


_MEAN_SAMPLES = 50_000


@functools.cache
def _sampled_max(distribution: Distribution) -> float:
    rng = random.Random(0)
    return max(distribution.sample(rng) for _ in range(_MEAN_SAMPLES))


def as_distribution(value: Distribution | float | tuple[float, float]) -> Distribution:
    """A number is a fixed value; a (low, high) pair is uniform, as the CLI's LOW-HIGH ranges."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, tuple):
        low, high = value
        if low == high:
            return Distribution("fixed", float(low), low=float(low), high=float(high))
        return Distribution("uniform", low=float(low), high=float(high))
    return Distribution("fixed", float(value))
