"""Building the `fleetsim.report/1` JSON report from a run's metrics, and writing it.

The JSON shape is the product's API for pipelines (DESIGN.md, "The report contract"); add keys
freely, never rename or remove one without bumping the schema version.
"""

from __future__ import annotations

import enum
import math
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from fleetsim._version import __version__
from fleetsim.behaviour.profile import ReconnectStorm, estimate_rate
from fleetsim.config import RunConfig, redact_url, unstructure_config
from fleetsim.metrics import (
    FleetOutcome,
    Metrics,
    StormStats,
    Window,
    new_histogram,
    percentiles_ms,
)
from fleetsim.report._model import (
    Behaviour,
    CallHdr,
    CallStats,
    Chargers,
    Connect,
    CsmsCallStats,
    Generator,
    Outcome,
    Percentiles,
    Phase,
    Queue,
    Recovery,
    Report,
    Sessions,
    Storm,
    Target,
    TimelineRow,
    Totals,
    unstructure_report,
)

__all__ = ["SCHEMA", "build_report", "default_report_path", "peak_connects",
           "serialisable_report", "window_report", "write_report"]

SCHEMA = "fleetsim.report/1"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build_report(
    config: RunConfig, url: str, metrics: Metrics, outcome: FleetOutcome,
    embedded_csms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything measured, built as the typed `Report` and given as plain JSON-ready data."""
    duration = max(outcome.ended_at - outcome.started_at, 1e-9)
    calls: dict[str, CallStats] = {}
    for action in sorted(metrics.actions):
        stats = metrics.actions[action]
        calls[action] = CallStats(
            sent=stats.sent,
            ok=stats.ok,
            callerror=dict(stats.callerror),
            timeout=stats.timeout,
            in_flight=stats.in_flight,
            lost_on_disconnect=stats.lost,
            late=stats.late,
            queued_at_shutdown=metrics.queued_at_shutdown.get(action, 0),
            discarded_on_disconnect=metrics.discarded_unsent.get(action, 0),
            dropped_samples=stats.dropped_samples,
            scheduled=metrics.scheduled.get(action, 0),
            held_offline=metrics.held_offline.get(action, 0),
            lateness_ms=_percentiles(stats.lateness),
            service_ms=_percentiles(stats.service),
            response_ms=_percentiles(stats.response),
            hdr=CallHdr(service=_encoded(stats.service), response=_encoded(stats.response),
                        lateness=_encoded(stats.lateness)),
        )
    sent, ok, errors = metrics.totals()
    callerrors = sum(stats.errors for stats in metrics.actions.values())
    report = Report(
        schema=SCHEMA,
        fleetsim_version=__version__,
        started_at=_iso(outcome.started_at),
        ended_at=_iso(outcome.ended_at),
        duration_s=round(duration, 3),
        outcome=Outcome(stopped_by=outcome.stopped_by, reason=outcome.reason),
        target=Target(url=redact_url(url), embedded=config.url is None,
                      ocpp=sorted({spec.ocpp for spec in config.behaviours()[1]}),
                      transport=config.transport),
        config=unstructure_config(config),
        chargers=Chargers(
            target=len(config.charger_indexes()),  # a segment's own slice
            connected_peak=metrics.connected_peak,
            booted=len(metrics.booted_ids),
            boots=metrics.boots,
            all_booted_s=(None if outcome.all_booted_s is None
                          else round(outcome.all_booted_s, 3)),
            connect_attempts=metrics.connect_attempts,
            connect_failures=dict(metrics.connect_failures),
            disconnects=metrics.disconnects_clean + metrics.disconnects_abnormal,
            disconnects_abnormal=metrics.disconnects_abnormal,
            reconnects=metrics.reconnects,
            send_stalls=metrics.send_stalls,
            ping_timeouts=metrics.ping_timeouts,
            resets=metrics.resets,
            internal_errors=dict(metrics.internal_errors),
        ),
        calls=calls,
        csms_calls={
            action: CsmsCallStats(received=stats.received, answered=stats.answered,
                                  callerror_sent=dict(stats.callerror_sent),
                                  unanswered=stats.unanswered,
                                  answer_ms=_percentiles(stats.answer),
                                  hdr=_encoded(stats.answer))
            for action, stats in sorted(metrics.csms_calls.items())
        },
        bad_frames=dict(metrics.bad_frames),
        connect=Connect(handshake_ms=_percentiles(metrics.handshake),
                        hdr=_encoded(metrics.handshake), phases=_phases(metrics)),
        totals=Totals(
            sent=sent,
            ok=ok,
            errors=errors,
            callerrors=callerrors,
            timeouts=errors - callerrors,
            error_rate=round(errors / sent, 6) if sent else 0.0,
            throughput_cps=round((ok + callerrors) / duration, 2),
        ),
        timeline=[TimelineRow(**row) for row in metrics.timeline],
        generator=Generator(
            cpu_share=round(outcome.cpu_seconds / duration, 3),
            loop_lag_ms=_percentiles(metrics.lag),
            hdr=_encoded(metrics.lag),
            saturated_seconds=sum(1 for row in metrics.timeline if row["saturated"]),
        ),
        **_behaviour_sections(config, metrics, outcome),
        embedded_csms=None if embedded_csms is None else {
            key: value for key, value in embedded_csms.items() if key != "event"},
    )
    return unstructure_report(report)


def _percentiles(histogram: HdrHistogram) -> Percentiles:
    return Percentiles(**percentiles_ms(histogram))


def _phases(metrics: Metrics) -> dict[str, Phase] | None:
    phases = {name: Phase(ms=_percentiles(histogram), hdr=_encoded(histogram))
              for name, histogram in metrics.connect_phases.items()
              if histogram.get_total_count()}
    return phases or None


def _encoded(histogram: HdrHistogram) -> str:
    text: str = histogram.encode().decode()
    return text


def window_report(window: Window, duration_s: float) -> dict[str, Any]:
    """A window (a ramp step's hold) in the report's own shape, so that threshold rules
    evaluate on it unchanged: `calls` (counts and histograms), `totals`, `connect`, plus the
    percentiles of all actions together and their merged `hdr`.

    A CALL counts in the window in which it ended; the error rate is over those CALLs
    (CALLERRORs and timeouts among all that ended), since the CALLs sent in a window are not
    the ones answered in it, and None when none ended (so an error-rate rule fails).
    """
    calls: dict[str, Any] = {}
    merged = {"service": new_histogram(), "response": new_histogram()}
    ok = callerrors = timeouts = sent = 0
    for action in sorted(window.actions):
        stats = window.actions[action]
        sent += stats.sent
        ok += stats.ok
        callerrors += sum(stats.callerror.values())
        timeouts += stats.timeout
        for timing, histogram in (("service", stats.service), ("response", stats.response)):
            merged[timing].add(histogram)
        calls[action] = {
            "sent": stats.sent, "ok": stats.ok, "callerror": dict(stats.callerror),
            "timeout": stats.timeout,
            "hdr": {"service": stats.service.encode().decode(),
                    "response": stats.response.encode().decode()},
        }
    ended = ok + callerrors + timeouts
    duration_s = max(duration_s, 1e-9)
    return {
        "duration_s": round(duration_s, 3),
        "calls": calls,
        "totals": {
            "sent": sent, "ok": ok, "errors": callerrors + timeouts, "callerrors": callerrors,
            "timeouts": timeouts,
            "error_rate": round((callerrors + timeouts) / ended, 6) if ended else None,
            "throughput_cps": round((ok + callerrors) / duration_s, 2),
            "sent_per_s": round(sent / duration_s, 2),
        },
        "connect": {"handshake_ms": percentiles_ms(window.handshake),
                    "hdr": window.handshake.encode().decode(),
                    "count": window.handshake.get_total_count(),
                    "failures": dict(window.connect_failures)},
        "service_ms": percentiles_ms(merged["service"]),
        "response_ms": percentiles_ms(merged["response"]),
        "hdr": {timing: histogram.encode().decode() for timing, histogram in merged.items()},
        "loop_lag_ms": percentiles_ms(window.lag),
    }


def _behaviour_sections(config: RunConfig, metrics: Metrics,
                        outcome: FleetOutcome) -> dict[str, Any]:
    """What the profile made the fleet do: who played what, sessions, drops and storms."""
    profile = config.profile
    behaviours: dict[str, Behaviour] = {}
    for position, (name, count) in enumerate(outcome.behaviours.items()):
        if profile is None:
            behaviours[name] = Behaviour(chargers=count)
            continue
        behaviour = profile.behaviour[position]
        behaviours[name] = Behaviour(
            chargers=count, weight=behaviour.weight, ocpp=behaviour.ocpp,
            estimated_calls_per_charger_hour=round(
                sum(estimate_rate(behaviour, config.csms.heartbeat_interval_s
                                  if config.url is None else None).values()), 1))
    storms = []
    if profile is not None:
        events = [e for e in profile.event if isinstance(e, ReconnectStorm)]
        for index, event in enumerate(events):
            stats = metrics.storms.get(index, StormStats(0.0))
            storms.append(_storm_report(event.name or f"storm {index + 1}",
                                        event.at / config.time_scale, stats, metrics.timeline))
    return {
        "behaviours": behaviours,
        "sessions": Sessions(arrivals=metrics.arrivals, missed=metrics.arrivals_missed),
        "drops": dict(metrics.drops),
        "queue": Queue(peak=metrics.queued_peak),
        "storms": storms,
    }


def _storm_report(name: str, at_s: float, stats: StormStats,
                  timeline: list[dict[str, Any]]) -> Storm:
    """Exact recovery times (the k-th fastest of the dropped chargers), the peak connect rate
    and the connect failures while the storm's chargers were coming back."""
    times = sorted(stats.recovery_s)

    def until(share: float) -> float | None:
        needed = math.ceil(share * stats.dropped)
        return round(times[needed - 1], 3) if stats.dropped and len(times) >= needed else None

    recoveries = new_histogram()
    for seconds in times:
        recoveries.record_value(max(1, int(seconds * 1e6)))
    return Storm(
        name=name,
        at_s=round(at_s, 3),
        dropped=stats.dropped,
        recovered=len(times),
        not_recovered=len(stats.waiting),
        recovery_s=Recovery(p50=until(0.5), p95=until(0.95), p99=until(0.99),
                            max=round(times[-1], 3) if times else None),
        peak_connects_per_s=peak_connects(timeline, at_s, times[-1] if times else 0.0),
        connect_failures=stats.connect_failures,
        hdr=_encoded(recoveries),
    )


def peak_connects(timeline: Sequence[Mapping[str, Any]], at_s: float, recovery_s: float) -> int:
    """The most connects in one second while a storm's chargers were coming back."""
    end = at_s + recovery_s + 1.0
    return max((row.get("connects", 0) for row in timeline if at_s < row["t"] <= end + 1.0),
               default=0)


def default_report_path(directory: str = "reports") -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(directory) / f"{stamp}.json"


def serialisable_report(report: dict[str, Any]) -> dict[str, Any]:
    """The report as JSON can hold it, so that one bad value never loses a run's report.

    A report that serialises is returned as it is. Otherwise each top-level section that does
    not is repaired: what JSON cannot hold (a key that is not a string, an object of no JSON
    type) is written as text, or, if even that fails, the section is null. `errors` names each
    such section, the error and the repair; the other sections are untouched.
    """
    try:
        orjson.dumps(report)
        return report
    except orjson.JSONEncodeError:
        pass
    repaired: dict[str, Any] = {}
    errors: list[Any] = []
    for key, value in report.items():
        section = _text(key)
        if section == "errors" and isinstance(value, list):
            errors[:0] = value  # a part's own, from a merge
            continue
        try:
            orjson.dumps(value)
            repaired[section] = value
            continue
        except orjson.JSONEncodeError as exc:
            error = str(exc)
        faults: list[str] = []
        try:
            value = _repair(value, section, faults)
            orjson.dumps(value)
            repair = (f"{len(faults)} key{'s' * (len(faults) > 1)} or value"
                      f"{'s' * (len(faults) > 1)} written as text, the first {faults[0]}")
        except Exception as exc:  # the report writer must never be what fails
            value, repair = None, f"left out ({type(exc).__name__}: {exc})"
        repaired[section] = value
        errors.append({"section": section, "error": error, "repair": repair})
    repaired["errors"] = errors
    return repaired


def _text(value: object) -> str:
    """A key as JSON can hold it: an enum's value, or the characters of a str subclass."""
    if isinstance(value, enum.Enum):
        value = value.value
    return str.__str__(value) if isinstance(value, str) else str(value)


def _repair(value: Any, where: str, faults: list[str]) -> Any:
    if value is None or type(value) in (bool, float, str):
        return value
    if type(value) is int and -(1 << 63) <= value < 1 << 64:
        return value
    if isinstance(value, Mapping):
        repaired = {}
        for key, item in value.items():
            if type(key) is not str:
                faults.append(f"at {where}: key {_text(key)!r} of type {type(key).__name__}")
            text = _text(key)
            repaired[text] = _repair(item, f"{where}.{text}", faults)
        return repaired
    if isinstance(value, list | tuple):
        return [_repair(item, f"{where}[{index}]", faults) for index, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return _repair(value.value, where, faults)
    if isinstance(value, str):
        return str.__str__(value)
    faults.append(f"at {where}: a {type(value).__name__}")
    return str(value)[:1000]


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write the report whole or not at all: into a temporary file renamed over `path`, so a
    tool that watches the folder (the Kubernetes merge step waits for parts) never reads half
    of one. A path that is not a plain file (`/dev/stdout`, a symlink) is written directly.
    A section that JSON cannot hold is repaired and named (`serialisable_report`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONEncodeError:
        data = orjson.dumps(serialisable_report(report), option=orjson.OPT_INDENT_2) + b"\n"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        path.write_bytes(data)
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
