"""A worker process (`python -m fleetsim.workers`): one segment of the parent's fleet.

It speaks JSON lines (`pipe.py`). On stdin, from the parent: `{"config": <pickle, base64>,
"url": ...}`, then `{"event": "start"}`. The config crosses as a pickle because both ends are
the same installed fleetsim, and the profile's types then need no second serialisation path.
On stdout, to the parent: "ready" once the fleet is built (bad settings fail here, before any
charger starts), a "row" every second, and the "report" at the end, or an "error".

SIGINT or SIGTERM stop the fleet gracefully, a second one at once, as for `fleetsim spawn`.
A closed stdin means the parent is gone: the fleet stops, so an orphan never lingers.
"""

from __future__ import annotations

import base64
import os
import pickle
import signal
import sys
from collections.abc import Sequence
from typing import Any

import trio

from fleetsim._groups import single_error
from fleetsim.config import RunConfig
from fleetsim.errors import ConfigError, FleetsimError
from fleetsim.exporter import Exporter
from fleetsim.fleet import Fleet
from fleetsim.limits import raise_open_file_limit
from fleetsim.metrics import Metrics
from fleetsim.report import build_report, serialisable_report
from fleetsim.workers.pipe import LineReader, encode

__all__ = ["encode_start", "main"]


def encode_start(config: RunConfig, url: str, shard_urls: Sequence[str] = ()) -> bytes:
    """The first line the parent sends a worker."""
    return encode({"config": base64.b64encode(pickle.dumps(config)).decode(), "url": url,
                   "shard_urls": list(shard_urls)})


def _emit(event: dict[str, Any]) -> None:
    try:
        sys.stdout.buffer.write(encode(event))
        sys.stdout.buffer.flush()
    except (BrokenPipeError, ValueError):  # the parent is gone: nobody to tell
        pass


async def _serve() -> None:
    stdin = LineReader(trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())))
    first = await stdin.event()
    if first is None:
        return
    config = pickle.loads(base64.b64decode(first["config"]))
    if not isinstance(config, RunConfig):
        raise ConfigError("a worker needs a RunConfig")
    url: str = first["url"]
    metrics = Metrics()
    fleet = Fleet(config, url, metrics, on_second=lambda row: _emit({"event": "row", "row": row}),
                  shard_urls=first.get("shard_urls", ()))
    exporter = None if config.prometheus is None else Exporter(metrics, *config.prometheus)
    try:
        await _run(fleet, config, url, metrics, stdin)
    finally:
        if exporter is not None:
            exporter.close()


async def _run(fleet: Fleet, config: RunConfig, url: str, metrics: Metrics,
               stdin: LineReader) -> None:
    _emit({"event": "ready", "pid": os.getpid()})
    start = trio.Event()

    async def watch_signals() -> None:
        # While the fleet runs it takes the signals over; before and after, they land here.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                fleet.stop("interrupted", "interrupted by signal")
                if not start.is_set():
                    nursery.cancel_scope.cancel()

    async def watch_parent() -> None:
        if await stdin.event() is None:
            nursery.cancel_scope.cancel()
            return
        start.set()
        while await stdin.line() is not None:
            pass
        fleet.stop("interrupted", "the parent process is gone")

    with single_error():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_signals)
            nursery.start_soon(watch_parent)
            await start.wait()
            outcome = await fleet.run()
            report = serialisable_report(build_report(config, url, metrics, outcome))
            _emit({"event": "report", "report": report})
            nursery.cancel_scope.cancel()


def main() -> None:
    raise_open_file_limit()
    try:
        trio.run(_serve)
    except FleetsimError as exc:
        _emit({"event": "error", "kind": type(exc).__name__, "message": str(exc)})
        sys.exit(1)
