"""WebSocket transport: the only place that does WebSocket I/O.

Two client implementations share one small `Connection` protocol:

* ``"wsproto"`` (default) drives :mod:`wsproto` directly on a trio stream. It has no
  background task and no channel per connection, so ten thousands of idle charge points
  cost little memory and a round trip costs few context switches.
* ``"trio-websocket"`` wraps :mod:`trio_websocket` and serves as a reference to compare
  the fast path against.

The server side (`serve_websocket`) is used by the embedded CSMS and always uses the
wsproto implementation.
"""

from __future__ import annotations

import contextlib
import http
import ipaddress
import logging
import socket
import ssl
import sys
import types
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from functools import cache
from typing import Any, Final, NoReturn, Protocol, cast

import attrs
import trio
import trio_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection as _FrameConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from fleetsim._groups import leaves
from fleetsim.wsframes import RandomDraws, frame_extent, read_text, text_frame
from fleetsim.wshandshake import (
    Accepted,
    ClientHandshake,
    HandshakeFailed,
    Rejected,
    after_head,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "TRANSPORTS",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "HandshakePhases",
    "HandshakeRequest",
    "PendingConnection",
    "open_connection",
    "serve_websocket",
]

TRANSPORTS: Final = ("wsproto", "trio-websocket")

_RECEIVE_SIZE: Final = 65536
MAX_MESSAGE_SIZE: Final = 1 << 20
"""The largest message accepted, in bytes (as trio-websocket's default, which counts
characters); a bigger one closes with 1009 as soon as its bytes so far are over."""
_CLOSE_TIMEOUT: Final = 2.0
_TW_QUEUE_SIZE: Final = 16
_PING_PAYLOAD: Final = b"fleetsim"
_MASK_KEYS: Final = RandomDraws(4)
_MORE: Final = 0
_HANDED: Final = 1
_TOO_BIG: Final = 2

_logger = logging.getLogger(__name__)
# trio-websocket logs every frame at DEBUG; with thousands of connections even the
# disabled-logger checks add up, and a DEBUG root logger would drown the run.
logging.getLogger("trio-websocket").setLevel(logging.INFO)


class ConnectError(Exception):
    """Handshake failed. `reason` is a short stable label used as a metrics key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class ConnectionClosed(Exception):
    """The connection is gone (either side closed, or it broke)."""

    def __init__(self, code: int | None, reason: str = "", clean: bool = False) -> None:
        super().__init__(code, reason, clean)
        self.code = code
        self.reason = reason
        self.clean = clean

    def __str__(self) -> str:
        how = "closed" if self.clean else "lost"
        return f"websocket {how} (code={self.code}, reason={self.reason!r})"


@attrs.frozen
class HandshakePhases:
    """Seconds each step of opening a connection took: a reconnect storm's cost to the CSMS
    is mostly in one of them (its TLS termination, usually)."""

    tcp_s: float
    tls_s: float | None
    """None on ws://."""
    websocket_s: float


class Connection(Protocol):
    """An open WebSocket; both client transports and the server side satisfy this."""

    subprotocol: str | None
    phases: HandshakePhases | None
    """How long each step of opening it took; None on the server side."""

    async def send_text(self, text: str) -> None: ...

    def send_now(self, texts: Sequence[str]) -> bool:
        """Write `texts` without waiting, if the socket takes them at once; returns whether it
        did. What it could not write waits, in order, for `flush` (raises ConnectionClosed
        when the connection is gone)."""

    def ping_now(self) -> bool:
        """`ping`, without waiting, as `send_now`."""

    async def flush(self) -> None:
        """Write what `send_now` and `ping_now` left."""

    async def receive_text(self) -> str: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...

    async def abort(self) -> None:
        """Drop the TCP connection without a close handshake, as a network outage does."""

    async def ping(self) -> None:
        """Send a WebSocket ping without waiting for its pong."""

    @property
    def awaiting_pong(self) -> bool:
        """A ping went out and its pong has not been read yet (by receive_text, or by
        trio-websocket's reader)."""

    @property
    def writing_since(self) -> float | None:
        """When the write under way (a message, pong, ping or close) began on the trio clock;
        None when nothing is being written. One that lasts means the peer stopped reading."""


_AnyStream = trio.SocketStream | trio.SSLStream[trio.SocketStream]
_CloseInfo = tuple[int | None, str, bool]


def _plain_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The OS socket under a plain TCP stream, for writes that need not wait (see
    `_WsprotoConnection._write_now`); None for TLS. It is trio's private attribute, hence
    getattr: should it change, writes take trio's path (and tests/test_transport.py fails)."""
    if type(stream) is not trio.SocketStream:
        return None
    raw = getattr(stream.socket, "_sock", None)
    return raw if isinstance(raw, socket.socket) else None


async def _receive_some(stream: trio.abc.Stream, raw: socket.socket | None) -> bytes:
    """Read what has arrived. On a plain TCP socket (`raw`): wait until it is readable, then
    one recv(2), where trio's stream first tries a recv that finds nothing."""
    if raw is None:
        return cast("bytes", await stream.receive_some(_RECEIVE_SIZE))
    while True:
        await trio.lowlevel.wait_readable(raw)
        try:
            return raw.recv(_RECEIVE_SIZE)
        except BlockingIOError:
            continue
        except OSError as exc:
            raise trio.BrokenResourceError(exc) from exc


async def _send_head(stream: trio.abc.Stream, raw: socket.socket | None, data: bytes) -> None:
    """Write a handshake's HTTP head: on a plain TCP socket one send(2), which a new
    connection takes whole, rather than trio's scheduler pass per write."""
    if raw is not None:
        try:
            data = data[raw.send(data):]
        except BlockingIOError:
            pass
        except OSError as exc:
            raise trio.BrokenResourceError(exc) from exc
    if data:
        await stream.send_all(data)


def _utf8_size(text: str) -> int:
    """The bytes `text` took on the wire (ASCII, the usual case, costs no encoding)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class _WsprotoConnection:
    """One WebSocket over a trio stream, driven inline by the calling task.

    receive_text() reads the socket itself and keeps surplus bytes for the next call, so a
    connection is just this object, its stream and wsproto's frame parser. Whole text
    messages, nearly all of the traffic, are framed and read by `fleetsim.wsframes`; every
    other frame is handed whole to wsproto, which keeps the protocol's state. Once closing,
    or while a fragmented message is arriving, wsproto reads everything.
    """

    __slots__ = (
        "_broken",
        "_client",
        "_closed",
        "_closing",
        "_eof",
        "_fed",
        "_fragmenting",
        "_inbox",
        "_inpos",
        "_keys",
        "_parts",
        "_parts_size",
        "_proto",
        "_raw",
        "_receiving",
        "_send_lock",
        "_slow",
        "_stream",
        "_unsent",
        "_wakeup",
        "awaiting_pong",
        "phases",
        "subprotocol",
        "writing_since",
    )

    subprotocol: str | None
    _inbox: bytes | bytearray

    def __init__(
        self, stream: trio.abc.Stream, proto: _FrameConnection, subprotocol: str | None,
        client: bool, received: bytes = b"",
    ) -> None:
        """`received`: frames that arrived with the handshake, which `proto` has not seen."""
        self._stream = stream
        self._proto = proto
        self.subprotocol = subprotocol
        self._client = client
        self._keys = _MASK_KEYS if client else None
        self._inbox = received
        self._inpos = 0
        self._fragmenting = False
        self._slow = False
        self._fed = False
        self.phases: HandshakePhases | None = None
        self._send_lock = trio.StrictFIFOLock()
        self._parts: list[str | bytes] | None = None
        self._parts_size = 0
        self._closed: _CloseInfo | None = None
        self._closing = False
        self._broken = False
        self._eof = False
        self._receiving = False
        self._wakeup: trio.Event | None = None
        self._raw = _plain_socket(stream)
        self._unsent = bytearray()
        self.awaiting_pong = False
        self.writing_since: float | None = None

    def _closed_error(self) -> ConnectionClosed:
        assert self._closed is not None
        return ConnectionClosed(*self._closed)

    def _lost(self, reason: str) -> None:
        self._broken = True
        if self._closed is None:
            self._closed = (None, reason, False)

    async def _send_data(self, data: bytes) -> None:
        """Write one or more whole frames; the caller holds the send lock."""
        # Cancellation before anything is written leaves the stream usable; only a
        # cancelled half-written frame has to mark it broken (see the except below).
        await trio.lowlevel.checkpoint_if_cancelled()
        data = self._after_unsent(data)
        self.writing_since = trio.current_time()
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lost(f"send failed: {exc}")
            raise self._closed_error() from None
        except trio.Cancelled:
            self._lost("send cancelled midway")
            raise
        finally:
            self.writing_since = None

    async def send_text(self, text: str) -> None:
        lock = self._send_lock
        try:
            # Uncontended fast path: send_all() is the checkpoint, so the extra schedule
            # point of `async with lock` would only cost CPU (~10% of a round trip).
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            if self._closed is not None:
                raise self._closed_error()
            await self._send_data(self._frame(text))
        finally:
            lock.release()

    async def ping(self) -> None:
        async with self._send_lock:
            if self._closed is not None:
                raise self._closed_error()
            self.awaiting_pong = True
            await self._send_data(self._proto.send(Ping(_PING_PAYLOAD)))

    def _frame(self, text: str) -> bytes:
        if self._proto.state is ConnectionState.OPEN:
            return text_frame(text, self._keys)
        return self._proto.send(TextMessage(data=text))  # wsproto says why it cannot

    def send_now(self, texts: Sequence[str]) -> bool:
        if self._closed is not None:
            raise self._closed_error()
        if len(texts) == 1:
            return self._write_now(self._frame(texts[0]))
        return self._write_now(b"".join([self._frame(text) for text in texts]))

    def ping_now(self) -> bool:
        if self._closed is not None:
            raise self._closed_error()
        self.awaiting_pong = True
        return self._write_now(self._proto.send(Ping(_PING_PAYLOAD)))

    def _write_now(self, data: bytes) -> bool:
        """One non-blocking send(2) on a plain TCP socket: no task switch, no scheduler pass,
        which is most of what a small write costs in trio. Behind a write under way, or on
        TLS, the data waits in `_unsent` for `flush`."""
        raw = self._raw
        if raw is None or self._unsent or self._send_lock.locked():
            self._unsent += data
            return False
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(f"send failed: {exc}")
            raise self._closed_error() from None
        if sent < len(data):
            self._unsent += memoryview(data)[sent:]
            return False
        return True

    def _after_unsent(self, data: bytes) -> bytes:
        """`data` behind what `send_now` left, which now leaves `_unsent`."""
        if not self._unsent:
            return data
        data = bytes(self._unsent) + data
        self._unsent.clear()
        return data

    async def flush(self) -> None:
        if not self._unsent:
            return
        async with self._send_lock:
            while self._unsent:  # what send_now queues meanwhile goes too
                if self._closed is not None:
                    raise self._closed_error()
                await self._send_data(b"")

    async def receive_text(self) -> str:
        if self._receiving:
            raise trio.BusyResourceError("another task is already in receive_text()")
        self._receiving = True
        try:
            proto = self._proto
            while True:
                if self._closed is not None:
                    raise self._closed_error()
                events: Iterator[Event] = iter(())
                if self._fed or self._slow:  # wsproto has events only from what it was fed
                    self._fed = False
                    events = proto.events()
                for event in events:
                    if isinstance(event, TextMessage):
                        if not event.message_finished:
                            if self._add_part(event.data) > MAX_MESSAGE_SIZE:
                                await self._refuse_oversized()
                        elif self._parts is None:
                            return event.data
                        else:
                            if self._add_part(event.data) > MAX_MESSAGE_SIZE:
                                await self._refuse_oversized()
                            parts, self._parts = self._parts, None
                            return "".join(cast("list[str]", parts))
                    elif isinstance(event, BytesMessage):
                        # OCPP peers occasionally send JSON in binary frames.
                        if not event.message_finished:
                            if self._add_part(bytes(event.data)) > MAX_MESSAGE_SIZE:
                                await self._refuse_oversized()
                        elif self._parts is None:
                            return bytes(event.data).decode("utf-8", "replace")
                        else:
                            if self._add_part(bytes(event.data)) > MAX_MESSAGE_SIZE:
                                await self._refuse_oversized()
                            parts, self._parts = self._parts, None
                            return b"".join(cast("list[bytes]", parts)).decode("utf-8", "replace")
                    elif isinstance(event, Ping):
                        async with self._send_lock:
                            # Re-checked under the lock: aclose() may have sent a close.
                            if not self._broken and proto.state is ConnectionState.OPEN:
                                await self._send_data(proto.send(event.response()))
                    elif isinstance(event, Pong):
                        if event.payload == _PING_PAYLOAD:
                            self.awaiting_pong = False
                    elif isinstance(event, CloseConnection):
                        await self._on_close_event(event)
                        raise self._closed_error()
                if self._closed is not None:
                    raise self._closed_error()
                if not self._slow:
                    got = self._read_frame()
                    if type(got) is str:
                        return got
                    if got == _HANDED:
                        continue
                    if got == _TOO_BIG:
                        await self._refuse_oversized()
                try:
                    data = await self._receive_some()
                except trio.BrokenResourceError as exc:
                    self._lost(f"connection broken: {exc}")
                    raise self._closed_error() from None
                except trio.ClosedResourceError:
                    self._lost("connection closed locally")
                    raise self._closed_error() from None
                if not data:
                    self._eof = True
                    self._lost("connection lost without a close frame")
                    raise self._closed_error()
                if not self._slow:
                    inbox, pos = self._inbox, self._inpos
                    if pos >= len(inbox):
                        self._inbox = data
                    else:  # a frame under way: grow in place, not a copy per read
                        if isinstance(inbox, bytearray):
                            del inbox[:pos]
                        else:
                            inbox = bytearray(memoryview(inbox)[pos:])
                        inbox += data
                        self._inbox = inbox
                    self._inpos = 0
                elif proto.state is not ConnectionState.CLOSED:
                    proto.receive_data(data)
        finally:
            self._receiving = False
            if self._wakeup is not None:
                self._wakeup.set()
                self._wakeup = None

    def _read_frame(self) -> str | int:
        """The next whole text message from the bytes received; else _HANDED when a frame
        went to wsproto (its events come next), _MORE when more bytes are needed, _TOO_BIG
        when the next frame is over the message cap."""
        inbox, pos = self._inbox, self._inpos
        extent = frame_extent(inbox, pos)
        if extent is None:
            return _MORE
        start, end = extent
        if end - start > MAX_MESSAGE_SIZE:
            first, second = inbox[pos], inbox[pos + 1]
            if (first & 0x7F > 2 or bool(second & 0x80) is self._client
                    or end - start >= 1 << 63):
                self._to_wsproto()  # not a data frame wsproto would take: it says why (1002)
                return _HANDED
            return _TOO_BIG
        if end > len(inbox):
            return _MORE
        self._inpos = end
        if not self._fragmenting:
            text = read_text(inbox, pos, start, end, masked=not self._client)
            if text is not None:
                return text
        first = inbox[pos]
        if first & 0x0F < 3:  # continuation, text, binary: FIN says whether a message ends
            self._fragmenting = not first & 0x80
        if self._proto.state is not ConnectionState.CLOSED:
            self._proto.receive_data(bytes(inbox[pos:end]))
            self._fed = True
        return _HANDED

    def _to_wsproto(self) -> None:
        """From now on wsproto reads everything, what is left of the inbox first."""
        if self._slow:
            return
        self._slow = True
        rest = self._inbox[self._inpos:]
        self._inbox, self._inpos = b"", 0
        if rest and self._proto.state is not ConnectionState.CLOSED:
            self._proto.receive_data(bytes(rest))

    async def _receive_some(self) -> bytes:
        return await _receive_some(self._stream, self._raw)

    def _add_part(self, part: str | bytes) -> int:
        """Keep a fragment of a message; returns the message's size so far, in bytes."""
        size = _utf8_size(part) if isinstance(part, str) else len(part)
        if self._parts is None:
            self._parts = [part]
            self._parts_size = size
        else:
            self._parts.append(part)
            self._parts_size += size
        return self._parts_size

    async def _refuse_oversized(self) -> NoReturn:
        """A peer may not make us buffer without bound: close with 1009 (message too big).

        The connection counts as closed before the first checkpoint, and the close frame is
        written shielded (bounded): a charger timer that fires meanwhile must neither leave
        the rest of the message to be read as a new one nor wsproto half closed.
        """
        self._parts = None
        if self._closed is None:
            self._closed = (1009, f"message over {MAX_MESSAGE_SIZE} bytes", False)
        try:
            with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT):
                async with self._send_lock:
                    if not self._broken and self._proto.state is ConnectionState.OPEN:
                        with contextlib.suppress(ConnectionClosed):
                            await self._send_data(self._proto.send(
                                CloseConnection(code=1009, reason="message too big")))
        finally:
            self._broken = True
            await trio.aclose_forcefully(self._stream)
        raise self._closed_error()

    async def _on_close_event(self, event: CloseConnection) -> None:
        proto = self._proto
        if proto.state is ConnectionState.CLOSED:
            if self._closed is None:
                self._closed = (event.code, event.reason or "", True)
            return
        # REMOTE_CLOSING: the peer started the close and expects our echo. OPEN: wsproto
        # rejected the peer's data (ParseFailed) and reports the code we should close with.
        clean = proto.state is ConnectionState.REMOTE_CLOSING
        self._closed = (event.code, event.reason or "", clean)
        reply = event.response() if clean else event
        async with self._send_lock:
            if not self._broken and proto.state in (
                ConnectionState.OPEN,
                ConnectionState.REMOTE_CLOSING,
            ):
                with contextlib.suppress(ConnectionClosed):
                    await self._send_data(proto.send(reply))

    async def abort(self) -> None:
        self._closing = self._broken = True
        if self._closed is None:
            self._closed = (None, "aborted", False)
        _end_frame_parser(self._proto)
        await trio.aclose_forcefully(self._stream)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close handshake bounded by 2 s, then close the stream; never raises.

        Cancellation still propagates (after the stream is closed).
        """
        if self._closing:
            return
        self._closing = True
        try:
            # The peer may already be gone in any number of ways; none of them matter now.
            with contextlib.suppress(Exception), trio.move_on_after(_CLOSE_TIMEOUT):
                await self._close_handshake(code, reason)
        finally:
            self._broken = True
            if self._closed is None:
                self._closed = (code, reason, False)
            _end_frame_parser(self._proto)
            await trio.aclose_forcefully(self._stream)

    async def _close_handshake(self, code: int, reason: str) -> None:
        proto = self._proto
        if self._closed is None:
            self._closed = (code, reason, False)
        if self._broken:
            return
        if proto.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            async with self._send_lock:
                if self._broken:
                    return
                data = proto.send(CloseConnection(code=code, reason=reason or None))
                await self._stream.send_all(self._after_unsent(data))
        # Wait for the peer's close frame; a client also waits for the server to close
        # TCP first (RFC 6455 7.1.1) so that TIME_WAIT lands on the server, not on the
        # load generator's ephemeral ports.
        while not self._eof:
            if self._receiving:
                self._wakeup = wakeup = trio.Event()
                await wakeup.wait()
                continue
            self._to_wsproto()
            if proto.state is not ConnectionState.CLOSED:
                for _ in proto.events():
                    pass
            if proto.state is ConnectionState.CLOSED:
                code_, reason_, _clean = self._closed
                self._closed = (code_, reason_, True)
                if not self._client:
                    return
            data = cast("bytes", await self._stream.receive_some(_RECEIVE_SIZE))
            if not data:
                self._eof = True
            elif proto.state is not ConnectionState.CLOSED:
                proto.receive_data(data)


class _WatchedWebSocket(trio_websocket.WebSocketConnection):
    """trio-websocket's connection with what `Connection` asks of both transports: the message
    cap in bytes, every write (its reader's pongs and closes too) visible in `writing_since`,
    and a ping that does not wait for its pong."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writing_since: float | None = None
        self.awaiting_pong = False
        self._writers = 0
        self.tls_error: ssl.SSLError | None = None
        """What broke the stream, if TLS did: trio-websocket drops it, and a TLS alert (a
        refused client certificate, under TLS 1.3) arrives only after the handshake."""

    async def _abort_web_socket(self) -> None:
        # called while handling the stream's error
        cause = getattr(sys.exception(), "__cause__", None)
        if isinstance(cause, ssl.SSLError):
            self.tls_error = cause.with_traceback(None)  # no cycle through our frames
        await super()._abort_web_socket()

    async def _handle_message_event(self, event: TextMessage | BytesMessage) -> None:
        if isinstance(event, TextMessage) and not event.data.isascii():
            # trio-websocket adds len(), characters: make it the bytes
            self._message_size += _utf8_size(event.data) - len(event.data)
        await super()._handle_message_event(event)

    async def _handle_pong_event(self, event: Pong) -> None:
        if event.payload == _PING_PAYLOAD:
            self.awaiting_pong = False
        await super()._handle_pong_event(event)

    async def _send(self, event: Event) -> None:
        # Writers queue on trio-websocket's lock: a write that ends is progress, so the
        # next one's clock starts then.
        if not self._writers:
            self.writing_since = trio.current_time()
        self._writers += 1
        try:
            await super()._send(event)
        finally:
            self._writers -= 1
            self.writing_since = trio.current_time() if self._writers else None

    async def send_ping(self) -> None:
        if self._close_reason is not None:
            raise trio_websocket.ConnectionClosed(self._close_reason)
        self.awaiting_pong = True
        await self._send(Ping(_PING_PAYLOAD))


class _TrioWebsocketConnection:
    """Adapts a trio_websocket.WebSocketConnection to `Connection`."""

    __slots__ = ("_ping_due", "_reader_done", "_stream", "_unsent", "_ws", "phases",
                 "subprotocol")

    subprotocol: str | None

    def __init__(
        self, ws: _WatchedWebSocket, stream: _AnyStream, reader_done: trio.Event
    ) -> None:
        self._ws = ws
        self._stream = stream
        self._reader_done = reader_done
        self.subprotocol = ws.subprotocol
        self.phases: HandshakePhases | None = None
        self._unsent: list[str] = []
        self._ping_due = False

    @property
    def awaiting_pong(self) -> bool:
        return self._ws.awaiting_pong

    @property
    def writing_since(self) -> float | None:
        return self._ws.writing_since

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise _from_tw_closed(exc) from None

    async def ping(self) -> None:
        try:
            await self._ws.send_ping()
        except trio_websocket.ConnectionClosed as exc:
            raise _from_tw_closed(exc) from None

    def send_now(self, texts: Sequence[str]) -> bool:
        """trio-websocket writes only from a task: everything waits for `flush`."""
        self._unsent.extend(texts)
        return False

    def ping_now(self) -> bool:
        self._ping_due = True
        return False

    async def flush(self) -> None:
        while self._unsent or self._ping_due:
            if self._ping_due:
                self._ping_due = False
                await self.ping()
            else:
                await self.send_text(self._unsent.pop(0))

    async def receive_text(self) -> str:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _from_tw_closed(exc) from None
        if isinstance(message, str):
            return message
        return message.decode("utf-8", "replace")

    async def abort(self) -> None:
        _end_frame_parser(getattr(self._ws._wsproto, "connection", None))
        await trio.aclose_forcefully(self._stream)
        await self._ws._recv_channel.aclose()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        try:
            with contextlib.suppress(Exception), trio.move_on_after(_CLOSE_TIMEOUT):
                await self._ws.aclose(code, reason or None)
                # After a peer-initiated close trio-websocket returns at once and its
                # reader waits, unbounded, for the server to close TCP; give it the
                # same budget, then close the stream ourselves, which ends the reader.
                await self._reader_done.wait()
        finally:
            _end_frame_parser(getattr(self._ws._wsproto, "connection", None))
            await trio.aclose_forcefully(self._stream)
            # trio-websocket's reader may be parked on its full message queue, shielded from
            # cancellation; closing the queue's receiving end wakes it (it expects that).
            await self._ws._recv_channel.aclose()


def _from_tw_closed(exc: trio_websocket.ConnectionClosed) -> ConnectionClosed:
    info = exc.reason
    if info is None:
        return ConnectionClosed(None, "connection lost", False)
    if info.code == 1006:  # trio-websocket's marker for "no close frame"
        return ConnectionClosed(None, info.reason or "connection lost", False)
    return ConnectionClosed(info.code, info.reason or "", True)


def _end_frame_parser(proto: _FrameConnection | None) -> None:
    """Free a finished connection's wsproto frame parser without the cycle collector.

    wsproto's FrameProtocol keeps its parser generator, whose frame refers back to it: a
    reference cycle that ends by itself only when a close frame has been parsed past. Any
    other end (a drop, our own close) leaves the parser and its buffers to the cycle
    collector, which hardly runs here (see `fleetsim.collector`). Closing the generator
    breaks the cycle. The attributes are wsproto's private ones, hence getattr: should they
    change, this does nothing (and tests/test_garbage.py fails).
    """
    parser = getattr(getattr(proto, "_proto", None), "_parse_more", None)
    if isinstance(parser, types.GeneratorType):
        parser.close()


# --------------------------------------------------------------------------- client


@attrs.frozen
class _Target:
    secure: bool
    host: str
    port: int
    resource: str

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == (443 if self.secure else 80):
            return host
        return f"{host}:{self.port}"


def _parse_url(url: str) -> _Target:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConnectError("other", f"invalid websocket URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ConnectError("other", f"invalid websocket URL {url!r}: scheme must be ws or wss")
    if not parts.hostname:
        raise ConnectError("other", f"invalid websocket URL {url!r}: no host")
    secure = scheme == "wss"
    resource = parts.path or "/"
    if parts.query:
        resource = f"{resource}?{parts.query}"
    return _Target(secure, parts.hostname, port or (443 if secure else 80), resource)


@cache
def _default_ssl_context() -> ssl.SSLContext:
    # Loading the system trust store costs milliseconds; do it once, not per charger.
    return ssl.create_default_context()


def _exception_chain(exc: BaseException, *, context: bool = True) -> Iterator[BaseException]:
    """`exc`, its group members and causes, and (with `context`) what it was raised during."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        if current.__cause__ is not None:
            stack.append(current.__cause__)
        elif (context and current.__context__ is not None
              and not current.__suppress_context__):
            stack.append(current.__context__)


_TLS_VERIFY_REASONS: Final = {
    9: "tls_expired",  # X509_V_ERR_CERT_NOT_YET_VALID: outside its validity, as expired
    10: "tls_expired",  # X509_V_ERR_CERT_HAS_EXPIRED
    2: "tls_unknown_ca",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    7: "tls_unknown_ca",  # X509_V_ERR_CERT_SIGNATURE_FAILURE: a trusted CA's name, not its key
    18: "tls_unknown_ca",  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: "tls_unknown_ca",  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20: "tls_unknown_ca",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "tls_unknown_ca",  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    62: "tls_hostname",  # X509_V_ERR_HOSTNAME_MISMATCH
    64: "tls_hostname",  # X509_V_ERR_IP_ADDRESS_MISMATCH
}


def _tls_reason(exc: ssl.SSLError) -> str:
    """What went wrong in a TLS handshake, as a metrics label: our check of the server's
    certificate (`tls_unknown_ca`, `tls_expired`, `tls_hostname`), the server's alert about
    ours or about the handshake (`tls_rejected`: a bad or missing client certificate), or
    anything else (`tls`)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _TLS_VERIFY_REASONS.get(exc.verify_code, "tls")
    if "ALERT" in (exc.reason or ""):
        return "tls_rejected"
    return "tls"


def _connect_error(exc: BaseException, target: _Target) -> ConnectError:
    """Classify a failure while opening a connection into a stable metrics label."""
    where = target.netloc

    def find(*types: type[BaseException]) -> BaseException | None:
        for item in _exception_chain(exc):
            if isinstance(item, types):
                return item
        return None

    if isinstance(exc, ConnectError):
        return exc
    if find(ConnectionRefusedError):
        return ConnectError("refused", f"connection refused by {where}")
    if (found := find(socket.gaierror)) is not None:
        return ConnectError("dns", f"cannot resolve {target.host!r}: {found}")
    if find(trio.TooSlowError, TimeoutError):
        return ConnectError("timeout", f"timed out connecting to {where}")
    if (found := find(trio_websocket.ConnectionRejected)) is not None:
        status = cast("trio_websocket.ConnectionRejected", found).status_code
        return ConnectError(
            f"http_{status}", f"{where} rejected the websocket handshake with HTTP {status}"
        )
    if (found := find(ssl.SSLError)) is not None:
        return ConnectError(_tls_reason(cast("ssl.SSLError", found)),
                            f"TLS handshake with {where} failed: {found}")
    if find(
        ConnectionResetError,
        ConnectionAbortedError,
        BrokenPipeError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        EOFError,
    ):
        return ConnectError("reset", f"{where} closed the connection during the handshake")
    return ConnectError("other", f"cannot connect to {where}: {exc!r}")


def _forget_tracebacks(exc: BaseException) -> None:
    """Drop the tracebacks of a failure to connect, once classified.

    A traceback holds its frames and they their locals: trio's open_tcp_stream keeps each
    failed attempt's error in a list its frames refer to, a cycle (error, traceback, frame,
    list, error) that only the cycle collector would free (see `fleetsim.collector`). The
    context is left alone: an outer exception being handled keeps its traceback.
    """
    for current in _exception_chain(exc, context=False):
        current.__traceback__ = None


class _Phase:
    """How far an opening connection got: a timeout in the TLS handshake has its own reason
    (a server too busy for handshakes is the usual bottleneck of a reconnect storm)."""

    __slots__ = ("in_tls", "started", "tcp_at", "tls_at")

    def __init__(self) -> None:
        self.in_tls = False
        self.started = trio.current_time()
        self.tcp_at = self.started
        self.tls_at: float | None = None

    def ended(self) -> HandshakePhases:
        """The phases of a connection whose WebSocket handshake just ended."""
        now = trio.current_time()
        opened = self.tls_at if self.tls_at is not None else self.tcp_at
        tls_s = None if self.tls_at is None else self.tls_at - self.tcp_at
        return HandshakePhases(self.tcp_at - self.started, tls_s, now - opened)


@contextmanager
def _classified(target: _Target, connect_timeout: float) -> Iterator[_Phase]:
    """Turn whatever opening a connection raised into a `ConnectError` with a reason."""
    phase = _Phase()
    try:
        yield phase
    except ConnectError:
        raise
    except trio.TooSlowError as exc:
        if phase.in_tls:
            raise ConnectError(
                "tls_handshake_timeout",
                f"no TLS handshake with {target.netloc} within {connect_timeout} s") from exc
        raise ConnectError(
            "timeout", f"no websocket connection to {target.netloc} within {connect_timeout} s"
        ) from exc
    except Exception as exc:
        _forget_tracebacks(exc)
        raise _connect_error(exc, target) from exc


def _weak_handshake(stream: trio.SSLStream[trio.SocketStream]) -> None:
    """Keep a TLS stream out of a reference cycle with itself.

    trio's SSLStream holds its handshake as a bound method of itself (in a private `_Once`):
    a cycle per TLS connection, which leaves the stream, its OpenSSL state and its buffers
    to the cycle collector (see `fleetsim.collector`). Have it call the method through a
    weak reference instead. The attributes are trio's private ones, hence getattr: should
    they change, this does nothing (and tests/test_garbage.py fails).
    """
    method = getattr(getattr(stream, "_handshook", None), "_afn", None)
    if method is None or getattr(method, "__self__", None) is not stream:
        return
    handshake = weakref.WeakMethod(method)

    async def weak_handshake() -> None:
        bound = handshake()
        assert bound is not None  # only the stream itself calls it
        await bound()

    stream._handshook._afn = weak_handshake


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """One connect(2) to an IP address; a host name goes through trio's happy eyeballs, whose
    resolver call and nursery per connection are a tenth of a charger's boot."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return await trio.open_tcp_stream(host, port)
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def _open_stream(target: _Target, ssl_context: ssl.SSLContext | None,
                       phase: _Phase) -> _AnyStream:
    """TCP connect, plus an eager TLS handshake so certificate errors surface here."""
    tcp = await _open_tcp(target.host, target.port)
    phase.tcp_at = trio.current_time()
    if not target.secure:
        return tcp
    context = ssl_context if ssl_context is not None else _default_ssl_context()
    tls = trio.SSLStream(tcp, context, server_hostname=target.host, https_compatible=True)
    _weak_handshake(tls)
    phase.in_tls = True
    try:
        await tls.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(tls)
        raise
    phase.in_tls = False
    phase.tls_at = trio.current_time()
    return tls


def _encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def _wsproto_handshake(
    stream: _AnyStream,
    target: _Target,
    subprotocols: Sequence[str],
    headers: Sequence[tuple[str, str]],
) -> _WsprotoConnection:
    try:
        handshake = ClientHandshake(target.host_header, target.resource, subprotocols, headers)
    except ValueError as exc:
        raise ConnectError("other", f"cannot send the websocket handshake: {exc}") from None
    raw = _plain_socket(stream)
    await _send_head(stream, raw, handshake.request)
    while True:
        data = await _receive_some(stream, raw)
        if not data:
            raise ConnectError(
                "reset", f"{target.netloc} closed the connection during the websocket handshake"
            )
        try:
            outcome = handshake.receive(data)
        except HandshakeFailed as exc:
            raise ConnectError(
                exc.reason, f"invalid websocket handshake response from {target.netloc}: {exc}"
            ) from None
        if isinstance(outcome, Accepted):
            return _WsprotoConnection(stream, _FrameConnection(ConnectionType.CLIENT),
                                      outcome.subprotocol, client=True, received=outcome.rest)
        if isinstance(outcome, Rejected):
            raise ConnectError(
                f"http_{outcome.status}",
                f"{target.netloc} rejected the websocket handshake with HTTP {outcome.status}",
            )


def _frames_after_head(ws: WSConnection, received: bytes) -> tuple[_FrameConnection, bytes]:
    """The frame parser of a server connection whose handshake `ws` just completed, and the
    frames that arrived after the upgrade request (`received` is every byte the handshake
    read). wsproto hands such frames to its own parser, where `fleetsim.wsframes` cannot
    read them: then a new parser goes with them, and wsproto's is ended."""
    proto = ws.connection
    assert proto is not None
    rest = after_head(received)
    if not rest:
        return proto, b""
    _end_frame_parser(proto)
    return _FrameConnection(ConnectionType.SERVER), rest


def _subprotocol_error(target: _Target, subprotocols: Sequence[str]) -> ConnectError:
    return ConnectError(
        "subprotocol", f"{target.netloc} agreed none of the subprotocols {list(subprotocols)}"
    )


async def _connect_wsproto(
    url: str,
    subprotocols: Sequence[str],
    ssl_context: ssl.SSLContext | None,
    headers: Sequence[tuple[str, str]],
    connect_timeout: float,
) -> _WsprotoConnection:
    target = _parse_url(url)
    with _classified(target, connect_timeout) as phase, trio.fail_after(connect_timeout):
        stream = await _open_stream(target, ssl_context, phase)
        try:
            conn = await _wsproto_handshake(stream, target, subprotocols, headers)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        conn.phases = phase.ended()
    if subprotocols and conn.subprotocol is None:
        await conn.aclose(1002, "no subprotocol agreed")
        raise _subprotocol_error(target, subprotocols)
    return conn


@asynccontextmanager
async def _open_wsproto(
    url: str,
    subprotocols: Sequence[str],
    ssl_context: ssl.SSLContext | None,
    headers: Sequence[tuple[str, str]],
    connect_timeout: float,
) -> AsyncIterator[Connection]:
    conn = await _connect_wsproto(url, subprotocols, ssl_context, headers, connect_timeout)
    try:
        yield conn
    except BaseException:
        # Shielded (and bounded by aclose's own timeout) so the body's exception is what
        # propagates, not a Cancelled raised by the cleanup.
        with trio.CancelScope(shield=True):
            await conn.aclose()
        raise
    await conn.aclose()


class _ReaderWatch:
    """Runs trio-websocket's reader task, where wrap_client_stream would use a nursery.

    trio-websocket waits for the handshake forever when its reader task ends first
    (the server hung up), which would report a "reset" as a "timeout" much later.
    The reader is also shielded: if it were cancelled together with the body, the
    close handshake in aclose() could never read the peer's reply and would always
    wait the full timeout. It ends anyway once the stream is closed, which every exit
    path does.
    """

    __slots__ = ("_nursery", "done", "ended_early", "scope")

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.scope = trio.CancelScope()
        self.ended_early = False
        self.done = trio.Event()

    def start_soon(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._nursery.start_soon(self._run, fn)

    async def _run(self, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            with trio.CancelScope(shield=True):
                await fn()
        finally:
            self.done.set()
        if not self.scope.cancel_called:
            self.ended_early = True
            self.scope.cancel()


async def _trio_websocket_handshake(
    nursery: trio.Nursery,
    target: _Target,
    subprotocols: Sequence[str],
    ssl_context: ssl.SSLContext | None,
    headers: Sequence[tuple[str, str]],
    connect_timeout: float,
) -> _TrioWebsocketConnection:
    with _classified(target, connect_timeout) as phase, trio.fail_after(connect_timeout):
        stream = await _open_stream(target, ssl_context, phase)
        watch = _ReaderWatch(nursery)
        try:
            with watch.scope:
                # trio_websocket.wrap_client_stream, with the subclass
                ws = _WatchedWebSocket(
                    stream,
                    WSConnection(ConnectionType.CLIENT),
                    host=target.host_header,
                    path=target.resource,
                    client_subprotocols=list(subprotocols),
                    client_extra_headers=_encode_headers(headers),
                    message_queue_size=_TW_QUEUE_SIZE,
                    max_message_size=MAX_MESSAGE_SIZE,
                    receive_buffer_size=_RECEIVE_SIZE,
                )
                watch.start_soon(ws._reader_task)
                await ws._open_handshake.wait()
            # The handshake finished; the reader ending later is not our business.
            watch.scope.cancel()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        if watch.ended_early:
            await trio.aclose_forcefully(stream)
            if ws.tls_error is not None:
                raise _connect_error(ws.tls_error, target)
            raise ConnectError(
                "reset",
                f"{target.netloc} closed the connection during the websocket handshake",
            )
        phases = phase.ended()
    conn = _TrioWebsocketConnection(ws, stream, watch.done)
    conn.phases = phases
    if subprotocols and conn.subprotocol is None:
        await conn.aclose(1002, "no subprotocol agreed")
        raise _subprotocol_error(target, subprotocols)
    return conn


def _pick_error(
    group: BaseExceptionGroup[BaseException],
    body_error: BaseException | None,
    entered: bool,
    target: _Target,
) -> BaseException:
    """Unwrap the nursery's exception group into the single exception callers expect."""
    found = leaves(group)
    errors = [leaf for leaf in found if not isinstance(leaf, trio.Cancelled)]
    if body_error is not None and (not isinstance(body_error, trio.Cancelled) or not errors):
        return body_error
    if errors:
        if not entered and isinstance(errors[0], Exception):
            return _connect_error(errors[0], target)
        return errors[0]
    return found[0]


@asynccontextmanager
async def _open_trio_websocket(
    url: str,
    subprotocols: Sequence[str],
    ssl_context: ssl.SSLContext | None,
    headers: Sequence[tuple[str, str]],
    connect_timeout: float,
) -> AsyncIterator[Connection]:
    target = _parse_url(url)
    conn: _TrioWebsocketConnection | None = None
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            conn = await _trio_websocket_handshake(
                nursery, target, subprotocols, ssl_context, headers, connect_timeout
            )
            try:
                yield conn
            except BaseException as exc:
                body_error = exc
                with trio.CancelScope(shield=True):
                    await conn.aclose()
                raise
            await conn.aclose()
    except BaseExceptionGroup as group:
        error = _pick_error(group, body_error, conn is not None, target)
    else:
        return
    # This frame goes into the error's traceback: no local of it may lead back to the error.
    body_error = None
    try:
        raise error
    finally:
        del error


def open_connection(
    url: str,
    *,
    subprotocols: Sequence[str],
    ssl_context: ssl.SSLContext | None = None,
    headers: Sequence[tuple[str, str]] = (),
    connect_timeout: float = 10.0,
    transport: str = "wsproto",
) -> AbstractAsyncContextManager[Connection]:
    """Connect to a ws:// or wss:// URL; entering raises ConnectError, exiting closes.

    The whole entry (TCP, TLS and WebSocket handshake) is bounded by `connect_timeout`.
    """
    if transport == "wsproto":
        return _open_wsproto(url, subprotocols, ssl_context, headers, connect_timeout)
    if transport == "trio-websocket":
        return _open_trio_websocket(url, subprotocols, ssl_context, headers, connect_timeout)
    raise ValueError(f"unknown transport {transport!r}; expected one of {TRANSPORTS}")


# --------------------------------------------------------------------------- server


@attrs.frozen
class HandshakeRequest:
    """What the client asked for in its HTTP upgrade request."""

    path: str
    subprotocols: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    client_cn: str | None = None
    """The common name of the client's verified TLS certificate, if it sent one."""
    client_serial: int | None = None
    """That certificate's serial number."""


def _http_response(status: int, body: str, extra: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    payload = body.encode("utf-8")
    head = [
        f"HTTP/1.1 {status} {phrase}".encode("latin-1"),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: " + str(len(payload)).encode("ascii"),
        b"connection: close",
    ]
    head.extend(name + b": " + value for name, value in extra)
    return b"\r\n".join(head) + b"\r\n\r\n" + payload


_PENDING: Final = 0
_ACCEPTED: Final = 1
_REJECTED: Final = 2


class PendingConnection:
    """A WebSocket upgrade request waiting for the handler to accept or reject it."""

    __slots__ = ("_conn", "_received", "_state", "_stream", "_ws", "request")

    def __init__(
        self, request: HandshakeRequest, stream: _AnyStream, ws: WSConnection, received: bytes,
    ) -> None:
        self.request = request
        self._stream = stream
        self._ws: WSConnection | None = ws
        self._received = received
        self._state = _PENDING
        self._conn: _WsprotoConnection | None = None

    async def accept(self, subprotocol: str | None) -> Connection:
        """Complete the handshake; `subprotocol` must be one the client offered, or None."""
        if self._state != _PENDING or self._ws is None:
            raise RuntimeError("connection was already accepted or rejected")
        ws = self._ws
        try:
            data = ws.send(AcceptConnection(subprotocol=subprotocol))
        except LocalProtocolError as exc:
            raise ValueError(str(exc)) from None
        self._state = _ACCEPTED
        self._ws = None  # drop h11's buffers; only the frame parser is needed from now on
        proto, rest = _frames_after_head(ws, self._received)
        conn = _WsprotoConnection(self._stream, proto, subprotocol, client=False, received=rest)
        self._received = b""
        self._conn = conn
        async with conn._send_lock:
            await conn._send_data(data)
        return conn

    async def reject(self, status: int, body: str = "") -> None:
        """Answer the upgrade request with a plain HTTP response; the stream is then closed."""
        if self._state != _PENDING:
            raise RuntimeError("connection was already accepted or rejected")
        self._state = _REJECTED
        self._ws = None
        try:
            await self._stream.send_all(_http_response(status, body))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ConnectionClosed(None, f"send failed: {exc}", False) from None

    async def _finish(self) -> None:
        if self._state == _PENDING:
            with contextlib.suppress(ConnectionClosed):
                await self.reject(500, "handler neither accepted nor rejected the connection")
        elif self._conn is not None:
            await self._conn.aclose()


_CONNECTION_ERRORS: Final = (
    ConnectionClosed,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    ssl.SSLError,
    OSError,
)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_connection_error(inner) for inner in exc.exceptions)
    return isinstance(exc, _CONNECTION_ERRORS)


def _client_serial(stream: _AnyStream) -> int | None:
    if not isinstance(stream, trio.SSLStream):
        return None
    serial = (stream.getpeercert() or {}).get("serialNumber")
    return int(serial, 16) if isinstance(serial, str) else None


def _client_cn(stream: _AnyStream) -> str | None:
    if not isinstance(stream, trio.SSLStream):
        return None
    cert = stream.getpeercert()  # only a verified one: the server asked for and checked it
    for rdn in (cert or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


async def _receive_upgrade_request(stream: _AnyStream) -> PendingConnection | None:
    ws = WSConnection(ConnectionType.SERVER)
    received = b""
    while True:
        data = cast("bytes", await stream.receive_some(_RECEIVE_SIZE))
        if not data:
            return None
        received += data
        try:
            ws.receive_data(data)
        except RemoteProtocolError as exc:
            hint = exc.event_hint
            if isinstance(hint, RejectConnection):
                response = _http_response(hint.status_code, f"{exc}\n", hint.headers)
            else:
                response = _http_response(400, f"{exc}\n")
            await stream.send_all(response)
            return None
        for event in ws.events():
            if isinstance(event, Request):
                headers = (("host", event.host), *(
                    (name.decode("latin-1").lower(), value.decode("latin-1"))
                    for name, value in event.extra_headers
                ))
                request = HandshakeRequest(event.target, tuple(event.subprotocols), headers,
                                           _client_cn(stream), _client_serial(stream))
                return PendingConnection(request, stream, ws, received)


async def _send_tls_alert(tcp: trio.SocketStream, tls: trio.SSLStream[trio.SocketStream]
                          ) -> None:
    """Send the alert OpenSSL wrote when a server-side handshake failed (a missing, unknown
    or expired client certificate), and close gently, as real TLS servers do: trio drops it,
    and the client would see a bare reset instead of why. The buffer is trio's private
    attribute, hence getattr: should it change, this sends nothing (tests/test_security.py
    fails)."""
    outgoing = getattr(tls, "_outgoing", None)
    if not isinstance(outgoing, ssl.MemoryBIO) or not outgoing.pending:
        return
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await tcp.send_all(outgoing.read())
        await tcp.send_eof()
        # read what the client sent meanwhile (its request, under TLS 1.3), so that closing
        # sends no reset, which could overtake the alert
        with trio.move_on_after(1):
            for _ in range(64):
                if not await tcp.receive_some(_RECEIVE_SIZE):
                    break


async def _serve_connection(
    tcp: trio.SocketStream,
    handler: Callable[[PendingConnection], Awaitable[None]],
    ssl_context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> None:
    stream: _AnyStream = tcp
    pending: PendingConnection | None = None
    try:
        with trio.move_on_after(handshake_timeout):
            if ssl_context is not None:
                stream = trio.SSLStream(tcp, ssl_context, server_side=True, https_compatible=True)
                _weak_handshake(stream)
                try:
                    await stream.do_handshake()
                except trio.BrokenResourceError:
                    await _send_tls_alert(tcp, stream)
                    raise
            pending = await _receive_upgrade_request(stream)
        if pending is None:
            return
        try:
            await handler(pending)
        finally:
            await pending._finish()
    except Exception as exc:
        if not _is_connection_error(exc):
            path = pending.request.path if pending is not None else "?"
            _logger.error("websocket handler for %s failed", path, exc_info=exc)
    finally:
        await trio.aclose_forcefully(stream)


async def serve_websocket(
    handler: Callable[[PendingConnection], Awaitable[None]],
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    handshake_timeout: float = 10.0,
    task_status: trio.TaskStatus[list[int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept WebSocket connections forever, calling `handler` once per upgrade request.

    Errors of a single connection are contained (connection errors silently, handler
    bugs logged), so one misbehaving charge point cannot take the CSMS down.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    ports = [listener.socket.getsockname()[1] for listener in listeners]

    async def serve_one(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, handler, ssl_context, handshake_timeout)

    task_status.started(ports)
    await trio.serve_listeners(serve_one, listeners)
