"""Answers to CSMS-initiated OCPP 1.6 CALLs: check the payload, act on the charger, reply.

Each handler takes the charger, the CALL's payload and the time, and returns the response
payload. The payload is first held against its shape (`shapes.py`); one that breaks it raises
`Violation`, which becomes the CALLERROR OCPP-J prescribes, before anything changes. What the
command *does* lives in `ChargerCore`; here is only what the wire demands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from fleetsim.charger.shapes import REQUESTS_16, Object, Violation, parse_date_time
from fleetsim.charger.smart_charging import DEFAULT_PHASES, VOLTS, changes, parse_profile
from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import ErrorCode

if TYPE_CHECKING:
    from fleetsim.charger.core import ChargerCore

__all__ = ["COMMANDS", "Violation", "checked", "composite_schedule", "date_field"]

def date_field(payload: dict[str, Any], key: str) -> float:
    """A date-time field its shape has checked, as Unix seconds."""
    moment = parse_date_time(payload[key])
    if moment is None:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        f"{key} must be an RFC 3339 date-time")
    return moment.timestamp()


MAX_COMPOSITE_PERIODS: Final = 24
"""As many periods as a charging schedule may hold (ChargingScheduleMaxPeriods)."""


def composite_schedule(core: ChargerCore, connector_id: int, duration: int, unit: str,
                       now: float) -> tuple[list[dict[str, Any]], int]:
    """GetCompositeSchedule, both versions: the limits the charger's profiles set on a
    connector (0: the whole charger) from now on, as (chargingSchedulePeriods, duration).
    The limits change only where a profile starts, steps or ends, so it is evaluated there;
    a schedule with more periods than a charger keeps is cut short."""
    wall = core.wall(now)
    starts = {}
    for number in range(1, len(core.connectors) + 1):
        started = core.transaction_started_wall(number)
        if started is not None:
            starts[number] = started
    offsets = sorted({math.ceil(t - wall)
                      for t in changes(core.charging_profiles(), wall, wall + duration, starts)})
    periods: list[dict[str, Any]] = []
    for offset in [0, *offsets]:
        if offset >= duration > 0:
            break
        watts = core.power_limit_w(connector_id, now + offset)
        limit = round(watts if unit == "W" else watts / (VOLTS * DEFAULT_PHASES), 1)
        if periods and periods[-1]["limit"] == limit:
            continue
        if len(periods) == MAX_COMPOSITE_PERIODS:
            return periods, offset
        periods.append({"startPeriod": offset, "limit": limit})
    return periods, duration


def get_configuration(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    known, unknown = core.config.get(payload.get("key") or None)  # [] asks for every key
    result: dict[str, Any] = {"configurationKey": known}
    if unknown:
        result["unknownKey"] = unknown
    return result


def change_configuration(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    key, value = payload["key"], payload["value"]
    status = core.config.change(key, value)
    if status == "Accepted" and key == "HeartbeatInterval":
        core.set_heartbeat_interval(int(value), now)
    elif status == "Accepted" and key == "MeterValueSampleInterval":
        core.set_meter_interval(int(value))
    elif status == "Accepted" and key == "ClockAlignedDataInterval":
        core.set_aligned_interval(int(value), now)
    return {"status": status.value}


def clear_cache(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "Accepted"}


def data_transfer(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "UnknownVendorId"}


def get_composite_schedule(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    connector_id: int = payload["connectorId"]
    unit: str = payload.get("chargingRateUnit", "W")
    if connector_id != 0 and not core.has_connector(connector_id):
        return {"status": "Rejected"}
    periods, duration = composite_schedule(core, connector_id, payload["duration"], unit, now)
    start = v16.iso_timestamp(core.wall(now))
    return {"status": "Accepted", "connectorId": connector_id, "scheduleStart": start,
            "chargingSchedule": {"duration": duration, "startSchedule": start,
                                 "chargingRateUnit": unit, "chargingSchedulePeriod": periods}}


def get_local_list_version(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    if not core.config.flag("LocalAuthListEnabled"):
        return {"listVersion": -1}
    return {"listVersion": core.local_list.version}


def send_local_list(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    entries = payload.get("localAuthorizationList", [])
    if not core.config.flag("LocalAuthListEnabled"):
        return {"status": "NotSupported"}
    if len(entries) > core.config.integer("SendLocalListMaxLength"):
        return {"status": "Failed"}
    return {"status": core.local_list.update(payload["listVersion"],
                                             payload["updateType"] == "Full", entries)}


def remote_start_transaction(core: ChargerCore, payload: dict[str, Any],
                             now: float) -> dict[str, Any]:
    connector_id: int | None = payload.get("connectorId")
    if connector_id is not None and not core.has_connector(connector_id):
        return {"status": "Rejected"}
    started = core.start_remote(connector_id, payload["idTag"], now)
    return {"status": "Accepted" if started else "Rejected"}


def remote_stop_transaction(core: ChargerCore, payload: dict[str, Any],
                            now: float) -> dict[str, Any]:
    stopped = core.stop_transaction(payload["transactionId"], "Remote", now)
    return {"status": "Accepted" if stopped else "Rejected"}


def reset(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    core.reset(payload["type"], now)
    return {"status": "Accepted"}


def trigger_message(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": core.trigger(payload["requestedMessage"], payload.get("connectorId"), now)}


def unlock_connector(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    connector_id: int = payload["connectorId"]
    if not core.has_connector(connector_id):
        return {"status": "NotSupported"}
    core.unlock(connector_id, now)
    return {"status": "Unlocked"}


def change_availability(core: ChargerCore, payload: dict[str, Any],
                        now: float) -> dict[str, Any]:
    connector_id: int = payload["connectorId"]
    if connector_id != 0 and not core.has_connector(connector_id):
        return {"status": "Rejected"}
    return {"status": core.set_availability(connector_id, payload["type"] == "Operative", now)}


def reserve_now(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    connector_id: int = payload["connectorId"]
    if not core.has_connector(connector_id):  # connector 0: ReserveConnectorZeroSupported=false
        return {"status": "Rejected"}
    return {"status": core.reserve(connector_id, payload["reservationId"], payload["idTag"],
                                   date_field(payload, "expiryDate"), now)}


def cancel_reservation(core: ChargerCore, payload: dict[str, Any],
                       now: float) -> dict[str, Any]:
    cancelled = core.cancel_reservation(payload["reservationId"], now)
    return {"status": "Accepted" if cancelled else "Rejected"}


def get_diagnostics(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"fileName": core.upload_diagnostics(now)}


def update_firmware(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    core.update_firmware(date_field(payload, "retrieveDate"), now)
    return {}


def set_charging_profile(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    connector_id: int = payload["connectorId"]
    try:
        profile = parse_profile(connector_id, payload["csChargingProfiles"], core.wall(now))
    except ValueError as exc:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
    return {"status": core.set_charging_profile(connector_id, profile)}


def clear_charging_profile(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    return {"status": core.clear_charging_profile(
        payload.get("id"), payload.get("connectorId"), payload.get("chargingProfilePurpose"),
        payload.get("stackLevel"))}


Command = Callable[["ChargerCore", dict[str, Any], float], dict[str, Any]]


def checked(shapes: dict[str, Object], commands: dict[str, Command]) -> dict[str, Command]:
    """Each command behind its request's shape: a payload that breaks it is refused before
    the command reads or changes anything."""
    def guard(shape: Object, command: Command) -> Command:
        def handle(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
            shape.check(payload, "")
            return command(core, payload, now)
        return handle
    return {action: guard(shapes[action], command) for action, command in commands.items()}


COMMANDS: Final[dict[str, Command]] = checked(REQUESTS_16, {
    "CancelReservation": cancel_reservation,
    "ChangeAvailability": change_availability,
    "ChangeConfiguration": change_configuration,
    "ClearCache": clear_cache,
    "ClearChargingProfile": clear_charging_profile,
    "DataTransfer": data_transfer,
    "GetCompositeSchedule": get_composite_schedule,
    "GetConfiguration": get_configuration,
    "GetDiagnostics": get_diagnostics,
    "GetLocalListVersion": get_local_list_version,
    "RemoteStartTransaction": remote_start_transaction,
    "RemoteStopTransaction": remote_stop_transaction,
    "ReserveNow": reserve_now,
    "Reset": reset,
    "SendLocalList": send_local_list,
    "SetChargingProfile": set_charging_profile,
    "TriggerMessage": trigger_message,
    "UnlockConnector": unlock_connector,
    "UpdateFirmware": update_firmware,
})
"""Every CSMS-initiated 1.6 action by name, its payload checked against its shape first."""
