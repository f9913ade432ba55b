"""Live progress: one status line per second, redrawn in place on a terminal."""

from __future__ import annotations

from typing import Any, Literal, TextIO

import orjson

from fleetsim.report import format_step

__all__ = ["Progress", "ProgressMode", "format_event", "format_progress"]

ProgressMode = Literal["auto", "plain", "jsonl", "none"]


def format_progress(row: dict[str, Any], chargers: int, errors_total: int) -> str:
    return (
        f"{row['t']:>7.1f}s  connected {row['connected']:>{len(str(chargers))}}/{chargers}  "
        f"booted {row['booted']}  calls/s {row['ok'] + row['errors']:>6}  "
        f"errors {errors_total}  p99 {row['p99_ms']:.2f} ms"
        + (f"  ramp {row['ramp_per_s']}/s" if "ramp_per_s" in row else "")
        + ("  [generator saturated]" if row.get("saturated") else "")
        + (f"  [{row['workers_lost']} worker(s) lost]" if row.get("workers_lost") else "")
    )


def format_event(event: dict[str, Any]) -> str:
    """A worker's start or loss, as one line."""
    if event["event"] == "worker":
        metrics = (f", metrics on port {event['prometheus_port']}"
                   if "prometheus_port" in event else "")
        return (f"worker {event['worker']}: pid {event['pid']}, segment {event['segment']}, "
                f"{event['chargers']} chargers{metrics}")
    if event["event"] == "worker_lost":
        last = f"; last stderr line: {event['stderr']}" if event["stderr"] else ""
        return (f"fleetsim: warning: worker {event['worker']} (segment {event['segment']}, "
                f"pid {event['pid']}) lost: {event['exit']}{last}")
    return str(event)


class Progress:
    """Receives a timeline row every second and shows it on `stream`.

    "auto" redraws the line in place on a terminal and writes plain lines elsewhere (CI logs,
    pipes); "jsonl" writes each timeline row as a JSON line, for tools that watch a run live.
    """

    def __init__(self, stream: TextIO, chargers: int, mode: ProgressMode = "auto") -> None:
        self._stream = stream
        self._chargers = chargers
        self._mode = "plain" if mode == "auto" and not stream.isatty() else mode
        self._errors = 0

    def __call__(self, row: dict[str, Any]) -> None:
        self._errors += row["errors"]
        if self._mode == "none":
            return
        if self._mode == "jsonl":
            self._stream.write(orjson.dumps(row).decode() + "\n")
        elif self._mode == "auto":
            self._stream.write("\r\x1b[K" + format_progress(row, self._chargers, self._errors))
        else:
            self._stream.write(format_progress(row, self._chargers, self._errors) + "\n")
        self._stream.flush()

    def step(self, step: dict[str, Any]) -> None:
        """A ramp step is over: its line (without its histograms, in "jsonl")."""
        if self._mode == "none":
            return
        if self._mode == "jsonl":
            self._stream.write(orjson.dumps({k: v for k, v in step.items() if k != "hdr"})
                               .decode() + "\n")
        else:
            prefix = "\r\x1b[K" if self._mode == "auto" else ""
            self._stream.write(prefix + format_step(step) + "\n")

    def event(self, event: dict[str, Any]) -> None:
        """Something other than a second's row: a worker's start or loss (see
        `fleetsim.spawn`'s `on_worker`), as a line of its own, or a JSON line in "jsonl"."""
        if self._mode == "none":
            return
        if self._mode == "jsonl":
            self._stream.write(orjson.dumps(event).decode() + "\n")
        else:
            self._stream.write(("\r\x1b[K" if self._mode == "auto" else "")
                               + format_event(event) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._mode == "auto":
            self._stream.write("\n")
            self._stream.flush()
