"""OCPP 2.0.1 groundwork, checked against the official 2.0.1 JSON schemas shipped by the `ocpp`
package (an independent oracle): every payload a station builds, and every answer it gives to
the device-model CALLs."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim.charger import device_model as dm
from fleetsim.charger.answers_16 import Violation
from fleetsim.charger.answers_201_variables import COMMANDS, Answer
from fleetsim.ocpp import v16, v201
from fleetsim.ocpp.frames import ErrorCode

from .schemas import SCHEMAS_201, schema_201, validator_201
from .test_layers import SANS_IO

WALL = 1_764_000_000.25




def _request(action: str, payload: dict[str, Any]) -> None:
    validator_201(f"{action}Request").validate(payload)


def _response(action: str, payload: dict[str, Any]) -> None:
    validator_201(f"{action}Response").validate(payload)


def _enum(schema: str, definition: str) -> list[str]:
    values: list[str] = schema_201(schema)["definitions"][definition]["enum"]
    return values


# The catalogue.

def test_the_catalogue_is_every_official_2_0_1_action_by_direction() -> None:
    official = {entry.name.removesuffix("Request.json") for entry in SCHEMAS_201.iterdir()
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


# The device model, through the answers a station gives to the CSMS's device-model CALLs.

SHAPE = dm.StationShape(evses=(1, 2))


def _model(shape: dm.StationShape = SHAPE, serial: str = "CP0001") -> dm.DeviceModel:
    return dm.DeviceModel(shape, serial)


def _entry(component: str, variable: str, *, evse: int = 0, connector: int = 0,
           instance: str = "", variable_instance: str = "", **extra: Any) -> dict[str, Any]:
    return {"component": v201.component(component, evse=evse, connector=connector,
                                        instance=instance),
            "variable": v201.variable(variable, variable_instance), **extra}


def _answer(model: dm.DeviceModel, action: str, payload: dict[str, Any]) -> Answer:
    """The CSMS's CALL is valid, and so is everything the station says and sends back."""
    _request(action, payload)
    answer = COMMANDS[action](model, payload, WALL)
    _response(action, answer.payload)
    for then_action, then_payload in answer.then:
        _request(then_action, then_payload)
    return answer


def _get(model: dm.DeviceModel, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = _answer(
        model, "GetVariables", {"getVariableData": list(entries)}).payload["getVariableResult"]
    return results


def _set(model: dm.DeviceModel, *entries: dict[str, Any]) -> Answer:
    return _answer(model, "SetVariables", {"setVariableData": list(entries)})


GETS = [
    (_entry("OCPPCommCtrlr", "HeartbeatInterval"), "Accepted", "300"),
    (_entry("ocppcommctrlr", "HEARTBEATINTERVAL"), "Accepted", "300"),
    (_entry("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Actual"), "Accepted", "300"),
    (_entry("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default"), "Accepted", "30"),
    (_entry("OCPPCommCtrlr", "MessageTimeout"), "UnknownVariable", None),
    (_entry("OCPPCommCtrlr", "Nonsense"), "UnknownVariable", None),
    (_entry("SampledDataCtrlr", "TxUpdatedMeasurands"), "Accepted",
     "Energy.Active.Import.Register,Power.Active.Import"),
    (_entry("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetVariables"), "Accepted",
     "64"),
    (_entry("ChargingStation", "SerialNumber"), "Accepted", "CP0001"),
    (_entry("ChargingStation", "VendorName"), "Accepted", "fleetsim"),
    (_entry("EVSE", "Power", evse=2), "Accepted", "0"),
    (_entry("Connector", "ConnectorType", evse=2, connector=2), "Accepted", "cType2"),
    (_entry("EVSE", "Power"), "UnknownComponent", None),
    (_entry("EVSE", "Power", evse=3), "UnknownComponent", None),
    (_entry("Connector", "ConnectorType", evse=1, connector=2), "UnknownComponent", None),
    (_entry("OCPPCommCtrlr", "HeartbeatInterval", evse=1), "UnknownComponent", None),
    (_entry("NoSuchCtrlr", "HeartbeatInterval"), "UnknownComponent", None),
    (_entry("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Target"),
     "NotSupportedAttributeType", None),
    (_entry("SecurityCtrlr", "BasicAuthPassword"), "Rejected", None),
]


def test_get_variables_answers_each_entry_in_order() -> None:
    results = _get(_model(), *(entry for entry, _, _ in GETS))
    assert len(results) == len(GETS)
    for (entry, status, value), result in zip(GETS, results, strict=True):
        assert result["attributeStatus"] == status, entry
        assert result.get("attributeValue") == value, entry
        assert (result["component"], result["variable"]) == (entry["component"],
                                                             entry["variable"])
        assert result.get("attributeType") == entry.get("attributeType")
    assert results[-1]["attributeStatusInfo"] == {"reasonCode": "WriteOnly"}


SETS = [
    ("HeartbeatInterval", "60", "Accepted", "", "60"),
    ("HeartbeatInterval", "+0060", "Accepted", "", "60"),
    ("HeartbeatInterval", "0", "Rejected", "ValueTooLow", "300"),
    ("HeartbeatInterval", "1.5", "Rejected", "InvalidValue", "300"),
    ("HeartbeatInterval", "sixty", "Rejected", "InvalidValue", "300"),
    ("HeartbeatInterval", "", "Rejected", "InvalidValue", "300"),
    ("HeartbeatInterval", "2147483647", "Accepted", "", "2147483647"),
    ("HeartbeatInterval", "2147483648", "Rejected", "ValueTooHigh", "300"),
    ("TxUpdatedInterval", "0", "Accepted", "", "0"),
    ("StopTxOnInvalidId", "FALSE", "Accepted", "", "false"),
    ("StopTxOnInvalidId", "no", "Rejected", "InvalidValue", "true"),
    ("TxUpdatedMeasurands", "Voltage, SoC", "Accepted", "", "Voltage,SoC"),
    ("TxUpdatedMeasurands", "Temperature", "Rejected", "InvalidValue",
     "Energy.Active.Import.Register,Power.Active.Import"),
    ("TxUpdatedMeasurands", "Voltage,Voltage", "Rejected", "InvalidValue",
     "Energy.Active.Import.Register,Power.Active.Import"),
    ("TxEndedMeasurands", "", "Accepted", "", ""),
    ("TxStartPoint", "EVConnected,Authorized", "Accepted", "", "EVConnected,Authorized"),
    ("TxStartPoint", "Whenever", "Rejected", "InvalidValue", "PowerPathClosed"),
    ("LimitChangeSignificance", "12.5", "Accepted", "", "12.5"),
    ("LimitChangeSignificance", "150", "Rejected", "ValueTooHigh", "10"),
    ("LimitChangeSignificance", "ten", "Rejected", "InvalidValue", "10"),
    ("LimitChangeSignificance", "1e1", "Rejected", "InvalidValue", "10"),
    ("LimitChangeSignificance", "+.5", "Accepted", "", ".5"),
    ("NetworkConfigurationPriority", "2,1", "RebootRequired", "", "2,1"),
    ("NetworkConfigurationPriority", "3", "Rejected", "InvalidValue", "1"),
    ("NetworkConfigurationPriority", "1", "Accepted", "", "1"),
    ("BasicAuthPassword", "correct horse battery", "Accepted", "", "correct horse battery"),
    ("BasicAuthPassword", "short", "Rejected", "InvalidValue", ""),
    ("BasicAuthPassword", "x" * 41, "Rejected", "TooLargeElement", ""),
    ("OrganizationName", "x" * 51, "Rejected", "TooLargeElement", "fleetsim"),
    ("Model", "Hacked", "Rejected", "ReadOnly", "Virtual201"),
    ("Entries", "5", "Rejected", "ReadOnly", "0"),
    ("Power", "100", "Rejected", "ReadOnly", "0"),
]
_WHERE = {ref.variable: ref for ref in _model().refs()}


@pytest.mark.parametrize(("variable", "value", "status", "reason", "after"), SETS,
                         ids=[f"{v}={x[:12]!r}" for v, x, *_ in SETS])
def test_set_variables_checks_access_and_data_type(variable: str, value: str, status: str,
                                                   reason: str, after: str) -> None:
    model = _model()
    ref = _WHERE[variable]
    answer = _set(model, _entry(ref.component, ref.variable, evse=ref.evse,
                                connector=ref.connector, variable_instance=ref.variable_instance,
                                attributeValue=value))
    [result] = answer.payload["setVariableResult"]
    assert result["attributeStatus"] == status
    assert result.get("attributeStatusInfo", {}).get("reasonCode", "") == reason
    assert model.value(ref) == after
    assert answer.changed == ((ref,) if model.changes() else ())


def test_set_variables_unknowns_and_attribute_types() -> None:
    model = _model()
    results = _set(
        model,
        _entry("NoSuchCtrlr", "HeartbeatInterval", attributeValue="1"),
        _entry("OCPPCommCtrlr", "Nonsense", attributeValue="1"),
        _entry("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="1", attributeType="MaxSet"),
        _entry("EVSE", "AvailabilityState", evse=9, attributeValue="Available"),
    ).payload["setVariableResult"]
    assert [result["attributeStatus"] for result in results] == [
        "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType", "UnknownComponent"]
    assert results[2]["attributeType"] == "MaxSet"
    assert model.changes() == {}


def test_each_set_entry_stands_alone_and_typed_accessors_follow() -> None:
    model = _model()
    answer = _set(
        model,
        _entry("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60"),
        _entry("ChargingStation", "Model", attributeValue="x"),
        _entry("TxCtrlr", "StopTxOnInvalidId", attributeValue="maybe"),
        _entry("sampleddatactrlr", "txupdatedmeasurands", attributeValue="Voltage,SoC"),
        _entry("AuthCtrlr", "LocalPreAuthorize", attributeValue="True"),
        _entry("SmartChargingCtrlr", "LimitChangeSignificance", attributeValue="2.5"),
    )
    statuses = [result["attributeStatus"] for result in answer.payload["setVariableResult"]]
    assert statuses == ["Accepted", "Rejected", "Rejected", "Accepted", "Accepted", "Accepted"]
    significance = dm.Ref("SmartChargingCtrlr", "LimitChangeSignificance")
    assert answer.changed == (dm.HEARTBEAT_INTERVAL, dm.TX_UPDATED_MEASURANDS,
                              dm.LOCAL_PRE_AUTHORIZE, significance)
    assert model.integer(dm.HEARTBEAT_INTERVAL) == 60
    assert model.members(dm.TX_UPDATED_MEASURANDS) == ("Voltage", "SoC")
    assert model.flag(dm.LOCAL_PRE_AUTHORIZE) is True
    assert model.flag(dm.STOP_TX_ON_INVALID_ID) is True
    assert model.decimal(significance) == 2.5
    again = _set(model, _entry("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60"))
    assert again.payload["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert again.changed == ()


def test_a_write_only_value_is_kept_but_never_read_back() -> None:
    model = _model()
    password = "0123456789abcdef"
    _set(model, _entry("SecurityCtrlr", "BasicAuthPassword", attributeValue=password))
    assert model.value(dm.BASIC_AUTH_PASSWORD) == password
    [result] = _get(model, _entry("SecurityCtrlr", "BasicAuthPassword"))
    assert (result["attributeStatus"], "attributeValue" in result) == ("Rejected", False)
    [entry] = [entry for entry in model.base_report("FullInventory")
               if entry["variable"]["name"] == "BasicAuthPassword"]
    assert entry["variableAttribute"] == [{"type": "Actual", "mutability": "WriteOnly"}]


values_for_any_variable = (
    st.text(max_size=60) | st.integers(-10, 10**6).map(str)
    | st.integers(2**31 - 10, 2**31 + 10).map(str)
    | st.sampled_from(["true", "False", "1.5", "1e3", "-0", "", " 7", "A,W", "W", "+.5"])
    | measurand_lists.map(",".join)
    | st.lists(st.sampled_from(["Authorized", "EVConnected", "PowerPathClosed"])).map(",".join))


@given(st.sampled_from(sorted(_model().refs())), values_for_any_variable)
@settings(max_examples=400, deadline=None)
def test_the_csms_can_never_store_a_value_the_station_cannot_read(ref: dm.Ref,
                                                                  value: str) -> None:
    model = _model()
    before = model.value(ref)
    entry = _entry(ref.component, ref.variable, evse=ref.evse, connector=ref.connector,
                   variable_instance=ref.variable_instance, attributeValue=value)
    [result] = _set(model, entry).payload["setVariableResult"]
    spec = model.spec(ref)
    if spec.mutability is dm.Mutability.READ_ONLY:
        assert result["attributeStatus"] == "Rejected"
    if result["attributeStatus"] == "Rejected":
        assert model.value(ref) == before
        return
    assert result["attributeStatus"] in ("Accepted", "RebootRequired")
    stored = model.value(ref)
    kind = spec.data_type
    if kind in (dm.DataType.INTEGER, dm.DataType.DECIMAL):
        number = model.integer(ref) if kind is dm.DataType.INTEGER else model.decimal(ref)
        assert number == float(value)
        low = -(2**31) if spec.min_limit is None else spec.min_limit
        high = 2**31 - 1 if spec.max_limit is None else spec.max_limit
        assert low <= number <= high
    elif kind is dm.DataType.BOOLEAN:
        assert stored in ("true", "false")
    elif kind in (dm.DataType.MEMBER_LIST, dm.DataType.SEQUENCE_LIST):
        assert set(model.members(ref)) <= set(spec.values_list)
    again = _set(model, {**entry, "attributeValue": stored})
    assert again.payload["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert again.changed == ()


@given(st.lists(st.sampled_from(sorted(_model().refs())).flatmap(
    lambda ref: st.tuples(st.just(ref), st.sampled_from([str.lower, str.upper, str])),
), min_size=1, max_size=20))
@settings(max_examples=100, deadline=None)
def test_get_variables_reads_any_variable_whatever_its_case(
        picks: list[tuple[dm.Ref, Any]]) -> None:
    model = _model()
    entries = [_entry(case(ref.component), case(ref.variable), evse=ref.evse,
                      connector=ref.connector, variable_instance=case(ref.variable_instance))
               for ref, case in picks]
    for (ref, _), result in zip(picks, _get(model, *entries), strict=True):
        if model.spec(ref).mutability is dm.Mutability.WRITE_ONLY:
            assert result["attributeStatus"] == "Rejected"
        else:
            assert (result["attributeStatus"], result["attributeValue"]) == (
                "Accepted", model.value(ref))


# Memory: one shared table per shape, and per station only what changed.

def test_stations_of_a_shape_share_one_table_and_keep_only_their_changes() -> None:
    shape = dm.StationShape(evses=(2, 2), heartbeat_s=120)
    serials = [f"CP{n:05d}" for n in range(5000)]
    _model(shape)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        models = [dm.DeviceModel(shape, serial) for serial in serials]
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (after - before) / len(models) < 120
    first, second = models[0], models[1]
    assert first.changes() == second.changes() == {}
    _set(first, _entry("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="30"))
    first.set_internal(dm.connector_ref(2, 1, "AvailabilityState"), "Occupied")
    assert first.changes() == {dm.HEARTBEAT_INTERVAL: "30",
                               dm.connector_ref(2, 1, "AvailabilityState"): "Occupied"}
    assert (second.integer(dm.HEARTBEAT_INTERVAL), second.changes()) == (120, {})
    assert [first.value(dm.Ref("ChargingStation", "SerialNumber")),
            second.value(dm.Ref("ChargingStation", "SerialNumber"))] == serials[:2]
    _set(first, _entry("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="120"))
    first.set_internal(dm.connector_ref(2, 1, "AvailabilityState"), "Available")
    assert first.changes() == {}
    assert _model(dm.StationShape(heartbeat_s=45)).integer(dm.HEARTBEAT_INTERVAL) == 45


def test_the_station_may_write_read_only_variables_but_only_valid_values() -> None:
    model = _model()
    model.set_internal(dm.LOCAL_AUTH_LIST_ENTRIES, "12")
    assert model.integer(dm.LOCAL_AUTH_LIST_ENTRIES) == 12
    for ref, value in [(dm.LOCAL_AUTH_LIST_ENTRIES, "-1"),
                       (dm.STATION_AVAILABILITY, "Charging"), (dm.HEARTBEAT_INTERVAL, "0")]:
        with pytest.raises(ValueError, match="not a valid"):
            model.set_internal(ref, value)
    with pytest.raises(ValueError, match="serial number"):
        dm.DeviceModel(SHAPE, "S" * 26)
    with pytest.raises(ValueError, match="measurands"):
        dm.StationShape(measurands=("Temperature",))
    with pytest.raises(ValueError, match="connectors"):
        dm.StationShape(evses=())


# Reports: GetBaseReport and GetReport, split into NotifyReport messages.

def _notify_reports(answer: Answer) -> list[dict[str, Any]]:
    assert {action for action, _ in answer.then} <= {"NotifyReport"}
    return [payload for _, payload in answer.then]


def _reported(answer: Answer) -> list[tuple[str, str, int, int, str]]:
    return [(entry["component"]["name"], entry["variable"]["name"],
             entry["component"].get("evse", {}).get("id", 0),
             entry["component"].get("evse", {}).get("connectorId", 0),
             entry["variable"].get("instance", ""))
            for message in _notify_reports(answer) for entry in message["reportData"]]


def test_full_inventory_reports_every_variable_with_its_characteristics() -> None:
    model = _model()
    model.set_internal(dm.STATION_AVAILABILITY, "Unavailable")
    answer = _answer(model, "GetBaseReport", {"requestId": 9, "reportBase": "FullInventory"})
    assert answer.payload == {"status": "Accepted"}
    entries = [entry for message in _notify_reports(answer) for entry in message["reportData"]]
    assert len(entries) == len(list(model.refs())) == len(set(_reported(answer)))
    by_name = {(entry["component"]["name"], entry["variable"]["name"]): entry
               for entry in entries}
    serial = by_name["ChargingStation", "SerialNumber"]
    assert serial["variableAttribute"] == [{"type": "Actual", "mutability": "ReadOnly",
                                            "value": "CP0001", "constant": True}]
    assert by_name["ChargingStation", "AvailabilityState"]["variableAttribute"][0]["value"] == (
        "Unavailable")
    assert by_name["OCPPCommCtrlr", "HeartbeatInterval"]["variableCharacteristics"] == {
        "dataType": "integer", "supportsMonitoring": False, "unit": "s", "minLimit": 1}
    assert by_name["SampledDataCtrlr", "TxUpdatedMeasurands"]["variableCharacteristics"][
        "valuesList"] == ",".join(v201.MEASURANDS)


def test_configuration_and_summary_inventories() -> None:
    model = _model()
    _set(model, _entry("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="77"))
    configuration = _answer(model, "GetBaseReport",
                            {"requestId": 1, "reportBase": "ConfigurationInventory"})
    reported = _reported(configuration)
    assert all(component.endswith("Ctrlr") for component, *_ in reported)
    assert {"OCPPCommCtrlr", "SampledDataCtrlr", "AlignedDataCtrlr", "TxCtrlr", "AuthCtrlr",
            "AuthCacheCtrlr", "LocalAuthListCtrlr", "SmartChargingCtrlr", "ReservationCtrlr",
            "DeviceDataCtrlr"} <= {component for component, *_ in reported}
    [heartbeat] = [entry for message in _notify_reports(configuration)
                   for entry in message["reportData"]
                   if entry["variable"]["name"] == "HeartbeatInterval"]
    assert heartbeat["variableAttribute"][0]["value"] == "77"

    summary = _answer(model, "GetBaseReport", {"requestId": 2, "reportBase": "SummaryInventory"})
    assert sorted(_reported(summary)) == sorted([
        ("ChargingStation", "AvailabilityState", 0, 0, ""),
        ("EVSE", "AvailabilityState", 1, 0, ""), ("EVSE", "AvailabilityState", 2, 0, ""),
        ("Connector", "AvailabilityState", 1, 1, ""),
        ("Connector", "AvailabilityState", 2, 1, ""),
        ("Connector", "AvailabilityState", 2, 2, "")])
    model.set_internal(dm.evse_ref(2, "Problem"), "true")
    summary = _answer(model, "GetBaseReport", {"requestId": 3, "reportBase": "SummaryInventory"})
    assert ("EVSE", "Problem", 2, 0, "") in _reported(summary)


EVSE_VARIABLES = ["AvailabilityState", "Available", "Power", "SupplyPhases", "Problem"]
CONNECTOR_VARIABLES = ["AvailabilityState", "Available", "ConnectorType", "SupplyPhases",
                       "Problem"]
REPORTS: list[tuple[str, dict[str, Any], list[tuple[str, str, int, int, str]]]] = [
    ("a component's variables, every EVSE",
     {"componentVariable": [{"component": {"name": "EVSE"}}]},
     [("EVSE", v, e, 0, "") for e in (1, 2) for v in EVSE_VARIABLES]),
    ("one variable of one EVSE, any case",
     {"componentVariable": [{"component": {"name": "evse", "evse": {"id": 2}},
                             "variable": {"name": "POWER"}}]},
     [("EVSE", "Power", 2, 0, "")]),
    ("the connectors of one EVSE",
     {"componentVariable": [{"component": {"name": "Connector", "evse": {"id": 2}}}]},
     [("Connector", v, 2, c, "") for c in (1, 2) for v in CONNECTOR_VARIABLES]),
    ("one connector's variable",
     {"componentVariable": [{"component": {"name": "Connector",
                                           "evse": {"id": 2, "connectorId": 2}},
                             "variable": {"name": "ConnectorType"}}]},
     [("Connector", "ConnectorType", 2, 2, "")]),
    ("a variable without its instance means every instance",
     {"componentVariable": [{"component": {"name": "DeviceDataCtrlr"},
                             "variable": {"name": "ItemsPerMessage"}}]},
     [("DeviceDataCtrlr", "ItemsPerMessage", 0, 0, i)
      for i in ("GetReport", "GetVariables", "SetVariables")]),
    ("one instance",
     {"componentVariable": [{"component": {"name": "DeviceDataCtrlr"},
                             "variable": {"name": "ItemsPerMessage", "instance": "GetReport"}},
                            {"component": {"name": "OCPPCommCtrlr"},
                             "variable": {"name": "HeartbeatInterval"}}]},
     [("OCPPCommCtrlr", "HeartbeatInterval", 0, 0, ""),
      ("DeviceDataCtrlr", "ItemsPerMessage", 0, 0, "GetReport")]),
    ("components that are enabled, among these",
     {"componentVariable": [{"component": {"name": "AuthCtrlr"}},
                            {"component": {"name": "OCPPCommCtrlr"}},
                            {"component": {"name": "SampledDataCtrlr"}}],
      "componentCriteria": ["Enabled"]},
     [("AuthCtrlr", v, 0, 0, "") for v in ("Enabled", "AuthorizeRemoteStart",
                                           "LocalAuthorizeOffline", "LocalPreAuthorize",
                                           "OfflineTxForUnknownIdEnabled")]),
    ("components with a problem",
     {"componentCriteria": ["Problem", "Active"]},
     [("EVSE", v, 1, 0, "") for v in EVSE_VARIABLES]),
    ("nothing known", {"componentVariable": [{"component": {"name": "Gadget"}}]}, []),
]


@pytest.mark.parametrize(("request_", "expected"), [(r, e) for _, r, e in REPORTS],
                         ids=[name for name, _, _ in REPORTS])
def test_get_report_selects_by_component_variable_and_criteria(
        request_: dict[str, Any], expected: list[tuple[str, str, int, int, str]]) -> None:
    model = _model()
    _set(model, _entry("SampledDataCtrlr", "Enabled", attributeValue="false"))
    model.set_internal(dm.evse_ref(1, "Problem"), "true")
    answer = _answer(model, "GetReport", {"requestId": 4, **request_})
    assert answer.payload == {"status": "Accepted" if expected else "EmptyResultSet"}
    assert sorted(_reported(answer)) == sorted(expected)
    assert all(message["requestId"] == 4 for message in _notify_reports(answer))


def test_get_report_without_filters_is_the_full_inventory() -> None:
    model = _model()
    full = _answer(model, "GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})
    assert _reported(_answer(model, "GetReport", {"requestId": 1})) == _reported(full)


@given(st.integers(1, 120), st.lists(st.integers(1, 3), min_size=1, max_size=4),
       st.sampled_from([base.value for base in dm.ReportBase]), ints)
@settings(max_examples=60, deadline=None)
def test_reports_split_into_notify_reports_of_at_most_items_per_message(
        per_message: int, evses: list[int], base: str, request_id: int) -> None:
    model = _model(dm.StationShape(evses=tuple(evses), items_per_message=per_message))
    answer = _answer(model, "GetBaseReport", {"requestId": request_id, "reportBase": base})
    messages = _notify_reports(answer)
    entries = model.base_report(base)
    assert len(messages) == -(-len(entries) // per_message)
    assert [message["seqNo"] for message in messages] == list(range(len(messages)))
    assert [message["tbc"] for message in messages] == [True] * (len(messages) - 1) + [False]
    assert all(len(message["reportData"]) <= per_message for message in messages)
    assert [entry for message in messages for entry in message["reportData"]] == entries
    assert {(message["requestId"], message["generatedAt"]) for message in messages} == {
        (request_id, v201.iso_timestamp(WALL))}


# Payloads that break the schema are CALLERRORs, and the official schema agrees.

VIOLATIONS: list[tuple[str, dict[str, Any], ErrorCode]] = [
    ("GetVariables", {}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": []}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": {}}, ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [1]}, ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [{"component": {"name": "A"}}]},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [_entry("A" * 51, "V")]},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [_entry("A", "V", variable_instance="I" * 51)]},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [{"component": {"name": "A", "evse": {"connectorId": 1}},
                                           "variable": {"name": "V"}}]},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [{"component": {"name": "A", "evse": {"id": "1"}},
                                           "variable": {"name": "V"}}]},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [{"component": {"name": "A", "evse": {"id": True}},
                                           "variable": {"name": "V"}}]},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("GetVariables", {"getVariableData": [_entry("A", "V", attributeType="Minimum")]},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("SetVariables", {"setVariableData": [_entry("A", "V")]},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("SetVariables", {"setVariableData": [_entry("A", "V", attributeValue=5)]},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("SetVariables", {"setVariableData": [_entry("A", "V", attributeValue="x" * 1001)]},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("GetBaseReport", {"requestId": 1}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetBaseReport", {"requestId": 1, "reportBase": "Everything"},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("GetBaseReport", {"requestId": "1", "reportBase": "FullInventory"},
     ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("GetReport", {}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetReport", {"requestId": 1, "componentCriteria": ["Broken"]},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("GetReport", {"requestId": 1, "componentCriteria": []},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetReport", {"requestId": 1, "componentCriteria": ["Active"] * 5},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetReport", {"requestId": 1, "componentVariable": [{"variable": {"name": "V"}}]},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
    ("GetReport", {"requestId": 1, "componentVariable": []},
     ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
]


@pytest.mark.parametrize(("action", "payload", "code"), VIOLATIONS)
def test_schema_breaches_are_violations(action: str, payload: dict[str, Any],
                                        code: ErrorCode) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _request(action, payload)
    model = _model()
    with pytest.raises(Violation) as caught:
        COMMANDS[action](model, payload, WALL)
    assert caught.value.code == code


def test_a_bad_entry_fails_the_whole_set_variables_before_any_change() -> None:
    model = _model()
    payload = {"setVariableData": [_entry("OCPPCommCtrlr", "HeartbeatInterval",
                                          attributeValue="60"),
                                   _entry("OCPPCommCtrlr", "OfflineThreshold")]}
    with pytest.raises(Violation):
        COMMANDS["SetVariables"](model, payload, WALL)
    assert model.changes() == {}


@pytest.mark.parametrize("action", ["GetVariables", "SetVariables", "GetReport"])
def test_more_entries_than_items_per_message_is_a_violation(action: str) -> None:
    model = _model(dm.StationShape(items_per_message=2))
    key = {"GetVariables": "getVariableData", "SetVariables": "setVariableData",
           "GetReport": "componentVariable"}[action]
    entry = _entry("OCPPCommCtrlr", "HeartbeatInterval")
    if action == "SetVariables":
        entry["attributeValue"] = "60"
    payload = {"requestId": 1, key: [entry] * 3} if action == "GetReport" else {key: [entry] * 3}
    _request(action, payload)
    with pytest.raises(Violation) as caught:
        COMMANDS[action](model, payload, WALL)
    assert caught.value.code == ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    payload[key] = [entry] * 2
    _answer(model, action, payload)


def test_the_device_model_commands_are_csms_actions_and_the_modules_stay_pure() -> None:
    assert set(COMMANDS) <= v201.CSMS_ACTIONS
    pure = {path.name for path in SANS_IO}
    assert {"v201.py", "device_model.py", "answers_201_variables.py"} <= pure
