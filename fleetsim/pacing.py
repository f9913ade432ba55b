"""`--ramp auto`: how many chargers to start per second, decided from what the run shows.

Sans-IO: the fleet measures, this decides. Every `STEP_S` the fleet reports the step's worst
event-loop lag, the CPU share the generator used and the mean WebSocket handshake time. The
pace doubles while all three are fine (slow start, as TCP's); a late event loop, a CPU share
over `CPU_LIMIT` or handshakes that slow down halve it; in between it steers the CPU share
towards `CPU_TARGET`. So the default does not saturate the generator with its own start-up
and boots as fast as the machine and the CSMS allow: a CSMS whose handshakes slow down under
the connection rate slows the ramp too. It never drops below `MIN_PER_S`, so the fleet
reaches its size even when running it alone keeps the generator busy.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

__all__ = ["AutoPace", "Verdict"]

STEP_S: Final = 0.25
"""How often the pace is decided."""
LAG_BOUND_S: Final = 0.020
"""A timer this late means the generator is near its limit (saturated is 50 ms)."""
CPU_TARGET: Final = 0.80
"""The generator's CPU share (of one core) the pace steers to (saturated is 90 %)..."""
CPU_LIMIT: Final = 0.90
"""...and above which it halves."""
HANDSHAKE_GROWTH: Final = 4.0
HANDSHAKE_SLACK_S: Final = 0.050
"""The CSMS is struggling when its handshakes take 4 times the quickest step's mean and
50 ms more than it."""
START_PER_S: Final = 50.0
MIN_PER_S: Final = 20.0
MAX_PER_S: Final = 20_000.0

Verdict = str
"""What the last step decided: "slow start", "steer", "back off (lag)", "back off (CPU)",
"back off (handshakes)"."""


@attrs.define
class AutoPace:
    """The pace of `--ramp auto`, in chargers started per second."""

    per_s: float = START_PER_S
    slow_start: bool = True
    verdict: Verdict = "slow start"
    _quickest_handshake_s: float = math.inf

    def step(self, lag_s: float, cpu_share: float | None, handshake_s: float | None) -> float:
        """One step's measurements in, the pace for the next step out. `cpu_share` and
        `handshake_s` are None when the step could not tell (no CPU clock, no handshake)."""
        if handshake_s is not None:
            self._quickest_handshake_s = min(self._quickest_handshake_s, handshake_s)
        quickest = self._quickest_handshake_s
        if lag_s > LAG_BOUND_S:
            self.verdict = "back off (lag)"
        elif cpu_share is not None and cpu_share > CPU_LIMIT:
            self.verdict = "back off (CPU)"
        elif (handshake_s is not None and handshake_s > quickest * HANDSHAKE_GROWTH
              and handshake_s > quickest + HANDSHAKE_SLACK_S):
            self.verdict = "back off (handshakes)"
        elif self.slow_start and (cpu_share is None or cpu_share < CPU_TARGET):
            self.verdict = "slow start"
            self.per_s *= 2
        else:
            self.verdict = "steer"
            self.slow_start = False
            if cpu_share is not None:  # damped: the step's CPU answers earlier steps' starts
                self.per_s *= min(1.5, max(0.7, (CPU_TARGET / max(cpu_share, 0.01)) ** 0.5))
        if self.verdict.startswith("back off"):
            self.slow_start = False
            self.per_s /= 2
        self.per_s = min(MAX_PER_S, max(MIN_PER_S, self.per_s))
        return self.per_s
