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
import gc
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
from fleetsim.config import CsmsConfig
from fleetsim.csms.server import CsmsServer, serve_csms
from fleetsim.errors import FleetsimError

__all__ = ["EmbeddedCsms", "child_main", "embedded_csms", "run_csms"]

_converter = cattrs.Converter(forbid_extra_keys=True)
_START_TIMEOUT_S = 20.0


@attrs.define
class EmbeddedCsms:
    """A CSMS child process: its URL, and its own counts once it has stopped."""

    url: str
    stats: dict[str, Any] = attrs.field(factory=dict)


async def run_csms(
    config: CsmsConfig, on_event: Callable[[dict[str, Any]], None],
    *, stats_every_s: float = 0.0, watch_stdin: bool = False,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Serve until a stop signal (or stdin closes); report through `on_event`."""
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

        async def keep_collections_short() -> None:
            # as in the fleet's loop-lag probe: thousands of connections' live objects would
            # make each garbage collection a pause long enough to show in the latencies
            try:
                while True:
                    gc.freeze()
                    await trio.sleep(0.02)
            finally:
                gc.unfreeze()

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
async def embedded_csms(config: CsmsConfig) -> AsyncIterator[EmbeddedCsms]:
    """Start the CSMS in a child process on a free loopback port; stop it on exit."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "fleetsim.csms"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        # its own session: a terminal's Ctrl-C goes to the fleet, which stops the CSMS last
        start_new_session=True,
    )
    assert process.stdin is not None and process.stdout is not None
    lines = _Lines(process.stdout)
    embedded = EmbeddedCsms(url="")
    try:
        payload = json.dumps(_converter.unstructure(config)) + "\n"
        await process.stdin.send_all(payload.encode())
        event = None
        with trio.move_on_after(_START_TIMEOUT_S):
            event = await lines.next()
        if event is None or event.get("event") != "listening":
            message = event.get("message") if event else "it exited or did not answer in time"
            raise FleetsimError(f"the embedded CSMS did not start: {message}")
        embedded.url = event["url"]
        yield embedded
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            with trio.move_on_after(5):
                while (event := await lines.next()) is not None:
                    if event.get("event") == "stats":
                        embedded.stats = event
            with trio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.stdin.aclose()
            await process.stdout.aclose()
