"""Open schedules: when a charger *means* to act, whatever the CSMS is doing.

Pure functions of the current instant and a seeded `random.Random`, so the same seed plays the
same stream and tests can check rates and boundaries over simulated hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Final, Literal

import attrs

from fleetsim.behaviour.random_stream import Rng

__all__ = [
    "NEVER", "Backoff", "Burst", "Storm", "Surge", "assign_behaviours", "next_aligned",
    "next_poisson",
]

NEVER: Final = math.inf


@attrs.frozen
class Surge:
    """A window, in seconds from the run's start, in which a rate is multiplied by `factor`."""

    start_s: float
    end_s: float
    factor: float


def next_poisson(now: float, rate_per_s: float, rng: Rng,
                 surges: Sequence[Surge] = (), origin: float = 0.0) -> float:
    """The next arrival after `now` of a Poisson process whose rate surges in windows.

    Exact for a piecewise-constant rate: draw a unit exponential "hazard budget" and spend it
    segment by segment (the process is memoryless, so no arrival is lost or invented at a
    window's edge).
    """
    if rate_per_s <= 0:
        return NEVER
    budget = rng.expovariate(1.0)
    t = now
    edges = sorted({origin + edge for surge in surges for edge in (surge.start_s, surge.end_s)
                    if origin + edge > now})
    for edge in (*edges, NEVER):
        factor = 1.0
        for surge in surges:
            if origin + surge.start_s <= t < origin + surge.end_s:
                factor *= surge.factor
        rate = rate_per_s * factor
        if rate > 0:
            if edge == NEVER or budget <= rate * (edge - t):
                return t + budget / rate
            budget -= rate * (edge - t)
        t = edge
    return NEVER


def next_aligned(wall: float, interval_s: float) -> float:
    """The next wall-clock instant after `wall` that is a multiple of `interval_s` (OCPP's
    ClockAlignedDataInterval: every charger samples at the same boundaries)."""
    return (math.floor(wall / interval_s) + 1) * interval_s


@attrs.frozen
class Backoff:
    """How a charger waits before reconnecting: OCPP 2.0.1's RetryBackOffWaitMinimum, doubled
    per failed attempt up to RetryBackOffRepeatTimes times, plus up to RetryBackOffRandomRange
    of jitter. `fixed` never doubles; `none` reconnects at once (a thundering herd)."""

    policy: Literal["none", "fixed", "exponential"] = "exponential"
    wait_minimum_s: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    random_range_s: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    repeat_times: int = attrs.field(default=6, validator=attrs.validators.in_(range(0, 31)))

    def delay(self, failures: int, rng: Rng) -> float:
        """The wait before the next attempt after `failures` failed ones in a row."""
        if self.policy == "none":
            return 0.0
        wait = self.wait_minimum_s
        if self.policy == "exponential":
            wait *= 2 ** min(failures, self.repeat_times)
        return wait + rng.uniform(0.0, self.random_range_s)


def assign_behaviours(weights: Sequence[float], chargers: int, seed: int) -> list[int]:
    """Behaviour index per charger (0-based charger order): exact shares by largest remainder,
    shuffled by the seed, so any slice of the fleet gets the same assignment."""
    total = sum(weights)
    quotas = [weight * chargers / total for weight in weights]
    counts = [math.floor(quota) for quota in quotas]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - quotas[i], i))
    for i in by_remainder[: chargers - sum(counts)]:
        counts[i] += 1
    labels = [i for i, count in enumerate(counts) for _ in range(count)]
    random.Random(f"{seed}:behaviours").shuffle(labels)
    return labels


@attrs.frozen
class Storm:
    """A reconnect storm: from `at_s`, a `share` of the fleet drops within `within_s`."""

    at_s: float
    share: float
    within_s: float


@attrs.frozen
class Burst:
    """A MeterValues burst: at `at_s`, a `share` of the fleet sends a clock-aligned sample."""

    at_s: float
    share: float = 1.0
