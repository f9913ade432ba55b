"""Answers to CSMS-initiated OCPP 1.6 CALLs: check the payload, act on the charger, reply.

Each handler takes the charger, the CALL's payload and the time, and returns the response
payload; a payload that breaks the message's schema raises `Violation`, which becomes the
CALLERROR OCPP-J prescribes. What the command *does* lives in `ChargerCore`; here is only what
the wire demands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from fleetsim.charger.smart_charging import parse_profile
from fleetsim.ocpp.frames import ErrorCode

if TYPE_CHECKING:
    from fleetsim.charger.core import ChargerCore

__all__ = ["COMMANDS", "Violation"]

TRIGGERABLE: Final = frozenset({
    "BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
    "Heartbeat", "MeterValues", "StatusNotification",
})


class Violation(Exception):
    """The CSMS's payload breaks the message's rules; `code` is the CALLERROR to answer."""

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code


_TYPES: Final[dict[type, str]] = {int: "an integer", str: "a string", list: "an array",
                                  dict: "an object"}


def field(payload: dict[str, Any], key: str, kind: type[Any], *, required: bool = True,
          choices: frozenset[str] | tuple[str, ...] = (), max_length: int = 0,
          where: str = "") -> Any:
    """A payload field of an exact JSON type, or the CALLERROR a charger owes the CSMS;
    `where` prefixes the key's path in nested payloads ("setVariableData[2].")."""
    if key not in payload:
        if required:
            raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, f"{where}{key} is required")
        return None
    value: Any = payload[key]
    if type(value) is not kind:
        raise Violation(ErrorCode.TYPE_CONSTRAINT_VIOLATION,
                        f"{where}{key} must be {_TYPES[kind]}")
    if choices and value not in choices:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        f"{where}{key} must be one of {', '.join(sorted(choices))}")
    if max_length and len(value) > max_length:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        f"{where}{key} is longer than {max_length}")
    return value


def _connector_id(payload: dict[str, Any], *, required: bool) -> int | None:
    value: int | None = field(payload, "connectorId", int, required=required)
    if value is not None and value < 0:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "connectorId must be >= 0")
    return value


def date_field(payload: dict[str, Any], key: str) -> float:
    """A required ISO 8601 date-time field, as Unix seconds."""
    text = field(payload, key, str)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        f"{key} must be an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def get_configuration(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    keys = field(payload, "key", list, required=False)
    if keys is not None and not all(type(key) is str and len(key) <= 50 for key in keys):
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                        "key must be an array of strings of at most 50 characters")
    known, unknown = core.config.get(keys)
    result: dict[str, Any] = {"configurationKey": known}
    if unknown:
        result["unknownKey"] = unknown
    return result


def change_configuration(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    key = field(payload, "key", str, max_length=50)
    value = field(payload, "value", str, max_length=500)
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
    field(payload, "vendorId", str, max_length=255)
    return {"status": "UnknownVendorId"}


def get_local_list_version(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    if not core.config.flag("LocalAuthListEnabled"):
        return {"listVersion": -1}
    return {"listVersion": core.local_list.version}


def send_local_list(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    version = field(payload, "listVersion", int)
    update = field(payload, "updateType", str, choices=("Differential", "Full"))
    entries = field(payload, "localAuthorizationList", list, required=False) or []
    for entry in entries:
        if type(entry) is not dict or type(entry.get("idTag")) is not str or (
                "idTagInfo" in entry and type(entry["idTagInfo"]) is not dict):
            raise Violation(ErrorCode.TYPE_CONSTRAINT_VIOLATION,
                            "localAuthorizationList entries need an idTag string")
    if not core.config.flag("LocalAuthListEnabled"):
        return {"status": "NotSupported"}
    if len(entries) > core.config.integer("SendLocalListMaxLength"):
        return {"status": "Failed"}
    return {"status": core.local_list.update(version, update == "Full", entries)}


def remote_start_transaction(core: ChargerCore, payload: dict[str, Any],
                             now: float) -> dict[str, Any]:
    id_tag = field(payload, "idTag", str, max_length=20)
    connector_id = _connector_id(payload, required=False)
    if connector_id is not None and not core.has_connector(connector_id):
        return {"status": "Rejected"}
    started = core.start_remote(connector_id, id_tag, now)
    return {"status": "Accepted" if started else "Rejected"}


def remote_stop_transaction(core: ChargerCore, payload: dict[str, Any],
                            now: float) -> dict[str, Any]:
    transaction_id = field(payload, "transactionId", int)
    stopped = core.stop_transaction(transaction_id, "Remote", now)
    return {"status": "Accepted" if stopped else "Rejected"}


def reset(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    kind = field(payload, "type", str, choices=("Hard", "Soft"))
    core.reset(kind, now)
    return {"status": "Accepted"}


def trigger_message(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    message = field(payload, "requestedMessage", str, choices=TRIGGERABLE)
    connector_id = _connector_id(payload, required=False)
    return {"status": core.trigger(message, connector_id, now)}


def unlock_connector(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    connector_id = _connector_id(payload, required=True)
    assert connector_id is not None
    if not core.has_connector(connector_id):
        return {"status": "NotSupported"}
    core.unlock(connector_id, now)
    return {"status": "Unlocked"}


def change_availability(core: ChargerCore, payload: dict[str, Any],
                        now: float) -> dict[str, Any]:
    connector_id = _connector_id(payload, required=True)
    kind = field(payload, "type", str, choices=("Inoperative", "Operative"))
    assert connector_id is not None
    if connector_id != 0 and not core.has_connector(connector_id):
        return {"status": "Rejected"}
    return {"status": core.set_availability(connector_id, kind == "Operative", now)}


def reserve_now(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    connector_id = _connector_id(payload, required=True)
    expiry = date_field(payload, "expiryDate")
    id_tag = field(payload, "idTag", str, max_length=20)
    field(payload, "parentIdTag", str, required=False, max_length=20)
    reservation_id = field(payload, "reservationId", int)
    assert connector_id is not None
    if not core.has_connector(connector_id):  # connector 0: ReserveConnectorZeroSupported=false
        return {"status": "Rejected"}
    return {"status": core.reserve(connector_id, reservation_id, id_tag, expiry, now)}


def cancel_reservation(core: ChargerCore, payload: dict[str, Any],
                       now: float) -> dict[str, Any]:
    reservation_id = field(payload, "reservationId", int)
    cancelled = core.cancel_reservation(reservation_id, now)
    return {"status": "Accepted" if cancelled else "Rejected"}


def get_diagnostics(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    field(payload, "location", str)
    for key in ("retries", "retryInterval"):
        field(payload, key, int, required=False)
    for key in ("startTime", "stopTime"):
        if key in payload:
            date_field(payload, key)
    return {"fileName": core.upload_diagnostics(now)}


def update_firmware(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    field(payload, "location", str)
    retrieve = date_field(payload, "retrieveDate")
    for key in ("retries", "retryInterval"):
        field(payload, key, int, required=False)
    core.update_firmware(retrieve, now)
    return {}


def set_charging_profile(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    connector_id = _connector_id(payload, required=True)
    data = field(payload, "csChargingProfiles", dict)
    assert connector_id is not None
    try:
        profile = parse_profile(connector_id, data, core.wall(now))
    except ValueError as exc:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
    return {"status": core.set_charging_profile(connector_id, profile)}


def clear_charging_profile(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    profile_id = field(payload, "id", int, required=False)
    connector_id = _connector_id(payload, required=False)
    purpose = field(payload, "chargingProfilePurpose", str, required=False,
                     choices=("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"))
    stack_level = field(payload, "stackLevel", int, required=False)
    return {"status": core.clear_charging_profile(profile_id, connector_id, purpose,
                                                  stack_level)}


Command = Callable[["ChargerCore", dict[str, Any], float], dict[str, Any]]
COMMANDS: Final[dict[str, Command]] = {
    "CancelReservation": cancel_reservation,
    "ChangeAvailability": change_availability,
    "ChangeConfiguration": change_configuration,
    "ClearCache": clear_cache,
    "ClearChargingProfile": clear_charging_profile,
    "DataTransfer": data_transfer,
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
}
