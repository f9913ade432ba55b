"""The parent's live view of its workers: their per-second rows summed into one row a second.

Pure: rows and the current time come in as arguments. Workers start their fleets at the same
instant, so the k-th row of each covers the same second. A combined row goes out as soon as
every running worker has sent its k-th row, or `wait_s` after the first of them arrived, so a
slow or dead worker never holds the view back; a row that comes after its second went out is
added to the next one, so no count is lost from the live totals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

__all__ = ["LiveRows"]

_SUMS: Final = ("sent", "ok", "errors", "connects", "connect_failures")
_GAUGES: Final = ("connected", "booted", "queued")
_MAXES: Final = ("p99_ms", "loop_lag_ms")

Row = dict[str, Any]


class LiveRows:
    """Combines the timeline rows of workers `workers` (any hashable labels)."""

    def __init__(self, workers: Iterable[int], wait_s: float = 0.5) -> None:
        self._running = set(workers)
        self._wait_s = wait_s
        self._received = dict.fromkeys(self._running, 0)
        self._pending: dict[int, dict[int, Row]] = {}
        self._first_at: dict[int, float] = {}
        self._sent_up_to = 0
        self._late: list[Row] = []
        self._latest: dict[int, Row] = {}
        self._lost = 0

    def add(self, worker: int, row: Row, now: float) -> list[Row]:
        """Worker `worker`'s next row; returns the combined rows now complete, oldest first."""
        self._received[worker] += 1
        second = self._received[worker]
        if worker in self._running:
            self._latest[worker] = row
        if second <= self._sent_up_to:
            self._late.append(row)
        else:
            self._pending.setdefault(second, {})[worker] = row
            self._first_at.setdefault(second, now)
        return self._complete(now)

    def leave(self, worker: int, now: float, *, lost: bool) -> list[Row]:
        """Worker `worker` sends no more rows: it finished, or it was `lost`."""
        self._running.discard(worker)
        self._latest.pop(worker, None)
        self._lost += lost
        return self._complete(now)

    def due(self) -> float | None:
        """When the oldest waiting row goes out even if some worker has not sent its part."""
        return min(self._first_at.values()) + self._wait_s if self._first_at else None

    def expire(self, now: float) -> list[Row]:
        return self._complete(now)

    def flush(self) -> list[Row]:
        """Every waiting row, complete or not (the run is over)."""
        return self._complete(float("inf"))

    def _complete(self, now: float) -> list[Row]:
        out = []
        while self._pending:
            second = min(self._pending)
            rows = self._pending[second]
            if not (self._running <= rows.keys() or now >= self._first_at[second] + self._wait_s):
                break
            del self._pending[second], self._first_at[second]
            self._sent_up_to = second
            out.append(self._combine(rows))
        return out

    def _combine(self, rows: dict[int, Row]) -> Row:
        counted = [*rows.values(), *self._late]
        self._late = []
        # gauges from this second's row where there is one, else the worker's latest
        gauges = [rows.get(worker) or latest for worker, latest in self._latest.items()]
        cpus = [row["cpu"] for row in rows.values() if row.get("cpu") is not None]
        combined: Row = {"t": max(row["t"] for row in rows.values())}
        combined.update({key: sum(row.get(key, 0) for row in gauges) for key in _GAUGES})
        combined.update({key: sum(row.get(key, 0) for row in counted) for key in _SUMS})
        combined.update({key: max(row.get(key, 0.0) for row in rows.values()) for key in _MAXES})
        combined["cpu"] = max(cpus) if cpus else None
        combined["saturated"] = any(row.get("saturated") for row in rows.values())
        combined["workers"] = len(rows)
        combined["workers_lost"] = self._lost
        paces = [row["ramp_per_s"] for row in rows.values() if "ramp_per_s" in row]
        if paces:  # `--ramp auto`: each worker paces its own slice
            combined["ramp_per_s"] = sum(paces)
        return combined
