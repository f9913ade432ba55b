"""The open-file limit: a fleet that does not fit is refused up front, and an embedded CSMS
that one process cannot hold is spread over processes sharing its port."""

from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.limits import SPARE_FILES, csms_processes
from fleetsim.ocpp.frames import Call, CallResult

from .test_cli import FLEETSIM


def _spawn_with_open_files(limit: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`fleetsim spawn` in a process that may open `limit` files, as after `ulimit -n`."""
    def lower_the_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return subprocess.run([*FLEETSIM, "spawn", *args], capture_output=True, text=True,
                          timeout=90, check=False, preexec_fn=lower_the_limit)


def test_csms_processes_leave_each_room_for_more_than_its_share() -> None:
    assert csms_processes(5000, 20_000) == 1
    assert csms_processes(17_000, 20_000) == 1
    assert csms_processes(20_000, 20_000) == 2  # this machine: 20,000 files a process
    assert csms_processes(100_000, 20_000) == 6
    assert csms_processes(1, SPARE_FILES + 1) == 1


def test_a_fleet_too_big_for_its_open_files_is_refused_before_it_starts() -> None:
    done = _spawn_with_open_files(500, "--chargers", "600", "--duration", "5s")
    assert done.returncode == 104, done.stderr
    assert "Traceback" not in done.stderr and "connected" not in done.stderr
    assert ("600 chargers in one process need 800 open files, but a process here may open "
            "500 (ulimit -n): use --workers 2 or more") in done.stderr
    tiny = _spawn_with_open_files(SPARE_FILES, "--chargers", "10", "--duration", "5s")
    assert tiny.returncode == 104 and "Traceback" not in tiny.stderr, tiny.stderr
    assert tiny.stderr.endswith(f"may open {SPARE_FILES} (ulimit -n): raise the limit\n")


def test_the_embedded_csms_spreads_a_fleet_it_cannot_hold_over_processes(
        tmp_path: Path) -> None:
    """300 chargers, 500 open files a process: the fleet fits in one process, and the CSMS,
    which may hold (500 - 200) * 0.9 = 270 connections a process, runs as two. A charger
    reconnecting after a storm goes back to the same one, so its seqNo history stays whole."""
    path = tmp_path / "run.json"
    done = _spawn_with_open_files(500, "--chargers", "300", "--duration", "10s",
                                  "--ramp", "300", "--profile", "storm-drill",
                                  "--time-scale", "20", "--ocpp", "2.0.1",
                                  "--report", str(path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "EMFILE" not in done.stderr
    report = json.loads(path.read_text())
    assert report["chargers"]["booted"] == 300 and report["chargers"]["reconnects"] > 100
    csms = report["embedded_csms"]
    assert (csms["processes"], csms["processes_without_stats"]) == (2, 0)
    assert "(embedded CSMS, 2 processes, a port each; the first is shown)" in done.stdout
    assert csms["connections_total"] == 300 + report["chargers"]["reconnects"]
    assert csms["transaction_events"]["Started"] > 0
    assert csms["seqno_gaps"] == 0  # (an event whose answer a drop lost comes again: a duplicate)
    assert csms["seqno_duplicates"] <= report["chargers"]["reconnects"]
    # the two processes together saw every answered CALL (and, around the storm, a few whose
    # answer the dropped connection lost)
    for action, stats in report["calls"].items():
        assert stats["ok"] <= csms["received"][action] <= stats["sent"], action
        assert not stats["callerror"], action


def test_the_processes_of_one_csms_hand_out_distinct_transaction_ids() -> None:
    payload = {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
               "timestamp": "2026-11-25T12:00:00Z"}
    ids = []
    for shard in range(3):
        core = CsmsCore(CsmsStats(), shard=shard, shards=3)
        for n in range(4):
            answer = core.answer(Call(f"{shard}-{n}", "StartTransaction", payload), 0.0)
            assert isinstance(answer, CallResult)
            ids.append(answer.payload["transactionId"])
    assert sorted(ids) == list(range(1, 13))
