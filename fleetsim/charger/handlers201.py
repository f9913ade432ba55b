"""Answers to CSMS-initiated OCPP 2.0.1 CALLs that act on the charging station itself.

Like `commands.py` for 1.6: each handler checks the payload (a `Violation` becomes a
CALLERROR), asks the `ChargerCore` to act, and returns the CALLRESULT payload. The device
model's own calls (GetVariables, SetVariables, GetBaseReport, GetReport) come from
`commands201.py`; what they change (heartbeat, sampling intervals) is applied here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from fleetsim.charger import commands201
from fleetsim.charger.commands import Violation, date_field, field
from fleetsim.charger.device_model import (
    ALIGNED_INTERVAL,
    AUTHORIZE_REMOTE_START,
    HEARTBEAT_INTERVAL,
    TX_UPDATED_INTERVAL,
    DeviceModel,
)
from fleetsim.charger.smart_charging import DEFAULT_PHASES, VOLTS, parse_profile
from fleetsim.ocpp import v201
from fleetsim.ocpp.frames import ErrorCode

if TYPE_CHECKING:
    from fleetsim.charger.core import ChargerCore

__all__ = ["HANDLERS"]

def _token(payload: dict[str, Any]) -> str:
    token = field(payload, "idToken", dict)
    value = field(token, "idToken", str)
    field(token, "type", str)
    return str(value)[:20]


def _model(core: ChargerCore) -> DeviceModel:
    assert core.device_model is not None
    return core.device_model


def _device(action: str) -> Handler:
    """A device-model call: answer, queue its NotifyReports, apply what changed."""
    command = commands201.COMMANDS[action]

    def handle(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
        model = _model(core)
        answer = command(model, payload, core.wall(now))
        for then_action, then_payload in answer.then:
            core.send_after_answer(then_action, then_payload, now)
        for ref in answer.changed:
            if ref == HEARTBEAT_INTERVAL:
                core.set_heartbeat_interval(model.integer(ref), now)
            elif ref == TX_UPDATED_INTERVAL and model.integer(ref) > 0:
                core.set_meter_interval(model.integer(ref))
            elif ref == ALIGNED_INTERVAL:
                core.set_aligned_interval(model.integer(ref), now)
        return answer.payload

    return handle


def request_start_transaction(core: ChargerCore, payload: dict[str, Any],
                              now: float) -> dict[str, Any]:
    token = _token(payload)
    remote_start_id = field(payload, "remoteStartId", int)
    evse_id = field(payload, "evseId", int, required=False)
    if evse_id is not None and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    authorize = _model(core).flag(AUTHORIZE_REMOTE_START)
    started = core.start_remote(evse_id, token, now, remote_start_id=remote_start_id,
                                authorize=authorize)
    return {"status": "Accepted" if started else "Rejected"}


def request_stop_transaction(core: ChargerCore, payload: dict[str, Any],
                             now: float) -> dict[str, Any]:
    transaction_id = field(payload, "transactionId", str)
    stopped = core.stop_transaction(transaction_id, "Remote", now)
    return {"status": "Accepted" if stopped else "Rejected"}


def reset(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    kind = field(payload, "type", str, choices=frozenset({"Immediate", "OnIdle"}))
    if field(payload, "evseId", int, required=False) is not None:
        return {"status": "Rejected"}  # resetting a single EVSE is not supported
    if kind == "Immediate":
        core.reset("Hard", now)
        return {"status": "Accepted"}
    return {"status": "Scheduled" if core.reset_on_idle(now) else "Accepted"}


def change_availability(core: ChargerCore, payload: dict[str, Any],
                        now: float) -> dict[str, Any]:
    status = field(payload, "operationalStatus", str,
                    choices=frozenset({"Operative", "Inoperative"}))
    evse = field(payload, "evse", dict, required=False) or {}
    evse_id = field(evse, "id", int) if evse else 0
    if evse_id != 0 and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    return {"status": core.set_availability(evse_id, status == "Operative", now)}


def trigger_message(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    message = field(payload, "requestedMessage", str)
    evse = field(payload, "evse", dict, required=False)
    evse_id = field(evse, "id", int) if evse is not None else None
    if evse_id is not None and evse_id != 0 and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    return {"status": core.trigger_201(message, evse_id or None, now)}


def unlock_connector(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    evse_id = field(payload, "evseId", int)
    connector_id = field(payload, "connectorId", int)
    if not core.has_connector(evse_id) or connector_id != 1:
        return {"status": "UnknownConnector"}
    if core.charging(evse_id):
        return {"status": "OngoingAuthorizedTransaction"}
    return {"status": "Unlocked"}


def get_transaction_status(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    transaction_id = field(payload, "transactionId", str, required=False)
    result: dict[str, Any] = {"messagesInQueue": core.transaction_messages_queued(
        transaction_id)}
    if transaction_id is not None:
        result["ongoingIndicator"] = core.transaction_running(transaction_id)
    return result


def clear_cache(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "Accepted"}


def data_transfer(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    field(payload, "vendorId", str)
    return {"status": "UnknownVendorId"}


def get_local_list_version(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    return {"versionNumber": core.local_list.version}


def send_local_list(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    version = field(payload, "versionNumber", int)
    update = field(payload, "updateType", str, choices=frozenset({"Differential", "Full"}))
    entries = field(payload, "localAuthorizationList", list, required=False) or []
    converted = []
    for entry in entries:
        if type(entry) is not dict:
            raise Violation(ErrorCode.TYPE_CONSTRAINT_VIOLATION,
                            "localAuthorizationList entries must be objects")
        item: dict[str, Any] = {"idTag": _token(entry)}
        info = field(entry, "idTokenInfo", dict, required=False)
        if info is not None:
            item["idTagInfo"] = info
        converted.append(item)
    return {"status": core.local_list.update(version, update == "Full", converted)}


def reserve_now(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    reservation_id = field(payload, "id", int)
    field(payload, "expiryDateTime", str)
    token = _token(payload)
    evse_id = field(payload, "evseId", int, required=False)
    if evse_id is not None and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    expiry_wall = date_field(payload, "expiryDateTime")
    return {"status": core.reserve_any(evse_id, reservation_id, token, expiry_wall, now)}


def cancel_reservation(core: ChargerCore, payload: dict[str, Any],
                       now: float) -> dict[str, Any]:
    reservation_id = field(payload, "reservationId", int)
    return {"status": "Accepted" if core.cancel_reservation(reservation_id, now) else "Rejected"}


_PURPOSES: Final = {  # 2.0.1 purpose: the 1.6 one the profile store applies
    "ChargingStationMaxProfile": "ChargePointMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}
_PURPOSES_BACK: Final = {v16: v201 for v201, v16 in _PURPOSES.items()}


def set_charging_profile(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    evse_id = field(payload, "evseId", int)
    data = field(payload, "chargingProfile", dict)
    purpose = _PURPOSES.get(data.get("chargingProfilePurpose", ""))
    schedules = data.get("chargingSchedule")
    if purpose is None:  # ChargingStationExternalConstraints are the station's own business
        return {"status": "Rejected"}
    if type(schedules) is not list or not schedules:
        raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                        "chargingSchedule needs at least one schedule")
    as_v16 = {"chargingProfileId": data.get("id"), "stackLevel": data.get("stackLevel"),
              "chargingProfilePurpose": purpose,
              "chargingProfileKind": data.get("chargingProfileKind"),
              "chargingSchedule": schedules[0]}
    for key in ("recurrencyKind", "validFrom", "validTo"):
        if key in data:
            as_v16[key] = data[key]
    try:
        profile = parse_profile(evse_id, as_v16, core.wall(now))
    except ValueError as exc:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
    transaction_id = data.get("transactionId")
    profile = attrs.evolve(profile, transaction_id=transaction_id, raw=data)
    return {"status": core.set_charging_profile(evse_id, profile)}


def get_charging_profiles(core: ChargerCore, payload: dict[str, Any],
                          now: float) -> dict[str, Any]:
    request_id = field(payload, "requestId", int)
    evse_id = field(payload, "evseId", int, required=False)
    criterion = field(payload, "chargingProfile", dict)
    purpose = criterion.get("chargingProfilePurpose")
    stack_level = criterion.get("stackLevel")
    ids = criterion.get("chargingProfileId")
    found: dict[int, list[dict[str, Any]]] = {}
    for profile in core.charging_profiles():
        if profile.raw is None or (evse_id is not None and profile.connector_id != evse_id):
            continue
        if purpose is not None and _PURPOSES_BACK.get(profile.purpose) != purpose:
            continue
        if stack_level is not None and profile.stack_level != stack_level:
            continue
        if ids is not None and profile.profile_id not in ids:
            continue
        found.setdefault(profile.connector_id, []).append(profile.raw)
    for index, (evse, profiles) in enumerate(sorted(found.items())):
        core.send_after_answer("ReportChargingProfiles", v201.report_charging_profiles(
            request_id, "CSO", evse, profiles, tbc=index < len(found) - 1), now)
    return {"status": "Accepted" if found else "NoProfiles"}


def clear_charging_profile(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    profile_id = field(payload, "chargingProfileId", int, required=False)
    criteria = field(payload, "chargingProfileCriteria", dict, required=False) or {}
    purpose = criteria.get("chargingProfilePurpose")
    status = core.clear_charging_profile(
        profile_id, criteria.get("evseId"), None if purpose is None else _PURPOSES.get(purpose),
        criteria.get("stackLevel"))
    return {"status": status}


def get_log(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    field(payload, "logType", str, choices=frozenset({"DiagnosticsLog", "SecurityLog"}))
    request_id = field(payload, "requestId", int)
    log = field(payload, "log", dict)
    field(log, "remoteLocation", str)
    return {"status": "Accepted", "filename": core.upload_diagnostics(now, request_id)}


def update_firmware(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    request_id = field(payload, "requestId", int)
    firmware = field(payload, "firmware", dict)
    field(firmware, "location", str)
    core.update_firmware(date_field(firmware, "retrieveDateTime"), now, request_id)
    return {"status": "Accepted"}


def get_composite_schedule(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    """The limit in force now, held for the asked duration (a one-period composite)."""
    duration = field(payload, "duration", int)
    evse_id = field(payload, "evseId", int)
    unit = field(payload, "chargingRateUnit", str, required=False,
                  choices=frozenset({"A", "W"})) or "W"
    if evse_id != 0 and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    limit = core.power_limit_w(evse_id, now)
    value = limit if unit == "W" else limit / (VOLTS * DEFAULT_PHASES)
    return {"status": "Accepted", "schedule": {
        "evseId": evse_id, "duration": duration, "scheduleStart": v201.iso_timestamp(
            core.wall(now)), "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(value, 1)}]}}


def clear_variable_monitoring(core: ChargerCore, payload: dict[str, Any],
                              now: float) -> dict[str, Any]:
    ids = field(payload, "id", list)
    return {"clearMonitoringResult": [{"status": "NotFound", "id": monitor}
                                      for monitor in ids if type(monitor) is int]}


def set_variable_monitoring(core: ChargerCore, payload: dict[str, Any],
                            now: float) -> dict[str, Any]:
    """Monitoring is not supported: every request is refused, echoed as the schema asks."""
    entries = field(payload, "setMonitoringData", list)
    results = []
    for entry in entries:
        if type(entry) is not dict:
            raise Violation(ErrorCode.TYPE_CONSTRAINT_VIOLATION,
                            "setMonitoringData entries must be objects")
        results.append({"status": "Rejected", "type": entry.get("type"),
                        "severity": entry.get("severity"), "component": entry.get("component"),
                        "variable": entry.get("variable")})
    return {"setMonitoringResult": results}


def _refuse(answer: dict[str, Any]) -> Handler:
    """What a station without the feature (display messages, monitoring, certificates,
    firmware publishing, network profiles) answers: a status, never NotImplemented."""
    return lambda core, payload, now: dict(answer)


Handler = Callable[["ChargerCore", dict[str, Any], float], dict[str, Any]]
HANDLERS: Final[dict[str, Handler]] = {
    **{action: _device(action) for action in commands201.COMMANDS},
    "CancelReservation": cancel_reservation,
    "ChangeAvailability": change_availability,
    "ClearCache": clear_cache,
    "ClearChargingProfile": clear_charging_profile,
    "GetChargingProfiles": get_charging_profiles,
    "GetLog": get_log,
    "SetChargingProfile": set_charging_profile,
    "UpdateFirmware": update_firmware,
    "DataTransfer": data_transfer,
    "GetLocalListVersion": get_local_list_version,
    "GetTransactionStatus": get_transaction_status,
    "RequestStartTransaction": request_start_transaction,
    "RequestStopTransaction": request_stop_transaction,
    "ReserveNow": reserve_now,
    "Reset": reset,
    "SendLocalList": send_local_list,
    "TriggerMessage": trigger_message,
    "UnlockConnector": unlock_connector,
    "GetCompositeSchedule": get_composite_schedule,
    "ClearVariableMonitoring": clear_variable_monitoring,
    "SetVariableMonitoring": set_variable_monitoring,
    "CertificateSigned": _refuse({"status": "Rejected"}),
    "ClearDisplayMessage": _refuse({"status": "Unknown"}),
    "CostUpdated": _refuse({}),
    "CustomerInformation": _refuse({"status": "Rejected"}),
    "DeleteCertificate": _refuse({"status": "NotFound"}),
    "GetDisplayMessages": _refuse({"status": "Unknown"}),
    "GetInstalledCertificateIds": _refuse({"status": "NotFound"}),
    "GetMonitoringReport": _refuse({"status": "NotSupported"}),
    "InstallCertificate": _refuse({"status": "Rejected"}),
    "PublishFirmware": _refuse({"status": "Rejected"}),
    "SetDisplayMessage": _refuse({"status": "Rejected"}),
    "SetMonitoringBase": _refuse({"status": "NotSupported"}),
    "SetMonitoringLevel": _refuse({"status": "Rejected"}),
    "SetNetworkProfile": _refuse({"status": "Rejected"}),
    "UnpublishFirmware": _refuse({"status": "NoFirmware"}),
}
"""Every CSMS-initiated 2.0.1 action a station answers, by name."""
