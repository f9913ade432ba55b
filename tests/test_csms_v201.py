"""The embedded CSMS's OCPP 2.0.1 side, sans-IO: every answer its core builds, checked against
the official OCPP 2.0.1 JSON schemas shipped by the `ocpp` package (an independent oracle), and
the TransactionEvent seqNo ledger. Its commands are in test_csms_commands.py."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from fleetsim.csms import answers_201 as v201
from fleetsim.csms.answers_16 import CsmsStats
from fleetsim.csms.answers_201 import CsmsCore201
from fleetsim.ocpp.frames import Call, CallError, CallResult, ErrorCode

from .schemas import SCHEMAS_201, schema_201, validator_201

WALL = 1_764_000_000.0
TS = "2026-01-01T00:00:00.000Z"


_PROFILE = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": [
                {"id": 1, "chargingRateUnit": "A",
                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}]}

MINIMAL_CALLS: dict[str, dict[str, Any]] = {
    "Authorize": {"idToken": {"idToken": "T1", "type": "ISO14443"}},
    "BootNotification": {"reason": "PowerUp",
                         "chargingStation": {"model": "m", "vendorName": "v"}},
    "ClearedChargingLimit": {"chargingLimitSource": "EMS"},
    "DataTransfer": {"vendorId": "fleetsim"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "Get15118EVCertificate": {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                              "action": "Install", "exiRequest": "AAAA"},
    "GetCertificateStatus": {"ocspRequestData": {
        "hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b",
        "serialNumber": "c", "responderURL": "http://ocsp.invalid/"}},
    "Heartbeat": {},
    "LogStatusNotification": {"status": "Uploaded"},
    "MeterValues": {"evseId": 1, "meterValue": [{"timestamp": TS,
                                                 "sampledValue": [{"value": 1.0}]}]},
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "EMS"}},
    "NotifyCustomerInformation": {"data": "x", "seqNo": 0, "generatedAt": TS, "requestId": 1},
    "NotifyDisplayMessages": {"requestId": 1},
    "NotifyEVChargingNeeds": {"evseId": 1,
                              "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"}},
    "NotifyEVChargingSchedule": {"timeBase": TS, "evseId": 1, "chargingSchedule": {
        "id": 1, "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}},
    "NotifyEvent": {"generatedAt": TS, "seqNo": 0, "eventData": [{
        "eventId": 1, "timestamp": TS, "trigger": "Delta", "actualValue": "Occupied",
        "eventNotificationType": "HardWiredNotification", "component": {"name": "Connector"},
        "variable": {"name": "AvailabilityState"}}]},
    "NotifyMonitoringReport": {"requestId": 1, "seqNo": 0, "generatedAt": TS},
    "NotifyReport": {"requestId": 1, "generatedAt": TS, "seqNo": 0},
    "PublishFirmwareStatusNotification": {"status": "Published"},
    "ReportChargingProfiles": {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1,
                               "chargingProfile": [_PROFILE]},
    "ReservationStatusUpdate": {"reservationId": 1, "reservationUpdateStatus": "Expired"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": TS},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "StatusNotification": {"timestamp": TS, "connectorStatus": "Available", "evseId": 1,
                           "connectorId": 1},
    "TransactionEvent": {"eventType": "Started", "timestamp": TS, "triggerReason": "Authorized",
                         "seqNo": 0, "transactionInfo": {"transactionId": "tx-1"}},
}


def transaction_event(event_type: str, seq_no: int, transaction_id: str = "tx-1",
                      id_token: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventType": event_type, "timestamp": TS, "seqNo": seq_no,
        "triggerReason": {"Started": "Authorized", "Updated": "MeterValuePeriodic",
                          "Ended": "StopAuthorized"}[event_type],
        "transactionInfo": {"transactionId": transaction_id}, "evse": {"id": 1, "connectorId": 1}}
    if id_token is not None:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    validator_201("TransactionEventRequest").validate(payload)
    return payload


def test_the_catalogue_is_the_official_one() -> None:
    actions = {path.name.removesuffix("Request.json") for path in SCHEMAS_201.iterdir()
               if path.name.endswith("Request.json")}
    both_ways = v201.CHARGER_ACTIONS & v201.CSMS_ACTIONS
    assert actions == v201.CHARGER_ACTIONS | v201.CSMS_ACTIONS
    assert both_ways == {"DataTransfer"}
    assert (len(v201.CHARGER_ACTIONS), len(v201.CSMS_ACTIONS)) == (25, 40)
    assert set(MINIMAL_CALLS) == v201.CHARGER_ACTIONS


@pytest.mark.parametrize(("name", "bad"), [
    ("HeartbeatResponse", {}),
    ("HeartbeatResponse", {"currentTime": "yesterday"}),
    ("BootNotificationResponse", {"currentTime": TS, "interval": 60, "status": "Maybe"}),
    ("AuthorizeResponse", {"idTagInfo": {"status": "Accepted"}}),  # the 1.6 shape
    ("TransactionEventResponse", {"transactionId": 1}),
    ("GetVariablesRequest", {"getVariableData": []}),
    ("RequestStopTransactionRequest", {"transactionId": 17}),
])
def test_the_oracle_can_fail(name: str, bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator_201(name).validate(bad)


@pytest.mark.parametrize("action", sorted(v201.CHARGER_ACTIONS))
def test_every_charger_action_gets_a_valid_answer(action: str) -> None:
    stats = CsmsStats()
    csms = CsmsCore201(stats)
    payload = MINIMAL_CALLS[action]
    validator_201(f"{action}Request").validate(payload)
    answer = csms.answer(Call("1", action, payload), WALL, "CP1")
    assert isinstance(answer, CallResult), answer
    validator_201(f"{action}Response").validate(answer.payload)
    assert stats.received[action] == stats.answered[action] == 1
    assert stats.callerror_sent == {}


@pytest.mark.parametrize("action", sorted(v201.CHARGER_ACTIONS - {"Heartbeat"}))
def test_each_missing_required_field_is_an_occurrence_violation(action: str) -> None:
    required = schema_201(f"{action}Request")["required"]
    stats = CsmsStats()
    csms = CsmsCore201(stats)
    for field in required:
        payload = {k: v for k, v in MINIMAL_CALLS[action].items() if k != field}
        answer = csms.answer(Call("1", action, payload), WALL, "CP1")
        assert isinstance(answer, CallError), (action, field)
        assert answer.error_code == "OccurenceConstraintViolation"
        assert field in answer.description
    assert stats.callerror_sent == {"OccurenceConstraintViolation": len(required)}
    assert stats.answered[action] == 0


@pytest.mark.parametrize("boot_status", ["Accepted", "Pending", "Rejected"])
def test_boot_honours_the_configured_status_and_interval(boot_status: str) -> None:
    csms = CsmsCore201(CsmsStats(), heartbeat_interval_s=17, boot_status=boot_status)
    answer = csms.answer(Call("1", "BootNotification", MINIMAL_CALLS["BootNotification"]), WALL)
    assert isinstance(answer, CallResult)
    validator_201("BootNotificationResponse").validate(answer.payload)
    assert answer.payload == {"currentTime": "2025-11-24T16:00:00.000Z", "interval": 17,
                              "status": boot_status}


def test_data_transfer_names_no_vendor_and_tokens_are_accepted() -> None:
    csms = CsmsCore201(CsmsStats())
    answers = [csms.answer(Call("1", action, MINIMAL_CALLS[action]), WALL)
               for action in ("DataTransfer", "Authorize")]
    assert [a.payload for a in answers if isinstance(a, CallResult)] == [
        {"status": "UnknownVendorId"}, {"idTokenInfo": {"status": "Accepted"}}]


def test_transaction_events_carry_id_token_info_only_when_asked() -> None:
    csms = CsmsCore201(CsmsStats())
    with_token = csms.answer(Call("1", "TransactionEvent",
                                  transaction_event("Started", 0, id_token="RFID-1")), WALL, "CP1")
    without = csms.answer(Call("2", "TransactionEvent",
                               transaction_event("Updated", 1)), WALL, "CP1")
    assert isinstance(with_token, CallResult) and isinstance(without, CallResult)
    assert with_token.payload == {"idTokenInfo": {"status": "Accepted"}}
    assert without.payload == {}
    for answer in (with_token, without):
        validator_201("TransactionEventResponse").validate(answer.payload)


def _play(csms: CsmsCore201, charger_id: str, events: list[tuple[str, int, str]]) -> None:
    for n, (event_type, seq_no, transaction_id) in enumerate(events):
        answer = csms.answer(Call(str(n + 1), "TransactionEvent",
                                  transaction_event(event_type, seq_no, transaction_id)),
                             WALL, charger_id)
        assert isinstance(answer, CallResult), answer


def test_a_clean_sequence_has_no_gaps_nor_duplicates() -> None:
    stats = CsmsStats()
    csms = CsmsCore201(stats)
    _play(csms, "CP1", [("Started", 0, "a"), ("Updated", 1, "a"), ("Started", 0, "b"),
                        ("Updated", 2, "a"), ("Updated", 1, "b"), ("Ended", 3, "a")])
    _play(csms, "CP2", [("Started", 0, "a"), ("Updated", 1, "a")])  # ids are per charger
    assert (stats.seqno_gaps, stats.seqno_duplicates) == (0, 0)
    assert stats.transaction_events == {"Started": 3, "Updated": 4, "Ended": 1}
    assert sorted(csms.transactions("CP1")) == ["b"]
    assert sorted(csms.transactions("CP2")) == ["a"]
    assert list(csms.transactions("CP3")) == []


def test_gaps_and_duplicates_are_counted() -> None:
    stats = CsmsStats()
    csms = CsmsCore201(stats)
    _play(csms, "CP1", [("Started", 0, "a"), ("Updated", 3, "a")])  # 1 and 2 never came
    assert (stats.seqno_gaps, stats.seqno_duplicates) == (2, 0)
    _play(csms, "CP1", [("Updated", 3, "a"), ("Updated", 2, "a")])  # a repeat, a late one
    assert (stats.seqno_gaps, stats.seqno_duplicates) == (2, 2)
    _play(csms, "CP1", [("Ended", 4, "a"), ("Ended", 4, "a")])  # Ended sent again
    assert (stats.seqno_gaps, stats.seqno_duplicates) == (2, 3)
    assert list(csms.transactions("CP1")) == []
    _play(csms, "CP1", [("Updated", 1, "late")])  # its Started (seqNo 0) was never seen
    assert (stats.seqno_gaps, stats.seqno_duplicates) == (3, 3)


def test_many_ended_transactions_are_forgotten_in_time() -> None:
    stats = CsmsStats()
    csms = CsmsCore201(stats)
    for n in range(1000):
        _play(csms, "CP1", [("Started", 0, f"t{n}"), ("Ended", 1, f"t{n}")])
    assert (stats.seqno_gaps, stats.seqno_duplicates) == (0, 0)
    _play(csms, "CP1", [("Ended", 1, "t999")])
    assert stats.seqno_duplicates == 1
    ledger = csms._ledgers["CP1"]
    assert len(ledger.open) == 0 and len(ledger.ended) <= 16


@pytest.mark.parametrize(("change", "code"), [
    ({"seqNo": "1"}, "TypeConstraintViolation"),
    ({"seqNo": True}, "TypeConstraintViolation"),
    ({"seqNo": -1}, "PropertyConstraintViolation"),  # the schema allows it; a sequence doesn't
    ({"eventType": "Paused"}, "PropertyConstraintViolation"),
    ({"eventType": 1}, "TypeConstraintViolation"),
    ({"transactionInfo": "tx-1"}, "TypeConstraintViolation"),
    ({"transactionInfo": {"chargingState": "Charging"}}, "OccurenceConstraintViolation"),
    ({"transactionInfo": {"transactionId": 7}}, "TypeConstraintViolation"),
])
def test_a_malformed_transaction_event_is_refused_and_changes_nothing(
    change: dict[str, Any], code: str
) -> None:
    stats = CsmsStats()
    csms = CsmsCore201(stats)
    payload = {**transaction_event("Started", 0), **change}
    if change != {"seqNo": -1}:
        with pytest.raises(jsonschema.ValidationError):
            validator_201("TransactionEventRequest").validate(payload)
    answer = csms.answer(Call("1", "TransactionEvent", payload), WALL, "CP1")
    assert isinstance(answer, CallError)
    assert answer.error_code == code
    assert code in v201.ERROR_CODES
    assert stats.transaction_events == {} and stats.answered == {}
    assert list(csms.transactions("CP1")) == []


@pytest.mark.parametrize("action", ["StartTransaction", "GetVariables", "Nonsense"])
def test_what_a_charger_does_not_send_in_2_0_1_is_not_implemented(action: str) -> None:
    stats = CsmsStats()
    answer = CsmsCore201(stats).answer(Call("1", action, {}), WALL)
    assert isinstance(answer, CallError)
    assert answer.error_code == "NotImplemented"
    assert stats.callerror_sent == {"NotImplemented": 1}


def test_frame_errors_are_spelled_as_2_0_1_spells_them() -> None:
    assert set(ErrorCode) - v201.ERROR_CODES == {ErrorCode.FORMATION_VIOLATION,
                                                ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION}
    for code in ErrorCode:
        translated = v201.as_v201_error(CallError("7", code.value, "why", {"k": 1}))
        assert translated.error_code in v201.ERROR_CODES
        assert (translated.unique_id, translated.description, translated.details) == (
            "7", "why", {"k": 1})
    assert v201.as_v201_error(CallError("7", "FormationViolation")).error_code == (
        "FormatViolation")

