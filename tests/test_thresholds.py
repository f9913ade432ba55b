"""Thresholds: the grammar, verdicts computed from real reports, exit code 99 and JUnit XML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from fleetsim import ConfigError, Metrics, RunConfig
from fleetsim.metrics import FleetOutcome
from fleetsim.report import build_report
from fleetsim.thresholds import evaluate, junit_xml, parse_threshold


@pytest.mark.parametrize(("text", "fields"), [
    ("BootNotification.p99<500ms", ("latency", "BootNotification", "response", "p99", 500.0)),
    ("StartTransaction.response.p99.9<2s",
     ("latency", "StartTransaction", "response", "p99.9", 2000.0)),
    ("service.p50 <= 20ms", ("latency", None, "service", "p50", 20.0)),
    ("Heartbeat.service.max>=1", ("latency", "Heartbeat", "service", "max", 1.0)),
    ("connect.p99<1s", ("latency", None, "connect", "p99", 1000.0)),
    ("error_rate<0.1%", ("error_rate", None, "response", "p99", 0.001)),
    ("error_rate<0.02", ("error_rate", None, "response", "p99", 0.02)),
    ("throughput>1500/s", ("throughput", None, "response", "p99", 1500.0)),
])
def test_grammar(text: str, fields: tuple[Any, ...]) -> None:
    t = parse_threshold(text)
    assert (t.kind, t.action, t.timing, t.stat, t.limit) == fields


@pytest.mark.parametrize("text", [
    "p99", "BootNotification.p98<1s", "error_rate<5ms", "throughput>3s", "latency<<3",
    "A.B.service.p99<1s", "connect.Heartbeat.p99<1s", "p99<fast",
])
def test_malformed_thresholds_show_the_grammar(text: str) -> None:
    with pytest.raises(ConfigError, match="expected METRIC OP VALUE"):
        parse_threshold(text)


@pytest.mark.parametrize(("text", "hint"), [
    ("Foo.p99<1s", "the actions are Authorize, BootNotification,"),
    ("Heartbeet.p99<1s", "did you mean 'Heartbeat'?"),
    ("heartbeat.service.p99<1s", "did you mean 'Heartbeat'?"),
    ("Reset.p99<1s", "the CSMS sends it"),
])
def test_a_threshold_on_an_action_no_charger_sends_is_refused(text: str, hint: str) -> None:
    """Thresholds judge the CALLs chargers send (OCPP 1.6 or 2.0.1): any other name could
    never have a sample, and the run would fail only at its end."""
    with pytest.raises(ConfigError) as caught:
        parse_threshold(text)
    message = str(caught.value)
    assert message.startswith(f"threshold {text!r}: no charger sends {text.split('.')[0]!r}")
    assert hint in message


def test_thresholds_on_every_action_chargers_send_are_accepted() -> None:
    for action in ("DiagnosticsStatusNotification", "TransactionEvent", "NotifyReport",
                   "DataTransfer", "SecurityEventNotification"):
        assert parse_threshold(f"{action}.p99<1s").action == action


def _report() -> dict[str, Any]:
    metrics = Metrics()
    for n in range(1, 1001):  # Heartbeat response 1..1000 ms, service a tenth of that
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", n / 10_000, n / 1000)
    for _ in range(10):
        metrics.call_sent("Authorize")
        metrics.call_ok("Authorize", 0.002, 0.002)
    for _ in range(2):  # an error rate of 2/1012, just under 0.2%
        metrics.call_sent("Authorize")
        metrics.call_timeout("Authorize")
    metrics.connect_ok(0.004)
    outcome = FleetOutcome("duration", 1_700_000_000.0, 1_700_000_010.0)
    return build_report(RunConfig(url="ws://127.0.0.1:9/ocpp"), "ws://127.0.0.1:9/ocpp",
                        metrics, outcome)


@pytest.mark.parametrize(("text", "ok"), [
    ("Heartbeat.p50<600ms", True), ("Heartbeat.p50<400ms", False),
    ("Heartbeat.service.p99<101ms", True), ("Heartbeat.service.p99<95ms", False),
    ("p99<1000ms", True), ("p50<100ms", False),  # over both actions, from merged histograms
    ("error_rate<0.1%", False), ("error_rate<=0.001", False), ("error_rate<0.2%", True),
    ("throughput>100/s", True), ("throughput>102/s", False),
    ("connect.p99<5ms", True), ("StopTransaction.p99<1s", False),  # never sent
])
def test_verdicts_from_a_report(text: str, ok: bool) -> None:
    [verdict] = evaluate([parse_threshold(text)], _report())
    assert verdict.ok is ok, verdict


def test_a_latency_over_all_actions_fails_without_samples() -> None:
    """A run (or a ramp step) in which no CALL was answered showed nothing to hold."""
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_timeout("Heartbeat")
    outcome = FleetOutcome("duration", 1_700_000_000.0, 1_700_000_010.0)
    report = build_report(RunConfig(url="ws://127.0.0.1:9/ocpp"), "ws://127.0.0.1:9/ocpp",
                          metrics, outcome)
    verdicts = evaluate([parse_threshold("p99<1s"), parse_threshold("service.max<1s")], report)
    assert [(verdict.ok, verdict.value) for verdict in verdicts] == [(False, None)] * 2


def test_junit_xml_has_a_case_per_threshold() -> None:
    verdicts = evaluate([parse_threshold("Heartbeat.p50<600ms"),
                         parse_threshold("error_rate<0.1%")], _report())
    suite = ElementTree.fromstring(junit_xml(verdicts, 10.0))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == ["Heartbeat.p50<600ms", "error_rate<0.1%"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "measured 0.001976" in failure.get("message", "")


def test_cli_gates_on_thresholds(tmp_path: Path) -> None:
    junit = tmp_path / "verdicts.xml"
    done = subprocess.run(
        [sys.executable, "-m", "fleetsim", "spawn", "-u", "10", "-t", "1.5", "-q",
         "--report", str(tmp_path / "r.json"), "--junit", str(junit),
         "--threshold", "BootNotification.p99<10s", "--threshold", "throughput>1000000/s"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 99, done.stderr
    assert "✓ BootNotification.p99<10s" in done.stdout
    assert "✗ throughput>1000000/s" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert [v["ok"] for v in report["thresholds"]] == [True, False]
    assert ElementTree.parse(junit).getroot().get("failures") == "1"


@pytest.mark.parametrize(("args", "message"), [
    (["spawn", "--threshold", "p99 < soon"], "expected METRIC OP VALUE"),
    (["spawn", "--threshold", "Heartbeet.p99<1s"], "did you mean 'Heartbeat'?"),
    (["ramp", "--slo", "Foo.p99<1s"], "no charger sends 'Foo'"),
])
def test_cli_rejects_a_bad_threshold_before_running(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fleetsim", *args],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 104
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
