"""OCPP 2.0.1 groundwork, checked against the official 2.0.1 JSON schemas shipped by the `ocpp`
package (an independent oracle): every payload a station builds, and every answer it gives to
the device-model CALLs."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim.ocpp import v16, v201

SCHEMAS = resources.files("ocpp").joinpath("v201/schemas")
WALL = 1_764_000_000.25


@cache
def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMAS.joinpath(f"{name}.json").read_text())
    return schema


@cache
def _validator(name: str) -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(_schema(name), format_checker=jsonschema.FormatChecker())


def _request(action: str, payload: dict[str, Any]) -> None:
    _validator(f"{action}Request").validate(payload)


def _response(action: str, payload: dict[str, Any]) -> None:
    _validator(f"{action}Response").validate(payload)


def _enum(schema: str, definition: str) -> list[str]:
    values: list[str] = _schema(schema)["definitions"][definition]["enum"]
    return values


# The catalogue.

def test_the_catalogue_is_every_official_2_0_1_action_by_direction() -> None:
    official = {entry.name.removesuffix("Request.json") for entry in SCHEMAS.iterdir()
                if entry.name.endswith("Request.json")}
    assert official == v201.CHARGER_ACTIONS | v201.CSMS_ACTIONS
    both_ways = v201.CHARGER_ACTIONS & v201.CSMS_ACTIONS
    assert both_ways == {"DataTransfer"}
    assert (len(v201.CHARGER_ACTIONS), len(v201.CSMS_ACTIONS)) == (25, 40)
    assert {"TransactionEvent", "NotifyReport", "GetCertificateStatus", "SignCertificate",
            "ReservationStatusUpdate"} <= v201.CHARGER_ACTIONS
    assert {"GetVariables", "RequestStartTransaction", "GetCompositeSchedule", "CostUpdated",
            "ChangeAvailability"} <= v201.CSMS_ACTIONS
    assert v201.SUBPROTOCOL == "ocpp2.0.1"


@pytest.mark.parametrize(("action", "bad"), [
    ("Heartbeat", {"extra": 1}),
    ("Authorize", {"idToken": {"idToken": "T1"}}),
    ("Authorize", {"idToken": {"idToken": "x" * 37, "type": "ISO14443"}}),
    ("StatusNotification", {"timestamp": "2026-01-01T00:00:00Z", "connectorStatus": "Charging",
                            "evseId": 1, "connectorId": 1}),
    ("TransactionEvent", {"eventType": "Started", "timestamp": "2026-01-01T00:00:00Z",
                          "triggerReason": "Authorized", "seqNo": 0,
                          "transactionInfo": {"transactionId": 17}}),
    ("MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
                                                  "sampledValue": [{"value": "1"}]}]}),
    ("MeterValues", {"evseId": 1, "meterValue": [{
        "timestamp": "2026-01-01T00:00:00Z",
        "sampledValue": [{"value": 25, "measurand": "Temperature"}]}]}),
    ("MeterValues", {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
                                                  "sampledValue": []}]}),
    ("NotifyReport", {"requestId": 1, "generatedAt": "yesterday", "seqNo": 0}),
])
def test_the_oracle_can_fail(action: str, bad: dict[str, Any]) -> None:
    """Where 2.0.1 differs from 1.6 (numbers, string transaction ids, no Temperature, ...)."""
    with pytest.raises(jsonschema.ValidationError):
        _request(action, bad)


# Payload builders: every one, over its whole input range, validates.

walls = st.floats(min_value=0, max_value=4_102_444_799, allow_nan=False)
ints = st.integers(min_value=0, max_value=2**31 - 1)


def texts(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_size)


def enums(schema: str, definition: str) -> st.SearchStrategy[str]:
    return st.sampled_from(_enum(schema, definition))


measurand_lists = st.lists(st.sampled_from(sorted(v201.MEASURANDS)), unique=True)
contexts = enums("MeterValuesRequest", "ReadingContextEnumType")
socs = st.none() | st.floats(min_value=0, max_value=100)
powers = st.floats(min_value=0, max_value=350_000)


@st.composite
def meter_value_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    values = []
    for _ in range(draw(st.integers(0, 3))):
        samples = v201.sampled_values(
            draw(measurand_lists), draw(contexts), draw(ints), draw(powers), draw(powers),
            draw(socs))
        if samples:
            values.append(v201.meter_value(draw(walls), samples))
    return values


id_tokens = st.builds(v201.id_token, texts(36),
                      enums("AuthorizeRequest", "IdTokenEnumType"))
components = st.builds(v201.component, texts(50, 1), evse=st.integers(0, 9),
                       connector=st.integers(0, 9), instance=texts(50))
variables = st.builds(v201.variable, texts(50, 1), texts(50))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)

def _check(action: str, payload: dict[str, Any]) -> None:
    _request(action, payload)


@given(texts(50), texts(20), st.none() | texts(25), st.none() | texts(50),
       enums("BootNotificationRequest", "BootReasonEnumType"))
@settings(max_examples=40, deadline=None)
def test_boot_notification(vendor: str, model: str, serial: str | None, firmware: str | None,
                           reason: str) -> None:
    payload = v201.boot_notification(vendor, model, serial, firmware, reason)
    _check("BootNotification", payload)
    assert payload["chargingStation"]["model"] == model
    assert ("serialNumber" in payload["chargingStation"]) == (serial is not None)


def test_heartbeat() -> None:
    _check("Heartbeat", v201.heartbeat())


@given(ints, ints, enums("StatusNotificationRequest", "ConnectorStatusEnumType"), walls)
@settings(max_examples=40, deadline=None)
def test_status_notification(evse_id: int, connector_id: int, status: str, wall: float) -> None:
    _check("StatusNotification", v201.status_notification(evse_id, connector_id, status, wall))


@given(texts(36), enums("AuthorizeRequest", "IdTokenEnumType"))
@settings(max_examples=40, deadline=None)
def test_authorize(token: str, token_type: str) -> None:
    payload = v201.authorize(token, token_type)
    _check("Authorize", payload)
    assert payload == {"idToken": {"idToken": token, "type": token_type}}


@given(
    enums("TransactionEventRequest", "TransactionEventEnumType"), walls,
    enums("TransactionEventRequest", "TriggerReasonEnumType"), ints, texts(36),
    st.none() | enums("TransactionEventRequest", "ChargingStateEnumType"),
    st.none() | enums("TransactionEventRequest", "ReasonEnumType"), st.none() | ints,
    st.none() | ints, st.none() | id_tokens, st.none() | st.integers(0, 9),
    st.none() | st.integers(0, 9), meter_value_lists(),
    st.builds(v201.sampled_values, measurand_lists, contexts, ints, powers, powers, socs),
    st.booleans(), st.none() | ints, st.none() | st.integers(1, 3),
)
@settings(max_examples=150, deadline=None)
def test_transaction_event(
    event_type: str, wall: float, trigger: str, seq_no: int, transaction_id: str,
    state: str | None, stopped: str | None, remote_start_id: int | None,
    time_spent: int | None, token: dict[str, Any] | None, evse_id: int | None,
    connector_id: int | None, values: list[dict[str, Any]], samples: list[dict[str, Any]],
    offline: bool, reservation_id: int | None, phases: int | None,
) -> None:
    payload = v201.transaction_event(
        event_type, wall, trigger, seq_no, transaction_id, charging_state=state,
        stopped_reason=stopped, remote_start_id=remote_start_id, time_spent_charging=time_spent,
        token=token, evse_id=evse_id, connector_id=connector_id, samples=samples,
        values=values, offline=offline, reservation_id=reservation_id, phases_used=phases)
    _check("TransactionEvent", payload)
    assert payload["transactionInfo"]["transactionId"] == transaction_id
    now = [v201.meter_value(wall, samples)] if samples else []
    assert payload.get("meterValue", []) == values + now


@given(ints, meter_value_lists().filter(bool))
@settings(max_examples=60, deadline=None)
def test_meter_values(evse_id: int, values: list[dict[str, Any]]) -> None:
    _check("MeterValues", v201.meter_values(evse_id, values))


@given(measurand_lists, contexts, ints, powers, powers, socs)
@settings(max_examples=100, deadline=None)
def test_sampled_values_mirror_v16(measurands: list[str], context: str, meter_wh: int,
                                   power_w: float, offered_w: float, soc: float | None) -> None:
    """The same readings as 1.6 reports, as numbers, with the unit in unitOfMeasure."""
    new = v201.sampled_values(measurands, context, meter_wh, power_w, offered_w, soc)
    old = v16.sampled_values(tuple(measurands), context, meter_wh, power_w, offered_w, soc)
    assert [sample["measurand"] for sample in new] == [sample["measurand"] for sample in old]
    for sample, reference in zip(new, old, strict=True):
        assert isinstance(sample["value"], int | float)
        assert sample["value"] == pytest.approx(float(reference["value"]), abs=0.51)
        assert sample["unitOfMeasure"] == {"unit": reference["unit"]}
        assert (sample["location"], sample["context"]) == (reference["location"], context)


def test_measurands_are_v16s_that_2_0_1_still_has() -> None:
    official = set(_enum("MeterValuesRequest", "MeasurandEnumType"))
    assert set(v201.MEASURANDS) == set(v16.MEASURANDS) & official == set(v16.MEASURANDS) - {
        "Temperature"}
    assert set(v201.DEFAULT_MEASURANDS) <= set(v201.MEASURANDS)


@given(ints, walls, st.integers(0, 500), st.integers(1, 50), st.booleans(),
       st.integers(0, 3).flatmap(lambda n: st.lists(st.builds(
           v201.event_data, ints, walls, enums("NotifyEventRequest", "EventTriggerEnumType"),
           texts(2500), components, variables,
           enums("NotifyEventRequest", "EventNotificationEnumType"),
           cause=st.none() | ints, tech_code=st.none() | texts(50),
           tech_info=st.none() | texts(500), cleared=st.none() | st.booleans(),
           transaction_id=st.none() | texts(36), monitor_id=st.none() | ints),
           min_size=1, max_size=n + 1)))
@settings(max_examples=60, deadline=None)
def test_notify_report_and_notify_event(request_id: int, wall: float, total: int, per: int,
                                        tbc: bool, events: list[dict[str, Any]]) -> None:
    _check("NotifyEvent", v201.notify_event(wall, 0, events, tbc))
    _check("NotifyReport", v201.notify_report(request_id, wall, 0, [], tbc))
    entry = {"component": {"name": "C"}, "variable": {"name": "V"},
             "variableAttribute": [{"value": "1"}]}
    messages = v201.notify_reports(request_id, wall, [entry] * total, per)
    assert len(messages) == -(-total // per)
    assert [message["seqNo"] for message in messages] == list(range(len(messages)))
    assert [message["tbc"] for message in messages] == [True] * (len(messages) - 1) + [False] * (
        len(messages) > 0)
    assert sum(len(message["reportData"]) for message in messages) == total
    for message in messages:
        assert len(message["reportData"]) <= per
        _check("NotifyReport", message)


def test_notify_reports_needs_room_for_an_entry() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        v201.notify_reports(1, WALL, [], 0)


@given(texts(50), walls, st.none() | texts(255))
@settings(max_examples=30, deadline=None)
def test_security_event_notification(kind: str, wall: float, info: str | None) -> None:
    _check("SecurityEventNotification", v201.security_event_notification(kind, wall, info))


@given(enums("FirmwareStatusNotificationRequest", "FirmwareStatusEnumType"),
       enums("LogStatusNotificationRequest", "UploadLogStatusEnumType"), st.none() | ints)
@settings(max_examples=30, deadline=None)
def test_firmware_and_log_status(firmware: str, log: str, request_id: int | None) -> None:
    _check("FirmwareStatusNotification", v201.firmware_status_notification(firmware, request_id))
    _check("LogStatusNotification", v201.log_status_notification(log, request_id))


@given(texts(255), st.none() | texts(50), json_values)
@settings(max_examples=40, deadline=None)
def test_data_transfer(vendor: str, message_id: str | None, data: Any) -> None:
    payload = v201.data_transfer(vendor, message_id, data)
    _check("DataTransfer", payload)
    assert payload.get("data") == data


@given(ints, enums("ReservationStatusUpdateRequest", "ReservationUpdateStatusEnumType"),
       enums("NotifyChargingLimitRequest", "ChargingLimitSourceEnumType"),
       st.none() | ints, st.none() | st.booleans())
@settings(max_examples=30, deadline=None)
def test_reservation_and_charging_limits(reservation_id: int, status: str, source: str,
                                         evse_id: int | None, critical: bool | None) -> None:
    _check("ReservationStatusUpdate", v201.reservation_status_update(reservation_id, status))
    _check("ClearedChargingLimit", v201.cleared_charging_limit(source, evse_id))
    schedule = {"id": 1, "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}
    _check("NotifyChargingLimit", v201.notify_charging_limit(source, evse_id,
                                                             grid_critical=critical))
    _check("NotifyChargingLimit", v201.notify_charging_limit(source, evse_id,
                                                             schedules=[schedule]))
    profile = {"id": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Absolute", "chargingSchedule": [schedule]}
    _check("ReportChargingProfiles",
           v201.report_charging_profiles(reservation_id, source, evse_id or 0, [profile]))


@given(ints, ints, ints, ints, ints,
       enums("NotifyEVChargingNeedsRequest", "EnergyTransferModeEnumType"), st.none() | walls)
@settings(max_examples=30, deadline=None)
def test_notify_ev_charging_needs(evse_id: int, energy: int, low: int, high: int, volts: int,
                                  transfer: str, departure: float | None) -> None:
    _check("NotifyEVChargingNeeds", v201.notify_ev_charging_needs(
        evse_id, energy, low, high, volts, transfer=transfer, departure_wall=departure))


@given(ints, walls, ints, texts(512), st.booleans())
@settings(max_examples=30, deadline=None)
def test_notify_customer_information(request_id: int, wall: float, seq_no: int, data: str,
                                     tbc: bool) -> None:
    _check("NotifyCustomerInformation",
           v201.notify_customer_information(request_id, wall, seq_no, data, tbc))


def test_every_builder_has_a_schema_test() -> None:
    """A builder added later without a test here fails this one."""
    snake = {re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", action).lower():
             action for action in v201.CHARGER_ACTIONS}
    builders = {action for name, action in snake.items() if hasattr(v201, name)}
    checked = set(re.findall(r'_check\(\s*"(\w+)"', Path(__file__).read_text()))
    assert {"NotifyEVChargingNeeds", "TransactionEvent", "NotifyReport"} <= builders
    assert builders <= checked, sorted(builders - checked)
