"""The `fleetsim.report/1` JSON report and the text summary people read.

The JSON shape is the product's API for pipelines (DESIGN.md, "The report contract"); add keys
freely, never rename or remove one without bumping the schema version.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from fleetsim._version import __version__
from fleetsim.config import RunConfig, unstructure_config
from fleetsim.fleet import FleetOutcome
from fleetsim.metrics import Metrics, percentiles_ms

__all__ = ["SCHEMA", "build_report", "default_report_path", "format_summary", "write_report"]

SCHEMA = "fleetsim.report/1"


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build_report(
    config: RunConfig, url: str, metrics: Metrics, outcome: FleetOutcome,
    embedded_csms: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything measured, as plain JSON-ready data."""
    duration = max(outcome.ended_at - outcome.started_at, 1e-9)
    calls: dict[str, Any] = {}
    for action in sorted(metrics.actions):
        stats = metrics.actions[action]
        calls[action] = {
            "sent": stats.sent,
            "ok": stats.ok,
            "callerror": dict(stats.callerror),
            "timeout": stats.timeout,
            "in_flight": stats.in_flight,
            "lost_on_disconnect": stats.lost,
            "late": stats.late,
            "queued_at_shutdown": metrics.queued_at_shutdown.get(action, 0),
            "discarded_on_disconnect": metrics.discarded_unsent.get(action, 0),
            "dropped_samples": stats.dropped_samples,
            "service_ms": percentiles_ms(stats.service),
            "response_ms": percentiles_ms(stats.response),
            "hdr": {"service": stats.service.encode().decode(),
                    "response": stats.response.encode().decode()},
        }
    sent, ok, errors = metrics.totals()
    callerrors = sum(stats.errors for stats in metrics.actions.values())
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "fleetsim_version": __version__,
        "started_at": _iso(outcome.started_at),
        "ended_at": _iso(outcome.ended_at),
        "duration_s": round(duration, 3),
        "outcome": {"stopped_by": outcome.stopped_by, "reason": outcome.reason},
        "target": {"url": url, "embedded": config.url is None, "ocpp": [config.ocpp],
                   "transport": config.transport},
        "config": unstructure_config(config),
        "chargers": {
            "target": config.chargers,
            "connected_peak": metrics.connected_peak,
            "booted": len(metrics.booted_ids),
            "boots": metrics.boots,
            "connect_attempts": metrics.connect_attempts,
            "connect_failures": dict(metrics.connect_failures),
            "disconnects": metrics.disconnects_clean + metrics.disconnects_abnormal,
            "disconnects_abnormal": metrics.disconnects_abnormal,
            "reconnects": metrics.reconnects,
            "send_stalls": metrics.send_stalls,
            "resets": metrics.resets,
            "internal_errors": dict(metrics.internal_errors),
        },
        "calls": calls,
        "csms_calls": {
            action: {"received": stats.received, "answered": stats.answered,
                     "callerror_sent": dict(stats.callerror_sent),
                     "answer_ms": percentiles_ms(stats.answer),
                     "hdr": stats.answer.encode().decode()}
            for action, stats in sorted(metrics.csms_calls.items())
        },
        "bad_frames": dict(metrics.bad_frames),
        "connect": {"handshake_ms": percentiles_ms(metrics.handshake),
                    "hdr": metrics.handshake.encode().decode()},
        "totals": {
            "sent": sent,
            "ok": ok,
            "errors": errors,
            "callerrors": callerrors,
            "timeouts": errors - callerrors,
            "error_rate": round(errors / sent, 6) if sent else 0.0,
            "throughput_cps": round((ok + callerrors) / duration, 2),
        },
        "timeline": metrics.timeline,
        "generator": {
            "cpu_share": round(outcome.cpu_seconds / duration, 3),
            "loop_lag_ms": percentiles_ms(metrics.lag),
            "hdr": metrics.lag.encode().decode(),
            "saturated_seconds": sum(1 for row in metrics.timeline if row["saturated"]),
        },
    }
    if embedded_csms is not None:
        report["embedded_csms"] = {k: v for k, v in embedded_csms.items() if k != "event"}
    return report


def default_report_path(directory: str = "reports") -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return Path(directory) / f"{stamp}.json"


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def format_summary(report: dict[str, Any]) -> str:
    """A compact, fixed-width end-of-run summary (k6 style)."""
    target, chargers, totals = report["target"], report["chargers"], report["totals"]
    where = "embedded CSMS" if target["embedded"] else "target"
    lines = [
        f"fleetsim {report['fleetsim_version']}: {chargers['target']} chargers, "
        f"{report['duration_s']:.1f} s, OCPP {', '.join(target['ocpp'])} over "
        f"{target['transport']} against {target['url']} ({where})",
    ]
    if report["outcome"]["reason"]:
        lines.append(f"stopped: {report['outcome']['reason']}")
    failures = ", ".join(f"{k} {v}" for k, v in chargers["connect_failures"].items()) or "none"
    handshake = report["connect"]["handshake_ms"]
    lines += [
        "",
        f"chargers   connected peak {chargers['connected_peak']}/{chargers['target']}   "
        f"booted {chargers['booted']}   reconnects {chargers['reconnects']}   "
        f"disconnects {chargers['disconnects']} (abnormal {chargers['disconnects_abnormal']})",
        f"connect    attempts {chargers['connect_attempts']}   failures: {failures}   "
        f"handshake p50 {_ms(handshake['p50'])} ms  p99 {_ms(handshake['p99'])} ms",
        "",
        f"{'action':<22}{'sent':>9}{'ok':>9}{'callerr':>8}{'timeout':>8}{'inflight':>9}"
        f"{'service p50/p99 ms':>21}{'response p50/p99 ms':>22}",
    ]
    for action, stats in report["calls"].items():
        service, response = stats["service_ms"], stats["response_ms"]
        lines.append(
            f"{action:<22}{stats['sent']:>9}{stats['ok']:>9}"
            f"{sum(stats['callerror'].values()):>8}{stats['timeout']:>8}{stats['in_flight']:>9}"
            f"{_ms(service['p50']) + ' / ' + _ms(service['p99']):>21}"
            f"{_ms(response['p50']) + ' / ' + _ms(response['p99']):>22}"
        )
    lines.append(
        f"{'total':<22}{totals['sent']:>9}{totals['ok']:>9}{totals['callerrors']:>8}"
        f"{totals['timeouts']:>8}{sum(s['in_flight'] for s in report['calls'].values()):>9}"
    )
    lines += [
        "",
        f"throughput {totals['throughput_cps']:.1f} calls/s   "
        f"error rate {totals['error_rate'] * 100:.2f}%",
    ]
    if report["csms_calls"]:
        lines += ["", f"{'CSMS call':<30}{'received':>9}{'answered':>9}{'callerr':>8}"
                      f"{'answer p50/p99 ms':>20}"]
        for action, stats in report["csms_calls"].items():
            answer = stats["answer_ms"]
            lines.append(
                f"{action:<30}{stats['received']:>9}{stats['answered']:>9}"
                f"{sum(stats['callerror_sent'].values()):>8}"
                f"{_ms(answer['p50']) + ' / ' + _ms(answer['p99']):>20}")
    if report.get("thresholds"):
        lines += ["", "THRESHOLDS"]
        for verdict in report["thresholds"]:
            measured = "no samples" if verdict["value"] is None else f"{verdict['value']:g}"
            mark = "✓" if verdict["ok"] else "✗"
            lines.append(f"  {mark} {verdict['threshold']:<40} measured {measured} "
                         f"{verdict['unit']}")
    parts = report.get("parts") or ()
    if parts:
        lines += ["", f"parts      {len(parts)} reports merged: chargers booted, CPU, event-loop "
                      "lag and saturated seconds per part"]
        for part in parts:
            saturated = part["saturated_seconds"]
            lines.append(
                f"  {part['label'] or part['source']:<20} booted {part['booted']:>7}   "
                f"CPU {part['cpu_share'] * 100:>4.0f}%   lag p99 {_ms(part['loop_lag_p99_ms']):>7}"
                f" ms   saturated {saturated} s" + ("   <- saturated" if saturated else ""))
    for warning in report.get("merge", {}).get("warnings", ()):
        lines.append(f"WARNING: merge: {warning}")
    generator = report["generator"]
    lag = generator["loop_lag_ms"]
    across = f" (all {len(parts)} parts together)" if parts else ""
    lines.append(f"generator  CPU {generator['cpu_share'] * 100:.0f}% of a core{across}, "
                 f"event-loop lag p99 {_ms(lag['p99'])} ms, max {_ms(lag['max'])} ms")
    if generator["saturated_seconds"]:
        lines.append(
            f"WARNING: fleetsim itself was saturated for {generator['saturated_seconds']} s "
            "(CPU >= 90% or event-loop lag >= 50 ms): latencies in those seconds include the "
            "generator's own delay; use fewer chargers per process or a slower ramp")
    if chargers["internal_errors"]:
        lines.append("INTERNAL ERRORS (a fleetsim bug; please report it): " + ", ".join(
            f"{kind} x{n}" for kind, n in chargers["internal_errors"].items()))
    if report["bad_frames"]:
        lines.append("bad frames from the CSMS: " + ", ".join(
            f"{kind} {n}" for kind, n in report["bad_frames"].items()))
    return "\n".join(lines)
