"""The embedded CSMS over real sockets on 127.0.0.1, in both OCPP versions: subprotocol
negotiation, a 2.0.1 charger's life, `--commands` dealing each connection's own catalogue, and
a client that stops reading. Every frame is checked against the official schemas of the version
its connection agreed."""

from __future__ import annotations

import contextlib
import functools
import itertools
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import trio
import wsproto
import wsproto.events

from fleetsim import CsmsConfig, CsmsServer, serve_csms
from fleetsim.csms import answers_201 as v201
from fleetsim.csms import server as server_module
from fleetsim.csms.commands_201 import MIX_201
from fleetsim.csms.security_commands import MIX_16
from fleetsim.csms.server import agree_subprotocol
from fleetsim.ocpp.frames import Call, CallError, CallResult, decode_frame, encode_frame
from fleetsim.transport import ConnectError, Connection, ConnectionClosed, open_connection

from .conftest import start_csms
from .schemas import validator_16, validator_201
from .test_csms_v201 import MINIMAL_CALLS, transaction_event
from .test_schemas import MINIMAL_CALLS as MINIMAL_CALLS_16

Answerer = Callable[[Call], Awaitable[CallResult | CallError]]


async def _refuse(call: Call) -> CallError:
    return CallError(call.unique_id, "NotSupported", "test client")


class Client:
    """A tiny charger: one CALL of its own at a time; CSMS CALLs are answered by `answerer`."""

    def __init__(self, conn: Connection, answerer: Answerer = _refuse) -> None:
        self.conn = conn
        self.answerer = answerer
        self.received: list[Call] = []
        self._ids = itertools.count(1)

    async def call(self, action: str, payload: dict[str, Any]) -> CallResult | CallError:
        unique_id = str(next(self._ids))
        await self.conn.send_text(encode_frame(Call(unique_id, action, payload)))
        while True:
            frame = await self._next()
            if frame is not None:
                assert frame.unique_id == unique_id
                return frame

    async def serve(self) -> None:
        """Answer the CSMS until cancelled."""
        while True:
            assert await self._next() is None

    async def _next(self) -> CallResult | CallError | None:
        text = await self.conn.receive_text()
        frame = decode_frame(text)
        if type(frame) is Call:
            self.received.append(frame)
            await self.conn.send_text(encode_frame(await self.answerer(frame)))
            return None
        if isinstance(frame, CallError):
            # decode_frame files codes outside OCPP 1.6's list under GenericError: keep the raw one
            return CallError(frame.unique_id, orjson.loads(text)[2], frame.description)
        assert isinstance(frame, CallResult), frame
        return frame


def _result(answer: CallResult | CallError) -> dict[str, Any]:
    assert isinstance(answer, CallResult), answer
    return answer.payload


async def _call_201(client: Client, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    validator_201(f"{action}Request").validate(payload)
    result = _result(await client.call(action, payload))
    validator_201(f"{action}Response").validate(result)
    return result


@pytest.mark.parametrize(("offered", "agreed"), [
    (["ocpp2.0.1"], "ocpp2.0.1"),
    (["ocpp1.6"], "ocpp1.6"),
    (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
    (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
    (["ocpp2.1", "ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
    (["ocpp2.1", "ocpp1.5"], None),
    ([], None),
])
def test_the_first_offered_subprotocol_the_csms_speaks_wins(
    offered: list[str], agreed: str | None
) -> None:
    assert agree_subprotocol(offered) == agreed


@pytest.mark.parametrize(("offered", "agreed"), [
    (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1"),
    (["ocpp1.6", "ocpp2.0.1"], "ocpp1.6"),
    (["ocpp2.1", "ocpp2.0.1"], "ocpp2.0.1"),
])
async def test_offering_both_gets_the_first_supported_and_its_core(
    nursery: trio.Nursery, offered: list[str], agreed: str
) -> None:
    server = await start_csms(nursery, heartbeat_interval_s=17, boot_status="Pending")
    with trio.fail_after(10):
        async with open_connection(f"{server.url}/CP1", subprotocols=offered) as conn:
            assert conn.subprotocol == agreed
            client = Client(conn)
            boot_201 = await client.call("BootNotification", MINIMAL_CALLS["BootNotification"])
            boot_16 = await client.call("BootNotification", MINIMAL_CALLS_16["BootNotification"])
    answered, refused = (boot_201, boot_16) if agreed == v201.SUBPROTOCOL else (boot_16, boot_201)
    result = _result(answered)
    assert (result["status"], result["interval"]) == ("Pending", 17)
    if agreed == v201.SUBPROTOCOL:
        validator_201("BootNotificationResponse").validate(result)
        assert isinstance(refused, CallError)
        assert refused.error_code == "OccurenceConstraintViolation"  # 2.0.1's spelling
    else:
        validator_16("BootNotificationResponse").validate(result)
        assert isinstance(refused, CallError)
        assert refused.error_code == "OccurrenceConstraintViolation"  # as the 1.6 core always did
    assert server.stats.subprotocols == {agreed: 1}
    assert server.stats.handshakes_rejected == {}


@pytest.mark.parametrize("offered", [["ocpp2.1"], ["ocpp1.5", "ocpp2.0"], []])
async def test_offering_only_unsupported_subprotocols_is_refused(
    csms: CsmsServer, offered: list[str]
) -> None:
    with trio.fail_after(10):
        if offered:
            with pytest.raises(ConnectError) as info:
                async with open_connection(f"{csms.url}/CP1", subprotocols=offered):
                    pass
            assert info.value.reason == "subprotocol"
        else:  # a client that asks for no subprotocol cannot object to getting none
            async with open_connection(f"{csms.url}/CP1", subprotocols=offered) as conn:
                with pytest.raises(ConnectionClosed) as closed:
                    await conn.receive_text()
            assert closed.value.code == 1002
            assert closed.value.reason == "ocpp1.6 or ocpp2.0.1 subprotocol required"
        while not csms.stats.handshakes_rejected:
            await trio.sleep(0.01)
    assert csms.stats.handshakes_rejected == {"subprotocol": 1}
    assert csms.stats.connections_total == 0
    assert csms.stats.subprotocols == {}


async def test_a_2_0_1_charger_boots_runs_transactions_and_its_seqno_is_checked(
    nursery: trio.Nursery,
) -> None:
    server = await start_csms(nursery, heartbeat_interval_s=30)
    stats = server.stats
    with trio.fail_after(10):
        async with open_connection(f"{server.url}/CP201", subprotocols=["ocpp2.0.1"]) as conn:
            client = Client(conn)
            boot = await _call_201(client, "BootNotification", MINIMAL_CALLS["BootNotification"])
            assert (boot["status"], boot["interval"]) == ("Accepted", 30)
            await _call_201(client, "Heartbeat", {})
            await _call_201(client, "StatusNotification", {
                **MINIMAL_CALLS["StatusNotification"], "connectorStatus": "Occupied"})
            started = await _call_201(client, "TransactionEvent",
                                      transaction_event("Started", 0, "tx-a", id_token="RFID-1"))
            assert started == {"idTokenInfo": {"status": "Accepted"}}
            for seq_no in (1, 2):
                assert await _call_201(client, "TransactionEvent",
                                       transaction_event("Updated", seq_no, "tx-a")) == {}
            await _call_201(client, "MeterValues", MINIMAL_CALLS["MeterValues"])
            await _call_201(client, "NotifyEvent", MINIMAL_CALLS["NotifyEvent"])
            await _call_201(client, "TransactionEvent", transaction_event("Ended", 3, "tx-a"))
            assert (stats.seqno_gaps, stats.seqno_duplicates) == (0, 0)

            await _call_201(client, "TransactionEvent", transaction_event("Started", 0, "tx-b"))
            await _call_201(client, "TransactionEvent", transaction_event("Updated", 2, "tx-b"))
            await _call_201(client, "TransactionEvent", transaction_event("Updated", 2, "tx-b"))
            assert (stats.seqno_gaps, stats.seqno_duplicates) == (1, 1)

            unknown = await client.call("StartTransaction", MINIMAL_CALLS_16["StartTransaction"])
            assert isinstance(unknown, CallError) and unknown.error_code == "NotImplemented"
            await conn.send_text('[2, "bad-1", "Heartbeat"]')
            reply = orjson.loads(await conn.receive_text())
            assert reply[:3] == [4, "bad-1", "FormatViolation"]
    with trio.fail_after(5):
        while stats.connections:
            await trio.sleep(0.01)
    assert stats.subprotocols == {"ocpp2.0.1": 1}
    assert stats.transaction_events == {"Started": 2, "Updated": 4, "Ended": 1}
    assert stats.received["TransactionEvent"] == stats.answered["TransactionEvent"] == 7
    assert stats.callerror_sent == {"NotImplemented": 1}
    assert stats.bad_frames == {"bad_call": 1}
    assert stats.closes == {"clean": 1}


def _response_201(call: Call) -> dict[str, Any]:
    """A valid answer to each command of the 2.0.1 catalogue, without doing any of it."""
    payload = call.payload
    if call.action == "GetVariables":
        return {"getVariableResult": [
            {"attributeStatus": "UnknownVariable", "component": d["component"],
             "variable": d["variable"]} for d in payload["getVariableData"]]}
    if call.action == "SetVariables":
        return {"setVariableResult": [
            {"attributeStatus": "Accepted", "component": d["component"],
             "variable": d["variable"]} for d in payload["setVariableData"]]}
    if call.action == "SetVariableMonitoring":
        return {"setMonitoringResult": [
            {"status": "Rejected", "type": d["type"], "severity": d["severity"],
             "component": d["component"], "variable": d["variable"]}
            for d in payload["setMonitoringData"]]}
    if call.action == "ClearVariableMonitoring":
        return {"clearMonitoringResult": [{"status": "NotFound", "id": n} for n in payload["id"]]}
    fixed: dict[str, dict[str, Any]] = {
        "CostUpdated": {},
        "UnpublishFirmware": {"status": "NoFirmware"},
        "GetTransactionStatus": {"messagesInQueue": False, "ongoingIndicator": True},
        "UnlockConnector": {"status": "Unlocked"},
        "DataTransfer": {"status": "UnknownVendorId"},
        "GetLocalListVersion": {"versionNumber": 0},
        "GetChargingProfiles": {"status": "NoProfiles"},
        "ClearChargingProfile": {"status": "Unknown"},
    }
    return fixed.get(call.action, {"status": "Accepted"})


async def test_commands_follow_each_connections_version_and_deal_the_whole_catalogue(
    nursery: trio.Nursery,
) -> None:
    """Each of two chargers is the only one of its version, so it gets every card its
    version's deck deals: its first round is the mix, exactly, each command schema-valid."""
    server = await start_csms(nursery, commands_per_s=500.0)
    stats = server.stats
    round_16, round_201 = sum(MIX_16.values()), sum(MIX_201.values())

    async def answer_201(call: Call) -> CallResult:
        validator_201(f"{call.action}Request").validate(call.payload)
        response = _response_201(call)
        validator_201(f"{call.action}Response").validate(response)
        return CallResult(call.unique_id, response)

    async def answer_16(call: Call) -> CallError:
        validator_16(call.action).validate(call.payload)
        return await _refuse(call)

    with trio.fail_after(30):
        async with (
            open_connection(f"{server.url}/CP201", subprotocols=["ocpp2.0.1", "ocpp1.6"]) as c201,
            open_connection(f"{server.url}/CP16", subprotocols=["ocpp1.6", "ocpp2.0.1"]) as c16,
        ):
            client_201, client_16 = Client(c201, answer_201), Client(c16, answer_16)
            await _call_201(client_201, "TransactionEvent",
                            transaction_event("Started", 0, "tx-running"))
            async with trio.open_nursery() as clients:
                clients.start_soon(client_201.serve)
                clients.start_soon(client_16.serve)
                while len(client_201.received) < round_201 or len(client_16.received) < round_16:
                    await trio.sleep(0.01)
                clients.cancel_scope.cancel()
        while stats.connections:
            await trio.sleep(0.01)

    assert Counter(call.action for call in client_201.received[:round_201]) == MIX_201
    assert Counter(call.action for call in client_16.received[:round_16]) == MIX_16
    for call in client_201.received:
        if call.action in ("RequestStopTransaction", "GetTransactionStatus", "CostUpdated"):
            assert call.payload["transactionId"] == "tx-running"

    received = len(client_201.received) + len(client_16.received)
    sent = stats.commands_sent.total()
    assert 0 <= sent - received <= 2  # one in flight per connection, cut off by the end
    assert stats.commands_answered.total() <= len(client_201.received)
    assert stats.commands_callerror.total() <= len(client_16.received)
    assert all(key.endswith(" NotSupported") for key in stats.commands_callerror)
    answered = stats.commands_answered.total() + stats.commands_callerror.total()
    assert sent - answered == stats.commands_unanswered.total() <= 2
    assert stats.subprotocols == {"ocpp2.0.1": 1, "ocpp1.6": 1}


class Staller:
    """A 2.0.1 client that never reads: it sends CALLs until its socket buffers, and then the
    CSMS's to it, are full, so that every send the CSMS makes to it blocks."""

    def __init__(self) -> None:
        self.commands_to_it = 0
        self.dropped = trio.Event()

    def tap(self, subprotocol: str, direction: str, text: str) -> None:
        if subprotocol == v201.SUBPROTOCOL and direction == "out" and text.startswith("[2,"):
            self.commands_to_it += 1

    async def run(self, port: int) -> None:
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(ws.send(wsproto.events.Request(
            host="127.0.0.1", target="/ocpp/STALLER", subprotocols=[v201.SUBPROTOCOL])))
        while not any(isinstance(event, wsproto.events.AcceptConnection)
                      for event in ws.events()):
            ws.receive_data(await stream.receive_some(4096))
        heartbeats = b"".join(ws.send(wsproto.events.TextMessage(f'[2,"{n}","Heartbeat",{{}}]'))
                              for n in range(100))
        try:
            while True:
                await stream.send_all(heartbeats)
        except trio.BrokenResourceError:
            self.dropped.set()


async def test_a_client_that_never_reads_holds_up_no_command_to_the_others(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It holds up its own sends only, until it is dropped: the others' commands go on."""
    monkeypatch.setattr(server_module, "_COMMAND_TIMEOUT_S", 1.0)  # so it is soon picked again
    monkeypatch.setattr(server_module, "_SEND_TIMEOUT_S", 3.0)
    staller = Staller()
    server: CsmsServer = await nursery.start(functools.partial(
        serve_csms, CsmsConfig(port=0, commands_per_s=100.0), tap=staller.tap))
    stats = server.stats

    def received() -> int:
        return sum(len(client.received) for client in clients)

    with trio.fail_after(30):
        async with contextlib.AsyncExitStack() as stack:
            clients = [Client(await stack.enter_async_context(open_connection(
                f"{server.url}/CP{n}", subprotocols=["ocpp1.6"]))) for n in range(5)]
            async with trio.open_nursery() as running:
                for client in clients:
                    running.start_soon(client.serve)
                running.start_soon(staller.run, server.port)
                # Its first command may have found room in the buffers; by the time that one
                # is given up, they are full, and the next one blocks.
                before = going_on = None
                with trio.move_on_after(10):
                    while staller.commands_to_it < 2:
                        await trio.sleep(0.01)
                    before = received()
                    while received() < before + 50:
                        await trio.sleep(0.01)
                    going_on = received()
                assert going_on is not None, (
                    f"commands stopped: {staller.commands_to_it} sent to the staller, "
                    f"{received()} received by the others ({before} when it stalled)")
                await staller.dropped.wait()
                running.cancel_scope.cancel()
        while stats.connections:
            await trio.sleep(0.01)
    assert stats.closes == {"stalled": 1, "clean": 5}
    assert all(key.endswith(" NotSupported") for key in stats.commands_callerror)
    callerrors = Counter({key.split()[0]: n for key, n in stats.commands_callerror.items()})
    assert stats.commands_sent == callerrors + stats.commands_unanswered
    assert stats.commands_unanswered.total() >= staller.commands_to_it
