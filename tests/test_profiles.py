"""Profiles end to end: real fleets over real sockets, a stalling CSMS, a reconnect storm
drill against the embedded CSMS, and every kind of profile mistake."""

from __future__ import annotations

import functools
import json
import time
import tomllib
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

from fleetsim import (
    Backoff,
    Behaviour,
    ConfigError,
    Distribution,
    Profile,
    RunConfig,
    Sessions,
    load_profile,
    merge_reports,
    resolve_profile,
    spawn,
)
from fleetsim.behaviour.profile import (
    BackoffSpec,
    ReconnectStorm,
    Seconds,
    _shipped_profiles_dir,
    shipped_profiles,
)
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.ocpp.frames import Call, decode_frame, encode_frame
from fleetsim.transport import ConnectionClosed, PendingConnection, serve_websocket

from .conftest import start_csms
from .test_cli import fleetsim


def _balanced(report: dict[str, Any]) -> None:
    for action, stats in report["calls"].items():
        ended = (stats["ok"] + sum(stats["callerror"].values()) + stats["timeout"]
                 + stats["in_flight"])
        assert stats["sent"] == ended, action


@attrs.define
class Stall:
    """A CSMS that answers nothing between `start` and `end` (trio clock), then catches up."""

    start: float = 0.0
    end: float = 0.0
    stats: CsmsStats = attrs.field(factory=CsmsStats)

    async def serve(self, pending: PendingConnection) -> None:
        conn = await pending.accept("ocpp1.6")
        core = CsmsCore(self.stats, heartbeat_interval_s=60)
        while True:
            try:
                text = await conn.receive_text()
            except ConnectionClosed:
                return
            if self.start <= trio.current_time() < self.end:
                await trio.sleep_until(self.end)
            call = decode_frame(text)
            if isinstance(call, Call):
                await conn.send_text(encode_frame(core.answer(call, time.time())))


def _profile(**behaviour: Any) -> Profile:
    return Profile(behaviour=(Behaviour(name="test", weight=1, **behaviour),), name="test")


async def test_a_stalling_csms_shows_in_response_time_not_in_service_time(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    stall = Stall()
    ports = await nursery.start(functools.partial(serve_websocket, stall.serve, "127.0.0.1", 0))
    busy = _profile(connectors=1, meter_interval=Seconds(0.04),
                    sessions=Sessions(arrivals_per_hour=36_000,
                                      duration=Distribution("fixed", 3600)))
    config = RunConfig(chargers=10, duration_s=8, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       profile=busy, graceful_stop_s=2)
    stall.start = trio.current_time() + 3.0
    stall.end = stall.start + 2.0
    with trio.fail_after(30):
        result = await spawn(config, write=False)
    report = result.report
    meters = report["calls"]["MeterValues"]
    assert meters["sent"] > 1000
    assert meters["response_ms"]["p99"] >= 1000  # the stall: every queued sample waited
    assert meters["service_ms"]["p99"] < 250  # one CALL per charger was in the stall's way
    assert meters["lateness_ms"]["p99"] >= 1000
    # open schedule: every sample the clock produced was sent or is counted as still queued
    assert meters["scheduled"] == meters["sent"] + meters["queued_at_shutdown"]
    assert meters["discarded_on_disconnect"] == 0 and meters["timeout"] == 0
    assert meters["scheduled"] == pytest.approx(10 * 8 / 0.04, rel=0.1)
    assert max(row["queued"] for row in report["timeline"]) >= 10 * 20
    assert stall.stats.received["MeterValues"] == meters["ok"] + meters["in_flight"]
    _balanced(report)


STORM_DRILL = Profile(
    name="drill",
    behaviour=(Behaviour(
        name="drill", weight=1, connectors=2, meter_interval=Seconds(0.5),
        sessions=Sessions(arrivals_per_hour=3600, duration=Distribution("uniform", low=1,
                                                                          high=4)),
        backoff=BackoffSpec("fixed", Seconds(3), Seconds(1))),),
    event=(ReconnectStorm(at=Seconds(4), share=0.8, within=Seconds(1), name="drill"),),
)


async def test_a_storm_drill_recovers_every_charger_and_delivers_queued_stops(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    csms = await start_csms(nursery)
    config = RunConfig(chargers=300, duration_s=13, profile=STORM_DRILL, ramp_per_s=1000,
                       url=csms.url)
    with trio.fail_after(60):
        result = await spawn(config, write=False)
    report = result.report
    (storm,) = report["storms"]
    assert 200 <= storm["dropped"] <= 280
    assert storm["recovered"] == storm["dropped"] and storm["not_recovered"] == 0
    recovery = storm["recovery_s"]
    assert 3 <= recovery["p50"] <= recovery["p95"] <= recovery["p99"] <= 7
    assert storm["peak_connects_per_s"] >= 50
    assert report["chargers"]["booted"] == 300
    assert report["chargers"]["boots"] == 300 + storm["dropped"]
    stops = report["calls"]["StopTransaction"]
    assert stops["held_offline"] > 0  # sessions that ended offline were reported afterwards
    received = csms.stats.received
    # one in flight when its link dropped may have reached the CSMS before being sent again
    assert stops["ok"] <= received["StopTransaction"] <= (
        stops["ok"] + stops["lost_on_disconnect"] + stops["in_flight"])
    assert stops["sent"] == stops["ok"] + stops["timeout"] + stops["in_flight"]
    assert report["drops"] == {"storm": storm["dropped"]}
    _balanced(report)


def test_profiles_lists_the_shipped_ones_with_their_load() -> None:
    done = fleetsim("profiles")
    assert done.returncode == 0, done.stderr
    for name in ("smoke", "city-mix", "depot-night", "storm-drill"):
        assert name in done.stdout
    assert "calls per charger-hour" in done.stdout and "per 1000 chargers" in done.stdout


def test_spawn_finds_a_shipped_profile_by_name_and_reports_the_behaviours(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "run.json"
    done = fleetsim("spawn", "--profile", "city-mix", "--chargers", "100", "--duration", "3",
                    "--time-scale", "600", "-q", "--report", str(report_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert {name: entry["chargers"] for name, entry in report["behaviours"].items()} == {
        "commuter": 60, "dc-fast": 30, "flaky": 10}
    assert report["config"]["profile"]["name"] == "city-mix"
    assert report["config"]["time_scale"] == 600
    assert "behaviours commuter 60   dc-fast 30   flaky 10" in done.stdout


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


GOOD = """
[[behaviour]]
name = "a"
weight = 1
"""


@pytest.mark.parametrize(("text", "field", "problem"), [
    (GOOD + "colour = 'red'\n", "behaviour[0]", "unknown key(s) colour"),
    (GOOD.replace("weight = 1", "weight = 0"), "behaviour[0]", "weight must be > 0"),
    (GOOD.replace("weight = 1", "weight = 'heavy'"), "behaviour[0].weight",
     "expected a number, got 'heavy'"),
    (GOOD + "drops_per_hour = -2\n", "behaviour[0]", "drops_per_hour must be >= 0"),
    (GOOD + "[behaviour.sessions]\narrivals_per_hour = -1\n", "behaviour[0].sessions",
     "arrivals_per_hour must be >= 0"),
    (GOOD + "meter_interval = '10 minutes'\n", "behaviour[0].meter_interval",
     "expected a duration"),
    (GOOD + "connectors = 2.5\n", "behaviour[0].connectors", "expected a whole number"),
    (GOOD + "measurands = ['Humidity']\n", "behaviour[0]", "unknown measurand 'Humidity'"),
    (GOOD + "[behaviour.sessions]\nduration = { dist = 'gauss', mean = '1h' }\n",
     "behaviour[0].sessions.duration", "dist must be one of"),
    (GOOD + "[behaviour.sessions]\nduration = { dist = 'normal', mean = '1h', sigma = 3 }\n",
     "behaviour[0].sessions.duration", "unknown key 'sigma'"),
    (GOOD + "[behaviour.backoff]\npolicy = 'sometimes'\n", "behaviour[0].backoff.policy",
     "'sometimes' is not one of 'none', 'fixed', 'exponential'"),
    (GOOD + "[[event]]\nkind = 'earthquake'\nat = '5m'\n", "event[0].kind",
     "unknown kind 'earthquake'"),
    (GOOD + "[[event]]\nkind = 'reconnect_storm'\nat = '5m'\nshare = 1.5\n", "event[0]",
     "share must be in (0, 1]"),
    (GOOD + "[[event]]\nkind = 'session_surge'\nat = '5m'\nfactor = 2\n",
     "event[0].duration", "required key 'duration' is missing"),
    (GOOD + GOOD, "(top level)", "behaviour names must be unique"),
    ("description = 'nothing'\n", "behaviour", "required key 'behaviour' is missing"),
    ("behaviour = 3\n", "behaviour", "expected a list"),
])
def test_each_profile_mistake_names_file_field_and_problem(
    tmp_path: Path, text: str, field: str, problem: str,
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert f"{path}: {field}: " in message
    assert problem in message


def test_unreadable_profiles_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad.toml.*not valid TOML.*line 1"):
        load_profile(_write(tmp_path, "[[behaviour]\n"))
    with pytest.raises(ConfigError, match=r"no such file, nor a shipped profile.*city-mix"):
        resolve_profile("no-such-profile")


def test_the_cli_rejects_a_bad_profile_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("weight = 1", "weight = -3"))
    done = fleetsim("spawn", "--profile", str(path), "--duration", "1")
    assert done.returncode == 104
    assert f"fleetsim: error: {path}: behaviour[0]: weight must be > 0" in done.stderr
    assert "Traceback" not in done.stderr
    done = fleetsim("spawn", "--profile", "smoke", "--connectors", "3", "--duration", "1")
    assert done.returncode == 104
    assert "--connectors: the profile sets how chargers behave" in done.stderr
    thresholds = _write(tmp_path, GOOD + "[thresholds]\n'p99' = 'fast'\n")
    done = fleetsim("spawn", "--profile", str(thresholds), "--duration", "1")
    assert done.returncode == 104 and "thresholds" in done.stderr and "Traceback" not in (
        done.stderr)


def test_backoff_from_a_profile_reaches_the_charger() -> None:
    spec = STORM_DRILL.behaviour[0].charger_spec(STORM_DRILL.event, time_scale=2)
    assert spec.backoff == Backoff("fixed", 3, 1, 6)
    assert spec.storms[0].at_s == 2 and spec.storms[0].within_s == 0.5
    assert spec.meter_interval_s == 0.25 and spec.arrivals_per_s == 2


async def test_merging_parts_of_a_profile_run_adds_behaviours_sessions_and_storms(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    csms = await start_csms(nursery)
    drill = attrs.evolve(STORM_DRILL, event=(
        ReconnectStorm(at=Seconds(1), share=1.0, within=Seconds(0.5), name="drill"),))
    parts = []
    for seed in (1, 2):
        config = RunConfig(chargers=20, duration_s=6, profile=drill, seed=seed, url=csms.url)
        parts.append((await spawn(config, write=False)).report)
    merged = merge_reports(parts, force=True)
    assert merged["behaviours"]["drill"]["chargers"] == 40
    assert merged["sessions"] == {key: parts[0]["sessions"][key] + parts[1]["sessions"][key]
                                  for key in ("arrivals", "missed")}
    (storm,) = merged["storms"]
    assert storm["dropped"] == 40 == sum(part["storms"][0]["dropped"] for part in parts)
    assert storm["recovered"] == sum(part["storms"][0]["recovered"] for part in parts)
    slowest = max(part["storms"][0]["recovery_s"]["max"] for part in parts)
    assert storm["recovery_s"]["max"] == pytest.approx(slowest, rel=0.01)
    meters = merged["calls"]["MeterValues"]
    assert meters["lateness_ms"]["max"] >= max(
        part["calls"]["MeterValues"]["lateness_ms"]["max"] for part in parts) * 0.99


def test_ocpp_with_a_profile_makes_every_behaviour_speak_it(tmp_path: Path) -> None:
    report_path = tmp_path / "run.json"
    done = fleetsim("spawn", "--profile", "city-mix", "--ocpp", "2.0.1", "-u", "20", "-t", "2",
                    "-q", "--report", str(report_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["target"]["ocpp"] == ["2.0.1"]
    assert {b["ocpp"] for b in report["config"]["profile"]["behaviour"]} == {"2.0.1"}
    assert report["embedded_csms"]["subprotocols"] == {"ocpp2.0.1": 20}


def test_shipped_profiles_are_found_in_a_checkout_or_where_a_wheel_put_them(
        tmp_path: Path) -> None:
    """pyproject.toml installs profiles/ as data files (share/fleetsim/profiles), so that a
    wheel, with no checkout beside it, still finds them by name."""
    checkout = tmp_path / "src" / "profiles"
    venv, user = tmp_path / "venv", tmp_path / "user"
    installed = user / "share" / "fleetsim" / "profiles"
    installed.mkdir(parents=True)
    assert _shipped_profiles_dir(checkout, [venv, user]) == installed
    (venv / "share" / "fleetsim" / "profiles").mkdir(parents=True)
    assert _shipped_profiles_dir(checkout, [venv, user]) == venv / "share/fleetsim/profiles"
    checkout.mkdir(parents=True)
    assert _shipped_profiles_dir(checkout, [venv, user]) == checkout
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    data_files = pyproject["tool"]["setuptools"]["data-files"]["share/fleetsim/profiles"]
    repo = Path(__file__).parents[1]
    listed = {path for pattern in data_files for path in repo.glob(pattern)}
    assert set(shipped_profiles()) <= listed
