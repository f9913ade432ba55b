"""JSON lines between the parent and its workers, over their standard streams."""

from __future__ import annotations

from typing import Any, Final

import orjson
import trio

__all__ = ["MAX_LINE", "LineReader", "encode"]

MAX_LINE: Final = 256 * 1024 * 1024
"""A report of a day-long run is a few MB; a line beyond this is a broken peer."""


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event) + b"\n"


class LineReader:
    """Newline-terminated lines from a trio stream; a final unterminated piece counts too."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._scanned = 0  # no newline before this offset: a megabyte line is scanned once

    async def line(self) -> bytes | None:
        """The next line without its newline, or None at the end of the stream."""
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            if self._scanned > MAX_LINE:
                raise ValueError(f"a line longer than {MAX_LINE} bytes")
            chunk = await self._stream.receive_some(1 << 16)
            if not chunk:
                if not self._buffer:
                    return None
                rest = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return rest
            self._buffer += chunk

    async def event(self) -> dict[str, Any] | None:
        """The next line as a JSON object, or None at the end of the stream."""
        line = await self.line()
        if line is None:
            return None
        event = orjson.loads(line)
        if not isinstance(event, dict):
            raise ValueError(f"expected a JSON object, got {line[:80]!r}")
        return event
