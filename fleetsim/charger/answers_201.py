"""Answers to CSMS-initiated OCPP 2.0.1 CALLs that act on the charging station itself.

Like `answers_16.py` for 1.6: each payload is first held against its shape (`shapes.py`; a
`Violation` becomes a CALLERROR and changes nothing), then the handler asks the `ChargerCore` to
act and returns the CALLRESULT payload. The device
model's own calls (GetVariables, SetVariables, GetBaseReport, GetReport) come from
`answers_201_variables.py`; what they change (heartbeat, sampling intervals) is applied here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from fleetsim.charger import answers_201_variables
from fleetsim.charger.answers_16 import checked, composite_schedule, date_field
from fleetsim.charger.device_model import (
    ALIGNED_INTERVAL,
    AUTHORIZE_REMOTE_START,
    HEARTBEAT_INTERVAL,
    TX_UPDATED_INTERVAL,
    DeviceModel,
)
from fleetsim.charger.shapes import REQUESTS_201, Violation
from fleetsim.charger.smart_charging import parse_profile
from fleetsim.ocpp import v201
from fleetsim.ocpp.frames import ErrorCode

if TYPE_CHECKING:
    from fleetsim.charger.core import ChargerCore

__all__ = ["HANDLERS"]


def _token(payload: dict[str, Any]) -> str:
    """A checked IdTokenType's token, cut to what the charger's sessions keep."""
    token: str = payload["idToken"]["idToken"]
    return token[:20]


def _model(core: ChargerCore) -> DeviceModel:
    assert core.device_model is not None
    return core.device_model


def _device(action: str) -> Handler:
    """A device-model call: answer, queue its NotifyReports, apply what changed."""
    command = answers_201_variables.COMMANDS[action]

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
    evse_id: int | None = payload.get("evseId")
    if evse_id is not None and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    authorize = _model(core).flag(AUTHORIZE_REMOTE_START)
    started = core.start_remote(evse_id, _token(payload), now,
                                remote_start_id=payload["remoteStartId"], authorize=authorize)
    return {"status": "Accepted" if started else "Rejected"}


def request_stop_transaction(core: ChargerCore, payload: dict[str, Any],
                             now: float) -> dict[str, Any]:
    stopped = core.stop_transaction(payload["transactionId"], "Remote", now)
    return {"status": "Accepted" if stopped else "Rejected"}


def reset(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    if "evseId" in payload:
        return {"status": "Rejected"}  # resetting a single EVSE is not supported
    if payload["type"] == "Immediate":
        core.reset("Hard", now)
        return {"status": "Accepted"}
    return {"status": "Scheduled" if core.reset_on_idle(now) else "Accepted"}


def change_availability(core: ChargerCore, payload: dict[str, Any],
                        now: float) -> dict[str, Any]:
    evse_id: int = payload.get("evse", {}).get("id", 0)
    if evse_id != 0 and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    return {"status": core.set_availability(
        evse_id, payload["operationalStatus"] == "Operative", now)}


def trigger_message(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    evse_id: int | None = payload["evse"]["id"] if "evse" in payload else None
    if evse_id is not None and evse_id != 0 and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    return {"status": core.trigger_201(payload["requestedMessage"], evse_id or None, now)}


def unlock_connector(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    evse_id: int = payload["evseId"]
    if not core.has_connector(evse_id) or payload["connectorId"] != 1:
        return {"status": "UnknownConnector"}
    if core.charging(evse_id):
        return {"status": "OngoingAuthorizedTransaction"}
    return {"status": "Unlocked"}


def get_transaction_status(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    transaction_id: str | None = payload.get("transactionId")
    result: dict[str, Any] = {"messagesInQueue": core.transaction_messages_queued(
        transaction_id)}
    if transaction_id is not None:
        result["ongoingIndicator"] = core.transaction_running(transaction_id)
    return result


def clear_cache(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "Accepted"}


def data_transfer(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "UnknownVendorId"}


def get_local_list_version(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    return {"versionNumber": core.local_list.version}


def send_local_list(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    converted = []
    for entry in payload.get("localAuthorizationList", []):
        item: dict[str, Any] = {"idTag": _token(entry)}
        if "idTokenInfo" in entry:
            item["idTagInfo"] = entry["idTokenInfo"]
        converted.append(item)
    return {"status": core.local_list.update(payload["versionNumber"],
                                             payload["updateType"] == "Full", converted)}


def reserve_now(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    evse_id: int | None = payload.get("evseId")
    if evse_id is not None and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    return {"status": core.reserve_any(evse_id, payload["id"], _token(payload),
                                       date_field(payload, "expiryDateTime"), now)}


def cancel_reservation(core: ChargerCore, payload: dict[str, Any],
                       now: float) -> dict[str, Any]:
    return {"status": "Accepted" if core.cancel_reservation(payload["reservationId"], now)
            else "Rejected"}


_PURPOSES: Final = {  # 2.0.1 purpose: the 1.6 one the profile store applies
    "ChargingStationMaxProfile": "ChargePointMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}
_PURPOSES_BACK: Final = {v16: v201 for v201, v16 in _PURPOSES.items()}


def set_charging_profile(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    evse_id: int = payload["evseId"]
    data = payload["chargingProfile"]
    purpose = _PURPOSES.get(data["chargingProfilePurpose"])
    if purpose is None:  # ChargingStationExternalConstraints are the station's own business
        return {"status": "Rejected"}
    as_v16 = {"chargingProfileId": data["id"], "stackLevel": data["stackLevel"],
              "chargingProfilePurpose": purpose,
              "chargingProfileKind": data["chargingProfileKind"],
              "chargingSchedule": data["chargingSchedule"][0]}
    for key in ("recurrencyKind", "validFrom", "validTo"):
        if key in data:
            as_v16[key] = data[key]
    try:
        profile = parse_profile(evse_id, as_v16, core.wall(now))
    except ValueError as exc:
        raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, str(exc)) from None
    profile = attrs.evolve(profile, transaction_id=data.get("transactionId"), raw=data)
    return {"status": core.set_charging_profile(evse_id, profile)}


def get_charging_profiles(core: ChargerCore, payload: dict[str, Any],
                          now: float) -> dict[str, Any]:
    request_id: int = payload["requestId"]
    evse_id: int | None = payload.get("evseId")
    criterion = payload["chargingProfile"]
    purpose = criterion.get("chargingProfilePurpose")
    stack_level = criterion.get("stackLevel")
    ids = criterion.get("chargingProfileId")
    if "CSO" not in criterion.get("chargingLimitSource", ("CSO",)):
        return {"status": "NoProfiles"}  # every profile here was set by the CSMS
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
    criteria = payload.get("chargingProfileCriteria", {})
    purpose = criteria.get("chargingProfilePurpose")
    if purpose is not None and purpose not in _PURPOSES:
        return {"status": "Unknown"}  # no ChargingStationExternalConstraints are kept
    return {"status": core.clear_charging_profile(
        payload.get("chargingProfileId"), criteria.get("evseId"),
        None if purpose is None else _PURPOSES[purpose], criteria.get("stackLevel"))}


def get_log(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return {"status": "Accepted",
            "filename": core.upload_diagnostics(now, payload["requestId"])}


def update_firmware(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    core.update_firmware(date_field(payload["firmware"], "retrieveDateTime"), now,
                         payload["requestId"])
    return {"status": "Accepted"}


def get_composite_schedule(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    evse_id: int = payload["evseId"]
    unit: str = payload.get("chargingRateUnit", "W")
    if evse_id != 0 and not core.has_connector(evse_id):
        return {"status": "Rejected"}
    periods, duration = composite_schedule(core, evse_id, payload["duration"], unit, now)
    return {"status": "Accepted", "schedule": {
        "evseId": evse_id, "duration": duration,
        "scheduleStart": v201.iso_timestamp(core.wall(now)), "chargingRateUnit": unit,
        "chargingSchedulePeriod": periods}}


def clear_variable_monitoring(core: ChargerCore, payload: dict[str, Any],
                              now: float) -> dict[str, Any]:
    return {"clearMonitoringResult": [{"status": "NotFound", "id": monitor}
                                      for monitor in payload["id"]]}


def set_variable_monitoring(core: ChargerCore, payload: dict[str, Any],
                            now: float) -> dict[str, Any]:
    """Monitoring is not supported: every request is refused, echoed as the schema asks."""
    return {"setMonitoringResult": [
        {"status": "Rejected", "type": entry["type"], "severity": entry["severity"],
         "component": entry["component"], "variable": entry["variable"]}
        for entry in payload["setMonitoringData"]]}


def _refuse(answer: dict[str, Any]) -> Handler:
    """What a station without the feature (display messages, monitoring, certificates,
    firmware publishing, network profiles) answers: a status, never NotImplemented."""
    return lambda core, payload, now: dict(answer)


Handler = Callable[["ChargerCore", dict[str, Any], float], dict[str, Any]]
HANDLERS: Final[dict[str, Handler]] = {
    # the device model's answers check their own payloads
    **{action: _device(action) for action in answers_201_variables.COMMANDS},
    **checked(REQUESTS_201, {
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
    }),
}
"""Every CSMS-initiated 2.0.1 action a station answers, by name, each payload checked
against its shape first."""
