"""Transport tests over real sockets on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from functools import partial

import attrs
import pytest
import trio
import trio.testing
import trustme
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection as _FrameConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from fleetsim.transport import (
    MAX_MESSAGE_SIZE,
    TRANSPORTS,
    ConnectError,
    ConnectionClosed,
    HandshakeRequest,
    PendingConnection,
    _WsprotoConnection,
    open_connection,
    serve_websocket,
)

OCPP = ["ocpp1.6"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------------------- servers


@attrs.define
class EchoServer:
    url: str = ""
    requests: list[HandshakeRequest] = attrs.Factory(list)
    closes: list[ConnectionClosed] = attrs.Factory(list)


async def _echo_handler(server: EchoServer, pending: PendingConnection) -> None:
    server.requests.append(pending.request)
    path = pending.request.path
    if path == "/reject":
        await pending.reject(401, "who are you?")
        return
    if path == "/ignore":
        return
    if path == "/crash":
        raise RuntimeError("handler bug")
    offered = pending.request.subprotocols
    conn = await pending.accept(None if path == "/noproto" or not offered else offered[0])
    try:
        while True:
            text = await conn.receive_text()
            if text.startswith("close:"):
                _, code, reason = text.split(":", 2)
                await conn.aclose(int(code), reason)
                return
            await conn.send_text(text)
    except ConnectionClosed as exc:
        server.closes.append(exc)


async def _start_echo(
    nursery: trio.Nursery, ssl_context: ssl.SSLContext | None = None
) -> EchoServer:
    server = EchoServer()
    handler = partial(_echo_handler, server)
    ports = await nursery.start(
        partial(serve_websocket, handler, "127.0.0.1", 0, ssl_context=ssl_context)
    )
    scheme = "ws" if ssl_context is None else "wss"
    server.url = f"{scheme}://127.0.0.1:{ports[0]}"
    return server


@pytest.fixture
async def echo(nursery: trio.Nursery) -> EchoServer:
    return await _start_echo(nursery)


RawScript = Callable[[trio.SocketStream, WSConnection], Awaitable[None]]


async def _start_raw_server(nursery: trio.Nursery, script: RawScript) -> str:
    """A hand-driven wsproto server, for frames serve_websocket never sends."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            ws = WSConnection(ConnectionType.SERVER)
            request: Request | None = None
            while request is None:
                data = await stream.receive_some()
                if not data:
                    return
                ws.receive_data(bytes(data))
                for event in ws.events():
                    if isinstance(event, Request):
                        request = event
            agreed = request.subprotocols[0] if request.subprotocols else None
            await stream.send_all(ws.send(AcceptConnection(subprotocol=agreed)))
            await script(stream, ws)

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"


async def _serve_until_close(
    stream: trio.SocketStream, ws: WSConnection, on_event: Callable[[Event], None]
) -> None:
    while True:
        data = await stream.receive_some()
        if not data:
            return
        ws.receive_data(bytes(data))
        for event in ws.events():
            on_event(event)
            if isinstance(event, CloseConnection):
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    await stream.send_all(ws.send(event.response()))
                return


async def _wait_until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.01)


# ----------------------------------------------------------------------------- happy path


async def test_round_trip(echo: EchoServer, transport: str) -> None:
    big = "x" * 200_000
    uni = "ünïcødé ⚡ 🚗 — 充电"
    with trio.fail_after(5):
        async with open_connection(
            f"{echo.url}/ocpp/CP00001?token=1",
            subprotocols=OCPP,
            headers=[("Authorization", "Basic Q1AwMDAwMTpzZWNyZXQ=")],
            transport=transport,
        ) as conn:
            assert conn.subprotocol == "ocpp1.6"
            for text in ("[2,\"1\",\"Heartbeat\",{}]", uni, big, ""):
                await conn.send_text(text)
                assert await conn.receive_text() == text
    (request,) = echo.requests
    assert request.path == "/ocpp/CP00001?token=1"
    assert request.subprotocols == ("ocpp1.6",)
    headers = dict(request.headers)
    assert headers["authorization"] == "Basic Q1AwMDAwMTpzZWNyZXQ="
    assert headers["host"] == echo.url.removeprefix("ws://")


async def test_concurrent_senders(echo: EchoServer, transport: str) -> None:
    tasks, per_task = 8, 40

    def message(t: int, i: int) -> str:
        return f"{t}:{i}:" + "y" * (20_000 if i % 10 == 0 else i)

    expected = {message(t, i) for t in range(tasks) for i in range(per_task)}
    received: list[str] = []
    with trio.fail_after(5):
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:

            async def sender(t: int) -> None:
                for i in range(per_task):
                    await conn.send_text(message(t, i))

            async with trio.open_nursery() as nursery:
                for t in range(tasks):
                    nursery.start_soon(sender, t)
                while len(received) < len(expected):
                    received.append(await conn.receive_text())
    assert sorted(received) == sorted(expected)


async def test_binary_message_is_returned_as_text(nursery: trio.Nursery, transport: str) -> None:
    async def script(stream: trio.SocketStream, ws: WSConnection) -> None:
        await stream.send_all(ws.send(Message(data=b'[3,"1",{}]')))
        await _serve_until_close(stream, ws, lambda event: None)

    url = await _start_raw_server(nursery, script)
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport) as conn:
            assert await conn.receive_text() == "[3,\"1\",{}]"


# ----------------------------------------------------------------------------- handshake errors


async def test_http_rejection(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5), pytest.raises(ConnectError) as info:
        async with open_connection(f"{echo.url}/reject", subprotocols=OCPP, transport=transport):
            pytest.fail("should not connect")
    assert info.value.reason == "http_401"
    assert str(info.value) == info.value.detail


async def test_no_subprotocol_agreed(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5), pytest.raises(ConnectError) as info:
        async with open_connection(f"{echo.url}/noproto", subprotocols=OCPP, transport=transport):
            pytest.fail("should not connect")
    assert info.value.reason == "subprotocol"


async def test_handler_without_decision_gets_500(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5):
        for path in ("/ignore", "/crash"):
            with pytest.raises(ConnectError) as info:
                async with open_connection(
                    f"{echo.url}{path}", subprotocols=OCPP, transport=transport
                ):
                    pytest.fail("should not connect")
            assert info.value.reason == "http_500"
        # The crashing handler did not take the server down.
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
            await conn.send_text("still alive")
            assert await conn.receive_text() == "still alive"


async def test_connection_refused(transport: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(5), pytest.raises(ConnectError) as info:
        async with open_connection(
            f"ws://127.0.0.1:{port}/", subprotocols=OCPP, transport=transport
        ):
            pytest.fail("should not connect")
    assert info.value.reason == "refused"
    assert f"127.0.0.1:{port}" in info.value.detail


async def test_handshake_timeout(transport: str, autojump_clock: trio.testing.MockClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel completes TCP handshakes, nobody ever answers
        port = sock.getsockname()[1]
        start = trio.current_time()
        with trio.fail_after(5), pytest.raises(ConnectError) as info:
            async with open_connection(
                f"ws://127.0.0.1:{port}/", subprotocols=OCPP, connect_timeout=0.5,
                transport=transport,
            ):
                pytest.fail("should not connect")
    assert info.value.reason == "timeout"
    assert trio.current_time() - start == pytest.approx(0.5)


async def test_server_hangs_up_during_handshake(nursery: trio.Nursery, transport: str) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, hang_up, listeners)
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(5), pytest.raises(ConnectError) as info:
        async with open_connection(
            f"ws://127.0.0.1:{port}/", subprotocols=OCPP, transport=transport
        ):
            pytest.fail("should not connect")
    assert info.value.reason == "reset"


async def test_bad_url_and_unknown_transport() -> None:
    with pytest.raises(ConnectError) as info:
        async with open_connection("http://127.0.0.1/", subprotocols=OCPP):
            pytest.fail("should not connect")
    assert info.value.reason == "other"
    with pytest.raises(ValueError, match="transport"):
        open_connection("ws://127.0.0.1/", subprotocols=OCPP, transport="carrier-pigeon")


# ----------------------------------------------------------------------------- TLS


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_echo(nursery: trio.Nursery, ca: trustme.CA) -> EchoServer:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    return await _start_echo(nursery, server_context)


async def test_wss_with_trusted_ca(tls_echo: EchoServer, ca: trustme.CA, transport: str) -> None:
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with trio.fail_after(5):
        async with open_connection(
            f"{tls_echo.url}/ocpp/CP1", subprotocols=OCPP, ssl_context=client_context,
            transport=transport,
        ) as conn:
            await conn.send_text("secret ⚡" * 10_000)
            assert await conn.receive_text() == "secret ⚡" * 10_000
            phases = conn.phases
    assert phases is not None and phases.tls_s is not None
    assert phases.tcp_s >= 0 and phases.tls_s > 0 and phases.websocket_s > 0


async def test_plain_connections_have_no_tls_phase(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5):
        async with open_connection(f"{echo.url}/CP1", subprotocols=OCPP,
                                   transport=transport) as conn:
            phases = conn.phases
    assert phases is not None and phases.tls_s is None
    assert phases.tcp_s >= 0 and phases.websocket_s > 0


async def test_wss_with_untrusted_ca(tls_echo: EchoServer, ca: trustme.CA, transport: str) -> None:
    with trio.fail_after(5):
        with pytest.raises(ConnectError) as info:
            async with open_connection(
                tls_echo.url, subprotocols=OCPP, ssl_context=ssl.create_default_context(),
                transport=transport,
            ):
                pytest.fail("should not connect")
        assert info.value.reason == "tls_unknown_ca"
        # The failed TLS handshake did not hurt the server.
        trusted = ssl.create_default_context()
        ca.configure_trust(trusted)
        async with open_connection(
            tls_echo.url, subprotocols=OCPP, ssl_context=trusted, transport=transport
        ) as conn:
            await conn.send_text("ok")
            assert await conn.receive_text() == "ok"


# ----------------------------------------------------------------------------- closing


async def test_peer_closes_cleanly(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5):
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
            await conn.send_text("close:1000:bye")
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive_text()
            assert (info.value.code, info.value.reason, info.value.clean) == (1000, "bye", True)
            with pytest.raises(ConnectionClosed):
                await conn.send_text("too late")


async def test_client_closes_cleanly(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5):
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
            await conn.send_text("ping")
            assert await conn.receive_text() == "ping"
            await conn.aclose(1000, "done")
            await conn.aclose()  # idempotent
            with pytest.raises(ConnectionClosed):
                await conn.receive_text()
        await _wait_until(lambda: bool(echo.closes))
    (closed,) = echo.closes
    assert (closed.code, closed.clean) == (1000, True)


async def test_aclose_while_another_task_receives(
    echo: EchoServer, transport: str, autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(5):
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
            outcome: list[ConnectionClosed] = []

            async def receiver() -> None:
                with pytest.raises(ConnectionClosed) as info:
                    await conn.receive_text()
                outcome.append(info.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receiver)
                await trio.sleep(0.05)
                start = trio.current_time()
                await conn.aclose(1000, "shutdown")
                assert trio.current_time() - start < 1
        await _wait_until(lambda: bool(echo.closes))
    assert len(outcome) == 1
    assert (echo.closes[0].code, echo.closes[0].clean) == (1000, True)


async def test_exit_is_bounded_when_server_keeps_tcp_open(
    nursery: trio.Nursery, transport: str, monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setattr("fleetsim.transport._CLOSE_TIMEOUT", 0.3)

    async def script(stream: trio.SocketStream, ws: WSConnection) -> None:
        await stream.send_all(ws.send(CloseConnection(code=1001, reason="going away")))
        await _serve_until_close(stream, ws, lambda event: None)
        await trio.sleep_forever()  # never closes TCP after the close handshake

    url = await _start_raw_server(nursery, script)
    with trio.fail_after(3):
        async with open_connection(url, subprotocols=OCPP, transport=transport) as conn:
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive_text()
            assert (info.value.code, info.value.clean) == (1001, True)
            start = trio.current_time()
        assert trio.current_time() - start < 1


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_server_aborts_tcp(
    nursery: trio.Nursery, transport: str, how: str, autojump_clock: trio.testing.MockClock,
) -> None:
    async def script(stream: trio.SocketStream, ws: WSConnection) -> None:
        while not await stream.receive_some():
            pass
        if how == "rst":
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    url = await _start_raw_server(nursery, script)
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport) as conn:
            await conn.send_text("hello")
            start = trio.current_time()
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive_text()
            assert trio.current_time() - start < 1
            assert info.value.clean is False
            assert info.value.code is None


async def test_body_exception_propagates_unchanged(echo: EchoServer, transport: str) -> None:
    error = KeyError("from the body")
    with trio.fail_after(5):
        with pytest.raises(KeyError) as info:
            async with open_connection(echo.url, subprotocols=OCPP, transport=transport):
                raise error
        assert info.value is error
        with trio.move_on_after(0.2) as scope:
            async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
                await conn.receive_text()
        assert scope.cancelled_caught
        await _wait_until(lambda: len(echo.closes) == 2)
    assert all(closed.code == 1000 for closed in echo.closes)


# ----------------------------------------------------------------------------- framing


async def test_ping_is_answered_by_receive_text(nursery: trio.Nursery, transport: str) -> None:
    pongs: list[bytes] = []

    def on_event(event: Event) -> None:
        if isinstance(event, Pong):
            pongs.append(bytes(event.payload))

    async def script(stream: trio.SocketStream, ws: WSConnection) -> None:
        await stream.send_all(ws.send(Ping(b"are-you-there")) + ws.send(Message(data="hello")))
        await _serve_until_close(stream, ws, on_event)

    url = await _start_raw_server(nursery, script)
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport) as conn:
            assert await conn.receive_text() == "hello"
            await _wait_until(lambda: bool(pongs))
    assert pongs == [b"are-you-there"]


async def test_fragmented_messages_are_joined(nursery: trio.Nursery, transport: str) -> None:
    text = "hello wörld ⚡ — fragmented"
    encoded = text.encode()
    cut = encoded.index("⚡".encode()) + 1  # split inside a multi-byte character

    async def script(stream: trio.SocketStream, ws: WSConnection) -> None:
        frames = (
            ws.send(Message(data=text[:5], message_finished=False))
            + ws.send(Ping(b"mid-message"))
            + ws.send(Message(data=text[5:], message_finished=True))
            + ws.send(Message(data=encoded[:cut], message_finished=False))
            + ws.send(Message(data=encoded[cut:], message_finished=True))
        )
        for i in range(len(frames)):  # one byte per TCP write
            await stream.send_all(frames[i : i + 1])
            await trio.sleep(0)
        await _serve_until_close(stream, ws, lambda event: None)

    url = await _start_raw_server(nursery, script)
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport) as conn:
            assert await conn.receive_text() == text
            assert await conn.receive_text() == text


async def test_frames_that_come_with_the_handshake_are_read(nursery: trio.Nursery) -> None:
    """A CSMS may send its first CALL in the same TCP segment as the 101, and a frame may be
    cut anywhere after it: none of it is lost to the handshake's parser."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            ws = WSConnection(ConnectionType.SERVER)
            while True:
                ws.receive_data(bytes(await stream.receive_some()))
                if any(isinstance(event, Request) for event in ws.events()):
                    break
            data = ws.send(AcceptConnection(subprotocol="ocpp1.6"))
            frames = b"".join(ws.send(TextMessage(data=f"[{n}]")) for n in range(3))
            cut = len(data) + len(frames) // 2  # inside the second frame
            await stream.send_all((data + frames)[:cut])
            await trio.sleep(0.05)
            await stream.send_all((data + frames)[cut:])
            await _serve_until_close(stream, ws, lambda event: None)

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP) as conn:
            assert [await conn.receive_text() for _ in range(3)] == ["[0]", "[1]", "[2]"]


@pytest.mark.parametrize(("frame", "code"), [
    (bytes((0x81, 2, 0xC3, 0x28)), 1007),  # a text frame that is not UTF-8
    (bytes((0x81, 0x82, 1, 2, 3, 4, 0x5A, 0x5F)), 1002),  # masked, from a server
])
async def test_a_bad_text_frame_is_closed_as_rfc_6455_says(
    nursery: trio.Nursery, transport: str, frame: bytes, code: int
) -> None:
    async def script(stream: trio.SocketStream, ws: WSConnection) -> None:
        await stream.send_all(ws.send(TextMessage(data="[1]")) + frame)
        await _serve_until_close(stream, ws, lambda event: None)

    url = await _start_raw_server(nursery, script)
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport) as conn:
            assert await conn.receive_text() == "[1]"
            with pytest.raises(ConnectionClosed) as closed:
                await conn.receive_text()
    assert closed.value.code == code


# ----------------------------------------------------------------------------- server side


async def _raw_exchange(port: int, request: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        response = b""
        while chunk := await stream.receive_some():
            response += chunk
    return response


async def test_server_reads_frames_that_come_with_the_upgrade_request(echo: EchoServer) -> None:
    port = int(echo.url.rsplit(":", 1)[1])
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="127.0.0.1", target="/CP1", subprotocols=OCPP))
    frames = _FrameConnection(ConnectionType.CLIENT)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(request + frames.send(TextMessage(data="early")))
            texts: list[str] = []
            while len(texts) < 1:
                client.receive_data(bytes(await stream.receive_some()))
                texts += [e.data for e in client.events() if isinstance(e, TextMessage)]
    assert texts == ["early"]


async def test_server_answers_garbage_with_400(echo: EchoServer) -> None:
    port = int(echo.url.rsplit(":", 1)[1])
    with trio.fail_after(5):
        garbage = await _raw_exchange(port, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")
        plain = await _raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with open_connection(echo.url, subprotocols=OCPP) as conn:
            await conn.send_text("fine")
            assert await conn.receive_text() == "fine"
    assert garbage.startswith(b"HTTP/1.1 400 ")
    assert plain.startswith(b"HTTP/1.1 400 ")
    assert echo.requests[-1].path == "/"


async def test_server_drops_silent_clients(nursery: trio.Nursery) -> None:
    async def never_called(pending: PendingConnection) -> None:
        raise AssertionError("no request was sent")

    ports = await nursery.start(
        partial(serve_websocket, never_called, "127.0.0.1", 0, handshake_timeout=0.2)
    )
    with trio.fail_after(2):
        stream = await trio.open_tcp_stream("127.0.0.1", ports[0])
        async with stream:
            assert await stream.receive_some() == b""


async def test_server_answers_client_ping(nursery: trio.Nursery, echo: EchoServer) -> None:
    port = int(echo.url.rsplit(":", 1)[1])
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            ws = WSConnection(ConnectionType.CLIENT)
            await stream.send_all(ws.send(Request(host="127.0.0.1", target="/", subprotocols=OCPP)))
            events: list[Event] = []
            while not any(isinstance(e, TextMessage) for e in events):
                data = await stream.receive_some()
                assert data
                ws.receive_data(bytes(data))
                events.extend(ws.events())
                if isinstance(events[-1], AcceptConnection) and len(events) == 1:
                    await stream.send_all(ws.send(Ping(b"p")) + ws.send(Message(data="m")))
    assert [type(e).__name__ for e in events] == ["AcceptConnection", "Pong", "TextMessage"]


async def _flood_and_never_read(pending: PendingConnection) -> None:
    stream = getattr(pending, "_stream", None)
    if stream is not None:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = await pending.accept("ocpp1.6")
    for i in range(100):  # more than any client-side message queue holds
        await conn.send_text(f'[2,"{i}","X",{{}}]')
    await trio.sleep_forever()


async def test_exit_is_bounded_when_the_peer_stops_reading(
    nursery: trio.Nursery, transport: str
) -> None:
    ports = await nursery.start(partial(serve_websocket, _flood_and_never_read, "127.0.0.1", 0))
    with trio.fail_after(8):
        with trio.move_on_after(1):
            async with open_connection(f"ws://127.0.0.1:{ports[0]}/CP1", subprotocols=OCPP,
                                       transport=transport) as conn:
                await trio.sleep(0.2)
                while True:  # the peer never reads, so this eventually blocks
                    await conn.send_text("x" * 65536)
        nursery.cancel_scope.cancel()


async def _send_huge(pending: PendingConnection) -> None:
    conn = await pending.accept("ocpp1.6")
    with contextlib.suppress(ConnectionClosed):
        await conn.send_text("[" + "1," * MAX_MESSAGE_SIZE + "1]")
        await trio.sleep(5)


async def test_an_oversized_message_closes_with_1009(nursery: trio.Nursery, transport: str) -> None:
    ports = await nursery.start(partial(serve_websocket, _send_huge, "127.0.0.1", 0))
    with trio.fail_after(8):
        async with open_connection(f"ws://127.0.0.1:{ports[0]}/CP1", subprotocols=OCPP,
                                   transport=transport) as conn:
            with pytest.raises(ConnectionClosed) as closed:
                await conn.receive_text()
    assert closed.value.code == 1009


@pytest.mark.parametrize(("characters", "refused"), [
    ((MAX_MESSAGE_SIZE - 4) // 4, False),  # exactly the cap, in bytes
    (MAX_MESSAGE_SIZE // 2, True),  # half the cap in characters, twice it in bytes
])
async def test_the_size_cap_counts_bytes_not_characters(
    nursery: trio.Nursery, transport: str, characters: int, refused: bool
) -> None:
    wide = '["' + "🚗" * characters + '"]'  # four bytes a character in UTF-8

    async def send_wide(pending: PendingConnection) -> None:
        conn = await pending.accept("ocpp1.6")
        with contextlib.suppress(ConnectionClosed):
            await conn.send_text(wide)
            while True:  # until the client closes
                await conn.receive_text()

    ports = await nursery.start(partial(serve_websocket, send_wide, "127.0.0.1", 0))
    with trio.fail_after(8):
        async with open_connection(f"ws://127.0.0.1:{ports[0]}/CP1", subprotocols=OCPP,
                                   transport=transport) as conn:
            if not refused:
                assert await conn.receive_text() == wide
                return
            with pytest.raises(ConnectionClosed) as closed:
                await conn.receive_text()
    assert closed.value.code == 1009


async def test_a_timer_firing_while_refusing_an_oversized_message_changes_nothing() -> None:
    """The charger's deadline may pass just as its read brings the byte over the cap. The rest
    of the message must not then be read as a message of its own, nor a later send find the
    protocol half closed; the CSMS still gets its 1009. Over memory streams: the timing is
    set by trio's scheduling, not by a network."""
    charger_side, csms_side = trio.testing.memory_stream_pair()
    conn = _WsprotoConnection(charger_side, _FrameConnection(ConnectionType.CLIENT), "ocpp1.6",
                              client=True)
    csms = _FrameConnection(ConnectionType.SERVER)
    under = csms.send(TextMessage(data="[" + "1," * (MAX_MESSAGE_SIZE // 2 - 1),
                                  message_finished=False))  # one byte under the cap
    over = csms.send(TextMessage(data="1,", message_finished=False)) + csms.send(
        TextMessage(data="1]", message_finished=True))
    timer = trio.CancelScope()
    seen: list[str | ConnectionClosed] = []

    async def charger() -> None:
        async def step(action: Awaitable[str | None]) -> None:
            try:
                seen.append(await action or "sent")
            except ConnectionClosed as exc:
                seen.append(exc)

        with timer:
            await step(conn.receive_text())
        # as the fleet goes on after its timer fired: read again, then write
        await step(conn.receive_text())
        await step(conn.send_text('[2,"1","Heartbeat",{}]'))
        await conn.abort()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(charger)
            await csms_side.send_all(under)
            await trio.testing.wait_all_tasks_blocked()  # all read: the charger waits for more
            await csms_side.send_all(over)
            timer.cancel()  # before the charger, woken by the data, runs again
        events: list[Event] = []
        while data := await csms_side.receive_some():
            csms.receive_data(bytes(data))
            events.extend(csms.events())
    assert seen and all(isinstance(item, ConnectionClosed) and item.code == 1009
                        for item in seen), seen
    assert [(type(e), getattr(e, "code", None)) for e in events] == [(CloseConnection, 1009)]


async def test_a_ping_awaits_its_pong_without_waiting(echo: EchoServer, transport: str) -> None:
    with trio.fail_after(5):
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
            assert not conn.awaiting_pong
            await conn.ping()
            assert conn.awaiting_pong
            await conn.send_text("after the ping")
            assert await conn.receive_text() == "after the ping"  # the pong came first
            assert not conn.awaiting_pong


# ------------------------------------------------------------------ writes without waiting


async def test_send_now_writes_at_once_on_plain_tcp_and_in_order(
    echo: EchoServer, transport: str,
) -> None:
    with trio.fail_after(5):
        async with open_connection(echo.url, subprotocols=OCPP, transport=transport) as conn:
            written = conn.send_now(["first", "second"])
            # the fast path: one send(2), no task switch; trio-websocket writes from a task
            assert written is (transport == "wsproto")
            if not written:
                await conn.flush()
            assert [await conn.receive_text(), await conn.receive_text()] == ["first", "second"]
            assert conn.ping_now() is (transport == "wsproto")
            await conn.flush()
            await conn.send_text("after the ping")
            assert await conn.receive_text() == "after the ping"
            assert not conn.awaiting_pong


async def test_send_now_on_tls_waits_for_flush(tls_echo: EchoServer, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with trio.fail_after(5):
        async with open_connection(tls_echo.url, subprotocols=OCPP,
                                   ssl_context=context) as conn:
            assert conn.send_now(["over TLS"]) is False
            await conn.flush()
            assert await conn.receive_text() == "over TLS"


async def test_what_the_socket_cannot_take_waits_for_flush_in_order(
    nursery: trio.Nursery,
) -> None:
    go = trio.Event()
    received: list[str] = []

    async def read_later(stream: trio.SocketStream, ws: WSConnection) -> None:
        await go.wait()

        parts: list[str] = []

        def note(event: Event) -> None:
            if isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    received.append("".join(parts))
                    parts.clear()

        await _serve_until_close(stream, ws, note)

    url = await _start_raw_server(nursery, read_later)
    chunk = "x" * 60_000
    with trio.fail_after(10):
        async with open_connection(url, subprotocols=OCPP) as conn:
            sent = 0
            while sent < 2_000 and conn.send_now([f"{sent:05d}{chunk}"]):
                sent += 1
            assert sent < 2_000, "the socket buffers took 120 MB: the peer is reading"
            async with trio.open_nursery() as flushing:
                flushing.start_soon(conn.flush)
                await _wait_until(lambda: conn.writing_since is not None)
                # queued while a flush is under way: that flush writes it too, in order
                assert conn.send_now(["behind the rest"]) is False
                go.set()
            assert conn.send_now(["at once again"]) is True
            await conn.aclose()
    assert len(received) == sent + 3
    assert [int(text[:5]) for text in received[:sent + 1]] == list(range(sent + 1))
    assert received[-2:] == ["behind the rest", "at once again"]
