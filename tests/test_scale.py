"""Scale out (issue 7): segments of one fleet, and worker processes merged into one report."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim import (
    ConfigError,
    CsmsServer,
    FleetOutcome,
    Metrics,
    RunConfig,
    Segment,
    load_profile,
    merge_reports,
    parse_segment,
    parse_workers,
    resolve_profile,
    spawn,
)
from fleetsim.behaviour.schedule import assign_behaviours
from fleetsim.fleet import Fleet
from fleetsim.report import build_report
from fleetsim.workers import supervisor
from fleetsim.workers.live import LiveRows

from .test_cli import FLEETSIM, interrupt

CITY_MIX = load_profile(resolve_profile("city-mix"))


def plan(config: RunConfig) -> list[tuple[int, str, str]]:
    """(index, charger ID, behaviour) of each charger `config` runs, as `Fleet` picks them."""
    names, _, weights = config.behaviours()
    assignment = assign_behaviours(weights, config.chargers, config.seed)
    return [(index, config.charger_id(index), names[assignment[index - 1]])
            for index in config.charger_indexes()]


# -- segments: pure ------------------------------------------------------------------------


@given(chargers=st.integers(1, 400), count=st.integers(1, 12), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_segments_together_are_the_whole_fleet_without_overlap(
        chargers: int, count: int, seed: int) -> None:
    whole = RunConfig(chargers=chargers, seed=seed, profile=CITY_MIX)
    parts = []
    for index in range(1, min(count, chargers) + 1):
        segment = RunConfig(chargers=chargers, seed=seed, profile=CITY_MIX,
                            segment=Segment(index, count))
        parts.append(plan(segment))
    union = [charger for part in parts for charger in part]
    assert sorted(union) == plan(whole)  # same IDs, same behaviours, none twice
    assert len(union) == len({charger_id for _, charger_id, _ in union})
    # a strided slice takes its share of every behaviour: the sizes differ by at most one
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


@given(chargers=st.integers(1, 300), outer=st.integers(1, 5), inner=st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_a_segment_split_again_is_a_segment_of_the_whole_fleet(
        chargers: int, outer: int, inner: int) -> None:
    for index in range(1, outer + 1):
        segment = Segment(index, outer)
        pieces = segment.split(inner)
        assert all(piece.count == outer * inner for piece in pieces)
        covered = sorted(i for piece in pieces for i in piece.indexes(chargers))
        assert covered == list(segment.indexes(chargers))


def test_the_fleet_of_a_segment_counts_its_own_behaviours() -> None:
    async def counts(config: RunConfig) -> dict[str, int]:
        return Fleet(config, "ws://127.0.0.1:9/ocpp", Metrics()).behaviour_counts()

    whole = RunConfig(chargers=101, seed=3, profile=CITY_MIX)
    total: Counter[str] = Counter()
    for index in (1, 2, 3):
        part = trio.run(counts, attrs.evolve(whole, segment=Segment(index, 3)))
        assert sum(part.values()) == len(range(index, 102, 3))
        total.update(part)
    assert total == trio.run(counts, whole)


def test_segment_and_worker_options() -> None:
    assert parse_segment("3/8") == Segment(3, 8) and str(Segment(3, 8)) == "3/8"
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="segment"):
            parse_segment(bad)
    with pytest.raises(ConfigError, match="segment: 5/5 of 4 chargers is empty"):
        RunConfig(chargers=4, segment=Segment(5, 5))
    assert parse_workers("auto") >= 1 and parse_workers("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="workers"):
            parse_workers(bad)


# -- segments: real runs ---------------------------------------------------------------------


async def test_three_segments_run_the_whole_fleet_and_merge_exactly(csms: CsmsServer) -> None:
    """Three 'machines' run the three segments of one fleet at the same time, each fleet in a
    thread with a trio run of its own, as separate processes would."""
    whole = RunConfig(chargers=30, duration_s=1.5, url=csms.url, seed=5, profile=CITY_MIX,
                      ramp_per_s=100, call_timeout_s=10)
    runs: list[tuple[Metrics, dict[str, Any]]] = []

    def run(segment: Segment) -> None:
        config = attrs.evolve(whole, segment=segment)
        metrics = Metrics()

        async def fleet() -> FleetOutcome:
            return await Fleet(config, csms.url, metrics).run()

        runs.append((metrics, build_report(config, csms.url, metrics, trio.run(fleet))))

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for index in (1, 2, 3):
                nursery.start_soon(trio.to_thread.run_sync, run, Segment(index, 3))
    booted = [metrics.booted_ids for metrics, _ in runs]
    assert set().union(*booted) == {whole.charger_id(i) for i in range(1, 31)}
    assert sum(len(ids) for ids in booted) == 30  # no charger in two segments
    reports = [report for _, report in runs]
    assert sorted(report["chargers"]["target"] for report in reports) == [10, 10, 10]
    merged = merge_reports(reports)
    assert merged["chargers"]["target"] == merged["chargers"]["booted"] == 30
    assert merged["merge"]["missing_segments"] == []
    assert {name: entry["chargers"] for name, entry in merged["behaviours"].items()} == (
        Counter(name for _, _, name in plan(whole)))
    assert {action: stats["ok"] for action, stats in merged["calls"].items()} == dict(
        csms.stats.received)
    partial = merge_reports(reports[:2])
    assert partial["chargers"]["target"] == 20
    assert len(partial["merge"]["missing_segments"]) == 1


def test_a_segment_from_the_command_line(tmp_path: Path) -> None:
    report_path = tmp_path / "part.json"
    done = subprocess.run(
        [*FLEETSIM, "spawn", "--chargers", "10", "--duration", "1", "--segment", "2/3",
         "--report", str(report_path), "--progress", "plain"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "connected 3/3" in done.stderr  # CP00002, CP00005, CP00008
    assert "3 chargers (segment 2/3 of 10)" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["config"]["segment"] == "2/3" and report["config"]["chargers"] == 10
    assert report["chargers"]["target"] == report["chargers"]["booted"] == 3
    bad = subprocess.run([*FLEETSIM, "spawn", "--segment", "4/3"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 104 and bad.stderr.startswith("fleetsim: error: segment")


# -- the live view ---------------------------------------------------------------------------


def row(t: float, sent: int, connected: int, **extra: Any) -> dict[str, Any]:
    return {"t": t, "connected": connected, "booted": connected, "queued": 0, "sent": sent,
            "ok": sent, "errors": 0, "connects": 0, "connect_failures": 0, "p99_ms": t,
            "cpu": 0.5, "loop_lag_ms": 1.0, "saturated": False, **extra}


def test_live_rows_add_up_once_every_worker_sent_its_second() -> None:
    live = LiveRows([1, 2], wait_s=0.5)
    assert live.add(1, row(1.0, 10, 5), now=1.0) == []
    assert live.due() == 1.5
    [first] = live.add(2, row(1.01, 20, 7), now=1.01)
    assert (first["t"], first["sent"], first["connected"], first["workers"]) == (1.01, 30, 12, 2)
    # worker 2 is slow: the second goes out without it, and its row joins the next one
    assert live.add(1, row(2.0, 10, 5), now=2.0) == []
    [second] = live.expire(now=2.5)
    assert (second["sent"], second["connected"], second["workers"]) == (10, 12, 1)
    assert live.add(2, row(2.6, 20, 7), now=2.6) == []
    live.add(1, row(3.0, 10, 5), now=3.0)
    [third] = live.add(2, row(3.0, 20, 7), now=3.0)
    assert third["sent"] == 10 + 20 + 20  # nothing lost from the live totals
    # a lost worker: its gauges leave the view, and nobody waits for it
    live.add(1, row(4.0, 10, 5), now=4.0)
    [fourth] = live.leave(2, now=4.0, lost=True)
    assert (fourth["connected"], fourth["workers_lost"]) == (5, 1)
    [fifth] = live.add(1, row(5.0, 10, 5), now=5.0)
    assert fifth["sent"] == 10
    assert live.flush() == []


def test_the_live_pace_of_an_auto_ramp_is_the_workers_paces_summed() -> None:
    live = LiveRows([1, 2], wait_s=0.5)
    live.add(1, row(1.0, 10, 5, ramp_per_s=400), now=1.0)
    [first] = live.add(2, row(1.0, 10, 5, ramp_per_s=300), now=1.0)
    assert first["ramp_per_s"] == 700
    live.add(1, row(2.0, 10, 5), now=2.0)
    [second] = live.add(2, row(2.0, 10, 5), now=2.0)
    assert "ramp_per_s" not in second  # the ramp is over


# -- workers: real processes -----------------------------------------------------------------


def start(*args: str, new_session: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen([*FLEETSIM, "spawn", *args, "--progress", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=new_session)


BUSY = ["--arrivals", "60/m", "--session", "1-2", "--meter-interval", "0.5"]


def test_two_workers_against_the_embedded_csms_make_one_exact_report(tmp_path: Path) -> None:
    report_path = tmp_path / "run.json"
    process = start("--chargers", "100", "--duration", "2", "--workers", "2", *BUSY,
                    "--threshold", "error_rate<1%", "--report", str(report_path))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    started = [line for line in lines if line.get("event") == "worker"]
    assert sorted((w["worker"], w["segment"], w["chargers"]) for w in started) == [
        (1, "1/2", 50), (2, "2/2", 50)]
    rows = [line for line in lines if "t" in line]
    assert any(r["connected"] == 100 and r["workers"] == 2 for r in rows)  # one view of both

    report = json.loads(report_path.read_text())
    assert report["config"]["workers"] == 2 and report["config"]["segment"] is None
    assert report["target"]["embedded"] is True
    chargers = report["chargers"]
    assert chargers["target"] == chargers["booted"] == chargers["connected_peak"] == 100
    ok = {action: stats["ok"] for action, stats in report["calls"].items()}
    assert ok == report["embedded_csms"]["received"]  # one CSMS saw exactly what was merged
    assert report["calls"]["BootNotification"]["ok"] == 100  # each worker's boots, merged
    assert [part["label"] for part in report["parts"]] == ["1/2", "2/2"]
    workers = report["workers"]
    assert workers["lost"] == [] and workers["count"] == 2
    assert [(w["chargers"], w["booted"], w["exit"]) for w in workers["each"]] == [
        (50, 50, "exit code 0"), (50, 50, "exit code 0")]
    assert all(w["cpu_share"] > 0 and w["loop_lag_p99_ms"] > 0 for w in workers["each"])
    assert report["thresholds"][0]["ok"] is True
    assert "100 chargers in 2 worker processes" in stdout


def test_each_worker_serves_prometheus_on_a_port_of_its_own(tmp_path: Path) -> None:
    """Worker k serves on --prometheus's port + k - 1: Prometheus scrapes them all and sums."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    process = start("--chargers", "40", "--duration", "4", "--workers", "2", *BUSY,
                    "--prometheus", f"127.0.0.1:{base}", "--report", str(tmp_path / "r.json"))
    assert process.stderr is not None
    ports: dict[int, int] = {}
    connected: dict[int, float] = {}
    for line in process.stderr:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "worker":
            ports[event["worker"]] = event["prometheus_port"]
        elif event.get("connected") == 40:  # every charger is up: scrape both workers
            for worker, port in ports.items():
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                [value] = [line.split()[-1] for line in text.splitlines()
                           if line.startswith("fleetsim_chargers_connected ")]
                connected[worker] = float(value)
            break
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert ports == {1: base, 2: base + 1}
    assert connected == {1: 20.0, 2: 20.0}


def test_a_worker_killed_mid_run_is_named_and_the_run_goes_on(tmp_path: Path) -> None:
    report_path = tmp_path / "run.json"
    process = start("--chargers", "60", "--duration", "3", "--workers", "2",
                    "--report", str(report_path))
    assert process.stderr is not None
    pids = {}
    killed = False
    lost_event: dict[str, Any] = {}
    for line in process.stderr:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "worker":
            pids[event["worker"]] = event["pid"]
        elif "t" in event and not killed:  # the first second's row: both are running
            os.kill(pids[2], signal.SIGKILL)
            killed = True
        elif event.get("event") == "worker_lost":
            lost_event = event
            break
    stdout, stderr = process.communicate(timeout=60)
    assert killed
    assert process.returncode == 107, stderr  # the run happened, but a worker was lost
    assert (lost_event["worker"], lost_event["pid"], lost_event["exit"]) == (
        2, pids[2], "killed by SIGKILL")
    report = json.loads(report_path.read_text())
    [lost] = report["workers"]["lost"]
    assert (lost["worker"], lost["segment"], lost["pid"], lost["chargers"]) == (
        2, "2/2", pids[2], 30)
    assert lost["exit"] == "killed by SIGKILL" and lost["live_sent"] > 0
    assert report["merge"]["missing_segments"] == ["2/2"]
    assert report["outcome"]["stopped_by"] == "duration"
    chargers = report["chargers"]
    assert (chargers["target"], chargers["booted"]) == (60, 30)
    assert [part["label"] for part in report["parts"]] == ["1/2"]
    for stats in report["calls"].values():
        assert stats["sent"] == (stats["ok"] + sum(stats["callerror"].values())
                                 + stats["timeout"] + stats["in_flight"])
    assert f"worker 2 (segment 2/2, pid {pids[2]}) was lost: killed by SIGKILL" in stdout


def test_ctrl_c_after_a_lost_worker_drains_the_others_and_writes_the_report(
        tmp_path: Path) -> None:
    """Worker 2 is killed; worker 1 goes on until a Ctrl-C, which it drains from."""
    report_path = tmp_path / "run.json"
    process = start("--chargers", "60", "--duration", "60", "--workers", "2",
                    "--report", str(report_path), new_session=True)
    assert process.stderr is not None
    pids = {}
    killed = False
    for line in process.stderr:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "worker":
            pids[event["worker"]] = event["pid"]
        elif "t" in event and not killed:
            os.kill(pids[2], signal.SIGKILL)
            killed = True
        elif event.get("event") == "worker_lost":
            break
    stdout, _ = interrupt(process, within_s=30, timeout=60)  # of a 60 s run
    report = json.loads(report_path.read_text())
    assert report["outcome"]["stopped_by"] == "interrupted"
    [lost] = report["workers"]["lost"]
    assert (lost["worker"], lost["pid"], lost["exit"]) == (2, pids[2], "killed by SIGKILL")
    [kept] = [worker for worker in report["workers"]["each"] if not worker["lost"]]
    assert (kept["worker"], kept["exit"], kept["booted"]) == (1, "exit code 0", 30)
    assert report["chargers"]["booted"] == 30
    assert f"worker 2 (segment 2/2, pid {pids[2]}) was lost" in stdout
    for stats in report["calls"].values():
        assert stats["sent"] == (stats["ok"] + sum(stats["callerror"].values())
                                 + stats["timeout"] + stats["in_flight"])


async def test_a_worker_that_hangs_is_ended_and_named_never_waited_for(
        csms: CsmsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "_STOP_MARGIN_S", 1.0)  # not 15 s, for a quick test
    monkeypatch.setattr(supervisor, "_KILL_AFTER_S", 1.0)
    monkeypatch.setattr(supervisor, "_CLOSE_S", 0.5)
    config = RunConfig(chargers=20, duration_s=2, url=csms.url, workers=2, graceful_stop_s=0)
    events: list[dict[str, Any]] = []

    def on_second(row: dict[str, Any]) -> None:
        if not any(event.get("stopped") for event in events):
            pid = next(event["pid"] for event in events if event["worker"] == 1)
            os.kill(pid, signal.SIGSTOP)  # hung: it neither runs nor dies
            events.append({"stopped": pid, "worker": 0})

    with trio.fail_after(20):
        result = await spawn(config, on_second=on_second, on_worker=events.append, write=False)
    [lost] = result.report["workers"]["lost"]
    assert (lost["worker"], lost["segment"]) == (1, "1/2")
    assert lost["exit"].startswith("did not stop in time, so fleetsim ended it (killed by SIG")
    assert any(event.get("event") == "worker_lost" and event["worker"] == 1 for event in events)
    assert result.report["chargers"]["booted"] == 10 and result.workers_lost == 1


def test_a_worker_that_cannot_start_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*FLEETSIM, "spawn", "--workers", "2", "--url", "wss://127.0.0.1:9/ocpp",
         "--ca-file", str(tmp_path / "missing.pem"), "-q"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 104, done.stderr
    assert done.stderr.startswith("fleetsim: error: ca-file") and "Traceback" not in done.stderr
