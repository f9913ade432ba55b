"""CSMS-initiated OCPP 1.6 commands, answered from the charger's state (sans-IO, fake clock).

Every request used here and every answer and follow-up message the charger produces is checked
against the official OCPP 1.6 JSON schemas from the `ocpp` package.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from fleetsim.charger.answers_16 import COMMANDS
from fleetsim.charger.core import ChargerSpec, ConnectorState
from fleetsim.ocpp import v16

from .schemas import validator_16
from .sim import WALL_OFFSET, Link

SPEC = ChargerSpec(connectors=2, meter_interval_s=10, session_s=(600, 600), idle_s=(5, 5))
_ids = itertools.count()

TX_DEFAULT_16A = {
    "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute", "chargingSchedule": {
        "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}}

SAMPLES: dict[str, dict[str, Any]] = {
    "ClearChargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"},
    "SetChargingProfile": {"connectorId": 0, "csChargingProfiles": TX_DEFAULT_16A},
    "CancelReservation": {"reservationId": 7},
    "GetDiagnostics": {"location": "ftp://logs.example/", "startTime": "2026-01-01T00:00:00Z"},
    "ReserveNow": {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "R1",
                   "reservationId": 7},
    "UpdateFirmware": {"location": "https://fw.example/1.2.bin",
                       "retrieveDate": "2020-01-01T00:00:00Z"},
    "ChangeAvailability": {"connectorId": 1, "type": "Inoperative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "30"},
    "ClearCache": {},
    "DataTransfer": {"vendorId": "com.example", "messageId": "ping", "data": "x"},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"},
    "GetConfiguration": {"key": ["HeartbeatInterval", "NoSuchKey"]},
    "GetLocalListVersion": {},
    "RemoteStartTransaction": {"idTag": "REMOTE-1"},
    "RemoteStopTransaction": {"transactionId": 1},
    "Reset": {"type": "Soft"},
    "SendLocalList": {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "T1", "idTagInfo": {"status": "Accepted"}}, {"idTag": "T2"}]},
    "TriggerMessage": {"requestedMessage": "StatusNotification"},
    "UnlockConnector": {"connectorId": 1},
}


def booted(spec: ChargerSpec = SPEC, until: float = 1.0) -> Link:
    link = Link(spec)
    link.connect()
    link.run_until(until)
    return link


def command(link: Link, action: str, payload: dict[str, Any]) -> list[Any]:
    """Send a CALL from the CSMS now, run a moment, return the charger's answer frame."""
    validator_16(action).validate(payload)
    unique_id = f"csms-{next(_ids)}"
    link.send_to_charger(orjson.dumps([2, unique_id, action, payload]).decode())
    link.run_until(link.now + 0.01)
    for _, direction, msg in link.wire:
        if direction == "cp->csms" and msg[1] == unique_id:
            if msg[0] == 3:
                validator_16(f"{action}Response").validate(msg[2])
            return msg
    raise AssertionError(f"{action} was not answered")


def calls_after(link: Link, t: float, action: str) -> list[dict[str, Any]]:
    return [msg[3] for when, d, msg in link.wire
            if d == "cp->csms" and msg[0] == 2 and msg[2] == action and when >= t]


def test_every_command_has_a_schema_checked_sample() -> None:
    assert set(COMMANDS) == set(SAMPLES), "add a sample (and a test) for every new command"
    assert set(COMMANDS) == v16.CSMS_ACTIONS
    for action, payload in SAMPLES.items():
        link = booted()
        answer = command(link, action, payload)
        assert answer[0] == 3, answer
        link.run_until(link.now + 30)
        for _, direction, msg in link.wire:
            if direction == "cp->csms" and msg[0] == 2:
                validator_16(msg[2]).validate(msg[3])


def test_get_configuration() -> None:
    link = booted()
    everything = command(link, "GetConfiguration", {})[2]
    keys = {entry["key"]: entry for entry in everything["configurationKey"]}
    assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True,
                                          "value": "2"}
    assert keys["HeartbeatInterval"]["value"] == "60"  # learnt from the BootNotification
    named = command(link, "GetConfiguration", {"key": ["MeterValueSampleInterval", "Nope"]})[2]
    assert named == {"configurationKey": [{"key": "MeterValueSampleInterval",
                                           "readonly": False, "value": "10"}],
                     "unknownKey": ["Nope"]}


@pytest.mark.parametrize(("key", "value", "status"), [
    ("NumberOfConnectors", "4", "Rejected"),
    ("HeartbeatInterval", "soon", "Rejected"),
    ("HeartbeatInterval", "0", "Rejected"),
    ("AuthorizeRemoteTxRequests", "maybe", "Rejected"),
    ("NoSuchKey", "1", "NotSupported"),
    ("LocalPreAuthorize", "TRUE", "Accepted"),
])
def test_change_configuration_statuses(key: str, value: str, status: str) -> None:
    link = booted()
    assert command(link, "ChangeConfiguration", {"key": key, "value": value})[2] == {
        "status": status}


def test_heartbeat_interval_change_moves_the_heartbeat_clock() -> None:
    link = booted(ChargerSpec(idle_s=(10_000, 10_000)))
    changed_at = link.now
    assert command(link, "ChangeConfiguration",
                   {"key": "HeartbeatInterval", "value": "7"})[2]["status"] == "Accepted"
    link.run_until(changed_at + 36)
    beats = [when for when, d, msg in link.wire
             if d == "cp->csms" and msg[0] == 2 and msg[2] == "Heartbeat"]
    assert beats == pytest.approx([changed_at + 7 * n for n in range(1, 6)], abs=0.01)


def test_meter_sample_interval_change_takes_effect() -> None:
    link = booted()
    link.run_until(20)  # both connectors are charging
    command(link, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "3"})
    start = link.now + 10
    link.run_until(start + 30)
    times = sorted(when for when, d, msg in link.wire if d == "cp->csms" and msg[0] == 2
                   and msg[2] == "MeterValues" and msg[3]["connectorId"] == 1 and when >= start)
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
    assert gaps == {3.0}


def test_remote_start_on_a_free_connector_and_rejected_on_a_busy_one() -> None:
    link = booted(ChargerSpec(connectors=1, idle_s=(10_000, 10_000), session_s=(600, 600)))
    assert command(link, "RemoteStartTransaction",
                   {"idTag": "APP-7", "connectorId": 1})[2] == {"status": "Accepted"}
    link.run_until(link.now + 1)
    assert calls_after(link, 0, "Authorize") == [{"idTag": "APP-7"}]
    start = calls_after(link, 0, "StartTransaction")
    assert start[0]["idTag"] == "APP-7" and start[0]["connectorId"] == 1
    assert link.charger.connectors == [ConnectorState.CHARGING]
    assert command(link, "RemoteStartTransaction",
                   {"idTag": "APP-8", "connectorId": 1})[2] == {"status": "Rejected"}
    assert command(link, "RemoteStartTransaction",
                   {"idTag": "APP-8", "connectorId": 5})[2] == {"status": "Rejected"}


def test_remote_stop_ends_the_matching_transaction() -> None:
    link = booted(ChargerSpec(connectors=1, idle_s=(5, 5), session_s=(600, 600)))
    link.run_until(20)
    transaction_id = calls_after(link, 0, "MeterValues")[0]["transactionId"]
    assert command(link, "RemoteStopTransaction",
                   {"transactionId": transaction_id + 100})[2] == {"status": "Rejected"}
    t = link.now
    assert command(link, "RemoteStopTransaction",
                   {"transactionId": transaction_id})[2] == {"status": "Accepted"}
    link.run_until(t + 1)
    stop = calls_after(link, t, "StopTransaction")
    assert stop and stop[0]["reason"] == "Remote" and stop[0]["transactionId"] == transaction_id
    statuses = [s["status"] for s in calls_after(link, t, "StatusNotification")]
    assert statuses == ["Finishing", "Available"]


def test_reset_during_a_transaction_stops_it_and_reboots() -> None:
    link = booted(ChargerSpec(connectors=2, idle_s=(5, 5), session_s=(600, 600)))
    link.run_until(10)
    assert link.charger.connectors == [ConnectorState.CHARGING, ConnectorState.CHARGING]
    t = link.now
    assert command(link, "Reset", {"type": "Hard"})[2] == {"status": "Accepted"}
    link.run_until(t + 2)
    stops = calls_after(link, t, "StopTransaction")
    assert [s["reason"] for s in stops] == ["HardReset", "HardReset"]
    assert link.charger.wants_reconnect
    assert calls_after(link, t, "Authorize") == []
    link.charger.disconnected(link.now)
    link.connect()
    link.run_until(link.now + 1)
    assert link.sent_actions().count("BootNotification") == 2
    assert link.charger.booted


def test_trigger_message() -> None:
    link = booted(ChargerSpec(idle_s=(10_000, 10_000)))
    t = link.now
    answer = command(link, "TriggerMessage",
                     {"requestedMessage": "StatusNotification", "connectorId": 2})
    assert answer[2] == {"status": "Accepted"}
    link.run_until(t + 1)
    assert [(s["connectorId"], s["status"]) for s in
            calls_after(link, t, "StatusNotification")] == [(2, "Available")]
    assert command(link, "TriggerMessage", {"requestedMessage": "MeterValues",
                                            "connectorId": 7})[2] == {"status": "Rejected"}
    for message in ("Heartbeat", "BootNotification", "MeterValues",
                    "DiagnosticsStatusNotification", "FirmwareStatusNotification"):
        t = link.now
        assert command(link, "TriggerMessage",
                       {"requestedMessage": message})[2] == {"status": "Accepted"}
        link.run_until(t + 1)
        assert calls_after(link, t, message), message


def test_unlock_connector_stops_its_session() -> None:
    link = booted(ChargerSpec(connectors=1, idle_s=(5, 5), session_s=(600, 600)))
    link.run_until(10)
    t = link.now
    assert command(link, "UnlockConnector", {"connectorId": 1})[2] == {"status": "Unlocked"}
    link.run_until(t + 1)
    assert calls_after(link, t, "StopTransaction")[0]["reason"] == "UnlockCommand"
    assert command(link, "UnlockConnector", {"connectorId": 9})[2] == {"status": "NotSupported"}


def test_change_availability_now_and_scheduled() -> None:
    link = booted(ChargerSpec(connectors=2, idle_s=(5, 5), session_s=(20, 20)))
    link.run_until(7)  # both connectors are charging
    t = link.now
    assert command(link, "ChangeAvailability",
                   {"connectorId": 2, "type": "Inoperative"})[2] == {"status": "Scheduled"}
    link.run_until(t + 60)
    statuses = [s["status"] for s in calls_after(link, t, "StatusNotification")
                if s["connectorId"] == 2]
    assert statuses[-1] == "Unavailable"
    assert ConnectorState.IDLE is link.charger.connectors[1]
    starts = [s["connectorId"] for s in calls_after(link, t + 25, "StartTransaction")]
    assert starts and set(starts) == {1}  # connector 2 takes no more sessions
    t = link.now
    assert command(link, "ChangeAvailability",
                   {"connectorId": 2, "type": "Operative"})[2] == {"status": "Accepted"}
    link.run_until(t + 10)
    assert {s["connectorId"] for s in calls_after(link, t, "StartTransaction")} >= {2}


def test_local_list_versions() -> None:
    link = booted()
    assert command(link, "GetLocalListVersion", {})[2] == {"listVersion": 0}
    assert command(link, "SendLocalList", SAMPLES["SendLocalList"])[2] == {"status": "Accepted"}
    assert command(link, "GetLocalListVersion", {})[2] == {"listVersion": 1}
    stale = {"listVersion": 1, "updateType": "Differential"}
    assert command(link, "SendLocalList", stale)[2] == {"status": "VersionMismatch"}
    newer = {"listVersion": 2, "updateType": "Differential",
             "localAuthorizationList": [{"idTag": "T1"}]}
    assert command(link, "SendLocalList", newer)[2] == {"status": "Accepted"}
    assert link.charger.local_list.entries == {}


@pytest.mark.parametrize(("action", "payload", "code"), [
    ("ChangeConfiguration", {"key": "HeartbeatInterval"}, "OccurrenceConstraintViolation"),
    ("Reset", {"type": "Warm"}, "PropertyConstraintViolation"),
    ("RemoteStartTransaction", {"idTag": 42}, "TypeConstraintViolation"),
    ("RemoteStartTransaction", {"idTag": "x" * 21}, "PropertyConstraintViolation"),
    ("UnlockConnector", {}, "OccurrenceConstraintViolation"),
    ("GetConfiguration", {"key": ["x" * 51]}, "PropertyConstraintViolation"),
])
def test_payloads_that_break_the_schema_get_the_right_callerror(
    action: str, payload: dict[str, Any], code: str
) -> None:
    link = booted()
    unique_id = f"bad-{next(_ids)}"
    link.send_to_charger(orjson.dumps([2, unique_id, action, payload]).decode())
    link.run_until(link.now + 0.01)
    replies = [msg for _, d, msg in link.wire if d == "cp->csms" and msg[1] == unique_id]
    assert replies and replies[0][0] == 4 and replies[0][2] == code
    assert link.metrics.csms_calls[action].callerror_sent == {code: 1}


def test_a_reservation_holds_the_connector_for_its_user() -> None:
    link = booted(ChargerSpec(connectors=1, idle_s=(5, 5), session_s=(10, 10)))
    expiry = sim_wall(link, 100)
    request = {"connectorId": 1, "expiryDate": expiry, "idTag": "RESERVED", "reservationId": 3}
    assert command(link, "ReserveNow", request)[2] == {"status": "Accepted"}
    assert calls_after(link, link.now - 0.01, "StatusNotification")[-1]["status"] == "Reserved"
    link.run_until(8)
    start = calls_after(link, 0, "StartTransaction")[0]
    assert start["idTag"] == "RESERVED" and start["reservationId"] == 3
    assert command(link, "ReserveNow", {**request, "reservationId": 4})[2] == {
        "status": "Occupied"}


def reserve(link: Link, connector_id: int, reservation_id: int, expires_in: float) -> None:
    request = {"connectorId": connector_id, "expiryDate": sim_wall(link, expires_in),
               "idTag": "R", "reservationId": reservation_id}
    assert command(link, "ReserveNow", request)[2] == {"status": "Accepted"}


def test_an_unused_reservation_expires() -> None:
    link = booted(ChargerSpec(connectors=1, idle_s=(1000, 1000)))
    reserve(link, 1, 5, expires_in=2)
    t = link.now
    link.run_until(t + 3)
    assert [s["status"] for s in calls_after(link, t, "StatusNotification")] == ["Available"]
    assert command(link, "CancelReservation", {"reservationId": 5})[2] == {"status": "Rejected"}


def test_cancel_reservation() -> None:
    link = booted(ChargerSpec(connectors=2, idle_s=(1000, 1000)))
    reserve(link, 2, 9, expires_in=100)
    t = link.now
    assert command(link, "CancelReservation", {"reservationId": 9})[2] == {"status": "Accepted"}
    link.run_until(t + 1)
    assert [(s["connectorId"], s["status"]) for s in
            calls_after(link, t, "StatusNotification")] == [(2, "Available")]


def test_diagnostics_upload_reports_its_progress() -> None:
    link = booted(ChargerSpec(idle_s=(1000, 1000)))
    t = link.now
    answer = command(link, "GetDiagnostics", {"location": "ftp://logs.example/"})[2]
    assert answer["fileName"].startswith("diagnostics-CP00001-")
    link.run_until(t + 10)
    sent = [(round(when - t), msg[3]["status"]) for when, d, msg in link.wire
            if d == "cp->csms" and msg[0] == 2 and msg[2] == "DiagnosticsStatusNotification"]
    assert sent == [(1, "Uploading"), (4, "Uploaded")]


def test_firmware_update_downloads_installs_reboots_and_reports_installed() -> None:
    link = booted(ChargerSpec(idle_s=(1000, 1000)))
    t = link.now
    retrieve = sim_wall(link, 2)
    assert command(link, "UpdateFirmware", {"location": "https://fw.example/x.bin",
                                            "retrieveDate": retrieve})[2] == {}
    link.run_until(t + 20)
    assert [s["status"] for s in calls_after(link, t, "FirmwareStatusNotification")] == [
        "Downloading", "Downloaded", "Installing"]
    assert link.charger.wants_reconnect
    link.charger.disconnected(link.now)
    link.connect()
    link.run_until(link.now + 1)
    assert link.sent_actions()[-1] == "FirmwareStatusNotification"
    assert calls_after(link, t, "FirmwareStatusNotification")[-1]["status"] == "Installed"


def sim_wall(link: Link, seconds_from_now: float) -> str:
    """An ISO date `seconds_from_now` on the simulated clock."""
    return v16.iso_timestamp(link.now + seconds_from_now + WALL_OFFSET)


def profile(purpose: str, limit: float, *, unit: str = "A", stack: int = 0, pid: int = 1,
            kind: str = "Absolute", periods: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": {
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": periods or [{"startPeriod": 0, "limit": limit}]}}


def reported_power(link: Link, after: float, connector_id: int = 1) -> list[float]:
    return [float(mv["meterValue"][0]["sampledValue"][1]["value"])
            for mv in calls_after(link, after, "MeterValues")
            if mv["connectorId"] == connector_id]


CHARGING_22KW = ChargerSpec(connectors=1, idle_s=(5, 5), session_s=(3600, 3600),
                            power_w=(22_000, 22_000))


def test_a_tx_default_profile_limits_the_reported_power() -> None:
    link = booted(CHARGING_22KW)
    link.run_until(30)
    assert min(reported_power(link, 0)) > 19_000
    answer = command(link, "SetChargingProfile",
                     {"connectorId": 0, "csChargingProfiles": profile("TxDefaultProfile", 6)})
    assert answer[2] == {"status": "Accepted"}
    t = link.now
    link.run_until(t + 60)
    limited = reported_power(link, t + 10)
    assert limited and max(limited) <= 6 * 230 * 3 + 1
    # the energy register follows the limited power: ~4.1 kW for 10 s is ~11.5 Wh
    registers = [int(mv["meterValue"][0]["sampledValue"][0]["value"])
                 for mv in calls_after(link, t + 10, "MeterValues")]
    steps = [b - a for a, b in itertools.pairwise(registers)]
    assert steps and all(10 <= step <= 13 for step in steps)


def test_stack_levels_tx_profiles_and_the_charge_point_maximum() -> None:
    link = booted(ChargerSpec(connectors=2, idle_s=(5, 5), session_s=(3600, 3600),
                              power_w=(22_000, 22_000)))
    link.run_until(20)
    set_profile = "SetChargingProfile"
    for stack, limit in ((0, 16), (3, 10)):
        assert command(link, set_profile, {"connectorId": 0, "csChargingProfiles": profile(
            "TxDefaultProfile", limit, stack=stack, pid=10 + stack)})[2]["status"] == "Accepted"
    # only during a transaction, and only on a connector
    tx = profile("TxProfile", 5_000, unit="W", pid=20)
    assert command(link, set_profile, {"connectorId": 0,
                                       "csChargingProfiles": tx})[2]["status"] == "Rejected"
    assert command(link, set_profile, {"connectorId": 2,
                                       "csChargingProfiles": tx})[2]["status"] == "Accepted"
    maximum = profile("ChargePointMaxProfile", 8_000, unit="W", pid=30)
    assert command(link, set_profile, {"connectorId": 1,
                                       "csChargingProfiles": maximum})[2]["status"] == "Rejected"
    assert command(link, set_profile, {"connectorId": 0,
                                       "csChargingProfiles": maximum})[2]["status"] == "Accepted"
    too_high = profile("TxDefaultProfile", 1, stack=9, pid=40)
    assert command(link, set_profile, {"connectorId": 0,
                                       "csChargingProfiles": too_high})[2]["status"] == "Rejected"
    t = link.now
    link.run_until(t + 30)
    # connector 1: stack level 3 wins (10 A = 6900 W), capped by half the 8 kW maximum
    assert set(reported_power(link, t + 10, 1)) == {4000.0}
    # connector 2: its TxProfile (5 kW) and the same maximum share
    assert set(reported_power(link, t + 10, 2)) == {4000.0}
    assert command(link, "ClearChargingProfile", {"chargingProfilePurpose":
                                                  "ChargePointMaxProfile"})[2] == {
        "status": "Accepted"}
    t = link.now
    link.run_until(t + 30)
    assert set(reported_power(link, t + 10, 1)) == {6900.0}
    assert set(reported_power(link, t + 10, 2)) == {5000.0}
    assert command(link, "ClearChargingProfile", {"id": 99})[2] == {"status": "Unknown"}


def test_a_relative_profile_steps_down_during_the_session() -> None:
    link = booted(CHARGING_22KW)
    steps = [{"startPeriod": 0, "limit": 11_000}, {"startPeriod": 60, "limit": 3_000}]
    assert command(link, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile(
        "TxDefaultProfile", 0, unit="W", kind="Relative", periods=steps)})[2] == {
        "status": "Accepted"}
    link.run_until(100)
    powers = reported_power(link, 0)
    assert powers[:4] == [11_000.0] * 4 and powers[-3:] == [3_000.0] * 3


def test_a_tx_profile_ends_with_its_transaction() -> None:
    link = booted(ChargerSpec(connectors=1, idle_s=(5, 5), session_s=(30, 30),
                              power_w=(22_000, 22_000)))
    link.run_until(10)
    assert command(link, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile(
        "TxProfile", 2_000, unit="W")})[2] == {"status": "Accepted"}
    link.run_until(30)
    assert set(reported_power(link, 12)) == {2000.0}
    link.run_until(80)  # the next session is not limited
    assert min(reported_power(link, 50)) > 19_000
