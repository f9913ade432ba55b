"""Security profiles at the connection level, over real TLS on 127.0.0.1 with certificates
from `fleetsim.certs`: each failure has its own reason."""

from __future__ import annotations

import datetime
import ssl
from functools import partial
from pathlib import Path

import attrs
import pytest
import trio
from trio.testing import MockClock

from fleetsim.certs import CertificateAuthority, Pki, issue_pki
from fleetsim.transport import (
    TRANSPORTS,
    ConnectError,
    PendingConnection,
    open_connection,
    serve_websocket,
)

OCPP = ["ocpp1.6"]


@attrs.frozen
class Lab:
    """A test PKI: the fleet's CA and its files, and a foreign CA nobody trusts."""

    pki: Pki
    ca: CertificateAuthority
    foreign: Pki
    expired_server: tuple[str, str]
    expired_client: tuple[str, str]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root: Path = tmp_path_factory.mktemp("pki")
    pki = issue_pki(root / "fleet", ["CP00001", "CP00002", "CP00003"])
    ca = CertificateAuthority.load(str(pki.ca_cert), str(pki.ca_key))
    foreign = issue_pki(root / "foreign", ["CP00001"])
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = []
    for name, server_names in (("server", ("127.0.0.1",)), ("CP00001", ())):
        cert_path, key_path = root / f"expired-{name}.pem", root / f"expired-{name}.key"
        ca.write_issued(cert_path, key_path, name, server_names=server_names,
                        not_before=long_ago, days=2)
        expired.append((str(cert_path), str(key_path)))
    return Lab(pki, ca, foreign, expired[0], expired[1])


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def server_context(cert: str | Path, key: str | Path, client_ca: Path | None = None
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


def client_context(ca: Path, pair: tuple[str | Path, str | Path] | None = None
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        context.load_cert_chain(*pair)
    return context


async def accept(pending: PendingConnection) -> None:
    conn = await pending.accept(pending.request.subprotocols[0])
    await conn.send_text("hello")
    await conn.aclose()


async def serve(nursery: trio.Nursery, context: ssl.SSLContext) -> str:
    ports = await nursery.start(partial(serve_websocket, accept, "127.0.0.1", 0,
                                        ssl_context=context))
    return f"wss://127.0.0.1:{ports[0]}/ocpp/CP00001"


async def reason(url: str, context: ssl.SSLContext, transport: str,
                 connect_timeout: float = 5) -> str:
    with trio.fail_after(connect_timeout + 5), pytest.raises(ConnectError) as info:
        async with open_connection(url, subprotocols=OCPP, ssl_context=context,
                                   transport=transport, connect_timeout=connect_timeout):
            pytest.fail("should not connect")
    return info.value.reason


async def test_mutual_tls_happy_path(nursery: trio.Nursery, lab: Lab, transport: str) -> None:
    pki = lab.pki
    url = await serve(nursery, server_context(pki.server_cert, pki.server_key, pki.ca_cert))
    pair = (pki.chargers / "CP00001.pem", pki.chargers / "CP00001.key")
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport,
                                   ssl_context=client_context(pki.ca_cert, pair)) as conn:
            assert await conn.receive_text() == "hello"


async def test_server_certificate_failures_by_reason(
    nursery: trio.Nursery, lab: Lab, transport: str,
) -> None:
    pki = lab.pki
    url = await serve(nursery, server_context(pki.server_cert, pki.server_key))
    assert await reason(url, client_context(lab.foreign.ca_cert), transport) == "tls_unknown_ca"
    by_name = url.replace("127.0.0.1", "localhost")  # in the certificate: connects
    pair = (pki.ca_cert.parent / "elsewhere.pem", pki.ca_cert.parent / "elsewhere.key")
    lab.ca.write_issued(*pair, "elsewhere.test", server_names=("elsewhere.test",))
    elsewhere = await serve(nursery, server_context(*pair))
    assert await reason(elsewhere, client_context(pki.ca_cert), transport) == "tls_hostname"
    expired = await serve(nursery, server_context(*lab.expired_server))
    assert await reason(expired, client_context(pki.ca_cert), transport) == "tls_expired"
    with trio.fail_after(5):
        async with open_connection(by_name, subprotocols=OCPP, transport=transport,
                                   ssl_context=client_context(pki.ca_cert)) as conn:
            assert await conn.receive_text() == "hello"


async def test_client_certificate_refused_by_the_server_by_reason(
    nursery: trio.Nursery, lab: Lab, transport: str,
) -> None:
    pki = lab.pki
    url = await serve(nursery, server_context(pki.server_cert, pki.server_key, pki.ca_cert))
    foreign_pair = (lab.foreign.chargers / "CP00001.pem", lab.foreign.chargers / "CP00001.key")
    for pair in (None, foreign_pair, lab.expired_client):
        context = client_context(pki.ca_cert, pair)
        assert await reason(url, context, transport) == "tls_rejected", pair


async def test_a_server_that_never_answers_the_tls_handshake(
    nursery: trio.Nursery, lab: Lab, transport: str, autojump_clock: MockClock,
) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, silent, listeners)
    url = f"wss://127.0.0.1:{listeners[0].socket.getsockname()[1]}/ocpp/CP00001"
    assert await reason(url, client_context(lab.pki.ca_cert), transport,
                        connect_timeout=2) == "tls_handshake_timeout"
