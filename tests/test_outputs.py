"""What a run writes (JSON report, summary, HTML, JUnit, Prometheus), end to end: nothing a
CSMS sends and no unwritable path loses it, and no secret shows in it."""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from fleetsim import (
    ConfigError,
    CsmsServer,
    RunConfig,
    check_output,
    format_summary,
    merge_reports,
    render_html,
    spawn,
    write_report,
)
from fleetsim.config import redact_url
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.exporter import Exporter
from fleetsim.metrics import FleetOutcome, Metrics
from fleetsim.ocpp.frames import Call, ErrorCode, decode_frame, encode_frame
from fleetsim.report import build_report, serialisable_report
from fleetsim.transport import ConnectionClosed, PendingConnection, serve_websocket
from fleetsim.workers import supervisor

FLEETSIM = [sys.executable, "-m", "fleetsim"]


@attrs.define
class ScriptedCsms:
    """Answers like the embedded CSMS, and after each charger's first boot sends it `extra`
    frames once; keeps the Authorization headers it saw."""

    extra: tuple[str, ...] = ()
    core: CsmsCore = attrs.Factory(lambda: CsmsCore(CsmsStats(), heartbeat_interval_s=60))
    sent_to: set[str] = attrs.Factory(set)
    authorization: list[str] = attrs.Factory(list)

    async def handle(self, pending: PendingConnection) -> None:
        charger_id = pending.request.path.rsplit("/", 1)[1]
        self.authorization += [value for name, value in pending.request.headers
                               if name.lower() == "authorization"]
        conn = await pending.accept("ocpp1.6")
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = decode_frame(await conn.receive_text())
                if not isinstance(frame, Call):
                    continue
                await conn.send_text(encode_frame(self.core.answer(frame, 1.7e9)))
                if frame.action == "BootNotification" and charger_id not in self.sent_to:
                    self.sent_to.add(charger_id)
                    for text in self.extra:
                        await conn.send_text(text)


async def serve(nursery: trio.Nursery, csms: ScriptedCsms) -> str:
    ports = await nursery.start(functools.partial(serve_websocket, csms.handle, "127.0.0.1", 0))
    return f"ws://127.0.0.1:{ports[0]}/ocpp"


async def run_fleetsim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(timeout):
        return await trio.run_process([*FLEETSIM, *args], capture_stdout=True,
                                      capture_stderr=True, check=False)


MALFORMED = '[2,"x","ClearCache",[]]'


async def test_a_malformed_call_from_the_csms_loses_no_report(
    nursery: trio.Nursery, tmp_path: Path,
) -> None:
    for workers in ((), ("--workers", "2")):
        url = await serve(nursery, ScriptedCsms(extra=(MALFORMED,)))
        report_path = tmp_path / f"{len(workers)}.json"
        html_path = report_path.with_suffix(".html")
        done = await run_fleetsim("spawn", "--url", url, "-u", "4", "-t", "1.5", "-q",
                                  "--report", str(report_path), "--html", str(html_path),
                                  *workers)
        stderr = done.stderr.decode()
        assert done.returncode == 0, stderr
        assert "Traceback" not in stderr
        report = json.loads(report_path.read_text())
        assert report["chargers"]["booted"] == 4
        assert report["csms_calls"]["<malformed>"]["callerror_sent"] == {
            "FormationViolation": 4}
        assert "errors" not in report
        assert "throughput" in done.stdout.decode()
        assert "&lt;malformed&gt;" in html_path.read_text()


async def test_prometheus_quantile_labels_are_the_strings_users_query() -> None:
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", 0.002, 0.003)
    metrics.loop_lag(0.001)
    exporter = Exporter(metrics, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        body = await trio.to_thread.run_sync(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    finally:
        exporter.close()
    for name in ("fleetsim_call_response_seconds", "fleetsim_call_service_seconds",
                 "fleetsim_generator_loop_lag_seconds"):
        labels = re.findall(rf'^{name}{{.*quantile="([^"]*)"}}', body, re.MULTILINE)
        assert labels == ["0.5", "0.9", "0.99", "0.999"], name


def test_prometheus_scrapes_while_the_fleet_records() -> None:
    """The exporter reads the metrics from its own thread while the fleet records into them.
    hdrh's percentile walk compared the counts it had passed with a total that had grown
    meanwhile, missed the top quantiles, and the scrape failed with HTTP 500."""
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", 0.002, 0.003)
    done = threading.Event()

    def record() -> None:  # as the fleet's thread does, flat out
        rng = random.Random(1)
        while not done.is_set():
            metrics.call_ok("Heartbeat", rng.random() / 100, rng.random() / 100)
            metrics.loop_lag(rng.random() / 1000)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # the threads interleave often: a scrape meets many records
    exporter = Exporter(metrics, "127.0.0.1", 0)
    recorder = threading.Thread(target=record)
    recorder.start()
    url = f"http://127.0.0.1:{exporter.port}/metrics"
    try:
        for _ in range(200):
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
            assert 'fleetsim_generator_loop_lag_seconds{quantile="0.999"}' in body
            assert 'fleetsim_call_service_seconds{action="Heartbeat",quantile="0.999"}' in body
    finally:
        done.set()
        recorder.join()
        exporter.close()
        sys.setswitchinterval(switch)


def _report() -> dict[str, Any]:
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", 0.002, 0.003)
    metrics.csms_call("ClearCache", None)
    outcome = FleetOutcome("duration", 1_700_000_000.0, 1_700_000_010.0)
    return build_report(RunConfig(url="ws://127.0.0.1:9/ocpp"), "ws://127.0.0.1:9/ocpp",
                        metrics, outcome)


def test_a_section_json_cannot_hold_costs_only_itself(tmp_path: Path) -> None:
    """The report writer is never what fails: a bad section is repaired or left out, and
    named; every other section, the summary and the HTML page are written."""
    good = _report()
    report = copy.deepcopy(good)
    report["csms_calls"]["<malformed>"] = {**report["csms_calls"]["ClearCache"],
                                           "callerror_sent": {ErrorCode.FORMATION_VIOLATION: 1}}
    report["drops"] = {"flaky": 1, ("storm", 1): 2, "what": object()}
    loop: list[Any] = []
    loop.append(loop)
    report["storms"] = loop
    write_report(report, tmp_path / "r.json")
    written = json.loads((tmp_path / "r.json").read_text())
    for section in set(good) - {"csms_calls", "drops", "storms"}:
        assert written[section] == good[section], section
    assert written["csms_calls"]["<malformed>"]["callerror_sent"] == {"FormationViolation": 1}
    assert written["csms_calls"]["ClearCache"] == good["csms_calls"]["ClearCache"]
    assert written["drops"]["flaky"] == 1 and written["drops"]["('storm', 1)"] == 2
    assert written["drops"]["what"].startswith("<object object at")
    assert written["storms"] is None
    errors = {error["section"]: error for error in written["errors"]}
    assert set(errors) == {"csms_calls", "drops", "storms"}
    assert errors["csms_calls"]["error"] == "Dict key must be str"
    assert errors["csms_calls"]["repair"] == (
        "1 key or value written as text, the first at csms_calls.<malformed>.callerror_sent: "
        "key 'FormationViolation' of type ErrorCode")
    assert errors["drops"]["repair"].startswith("2 keys or values written as text")
    assert errors["storms"]["repair"].startswith("left out (RecursionError")
    assert serialisable_report(good) is good  # a sound report is not copied
    repaired = serialisable_report(report)
    assert repaired["errors"] == written["errors"]
    assert "ClearCache" in format_summary(repaired)
    assert "could not be serialised" in render_html(repaired)


def test_a_merged_report_names_the_sections_its_parts_could_not_serialise() -> None:
    broken = _report()
    broken["drops"] = {("storm", 1): 2}
    merged = merge_reports([serialisable_report(broken), _report()],
                           names=["worker 1", "worker 2"], force=True)
    [error] = merged["errors"]
    assert (error["section"], error["part"]) == ("drops", "worker 1")
    assert "could not be serialised" in render_html(merged)


@pytest.mark.parametrize(("command", "option", "name"), [
    ("spawn", "--report", "report"), ("spawn", "--html", "html"), ("spawn", "--junit", "junit"),
    ("ramp", "--report", "report"), ("ramp", "--html", "html"),
])
async def test_an_unwritable_output_path_is_refused_before_the_run(
    tmp_path: Path, command: str, option: str, name: str,
) -> None:
    (tmp_path / "file").write_text("not a folder")
    unwritable = tmp_path / "file" / "out"
    done = await run_fleetsim(command, option, str(unwritable), "--report",
                              str(tmp_path / "r.json"), "-q", "--url", "ws://127.0.0.1:9/ocpp",
                              *(("--report", str(unwritable)) if option == "--report" else ()))
    assert done.returncode == 104
    assert done.stderr.decode() == (
        f"fleetsim: error: {name}: cannot write {unwritable}: {tmp_path / 'file'} is not a "
        "directory\n")
    assert not (tmp_path / "r.json").exists()


async def test_a_folder_as_the_report_path_is_refused(tmp_path: Path) -> None:
    done = await run_fleetsim("spawn", "--report", str(tmp_path), "-q")
    assert done.returncode == 104
    assert done.stderr.decode().startswith("fleetsim: error: ")
    assert "is a directory" in done.stderr.decode()
    assert len(done.stderr.decode().splitlines()) == 1
    with pytest.raises(ConfigError, match="is a directory; give a file name"):
        check_output(tmp_path, "report")


async def test_missing_folders_of_output_paths_are_created(tmp_path: Path) -> None:
    check_output(tmp_path / "a" / "b" / "r.json", "report")
    assert (tmp_path / "a" / "b").is_dir() and list((tmp_path / "a" / "b").iterdir()) == []


async def test_a_report_that_cannot_be_written_at_the_end_goes_to_a_fallback(
    csms: CsmsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The library checks the path first too; here the folder vanishes during the run."""
    fallback = tmp_path / "tmp"
    fallback.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(fallback))
    out = tmp_path / "out"
    config = RunConfig(chargers=2, duration_s=1, url=csms.url, report_path=str(out / "r.json"))

    def replace_the_folder_by_a_file(row: dict[str, Any]) -> None:
        if out.is_dir():
            out.rmdir()
            out.write_text("not a folder")

    with trio.fail_after(20):
        result = await spawn(config, on_second=replace_the_folder_by_a_file)
    assert result.report_path is not None and result.report_path.parent == fallback
    assert json.loads(result.report_path.read_text())["chargers"]["booted"] == 2
    assert result.report_error == (f"cannot write {out / 'r.json'}: File exists: {out}; "
                                   f"written to {result.report_path} instead")


async def test_the_cli_names_the_fallbacks_of_files_it_could_not_write_at_the_end(
    csms: CsmsServer, tmp_path: Path,
) -> None:
    out, fallback = tmp_path / "out", tmp_path / "tmp"
    fallback.mkdir()
    process = await trio.lowlevel.open_process(
        [*FLEETSIM, "spawn", "--url", csms.url, "-u", "2", "-t", "60", "--progress", "jsonl",
         "--report", str(out / "r.json"), "--html", str(out / "r.html"),
         "--junit", str(out / "v.xml"), "--threshold", "p99<10s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "TMPDIR": str(fallback)},
        start_new_session=True)
    assert process.stdout is not None and process.stderr is not None
    with trio.fail_after(30):
        first = await process.stderr.receive_some()  # the first progress row: it runs
        assert first.startswith(b"{")
        out.rmdir()  # checked and made before the run, empty
        out.write_text("not a folder")
        process.send_signal(signal.SIGINT)
        stdout, stderr = await _read_all(process.stdout), await _read_all(process.stderr)
        await process.wait()
    assert process.returncode == 105
    errors = [line for line in stderr.decode().splitlines() if line.startswith("fleetsim:")]
    written = sorted(fallback.iterdir())
    assert len(errors) == 3 and len(written) == 3
    for kind, name in (("report", "r.json"), ("html", "r.html"), ("junit", "v.xml")):
        [path] = [path for path in written if path.name.endswith(f"-{name}")]
        assert (f"fleetsim: error: {kind}: cannot write {out / name}: File exists: {out}; "
                f"written to {path} instead") in errors
        assert path.stat().st_size > 0
    assert json.loads((fallback / next(p for p in written if p.suffix == ".json")).read_text())
    assert f"html: {fallback}" in stdout.decode()


async def _read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some():
        data += chunk
    return bytes(data)


SECRET = "s3cret-Hunter2"


async def test_a_password_in_the_url_is_used_as_basic_auth_and_never_shown(
    nursery: trio.Nursery, tmp_path: Path,
) -> None:
    csms = ScriptedCsms()
    url = await serve(nursery, csms)
    with_password = url.replace("ws://", f"ws://:{SECRET}@")
    report_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    done = await run_fleetsim("spawn", "--url", with_password, "-u", "2", "-t", "1",
                              "--progress", "plain", "--report", str(report_path),
                              "--html", str(html_path))
    assert done.returncode == 0, done.stderr
    expected = {"Basic " + base64.b64encode(f"CP0000{n}:{SECRET}".encode()).decode()
                for n in (1, 2)}
    assert set(csms.authorization) == expected
    report = json.loads(report_path.read_text())
    assert report["target"]["url"] == url and report["config"]["url"] == url
    assert report["config"]["password"] == "***"
    for text in (done.stdout.decode(), done.stderr.decode(), report_path.read_text(),
                 html_path.read_text()):
        assert SECRET not in text


@pytest.mark.parametrize(("url", "extra", "message"), [
    (f"ws://bob:{SECRET}@127.0.0.1:9/ocpp", (),
     "url: the user name in the URL ('bob') cannot be used"),
    (f"ws://:{SECRET}@127.0.0.1:9/ocpp", ("--password", "other"),
     "url: a password in the URL and --password (or --password-file): give one"),
    (f"http://:{SECRET}@127.0.0.1:9/ocpp", (),
     "url: expected ws://host:port/path or wss://...; got 'http://:***@127.0.0.1:9/ocpp'"),
    (f"ws://:{SECRET}@[::1/ocpp", (), "url: "),
])
async def test_a_url_with_credentials_that_cannot_be_used_is_refused_unshown(
    url: str, extra: tuple[str, ...], message: str,
) -> None:
    done = await run_fleetsim("spawn", "--url", url, *extra, "-q")
    stderr = done.stderr.decode()
    assert done.returncode == 104, stderr
    assert stderr.startswith(f"fleetsim: error: {message}") and len(stderr.splitlines()) == 1
    assert SECRET not in stderr + done.stdout.decode()


def test_every_shown_url_is_redacted() -> None:
    assert redact_url(f"wss://cp:{SECRET}@csms.example:443/ocpp") == (
        "wss://cp:***@csms.example:443/ocpp")
    assert redact_url("ws://127.0.0.1:9/ocpp") == "ws://127.0.0.1:9/ocpp"
    config = RunConfig(url=f"ws://:{SECRET}@127.0.0.1:9/ocpp")
    assert (config.url, config.password) == ("ws://127.0.0.1:9/ocpp", SECRET)
    assert SECRET not in repr(config)


def test_a_worker_report_that_cannot_be_merged_costs_only_that_worker() -> None:
    config = RunConfig(chargers=4, duration_s=1, url="ws://127.0.0.1:9/ocpp", workers=2)
    parent = supervisor._Supervisor(config, "ws://127.0.0.1:9/ocpp", None, None)
    outcome = FleetOutcome("duration", 1_700_000_000.0, 1_700_000_001.0)
    for worker in parent.workers:
        report = build_report(worker.config, parent.url, Metrics(), outcome)
        worker.report = json.loads(json.dumps(report))
    damaged = parent.workers[1].report
    assert damaged is not None
    damaged["calls"] = None  # a section its worker could not serialise, and left out
    report, _ = parent.report(1_700_000_000.0, 1_700_000_001.0, 0.0)
    [lost] = report["workers"]["lost"]
    assert lost["worker"] == 2 and "its report cannot be merged" in lost["exit"]
    assert [part["label"] for part in report["parts"]] == ["1/2"]
