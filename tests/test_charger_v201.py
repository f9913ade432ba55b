"""OCPP 2.0.1 chargers: what they send and answer validates against the official 2.0.1
schemas, transactions carry consecutive seqNos, and CSMS commands act on the station."""

from __future__ import annotations

import functools
import json
import random
from collections import Counter
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

from fleetsim import (
    Behaviour,
    CsmsConfig,
    CsmsServer,
    Distribution,
    Profile,
    RunConfig,
    Sessions,
    resolve_profile,
    serve_csms,
    spawn,
)
from fleetsim.behaviour.profile import Seconds, load_profile, shipped_profiles
from fleetsim.charger.answers_201 import HANDLERS
from fleetsim.charger.core import ChargerSpec, ConnectorState
from fleetsim.csms.commands_16 import MIX
from fleetsim.csms.commands_201 import MIX_201, pick_command_201
from fleetsim.ocpp import v201
from fleetsim.ocpp.frames import Call, encode_frame
from fleetsim.ocpp.v16 import iso_timestamp as v16_iso

from .conftest import start_csms
from .schemas import validator_16, validator_201
from .sim import WALL_OFFSET, Link

SPEC = ChargerSpec(ocpp="2.0.1", connectors=2, meter_interval_s=10, session_s=(60, 60),
                   idle_s=(5, 5))




def _check_wire(wire: list[tuple[float, str, list[Any]]]) -> dict[str, int]:
    """Validate every CALL and CALLRESULT on the wire; count them by schema."""
    pending: dict[str, tuple[str, str]] = {}
    checked: dict[str, int] = {}
    for _, direction, message in wire:
        if message[0] == 2:
            _, unique_id, action, payload = message
            validator_201(f"{action}Request").validate(payload)
            pending[unique_id] = (direction, action)
            checked[action] = checked.get(action, 0) + 1
        elif message[0] == 3:
            _, action = pending.pop(message[1])
            validator_201(f"{action}Response").validate(message[2])
            checked[f"{action}Response"] = checked.get(f"{action}Response", 0) + 1
    return checked


def _events(link: Link) -> list[dict[str, Any]]:
    return [m[3] for _, d, m in link.wire
            if d == "cp->csms" and m[0] == 2 and m[2] == "TransactionEvent"]


def test_a_2_0_1_charger_boots_reports_status_per_evse_and_charges() -> None:
    link = Link(SPEC, heartbeat_interval_s=30)
    link.connect()
    link.run_until(200)
    assert link.sent_actions()[0] == "BootNotification"
    statuses = [m[3] for _, d, m in link.wire if d == "cp->csms" and m[0] == 2
                and m[2] == "StatusNotification"]
    assert [(s["evseId"], s["connectorStatus"]) for s in statuses[:2]] == [
        (1, "Available"), (2, "Available")]
    assert {s["connectorStatus"] for s in statuses} == {"Available", "Occupied"}
    events = _events(link)
    kinds = [e["eventType"] for e in events]
    assert "Started" in kinds and "Updated" in kinds and "Ended" in kinds
    checked = _check_wire(link.wire)
    assert checked["TransactionEventResponse"] == len(events)
    assert link.csms_stats.seqno_gaps == 0 and link.csms_stats.seqno_duplicates == 0


def test_transactions_carry_consecutive_seqnos_and_their_own_ids() -> None:
    link = Link(SPEC, heartbeat_interval_s=300)
    link.connect()
    link.run_until(3 * 3600)
    by_transaction: dict[str, list[dict[str, Any]]] = {}
    for event in _events(link):
        by_transaction.setdefault(event["transactionInfo"]["transactionId"], []).append(event)
    assert len(by_transaction) > 50
    for transaction_id, events in by_transaction.items():
        assert transaction_id.startswith("CP00001-")
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        assert events[0]["eventType"] == "Started" and events[0]["idToken"]["idToken"]
        assert events[0]["evse"]["connectorId"] == 1
        if events[-1]["eventType"] == "Ended":
            assert events[-1]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
            assert all(e["eventType"] == "Updated" for e in events[1:-1])
            start = events[0]["meterValue"][0]["sampledValue"][0]["value"]
            stop = events[-1]["meterValue"][0]["sampledValue"][0]["value"]
            assert stop > start
    assert link.csms_stats.seqno_gaps == 0 and link.csms_stats.seqno_duplicates == 0


@pytest.mark.parametrize("path", shipped_profiles(), ids=lambda p: p.stem)
def test_every_shipped_behaviour_speaks_valid_2_0_1(path: Any) -> None:
    profile = load_profile(path)
    events = 0
    for seed, behaviour in enumerate(profile.behaviour):
        spec = attrs.evolve(behaviour, ocpp="2.0.1").charger_spec(
            profile.event, time_scale=30, warm_start=True)
        link = Link(spec, seed=seed, heartbeat_interval_s=300)
        link.connect()
        link.run_until(1200)
        link.charger.finish()
        events += _check_wire(link.wire).get("TransactionEvent", 0)
        assert link.csms_stats.seqno_gaps == 0, behaviour.name
    assert events > 0


def _booted(spec: ChargerSpec = SPEC) -> Link:
    link = Link(spec)
    link.connect()
    link.run_until(1)
    return link


def _command(link: Link, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send a CSMS CALL and return the charger's answer payload (or the CALLERROR code)."""
    unique_id = f"csms-{len(link.wire)}"
    link.send_to_charger(encode_frame(Call(unique_id, action, payload)))
    link.run_until(link.now + 0.01)
    for _, direction, message in reversed(link.wire):
        if direction == "cp->csms" and message[1] == unique_id:
            if message[0] == 3:
                validator_201(f"{action}Response").validate(message[2])
                result: dict[str, Any] = message[2]
                return result
            return {"error": message[2]}
    raise AssertionError(f"no answer to {action}")


def test_request_start_and_stop_drive_a_transaction() -> None:
    link = _booted(attrs.evolve(SPEC, idle_s=(10_000, 10_000)))
    answer = _command(link, "RequestStartTransaction", {
        "idToken": {"idToken": "REMOTE1", "type": "ISO14443"}, "remoteStartId": 42, "evseId": 2})
    assert answer == {"status": "Accepted"}
    link.run_until(link.now + 5)
    (started,) = [e for e in _events(link) if e["eventType"] == "Started"]
    assert started["transactionInfo"]["remoteStartId"] == 42
    assert started["evse"]["id"] == 2 and started["idToken"]["idToken"] == "REMOTE1"
    transaction_id = started["transactionInfo"]["transactionId"]
    status = _command(link, "GetTransactionStatus", {"transactionId": transaction_id})
    assert status["ongoingIndicator"] is True
    assert _command(link, "RequestStopTransaction", {"transactionId": "nope"}) == {
        "status": "Rejected"}
    assert _command(link, "RequestStopTransaction", {"transactionId": transaction_id}) == {
        "status": "Accepted"}
    link.run_until(link.now + 5)
    ended = _events(link)[-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert ended["triggerReason"] == "RemoteStop"
    assert _command(link, "GetTransactionStatus", {"transactionId": transaction_id})[
        "ongoingIndicator"] is False
    _check_wire(link.wire)


def test_device_model_commands_change_the_charger() -> None:
    link = _booted(attrs.evolve(SPEC, idle_s=(10_000, 10_000)))
    answer = _command(link, "SetVariables", {"setVariableData": [{
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
        "attributeValue": "7"}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    start = link.now
    link.run_until(start + 36)
    beats = [t for t, d, m in link.wire if d == "cp->csms" and m[0] == 2 and m[2] == "Heartbeat"]
    assert beats == pytest.approx([start + 7 * n for n in range(1, 6)], abs=0.05)
    got = _command(link, "GetVariables", {"getVariableData": [{
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    assert got["getVariableResult"][0]["attributeValue"] == "7"
    assert _command(link, "GetBaseReport", {"requestId": 3, "reportBase": "FullInventory"}) == {
        "status": "Accepted"}
    link.run_until(link.now + 1)
    reports = [m[3] for _, d, m in link.wire if d == "cp->csms" and m[0] == 2
               and m[2] == "NotifyReport"]
    assert reports and not reports[-1].get("tbc", False)
    _check_wire(link.wire)


def test_reset_availability_unlock_and_triggers() -> None:
    link = _booted(attrs.evolve(SPEC, idle_s=(5, 5), session_s=(600, 600)))
    link.run_until(20)
    assert link.charger.connectors == [ConnectorState.CHARGING] * 2
    assert _command(link, "UnlockConnector", {"evseId": 1, "connectorId": 1}) == {
        "status": "OngoingAuthorizedTransaction"}
    assert _command(link, "UnlockConnector", {"evseId": 9, "connectorId": 1}) == {
        "status": "UnknownConnector"}
    assert _command(link, "ChangeAvailability", {
        "operationalStatus": "Inoperative", "evse": {"id": 1}}) == {"status": "Scheduled"}
    assert _command(link, "TriggerMessage", {"requestedMessage": "TransactionEvent"}) == {
        "status": "Accepted"}
    assert _command(link, "TriggerMessage", {"requestedMessage": "BootNotification"}) == {
        "status": "Rejected"}
    link.run_until(link.now + 1)
    assert [e["triggerReason"] for e in _events(link)].count("Trigger") == 2
    assert _command(link, "Reset", {"type": "Immediate"}) == {"status": "Accepted"}
    link.run_until(link.now + 5)
    ended = [e for e in _events(link) if e["eventType"] == "Ended"]
    assert [e["transactionInfo"]["stoppedReason"] for e in ended] == ["ImmediateReset"] * 2
    assert link.charger.wants_reconnect
    _check_wire(link.wire)
    assert _command(link, "Reset", {"type": "Soft"}) == {"error": "PropertyConstraintViolation"}
    link.charger.disconnected(link.now, reboot=True)
    link.connect()
    link.run_until(link.now + 1)
    assert [boot["reason"] for boot in _sent(link, "BootNotification")] == [
        "PowerUp", "RemoteReset"]
    link.drop()  # a lost connection, no reboot asked for: taken for a power cut
    link.run_until(link.now + 30)
    assert _sent(link, "BootNotification")[-1]["reason"] == "PowerUp"


def test_every_command_of_the_csms_mix_gets_a_valid_answer() -> None:
    """Whatever the embedded CSMS's 2.0.1 mix sends, the charger answers, validly."""
    link = _booted(attrs.evolve(SPEC, idle_s=(5, 5), session_s=(600, 600)))
    link.run_until(20)
    rng = random.Random(5)
    answered: dict[str, int] = {}
    unimplemented: set[str] = set()
    for _ in range(400):
        running = [str(t) for t in link.charger.transaction_ids]
        action, payload = pick_command_201(rng, running, link.now + WALL_OFFSET)
        answer = _command(link, action, payload)
        if "error" in answer:
            assert answer["error"] == "NotImplemented", (action, answer)
            unimplemented.add(action)
        else:
            answered[action] = answered.get(action, 0) + 1
        link.run_until(link.now + 1)
    assert len(answered) >= 18
    assert not unimplemented
    _check_wire(link.wire)


async def test_a_mixed_fleet_speaks_both_versions_to_the_embedded_csms(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, commands_per_s=20.0)
    behaviours = tuple(
        Behaviour(name=f"v{version}", weight=1, ocpp=version,
                  meter_interval=Seconds(1),
                  sessions=Sessions(arrivals_per_hour=1800,
                                    duration=Distribution("uniform", low=2, high=4)))
        for version in ("1.6", "2.0.1"))
    config = RunConfig(chargers=20, duration_s=5, url=server.url,
                       profile=Profile(behaviour=behaviours, name="mixed"))
    with trio.fail_after(30):
        result = await spawn(config, write=False)
    report = result.report
    assert report["target"]["ocpp"] == ["1.6", "2.0.1"]
    assert min(server.stats.subprotocols.values()) >= 10  # a Reset reconnects
    assert report["calls"]["TransactionEvent"]["ok"] > 10
    assert report["calls"]["StartTransaction"]["ok"] > 5
    assert server.stats.seqno_gaps == 0 and server.stats.seqno_duplicates == 0
    for action, stats in report["calls"].items():
        assert server.stats.received[action] >= stats["ok"], action
    assert sum(server.stats.commands_sent.values()) > 20
    assert report["csms_calls"]


def _sent(link: Link, action: str) -> list[dict[str, Any]]:
    return [m[3] for _, d, m in link.wire if d == "cp->csms" and m[0] == 2 and m[2] == action]


def test_smart_charging_caps_the_power_in_transaction_events() -> None:
    link = _booted(attrs.evolve(SPEC, connectors=1, idle_s=(5, 5), session_s=(3600, 3600),
                                power_w=(22_000, 22_000)))
    link.run_until(30)
    profile = {"id": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Absolute", "chargingSchedule": [{
                   "id": 1, "chargingRateUnit": "W",
                   "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 5000}]}]}
    assert _command(link, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile}) == {
        "status": "Accepted"}
    link.run_until(link.now + 30)
    power = [v["value"] for e in _events(link)[-2:] for v in e["meterValue"][0]["sampledValue"]
             if v["measurand"] == "Power.Active.Import"]
    assert power and max(power) <= 5000
    assert _command(link, "GetChargingProfiles", {
        "requestId": 9, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}}) == {
        "status": "Accepted"}
    link.run_until(link.now + 1)
    (report,) = _sent(link, "ReportChargingProfiles")
    assert report["requestId"] == 9 and report["chargingProfile"] == [profile]
    assert _command(link, "ClearChargingProfile", {"chargingProfileId": 7}) == {
        "status": "Accepted"}
    assert _command(link, "GetChargingProfiles", {"requestId": 10, "chargingProfile": {}}) == {
        "status": "NoProfiles"}
    _check_wire(link.wire)


def test_get_log_and_update_firmware_report_their_progress() -> None:
    link = _booted(attrs.evolve(SPEC, idle_s=(10_000, 10_000)))
    answer = _command(link, "GetLog", {"logType": "DiagnosticsLog", "requestId": 4,
                                       "log": {"remoteLocation": "ftp://logs.example/"}})
    assert answer["status"] == "Accepted" and answer["filename"]
    retrieve = v16_iso(link.now + WALL_OFFSET + 1)
    assert _command(link, "UpdateFirmware", {"requestId": 5, "firmware": {
        "location": "https://fw.example/x.bin", "retrieveDateTime": retrieve}}) == {
        "status": "Accepted"}
    link.run_until(link.now + 20)
    assert [(p["status"], p["requestId"]) for p in _sent(link, "LogStatusNotification")] == [
        ("Uploading", 4), ("Uploaded", 4)]
    assert [p["status"] for p in _sent(link, "FirmwareStatusNotification")] == [
        "Downloading", "Downloaded", "Installing"]
    assert link.charger.wants_reconnect
    _check_wire(link.wire)
    link.charger.disconnected(link.now, reboot=True)
    link.connect()
    link.run_until(link.now + 1)
    assert _sent(link, "FirmwareStatusNotification")[-1] == {"status": "Installed",
                                                              "requestId": 5}
    assert _sent(link, "SecurityEventNotification")[-1]["type"] == "FirmwareUpdated"
    assert _sent(link, "BootNotification")[-1]["reason"] == "FirmwareUpdate"
    _check_wire(link.wire)


MINIMAL_REQUESTS: dict[str, dict[str, Any]] = {
    "CertificateSigned": {"certificateChain": "-----BEGIN CERTIFICATE-----"},
    "ClearDisplayMessage": {"id": 1},
    "ClearVariableMonitoring": {"id": [1, 2]},
    "CostUpdated": {"totalCost": 1.5, "transactionId": "CP00001-1"},
    "CustomerInformation": {"requestId": 1, "report": True, "clear": False},
    "DeleteCertificate": {"certificateHashData": {
        "hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b",
        "serialNumber": "c"}},
    "GetCompositeSchedule": {"duration": 3600, "evseId": 1, "chargingRateUnit": "A"},
    "GetDisplayMessages": {"requestId": 1},
    "GetInstalledCertificateIds": {},
    "GetMonitoringReport": {"requestId": 1},
    "InstallCertificate": {"certificateType": "CSMSRootCertificate", "certificate": "x"},
    "PublishFirmware": {"location": "https://fw.example/x", "checksum": "abc", "requestId": 1},
    "SetDisplayMessage": {"message": {"id": 1, "priority": "NormalCycle", "message": {
        "format": "ASCII", "content": "hello"}}},
    "SetMonitoringBase": {"monitoringBase": "All"},
    "SetMonitoringLevel": {"severity": 5},
    "SetNetworkProfile": {"configurationSlot": 1, "connectionData": {
        "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": "wss://csms.example",
        "messageTimeout": 30, "securityProfile": 1, "ocppInterface": "Wired0"}},
    "SetVariableMonitoring": {"setMonitoringData": [{
        "value": 1.0, "type": "UpperThreshold", "severity": 5, "component": {"name": "EVSE"},
        "variable": {"name": "Power"}}]},
    "UnpublishFirmware": {"checksum": "abc"},
}


def test_every_csms_initiated_2_0_1_action_has_an_answer_that_validates() -> None:
    """The whole catalogue: an action added to v201.CSMS_ACTIONS without a handler, or whose
    answer breaks the schema, fails here; the CSMS mix plus these minimal requests cover it."""
    assert set(HANDLERS) == set(v201.CSMS_ACTIONS)
    assert set(MINIMAL_REQUESTS) | set(MIX_201) == set(v201.CSMS_ACTIONS)
    link = _booted(attrs.evolve(SPEC, idle_s=(5, 5), session_s=(600, 600)))
    link.run_until(20)
    for action, payload in MINIMAL_REQUESTS.items():
        validator_201(f"{action}Request").validate(payload)
        answer = _command(link, action, payload)
        assert "error" not in answer, (action, answer)
    composite = _command(link, "GetCompositeSchedule", MINIMAL_REQUESTS["GetCompositeSchedule"])
    limit = composite["schedule"]["chargingSchedulePeriod"][0]["limit"]
    assert limit == pytest.approx(22_000 / 690, abs=0.1)  # the connector's 22 kW in amps


class SchemaTap:
    """Checks every frame the CSMS sees or sends against the official schema of its version:
    CALLs by their action, CALLRESULTs by the action of the CALL they answer."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], str] = {}
        self.checked = 0
        self.violations: list[str] = []

    def __call__(self, subprotocol: str, direction: str, text: str) -> None:
        message = json.loads(text)
        version = "v201" if subprotocol == "ocpp2.0.1" else "v16"
        if message[0] == 2:
            self.pending[(subprotocol, message[1])] = message[2]
            self._check(version, message[2], message[3], request=True)
        elif message[0] == 3:
            action = self.pending.pop((subprotocol, message[1]), None)
            if action is not None:
                self._check(version, action, message[2], request=False)

    def _check(self, version: str, action: str, payload: Any, *, request: bool) -> None:
        if version == "v201":
            validator = validator_201(f"{action}{'Request' if request else 'Response'}")
        else:
            validator = validator_16(action if request else f"{action}Response")
        self.checked += 1
        for error in validator.iter_errors(payload):
            self.violations.append(f"{version} {action}: {error.message}")




async def test_the_whole_catalogue_of_both_versions_under_load(
    nursery: trio.Nursery, autojump_clock: MockClock,
) -> None:
    """A few hundred chargers of both versions play a profile while the embedded CSMS sends
    them CSMS-initiated calls: every frame either way is schema-valid, every command is
    answered or counted, every CALL is accounted for. How many commands go out in the time
    is the machine's business; that each round deals the whole catalogue is test_csms_server's.
    """
    tap = SchemaTap()
    server: CsmsServer = await nursery.start(functools.partial(
        serve_csms, CsmsConfig(port=0, commands_per_s=200.0), tap=tap))
    profile = load_profile(resolve_profile("smoke"))
    behaviours = tuple(attrs.evolve(profile.behaviour[0], name=f"v{version}", ocpp=version)
                       for version in ("1.6", "2.0.1"))
    config = RunConfig(chargers=200, duration_s=6, url=server.url, time_scale=20,
                       profile=attrs.evolve(profile, behaviour=behaviours, thresholds={}))
    with trio.fail_after(60):
        result = await spawn(config, write=False)
    report, stats = result.report, server.stats
    assert min(stats.subprotocols["ocpp1.6"], stats.subprotocols["ocpp2.0.1"]) >= 100
    assert tap.violations == []
    assert tap.checked >= stats.received.total() + stats.commands_sent.total()
    sent = set(stats.commands_sent)
    assert sent - set(MIX_201) and sent - set(MIX)  # some went to each version
    assert stats.commands_callerror == {}
    errors = Counter({key.split()[0]: n for key, n in stats.commands_callerror.items()})
    for action, n in stats.commands_sent.items():
        assert stats.commands_answered[action] + errors[action] + (
            stats.commands_unanswered[action]) == n, action
    # one command in flight per connection, cut off by its end
    assert stats.commands_unanswered.total() <= stats.connections_total
    assert stats.closes["stalled"] == 0
    assert stats.seqno_gaps == 0 and stats.seqno_duplicates == 0
    for action, calls in report["calls"].items():
        assert calls["sent"] == calls["ok"] + sum(calls["callerror"].values()) + (
            calls["timeout"] + calls["in_flight"]), action
        assert stats.received[action] >= calls["ok"], action
    assert report["chargers"]["internal_errors"] == {}


def test_taking_a_connector_out_of_service_is_reported_and_readable() -> None:
    link = _booted(attrs.evolve(SPEC, idle_s=(10_000, 10_000)))
    assert _command(link, "ChangeAvailability", {
        "operationalStatus": "Inoperative", "evse": {"id": 2}}) == {"status": "Accepted"}
    link.run_until(link.now + 1)
    assert _sent(link, "StatusNotification")[-1]["connectorStatus"] == "Unavailable"
    (event,) = _sent(link, "NotifyEvent")
    data = event["eventData"][0]
    assert data["actualValue"] == "Unavailable" and data["component"]["evse"]["id"] == 2
    got = _command(link, "GetVariables", {"getVariableData": [{
        "component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
        "variable": {"name": "AvailabilityState"}}]})
    assert got["getVariableResult"][0]["attributeValue"] == "Unavailable"
    _check_wire(link.wire)


def test_a_boot_the_csms_asks_for_while_pending_says_triggered() -> None:
    link = Link(SPEC, boot_status="Pending")
    link.connect()
    link.run_until(1)
    assert _command(link, "TriggerMessage", {"requestedMessage": "BootNotification"}) == {
        "status": "Accepted"}
    link.run_until(link.now + 1)
    assert [boot["reason"] for boot in _sent(link, "BootNotification")] == [
        "PowerUp", "Triggered"]
    _check_wire(link.wire)


def _reserve(link: Link, reservation_id: int, expires_in: float, evse_id: int = 1) -> None:
    request = {"id": reservation_id, "expiryDateTime": v16_iso(link.now + WALL_OFFSET + expires_in),
               "idToken": {"idToken": "R", "type": "Central"}, "evseId": evse_id}
    validator_201("ReserveNowRequest").validate(request)
    assert _command(link, "ReserveNow", request) == {"status": "Accepted"}


def test_an_unused_reservation_expires_with_a_status_update() -> None:
    link = _booted(attrs.evolve(SPEC, idle_s=(10_000, 10_000)))
    _reserve(link, 5, expires_in=2)
    _reserve(link, 6, expires_in=3, evse_id=2)
    assert _command(link, "CancelReservation", {"reservationId": 6}) == {"status": "Accepted"}
    t = link.now
    link.run_until(t + 5)
    assert _sent(link, "ReservationStatusUpdate") == [
        {"reservationId": 5, "reservationUpdateStatus": "Expired"}]
    statuses = [(s["evseId"], s["connectorStatus"]) for s in _sent(link, "StatusNotification")]
    assert statuses[-2:] == [(2, "Available"), (1, "Available")]
    assert _command(link, "CancelReservation", {"reservationId": 5}) == {"status": "Rejected"}
    _check_wire(link.wire)


def test_a_reservation_used_by_its_driver_does_not_expire() -> None:
    link = _booted(attrs.evolve(SPEC, connectors=1, idle_s=(10_000, 10_000),
                                session_s=(600, 600)))
    _reserve(link, 7, expires_in=30)
    assert _command(link, "RequestStartTransaction", {
        "idToken": {"idToken": "R", "type": "Central"}, "remoteStartId": 1, "evseId": 1}) == {
        "status": "Accepted"}
    link.run_until(link.now + 60)
    assert [e.get("reservationId") for e in _events(link)][:1] == [7]
    assert _sent(link, "ReservationStatusUpdate") == []
    _check_wire(link.wire)


def test_triggering_a_transaction_event_without_a_transaction_is_rejected() -> None:
    link = _booted(attrs.evolve(SPEC, connectors=2, idle_s=(10_000, 10_000)))
    request = {"requestedMessage": "TransactionEvent"}
    assert _command(link, "TriggerMessage", request) == {"status": "Rejected"}
    assert _command(link, "RequestStartTransaction", {
        "idToken": {"idToken": "T", "type": "Central"}, "remoteStartId": 2, "evseId": 1}) == {
        "status": "Accepted"}
    link.run_until(link.now + 5)
    assert link.charger.connectors == [ConnectorState.CHARGING, ConnectorState.IDLE]
    assert _command(link, "TriggerMessage", {**request, "evse": {"id": 2}}) == {
        "status": "Rejected"}
    link.run_until(link.now + 1)
    assert [e["triggerReason"] for e in _events(link)].count("Trigger") == 0
    assert _command(link, "TriggerMessage", {**request, "evse": {"id": 1}}) == {
        "status": "Accepted"}
    link.run_until(link.now + 1)
    triggered = [e for e in _events(link) if e["triggerReason"] == "Trigger"]
    assert len(triggered) == 1 and triggered[0]["eventType"] == "Updated"
    _check_wire(link.wire)
