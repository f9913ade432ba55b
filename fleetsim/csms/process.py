"""Running the embedded CSMS as a process of its own.

`fleetsim spawn` without `--url` starts the CSMS in a child process so that it has its own core
and never competes with the fleet it serves. The parent sends the configuration as one JSON line
on the child's stdin; the child answers with a JSON "listening" line on stdout, serves until the
parent sends SIGTERM or closes stdin (so an orphan never lingers), then prints a "stats" line
with everything it received, which the parent puts in the report.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import cattrs
import trio

from fleetsim._groups import single_error
from fleetsim.collector import keep_collections_short
from fleetsim.csms.config import CsmsConfig
from fleetsim.csms.server import CsmsServer, serve_csms
from fleetsim.errors import FleetsimError
from fleetsim.limits import raise_open_file_limit
from fleetsim.metrics import add_counts

__all__ = ["EmbeddedCsms", "child_main", "embedded_csms", "run_csms"]

_converter = cattrs.Converter(forbid_extra_keys=True)
_START_TIMEOUT_S = 20.0


@attrs.define
class EmbeddedCsms:
    """The CSMS to run against: its URL (the first process's), the URL of each process
    (`urls`; empty for a CSMS given by URL), and its counts once it has stopped."""

    url: str
    stats: dict[str, Any] = attrs.field(factory=dict)
    urls: list[str] = attrs.field(factory=list)


async def run_csms(
    config: CsmsConfig, on_event: Callable[[dict[str, Any]], None],
    *, stats_every_s: float = 0.0, watch_stdin: bool = False,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Serve until a stop signal (or stdin closes); report through `on_event`."""
    raise_open_file_limit()
    with single_error():
        await _serve_until_stopped(config, on_event, stats_every_s, watch_stdin, stop_signals)


async def _serve_until_stopped(
    config: CsmsConfig, on_event: Callable[[dict[str, Any]], None],
    stats_every_s: float, watch_stdin: bool, stop_signals: tuple[signal.Signals, ...],
) -> None:
    async with trio.open_nursery() as nursery:
        server: CsmsServer = await nursery.start(serve_csms, config)
        on_event({"event": "listening", "url": server.url, "port": server.port})

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(*stop_signals) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()

        async def stop_on_stdin_eof() -> None:
            stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
            while await stdin.receive_some():
                pass
            nursery.cancel_scope.cancel()

        async def report_stats() -> None:
            while True:
                await trio.sleep(stats_every_s)
                on_event({"event": "stats", **server.stats.as_dict()})

        nursery.start_soon(stop_on_signal)
        nursery.start_soon(keep_collections_short)
        if watch_stdin:
            nursery.start_soon(stop_on_stdin_eof)
        if stats_every_s > 0:
            nursery.start_soon(report_stats)
    on_event({"event": "stats", **server.stats.as_dict()})


def child_main() -> None:
    """Entry point of the CSMS child process (`python -m fleetsim.csms`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = _converter.structure(json.loads(sys.stdin.readline()), CsmsConfig)

    def emit(event: dict[str, Any]) -> None:
        with contextlib.suppress(BrokenPipeError):  # the parent is gone: nobody to tell
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()

    try:
        trio.run(functools.partial(run_csms, config, emit, watch_stdin=True,
                                   stop_signals=(signal.SIGTERM,)))
    except FleetsimError as exc:
        emit({"event": "error", "message": str(exc)})
        sys.exit(1)


class _Lines:
    """Reads newline-terminated JSON objects from a trio stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        event: dict[str, Any] = json.loads(line)
        return event


@asynccontextmanager
async def embedded_csms(config: CsmsConfig, processes: int = 1) -> AsyncIterator[EmbeddedCsms]:
    """Start the CSMS in child processes, each on a free loopback port; stop them on exit.

    Each connection is an open file in the CSMS, so a fleet larger than one process may hold
    is served by several processes. The fleet sends each charger to the same one every time
    (`urls`), so each keeps whole charger histories (seqNo ledgers, transactions); each has
    its share of the commands and of the capacity, and their counts add up.
    """
    if processes > 1:
        config = attrs.evolve(config, port=0, shards=processes,
                              commands_per_s=config.commands_per_s / processes,
                              capacity_per_s=config.capacity_per_s / processes)
    embedded = EmbeddedCsms(url="")
    children: list[_Child] = []
    try:
        for shard in range(processes):
            children.append(await _Child.start(attrs.evolve(config, shard=shard)))
        embedded.urls = [child.url for child in children]
        embedded.url = embedded.urls[0]
        yield embedded
    finally:
        with trio.CancelScope(shield=True):
            stats: list[dict[str, Any]] = [{} for _ in children]

            async def stop(index: int) -> None:
                stats[index] = await children[index].stop()

            async with trio.open_nursery() as nursery:
                for index in range(len(children)):
                    nursery.start_soon(stop, index)
            if len(stats) == 1:
                embedded.stats = stats[0]
            elif stats:
                embedded.stats = {**add_counts(stats), "processes": len(stats),
                                  "processes_without_stats": sum(not s for s in stats)}


class _Child:
    """One CSMS process: started with its configuration on stdin, stopped with SIGTERM."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._lines = _Lines(process.stdout)
        self.url = ""
        self._terminated = False

    @classmethod
    async def start(cls, config: CsmsConfig) -> _Child:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "fleetsim.csms"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            # its own session: a terminal's Ctrl-C goes to the fleet, which stops the CSMS last
            start_new_session=True,
        )
        child = cls(process)
        try:
            payload = json.dumps(_converter.unstructure(config)) + "\n"
            await child._stdin.send_all(payload.encode())
            event = None
            with trio.move_on_after(_START_TIMEOUT_S):
                event = await child._lines.next()
            if event is None or event.get("event") != "listening":
                message = (event.get("message") if event
                           else "it exited or did not answer in time")
                raise FleetsimError(f"the embedded CSMS did not start: {message}")
        except BaseException:
            with trio.CancelScope(shield=True):
                await child.stop()
            raise
        child.url = event["url"]
        return child

    def terminate(self) -> None:
        """Ask the process to stop, once: a second SIGTERM would kill it before it reports."""
        if self._process.returncode is None and not self._terminated:
            self._terminated = True
            self._process.send_signal(signal.SIGTERM)

    async def stop(self) -> dict[str, Any]:
        """Stop the process; returns its final stats (empty if it sent none). It is killed
        if it does not end in time, whatever happens while reading its last words."""
        process, stats = self._process, {}
        try:
            self.terminate()
            with trio.move_on_after(5):
                while (event := await self._lines.next()) is not None:
                    if event.get("event") == "stats":
                        stats = event
        except ValueError:  # a line that is not JSON: no stats from it
            pass
        finally:
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await self._stdin.aclose()
            await self._stdout.aclose()
        return stats
