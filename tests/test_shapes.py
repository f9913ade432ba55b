"""The request shapes the charger checks are the official schemas' (tests/schemas.py): the same
properties, required ones, types, enums, lengths and occurrences, for every CSMS-initiated
action of both versions; only the ranges of numbers may be narrower."""

from __future__ import annotations

from typing import Any

import pytest

from fleetsim.charger import shapes
from fleetsim.charger.answers_16 import COMMANDS
from fleetsim.charger.answers_201 import HANDLERS
from fleetsim.ocpp import v16, v201
from fleetsim.ocpp.frames import ErrorCode

from .schemas import schema_16, schema_201


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _same(shape: Any, node: dict[str, Any], root: dict[str, Any], path: str) -> None:
    node = _resolve(node, root)
    kind = node.get("type")
    if "enum" in node:
        assert isinstance(shape, shapes.Choice), path
        assert sorted(shape.values) == sorted(node["enum"]), path
    elif kind == "object":
        assert isinstance(shape, shapes.Object), path
        properties = node.get("properties", {})
        assert set(shape.fields) == set(properties), path
        assert shape.custom_data == ("customData" in properties), path
        assert sorted(shape.required) == sorted(node.get("required", [])), path
        assert node.get("additionalProperties") is False, path
        for name, child in properties.items():
            if name != "customData":
                _same(shape.fields[name], child, root, f"{path}.{name}")
    elif kind == "array":
        assert isinstance(shape, shapes.Array), path
        assert (shape.min_items, shape.max_items) == (node.get("minItems", 0),
                                                      node.get("maxItems")), path
        _same(shape.items, node["items"], root, f"{path}[]")
    elif kind == "string" and node.get("format") == "date-time":
        assert isinstance(shape, shapes.DateTime), path
    elif kind == "string":
        assert isinstance(shape, shapes.String), path
        assert shape.max_length == node.get("maxLength"), path
    elif kind == "integer":
        assert isinstance(shape, shapes.Integer), path
        assert shape.low >= node.get("minimum", -(2**31)), path
        assert shape.high <= 2**31 - 1, path
    elif kind == "number":
        assert isinstance(shape, shapes.Number), path
        assert shape.low >= node.get("minimum", -1e15), path
    elif kind == "boolean":
        assert isinstance(shape, shapes.Boolean), path
    else:
        assert kind is None and isinstance(shape, shapes.Anything), path


def test_every_csms_action_of_both_versions_has_a_shape_and_a_handler_behind_it() -> None:
    assert set(shapes.REQUESTS_16) == set(COMMANDS) == v16.CSMS_ACTIONS
    assert len(v16.CSMS_ACTIONS) == 19
    assert set(shapes.REQUESTS_201) == set(HANDLERS) == v201.CSMS_ACTIONS
    assert len(v201.CSMS_ACTIONS) == 40


@pytest.mark.parametrize("action", sorted(v16.CSMS_ACTIONS))
def test_a_1_6_shape_is_its_official_schema(action: str) -> None:
    schema = schema_16(action)
    _same(shapes.REQUESTS_16[action], schema, schema, action)


@pytest.mark.parametrize("action", sorted(v201.CSMS_ACTIONS))
def test_a_2_0_1_shape_is_its_official_schema(action: str) -> None:
    schema = schema_201(f"{action}Request")
    _same(shapes.REQUESTS_201[action], schema, schema, action)


@pytest.mark.parametrize(("payload", "code", "text"), [
    ({}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "connectorId is required"),
    ({"extra": 1, "connectorId": 1, "csChargingProfiles": {}}, ErrorCode.FORMATION_VIOLATION,
     "the payload has no property 'extra'"),
    ({"connectorId": True, "csChargingProfiles": {}}, ErrorCode.TYPE_CONSTRAINT_VIOLATION,
     "connectorId must be an integer"),
    ({"connectorId": 2**31, "csChargingProfiles": {}},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "connectorId must be in 0..2147483647"),
    ({"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 6}, {"startPeriod": 60, "limit": float("nan")}]}}},
     ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
     "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[1].limit must be a number in "
     "0..1e+09"),
])
def test_a_violation_names_the_field_and_its_fault(payload: dict[str, Any], code: ErrorCode,
                                                   text: str) -> None:
    with pytest.raises(shapes.Violation) as caught:
        shapes.check(shapes.REQUESTS_16, "SetChargingProfile", payload)
    assert (caught.value.code, str(caught.value)) == (code, text)


@pytest.mark.parametrize(("text", "ok"), [
    ("2026-01-01T00:00:00Z", True), ("2026-01-01t00:00:00.123456789z", True),
    ("2026-01-01T00:00:00+05:30", True), ("0001-01-01T00:00:00-23:59", True),
    ("2026-01-01T00:00:00", False), ("2026-01-01", False), ("2026-02-30T00:00:00Z", False),
    ("2026-01-01T24:00:00Z", False), ("2026-01-01T00:00:00Z\n", False),
    ("２０２６-01-01T00:00:00Z", False), ("tomorrow", False),
])
def test_date_times_are_rfc_3339_with_an_offset(text: str, ok: bool) -> None:
    assert (shapes.parse_date_time(text) is not None) is ok
