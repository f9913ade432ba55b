"""Capacity ramps: step windows, SLO verdicts and the knee, against a CSMS of known capacity."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from hdrh.histogram import HdrHistogram
from trio.testing import MockClock

from fleetsim import (
    ChargerSpec,
    ConfigError,
    Distribution,
    FleetOutcome,
    Metrics,
    RampPlan,
    RampResult,
    RunConfig,
    format_summary,
    parse_threshold,
    ramp,
)
from fleetsim.capacity import conclude, step_result
from fleetsim.cli import ramp_exit_code
from fleetsim.report import window_report
from fleetsim.thresholds import GRAMMAR, evaluate

from .conftest import start_csms
from .test_cli import fleetsim
from .test_fleet import _assert_balanced

# -- the plan ---------------------------------------------------------------------------------


def test_steps_go_from_start_by_step_and_end_at_max() -> None:
    assert RampPlan(start=500, step=500, every_s=60, max=2000).sizes() == [500, 1000, 1500, 2000]
    assert RampPlan(start=100, step=300, every_s=60, max=800).sizes() == [100, 400, 700, 800]
    assert RampPlan(start=50, step=10, every_s=1, max=50).sizes() == [50]


@pytest.mark.parametrize(("values", "message"), [
    ({"max": 100}, "max: must be at least start (500), got 100"),
    ({"step": 0}, "step: expected 1 to 1,000,000 chargers, got 0"),
    ({"every_s": 0}, "every: must be positive"),
    ({"settle_s": -1}, "settle: must be zero or more"),
    ({"slos": ["p99<1s", "p99 << 1s"]}, "slo: threshold 'p99 << 1s': cannot read it"),
    ({"slos": ["latency<1s"]}, "unknown latency metric 'latency'"),
])
def test_a_bad_plan_is_refused_with_the_option_named(values: dict[str, Any], message: str) -> None:
    plan: dict[str, Any] = {"start": 500, "step": 500, "every_s": 60, "max": 2000, **values}
    with pytest.raises(ConfigError) as caught:
        RampPlan(**plan)
    assert message in str(caught.value)
    if "slos" in values:
        assert GRAMMAR in str(caught.value)


# -- windows ----------------------------------------------------------------------------------


def test_a_window_holds_exactly_the_calls_that_ended_in_its_hold() -> None:
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", 0.5, 0.5)  # before the window: not in it
    window = metrics.open_window()
    metrics.connect_ok(0.003)  # the step's chargers connect: counted from the opening
    metrics.connect_failed("refused")
    metrics.call_sent("BootNotification")
    metrics.call_ok("BootNotification", 2.0, 2.0)  # the boot burst, before the hold
    window.start_hold()
    for ms in range(1, 101):  # the hold: 1..100 ms, one of them a CALLERROR, two timeouts
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", ms / 1000, ms / 1000)
    metrics.call_error("StatusNotification", "InternalError", 0.2, 0.3)
    metrics.call_timeout("Heartbeat")
    metrics.call_timeout("Heartbeat", lost=True)
    metrics.loop_lag(0.004)
    assert metrics.close_window() is window
    metrics.call_ok("Heartbeat", 9.0, 9.0)  # after: not in it

    report = window_report(window, 2.0)
    heartbeat = report["calls"]["Heartbeat"]
    assert (heartbeat["sent"], heartbeat["ok"], heartbeat["timeout"]) == (100, 100, 2)
    assert "BootNotification" not in report["calls"]
    totals = report["totals"]
    assert totals["errors"] == 3 and totals["error_rate"] == pytest.approx(3 / 103, abs=1e-6)
    assert totals["throughput_cps"] == pytest.approx(101 / 2.0)
    assert report["response_ms"]["max"] == pytest.approx(300, rel=0.001)
    response = HdrHistogram.decode(report["hdr"]["response"])
    assert response.get_total_count() == 101  # exactly the hold's answers
    assert report["connect"]["count"] == 1 and report["connect"]["failures"] == {"refused": 1}
    assert report["loop_lag_ms"]["max"] == pytest.approx(4, rel=0.001)
    assert window.action("Heartbeat").ok == 100  # nothing recorded once closed


def test_slos_are_threshold_rules_evaluated_on_the_window() -> None:
    metrics = Metrics()
    window = metrics.open_window()
    for ms in range(1, 1001):
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", ms / 1000, ms / 1000)
    metrics.call_error("Authorize", "InternalError", 0.01, 0.01)
    metrics.close_window()
    report = window_report(window, 10.0)
    rules = ["p99<1s", "p99<900ms", "Heartbeat.p50<=501ms", "Authorize.p99<5ms",
             "error_rate<0.5%", "error_rate<0.05%", "throughput>100/s", "throughput>101/s"]
    verdicts = evaluate([parse_threshold(rule) for rule in rules], report)
    assert [verdict.ok for verdict in verdicts] == [True, False, True, False,
                                                    True, False, True, False]
    assert verdicts[1].value == pytest.approx(990, rel=0.001)

    nothing_ended = window_report(metrics.open_window(), 10.0)
    assert nothing_ended["totals"]["error_rate"] is None  # a hung CSMS does not pass
    [verdict] = evaluate([parse_threshold("error_rate<0.5%")], nothing_ended)
    assert not verdict.ok and verdict.value is None


def _step(number: int, chargers: int, slo_ok: bool, *, settled: bool = True,
          cpu: float = 0.2, lag_ms: float = 1.0) -> dict[str, Any]:
    metrics = Metrics()
    window = metrics.open_window()
    window.start_hold()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", 0.1, 0.1 if slo_ok else 2.0)
    metrics.loop_lag(lag_ms / 1000)
    metrics.close_window()
    return step_result(number, chargers, (parse_threshold("p99<1s"),), window, 10.0,
                       started_at_s=10.0 * number, hold_started_at_s=10.0 * number + 2,
                       settled=settled, booted=chargers if settled else chargers // 2,
                       cpu_share=cpu)


PLAN = RampPlan(start=100, step=100, every_s=10, max=400, slos=("p99<1s",))


def test_the_knee_is_the_last_step_that_held() -> None:
    steps = [_step(1, 100, True), _step(2, 200, True), _step(3, 300, False)]
    ramp = conclude(PLAN, steps, "ramp")
    assert (ramp["knee"], ramp["stopped_because"], ramp["limit"]) == (200, "slo", "csms")
    assert ramp["verdict"] == ("At 300 chargers p99<1s failed (measured 2001 ms): the CSMS was "
                               "the limit.")
    assert steps[2]["slos"] == [{"threshold": "p99<1s", "ok": False, "value": 2000.895,
                                 "limit": 1000.0, "unit": "ms"}]


def test_no_knee_when_the_first_step_fails() -> None:
    ramp = conclude(PLAN, [_step(1, 100, False)], "ramp")
    assert ramp["knee"] is None and ramp["limit"] == "csms"
    assert ramp["verdict"].startswith("The first step already failed.")


def test_a_saturated_generator_is_named_as_the_limit() -> None:
    for saturated in (_step(3, 300, False, cpu=0.95), _step(3, 300, False, lag_ms=80)):
        assert saturated["saturated"]
        ramp = conclude(PLAN, [_step(1, 100, True), _step(2, 200, True), saturated], "ramp")
        assert ramp["limit"] == "generator" and ramp["knee"] == 200
        assert "the generator, not the CSMS, was the limit" in ramp["verdict"]
        assert "The CSMS held 200 chargers at least" in ramp["verdict"]
        assert "run `fleetsim spawn -u 300 --workers auto`" in ramp["verdict"]
    assert not _step(1, 100, False, cpu=0.85, lag_ms=40)["saturated"]


def test_a_step_whose_chargers_did_not_boot_does_not_hold() -> None:
    step = _step(2, 200, True, settled=False)
    assert not step["held"]
    ramp = conclude(PLAN, [_step(1, 100, True), step], "ramp")
    assert (ramp["knee"], ramp["stopped_because"]) == (100, "not_settled")
    assert "only 100 of its 200 chargers were booted in time" in ramp["verdict"]


def test_the_last_step_holding_and_an_interrupted_ramp() -> None:
    steps = [_step(n, n * 100, True) for n in range(1, 5)]
    ramp = conclude(PLAN, steps, "ramp")
    assert (ramp["knee"], ramp["stopped_because"], ramp["limit"]) == (400, "max", None)
    ramp = conclude(PLAN, steps[:2], "interrupted")
    assert (ramp["knee"], ramp["stopped_because"], ramp["limit"]) == (200, "interrupted", None)


# -- against a CSMS of known capacity ---------------------------------------------------------

CAPACITY = 500.0
METER_S = 0.2
"""Each charger sends one MeterValues every 0.2 s of a session that never ends (and nothing else
once it runs): 5 CALLs/s, so the CSMS's capacity is 500 / 5 = 100 chargers."""


async def test_a_ramp_finds_the_knee_of_a_csms_of_known_capacity(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, capacity_per_s=CAPACITY, heartbeat_interval_s=3600)
    knee_expected = CAPACITY * METER_S
    charger = ChargerSpec(connectors=1, idle_s=(0.0, METER_S), meter_interval_s=METER_S,
                          session_s=Distribution("fixed", mean=1e6))
    config = RunConfig(url=server.url, charger=charger, ramp_per_s=50)
    # 70, 90, 110 chargers: 70 % and 90 % of the capacity must hold and 110 % must break
    plan = RampPlan(start=70, step=20, every_s=3, max=200, settle_s=2, slos=("p99<300ms",))
    seen: list[int] = []
    with trio.fail_after(60):
        result = await ramp(config, plan, on_step=lambda step: seen.append(step["chargers"]),
                            write=False)
    report = result.report
    steps = report["ramp"]["steps"]
    assert result.knee is not None, report["ramp"]["verdict"]
    assert abs(result.knee - knee_expected) <= 0.15 * knee_expected, [
        (s["chargers"], s["p99_ms"], s["calls_per_s"]) for s in steps]
    assert seen == [step["chargers"] for step in steps]
    assert report["ramp"]["stopped_because"] == "slo"
    failed = steps[-1]
    assert failed["chargers"] > knee_expected and not failed["held"]
    # past the capacity the CSMS answers exactly its capacity, whatever is asked of it
    assert 0.9 * CAPACITY <= failed["calls_per_s"] <= 1.05 * CAPACITY, failed
    for step in steps[:-1]:
        assert step["held"] and step["settled"]
        assert step["calls_per_s"] == pytest.approx(step["chargers"] / METER_S, rel=0.1)
    # handshakes count from each step's start: the new chargers, and none other
    assert [step["connects"] for step in steps] == [70, 20, 20]
    assert result.outcome.stopped_by == "ramp" and report["outcome"]["reason"] == ""
    assert report["chargers"]["target"] == failed["chargers"]
    # the ramp stopped gracefully: every CALL in one bucket, the CSMS's counts agree
    _assert_balanced(report)
    assert {a: s["ok"] for a, s in report["calls"].items()} == dict(server.stats.received)
    summary = format_summary(report)
    assert f"KNEE       {result.knee} chargers." in summary
    json.dumps(report)


async def test_a_saturated_generator_is_blamed_not_the_csms(nursery: trio.Nursery) -> None:
    server = await start_csms(nursery, heartbeat_interval_s=1)

    async def hog() -> None:  # blocks the event loop, as an overloaded generator would
        while True:
            await trio.sleep(0.3)
            time.sleep(0.1)

    nursery.start_soon(hog)
    # closed-loop chargers always have a CALL in flight: every stall delays some
    config = RunConfig(url=server.url, closed_loop=True,
                       charger=ChargerSpec(connectors=1, idle_s=(1e6, 1e6)))
    plan = RampPlan(start=10, step=10, every_s=2, max=20, slos=("max<50ms",))
    with trio.fail_after(30):
        result = await ramp(config, plan, write=False)
    [step] = result.report["ramp"]["steps"]
    # each 100 ms block is seen by the 20 ms probe at least 80 ms late, and is no rarer
    # among its samples than one in twenty: the hold's p99 is such a sample
    assert step["saturated"] and step["loop_lag_p99_ms"] >= 80
    assert (result.knee, result.limit) == (None, "generator")
    assert "the generator, not the CSMS, was the limit" in result.report["ramp"]["verdict"]
    assert "[generator saturated]" in format_summary(result.report)


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--slo", "p99<1s", "--slo", "p99 is small"], "slo: threshold 'p99 is small'"),
    (["--slo", "error_rate<1ms"], "error_rate takes a fraction or a percentage"),
    (["--start", "500", "--max", "100"], "max: must be at least start (500), got 100"),
    (["--every", "soon"], "every: expected a duration"),
    (["--settle-timeout", "0"], "settle-timeout: must be positive"),
])
def test_a_bad_ramp_is_refused_before_it_runs(tmp_path: Path, args: list[str],
                                              message: str) -> None:
    report = tmp_path / "r.json"
    done = fleetsim("ramp", *args, "--report", str(report), timeout=30)
    assert done.returncode == 104, done.stderr
    assert done.stderr.startswith("fleetsim: error:") and message in done.stderr
    if "slo" in message:
        assert GRAMMAR in done.stderr
    assert "Traceback" not in done.stderr
    assert not report.exists()


def test_ramp_exit_codes_and_outputs(tmp_path: Path) -> None:
    quick = ["--start", "5", "--step", "5", "--every", "1.5s", "--heartbeat-interval", "1",
             "--connectors", "1", "-q"]
    held = fleetsim("ramp", *quick, "--max", "10", "--slo", "p99<5s", "--slo",
                    "error_rate<1%", "--report", str(tmp_path / "held.json"),
                    "--html", str(tmp_path / "held.html"), timeout=90)
    assert held.returncode == 0, held.stderr
    assert "KNEE       10 chargers. Every step held every SLO, up to the last" in held.stdout
    report = json.loads((tmp_path / "held.json").read_text())
    assert report["ramp"]["knee"] == 10 and report["ramp"]["stopped_because"] == "max"
    assert report["embedded_csms"]["received"]["BootNotification"] == 10
    assert 'id="ramp"' in (tmp_path / "held.html").read_text()

    failed = fleetsim("ramp", *quick, "--max", "10", "--slo", "p99<1ms", "--delay-ms", "20",
                      "--json", "--report", str(tmp_path / "failed.json"), timeout=90)
    assert failed.returncode == 99, failed.stderr
    ramp_section = json.loads(failed.stdout)["ramp"]
    assert ramp_section["knee"] is None and ramp_section["limit"] == "csms"
    assert len(ramp_section["steps"]) == 1 and ramp_section["steps"][0]["p99_ms"] >= 20


@pytest.mark.parametrize(("stopped_by", "outcomes", "code"), [
    ("ramp", [True, True, False], 0),
    ("ramp", [True, True, True, True], 0),  # every step held, up to --max
    ("ramp", [False], 99),  # no knee
    ("ramp", [True, "saturated"], 106),
    ("ramp", ["saturated"], 106),
    ("interrupted", [True], 105),
    ("unreachable", [], 103),
])
def test_ramp_exit_codes(stopped_by: str, outcomes: list[bool | str], code: int) -> None:
    steps = [_step(n, n * 100, outcome is True, cpu=0.95 if outcome == "saturated" else 0.2)
             for n, outcome in enumerate(outcomes, 1)]
    report = {"ramp": conclude(PLAN, steps, stopped_by)}
    result = RampResult(report, FleetOutcome(stopped_by, 0.0, 1.0), None)
    assert ramp_exit_code(result) == code
