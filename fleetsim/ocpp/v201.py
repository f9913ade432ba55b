"""OCPP 2.0.1 message catalogue and payload builders for the messages a charging station sends.

As in `v16`, payloads are plain dicts in the wire shape (camelCase keys), built straight for the
JSON encoder on the hot path, and time comes in as wall-clock seconds. Optional fields are left
out when not given, so every payload is exactly what the schema allows. Builders do not check
lengths or enumerations: the caller's configuration does that once, not per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import CallError
from fleetsim.ocpp.v16 import iso_timestamp

__all__ = [
    "CHARGER_ACTIONS",
    "CSMS_ACTIONS",
    "DEFAULT_MEASURANDS",
    "MEASURANDS",
    "SUBPROTOCOL",
    "as_v201_error",
    "authorize",
    "boot_notification",
    "cleared_charging_limit",
    "component",
    "data_transfer",
    "event_data",
    "firmware_status_notification",
    "heartbeat",
    "id_token",
    "iso_timestamp",
    "log_status_notification",
    "meter_value",
    "meter_values",
    "notify_charging_limit",
    "notify_customer_information",
    "notify_ev_charging_needs",
    "notify_event",
    "notify_report",
    "notify_reports",
    "report_charging_profiles",
    "reservation_status_update",
    "sampled_values",
    "security_event_notification",
    "status_notification",
    "transaction_event",
    "variable",
]

SUBPROTOCOL: Final = "ocpp2.0.1"

CHARGER_ACTIONS: Final = frozenset({
    "Authorize", "BootNotification", "ClearedChargingLimit", "DataTransfer",
    "FirmwareStatusNotification", "Get15118EVCertificate", "GetCertificateStatus", "Heartbeat",
    "LogStatusNotification", "MeterValues", "NotifyChargingLimit", "NotifyCustomerInformation",
    "NotifyDisplayMessages", "NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "NotifyEvent",
    "NotifyMonitoringReport", "NotifyReport", "PublishFirmwareStatusNotification",
    "ReportChargingProfiles", "ReservationStatusUpdate", "SecurityEventNotification",
    "SignCertificate", "StatusNotification", "TransactionEvent",
})
"""The 25 actions a charging station initiates (OCPP 2.0.1 part 2); DataTransfer goes both ways."""

CSMS_ACTIONS: Final = frozenset({
    "CancelReservation", "CertificateSigned", "ChangeAvailability", "ClearCache",
    "ClearChargingProfile", "ClearDisplayMessage", "ClearVariableMonitoring", "CostUpdated",
    "CustomerInformation", "DataTransfer", "DeleteCertificate", "GetBaseReport",
    "GetChargingProfiles", "GetCompositeSchedule", "GetDisplayMessages",
    "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport",
    "GetReport", "GetTransactionStatus", "GetVariables", "InstallCertificate", "PublishFirmware",
    "RequestStartTransaction", "RequestStopTransaction", "ReserveNow", "Reset", "SendLocalList",
    "SetChargingProfile", "SetDisplayMessage", "SetMonitoringBase", "SetMonitoringLevel",
    "SetNetworkProfile", "SetVariableMonitoring", "SetVariables", "TriggerMessage",
    "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
})
"""The 40 actions the CSMS initiates."""

MEASURANDS: Final = {name: spec for name, spec in v16.MEASURANDS.items() if name != "Temperature"}
"""v16's measurands with their location and unit, less Temperature: 2.0.1 dropped it as a
measurand (a temperature is a device-model variable now)."""
DEFAULT_MEASURANDS: Final = v16.DEFAULT_MEASURANDS
_VOLTS: Final = 230.0
_PHASES: Final = 3


def component(name: str, *, evse: int = 0, connector: int = 0,
              instance: str = "") -> dict[str, Any]:
    """A ComponentType; `evse` 0 means the station as a whole (EVSE ids start at 1)."""
    result: dict[str, Any] = {"name": name}
    if instance:
        result["instance"] = instance
    if evse:
        result["evse"] = {"id": evse, "connectorId": connector} if connector else {"id": evse}
    return result


def variable(name: str, instance: str = "") -> dict[str, Any]:
    return {"name": name, "instance": instance} if instance else {"name": name}


def id_token(token: str, token_type: str = "ISO14443") -> dict[str, Any]:
    """An IdTokenType; build it once per session and pass it to every message that needs it."""
    return {"idToken": token, "type": token_type}


def boot_notification(vendor: str, model: str, serial: str | None = None,
                      firmware: str | None = None, reason: str = "PowerUp") -> dict[str, Any]:
    station: dict[str, Any] = {"model": model, "vendorName": vendor}
    if serial is not None:
        station["serialNumber"] = serial
    if firmware is not None:
        station["firmwareVersion"] = firmware
    return {"reason": reason, "chargingStation": station}


def heartbeat() -> dict[str, Any]:
    return {}


def status_notification(evse_id: int, connector_id: int, status: str,
                        wall: float) -> dict[str, Any]:
    """`status` is a ConnectorStatus: Available, Occupied, Reserved, Unavailable or Faulted."""
    return {
        "timestamp": iso_timestamp(wall),
        "connectorStatus": status,
        "evseId": evse_id,
        "connectorId": connector_id,
    }


def authorize(token: str, token_type: str = "ISO14443") -> dict[str, Any]:
    return {"idToken": id_token(token, token_type)}


def sampled_values(
    measurands: Sequence[str], context: str, meter_wh: int, power_w: float,
    offered_w: float = 0.0, soc: float | None = None,
) -> list[dict[str, Any]]:
    """One SampledValueType per measurand, derived as in `v16.sampled_values`.

    Values are JSON numbers in 2.0.1. SoC is left out when the EV reports none, so the list can
    be empty: a MeterValue needs at least one sample, so check before wrapping it.
    """
    values: dict[str, float] = {
        "Energy.Active.Import.Register": meter_wh,
        "Power.Active.Import": round(power_w),
        "Power.Offered": round(offered_w),
        "Current.Import": round(power_w / (_VOLTS * _PHASES), 1),
        "Voltage": _VOLTS,
        "SoC": round(soc or 0.0),
    }
    result = []
    for measurand in measurands:
        if measurand == "SoC" and soc is None:
            continue
        location, unit = MEASURANDS[measurand]
        result.append({"value": values[measurand], "context": context, "measurand": measurand,
                       "location": location, "unitOfMeasure": {"unit": unit}})
    return result


def meter_value(wall: float, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A MeterValueType: the samples of `sampled_values` taken at one instant."""
    return {"timestamp": iso_timestamp(wall), "sampledValue": samples}


def meter_values(evse_id: int, values: list[dict[str, Any]]) -> dict[str, Any]:
    """MeterValues outside transactions (in a transaction they go in TransactionEvent);
    `evse_id` 0 is the station's main meter."""
    return {"evseId": evse_id, "meterValue": values}


def transaction_event(
    event_type: str, wall: float, trigger_reason: str, seq_no: int, transaction_id: str, *,
    charging_state: str | None = None, stopped_reason: str | None = None,
    remote_start_id: int | None = None, time_spent_charging: int | None = None,
    token: dict[str, Any] | None = None, evse_id: int | None = None,
    connector_id: int | None = None, samples: list[dict[str, Any]] | None = None,
    values: list[dict[str, Any]] | None = None, offline: bool = False,
    reservation_id: int | None = None, phases_used: int | None = None,
) -> dict[str, Any]:
    """TransactionEvent: `event_type` Started, Updated or Ended; `seq_no` counts the
    transaction's events from 0; `evse_id` is due in the first event after the EV connects.

    `token` is an `id_token(...)`. `samples` (from `sampled_values`) are readings taken at the
    event's own time, the usual case, and share its timestamp string (formatting it costs more
    than the rest of the payload); `values` are `meter_value(...)` taken at other times, such
    as the TxEndedInterval samples of an Ended event.
    """
    info: dict[str, Any] = {"transactionId": transaction_id}
    if charging_state is not None:
        info["chargingState"] = charging_state
    if time_spent_charging is not None:
        info["timeSpentCharging"] = time_spent_charging
    if stopped_reason is not None:
        info["stoppedReason"] = stopped_reason
    if remote_start_id is not None:
        info["remoteStartId"] = remote_start_id
    stamp = iso_timestamp(wall)
    payload: dict[str, Any] = {
        "eventType": event_type,
        "timestamp": stamp,
        "triggerReason": trigger_reason,
        "seqNo": seq_no,
        "transactionInfo": info,
    }
    if offline:
        payload["offline"] = True
    if phases_used is not None:
        payload["numberOfPhasesUsed"] = phases_used
    if reservation_id is not None:
        payload["reservationId"] = reservation_id
    if token is not None:
        payload["idToken"] = token
    if evse_id is not None:
        payload["evse"] = ({"id": evse_id} if connector_id is None
                           else {"id": evse_id, "connectorId": connector_id})
    if samples:
        now = {"timestamp": stamp, "sampledValue": samples}
        payload["meterValue"] = [*values, now] if values else [now]
    elif values:
        payload["meterValue"] = values
    return payload


def notify_report(request_id: int, wall: float, seq_no: int,
                  report_data: list[dict[str, Any]], tbc: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {"requestId": request_id, "generatedAt": iso_timestamp(wall),
                               "seqNo": seq_no, "tbc": tbc}
    if report_data:
        payload["reportData"] = report_data
    return payload


def notify_reports(request_id: int, wall: float, report_data: list[dict[str, Any]],
                   items_per_message: int) -> list[dict[str, Any]]:
    """A report split into NotifyReport payloads of at most `items_per_message` entries:
    seqNo 0, 1, ..., with tbc set on all but the last. No entries, no messages."""
    if items_per_message < 1:
        raise ValueError(f"items_per_message must be at least 1, got {items_per_message}")
    chunks = [report_data[start:start + items_per_message]
              for start in range(0, len(report_data), items_per_message)]
    last = len(chunks) - 1
    return [notify_report(request_id, wall, seq_no, chunk, tbc=seq_no < last)
            for seq_no, chunk in enumerate(chunks)]


def event_data(
    event_id: int, wall: float, trigger: str, actual_value: str,
    comp: dict[str, Any], var: dict[str, Any],
    notification_type: str = "HardWiredNotification", *, cause: int | None = None,
    tech_code: str | None = None, tech_info: str | None = None, cleared: bool | None = None,
    transaction_id: str | None = None, monitor_id: int | None = None,
) -> dict[str, Any]:
    """An EventDataType for NotifyEvent: what `var` of `comp` (see `component`, `variable`)
    reads now; `trigger` is Alerting, Delta or Periodic."""
    data: dict[str, Any] = {
        "eventId": event_id,
        "timestamp": iso_timestamp(wall),
        "trigger": trigger,
        "actualValue": actual_value,
        "component": comp,
        "variable": var,
        "eventNotificationType": notification_type,
    }
    optional = {"cause": cause, "techCode": tech_code, "techInfo": tech_info,
                "cleared": cleared, "transactionId": transaction_id,
                "variableMonitoringId": monitor_id}
    data.update((key, value) for key, value in optional.items() if value is not None)
    return data


def notify_event(wall: float, seq_no: int, events: list[dict[str, Any]],
                 tbc: bool = False) -> dict[str, Any]:
    return {"generatedAt": iso_timestamp(wall), "seqNo": seq_no, "tbc": tbc, "eventData": events}


def security_event_notification(event_type: str, wall: float,
                                tech_info: str | None = None) -> dict[str, Any]:
    """`event_type` is free text of at most 50 characters, e.g. StartupOfTheDevice."""
    payload: dict[str, Any] = {"type": event_type, "timestamp": iso_timestamp(wall)}
    if tech_info is not None:
        payload["techInfo"] = tech_info
    return payload


def firmware_status_notification(status: str, request_id: int | None = None) -> dict[str, Any]:
    return {"status": status} if request_id is None else {"status": status,
                                                          "requestId": request_id}


def log_status_notification(status: str, request_id: int | None = None) -> dict[str, Any]:
    return {"status": status} if request_id is None else {"status": status,
                                                          "requestId": request_id}


def data_transfer(vendor_id: str, message_id: str | None = None,
                  data: Any = None) -> dict[str, Any]:
    """`data` is any JSON value (2.0.1 no longer limits it to a string)."""
    payload: dict[str, Any] = {"vendorId": vendor_id}
    if message_id is not None:
        payload["messageId"] = message_id
    if data is not None:
        payload["data"] = data
    return payload


def reservation_status_update(reservation_id: int, status: str) -> dict[str, Any]:
    """`status` is Expired or Removed."""
    return {"reservationId": reservation_id, "reservationUpdateStatus": status}


def notify_charging_limit(source: str, evse_id: int | None = None, *,
                          grid_critical: bool | None = None,
                          schedules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An external limit (`source` EMS, Other, SO or CSO) on the station or one EVSE."""
    limit: dict[str, Any] = {"chargingLimitSource": source}
    if grid_critical is not None:
        limit["isGridCritical"] = grid_critical
    payload: dict[str, Any] = {"chargingLimit": limit}
    if evse_id is not None:
        payload["evseId"] = evse_id
    if schedules:
        payload["chargingSchedule"] = schedules
    return payload


def cleared_charging_limit(source: str, evse_id: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"chargingLimitSource": source}
    if evse_id is not None:
        payload["evseId"] = evse_id
    return payload


def report_charging_profiles(request_id: int, source: str, evse_id: int,
                             profiles: list[dict[str, Any]], tbc: bool = False) -> dict[str, Any]:
    """Installed ChargingProfileType dicts (at least one), answering GetChargingProfiles."""
    return {"requestId": request_id, "chargingLimitSource": source, "evseId": evse_id,
            "chargingProfile": profiles, "tbc": tbc}


def notify_ev_charging_needs(
    evse_id: int, energy_wh: int, min_current_a: int, max_current_a: int, max_voltage_v: int,
    *, transfer: str = "AC_three_phase", departure_wall: float | None = None,
) -> dict[str, Any]:
    """An AC EV's needs, as ISO 15118 reports them."""
    needs: dict[str, Any] = {
        "requestedEnergyTransfer": transfer,
        "acChargingParameters": {"energyAmount": energy_wh, "evMinCurrent": min_current_a,
                                 "evMaxCurrent": max_current_a, "evMaxVoltage": max_voltage_v},
    }
    if departure_wall is not None:
        needs["departureTime"] = iso_timestamp(departure_wall)
    return {"evseId": evse_id, "chargingNeeds": needs}


def notify_customer_information(request_id: int, wall: float, seq_no: int, data: str,
                                tbc: bool = False) -> dict[str, Any]:
    return {"requestId": request_id, "generatedAt": iso_timestamp(wall), "seqNo": seq_no,
            "tbc": tbc, "data": data}


_FROM_V16_CODES: Final = {
    "FormationViolation": "FormatViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
}


def as_v201_error(error: CallError) -> CallError:
    """The same CALLERROR with its code spelled as 2.0.1 spells it: 2.0.1 renamed 1.6's
    `FormationViolation` and kept the `OccurenceConstraintViolation` typo, and
    `fleetsim.ocpp.frames` speaks 1.6."""
    code = _FROM_V16_CODES.get(error.error_code)
    if code is None:
        return error
    return CallError(error.unique_id, code, error.description, error.details)
