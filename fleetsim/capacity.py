"""Capacity ramps: grow the fleet in steps, hold each, stop at the first step that breaks an
SLO, and name the knee, the largest fleet size that held every SLO.

A step starts its new chargers at the run's ramp rate, waits until every charger of the step
has booted (at most `settle_timeout_s` after the last one started), waits `settle_s` more, and
then *holds* for `every_s`. Only the hold is judged: its CALLs go into HDR histograms of their
own (`Metrics.open_window`), so a step's p99 is exact, and the connect-and-boot burst of the
step's new chargers is left out (the handshakes are the exception: they count from the step's
start, since that is when they happen).

SLOs are threshold rules (`fleetsim.thresholds`) evaluated by `evaluate` on the hold's report
(`window_report`), unchanged. A step holds when every SLO held and all its chargers booted in
time. The first step that does not hold ends the ramp, and the fleet stops gracefully as at the
end of a spawn. If the generator was saturated during that step's hold (CPU >= 90 % of a core
or event-loop lag p99 >= 50 ms), the limit found is fleetsim's own, and the verdict says so
rather than blame the CSMS.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import trio

from fleetsim.errors import ConfigError
from fleetsim.fleet import Fleet
from fleetsim.metrics import SATURATED_CPU, SATURATED_LAG_MS, Metrics, Window
from fleetsim.pacing import MIN_PER_S
from fleetsim.report import broken, window_report
from fleetsim.thresholds import Threshold, evaluate, parse_threshold

__all__ = ["Ramp", "RampPlan", "conclude", "step_result"]

MAX_CHARGERS: Final = 1_000_000
_POLL_S: Final = 0.05


def _count(option: str, minimum: int) -> Callable[[Any, Any, int], None]:
    def check(_instance: Any, _attribute: Any, value: int) -> None:
        if not isinstance(value, int) or not minimum <= value <= MAX_CHARGERS:
            raise ConfigError(f"{option}: expected {minimum} to {MAX_CHARGERS:,} chargers, "
                              f"got {value}")
    return check


def _seconds(option: str, *, positive: bool) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: float | None) -> None:
        if value is not None and not (value > 0 if positive else value >= 0):
            raise ConfigError(f"{option}: must be {'positive' if positive else 'zero or more'}"
                              f", got {value:g}")
    return check


def _slos(values: Sequence[str | Threshold]) -> tuple[Threshold, ...]:
    """Rules parsed before anything runs: a malformed one is refused with the grammar."""
    if isinstance(values, str):
        values = (values,)  # one rule, not its characters
    slos = []
    for value in values:
        if isinstance(value, Threshold):
            slos.append(value)
            continue
        try:
            slos.append(parse_threshold(value))
        except ConfigError as exc:
            raise ConfigError(f"slo: {exc}") from None
    return tuple(slos)


@attrs.frozen
class RampPlan:
    """The steps of a capacity ramp: `start`, `start + step`, ... up to `max` chargers (the
    last step is `max` even if the steps do not land on it), each held `every_s` seconds."""

    start: int = attrs.field(validator=_count("start", 1))
    step: int = attrs.field(validator=_count("step", 1))
    every_s: float = attrs.field(validator=_seconds("every", positive=True))
    max: int = attrs.field(validator=_count("max", 1))
    slos: tuple[Threshold, ...] = attrs.field(default=(), converter=_slos)
    """Rules every step's hold must meet; without any, every step holds up to `max`."""
    settle_s: float = attrs.field(default=0.0, validator=_seconds("settle", positive=False))
    """Extra wait between the step's last boot and its hold."""
    settle_timeout_s: float | None = attrs.field(
        default=None, validator=_seconds("settle-timeout", positive=True))
    """How long the step's chargers have to boot after the last one started; None: `every_s`."""

    def __attrs_post_init__(self) -> None:
        if self.max < self.start:
            raise ConfigError(f"max: must be at least start ({self.start}), got {self.max}")

    @property
    def boot_timeout_s(self) -> float:
        return self.every_s if self.settle_timeout_s is None else self.settle_timeout_s

    def sizes(self) -> list[int]:
        """The fleet size of each step."""
        sizes = list(range(self.start, self.max + 1, self.step))
        if sizes[-1] != self.max:
            sizes.append(self.max)
        return sizes

    def longest_s(self, ramp_per_s: float | None) -> float:
        """The longest the ramp can take: every step ramped in, timed out booting, held
        (`--ramp auto` is taken at its slowest pace)."""
        per_step = self.boot_timeout_s + self.settle_s + self.every_s
        return self.max / (ramp_per_s or MIN_PER_S) + len(self.sizes()) * per_step

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "step": self.step, "every_s": self.every_s,
                "max": self.max, "settle_s": self.settle_s,
                "settle_timeout_s": self.boot_timeout_s,
                "slos": [slo.text for slo in self.slos]}


# -- judging steps (pure) --------------------------------------------------------------------


def step_result(
    number: int, chargers: int, slos: Sequence[Threshold], hold: Window, duration_s: float, *,
    started_at_s: float, hold_started_at_s: float, settled: bool, booted: int,
    cpu_share: float | None, saturated_seconds: int = 0, queued: int = 0,
) -> dict[str, Any]:
    """One step's entry in the report's `ramp.steps`, its SLOs judged on the hold's window."""
    window = window_report(hold, duration_s)
    verdicts = evaluate(slos, window)
    totals = window["totals"]
    response = window["response_ms"]
    lag_p99 = window["loop_lag_ms"]["p99"]
    return {
        "step": number,
        "chargers": chargers,
        "started_at_s": round(started_at_s, 3),
        "hold_started_at_s": round(hold_started_at_s, 3),
        "duration_s": window["duration_s"],
        "settled": settled,
        "booted": booted,
        "sent": totals["sent"],
        "ok": totals["ok"],
        "errors": totals["errors"],
        "calls_per_s": totals["throughput_cps"],
        "sent_per_s": totals["sent_per_s"],
        "p50_ms": response["p50"],
        "p99_ms": response["p99"],
        "p99_9_ms": response["p99_9"],
        "service_p99_ms": window["service_ms"]["p99"],
        "error_rate": totals["error_rate"],
        "queued": queued,
        "connects": window["connect"]["count"],
        "connect_failures": window["connect"]["failures"],
        "slos": [verdict.as_dict() for verdict in verdicts],
        "held": settled and all(verdict.ok for verdict in verdicts),
        "cpu_share": None if cpu_share is None else round(cpu_share, 3),
        "loop_lag_p99_ms": lag_p99,
        "saturated": (cpu_share or 0.0) >= SATURATED_CPU or lag_p99 >= SATURATED_LAG_MS,
        "saturated_seconds": saturated_seconds,
        "hdr": window["hdr"],
    }


def conclude(plan: RampPlan, steps: list[dict[str, Any]], stopped_by: str) -> dict[str, Any]:
    """The report's `ramp` section: the plan, the steps, the knee and the verdict."""
    held = [step for step in steps if step["held"]]
    knee = held[-1]["chargers"] if held else None
    failed = steps[-1] if steps and not steps[-1]["held"] else None
    limit = None
    if failed is not None:
        because = "slo" if any(not v["ok"] for v in failed["slos"]) else "not_settled"
        limit = "generator" if failed["saturated"] else "csms"
        verdict = _failure_verdict(failed, knee, limit)
    elif steps and steps[-1]["chargers"] == plan.max:
        because = "max"
        verdict = (f"Every step held every SLO, up to the last ({plan.max} chargers): the knee "
                   "is beyond it; raise --max to find it.")
    else:
        because = "unreachable" if stopped_by == "unreachable" else "interrupted"
        verdict = ("The target could not be reached." if because == "unreachable" else
                   f"Interrupted after {len(steps)} complete step(s).")
        if knee is not None:
            verdict += " The knee is the largest fleet that held every SLO so far."
    return {"plan": plan.as_dict(), "steps": steps, "knee": knee, "stopped_because": because,
            "limit": limit, "verdict": verdict}


def _failure_verdict(failed: dict[str, Any], knee: int | None, limit: str) -> str:
    what = f"At {failed['chargers']} chargers {broken(failed)}"
    if limit == "generator":
        cpu = failed["cpu_share"]
        load = "" if cpu is None else f"CPU {cpu * 100:.0f}% of a core, "
        held = (f" The CSMS held {knee} chargers at least." if knee is not None
                else " Nothing is known of the CSMS's capacity.")
        return (f"{what}, but fleetsim itself was saturated ({load}event-loop lag p99 "
                f"{failed['loop_lag_p99_ms']:.0f} ms): the generator, not the CSMS, was the "
                f"limit.{held} A ramp runs in one process: to judge the CSMS at "
                f"{failed['chargers']} chargers, run `fleetsim spawn -u {failed['chargers']} "
                "--workers auto` with the same options and these SLOs as --threshold.")
    if knee is None:
        return f"The first step already failed. {what}: start lower."
    return f"{what}: the CSMS was the limit."


# -- the driver (trio) -----------------------------------------------------------------------


class Ramp:
    """Drives a running fleet through a plan: `await fleet.run(driver=ramp)`, then
    `conclude(plan, ramp.steps, outcome.stopped_by)`."""

    def __init__(self, fleet: Fleet, metrics: Metrics, plan: RampPlan,
                 on_step: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.fleet = fleet
        self.metrics = metrics
        self.plan = plan
        self.steps: list[dict[str, Any]] = []
        self._on_step = on_step

    async def __call__(self) -> None:
        for number, size in enumerate(self.plan.sizes(), 1):
            step = await self._step(number, size)
            if step is None:
                return  # the fleet is stopping: a signal or an unreachable target
            self.steps.append(step)
            if self._on_step is not None:
                self._on_step(step)
            if not step["held"]:
                break
        self.fleet.stop("ramp")

    async def _step(self, number: int, size: int) -> dict[str, Any] | None:
        fleet, metrics = self.fleet, self.metrics
        began = trio.current_time()
        window = metrics.open_window()
        await fleet.grow(size)
        with trio.move_on_after(self.plan.boot_timeout_s):
            while len(metrics.booted_ids) < size and not fleet.stopping:
                await trio.sleep(_POLL_S)
        settled = len(metrics.booted_ids) >= size
        if not await self._unless_stopped(self.plan.settle_s):
            return None
        opened, cpu = trio.current_time(), time.process_time()
        window.start_hold()
        held = await self._unless_stopped(self.plan.every_s)
        metrics.close_window()
        if not held:
            return None
        closed = trio.current_time()
        span = closed - opened
        start, end = opened - fleet.t0, closed - fleet.t0
        saturated = sum(1 for row in metrics.timeline
                        if start < row["t"] <= end and row["saturated"])
        judge = functools.partial(
            step_result, number, size, self.plan.slos, window, span,
            started_at_s=began - fleet.t0, hold_started_at_s=start, settled=settled,
            booted=metrics.booted_now, cpu_share=(time.process_time() - cpu) / span,
            saturated_seconds=saturated, queued=metrics.queued)
        # hdrh encodes, decodes and reads percentiles in Python, some 30 ms for a step's
        # histograms: in a thread, so that the fleet's event loop keeps time meanwhile
        return await trio.to_thread.run_sync(judge)

    async def _unless_stopped(self, seconds: float) -> bool:
        """Wait `seconds`; False if the fleet was told to stop meanwhile."""
        if seconds > 0:
            with trio.move_on_after(seconds):
                await self.fleet.wait_stopping()
        return not self.fleet.stopping
