"""The client's side of the WebSocket opening handshake (RFC 6455 4.1), sans-IO.

wsproto does this through h11, whose general HTTP machinery costs about a sixth of a
charger's boot (building and validating the request, parsing the 101): a reconnect storm is
bounded by it. A client's handshake is a small, fixed exchange: one GET with the upgrade
headers, then a response head checked field by field as the RFC lists. Anything else the
server says (another status, a malformed head) ends the handshake with a reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from typing import Final

import attrs

from fleetsim.wsframes import RandomDraws

__all__ = ["Accepted", "ClientHandshake", "HandshakeFailed", "Rejected", "after_head"]

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEAD: Final = 16384
"""The longest response head read (h11's default limit)."""
_HEAD_END: Final = re.compile(rb"\n\r?\n")
_STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")
_FIELD: Final = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r]*?)[ \t]*")
_FORBIDDEN_IN_VALUE: Final = re.compile(r"[\r\n\x00]")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET: Final = re.compile(r"[!-~]+")


class HandshakeFailed(Exception):
    """The server's answer is not a WebSocket handshake; `reason` is a metrics label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@attrs.frozen
class Accepted:
    subprotocol: str | None
    rest: bytes
    """What arrived after the head: the first frames."""


@attrs.frozen
class Rejected:
    status: int


_NONCES: Final = RandomDraws(16, 256)
"""Sec-WebSocket-Key values, before base64."""


def after_head(received: bytes) -> bytes:
    """What arrived after an HTTP head with no body (a 101, an upgrade request): the first
    frames. The head ends at the first blank line, as h11 finds it."""
    end = _HEAD_END.search(received)
    return received[end.end():] if end is not None else b""


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",")]


class ClientHandshake:
    """One opening handshake: `request` to send, then `receive` the server's bytes until it
    returns Accepted or Rejected (None: the head has not all arrived)."""

    __slots__ = ("_accept", "_received", "_subprotocols", "request")

    def __init__(self, host: str, resource: str, subprotocols: Sequence[str],
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        for name, value in headers:
            if _FORBIDDEN_IN_VALUE.search(name + value):
                raise ValueError(f"header {name!r}: a line break or NUL has no place in it")
            if not _TOKEN.fullmatch(name) or _CONTROL.search(value):
                raise ValueError(f"header {name!r}: not a valid HTTP field")
        if not _TARGET.fullmatch(resource):
            raise ValueError(f"resource {resource!r}: spaces and controls must be %-encoded")
        for subprotocol in subprotocols:
            if not _TOKEN.fullmatch(subprotocol):
                raise ValueError(f"subprotocol {subprotocol!r}: not an HTTP token")
        key = base64.b64encode(_NONCES.take())
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        self._subprotocols = list(subprotocols)
        self._received = b""
        lines = [f"GET {resource} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
                 "Sec-WebSocket-Version: 13"]
        if subprotocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(subprotocols)}")
        lines += [f"{name}: {value}" for name, value in headers]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def receive(self, data: bytes) -> Accepted | Rejected | None:
        received = self._received + data
        end = _HEAD_END.search(received)
        if end is None:
            if len(received) > _MAX_HEAD:
                raise HandshakeFailed("other", f"a response head over {_MAX_HEAD} bytes")
            self._received = received
            return None
        self._received = b""
        lines = received[:end.start()].split(b"\n")
        status = _STATUS_LINE.fullmatch(lines[0].rstrip(b"\r"))
        if status is None:
            raise HandshakeFailed("other", f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
        code = int(status.group(1))
        if code != 101:
            return Rejected(code)
        pairs: list[tuple[str, str]] = []
        for line in lines[1:]:
            line = line.rstrip(b"\r")
            if line[:1] in (b" ", b"\t") and pairs and b"\r" not in line:
                name, value = pairs[-1]  # obs-fold: a space, as RFC 7230 3.2.4 tells a client
                folded = line.strip(b" \t").decode("latin-1")
                pairs[-1] = (name, f"{value} {folded}")
                continue
            field = _FIELD.fullmatch(line)
            if field is None:
                raise HandshakeFailed("other", f"a malformed header line: {line[:80]!r}")
            pairs.append((field.group(1).decode("ascii").lower(), field.group(2).decode("latin-1")))
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        return Accepted(self._check(fields), received[end.end():])

    def _check(self, fields: dict[str, str]) -> str | None:
        """RFC 6455 4.1's checks of a 101, in its order; returns the agreed subprotocol."""
        if fields.get("upgrade", "").lower() != "websocket":
            raise HandshakeFailed("other", "the 101 has no 'Upgrade: websocket'")
        if "upgrade" not in _tokens(fields.get("connection", "")):
            raise HandshakeFailed("other", "the 101 has no 'Connection: Upgrade'")
        if fields.get("sec-websocket-accept") != self._accept:
            raise HandshakeFailed("other", "the 101's Sec-WebSocket-Accept does not match")
        if fields.get("sec-websocket-extensions", "").strip():
            raise HandshakeFailed("other", "the 101 names extensions nobody asked for")
        agreed = fields.get("sec-websocket-protocol")
        if agreed is None:
            return None
        if agreed not in self._subprotocols:
            raise HandshakeFailed(
                "subprotocol", f"the 101 agreed subprotocol {agreed!r}, which was not offered")
        return agreed
