"""RFC 6455 frames on the hot path: whole text messages, built and read without wsproto.

wsproto costs about 8 µs to frame a message and 8 µs to read one, as much as the rest of a
charger's work per CALL; these functions do the common case (a whole, unfragmented text
message) in about 1 µs. Everything else (control frames, fragments, binary messages, bad
UTF-8, protocol errors) still goes to wsproto: `frame_extent` tells where a frame ends, so
that wsproto is handed whole frames and keeps its state. Sans-IO: bytes in, bytes out.
"""

from __future__ import annotations

import os
import struct
from typing import Final

__all__ = ["TEXT_FIN", "RandomDraws", "frame_extent", "read_text", "text_frame"]

TEXT_FIN: Final = 0x81
"""First byte of a whole text message: FIN, no RSV bits, opcode 1."""
_MASKED: Final = 0x80


class RandomDraws:
    """`size`-byte values from the OS's strong random source, drawn `count` at a time: one
    getrandom(2) per `count` values. Masking keys (RFC 6455 5.3 asks for strong ones, 4
    bytes a frame) and the handshake's nonces (16 bytes a connection) come from it."""

    __slots__ = ("_count", "_pool", "_pos", "_size")

    def __init__(self, size: int, count: int = 1024) -> None:
        self._size = size
        self._count = count
        self._pool = b""
        self._pos = 0

    def take(self) -> bytes:
        pos, size = self._pos, self._size
        if pos >= len(self._pool):
            self._pool = os.urandom(size * self._count)
            pos = 0
        self._pos = pos + size
        return self._pool[pos:pos + size]


def _xor(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """`payload` masked (or unmasked) with the 4-byte `key`, as one big-integer XOR."""
    size = len(payload)
    keys = (key * ((size >> 2) + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(
        size, "little")


def text_frame(text: str, keys: RandomDraws | None) -> bytes:
    """One whole text message as a frame; masked with a fresh key when `keys` is given (a
    client's frames must be, a server's must not)."""
    payload = text.encode("utf-8")
    size = len(payload)
    mask = _MASKED if keys is not None else 0
    if size < 126:
        header = bytes((TEXT_FIN, mask | size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", TEXT_FIN, mask | 126, size)
    else:
        header = struct.pack("!BBQ", TEXT_FIN, mask | 127, size)
    if keys is None:
        return header + payload
    key = keys.take()
    return header + key + _xor(payload, key)


def frame_extent(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """(where the payload starts, where the frame ends) for the frame at `pos`, or None
    while its header has not all arrived. The end may lie beyond the data received."""
    have = len(data) - pos
    if have < 2:
        return None
    second = data[pos + 1]
    size = second & 0x7F
    start = pos + 2
    if size == 126:
        if have < 4:
            return None
        size = int.from_bytes(data[start:start + 2], "big")
        start += 2
    elif size == 127:
        if have < 10:
            return None
        size = int.from_bytes(data[start:start + 8], "big")
        start += 8
    if second & _MASKED:
        start += 4
    return start, start + size


def read_text(data: bytes | bytearray, pos: int, start: int, end: int, masked: bool) -> str | None:
    """The text of the whole frame at `data[pos:end]` (payload from `start`), if it is a
    whole text message masked as expected with valid UTF-8; None when wsproto must read it
    (anything else, including what is an error, which wsproto answers as RFC 6455 says)."""
    if data[pos] != TEXT_FIN or bool(data[pos + 1] & _MASKED) is not masked:
        return None
    size = end - start
    if data[pos + 1] & 0x7F != (size if size < 126 else 126 if size < 1 << 16 else 127):
        return None  # a length not in its shortest form (RFC 6455 5.2): wsproto says 1002
    payload = data[start:end]
    if masked:
        payload = _xor(payload, data[start - 4:start])
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
