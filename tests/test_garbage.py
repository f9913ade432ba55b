"""A connection's life leaves no cyclic garbage, on either side, however it ends.

The collector helper parks every live object outside the cycle collector for the whole run
(`fleetsim.collector`), so anything only the cycle collector could free would pile up, once
per connection, until the run ends: the soak benchmark saw it as ~1 KB of RSS per reconnect.
These tests make connections with the collector off and count what a collection then frees.
"""

from __future__ import annotations

import gc
import ssl
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import attrs
import pytest
import trio

from fleetsim import ChargerSpec, RunConfig
from fleetsim.behaviour.schedule import Backoff
from fleetsim.fleet import Fleet
from fleetsim.metrics import Metrics
from fleetsim.transport import (
    TRANSPORTS,
    ConnectError,
    ConnectionClosed,
    PendingConnection,
    open_connection,
    serve_websocket,
)

from .conftest import TlsFiles, start_csms

OCPP = ["ocpp1.6"]
ATTEMPTS = 20
SLACK = 10
"""Objects a collection may free that no connection left: a few of the test's own, at most
(a connection that left a cycle leaves 9 objects or more)."""

FAILING = ("refused", "rejected", "no subprotocol", "hung up in the handshake",
           "handshake timed out", "untrusted certificate")
ENDINGS = ("closed by the charger", "closed by the server", "dropped by the charger",
           "dropped by the server", "closed over TLS", *FAILING)


@contextmanager
def _collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _cyclic_garbage() -> Counter[str]:
    """Collect, and tally by type what only the cycle collector could free.

    Tuples and dicts are left out: a collection untracks those that hold only atoms, so they
    would look freed. gc.collect()'s own count and DEBUG_SAVEALL miss cycles that run
    through a generator, which its finalizer breaks.
    """
    before = {id(obj): type(obj).__qualname__ for obj in gc.get_objects()
              if not isinstance(obj, tuple | dict)}
    gc.collect()
    alive = {id(obj) for obj in gc.get_objects()}
    return Counter(name for key, name in before.items() if key not in alive)


@attrs.frozen
class Servers:
    ws: str
    wss: str
    refused: str
    hangup: str
    silent: str
    trusted: ssl.SSLContext


async def _handler(pending: PendingConnection) -> None:
    path = pending.request.path
    if path == "/reject":
        await pending.reject(401, "who are you?")
        return
    conn = await pending.accept(None if path == "/noproto" else "ocpp1.6")
    try:
        while True:
            text = await conn.receive_text()
            if text == "closed by the server":
                await conn.aclose(1000, "bye")
                return
            if text == "dropped by the server":
                await conn.abort()
                return
            await conn.send_text(text)
    except ConnectionClosed:
        pass


async def _raw_server(nursery: trio.Nursery, answer_nothing: bool) -> str:
    """A TCP server that hangs up on the upgrade request, or never answers it."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some()
            if answer_nothing:
                await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}"


@pytest.fixture
async def servers(nursery: trio.Nursery, tls_files: TlsFiles) -> Servers:
    ports = await nursery.start(serve_websocket, _handler, "127.0.0.1", 0)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tls_files.cert_file, tls_files.key_file)
    tls_ports = await nursery.start(partial(
        serve_websocket, _handler, "127.0.0.1", 0, ssl_context=server_context))
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        refused = f"ws://127.0.0.1:{sock.getsockname()[1]}"
    return Servers(
        ws=f"ws://127.0.0.1:{ports[0]}", wss=f"wss://127.0.0.1:{tls_ports[0]}", refused=refused,
        hangup=await _raw_server(nursery, answer_nothing=False),
        silent=await _raw_server(nursery, answer_nothing=True),
        trusted=ssl.create_default_context(cafile=tls_files.ca_file))


async def _connect_once(servers: Servers, transport: str, ending: str) -> None:
    url = {"refused": servers.refused, "rejected": f"{servers.ws}/reject",
           "no subprotocol": f"{servers.ws}/noproto", "hung up in the handshake": servers.hangup,
           "handshake timed out": servers.silent, "closed over TLS": f"{servers.wss}/CP1",
           "untrusted certificate": f"{servers.wss}/CP1"}.get(ending, f"{servers.ws}/CP1")
    context = ssl.create_default_context() if ending == "untrusted certificate" else (
        servers.trusted)
    connect = partial(open_connection, url, subprotocols=OCPP, ssl_context=context,
                      transport=transport, connect_timeout=0.05 if "timed out" in ending else 5)
    if ending in FAILING:
        with pytest.raises(ConnectError):
            async with connect():
                pytest.fail("should not connect")
        return
    async with connect() as conn:
        await conn.send_text("hello")
        assert await conn.receive_text() == "hello"
        if ending == "dropped by the charger":
            await conn.abort()
        elif ending.endswith("by the server"):
            await conn.send_text(ending)
            with pytest.raises(ConnectionClosed):
                await conn.receive_text()


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("ending", ENDINGS)
async def test_a_connection_leaves_no_cyclic_garbage(
    servers: Servers, transport: str, ending: str
) -> None:
    with trio.fail_after(20):
        await _connect_once(servers, transport, ending)  # fills the caches of a first use
        with _collector_off():
            for _ in range(ATTEMPTS):
                await _connect_once(servers, transport, ending)
            garbage = _cyclic_garbage()
    assert garbage.total() <= SLACK, garbage.most_common(8)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
async def test_a_fleet_and_the_csms_leave_no_cyclic_garbage_per_connection(
    nursery: trio.Nursery, transport: str, ocpp: str
) -> None:
    """Drops, reconnects, CSMS commands (Reset among them) and the graceful end, with the
    fleet's own collector helper at work."""
    csms = await start_csms(nursery, commands_per_s=50)
    spec = ChargerSpec(connectors=1, ocpp=ocpp, meter_interval_s=0.3,  # type: ignore[arg-type]
                       session_s=(0.3, 0.6), idle_s=(0.1, 0.3), drops_per_s=2.0,
                       backoff=Backoff("fixed", 0.05, 0.05))
    config = RunConfig(chargers=20, duration_s=1.5, url=csms.url, ramp_per_s=1000,
                       charger=spec, transport=transport)  # type: ignore[arg-type]
    metrics = Metrics()  # kept, as the fleet is: only what the connections left is garbage
    with _collector_off():
        fleet = Fleet(config, csms.url, metrics)
        with trio.fail_after(20):
            await fleet.run()
        garbage = _cyclic_garbage()
    assert metrics.connected_peak == 20
    assert garbage.total() <= SLACK + 10, garbage.most_common(8)  # and the fleet's own few


def test_a_dropped_histogram_is_freed_at_once() -> None:
    """hdrh's histogram and its encoder refer to each other; each ramp step drops a window of
    them, which the collector helper's freeze would keep for the whole run."""
    with _collector_off():
        window = Metrics().open_window()
        window.handshake.record_value(1234)
        encoded = window.handshake.encode()
        del window
        garbage = _cyclic_garbage()
    assert garbage["HdrHistogram"] == 0, garbage
    assert encoded  # still encodes: the encoder reaches its histogram while it lives
