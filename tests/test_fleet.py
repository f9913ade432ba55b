"""Fleets against real CSMSs on 127.0.0.1: counts, latency accuracy, TLS, auth, bad peers."""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import socket
import time
import urllib.request
from collections import Counter

import attrs
import pytest
import trio
from trio.testing import MockClock
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping

from fleetsim import SCHEMA, Backoff, ChargerSpec, CsmsServer, RunConfig, format_summary, spawn
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.csms.commands_16 import MIX
from fleetsim.metrics import SATURATED_CPU, SATURATED_LAG_MS
from fleetsim.ocpp.frames import Call, CallResult, decode_frame, encode_frame
from fleetsim.transport import ConnectionClosed, PendingConnection, serve_websocket

from .conftest import TlsFiles, start_csms

BUSY = ChargerSpec(connectors=1, meter_interval_s=0.5, session_s=(0.5, 1.5), idle_s=(0.1, 0.5))


def _assert_balanced(report: dict[str, object]) -> None:
    calls = report["calls"]
    assert isinstance(calls, dict)
    for action, stats in calls.items():
        errors = sum(stats["callerror"].values())
        assert stats["sent"] == stats["ok"] + errors + stats["timeout"] + stats["in_flight"], action


@pytest.mark.parametrize("transport", ["wsproto", "trio-websocket"])
async def test_fleet_boots_runs_sessions_and_counts_match_the_csms(
    csms: CsmsServer, transport: str, autojump_clock: MockClock,
) -> None:
    config = RunConfig(chargers=200, duration_s=4, url=csms.url, ramp_per_s=1000,
                       charger=BUSY, transport=transport)  # type: ignore[arg-type]
    frozen_mid_run: list[int] = []

    async def note_frozen() -> None:
        await trio.sleep(2)
        frozen_mid_run.append(gc.get_freeze_count())

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(note_frozen)
            result = await spawn(config, write=False)
    report = result.report
    assert report["schema"] == SCHEMA
    assert result.outcome.stopped_by == "duration"
    assert frozen_mid_run[0] > 200 * 20  # the running fleet's objects were out of the GC
    assert report["chargers"]["booted"] == 200
    assert report["chargers"]["connected_peak"] == 200
    assert report["chargers"]["connect_failures"] == {}
    assert report["calls"]["StopTransaction"]["ok"] > 100
    assert report["calls"]["MeterValues"]["ok"] > 200
    # the stop closed every connection with a completed close handshake
    assert csms.stats.closes == {"clean": 200}
    assert gc.get_freeze_count() == 0  # and handed back at the end
    ok = {action: stats["ok"] for action, stats in report["calls"].items()}
    assert ok == dict(csms.stats.received)
    _assert_balanced(report)
    assert report["totals"]["errors"] == 0
    assert 3 <= len(report["timeline"]) <= 7
    assert sum(row["ok"] for row in report["timeline"]) == report["totals"]["ok"]
    json.dumps(report)


async def test_service_time_is_accurate_with_a_50ms_csms(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, delay=__import__("fleetsim").parse_delay("50"))
    config = RunConfig(chargers=20, duration_s=2.5, url=server.url,
                       charger=ChargerSpec(connectors=1, idle_s=(100, 100)))
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    for action in ("BootNotification", "StatusNotification"):
        stats = result.report["calls"][action]
        assert stats["ok"] == 20 if action == "BootNotification" else 40
        assert 50.0 <= stats["service_ms"]["p50"] <= 51.0, stats["service_ms"]
    # the second StatusNotification waits for the first answer: its response time shows it
    status = result.report["calls"]["StatusNotification"]
    assert status["response_ms"]["max"] > 100 > status["service_ms"]["max"]


async def test_wss_with_a_trusted_ca(
    nursery: trio.Nursery, tls_files: TlsFiles, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, cert_file=tls_files.cert_file,
                              key_file=tls_files.key_file)
    assert server.url.startswith("wss://")
    config = RunConfig(chargers=20, duration_s=1.5, url=server.url, ca_file=tls_files.ca_file)
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    assert result.report["chargers"]["booted"] == 20


async def test_wss_with_an_untrusted_certificate(
    nursery: trio.Nursery, tls_files: TlsFiles, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, cert_file=tls_files.cert_file,
                              key_file=tls_files.key_file)
    config = RunConfig(chargers=20, duration_s=10, url=server.url)
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    assert result.outcome.stopped_by == "unreachable"
    assert "tls" in result.outcome.reason
    insecure = attrs.evolve(config, insecure=True, duration_s=1.5)
    with trio.fail_after(20):
        result = await spawn(insecure, write=False)
    assert result.report["chargers"]["booted"] == 20


async def test_basic_auth_and_the_password_stays_secret(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    secret = "s3cret-Pa55word"
    server = await start_csms(nursery, password=secret)
    good = RunConfig(chargers=10, duration_s=1.5, url=server.url, password=secret)
    with trio.fail_after(20):
        result = await spawn(good, write=False)
    assert result.report["chargers"]["booted"] == 10
    assert secret not in json.dumps(result.report)
    assert secret not in repr(good)
    bad = attrs.evolve(good, password="wrong", duration_s=10)
    with trio.fail_after(20):
        result = await spawn(bad, write=False)
    assert result.outcome.stopped_by == "unreachable"
    assert result.report["chargers"]["connect_failures"] == {"http_401": 10}


async def test_unreachable_target_stops_early() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = RunConfig(chargers=50, duration_s=30, url=f"ws://127.0.0.1:{port}/ocpp")
    with trio.fail_after(5):
        result = await spawn(config, write=False)
    assert result.outcome.stopped_by == "unreachable"
    assert "refused" in result.outcome.reason
    assert result.report["chargers"]["booted"] == 0


@attrs.define
class Misbehaving:
    """A CSMS that boots chargers, then sends junk, then drops the connection."""

    replies: list[list[object]] = attrs.Factory(list)
    connections: int = 0


JUNK = [
    "this is not json",
    '{"not": "an array"}',
    "[7, \"x\", {}]",
    '[2, "call-1", "MakeCoffee", {}]',
    '[2, "call-2", "Reset", []]',
    '[2, "call-3", "GetConfiguration", {"key": [1]}]',
    '[3, "no-such-call", {}]',
    '[4, "no-such-call", "InternalError", "", {}]',
]


async def _misbehave(state: Misbehaving, pending: PendingConnection) -> None:
    conn = await pending.accept("ocpp1.6")
    state.connections += 1
    boot = json.loads(await conn.receive_text())
    await conn.send_text(json.dumps(
        [3, boot[1], {"status": "Accepted", "interval": 60,
                      "currentTime": "2026-01-01T00:00:00.000Z"}]))
    for junk in JUNK:
        await conn.send_text(junk)
    with trio.move_on_after(0.5):
        while True:
            message = json.loads(await conn.receive_text())
            if message[0] == 2:
                await conn.send_text(json.dumps([3, message[1], {}]))
            else:
                state.replies.append(message)
    # drop the TCP connection without a close handshake
    stream = getattr(conn, "_stream", None)
    if stream is not None:
        await stream.aclose()


async def test_a_misbehaving_csms_is_answered_counted_and_survived(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    state = Misbehaving()
    ports = await nursery.start(functools.partial(
        serve_websocket, functools.partial(_misbehave, state), "127.0.0.1", 0))
    config = RunConfig(chargers=3, duration_s=3, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       charger=ChargerSpec(idle_s=(100, 100), backoff=Backoff(
                           "exponential", wait_minimum_s=0.05, random_range_s=0.05,
                           repeat_times=2)))
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    report = result.report
    assert result.outcome.stopped_by == "duration"
    assert state.connections >= 6
    assert report["chargers"]["reconnects"] >= 3
    assert report["chargers"]["disconnects_abnormal"] >= 3
    assert report["chargers"]["boots"] >= 6
    codes = {str(reply[1]): reply[2] for reply in state.replies if reply[0] == 4}
    assert codes == {"call-1": "NotImplemented", "call-2": "FormationViolation",
                     "call-3": "TypeConstraintViolation"}
    # every boot was followed by the junk; a charger stopped by the run's end may not read it
    boots = report["chargers"]["boots"]
    low = boots - config.chargers

    def within(count: int, per_boot: int = 1) -> bool:
        return bool(low * per_boot <= count <= boots * per_boot)

    frames = report["bad_frames"]
    assert within(frames["not_json"]) and within(frames["not_array"])
    assert within(frames["unknown_message_type"]) and within(frames["bad_call"])
    assert within(frames["unknown_id"], per_boot=2)
    csms_calls = report["csms_calls"]
    assert within(csms_calls["<unknown>"]["callerror_sent"]["NotImplemented"])
    assert within(csms_calls["<malformed>"]["callerror_sent"]["FormationViolation"])
    assert within(csms_calls["GetConfiguration"]["callerror_sent"]["TypeConstraintViolation"])
    _assert_balanced(report)


async def _flood_and_never_read(pending: PendingConnection) -> None:
    """Boots the charger, then sends CALLs forever and never reads again."""
    stream = getattr(pending, "_stream", None)
    if stream is not None:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = await pending.accept("ocpp1.6")
    boot = json.loads(await conn.receive_text())
    await conn.send_text(json.dumps([3, boot[1], {"status": "Accepted", "interval": 1,
                                                  "currentTime": "2026-01-01T00:00:00Z"}]))
    for n in itertools.count():
        await conn.send_text(f'[2,"{n}","GetConfiguration",{{}}]')  # a 3 KB answer each


async def test_a_csms_that_stops_reading_cannot_freeze_a_charger(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    ports = await nursery.start(functools.partial(
        serve_websocket, _flood_and_never_read, "127.0.0.1", 0))
    config = RunConfig(chargers=1, duration_s=4, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       call_timeout_s=1,
                       charger=ChargerSpec(idle_s=(100, 100), backoff=Backoff("fixed", 0.1, 0.1)))
    started = trio.current_time()
    with trio.fail_after(15):
        result = await spawn(config, write=False)
    assert trio.current_time() - started < 4 + 5 + 3
    chargers = result.report["chargers"]
    assert chargers["disconnects_abnormal"] >= 1 and chargers["reconnects"] >= 1
    assert chargers["send_stalls"] >= 1
    lost = sum(stats["lost_on_disconnect"] for stats in result.report["calls"].values())
    assert lost >= 1
    _assert_balanced(result.report)


async def test_back_off_grows_while_the_csms_drops_every_connection_before_boot(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    async def hang_up(pending: PendingConnection) -> None:
        await pending.accept("ocpp1.6")  # and the server closes it at once

    ports = await nursery.start(functools.partial(serve_websocket, hang_up, "127.0.0.1", 0))
    backoff = Backoff("exponential", wait_minimum_s=0.05, random_range_s=0.0, repeat_times=6)
    config = RunConfig(chargers=3, duration_s=3, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       charger=ChargerSpec(backoff=backoff))
    with trio.fail_after(15):
        result = await spawn(config, write=False)
    chargers = result.report["chargers"]
    assert chargers["connect_failures"] == {} and chargers["booted"] == 0
    # The waits double (0.1, 0.2, 0.4 ... s): six attempts a charger fit in 3 s, where
    # reconnecting every `wait_minimum_s` would make sixty.
    at_the_minimum = config.chargers * config.duration_s / backoff.wait_minimum_s
    assert config.chargers < chargers["connect_attempts"] < at_the_minimum / 4


async def _boot_then_flood_pings(pending: PendingConnection) -> None:
    """Boots the charger and answers it a while (it has no CALL left waiting), then pings it
    flat out and never reads again: its pongs pile up."""
    stream = getattr(pending, "_stream", None)
    if stream is not None:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = await pending.accept("ocpp1.6")
    with trio.move_on_after(0.3):
        while True:
            call = json.loads(await conn.receive_text())
            await conn.send_text(json.dumps([3, call[1], {
                "status": "Accepted", "interval": 3600, "currentTime": "2026-01-01T00:00:00Z"}]))
    frame = WSConnection(ConnectionType.SERVER)  # only to encode: server frames are unmasked
    frame.receive_data(_UPGRADE)
    next(iter(frame.events()))
    frame.send(AcceptConnection(subprotocol="ocpp1.6"))
    pings = frame.send(Ping(b"p" * 125)) * 200
    assert stream is not None
    while True:
        await stream.send_all(pings)


_UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n")


@pytest.mark.parametrize("transport", ["wsproto", "trio-websocket"])
async def test_a_csms_that_floods_pings_and_stops_reading_cannot_freeze_a_charger(
    nursery: trio.Nursery, transport: str, autojump_clock: MockClock,
) -> None:
    ports = await nursery.start(functools.partial(
        serve_websocket, _boot_then_flood_pings, "127.0.0.1", 0))
    config = RunConfig(chargers=1, duration_s=5, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       transport=transport,  # type: ignore[arg-type]
                       call_timeout_s=1,
                       charger=ChargerSpec(idle_s=(100, 100), backoff=Backoff("fixed", 0.1, 0.1)))
    with trio.fail_after(15):
        result = await spawn(config, write=False)
    chargers = result.report["chargers"]
    assert chargers["send_stalls"] >= 1  # the blocked pong was seen
    assert chargers["disconnects_abnormal"] >= 1 and chargers["reconnects"] >= 1
    _assert_balanced(result.report)


async def _boot_then_stop_reading(pending: PendingConnection) -> None:
    """Boots the charger with a 1 s heartbeat, then never reads: small frames still fit."""
    conn = await pending.accept("ocpp1.6")
    boot = json.loads(await conn.receive_text())
    await conn.send_text(json.dumps([3, boot[1], {"status": "Accepted", "interval": 1,
                                                  "currentTime": "2026-01-01T00:00:00Z"}]))
    await trio.sleep_forever()


@pytest.mark.parametrize("transport", ["wsproto", "trio-websocket"])
async def test_a_csms_that_silently_stops_reading_is_a_dropped_connection(
    nursery: trio.Nursery, transport: str, autojump_clock: MockClock,
) -> None:
    ports = await nursery.start(functools.partial(
        serve_websocket, _boot_then_stop_reading, "127.0.0.1", 0))
    config = RunConfig(chargers=2, duration_s=3.5, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       transport=transport,  # type: ignore[arg-type]
                       call_timeout_s=0.5,
                       charger=ChargerSpec(idle_s=(100, 100), backoff=Backoff("fixed", 0.1, 0.1)))
    with trio.fail_after(15):
        result = await spawn(config, write=False)
    chargers = result.report["chargers"]
    assert chargers["disconnects_abnormal"] >= 2 and chargers["reconnects"] >= 2
    # a Heartbeat times out, the ping sent then has no pong within the call timeout either
    assert chargers["ping_timeouts"] >= 2
    assert chargers["boots"] >= 4
    _assert_balanced(result.report)


@attrs.define
class ResettingCsms:
    """Answers like the embedded CSMS and sends every charger one Reset after its first boot."""

    core: CsmsCore = attrs.Factory(lambda: CsmsCore(CsmsStats(), heartbeat_interval_s=60))
    reset_sent: set[str] = attrs.Factory(set)
    reset_answers: list[object] = attrs.Factory(list)

    async def handle(self, pending: PendingConnection) -> None:
        charger_id = pending.request.path.rsplit("/", 1)[1]
        conn = await pending.accept("ocpp1.6")
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = decode_frame(await conn.receive_text())
                if isinstance(frame, Call):
                    await conn.send_text(encode_frame(self.core.answer(frame, 1.7e9)))
                    if frame.action == "BootNotification" and charger_id not in self.reset_sent:
                        self.reset_sent.add(charger_id)
                        await conn.send_text('[2,"reset-1","Reset",{"type":"Soft"}]')
                elif isinstance(frame, CallResult):
                    self.reset_answers.append(frame.payload)


async def test_reset_reconnects_and_boots_again(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    csms = ResettingCsms()
    ports = await nursery.start(functools.partial(serve_websocket, csms.handle, "127.0.0.1", 0))
    config = RunConfig(chargers=20, duration_s=3.5, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       charger=ChargerSpec(idle_s=(100, 100)))
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    chargers = result.report["chargers"]
    assert csms.reset_answers == [{"status": "Accepted"}] * 20
    assert chargers["resets"] == 20 and chargers["boots"] == 40 and chargers["booted"] == 20
    assert chargers["disconnects_abnormal"] == 0
    assert csms.core.stats.received["BootNotification"] == 40
    _assert_balanced(result.report)


async def test_the_embedded_csms_commands_the_whole_catalogue_under_load(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, commands_per_s=300.0)
    config = RunConfig(chargers=100, duration_s=4, url=server.url, charger=BUSY)
    with trio.fail_after(30):
        result = await spawn(config, write=False)
    stats = server.stats
    assert sum(stats.commands_sent.values()) >= 600
    assert set(MIX) - {"Reset", "UpdateFirmware"} <= set(stats.commands_sent)
    errors = Counter({key.split()[0]: n for key, n in stats.commands_callerror.items()})
    assert stats.commands_callerror == {}
    for action, sent in stats.commands_sent.items():
        answered = stats.commands_answered[action] + errors[action]
        assert answered + stats.commands_unanswered[action] == sent, action
        calls = result.report["csms_calls"]
        charger_side = calls[action]
        assert charger_side["received"] >= answered
        assert 0 < charger_side["answer_ms"]["p50"] <= charger_side["answer_ms"]["max"] < 1000
    assert sum(stats.commands_unanswered.values()) <= config.chargers  # only those cut by the end
    report = result.report
    assert report["chargers"]["internal_errors"] == {}
    assert report["chargers"]["booted"] == 100
    ok = {action: s["ok"] for action, s in report["calls"].items()}
    assert ok == dict(stats.received)
    _assert_balanced(report)


async def test_a_busy_generator_is_flagged_not_blamed_on_the_csms(
    csms: CsmsServer, nursery: trio.Nursery,
) -> None:
    async def hog() -> None:  # blocks the event loop, as an overloaded generator would
        while True:
            await trio.sleep(0.5)
            time.sleep(0.15)

    config = RunConfig(chargers=20, duration_s=3, url=csms.url,
                       charger=ChargerSpec(idle_s=(100, 100)))
    quiet = (await spawn(config, write=False)).report
    assert 0 < quiet["generator"]["cpu_share"] < 2
    # a loaded machine may delay even a quiet generator: a second is flagged only for cause
    for row in quiet["timeline"]:
        assert not row["saturated"] or (row["loop_lag_ms"] >= SATURATED_LAG_MS
                                        or (row["cpu"] or 0) >= SATURATED_CPU), row
    warned = "WARNING: fleetsim itself was saturated" in format_summary(quiet)
    assert warned == (quiet["generator"]["saturated_seconds"] > 0)
    nursery.start_soon(hog)
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    generator = result.report["generator"]
    assert generator["saturated_seconds"] >= 2
    assert generator["loop_lag_ms"]["max"] >= 120  # a 150 ms block, seen by a 20 ms probe
    assert "WARNING: fleetsim itself was saturated" in format_summary(result.report)


async def test_live_metrics_for_prometheus(csms: CsmsServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = RunConfig(chargers=20, duration_s=60, url=csms.url,
                       prometheus=("127.0.0.1", port), charger=ChargerSpec(idle_s=(100, 100)))
    url = f"http://127.0.0.1:{port}/metrics"
    booted = [
        "fleetsim_chargers_connected 20.0",
        'fleetsim_calls_total{action="BootNotification",outcome="ok"} 20.0',
        'fleetsim_call_response_seconds{action="StatusNotification",quantile="0.99"}',
    ]
    running = trio.Event()  # the first second is over: the endpoint is up

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    text = ""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(spawn, config, write=False,
                                                 on_second=lambda row: running.set()))
            await running.wait()
            # scraped while the fleet boots, until every charger has, then the run ends
            while not all(line in text for line in booted):
                text = await trio.to_thread.run_sync(scrape)
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert "fleetsim_generator_loop_lag_seconds" in text
    assert "fleetsim_queued_messages " in text
    assert 'fleetsim_sessions_total{outcome="missed"}' in text
    with pytest.raises(OSError):  # the endpoint is gone with the run
        urllib.request.urlopen(url, timeout=2)


async def test_the_csms_capacity_model_caps_throughput_and_queues(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, capacity_per_s=200.0)
    config = RunConfig(chargers=64, duration_s=4, url=server.url,
                       closed_loop=True, charger=ChargerSpec(connectors=1, idle_s=(1000, 1000)))
    with trio.fail_after(30):
        result = await spawn(config, write=False)
    steady = [row["ok"] for row in result.report["timeline"][2:-2]]
    assert steady and all(150 <= ok <= 230 for ok in steady), steady
    # 64 chargers share 32 workers of 0.16 s each: every CALL waits for a worker
    heartbeat = result.report["calls"]["Heartbeat"]["service_ms"]
    assert heartbeat["p50"] == pytest.approx(320, rel=0.05), heartbeat


async def test_the_report_says_when_every_charger_had_booted(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    """The start paces 40 chargers at 20 a second: the last starts 1.95 s in and boots at
    once (a mock clock: only the pacing takes time)."""
    csms = await start_csms(nursery)
    config = RunConfig(chargers=40, duration_s=4, url=csms.url, ramp_per_s=20)
    with trio.fail_after(20):
        report = (await spawn(config, write=False)).report
    assert report["chargers"]["booted"] == 40
    assert 1.9 <= report["chargers"]["all_booted_s"] <= 2.1
    assert "(all by 2.0" in format_summary(report) or "(all by 1.9" in format_summary(report)
    refused = await start_csms(nursery, boot_status="Rejected")
    config = attrs.evolve(config, url=refused.url, duration_s=2)
    with trio.fail_after(20):
        report = (await spawn(config, write=False)).report
    assert report["chargers"]["booted"] == 0
    assert "all_booted_s" not in report["chargers"]
