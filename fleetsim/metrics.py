"""Run metrics: HDR latency histograms, outcome counters and the per-second timeline.

Recording is a few integer operations into pre-allocated histograms, cheap enough for the hot
path; percentiles are computed only when a timeline row or the report is made. Pure Python,
no I/O: the fleet shell feeds it timestamps it read from its own clock.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from hdrh.histogram import HdrHistogram

__all__ = [
    "CONNECT_PHASES",
    "HISTOGRAM_RANGE_US",
    "PERCENTILES",
    "ActionStats",
    "CsmsCallStats",
    "FleetOutcome",
    "Metrics",
    "StormStats",
    "UnreadableHistogram",
    "Window",
    "WindowStats",
    "add_counts",
    "mean_us",
    "merge_encoded",
    "new_histogram",
    "percentiles_ms",
]

HISTOGRAM_RANGE_US = (1, 3_600_000_000)
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}
CONNECT_PHASES = ("tcp", "tls", "websocket")
"""The steps of opening a connection, each with its own histogram: TCP connect, TLS
handshake (wss:// only), WebSocket upgrade."""
SATURATED_CPU = 0.9
SATURATED_LAG_MS = 50.0
"""A second is flagged when the generator used 90 % of its core or woke a task 50 ms late:
its latencies then include fleetsim's own delay, not only the CSMS's."""


def new_histogram() -> HdrHistogram:
    """A histogram of microseconds from 1 µs to 1 h at 3 significant digits (DESIGN.md).

    hdrh's histogram and its encoder refer to each other: a cycle that only the collector
    could free, and that `fleetsim.collector` keeps for the whole run (~190 KB a histogram,
    e.g. each ramp step's window). The encoder's reference is made weak, so a histogram is
    freed as soon as it is dropped.
    """
    histogram = HdrHistogram(HISTOGRAM_RANGE_US[0], HISTOGRAM_RANGE_US[1], SIGNIFICANT_DIGITS)
    histogram.encoder.histogram = weakref.proxy(histogram)
    return histogram


class UnreadableHistogram(ValueError):
    """An encoded histogram that does not decode; `index` is its position in the input."""

    def __init__(self, index: int, why: str) -> None:
        super().__init__(f"histogram {index}: {why}")
        self.index = index
        self.why = why


def merge_encoded(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding the samples of all the encoded ones (the reports' `hdr` strings).

    Exact: histograms of one layout add bucket by bucket, so percentiles of the sum are those
    of all samples together, never an average of percentiles. A string that does not decode
    raises `UnreadableHistogram`, whose position lets the caller name the file it came from.
    """
    histogram = new_histogram()
    for index, text in enumerate(encoded):
        try:
            histogram.decode_and_add(text.encode())
        except Exception as exc:  # hdrh raises its own classes, binascii, zlib and IndexError
            raise UnreadableHistogram(index, f"{type(exc).__name__}: {exc}") from exc
    return histogram


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean in milliseconds (bucket upper edges, as HDR reports them)."""
    if histogram.get_total_count() == 0:
        return {name: 0.0 for name in (*PERCENTILES, "max", "mean")}
    values = histogram.get_percentile_to_value_dict(list(PERCENTILES.values()))
    result = {name: values[pct] / 1000 for name, pct in PERCENTILES.items()}
    result["max"] = histogram.get_max_value() / 1000
    result["mean"] = round(mean_us(histogram) / 1000, 3)
    return result


def mean_us(histogram: HdrHistogram) -> float:
    """hdrh's `get_mean_value`, the same figure from a loop over the counts: hdrh walks an
    iterator of Python objects, 25-50 ms a histogram, too slow for figures needed while a run
    goes on."""
    recorded: int = histogram.total_count
    if not recorded:
        return 0.0
    counts = histogram.counts
    total = 0
    for index in range(histogram.get_counts_array_index(histogram.max_value) + 1):
        count = counts[index]
        if count:
            value = histogram.get_value_from_index(index)
            low = histogram.get_lowest_equivalent_value(value)
            high = histogram.get_highest_equivalent_value(value)
            total += count * (low + ((high - low + 1) >> 1))  # the bucket's median, as hdrh
    return float(total) / recorded


class ActionStats:
    """Outcomes and latencies of the CALLs of one action sent by the fleet.

    Every CALL sent ends in exactly one of ok, callerror, timeout or in_flight. `lost` (the
    connection dropped before the answer) is the part of `timeout` no answer could ever meet;
    `late` counts answers that came after their CALL had timed out or had been given up as in
    flight at shutdown (they are discarded).
    """

    __slots__ = (
        "callerror", "dropped_samples", "in_flight", "late", "lateness", "lost", "ok",
        "response", "sent", "service", "timeout",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.ok = 0
        self.callerror: Counter[str] = Counter()
        self.timeout = 0
        self.lost = 0
        self.in_flight = 0
        self.late = 0
        self.dropped_samples = 0
        self.service = new_histogram()
        self.response = new_histogram()
        self.lateness = new_histogram()
        """Written minus intended: how long CALLs waited in the charger's queue."""

    @property
    def errors(self) -> int:
        return sum(self.callerror.values())

    def balanced(self) -> bool:
        return self.sent == self.ok + self.errors + self.timeout + self.in_flight


class CsmsCallStats:
    """CALLs the CSMS sent to chargers, how the chargers answered them, and how fast: from
    the CALL read off the socket to the answer written, so a harness that falls behind under
    load shows it here.

    Every CALL received ends in exactly one of answered, callerror_sent or `unanswered` (its
    answer, delayed on purpose, was still due when the connection or the run ended); each
    counts when its frame is handed out to be written, not when it is decided.
    """

    __slots__ = ("answer", "answered", "callerror_sent", "received", "unanswered")

    def __init__(self) -> None:
        self.received = 0
        self.answered = 0
        self.callerror_sent: Counter[str] = Counter()
        self.unanswered = 0
        self.answer = new_histogram()


class StormStats:
    """One reconnect storm: who it dropped and when each was booted again (seconds after the
    storm's start), exact rather than histogrammed: storms are hundreds to thousands of
    chargers, and the report wants their exact 50/95/99 % recovery times."""

    __slots__ = ("connect_failures", "dropped", "recovery_s", "start", "waiting")

    def __init__(self, start: float) -> None:
        self.start = start
        self.dropped = 0
        self.waiting: set[str] = set()
        self.recovery_s: list[float] = []
        self.connect_failures = 0

    def recovered(self, charger_id: str, now: float) -> None:
        self.waiting.discard(charger_id)
        self.recovery_s.append(now - self.start)


class WindowStats:
    """One action's CALLs that ended (or were sent) inside a `Window`."""

    __slots__ = ("callerror", "ok", "response", "sent", "service", "timeout")

    def __init__(self) -> None:
        self.sent = 0
        self.ok = 0
        self.callerror: Counter[str] = Counter()
        self.timeout = 0
        self.service = new_histogram()
        self.response = new_histogram()


class Window:
    """A stretch of a run measured on its own: a ramp step.

    Its CALL outcomes and latencies go into histograms of their own as they happen, so a
    step's p99 is exact, never derived from per-second figures. A CALL belongs to the window
    in which it ended (answered or timed out); `sent` counts the CALLs written in it.
    Connections count from the window's opening (a step's new chargers connect first), CALLs
    and the generator's loop lag from `start_hold` (once they have booted).
    """

    __slots__ = ("actions", "connect_failures", "handshake", "lag")

    def __init__(self) -> None:
        self.handshake = new_histogram()
        self.connect_failures: Counter[str] = Counter()
        self.actions: dict[str, WindowStats] = {}
        self.lag = new_histogram()

    def start_hold(self) -> None:
        """Forget the CALLs and loop lag so far: what follows is the steady state."""
        self.actions = {}
        self.lag = new_histogram()

    def action(self, action: str) -> WindowStats:
        stats = self.actions.get(action)
        if stats is None:
            stats = self.actions[action] = WindowStats()
        return stats


class Metrics:
    """Everything a run measures. One instance per fleet, shared by all chargers."""

    def __init__(self) -> None:
        self.actions: dict[str, ActionStats] = {}
        self.csms_calls: dict[str, CsmsCallStats] = {}
        self.bad_frames: Counter[str] = Counter()
        self.internal_errors: Counter[str] = Counter()
        self.discarded_unsent: Counter[str] = Counter()
        self.queued_at_shutdown: Counter[str] = Counter()
        self.connect_attempts = 0
        self.connect_failures: Counter[str] = Counter()
        self.handshake = new_histogram()
        self.connect_phases = {phase: new_histogram() for phase in CONNECT_PHASES}
        self.connected = 0
        self.connected_peak = 0
        self.disconnects_clean = 0
        self.disconnects_abnormal = 0
        self.reconnects = 0
        self.send_stalls = 0
        self.ping_timeouts = 0
        self.resets = 0
        self.booted_now = 0
        self.boots = 0
        self.booted_ids: set[str] = set()
        self.last_first_boot: float | None = None
        """When the latest charger to boot for the first time did (the fleet's clock)."""
        self.scheduled: Counter[str] = Counter()
        """Messages the chargers' schedules produced, sent or not (the open-schedule ledger)."""
        self.queued = 0
        """Messages waiting in chargers' queues right now."""
        self.queued_peak = 0
        self.held_offline: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.arrivals = 0
        self.arrivals_missed = 0
        self.storms: dict[int, StormStats] = {}
        self._recovering: dict[str, list[StormStats]] = {}
        self._interval_connects = 0
        self._interval_connect_failures = 0
        self.timeline: list[dict[str, Any]] = []
        self._interval = new_histogram()
        self._interval_sent = 0
        self._interval_ok = 0
        self._interval_errors = 0
        self._interval_lag = 0.0
        self.lag = new_histogram()
        self.window: Window | None = None
        """The window being measured, if any: recording into it costs nothing otherwise."""

    def open_window(self) -> Window:
        """Start measuring a window of its own (a ramp step), ending any open one."""
        self.window = Window()
        return self.window

    def close_window(self) -> Window | None:
        """Stop measuring the open window and hand it over."""
        window, self.window = self.window, None
        return window

    # -- CALLs sent by chargers -------------------------------------------------------------

    def action(self, action: str) -> ActionStats:
        stats = self.actions.get(action)
        if stats is None:
            stats = self.actions[action] = ActionStats()
        return stats

    def call_sent(self, action: str, late_s: float = 0.0) -> None:
        stats = self.action(action)
        stats.sent += 1
        stats.lateness.record_value(max(1, int(late_s * 1e6)))
        self._interval_sent += 1
        if self.window is not None:
            self.window.action(action).sent += 1

    def _record(self, stats: ActionStats, service_s: float, response_s: float,
                window: WindowStats | None) -> None:
        service_us = int(service_s * 1e6)
        response_us = int(response_s * 1e6)
        if not (
            stats.service.record_value(service_us)
            and stats.response.record_value(response_us)
            and self._interval.record_value(response_us)
        ):
            stats.dropped_samples += 1
        if window is not None:
            window.service.record_value(service_us)
            window.response.record_value(response_us)

    def call_ok(self, action: str, service_s: float, response_s: float) -> None:
        stats = self.action(action)
        stats.ok += 1
        self._interval_ok += 1
        window = None if self.window is None else self.window.action(action)
        if window is not None:
            window.ok += 1
        self._record(stats, service_s, response_s, window)

    def call_error(self, action: str, code: str, service_s: float, response_s: float) -> None:
        stats = self.action(action)
        stats.callerror[code] += 1
        self._interval_errors += 1
        window = None if self.window is None else self.window.action(action)
        if window is not None:
            window.callerror[code] += 1
        self._record(stats, service_s, response_s, window)

    def call_timeout(self, action: str, *, lost: bool = False) -> None:
        stats = self.action(action)
        stats.timeout += 1
        stats.lost += lost
        self._interval_errors += 1
        if self.window is not None:
            self.window.action(action).timeout += 1

    def internal_error(self, exc: BaseException, where: str = "") -> None:
        """A bug caught where it would have taken a charger or the fleet down: counted by
        kind, for the report's `internal_errors`."""
        prefix = f"{where}: " if where else ""
        self.internal_errors[f"{prefix}{type(exc).__name__}: {exc}"[:120]] += 1

    def call_late(self, action: str) -> None:
        self.action(action).late += 1

    def call_in_flight(self, action: str) -> None:
        self.action(action).in_flight += 1

    # -- CALLs sent by the CSMS -------------------------------------------------------------

    def csms_call(self, action: str, error_code: str | None) -> None:
        """A CALL received and answered at once."""
        self.csms_call_received(action)
        self.csms_call_answered(action, error_code)

    def _csms_call_stats(self, action: str) -> CsmsCallStats:
        stats = self.csms_calls.get(action)
        if stats is None:
            stats = self.csms_calls[action] = CsmsCallStats()
        return stats

    def csms_call_received(self, action: str) -> None:
        self._csms_call_stats(action).received += 1

    def csms_call_answered(self, action: str, error_code: str | None) -> None:
        """Its answer (a CALLRESULT, or a CALLERROR with `error_code`) is being written."""
        stats = self._csms_call_stats(action)
        if error_code is None:
            stats.answered += 1
        else:
            stats.callerror_sent[error_code] += 1

    def csms_call_unanswered(self, action: str) -> None:
        """Its answer was still due when the connection or the run ended."""
        self._csms_call_stats(action).unanswered += 1

    def csms_call_answered_in(self, action: str, seconds: float) -> None:
        stats = self.csms_calls.get(action)
        if stats is not None:
            stats.answer.record_value(max(1, int(seconds * 1e6)))

    # -- connections ------------------------------------------------------------------------

    def connect_attempt(self, *, reconnect: bool) -> None:
        self.connect_attempts += 1
        self.reconnects += reconnect

    def connect_ok(self, handshake_s: float, phases: Sequence[float | None] = ()) -> None:
        """`phases`: seconds spent in each of CONNECT_PHASES (None: not taken, as TLS on
        ws://), when the transport measured them."""
        self._interval_connects += 1
        self.connected += 1
        self.connected_peak = max(self.connected_peak, self.connected)
        handshake_us = max(1, int(handshake_s * 1e6))
        self.handshake.record_value(handshake_us)
        for histogram, seconds in zip(self.connect_phases.values(), phases, strict=False):
            if seconds is not None:
                histogram.record_value(max(1, int(seconds * 1e6)))
        if self.window is not None:
            self.window.handshake.record_value(handshake_us)

    def connect_failed(self, reason: str) -> None:
        self.connect_failures[reason] += 1
        self._interval_connect_failures += 1
        if self.window is not None:
            self.window.connect_failures[reason] += 1
        for storm in self.storms.values():
            if storm.waiting:
                storm.connect_failures += 1

    def disconnected(self, *, clean: bool, shutdown: bool = False) -> None:
        """A connection ended; closing it because the run is over is not a disconnect."""
        self.connected -= 1
        if shutdown:
            return
        if clean:
            self.disconnects_clean += 1
        else:
            self.disconnects_abnormal += 1

    def charger_booted(self, charger_id: str, now: float = 0.0) -> None:
        self.booted_now += 1
        self.boots += 1
        if charger_id not in self.booted_ids:
            self.booted_ids.add(charger_id)
            self.last_first_boot = now
        if self._recovering:
            for storm in self._recovering.pop(charger_id, ()):
                storm.recovered(charger_id, now)

    def storm_drop(self, index: int, charger_id: str, start: float) -> None:
        """A reconnect storm took this charger down; its next boot is its recovery."""
        self.drops["storm"] += 1
        storm = self.storms.get(index)
        if storm is None:
            storm = self.storms[index] = StormStats(start)
        storm.dropped += 1
        storm.waiting.add(charger_id)
        self._recovering.setdefault(charger_id, []).append(storm)

    def charger_unbooted(self) -> None:
        self.booted_now -= 1

    # -- aggregates -------------------------------------------------------------------------

    def totals(self) -> tuple[int, int, int]:
        """(sent, ok, errors) over all actions; errors are CALLERRORs plus timeouts."""
        sent = ok = errors = 0
        for stats in self.actions.values():
            sent += stats.sent
            ok += stats.ok
            errors += stats.errors + stats.timeout
        return sent, ok, errors

    # -- the generator itself ----------------------------------------------------------------

    def loop_lag(self, seconds: float) -> None:
        """How late the event loop woke a task that was due: the harness's own delay."""
        lag_us = max(1, int(seconds * 1e6))
        self.lag.record_value(lag_us)
        self._interval_lag = max(self._interval_lag, seconds)
        if self.window is not None:
            self.window.lag.record_value(lag_us)

    def close_interval(self, t: float, cpu_share: float | None = None, *,
                       closing: bool = False) -> dict[str, Any]:
        """End the current one-second interval: append and return its timeline row.

        `cpu_share` is the generator's CPU time over the interval's wall time (1.0 = a core),
        None when the interval was too short to tell. While `closing` (the connections are
        being shut after the last answer) nothing is measured, so nothing is flagged.
        """
        count = self._interval.get_total_count()
        p99 = self._interval.get_value_at_percentile(99.0) / 1000 if count else 0.0
        lag_ms = round(self._interval_lag * 1000, 3)
        row = {
            "t": round(t, 3),
            "connected": self.connected,
            "booted": self.booted_now,
            "sent": self._interval_sent,
            "ok": self._interval_ok,
            "errors": self._interval_errors,
            "p99_ms": p99,
            "queued": self.queued,
            "connects": self._interval_connects,
            "connect_failures": self._interval_connect_failures,
            "cpu": None if cpu_share is None else round(cpu_share, 3),
            "loop_lag_ms": lag_ms,
            "saturated": not closing and (
                (cpu_share or 0.0) >= SATURATED_CPU or lag_ms >= SATURATED_LAG_MS),
        }
        self.timeline.append(row)
        self._interval.reset()
        self._interval_sent = self._interval_ok = self._interval_errors = 0
        self._interval_lag = 0.0
        self._interval_connects = self._interval_connect_failures = 0
        self.queued_peak = max(self.queued_peak, self.queued)
        return row


@attrs.frozen
class FleetOutcome:
    """How the run ended: `stopped_by` is "duration", "interrupted" or "unreachable".

    With the metrics, not the fleet, so that the report builds from it without the trio shell.
    """

    stopped_by: str
    started_at: float
    ended_at: float
    reason: str = ""
    cpu_seconds: float = 0.0
    behaviours: dict[str, int] = attrs.field(factory=dict)
    """Chargers per behaviour."""
    all_booted_s: float | None = None
    """Seconds from the start until every charger had booted once; None if one never did."""


def add_counts(items: Sequence[Mapping[str, Any]], skip: Iterable[str] = ()) -> dict[str, Any]:
    """Sum what is countable: integers add, maps of them add key by key. Reports merge with it,
    and so do the embedded CSMS processes' statistics, so it lives with the counters.

    Anything else (floats, strings) is left out: only counts merge without knowing what they
    mean, and every derived figure is computed again by the caller.
    """
    skipped = set(skip)
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(key for item in items for key in item):
        if key in skipped:
            continue
        values = [item[key] for item in items if key in item]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            merged[key] = sum(values)
        elif all(isinstance(v, Mapping) for v in values):
            merged[key] = add_counts(values)
    return merged
