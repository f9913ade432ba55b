"""OCPP 1.6 message catalogue and payload builders for the messages a charger sends.

Payloads are plain dicts in the wire shape (camelCase keys): they go straight to the JSON encoder
on the hot path, so no model objects are built per message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "CHARGER_ACTIONS",
    "CSMS_ACTIONS",
    "SUBPROTOCOL",
    "authorize",
    "boot_notification",
    "heartbeat",
    "iso_timestamp",
    "meter_values",
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
    "ClearChargingProfile", "DataTransfer", "GetConfiguration", "GetDiagnostics",
    "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow",
    "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage", "UnlockConnector",
    "UpdateFirmware",
})


def iso_timestamp(wall_seconds: float) -> str:
    """UTC timestamp with milliseconds, the form CSMSs parse most reliably."""
    moment = datetime.fromtimestamp(wall_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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


def meter_values(
    connector_id: int, transaction_id: int | None, meter_wh: int, power_w: float, wall: float,
    context: str = "Sample.Periodic",
) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": connector_id}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    payload["meterValue"] = [{
        "timestamp": iso_timestamp(wall),
        "sampledValue": [
            {"value": str(meter_wh), "context": context, "format": "Raw",
             "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "Wh"},
            {"value": f"{power_w:.0f}", "context": context, "format": "Raw",
             "measurand": "Power.Active.Import", "location": "Outlet", "unit": "W"},
        ],
    }]
    return payload


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
