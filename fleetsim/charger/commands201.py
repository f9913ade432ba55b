"""Answers to the CSMS's OCPP 2.0.1 device-model CALLs: check the payload, work on the
`DeviceModel`, reply.

Each handler takes the model, the CALL's payload and, when it reports, the wall-clock time, and
returns an `Answer`: the CALLRESULT payload, the CALLs the station owes after it (a report's
NotifyReport messages) and the variables that changed, for the charger to act on. A payload that
breaks the message's schema raises `Violation`, as in `commands`, which becomes the CALLERROR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from fleetsim.charger.commands import Violation, field
from fleetsim.charger.device_model import (
    ITEMS_PER_MESSAGE_GET_REPORT,
    ITEMS_PER_MESSAGE_GET_VARIABLES,
    ITEMS_PER_MESSAGE_SET_VARIABLES,
    DeviceModel,
    Ref,
    ReportBase,
)
from fleetsim.ocpp import v201
from fleetsim.ocpp.frames import ErrorCode

__all__ = ["COMMANDS", "Answer", "get_base_report", "get_report", "get_variables",
           "set_variables"]

_NAME_LENGTH: Final = 50
_ATTRIBUTES: Final = frozenset({"Actual", "Target", "MinSet", "MaxSet"})
_CRITERIA: Final = frozenset({"Active", "Available", "Enabled", "Problem"})
_MAX_CRITERIA: Final = 4
_MAX_SET_VALUE_LENGTH: Final = 1000


@attrs.frozen
class Answer:
    """What the station does about one CSMS CALL."""

    payload: dict[str, Any]
    """The CALLRESULT payload."""
    then: tuple[tuple[str, dict[str, Any]], ...] = ()
    """(action, payload) CALLs to queue once the CALLRESULT is written, in order."""
    changed: tuple[Ref, ...] = ()
    """Variables that now hold another value."""


def _entries(payload: dict[str, Any], key: str, limit: int, *, required: bool) -> list[Any]:
    entries: list[Any] | None = field(payload, key, list, required=required)
    if entries is None:
        return []
    if not entries:
        raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, f"{key} must not be empty")
    if len(entries) > limit:
        raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                        f"{key} has {len(entries)} entries, ItemsPerMessage is {limit}")
    for n, entry in enumerate(entries):
        if type(entry) is not dict:
            raise Violation(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{key}[{n}] must be an object")
    return entries


def _component_variable(entry: dict[str, Any], where: str, *, variable_required: bool) -> None:
    component = field(entry, "component", dict, where=where)
    field(component, "name", str, where=f"{where}component.", max_length=_NAME_LENGTH)
    field(component, "instance", str, where=f"{where}component.", required=False,
           max_length=_NAME_LENGTH)
    evse = field(component, "evse", dict, where=f"{where}component.", required=False)
    if evse is not None:
        field(evse, "id", int, where=f"{where}component.evse.")
        field(evse, "connectorId", int, where=f"{where}component.evse.", required=False)
    variable = field(entry, "variable", dict, where=where, required=variable_required)
    if variable is not None:
        field(variable, "name", str, where=f"{where}variable.", max_length=_NAME_LENGTH)
        field(variable, "instance", str, where=f"{where}variable.", required=False,
               max_length=_NAME_LENGTH)


def get_variables(model: DeviceModel, payload: dict[str, Any]) -> Answer:
    entries = _entries(payload, "getVariableData",
                       model.integer(ITEMS_PER_MESSAGE_GET_VARIABLES), required=True)
    for n, entry in enumerate(entries):
        where = f"getVariableData[{n}]."
        _component_variable(entry, where, variable_required=True)
        field(entry, "attributeType", str, where=where, required=False, choices=_ATTRIBUTES)
    return Answer({"getVariableResult": model.get_variables(entries)})


def set_variables(model: DeviceModel, payload: dict[str, Any]) -> Answer:
    entries = _entries(payload, "setVariableData",
                       model.integer(ITEMS_PER_MESSAGE_SET_VARIABLES), required=True)
    for n, entry in enumerate(entries):
        where = f"setVariableData[{n}]."
        _component_variable(entry, where, variable_required=True)
        field(entry, "attributeType", str, where=where, required=False, choices=_ATTRIBUTES)
        field(entry, "attributeValue", str, where=where, max_length=_MAX_SET_VALUE_LENGTH)
    results, changed = model.set_variables(entries)
    return Answer({"setVariableResult": results}, changed=tuple(changed))


def _reported(request_id: int, report_data: list[dict[str, Any]], model: DeviceModel,
              wall: float) -> Answer:
    if not report_data:
        return Answer({"status": "EmptyResultSet"})
    messages = v201.notify_reports(request_id, wall, report_data,
                                   model.integer(ITEMS_PER_MESSAGE_GET_REPORT))
    return Answer({"status": "Accepted"},
                  then=tuple(("NotifyReport", message) for message in messages))


def get_base_report(model: DeviceModel, payload: dict[str, Any], wall: float) -> Answer:
    """The report goes in NotifyReport messages after the answer; the model is read now, so
    what they carry is the state the CSMS asked about."""
    request_id = field(payload, "requestId", int)
    base = field(payload, "reportBase", str, choices=frozenset(ReportBase))
    return _reported(request_id, model.base_report(base), model, wall)


def get_report(model: DeviceModel, payload: dict[str, Any], wall: float) -> Answer:
    request_id = field(payload, "requestId", int)
    entries = _entries(payload, "componentVariable", model.integer(ITEMS_PER_MESSAGE_GET_REPORT),
                       required=False)
    for n, entry in enumerate(entries):
        _component_variable(entry, f"componentVariable[{n}].", variable_required=False)
    criteria = field(payload, "componentCriteria", list, required=False)
    if criteria is not None:
        if not 1 <= len(criteria) <= _MAX_CRITERIA:
            raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                            f"componentCriteria must have 1..{_MAX_CRITERIA} entries")
        if not all(type(criterion) is str and criterion in _CRITERIA for criterion in criteria):
            raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                            f"componentCriteria entries must be {', '.join(sorted(_CRITERIA))}")
    report_data = model.report(entries if "componentVariable" in payload else None, criteria)
    return _reported(request_id, report_data, model, wall)


Command = Callable[[DeviceModel, dict[str, Any], float], Answer]
COMMANDS: Final[dict[str, Command]] = {
    "GetBaseReport": get_base_report,
    "GetReport": get_report,
    "GetVariables": lambda model, payload, wall: get_variables(model, payload),
    "SetVariables": lambda model, payload, wall: set_variables(model, payload),
}
"""Every device-model action by name, with one signature: (model, payload, wall) -> Answer."""
