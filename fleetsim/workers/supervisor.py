"""The parent of `fleetsim spawn --workers N`: N processes, one target, one view, one report.

Python runs one trio loop per process, so one process uses one core. The parent splits its
fleet (or its segment) into N strided segments (`Segment.split`) and runs each in a worker
process (`python -m fleetsim.workers`, see `child.py`), all against one URL: the given one, or
the one embedded CSMS the caller started. Every worker builds its fleet and says "ready"; then
all are told to start at once, so their seconds line up. Their rows feed one live view
(`LiveRows`) and their reports merge exactly (`merge_reports`) into the run's report.

A worker that dies is reported (which one, its exit status, its last line on stderr) and the
run goes on without it; the report names it under `workers.lost`. Nothing waits forever: a
worker that outlives the run's duration, grace and a margin is terminated, then killed, and
counted as lost. SIGINT or SIGTERM to the parent reach every worker as SIGINT, so a first
Ctrl-C drains them all and a second stops them at once, as for one process.
"""

from __future__ import annotations

import collections
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
import trio

from fleetsim.config import WHOLE_FLEET, RunConfig, Segment, unstructure_config
from fleetsim.errors import ConfigError, FleetsimError
from fleetsim.metrics import FleetOutcome, Metrics
from fleetsim.report import build_report, merge_reports
from fleetsim.workers.child import encode_start
from fleetsim.workers.live import LiveRows
from fleetsim.workers.pipe import LineReader, encode

__all__ = ["run_workers"]

_START_TIMEOUT_S: Final = 30.0
_STOP_MARGIN_S: Final = 15.0
"""Beyond duration + graceful stop + closing: building and sending a report, on a busy box."""
_KILL_AFTER_S: Final = 5.0
_CLOSE_S: Final = 3.0
_EXIT_WAIT_S: Final = 5.0
_STDERR_LINES: Final = 20


@attrs.define(eq=False)
class _Worker:
    number: int
    segment: Segment
    chargers: int
    config: RunConfig
    """What it runs (`worker_config`)."""
    process: trio.Process | None = None
    ready: trio.Event = attrs.field(factory=trio.Event)
    done: trio.Event = attrs.field(factory=trio.Event)
    report: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    stderr: collections.deque[str] = attrs.field(
        factory=lambda: collections.deque(maxlen=_STDERR_LINES))
    rows: int = 0
    sent: int = 0
    ok: int = 0
    terminated_at: float | None = None
    killed: bool = False
    exit: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def last_stderr(self) -> str:
        return next((line for line in reversed(self.stderr) if line.strip()), "")

    def describe(self) -> str:
        return f"worker {self.number} (segment {self.segment}, pid {self.pid})"


def _exit_status(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class _Supervisor:
    def __init__(self, config: RunConfig, url: str,
                 on_second: Callable[[dict[str, Any]], None] | None,
                 on_worker: Callable[[dict[str, Any]], None] | None,
                 shard_urls: Sequence[str] = ()) -> None:
        self.config = config
        self.url = url
        self.shard_urls = shard_urls
        self._on_second = on_second
        self._on_worker = on_worker
        mine = config.segment or WHOLE_FLEET
        count = min(config.workers or 1, len(config.charger_indexes()))
        self.workers = [
            _Worker(number, segment, len(segment.indexes(config.chargers)),
                    worker_config(config, segment, number))
            for number, segment in enumerate(mine.split(count), start=1)]
        self.live = LiveRows([worker.number for worker in self.workers])
        self.interrupted = False
        self.stop_by = float("inf")
        self.connected_peak = 0

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                for worker in self.workers:
                    worker.process = await trio.lowlevel.open_process(
                        [sys.executable, "-m", "fleetsim.workers"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        # its own session: Ctrl-C reaches the parent, which passes it on once
                        start_new_session=True)
                    nursery.start_soon(self._watch, worker)
                    await self._send(worker, encode_start(
                        worker.config, self.url, self.shard_urls))
                await self._wait_ready()
                # Start early in a wall-clock second: a merge puts each row in the second
                # nearest its end, and rows just either side of a half second would part.
                delay = -time.time() % 1.0
                if delay < 0.75:
                    await trio.sleep(delay)
                for worker in self.workers:
                    await self._send(worker, encode({"event": "start"}))
                    event = {"event": "worker", "worker": worker.number,
                             "segment": str(worker.segment), "pid": worker.pid,
                             "chargers": worker.chargers}
                    if worker.config.prometheus is not None:
                        event["prometheus_port"] = worker.config.prometheus[1]
                    self._tell(event)
                now = trio.current_time()
                self.stop_by = now + self._stopping_time() + self.config.duration_s
                nursery.start_soon(self._forward_signals)
                nursery.start_soon(self._tick)
                for worker in self.workers:
                    await worker.done.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._reap()
        self._show(self.live.flush())

    async def _send(self, worker: _Worker, data: bytes) -> None:
        """A line to a worker; one that is gone is `_watch`'s to report, not an error here."""
        assert worker.process is not None and worker.process.stdin is not None
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await worker.process.stdin.send_all(data)

    def _stopping_time(self) -> float:
        return self.config.graceful_stop_s + _CLOSE_S + _STOP_MARGIN_S

    async def _wait_ready(self) -> None:
        with trio.move_on_after(_START_TIMEOUT_S):
            for worker in self.workers:
                await worker.ready.wait()
        for worker in self.workers:
            if worker.report is None and worker.error is not None:
                kind, message = worker.error
                raise (ConfigError if kind == "ConfigError" else FleetsimError)(message)
        for worker in self.workers:
            if not worker.ready.is_set() or worker.done.is_set():
                why = worker.exit or f"no answer within {_START_TIMEOUT_S:g} s"
                last = worker.last_stderr()
                raise FleetsimError(f"{worker.describe()} did not start: {why}"
                                    + (f": {last}" if last else ""))

    async def _watch(self, worker: _Worker) -> None:
        """Read one worker's lines to the end, then see how it ended."""
        process = worker.process
        assert process is not None and process.stdout is not None
        lines = LineReader(process.stdout)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_stderr, worker)
            while True:
                try:
                    event = await lines.event()
                except ValueError as exc:  # not our protocol: this worker is broken
                    worker.stderr.append(f"bad line on stdout: {exc}")
                    process.kill()
                    break
                if event is None:
                    break
                kind = event.get("event")
                if kind == "row":
                    worker.rows += 1
                    worker.sent += event["row"]["sent"]
                    worker.ok += event["row"]["ok"]
                    self._show(self.live.add(worker.number, event["row"], trio.current_time()))
                elif kind == "ready":
                    worker.ready.set()
                elif kind == "report":
                    worker.report = event["report"]
                elif kind == "error":
                    worker.error = (str(event.get("kind")), str(event.get("message")))
            with trio.move_on_after(_EXIT_WAIT_S):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        worker.exit = _exit_status(process.returncode)
        lost = worker.report is None
        if lost and worker.ready.is_set():
            self._tell({"event": "worker_lost", "worker": worker.number,
                        "segment": str(worker.segment), "pid": worker.pid,
                        "exit": self._why(worker), "stderr": worker.last_stderr()})
        self._show(self.live.leave(worker.number, trio.current_time(), lost=lost))
        worker.ready.set()
        worker.done.set()

    async def _keep_stderr(self, worker: _Worker) -> None:
        """Drain stderr so the worker never blocks on it; keep the last lines for the report."""
        assert worker.process is not None and worker.process.stderr is not None
        lines = LineReader(worker.process.stderr)
        while (line := await lines.line()) is not None:
            worker.stderr.append(line.decode(errors="replace").rstrip()[:500])

    async def _forward_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; the caller handles them there
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.interrupted = True
                self.stop_by = min(self.stop_by, trio.current_time() + self._stopping_time())
                for worker in self.workers:
                    if worker.running:
                        assert worker.process is not None
                        worker.process.send_signal(signal.SIGINT)

    async def _tick(self) -> None:
        """Let overdue rows out, and end workers that outlive the run."""
        while True:
            await trio.sleep(0.1)
            now = trio.current_time()
            self._show(self.live.expire(now))
            if now < self.stop_by:
                continue
            for worker in self.workers:
                if not worker.running or worker.done.is_set():
                    continue
                assert worker.process is not None
                if worker.terminated_at is None:
                    worker.terminated_at = now
                    worker.process.send_signal(signal.SIGTERM)
                elif now >= worker.terminated_at + _KILL_AFTER_S and not worker.killed:
                    worker.killed = True
                    worker.process.kill()

    async def _reap(self) -> None:
        """However the run ended, no worker outlives it and every pipe is closed."""
        for worker in self.workers:
            process = worker.process
            if process is None:
                continue
            if process.returncode is None:
                process.kill()
                await process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()

    def _show(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            # a true fleet-wide sample: the workers' rows of one second, summed
            self.connected_peak = max(self.connected_peak, row["connected"])
            if self._on_second is not None:
                self._on_second(row)

    def _tell(self, event: dict[str, Any]) -> None:
        if self._on_worker is not None:
            self._on_worker(event)

    def _why(self, worker: _Worker) -> str:
        if worker.killed or worker.terminated_at is not None:
            return f"did not stop in time, so fleetsim ended it ({worker.exit})"
        if worker.error is not None:
            return f"{worker.exit} ({worker.error[0]}: {worker.error[1]})"
        return worker.exit

    # -- the report -----------------------------------------------------------------------

    def report(self, started_at: float, ended_at: float,
               parent_cpu_s: float) -> tuple[dict[str, Any], FleetOutcome]:
        """The workers' reports merged exactly, as the report of this run."""
        config = self.config
        self._drop_unmergeable()
        finished = [worker for worker in self.workers if worker.report is not None]
        lost = [worker for worker in self.workers if worker.report is None]
        if finished:
            # force: the parts come from one config by construction, and a report must be
            # written whatever a merge check would say; it lists anything odd in its warnings
            report = merge_reports([w.report for w in finished if w.report is not None],
                                   names=[f"worker {w.number}" for w in finished], force=True)
            report["merge"]["missing_segments"] = [str(worker.segment) for worker in lost]
        else:
            outcome = FleetOutcome("interrupted" if self.interrupted else "duration",
                                   started_at, ended_at)
            report = build_report(config, self.url, Metrics(), outcome)
        report["config"] = unstructure_config(config)
        report["chargers"]["target"] = len(config.charger_indexes())
        if report["chargers"]["booted"] < report["chargers"]["target"]:  # a worker was lost
            report["chargers"].pop("all_booted_s", None)
        report["chargers"]["connected_peak"] = max(report["chargers"]["connected_peak"],
                                                   self.connected_peak)
        by_label = {part["label"]: part for part in report.get("parts", ())}
        duration = max(ended_at - started_at, 1e-9)
        report["workers"] = {
            "count": len(self.workers),
            "parent_cpu_share": round(parent_cpu_s / duration, 3),
            "each": [self._entry(worker, by_label.get(str(worker.segment)))
                     for worker in self.workers],
            "lost": [self._lost_entry(worker) for worker in lost],
        }
        if self.interrupted and report["outcome"]["stopped_by"] != "unreachable":
            report["outcome"] = {"stopped_by": "interrupted", "reason": "interrupted by signal"}
        outcome = FleetOutcome(
            report["outcome"]["stopped_by"], _epoch(report["started_at"]),
            _epoch(report["ended_at"]), report["outcome"]["reason"],
            cpu_seconds=sum(part["cpu_share"] * part["duration_s"]
                            for part in report.get("parts", ())),
            behaviours={name: entry["chargers"]
                        for name, entry in report.get("behaviours", {}).items()})
        return report, outcome

    def _drop_unmergeable(self) -> None:
        """A worker whose report cannot be read (a section it could not serialise and had to
        leave out) counts as lost, with the reason, so that it costs only its own chargers."""
        for worker in self.workers:
            if worker.report is None:
                continue
            try:
                merge_reports([worker.report], names=[f"worker {worker.number}"], force=True)
            except ConfigError as exc:
                worker.report = None
                worker.error = ("ConfigError", f"its report cannot be merged: {exc}")

    def _entry(self, worker: _Worker, part: dict[str, Any] | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"worker": worker.number, "segment": str(worker.segment),
                                 "pid": worker.pid, "chargers": worker.chargers,
                                 "exit": worker.exit, "lost": worker.report is None}
        if part is not None:
            entry.update({key: part[key] for key in (
                "booted", "connected_peak", "sent", "throughput_cps", "cpu_share",
                "loop_lag_p99_ms", "loop_lag_max_ms", "saturated_seconds")})
        return entry

    def _lost_entry(self, worker: _Worker) -> dict[str, Any]:
        why = self._why(worker)
        last = worker.last_stderr()
        message = (f"{worker.describe()} was lost: {why}"
                   + (f" (its last line on stderr: {last})" if last else "")
                   + f"; its {worker.chargers} chargers are missing from this report (by its "
                     f"last live row it had sent {worker.sent} CALLs, {worker.ok} answered ok)")
        return {"worker": worker.number, "segment": str(worker.segment), "pid": worker.pid,
                "chargers": worker.chargers, "exit": why, "stderr": last,
                "live_rows": worker.rows, "live_sent": worker.sent, "live_ok": worker.ok,
                "message": message}


def worker_config(config: RunConfig, segment: Segment, number: int = 1) -> RunConfig:
    """What one worker runs: the run's configuration for one segment, in this process.
    Worker k serves Prometheus on the k-th port from `--prometheus`'s."""
    prometheus = config.prometheus
    if prometheus is not None:
        prometheus = (prometheus[0], prometheus[1] + number - 1)
    return attrs.evolve(config, segment=segment, report_path=None, prometheus=prometheus)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def run_workers(
    config: RunConfig, url: str, *,
    on_second: Callable[[dict[str, Any]], None] | None = None,
    on_worker: Callable[[dict[str, Any]], None] | None = None,
    shard_urls: Sequence[str] = (),
) -> tuple[dict[str, Any], FleetOutcome]:
    """Run `config` in `config.workers` processes against `url`; one merged report.

    `on_second` gets the workers' rows summed, once a second; `on_worker` gets each worker's
    start (`{"event": "worker", "worker", "segment", "pid", "chargers"}`) and loss
    (`{"event": "worker_lost", ..., "exit", "stderr"}`).
    """
    supervisor = _Supervisor(config, url, on_second, on_worker, shard_urls)
    started_at, cpu = time.time(), time.process_time()
    await supervisor.run()
    return supervisor.report(started_at, time.time(), time.process_time() - cpu)
