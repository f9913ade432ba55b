"""The sans-IO charger driven on a simulated clock against the embedded CSMS's pure core."""

from __future__ import annotations

import attrs
import pytest

from fleetsim.charger.core import ChargerSpec, ChargerState, ConnectorState
from fleetsim.errors import LocalProtocolError

from .sim import Link

SPEC = ChargerSpec(connectors=2, meter_interval_s=10, session_s=(60, 60), idle_s=(5, 5))


def _balanced(link: Link) -> None:
    for action, stats in link.metrics.actions.items():
        assert stats.balanced(), action


def test_boot_then_status_for_every_connector_then_heartbeats() -> None:
    link = Link(ChargerSpec(connectors=3, idle_s=(10_000, 10_000)), heartbeat_interval_s=30)
    link.connect()
    link.run_until(100)
    sent = link.sent_actions()
    assert sent[0] == "BootNotification"
    statuses = [msg[3] for _, d, msg in link.wire if d == "cp->csms" and msg[2] ==
                "StatusNotification"]
    assert [s["connectorId"] for s in statuses] == [0, 1, 2, 3]
    assert {s["status"] for s in statuses} == {"Available"}
    heartbeats = [t for t, d, msg in link.wire if d == "cp->csms" and msg[2] == "Heartbeat"]
    assert heartbeats == pytest.approx([30.001, 60.001, 90.001], abs=0.01)
    assert link.charger.state is ChargerState.BOOTED
    assert link.metrics.booted_ids == {"CP00001"}


def test_a_charging_session_follows_the_ocpp_sequence() -> None:
    link = Link(attrs.evolve(SPEC, connectors=1))
    link.connect()
    link.run_until(200)
    connector1 = []
    for _, direction, msg in link.wire:
        if direction != "cp->csms" or msg[0] != 2:
            continue
        payload = msg[3]
        assert isinstance(payload, dict)
        if payload.get("connectorId") == 1 or msg[2] in ("Authorize", "StopTransaction"):
            connector1.append((msg[2], payload.get("status")))
    first = connector1[: connector1.index(("StopTransaction", None)) + 3]
    names = [name if status is None else f"{name}:{status}" for name, status in first]
    assert names[:5] == ["StatusNotification:Available", "Authorize",
                         "StatusNotification:Preparing", "StartTransaction",
                         "StatusNotification:Charging"]
    assert names[-3:] == ["StopTransaction", "StatusNotification:Finishing",
                          "StatusNotification:Available"]
    assert names.count("MeterValues") == 5  # at 10..50 s; the 60 s reading is meterStop


def test_energy_register_rises_and_never_falls() -> None:
    link = Link(SPEC)
    link.connect()
    link.run_until(3600)
    registers: dict[int, list[int]] = {1: [], 2: []}
    steps: list[int] = []
    last: dict[object, int] = {}
    for _, direction, msg in link.wire:
        if direction == "cp->csms" and msg[0] == 2 and msg[2] == "MeterValues":
            payload = msg[3]
            assert isinstance(payload, dict)
            sample = payload["meterValue"][0]["sampledValue"][0]
            assert sample["measurand"] == "Energy.Active.Import.Register"
            value = int(sample["value"])
            registers[payload["connectorId"]].append(value)
            if payload["transactionId"] in last:
                steps.append(value - last[payload["transactionId"]])
            last[payload["transactionId"]] = value
    for values in registers.values():
        assert len(values) > 50
        assert values == sorted(values)
    # 7.4-22 kW for 10 s is 20-61 Wh per sample, give or take the power's wander.
    assert min(steps) >= 15 and max(steps) <= 75


def test_one_call_in_flight_at_a_time() -> None:
    link = Link(SPEC, latency=0.5)
    link.connect()
    link.run_until(600)
    outstanding: str | None = None
    for _, direction, msg in link.wire:
        if direction == "cp->csms" and msg[0] == 2:
            assert outstanding is None, "a second CALL was sent before the first was answered"
            outstanding = str(msg[1])
        elif direction == "csms->cp" and msg[0] in (3, 4):
            assert msg[1] == outstanding
            outstanding = None


def test_pending_boot_is_retried_and_no_session_starts() -> None:
    link = Link(SPEC, boot_status="Pending", heartbeat_interval_s=20)
    link.connect()
    link.run_until(100)
    assert set(link.sent_actions()) == {"BootNotification"}
    assert link.sent_actions().count("BootNotification") == 5  # t = 0, 20, 40, 60, 80
    assert link.charger.state is ChargerState.BOOTING


def test_timeout_then_late_answer() -> None:
    spec = ChargerSpec(call_timeout_s=5, idle_s=(10_000, 10_000), boot_retry_default_s=30)
    link = Link(spec)
    link.csms_delay = lambda call: 8.0 if call.action == "BootNotification" else 0.0
    link.connect()
    link.run_until(6)
    boot = link.metrics.actions["BootNotification"]
    assert (boot.sent, boot.timeout, boot.ok) == (1, 1, 0)
    link.run_until(9)
    assert boot.late == 1
    assert link.charger.state.value == "booting"
    link.csms_delay = lambda call: 0.0
    link.run_until(40)
    assert link.charger.state.value == "booted"
    _balanced(link)


def test_response_time_includes_queueing_service_time_does_not() -> None:
    link = Link(ChargerSpec(connectors=4, idle_s=(10_000, 10_000)))
    link.csms_delay = lambda call: 1.0
    link.connect()
    link.run_until(30)
    status = link.metrics.actions["StatusNotification"]
    assert status.ok == 5
    assert status.service.get_max_value() < 1_100_000
    # the fifth StatusNotification waited for four answers before it could be written
    assert status.response.get_max_value() > 4_900_000


def test_csms_calls_are_answered() -> None:
    link = Link(ChargerSpec(idle_s=(10_000, 10_000)))
    link.connect()
    link.run_until(1)
    link.send_to_charger('[2,"c1","GetConfiguration",{"key":[1]}]')
    link.send_to_charger('[2,"c2","MakeCoffee",{}]')
    link.send_to_charger('[2,"c3","Reset",[]]')
    link.send_to_charger("garbage")
    link.send_to_charger('[3,"no-such-id",{}]')
    link.run_until(2)
    replies = {str(msg[1]): msg for _, d, msg in link.wire if d == "cp->csms" and msg[0] == 4}
    assert replies["c1"][2] == "TypeConstraintViolation"
    assert replies["c2"][2] == "NotImplemented"
    assert replies["c3"][2] == "FormationViolation"
    assert link.metrics.csms_calls["GetConfiguration"].callerror_sent == {
        "TypeConstraintViolation": 1}
    assert link.metrics.bad_frames == {"not_json": 1, "unknown_id": 1, "bad_call": 1}


def test_disconnect_counts_pending_as_lost_and_finish_as_in_flight() -> None:
    link = Link(SPEC)
    link.csms_delay = lambda call: None if call.action == "Heartbeat" else 0.0
    link.connect()
    link.run_until(1)
    link.charger.disconnected(link.now)
    assert link.charger.state is ChargerState.DISCONNECTED
    assert link.metrics.booted_now == 0
    link.connect()
    link.run_until(62)
    link.charger.finish()
    heartbeat = link.metrics.actions["Heartbeat"]
    assert heartbeat.in_flight == 1
    _balanced(link)
    assert sum(s.in_flight for s in link.metrics.actions.values()) == 1


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    def stream(seed: int) -> list[object]:
        link = Link(ChargerSpec(session_s=(30, 90), idle_s=(5, 30)), seed=seed)
        link.connect()
        link.run_until(2000)
        return [(round(t, 6), msg) for t, _, msg in link.wire]

    assert stream(7) == stream(7)
    assert stream(7) != stream(8)


def test_illegal_connect_raises_and_changes_nothing() -> None:
    link = Link(SPEC)
    link.connect()
    with pytest.raises(LocalProtocolError, match="can't connect when charger is booting"):
        link.charger.connected(0.0)
    assert link.charger.state is ChargerState.BOOTING
    assert link.charger.connectors == [ConnectorState.IDLE, ConnectorState.IDLE]


def test_every_call_balanced_over_a_long_life() -> None:
    link = Link(ChargerSpec(connectors=2, session_s=(30, 600), idle_s=(1, 60)))
    link.csms_delay = lambda call: 40.0 if int(call.unique_id) % 7 == 0 else 0.01
    link.connect()
    link.run_until(4 * 3600)
    link.charger.finish()
    _balanced(link)
    assert link.metrics.actions["StartTransaction"].ok > 10
    assert any(s.timeout for s in link.metrics.actions.values())


def test_drain_waits_for_the_answer_in_flight_then_goes_quiet() -> None:
    link = Link(SPEC)
    link.csms_delay = lambda call: 3.0 if call.action == "Authorize" else 0.0
    link.connect()
    link.run_until(6)  # one Authorize (sent at t=5) is in flight, the other waits behind it
    assert link.charger.queued == 1
    link.charger.drain(link.now, grace_s=10)
    assert link.charger.queued == 0
    assert link.charger.draining and not link.charger.drained
    link.run_until(9)
    assert link.charger.drained
    assert link.metrics.actions["Authorize"].ok >= 1
    # nothing new is sent while draining, and the deadline does not fire again
    sent = len(link.sent_actions())
    link.run_until(100)
    assert len(link.sent_actions()) == sent
    assert link.charger.next_deadline() == float("inf")
    link.charger.finish()
    _balanced(link)


def test_drain_grace_expiry_counts_in_flight() -> None:
    link = Link(SPEC)
    link.csms_delay = lambda call: None if call.action == "Authorize" else 0.0
    link.connect()
    link.run_until(6)
    link.charger.drain(link.now, grace_s=2)
    link.run_until(9)
    assert link.charger.drained
    # one connector's Authorize was in flight, the other's waited behind it in the queue
    assert link.metrics.actions["Authorize"].in_flight == 1
    assert link.metrics.queued_at_shutdown["Authorize"] == 1
    _balanced(link)


def test_answers_during_drain_start_nothing_new() -> None:
    link = Link(SPEC)
    link.csms_delay = lambda call: 2.0
    link.connect()
    link.run_until(1)  # the BootNotification is in flight
    link.charger.drain(link.now, grace_s=10)
    link.run_until(5)
    assert link.metrics.actions["BootNotification"].ok == 1
    assert link.charger.drained
    assert link.charger.connectors == [ConnectorState.IDLE, ConnectorState.IDLE]
    assert link.metrics.queued_at_shutdown == {}
    assert link.charger.next_deadline() == 11.0  # only the end of the grace period is left
    sent = link.sent_actions()
    link.run_until(100)
    assert link.sent_actions() == sent
    assert link.charger.next_deadline() == float("inf")


def test_an_answer_after_shutdown_counts_as_late_not_as_a_csms_fault() -> None:
    link = Link(SPEC)
    link.csms_delay = lambda call: 5.0 if call.action == "Authorize" else 0.0
    link.connect()
    link.run_until(6)
    link.charger.drain(link.now, grace_s=1)
    link.run_until(20)
    authorize = link.metrics.actions["Authorize"]
    assert (authorize.in_flight, authorize.late) == (1, 1)
    assert "unknown_id" not in link.metrics.bad_frames
