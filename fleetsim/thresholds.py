"""Pass/fail thresholds on a run's report, for pipelines that gate on performance.

Grammar (checked before the run starts)::

    threshold := metric op value
    metric    := "error_rate" | "throughput"
               | [ACTION "."] [("service" | "response") "."] STAT
               | "connect." STAT
    STAT      := p50 | p90 | p99 | p99.9 | max | mean
    op        := "<" | "<=" | ">" | ">="
    value     := NUMBER [ "ms" | "s" | "%" | "/s" ]

ACTION is one a charger sends (OCPP 1.6 or 2.0.1): a rule on any other name could never
have a sample, so it is refused before the run, with the closest name.

Latency without "service." or "response." means response time: what a charger experiences,
queueing included. A latency without an action is over all actions together, from the merged
HDR histograms (never an average of percentiles).
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, Final
from xml.etree import ElementTree

import attrs

from fleetsim.errors import ConfigError
from fleetsim.metrics import merge_encoded, percentiles_ms
from fleetsim.ocpp import v16, v201

__all__ = ["CHARGER_ACTIONS", "GRAMMAR", "STATS", "Threshold", "Verdict", "evaluate",
           "junit_xml", "latency_ms", "parse_threshold", "split_latency"]

GRAMMAR: Final = (
    "METRIC OP VALUE, e.g. 'BootNotification.p99<500ms', 'StartTransaction.response.p99.9<2s', "
    "'service.p99<200ms', 'connect.p99<1s', 'error_rate<0.1%', 'throughput>1500/s'; "
    "STAT is p50, p90, p99, p99.9, max or mean; OP is <, <=, > or >="
)
_OPS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
STATS: Final = {"p50": "p50", "p90": "p90", "p99": "p99", "p99.9": "p99_9", "max": "max",
                "mean": "mean"}
"""Statistic names in rules, and their keys in the report's percentile objects."""
CHARGER_ACTIONS: Final = tuple(sorted(v16.CHARGER_ACTIONS | v201.CHARGER_ACTIONS))
"""The actions a rule may name: the CALLs chargers send, in either OCPP version."""
_CSMS_ACTIONS: Final = (v16.CSMS_ACTIONS | v201.CSMS_ACTIONS) - set(CHARGER_ACTIONS)
_PATTERN: Final = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][\w.]*?)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%|/s)?\s*$")


@attrs.frozen
class Threshold:
    text: str
    kind: str  # "latency", "error_rate", "throughput"
    op: str
    limit: float  # milliseconds for latency, a fraction for error_rate, calls/s for throughput
    action: str | None = None
    timing: str = "response"  # "service", "response", or "connect"
    stat: str = "p99"


@attrs.frozen
class Verdict:
    """A threshold (or a ramp step's SLO) judged: `value` None when nothing was measured."""

    threshold: str
    ok: bool
    value: float | None
    limit: float
    unit: str

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(f"threshold {text!r}: {why}; expected {GRAMMAR}")


def parse_threshold(text: str) -> Threshold:
    match = _PATTERN.match(text)
    if match is None:
        raise _bad(text, "cannot read it")
    metric, op, unit = match["metric"], match["op"], match["unit"] or ""
    number = float(match["number"])
    if metric == "error_rate":
        if unit not in ("", "%"):
            raise _bad(text, "error_rate takes a fraction or a percentage")
        return Threshold(text, "error_rate", op, number / 100 if unit == "%" else number)
    if metric == "throughput":
        if unit not in ("", "/s"):
            raise _bad(text, "throughput takes calls per second")
        return Threshold(text, "throughput", op, number)
    if unit not in ("", "ms", "s"):
        raise _bad(text, "a latency takes ms or s")
    limit = number * 1000 if unit == "s" else number
    latency = split_latency(metric, ("service", "response", "connect"))
    if latency is None or (latency[1] == "connect" and latency[0] is not None):
        raise _bad(text, f"unknown latency metric {metric!r}")
    action, timing, stat = latency
    if action is not None and action not in CHARGER_ACTIONS:
        raise ConfigError(f"threshold {text!r}: {_unknown_action(action)}")
    return Threshold(text, "latency", op, limit, action, timing, stat)


def _unknown_action(action: str) -> str:
    if action in _CSMS_ACTIONS:
        return (f"no charger sends {action!r}, the CSMS sends it; thresholds judge the CALLs "
                "chargers send")
    by_case = {name.lower(): name for name in CHARGER_ACTIONS}
    close = difflib.get_close_matches(action.lower(), by_case, n=1)
    if close:
        return f"no charger sends {action!r}; did you mean {by_case[close[0]]!r}?"
    return f"no charger sends {action!r}; the actions are {', '.join(CHARGER_ACTIONS)}"


def split_latency(metric: str, timings: tuple[str, ...]) -> tuple[str | None, str, str] | None:
    """'[Action.][timing.]stat' to (action, timing, stat); None when it is not one.

    The timing defaults to response time; 'p99.9' keeps its dot.
    """
    parts = metric.split(".")
    stat = parts.pop()
    if stat == "9" and parts and parts[-1] == "p99":
        stat = "p99.9"
        parts.pop()
    timing = parts.pop() if parts and parts[-1] in timings else "response"
    action = parts.pop() if parts else None
    if stat not in STATS or parts:
        return None
    return action, timing, stat


def latency_ms(report: dict[str, Any], action: str | None, timing: str) -> dict[str, float]:
    """Percentiles of one action, or of all actions together, from the stored histograms."""
    return percentiles_ms(merge_encoded(
        stats["hdr"][timing] for name, stats in report["calls"].items()
        if action is None or name == action))


def _measure(threshold: Threshold, report: dict[str, Any]) -> float | None:
    if threshold.kind == "error_rate":
        rate = report["totals"]["error_rate"]  # None: no CALL ended, nothing to rate
        return None if rate is None else float(rate)
    if threshold.kind == "throughput":
        return float(report["totals"]["throughput_cps"])
    if threshold.timing == "connect":
        figures = report["connect"]["handshake_ms"]
    else:
        answered = sum(stats["ok"] + sum(stats["callerror"].values())
                       for action, stats in report["calls"].items()
                       if threshold.action is None or action == threshold.action)
        if not answered:
            return None
        figures = latency_ms(report, threshold.action, threshold.timing)
    return float(figures[STATS[threshold.stat]])


def evaluate(thresholds: Sequence[Threshold], report: dict[str, Any]) -> list[Verdict]:
    """A verdict per threshold; a latency (or an error rate) with no samples fails: nothing
    was shown to hold."""
    verdicts = []
    for threshold in thresholds:
        value = _measure(threshold, report)
        ok = value is not None and _OPS[threshold.op](value, threshold.limit)
        unit = {"latency": "ms", "error_rate": "ratio", "throughput": "calls/s"}[threshold.kind]
        verdicts.append(Verdict(threshold.text, ok, value, threshold.limit, unit))
    return verdicts


def junit_xml(verdicts: Sequence[Verdict], duration_s: float) -> str:
    """One JUnit test case per threshold, so CI systems show the verdicts natively."""
    failures = sum(not verdict.ok for verdict in verdicts)
    suite = ElementTree.Element("testsuite", name="fleetsim thresholds",
                                tests=str(len(verdicts)), failures=str(failures),
                                time=f"{duration_s:.3f}")
    for verdict in verdicts:
        case = ElementTree.SubElement(suite, "testcase", classname="fleetsim.thresholds",
                                      name=verdict.threshold)
        if not verdict.ok:
            measured = "no samples" if verdict.value is None else f"{verdict.value:g}"
            ElementTree.SubElement(case, "failure", message=(
                f"{verdict.threshold}: measured {measured} {verdict.unit}"))
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
