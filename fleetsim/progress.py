"""Live progress: one status line per second, redrawn in place on a terminal."""

from __future__ import annotations

from typing import Any, TextIO

__all__ = ["Progress", "format_progress"]


def format_progress(row: dict[str, Any], chargers: int, errors_total: int) -> str:
    return (
        f"{row['t']:>7.1f}s  connected {row['connected']:>{len(str(chargers))}}/{chargers}  "
        f"booted {row['booted']}  calls/s {row['ok'] + row['errors']:>6}  "
        f"errors {errors_total}  p99 {row['p99_ms']:.2f} ms"
    )


class Progress:
    """Receives a timeline row every second and shows it on `stream`.

    On a terminal the line is redrawn in place; elsewhere (CI logs, pipes) each row is a plain
    line, so logs stay readable.
    """

    def __init__(self, stream: TextIO, chargers: int, *, every_s: int = 1) -> None:
        self._stream = stream
        self._chargers = chargers
        self._tty = stream.isatty()
        self._every = max(1, every_s)
        self._errors = 0
        self._rows = 0

    def __call__(self, row: dict[str, Any]) -> None:
        self._errors += row["errors"]
        self._rows += 1
        line = format_progress(row, self._chargers, self._errors)
        if self._tty:
            self._stream.write("\r\x1b[K" + line)
        elif self._rows % self._every == 0:
            self._stream.write(line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
