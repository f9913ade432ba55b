"""OCPP 1.6 message catalogue and payload builders for the messages a charger sends.

Payloads are plain dicts in the wire shape (camelCase keys): they go straight to the JSON encoder
on the hot path, so no model objects are built per message.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "CHARGER_ACTIONS",
    "CSMS_ACTIONS",
    "DEFAULT_MEASURANDS",
    "MEASURANDS",
    "SUBPROTOCOL",
    "authorize",
    "boot_notification",
    "data_transfer",
    "heartbeat",
    "iso_timestamp",
    "meter_values",
    "sampled_values",
    "start_transaction",
    "status_notification",
    "stop_transaction",
]

SUBPROTOCOL: Final = "ocpp1.6"

CHARGER_ACTIONS: Final = frozenset({
    "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
    "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
    "StatusNotification", "StopTransaction",
})

CSMS_ACTIONS: Final = frozenset({
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
    "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
    "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
    "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
    "UnlockConnector", "UpdateFirmware",
})


_second_prefix: tuple[int, str] = (-1, "")


def iso_timestamp(wall_seconds: float) -> str:
    """UTC timestamp with milliseconds, the form CSMSs parse most reliably. Every message
    carries one, so the part up to the second is formatted once a second."""
    global _second_prefix
    fraction, whole = math.modf(wall_seconds)  # rounded as datetime.fromtimestamp rounds
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    second, milli = int(whole), micros // 1000
    if _second_prefix[0] != second:
        moment = datetime.fromtimestamp(second, UTC)
        _second_prefix = (second, moment.strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{_second_prefix[1]}{milli:03d}Z"


def boot_notification(vendor: str, model: str, serial: str, firmware: str) -> dict[str, Any]:
    return {
        "chargePointVendor": vendor,
        "chargePointModel": model,
        "chargePointSerialNumber": serial,
        "firmwareVersion": firmware,
    }


def heartbeat() -> dict[str, Any]:
    return {}


def status_notification(connector_id: int, status: str, wall: float) -> dict[str, Any]:
    return {
        "connectorId": connector_id,
        "errorCode": "NoError",
        "status": status,
        "timestamp": iso_timestamp(wall),
    }


def authorize(id_tag: str) -> dict[str, Any]:
    return {"idTag": id_tag}


def start_transaction(connector_id: int, id_tag: str, meter_wh: int, wall: float) -> dict[str, Any]:
    return {
        "connectorId": connector_id,
        "idTag": id_tag,
        "meterStart": meter_wh,
        "timestamp": iso_timestamp(wall),
    }


MEASURANDS: Final = {
    "Energy.Active.Import.Register": ("Outlet", "Wh"),
    "Power.Active.Import": ("Outlet", "W"),
    "Power.Offered": ("Outlet", "W"),
    "Current.Import": ("Outlet", "A"),
    "Voltage": ("Outlet", "V"),
    "SoC": ("EV", "Percent"),
    "Temperature": ("Body", "Celsius"),
}
"""The measurands a charger can sample, with the location and unit it reports them in."""
DEFAULT_MEASURANDS: Final = ("Energy.Active.Import.Register", "Power.Active.Import")
_VOLTS: Final = 230.0
_PHASES: Final = 3


def sampled_values(
    measurands: tuple[str, ...], context: str, meter_wh: int, power_w: float,
    offered_w: float = 0.0, soc: float | None = None,
) -> list[dict[str, str]]:
    """One sampledValue per measurand, derived from the meter register and the power drawn."""
    values = {
        "Energy.Active.Import.Register": str(meter_wh),
        "Power.Active.Import": f"{power_w:.0f}",
        "Power.Offered": f"{offered_w:.0f}",
        "Current.Import": f"{power_w / (_VOLTS * _PHASES):.1f}",
        "Voltage": f"{_VOLTS:.1f}",
        "SoC": f"{soc or 0.0:.0f}",
        "Temperature": "25.0",
    }
    result = []
    for measurand in measurands:
        if measurand == "SoC" and soc is None:
            continue
        location, unit = MEASURANDS[measurand]
        result.append({"value": values[measurand], "context": context, "format": "Raw",
                       "measurand": measurand, "location": location, "unit": unit})
    return result


def meter_values(
    connector_id: int, transaction_id: int | None, meter_wh: int, power_w: float, wall: float,
    context: str = "Sample.Periodic", measurands: tuple[str, ...] = DEFAULT_MEASURANDS,
    offered_w: float = 0.0, soc: float | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": connector_id}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    payload["meterValue"] = [{
        "timestamp": iso_timestamp(wall),
        "sampledValue": sampled_values(measurands, context, meter_wh, power_w, offered_w, soc),
    }]
    return payload


def data_transfer(vendor_id: str, message_id: str, data: str) -> dict[str, Any]:
    return {"vendorId": vendor_id, "messageId": message_id, "data": data}


def stop_transaction(
    transaction_id: int, id_tag: str, meter_wh: int, wall: float, reason: str
) -> dict[str, Any]:
    return {
        "transactionId": transaction_id,
        "idTag": id_tag,
        "meterStop": meter_wh,
        "timestamp": iso_timestamp(wall),
        "reason": reason,
    }
