"""The client's opening handshake against wsproto's server side as the oracle."""

from __future__ import annotations

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request

from fleetsim.wshandshake import Accepted, ClientHandshake, HandshakeFailed, Rejected, after_head

OFFERED = ["ocpp2.0.1", "ocpp1.6"]


def _server_reads(handshake: ClientHandshake) -> tuple[WSConnection, Request]:
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(handshake.request)
    requests = [event for event in server.events() if isinstance(event, Request)]
    assert len(requests) == 1
    return server, requests[0]


def test_wsproto_accepts_the_request_and_the_client_its_101() -> None:
    handshake = ClientHandshake("127.0.0.1:9000", "/ocpp/CP%2001?x=1", OFFERED,
                                [("Authorization", "Basic Q1AwMTpzZWNyZXQ=")])
    server, request = _server_reads(handshake)
    assert request.host == "127.0.0.1:9000"
    assert request.target == "/ocpp/CP%2001?x=1"
    assert request.subprotocols == OFFERED
    assert (b"authorization", b"Basic Q1AwMTpzZWNyZXQ=") in request.extra_headers
    response = server.send(AcceptConnection(subprotocol="ocpp1.6"))
    outcome = None
    for i in range(len(response)):  # a byte at a time: the head may arrive cut anywhere
        outcome = handshake.receive(response[i:i + 1])
        assert (outcome is None) is (i < len(response) - 1)
    assert outcome == Accepted("ocpp1.6", b"")


def test_frames_after_the_head_are_kept() -> None:
    handshake = ClientHandshake("h", "/CP1", OFFERED)
    server, _ = _server_reads(handshake)
    assert handshake.receive(server.send(AcceptConnection()) + b"\x81\x02[]") == Accepted(
        None, b"\x81\x02[]")
    assert after_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n\x81\x80") == b"\x81\x80"


def test_another_status_is_a_rejection() -> None:
    handshake = ClientHandshake("h", "/CP1", OFFERED)
    server, _ = _server_reads(handshake)
    assert handshake.receive(server.send(RejectConnection(status_code=401))) == Rejected(401)


def _response(handshake: ClientHandshake, subprotocol: str | None = "ocpp1.6") -> bytes:
    server, _ = _server_reads(handshake)
    return server.send(AcceptConnection(subprotocol=subprotocol))


@pytest.mark.parametrize(("change", "reason"), [
    (lambda head: head.replace(b"Sec-WebSocket-Accept: ", b"Sec-WebSocket-Accept: x"), "other"),
    (lambda head: head.replace(b"Upgrade: websocket\r\n", b""), "other"),
    (lambda head: head.replace(b"Connection: Upgrade", b"Connection: keep-alive"), "other"),
    (lambda head: head.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: x\r\n\r\n"),
     "other"),
    (lambda head: head.replace(b"ocpp1.6", b"ocpp9"), "subprotocol"),
    (lambda head: head.replace(b"HTTP/1.1 101", b"HTTP/9 101"), "other"),
    (lambda head: head.replace(b"Upgrade: websocket", b"Upgrade: websocket, h2c"), "other"),
    (lambda head: b"HTTP/1.1 101 OK\r\n" + b"X: " + b"y" * 20000, "other"),
], ids=["accept key", "no upgrade", "no connection upgrade", "extension", "subprotocol",
        "status line", "upgrade to more", "head too long"])
def test_a_bad_101_fails_with_a_reason(change: object, reason: str) -> None:
    handshake = ClientHandshake("h", "/CP1", OFFERED)
    head = _response(handshake)
    bad = change(head)  # type: ignore[operator]
    assert bad != head
    with pytest.raises(HandshakeFailed) as failed:
        handshake.receive(bad)
    assert failed.value.reason == reason


def test_header_names_and_tokens_are_case_insensitive() -> None:
    handshake = ClientHandshake("h", "/CP1", OFFERED)
    head = _response(handshake)
    head = head.replace(b"Upgrade: websocket", b"UPGRADE: WebSocket").replace(
        b"Connection: Upgrade", b"connection: keep-alive, UPGRADE")
    assert handshake.receive(head) == Accepted("ocpp1.6", b"")


def test_every_handshake_has_its_own_key() -> None:
    keys = {next(line for line in ClientHandshake("h", "/", []).request.split(b"\r\n")
             if line.startswith(b"Sec-WebSocket-Key")) for _ in range(600)}
    assert len(keys) == 600  # across draws of 256


def test_a_header_cannot_smuggle_a_line() -> None:
    with pytest.raises(ValueError, match="line break"):
        ClientHandshake("h", "/", [], [("Authorization", "Basic x\r\nEvil: 1")])


def test_a_folded_line_continues_its_field() -> None:
    handshake = ClientHandshake("h", "/CP1", OFFERED)
    head = _response(handshake).replace(b"Connection: Upgrade",
                                        b"Connection: keep-alive,\r\n Upgrade")
    assert handshake.receive(head) == Accepted("ocpp1.6", b"")


@pytest.mark.parametrize(("resource", "subprotocols", "headers"), [
    ("/my cp", [], []),
    ("/cp", ["ocpp1.6\r\nX-Injected: 1"], []),
    ("/cp", [], [("X Bad", "1")]),
    ("/cp", [], [("X", "a\x01b")]),
], ids=["space in the path", "subprotocol", "header name", "control in a value"])
def test_a_request_h11_would_refuse_is_refused(
    resource: str, subprotocols: list[str], headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValueError):
        ClientHandshake("h", resource, subprotocols, headers)
