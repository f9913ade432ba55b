"""Answers to the CSMS's OCPP 2.0.1 device-model CALLs: check the payload, work on the
`DeviceModel`, reply.

Each handler takes the model, the CALL's payload and, when it reports, the wall-clock time, and
returns an `Answer`: the CALLRESULT payload, the CALLs the station owes after it (a report's
NotifyReport messages) and the variables that changed, for the charger to act on. A payload that
breaks the request's shape (`shapes.py`) or holds more entries than the station's ItemsPerMessage
raises `Violation`, which becomes the CALLERROR, before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from fleetsim.charger.device_model import (
    ITEMS_PER_MESSAGE_GET_REPORT,
    ITEMS_PER_MESSAGE_GET_VARIABLES,
    ITEMS_PER_MESSAGE_SET_VARIABLES,
    DeviceModel,
    Ref,
)
from fleetsim.charger.shapes import REQUESTS_201, Violation, check
from fleetsim.ocpp import v201
from fleetsim.ocpp.frames import ErrorCode

__all__ = ["COMMANDS", "Answer", "get_base_report", "get_report", "get_variables",
           "set_variables"]

@attrs.frozen
class Answer:
    """What the station does about one CSMS CALL."""

    payload: dict[str, Any]
    """The CALLRESULT payload."""
    then: tuple[tuple[str, dict[str, Any]], ...] = ()
    """(action, payload) CALLs to queue once the CALLRESULT is written, in order."""
    changed: tuple[Ref, ...] = ()
    """Variables that now hold another value."""


def _entries(payload: dict[str, Any], key: str, limit: int) -> list[Any]:
    """A checked array of entries, refused when longer than the station's ItemsPerMessage."""
    entries: list[Any] = payload.get(key, [])
    if len(entries) > limit:
        raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                        f"{key} has {len(entries)} entries, ItemsPerMessage is {limit}")
    return entries


def get_variables(model: DeviceModel, payload: dict[str, Any]) -> Answer:
    check(REQUESTS_201, "GetVariables", payload)
    entries = _entries(payload, "getVariableData", model.integer(ITEMS_PER_MESSAGE_GET_VARIABLES))
    return Answer({"getVariableResult": model.get_variables(entries)})


def set_variables(model: DeviceModel, payload: dict[str, Any]) -> Answer:
    check(REQUESTS_201, "SetVariables", payload)
    entries = _entries(payload, "setVariableData", model.integer(ITEMS_PER_MESSAGE_SET_VARIABLES))
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
    check(REQUESTS_201, "GetBaseReport", payload)
    return _reported(payload["requestId"], model.base_report(payload["reportBase"]), model, wall)


def get_report(model: DeviceModel, payload: dict[str, Any], wall: float) -> Answer:
    check(REQUESTS_201, "GetReport", payload)
    entries = _entries(payload, "componentVariable", model.integer(ITEMS_PER_MESSAGE_GET_REPORT))
    report_data = model.report(entries if "componentVariable" in payload else None,
                               payload.get("componentCriteria"))
    return _reported(payload["requestId"], report_data, model, wall)


Command = Callable[[DeviceModel, dict[str, Any], float], Answer]
COMMANDS: Final[dict[str, Command]] = {
    "GetBaseReport": get_base_report,
    "GetReport": get_report,
    "GetVariables": lambda model, payload, wall: get_variables(model, payload),
    "SetVariables": lambda model, payload, wall: set_variables(model, payload),
}
"""Every device-model action by name, with one signature: (model, payload, wall) -> Answer."""
