"""`fleetsim compare`: exact percentiles from stored histograms, regression marks and gates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleetsim import ConfigError, Metrics, RunConfig
from fleetsim.capacity import conclude
from fleetsim.metrics import FleetOutcome
from fleetsim.report import build_report, compare, load_report, parse_gate

from .test_ramp import PLAN, _step


def report(scale: float, *, timeouts: int = 0, chargers: int = 100,
           seconds: float = 10.0) -> dict[str, Any]:
    """1000 Heartbeats with response times 1..1000 ms times `scale`."""
    metrics = Metrics()
    for n in range(1, 1001):
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", n * scale / 10_000, n * scale / 1000)
    for _ in range(timeouts):
        metrics.call_sent("Authorize")
        metrics.call_timeout("Authorize")
    outcome = FleetOutcome("duration", 1_700_000_000.0, 1_700_000_000.0 + seconds)
    return build_report(RunConfig(chargers=chargers, url="ws://127.0.0.1:9/ocpp"),
                        "ws://127.0.0.1:9/ocpp", metrics, outcome)


def test_rows_come_from_the_histograms_and_mark_regressions() -> None:
    result = compare(report(1.0), report(1.5))
    rows = {(r["action"], r["metric"]): r for r in result.rows}
    p99 = rows[("Heartbeat", "response.p99")]
    assert p99["base"] == pytest.approx(990, rel=0.002)
    assert p99["cand"] == pytest.approx(1485, rel=0.002)
    assert p99["change"] == pytest.approx(0.5, abs=0.01)
    assert p99["worse"]
    assert rows[("(all actions)", "response.p50")]["worse"]
    assert not compare(report(1.0), report(1.0)).rows[0]["worse"]
    assert result.warnings == []


@pytest.mark.parametrize(("rule", "cand", "ok"), [
    ("p99>+10%", report(1.05), True),
    ("p99>+10%", report(1.2), False),
    ("Heartbeat.service.p99.9>+10%", report(1.2), False),
    ("error_rate>+0.05pp", report(1.0, timeouts=1), False),
    ("error_rate>+0.5pp", report(1.0, timeouts=1), True),
    ("throughput<-5%", report(1.0, seconds=12), False),
    ("throughput<-5%", report(1.0, seconds=10.2), True),
])
def test_gates(rule: str, cand: dict[str, Any], ok: bool) -> None:
    [gate] = compare(report(1.0), cand, [parse_gate(rule)]).gates
    assert gate["ok"] is ok, gate


def test_different_fleets_and_schemas_are_flagged() -> None:
    other = report(1.0, chargers=200)
    other["schema"] = "fleetsim.report/2"
    warnings = compare(report(1.0), other).warnings
    assert any("schemas differ" in w for w in warnings)
    assert any("different fleets: 100 vs 200" in w for w in warnings)


@pytest.mark.parametrize("rule", ["p99>10%", "p99>+10ms", "throughput<-5pp", "p98>+1%", "x"])
def test_malformed_gates(rule: str) -> None:
    with pytest.raises(ConfigError, match="fail-on"):
        parse_gate(rule)


def test_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ConfigError, match=r"x\.json: not a fleetsim report"):
        load_report(str(tmp_path / "x.json"))


def test_cli(tmp_path: Path) -> None:
    base, cand = tmp_path / "base.json", tmp_path / "cand.json"
    base.write_text(json.dumps(report(1.0)))
    cand.write_text(json.dumps(report(1.3)))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fleetsim", "compare", str(base),
                               str(cand), *args], capture_output=True, text=True,
                              timeout=60, check=False)

    plain = run()
    assert plain.returncode == 0, plain.stderr
    assert "▲ worse" in plain.stdout and "+30.0%" in plain.stdout
    gated = run("--fail-on", "p99>+10%", "--fail-on", "error_rate>+1pp")
    assert gated.returncode == 99
    assert "✗ p99>+10%" in gated.stdout and "✓ error_rate>+1pp" in gated.stdout
    as_json = run("--json")
    assert json.loads(as_json.stdout)["rows"][0]["action"] == "(all actions)"
    missing = subprocess.run([sys.executable, "-m", "fleetsim", "compare", str(base),
                              str(tmp_path / "nope.json")], capture_output=True, text=True,
                             timeout=60, check=False)
    assert missing.returncode == 104 and "nope.json: cannot read it" in missing.stderr


def ramp_report(*held: bool) -> dict[str, Any]:
    """A ramp report whose steps (100, 200, ... chargers) held or broke the SLO."""
    steps = [_step(n, 100 * n, ok) for n, ok in enumerate(held, 1)]
    return {**report(1.0), "ramp": conclude(PLAN, steps, "driver")}


def test_the_knee_of_two_ramps_is_compared_and_gated() -> None:
    base, worse = ramp_report(True, True, True, False), ramp_report(True, True, False)
    result = compare(base, worse, [parse_gate("knee<-10%"), parse_gate("knee<-50%")])
    [row] = [r for r in result.rows if r["metric"] == "knee"]
    assert (row["base"], row["cand"], row["worse"]) == (300, 200, True)
    assert [gate["ok"] for gate in result.gates] == [False, True]
    assert result.gates[0]["delta"] == pytest.approx(-1 / 3)
    assert compare(base, ramp_report(True, True, True, True),
                   [parse_gate("knee<-10%")]).gates[0]["ok"]
    first_step_broke = compare(base, ramp_report(False), [parse_gate("knee<-10%")])
    assert first_step_broke.gates[0]["cand"] == 0 and not first_step_broke.gates[0]["ok"]
    held_to_the_end = compare(ramp_report(True, True, True, True), base).warnings
    assert held_to_the_end == ["the baseline's ramp held up to its last step: its knee, 400, "
                               "is a lower bound"]
    saturated = ramp_report(True, True, False)
    saturated["ramp"]["limit"] = "generator"
    assert compare(base, saturated).warnings == [
        "the candidate's ramp ended on fleetsim's own limit, not the CSMS's: its knee, 200, "
        "is a lower bound"]
    other_plan = ramp_report(True, False)
    other_plan["ramp"]["plan"]["every_s"] = 30
    assert "the two ramps had different plans" in compare(base, other_plan).warnings[0]
    with pytest.raises(ConfigError, match="the candidate is not a ramp report"):
        compare(base, report(1.0), [parse_gate("knee<-10%")])
    with pytest.raises(ConfigError, match="knee changes are in %"):
        parse_gate("knee<-1pp")
