"""The `fleetsim` command end to end, as a user runs it: real processes, real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from fleetsim import report_schema

FLEETSIM = [sys.executable, "-m", "fleetsim"]


def fleetsim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETSIM, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


def interrupt(process: subprocess.Popen[str], *, within_s: float,
              timeout: float) -> tuple[str, str]:
    """Ctrl-C as a terminal sends it (to the whole process group, started with
    `start_new_session`): the run ends within `within_s` (well before its own end, so by the
    interrupt, whatever the machine's load), exit 105, no traceback."""
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=timeout)
    assert time.monotonic() - started < within_s
    assert process.returncode == 105, stderr
    assert "Traceback" not in stderr
    return stdout, stderr


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_spawn_with_the_embedded_csms_writes_the_report(tmp_path: Path) -> None:
    report_path = tmp_path / "run.json"
    done = fleetsim("spawn", "--chargers", "50", "--duration", "3s", "--arrivals", "200/m",
                    "--session", "0.5-1", "--meter-interval", "0.2", "--report",
                    str(report_path), "--progress", "plain")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "connected 50/50" in done.stderr
    assert "StartTransaction" in done.stdout and "throughput" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["schema"] == "fleetsim.report/1"
    assert report["target"]["embedded"] is True
    assert report["chargers"]["booted"] == 50
    received = report["embedded_csms"]["received"]
    assert received == {action: stats["ok"] for action, stats in report["calls"].items()}
    for key in ("fleetsim_version", "started_at", "ended_at", "duration_s", "config", "calls",
                "csms_calls", "connect", "totals", "timeline", "generator"):
        assert key in report
    again = fleetsim("report", str(report_path))
    assert again.returncode == 0
    assert again.stdout.strip() == done.stdout.split("\nreport:")[0].strip()


def test_json_on_stdout(tmp_path: Path) -> None:
    done = fleetsim("spawn", "-u", "5", "-t", "1", "--json", "-q", "--report",
                    str(tmp_path / "r.json"), "--call-timeout", "7s", "--closed-loop")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["chargers"]["booted"] == 5
    assert done.stderr == ""
    assert report["config"]["call_timeout_s"] == 7.0  # the run's own options are reported
    assert report["config"]["closed_loop"] is True
    assert not list(jsonschema.Draft202012Validator(report_schema()).iter_errors(report))


def test_unreachable_url_is_one_clear_line(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/ocpp"
    done = fleetsim("spawn", "--url", url, "--chargers", "20", "--duration", "30", "-q",
                    "--report", str(tmp_path / "r.json"), timeout=20)
    assert done.returncode == 103
    errors = [line for line in done.stderr.splitlines() if line.startswith("fleetsim: error")]
    assert len(errors) == 1
    assert "refused" in errors[0] and url in errors[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--chargers", "0"], "chargers"),
    (["--duration", "soon"], "duration"),
    (["--url", "http://127.0.0.1:1/ocpp"], "url"),
    (["--url", "ws://127.0.0.1:1/my ocpp"], "%-encoded"),
    (["--delay-ms", "lots"], "delay"),
    (["--session", "90-30"], "session"),
    (["--transport", "carrier-pigeon"], "transport"),
    (["--id-prefix", "CP/"], "id-prefix"),
    (["--password-file", "/no/such/file"], "password-file"),
    (["--url", "wss://127.0.0.1:1/ocpp", "--ca-file", "/no/such/ca.pem"], "ca-file"),
])
def test_bad_options_are_one_clear_line(args: list[str], message: str) -> None:
    done = fleetsim("spawn", *args)
    assert done.returncode == 104, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("fleetsim: error:")
    assert message in done.stderr


def test_ctrl_c_stops_cleanly_and_still_writes_the_report(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    process = subprocess.Popen(
        [*FLEETSIM, "spawn", "--chargers", "100", "--duration", "60", "--report",
         str(report_path), "--progress", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    assert process.stderr is not None
    booted = 0
    for line in process.stderr:
        if line.startswith("{"):
            booted = json.loads(line)["booted"]
        if booted == 100:
            break
    interrupt(process, within_s=30, timeout=45)  # of a 60 s run
    report = json.loads(report_path.read_text())
    assert report["outcome"]["stopped_by"] == "interrupted"
    assert report["chargers"]["booted"] == 100
    assert report["embedded_csms"]["received"]["BootNotification"] == 100


def test_ctrl_c_during_the_graceful_stop_ends_it_at_once(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    process = subprocess.Popen(
        [*FLEETSIM, "spawn", "-u", "5", "-t", "1", "--delay-ms", "6000", "--graceful-stop",
         "20s", "--report", str(report_path), "--progress", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("{") and json.loads(line)["t"] >= 1.5:
            break  # the run is over and its five boots wait in the graceful stop
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 15  # well inside the 20 s grace
    assert process.returncode == 0, stderr  # the run completed its duration
    report = json.loads(report_path.read_text())
    assert report["outcome"]["stopped_by"] == "duration"
    assert report["calls"]["BootNotification"]["in_flight"] == 5


def test_standalone_csms_serves_another_fleet(tmp_path: Path) -> None:
    csms = subprocess.Popen([*FLEETSIM, "csms", "--port", "0", "--stats-every", "1s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert csms.stderr is not None
        banner = csms.stderr.readline()
        assert "listening on ws://127.0.0.1:" in banner
        url = banner.split(" listening on ")[1].split("/<chargerId>")[0]
        done = fleetsim("spawn", "--url", url, "-u", "10", "-t", "1.5", "-q", "--report",
                        str(tmp_path / "r.json"))
        assert done.returncode == 0, done.stderr
        port = url.split(":")[2].split("/")[0]
        taken = fleetsim("csms", "--port", port)
        assert taken.returncode == 1
        assert taken.stderr.strip() == (
            f"fleetsim: error: cannot listen on 127.0.0.1:{port}: Address already in use")
        assert json.loads((tmp_path / "r.json").read_text())["chargers"]["booted"] == 10
    finally:
        csms.send_signal(signal.SIGINT)
        stdout, _ = csms.communicate(timeout=10)
    assert csms.returncode == 0
    assert "BootNotification 10" in stdout.splitlines()[-1]


def test_password_from_the_environment_never_shows(tmp_path: Path) -> None:
    secret = "hunter2-Secret"
    env = {**os.environ, "FLEETSIM_PASSWORD": secret}
    report_path = tmp_path / "r.json"
    done = subprocess.run(
        [*FLEETSIM, "spawn", "-u", "5", "-t", "1", "--progress", "plain", "--report",
         str(report_path)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["chargers"]["booted"] == 5  # the embedded CSMS required the password
    for text in (done.stdout, done.stderr, report_path.read_text()):
        assert secret not in text
