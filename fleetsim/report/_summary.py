"""The text summary people read at the end of a run (k6 style), read from the typed report,
and a ramp step's line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fleetsim.errors import ConfigError
from fleetsim.report._model import CONVERTER, Report, check_report, readable

__all__ = ["broken", "format_step", "format_summary"]

T = TypeVar("T")


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _measured(verdict: dict[str, Any]) -> str:
    value, unit = verdict["value"], verdict["unit"]
    if value is None:
        return "no samples"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "ms":
        return f"{_ms(value)} ms"
    return f"{value:,.1f} {unit}"


def broken(step: dict[str, Any]) -> str:
    """What a ramp step that did not hold broke, in words."""
    parts = [f"{verdict['threshold']} failed (measured {_measured(verdict)})"
             for verdict in step["slos"] if not verdict["ok"]]
    if not step["settled"]:
        parts.insert(0, f"only {step['booted']} of its {step['chargers']} chargers were "
                        "booted in time")
    return " and ".join(parts)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def format_step(step: dict[str, Any]) -> str:
    """One line per finished ramp step, for live progress."""
    verdict = "held" if step["held"] else broken(step)
    saturated = "  [generator saturated]" if step["saturated"] else ""
    return (f"step {step['step']}: {step['chargers']} chargers  calls/s {step['calls_per_s']:.1f}"
            f"  p50 {_ms(step['p50_ms'])} ms  p99 {_ms(step['p99_ms'])} ms  "
            f"error rate {_rate(step['error_rate'])}  {'✓' if step['held'] else '✗'} "
            f"{verdict}{saturated}")


def _ramp_lines(ramp: dict[str, Any]) -> list[str]:
    plan = ramp["plan"]
    slos = ", ".join(plan["slos"]) or "none"
    lines = ["", f"RAMP       from {plan['start']} chargers, +{plan['step']} a step up to "
                 f"{plan['max']}, each held {plan['every_s']:g} s; SLOs: {slos}",
             f"{'step':>4}{'chargers':>10}{'hold s':>8}{'calls/s':>10}{'sent/s':>10}"
             f"{'p50 ms':>9}{'p99 ms':>9}{'error rate':>12}{'CPU':>6}  verdict"]
    for step in ramp["steps"]:
        verdict = "✓ held" if step["held"] else "✗ " + broken(step)
        if step["saturated"]:
            verdict += " [generator saturated]"
        cpu = "n/a" if step["cpu_share"] is None else f"{step['cpu_share'] * 100:.0f}%"
        lines.append(
            f"{step['step']:>4}{step['chargers']:>10}{step['duration_s']:>8.1f}"
            f"{step['calls_per_s']:>10.1f}{step['sent_per_s']:>10.1f}{_ms(step['p50_ms']):>9}"
            f"{_ms(step['p99_ms']):>9}{_rate(step['error_rate']):>12}{cpu:>6}  {verdict}")
    knee = ramp["knee"]
    lines.append(f"KNEE       {'none' if knee is None else f'{knee} chargers'}. {ramp['verdict']}")
    if ramp["limit"] == "generator":
        lines.append("WARNING: the generator, not the CSMS, was the limit: this knee says nothing "
                     "of the CSMS's capacity beyond it")
    return lines


def _behaviour_lines(report: Report) -> list[str]:
    behaviours = report.behaviours
    if not behaviours:
        return []
    lines = ["behaviours " + "   ".join(f"{name} {entry.chargers}"
                                       for name, entry in behaviours.items())]
    sessions, queue = _present(report.sessions, "sessions"), _present(report.queue, "queue")
    lateness = {action: stats.lateness_ms.p99 for action, stats in report.calls.items()
                if stats.lateness_ms is not None}
    late = max(lateness.items(), key=lambda item: item[1], default=None)
    line = (f"sessions   {sessions.arrivals} started, {sessions.missed} EVs found no "
            f"free connector or the charger offline   queue peak {queue.peak}")
    if late is not None and late[1] >= 1:
        line += f"   most queued: {late[0]} lateness p99 {_ms(late[1])} ms"
    lines.append(line)
    if report.drops:
        lines.append("drops      " + "   ".join(f"{k} {v}" for k, v in report.drops.items()))
    for storm in report.storms or ():
        recovery = storm.recovery_s

        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} s"

        if storm.at_s > report.duration_s:
            lines.append(f"storm      {storm.name} at {storm.at_s:.0f} s: not reached")
            continue
        lines.append(
            f"storm      {storm.name} at {storm.at_s:.0f} s: {storm.dropped} dropped, "
            f"{storm.recovered} booted again (50% {seconds(recovery.p50)}, "
            f"95% {seconds(recovery.p95)}, 99% {seconds(recovery.p99)}), "
            f"peak {storm.peak_connects_per_s} connects/s, "
            f"{storm.connect_failures} connect failures")
    return lines


def _present(section: T | None, name: str) -> T:
    """A section that goes with another (a profile's sessions with its behaviours)."""
    if section is None:
        raise ConfigError(f"not a complete fleetsim report: {name} is missing")
    return section


def format_summary(report: Report | Mapping[str, Any]) -> str:
    """A compact, fixed-width end-of-run summary (k6 style), of a typed report or of one as
    JSON data (checked first: a bad one is a `ConfigError` naming the field)."""
    if not isinstance(report, Report):
        report = check_report(readable(report), "report")
    target, chargers, totals = report.target, report.chargers, report.totals
    where = "embedded CSMS" if target.embedded else "target"
    processes = (report.embedded_csms or {}).get("processes", 1)
    if processes > 1:
        where += f", {processes} processes, a port each; the first is shown"
    spread = ""
    if report.config.get("segment") is not None:
        spread += f" (segment {report.config['segment']} of {report.config['chargers']})"
    if report.workers is not None:
        spread += f" in {report.workers.count} worker processes"
    lines = [
        f"fleetsim {report.fleetsim_version}: {chargers.target} chargers{spread}, "
        f"{report.duration_s:.1f} s, OCPP {', '.join(target.ocpp)} over "
        f"{target.transport} against {target.url} ({where})",
    ]
    if report.outcome.reason:
        lines.append(f"stopped: {report.outcome.reason}")
    failures = ", ".join(f"{k} {v}" for k, v in chargers.connect_failures.items()) or "none"
    handshake = report.connect.handshake_ms
    lines += [
        "",
        f"chargers   connected peak {chargers.connected_peak}/{chargers.target}   "
        f"booted {chargers.booted}"
        + (f" (all by {chargers.all_booted_s:.2f} s)" if chargers.all_booted_s is not None
           else "")
        + f"   reconnects {chargers.reconnects}   "
        f"disconnects {chargers.disconnects} (abnormal {chargers.disconnects_abnormal})",
        f"connect    attempts {chargers.connect_attempts}   failures: {failures}   "
        f"handshake p50 {_ms(handshake.p50)} ms  p99 {_ms(handshake.p99)} ms",
        *(["           p50/p99 ms: " + "   ".join(
            f"{name} {_ms(phase.ms.p50)}/{_ms(phase.ms.p99)}"
            for name, phase in report.connect.phases.items())]
          if report.connect.phases else []),
        "",
        f"{'action':<22}{'sent':>9}{'ok':>9}{'callerr':>8}{'timeout':>8}{'inflight':>9}"
        f"{'service p50/p99 ms':>21}{'response p50/p99 ms':>22}",
    ]
    for action, stats in report.calls.items():
        service, response = stats.service_ms, stats.response_ms
        lines.append(
            f"{action:<22}{stats.sent:>9}{stats.ok:>9}"
            f"{sum(stats.callerror.values()):>8}{stats.timeout:>8}{stats.in_flight:>9}"
            f"{_ms(service.p50) + ' / ' + _ms(service.p99):>21}"
            f"{_ms(response.p50) + ' / ' + _ms(response.p99):>22}"
        )
    lines.append(
        f"{'total':<22}{totals.sent:>9}{totals.ok:>9}{totals.callerrors:>8}"
        f"{totals.timeouts:>8}{sum(s.in_flight for s in report.calls.values()):>9}"
    )
    lines += [
        "",
        f"throughput {totals.throughput_cps:.1f} calls/s   "
        f"error rate {totals.error_rate * 100:.2f}%",
    ]
    lines += _behaviour_lines(report)
    if report.csms_calls:
        lines += ["", f"{'CSMS call':<30}{'received':>9}{'answered':>9}{'callerr':>8}"
                      f"{'unansw':>8}{'answer p50/p99 ms':>20}"]
        for action, answers in report.csms_calls.items():
            answer = answers.answer_ms
            lines.append(
                f"{action:<30}{answers.received:>9}{answers.answered:>9}"
                f"{sum(answers.callerror_sent.values()):>8}{answers.unanswered or 0:>8}"
                f"{_ms(answer.p50) + ' / ' + _ms(answer.p99):>20}")
    if report.thresholds:
        lines += ["", "THRESHOLDS"]
        for verdict in report.thresholds:
            measured = "no samples" if verdict.value is None else f"{verdict.value:g}"
            mark = "✓" if verdict.ok else "✗"
            lines.append(f"  {mark} {verdict.threshold:<40} measured {measured} "
                         f"{verdict.unit}")
    parts = report.parts or ()
    if parts:
        lines += ["", f"parts      {len(parts)} reports merged: chargers booted, CPU, event-loop "
                      "lag and saturated seconds per part"]
        for part in parts:
            saturated = part.saturated_seconds
            lines.append(
                f"  {part.label or part.source:<20} booted {part.booted:>7}   "
                f"CPU {part.cpu_share * 100:>4.0f}%   lag p99 {_ms(part.loop_lag_p99_ms):>7}"
                f" ms   saturated {saturated} s" + ("   <- saturated" if saturated else ""))
    merge = report.merge
    for warning in merge.warnings if merge is not None else ():
        lines.append(f"WARNING: merge: {warning}")
    missing = merge.missing_segments if merge is not None else None
    if missing and report.workers is None:  # a run's lost workers are named below
        lines.append(f"WARNING: merge: no part ran segment{'s' * (len(missing) > 1)} "
                     f"{', '.join(missing)}: its parts ran "
                     f"{sum(part.chargers for part in parts)} of "
                     f"{report.config.get('chargers')} chargers")
    for lost in report.workers.lost if report.workers is not None else ():
        lines.append(f"WARNING: {lost.message}")
    generator = report.generator
    lag = generator.loop_lag_ms
    across = f" (all {len(parts)} parts together)" if parts else ""
    lines.append(f"generator  CPU {generator.cpu_share * 100:.0f}% of a core{across}, "
                 f"event-loop lag p99 {_ms(lag.p99)} ms, max {_ms(lag.max)} ms")
    if generator.saturated_seconds:
        lines.append(
            f"WARNING: fleetsim itself was saturated for {generator.saturated_seconds} s "
            "(CPU >= 90% or event-loop lag >= 50 ms): latencies in those seconds include the "
            "generator's own delay; use fewer chargers per process or a slower ramp")
    if chargers.internal_errors:
        lines.append("INTERNAL ERRORS (a fleetsim bug; please report it): " + ", ".join(
            f"{kind} x{n}" for kind, n in chargers.internal_errors.items()))
    if report.bad_frames:
        lines.append("bad frames from the CSMS: " + ", ".join(
            f"{kind} {n}" for kind, n in report.bad_frames.items()))
    if report.ramp is not None:
        lines += _ramp_lines(CONVERTER.unstructure(report.ramp))
    return "\n".join(lines)
