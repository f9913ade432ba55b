"""Comparing two run reports: per action and overall, with regression gates.

Percentiles come from the HDR histograms stored in the reports (merged exactly for "all
actions"), never from averaging figures. Gate grammar (`--fail-on`)::

    rule   := metric op change
    metric := [ACTION "."] [("service" | "response") "."] STAT | "error_rate" | "throughput"
    op     := ">" | "<"
    change := ("+" | "-") NUMBER ("%" | "pp")

`p99>+10%` fails when the candidate's p99 response time (all actions) is more than 10 % above
the baseline's; `error_rate>+0.05pp` when the error rate rose by more than 0.05 percentage
points; `throughput<-5%` when throughput fell by more than 5 %. Between two `fleetsim ramp`
reports, `knee<-10%` fails when the largest fleet that held every SLO shrank by more than 10 %.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from fleetsim.errors import ConfigError
from fleetsim.metrics import merge_encoded, percentiles_ms
from fleetsim.report._build import SCHEMA
from fleetsim.report._model import CallStats, Ramp, Report, check_report
from fleetsim.thresholds import STATS, split_latency

__all__ = ["GATE_GRAMMAR", "Comparison", "Gate", "compare", "format_comparison", "load_report",
           "parse_gate"]

GATE_GRAMMAR: Final = (
    "METRIC OP CHANGE, e.g. 'p99>+10%', 'BootNotification.service.p99.9>+20%', "
    "'error_rate>+0.05pp', 'throughput<-5%', 'knee<-10%' (ramp reports)"
)
_GATE: Final = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*?)\s*(?P<op>[<>])\s*(?P<change>[+-]\d+(?:\.\d+)?)"
    r"\s*(?P<unit>%|pp)\s*$")
_SHOWN: Final = ("p50", "p99", "p99_9")


def load_report(path: str) -> dict[str, Any]:
    """Read a report file; a bad one is a `ConfigError` naming the file and the first bad
    field (`check_report`)."""
    try:
        report: Any = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    check_report(report, path)
    checked: dict[str, Any] = report
    return checked


@attrs.frozen
class Gate:
    text: str
    metric: str  # "latency", "error_rate", "throughput", "knee"
    op: str
    change: float  # a fraction for "%", an absolute error-rate difference for "pp"
    relative: bool
    action: str | None = None
    timing: str = "response"
    stat: str = "p99"


def parse_gate(text: str) -> Gate:
    match = _GATE.match(text)
    if match is None:
        raise ConfigError(f"fail-on {text!r}: cannot read it; expected {GATE_GRAMMAR}")
    metric, op, unit = match["metric"], match["op"], match["unit"]
    relative = unit == "%"
    change = float(match["change"]) / 100  # 10% is 0.10; 0.05pp is an error rate of 0.0005
    if metric in ("error_rate", "throughput", "knee"):
        if metric != "error_rate" and not relative:
            raise ConfigError(f"fail-on {text!r}: {metric} changes are in %")
        return Gate(text, metric, op, change, relative)
    if not relative:
        raise ConfigError(f"fail-on {text!r}: latency changes are in %")
    latency = split_latency(metric, ("service", "response"))
    if latency is None:
        raise ConfigError(f"fail-on {text!r}: unknown metric; expected {GATE_GRAMMAR}")
    action, timing, stat = latency
    return Gate(text, "latency", op, change, True, action, timing, STATS[stat])


def _error_rate(stats: CallStats) -> float:
    errors = sum(stats.callerror.values()) + stats.timeout
    return errors / stats.sent if stats.sent else 0.0


@attrs.frozen
class Comparison:
    warnings: list[str]
    rows: list[dict[str, Any]]
    gates: list[dict[str, Any]]

    @property
    def failed(self) -> bool:
        return any(not gate["ok"] for gate in self.gates)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _change(base: float, cand: float) -> float | None:
    return (cand - base) / base if base else None


def compare(base: Report | Mapping[str, Any], cand: Report | Mapping[str, Any],
            gates: Sequence[Gate] = ()) -> Comparison:
    """Per action, the candidate's percentiles and error rates against the baseline's, from
    the stored histograms; reports given as JSON data are checked first (`check_report`)."""
    base = base if isinstance(base, Report) else check_report(base, "baseline")
    cand = cand if isinstance(cand, Report) else check_report(cand, "candidate")
    warnings = []
    if base.schema != cand.schema or base.schema != SCHEMA:
        warnings.append(f"schemas differ or are unknown: {base.schema} vs "
                        f"{cand.schema} (this fleetsim reads {SCHEMA})")
    base_fleet = base.config.get("chargers")
    cand_fleet = cand.config.get("chargers")
    if base_fleet != cand_fleet:
        warnings.append(f"different fleets: {base_fleet} vs {cand_fleet} chargers")
    rows = []
    for action in [None, *sorted(set(base.calls) | set(cand.calls))]:
        name = action or "(all actions)"
        for timing in ("service", "response"):
            b, c = _latency_ms(base, action, timing), _latency_ms(cand, action, timing)
            for stat in _SHOWN:
                rows.append({"action": name, "metric": f"{timing}.{stat}", "base": b[stat],
                             "cand": c[stat], "change": _change(b[stat], c[stat]),
                             "worse": c[stat] > b[stat] * 1.1 and c[stat] - b[stat] > 0.01})
        if action is not None:
            b_rate = _error_rate(base.calls[action]) if action in base.calls else 0.0
            c_rate = _error_rate(cand.calls[action]) if action in cand.calls else 0.0
            rows.append({"action": name, "metric": "error_rate", "base": b_rate,
                         "cand": c_rate, "change": _change(b_rate, c_rate),
                         "worse": c_rate > b_rate})
    for key in ("throughput_cps", "error_rate"):
        b_total, c_total = getattr(base.totals, key), getattr(cand.totals, key)
        worse = c_total < b_total * 0.95 if key == "throughput_cps" else c_total > b_total
        rows.append({"action": "(all actions)", "metric": key, "base": b_total,
                     "cand": c_total, "change": _change(b_total, c_total), "worse": worse})
    if base.ramp is not None and cand.ramp is not None:
        b_knee, c_knee = _knee(base.ramp), _knee(cand.ramp)
        rows.append({"action": "(ramp)", "metric": "knee", "base": b_knee, "cand": c_knee,
                     "change": _change(b_knee, c_knee), "worse": c_knee < b_knee})
        for name, ramp in (("baseline", base.ramp), ("candidate", cand.ramp)):
            knee = ramp.knee
            if ramp.stopped_because == "max":
                warnings.append(f"the {name}'s ramp held up to its last step: its knee, "
                                f"{knee}, is a lower bound")
            elif ramp.limit == "generator":
                warnings.append(f"the {name}'s ramp ended on fleetsim's own limit, not the "
                                f"CSMS's: its knee, {knee}, is a lower bound")
            elif ramp.stopped_because in ("interrupted", "unreachable"):
                warnings.append(f"the {name}'s ramp was {ramp.stopped_because}: its knee, "
                                f"{knee}, is a lower bound")
        if base.ramp.plan != cand.ramp.plan:
            warnings.append("the two ramps had different plans (steps, holds or SLOs): their "
                            "knees are not measured alike")
    verdicts = [_judge(gate, base, cand) for gate in gates]
    return Comparison(warnings, rows, verdicts)


def _latency_ms(report: Report, action: str | None, timing: str) -> dict[str, float]:
    """Percentiles of one action, or of all actions together, from the stored histograms."""
    return percentiles_ms(merge_encoded(
        getattr(stats.hdr, timing) for name, stats in report.calls.items()
        if action is None or name == action))


def _knee(ramp: Ramp) -> float:
    """The knee of a ramp: no step held is a knee of 0."""
    return float(ramp.knee or 0)


def _gated_knee(gate: Gate, report: Report, name: str) -> float:
    if report.ramp is None:
        raise ConfigError(f"fail-on {gate.text!r}: the {name} is not a ramp report (no knee)")
    return _knee(report.ramp)


def _judge(gate: Gate, base: Report, cand: Report) -> dict[str, Any]:
    if gate.metric == "knee":
        b, c = _gated_knee(gate, base, "baseline"), _gated_knee(gate, cand, "candidate")
    elif gate.metric == "error_rate":
        b, c = float(base.totals.error_rate), float(cand.totals.error_rate)
    elif gate.metric == "throughput":
        b, c = float(base.totals.throughput_cps), float(cand.totals.throughput_cps)
    else:
        b = _latency_ms(base, gate.action, gate.timing)[gate.stat]
        c = _latency_ms(cand, gate.action, gate.timing)[gate.stat]
    delta = (c - b) / b if gate.relative and b else c - b
    if gate.relative and not b:
        delta = 0.0 if not c else float("inf")
    breached = delta > gate.change if gate.op == ">" else delta < gate.change
    return {"rule": gate.text, "ok": not breached, "base": b, "cand": c, "delta": delta}


def format_comparison(comparison: Comparison) -> str:
    lines = [f"warning: {warning}" for warning in comparison.warnings]
    lines.append(f"{'action':<26}{'metric':<20}{'baseline':>12}{'candidate':>12}{'change':>10}")
    for row in comparison.rows:
        change = "n/a" if row["change"] is None else f"{row['change'] * 100:+.1f}%"
        mark = "  ▲ worse" if row["worse"] else ""
        lines.append(f"{row['action']:<26}{row['metric']:<20}{row['base']:>12.3f}"
                     f"{row['cand']:>12.3f}{change:>10}{mark}")
    if comparison.gates:
        lines += ["", "GATES"]
        for gate in comparison.gates:
            mark = "✓" if gate["ok"] else "✗"
            lines.append(f"  {mark} {gate['rule']:<40} {gate['base']:.4g} -> {gate['cand']:.4g}")
    return "\n".join(lines)
