"""What the embedded CSMS asks of chargers when told to send commands (`--commands RATE`).

Sans-IO: given a random source and what the CSMS knows of one charger (its running
transactions), pick a CSMS-initiated CALL with a valid payload, from the OCPP 1.6 mix or the
OCPP 2.0.1 one. Each mix exercises its catalogue under load; the commands that make a charger
reboot or reflash are rare, as in real life.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import Any, Final

from fleetsim.ocpp import v16

__all__ = ["MIX", "MIX_201", "pick_command", "pick_command_201"]

MIX: Final[dict[str, float]] = {
    "GetConfiguration": 3, "ChangeConfiguration": 2, "TriggerMessage": 3,
    "RemoteStartTransaction": 2, "RemoteStopTransaction": 2, "ChangeAvailability": 1,
    "UnlockConnector": 0.5, "ClearCache": 1, "DataTransfer": 1, "GetLocalListVersion": 1,
    "SendLocalList": 1, "ReserveNow": 1, "CancelReservation": 1, "GetDiagnostics": 1,
    "SetChargingProfile": 1, "ClearChargingProfile": 1, "UpdateFirmware": 0.1, "Reset": 0.1,
}
"""Relative weights of each CSMS-initiated action."""

_ACTIONS: Final = list(MIX)
_WEIGHTS: Final = list(MIX.values())
_TRIGGERS: Final = ("Heartbeat", "StatusNotification", "MeterValues", "BootNotification")


def pick_command(rng: random.Random, transactions: set[int], wall: float,
                 connectors: int = 2) -> tuple[str, dict[str, Any]]:
    """One CSMS-initiated CALL: (action, payload)."""
    action = rng.choices(_ACTIONS, _WEIGHTS)[0]
    connector = rng.randint(1, connectors)
    if action == "GetConfiguration":
        return action, rng.choice([{}, {"key": ["HeartbeatInterval", "NumberOfConnectors"]}])
    if action == "ChangeConfiguration":
        key, value = rng.choice([("MeterValueSampleInterval", "10"), ("LocalPreAuthorize", "false"),
                                 ("ConnectionTimeOut", "60")])
        return action, {"key": key, "value": value}
    if action == "TriggerMessage":
        return action, {"requestedMessage": rng.choice(_TRIGGERS)}
    if action == "RemoteStartTransaction":
        return action, {"idTag": f"CSMS-{rng.randrange(10_000):04d}"}
    if action == "RemoteStopTransaction":
        known = sorted(transactions)
        return action, {"transactionId": rng.choice(known) if known else rng.randrange(1, 10**6)}
    if action == "ChangeAvailability":
        return action, {"connectorId": connector, "type": "Operative"}
    if action == "UnlockConnector":
        return action, {"connectorId": connector}
    if action == "DataTransfer":
        return action, {"vendorId": "fleetsim", "messageId": "ping"}
    if action == "SendLocalList":
        return action, {"listVersion": rng.randrange(1, 1000), "updateType": "Full",
                        "localAuthorizationList": [
                            {"idTag": "LOCAL-1", "idTagInfo": {"status": "Accepted"}}]}
    if action == "ReserveNow":
        return action, {"connectorId": connector, "idTag": "RESERVED",
                        "expiryDate": v16.iso_timestamp(wall + 30), "reservationId": 1}
    if action == "CancelReservation":
        return action, {"reservationId": 1}
    if action == "GetDiagnostics":
        return action, {"location": "ftp://diagnostics.invalid/"}
    if action == "SetChargingProfile":
        return action, {"connectorId": connector, "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {
                "chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 16.0}]}}}
    if action == "UpdateFirmware":
        return action, {"location": "https://firmware.invalid/fw.bin",
                        "retrieveDate": v16.iso_timestamp(wall)}
    if action == "Reset":
        return action, {"type": "Soft"}
    return action, {}  # ClearCache, GetLocalListVersion, ClearChargingProfile


MIX_201: Final[dict[str, float]] = {
    "GetVariables": 3, "SetVariables": 2, "GetBaseReport": 1, "GetReport": 1,
    "TriggerMessage": 3, "RequestStartTransaction": 2, "RequestStopTransaction": 2,
    "GetTransactionStatus": 1, "ChangeAvailability": 1, "UnlockConnector": 0.5, "ClearCache": 1,
    "DataTransfer": 1, "GetLocalListVersion": 1, "SendLocalList": 1, "ReserveNow": 1,
    "CancelReservation": 1, "GetLog": 1, "SetChargingProfile": 1, "GetChargingProfiles": 1,
    "ClearChargingProfile": 1, "UpdateFirmware": 0.1, "Reset": 0.1,
}
"""Relative weights of each CSMS-initiated OCPP 2.0.1 action."""

_ACTIONS_201: Final = list(MIX_201)
_WEIGHTS_201: Final = list(MIX_201.values())
_NEEDS_TRANSACTION: Final = frozenset({"RequestStopTransaction"})
_ACTIONS_201_IDLE: Final = [a for a in MIX_201 if a not in _NEEDS_TRANSACTION]
_WEIGHTS_201_IDLE: Final = [MIX_201[a] for a in _ACTIONS_201_IDLE]
_TRIGGERS_201: Final = ("Heartbeat", "StatusNotification", "MeterValues", "BootNotification",
                        "TransactionEvent", "LogStatusNotification", "FirmwareStatusNotification")
_VARIABLES: Final = (("OCPPCommCtrlr", "HeartbeatInterval"),
                     ("SampledDataCtrlr", "TxUpdatedInterval"),
                     ("AuthCtrlr", "LocalPreAuthorize"), ("TxCtrlr", "EVConnectionTimeOut"))
_SETTINGS: Final = (("OCPPCommCtrlr", "HeartbeatInterval", "60"),
                    ("SampledDataCtrlr", "TxUpdatedInterval", "10"),
                    ("TxCtrlr", "EVConnectionTimeOut", "60"))
_REQUEST_IDS: Final = 2**31 - 1


def _id_token(text: str, kind: str = "Central") -> dict[str, str]:
    return {"idToken": text, "type": kind}


def pick_command_201(rng: random.Random, transactions: Collection[str], wall: float,
                     evses: int = 2) -> tuple[str, dict[str, Any]]:
    """One CSMS-initiated OCPP 2.0.1 CALL: (action, payload).

    RequestStopTransaction names a transaction the CSMS has seen running on this charger; with
    none, it is skipped and the draw is made again without it, so the command rate holds.
    """
    if transactions:
        action = rng.choices(_ACTIONS_201, _WEIGHTS_201)[0]
    else:
        action = rng.choices(_ACTIONS_201_IDLE, _WEIGHTS_201_IDLE)[0]
    evse = rng.randint(1, evses)
    request_id = rng.randrange(1, _REQUEST_IDS)
    if action == "GetVariables":
        return action, {"getVariableData": [
            {"component": {"name": component}, "variable": {"name": variable}}
            for component, variable in rng.sample(_VARIABLES, rng.randint(1, len(_VARIABLES)))]}
    if action == "SetVariables":
        component, variable, value = rng.choice(_SETTINGS)
        return action, {"setVariableData": [{"attributeValue": value, "component": {
            "name": component}, "variable": {"name": variable}}]}
    if action == "GetBaseReport":
        return action, {"requestId": request_id, "reportBase": rng.choice(
            ["ConfigurationInventory", "FullInventory", "SummaryInventory"])}
    if action == "GetReport":
        return action, rng.choice([
            {"requestId": request_id, "componentCriteria": ["Available"]},
            {"requestId": request_id, "componentVariable": [
                {"component": {"name": "EVSE", "evse": {"id": evse}}}]}])
    if action == "TriggerMessage":
        requested = rng.choice(_TRIGGERS_201)
        if requested in ("StatusNotification", "MeterValues", "TransactionEvent"):
            target = {"id": evse, "connectorId": 1} if requested == "StatusNotification" else {
                "id": evse}
            return action, {"requestedMessage": requested, "evse": target}
        return action, {"requestedMessage": requested}
    if action == "RequestStartTransaction":
        return action, {"idToken": _id_token(f"CSMS-{rng.randrange(10_000):04d}"),
                        "remoteStartId": request_id, "evseId": evse}
    if action == "RequestStopTransaction":
        return action, {"transactionId": rng.choice(sorted(transactions))}
    if action == "GetTransactionStatus":
        return action, {"transactionId": rng.choice(sorted(transactions))} if transactions else {}
    if action == "ChangeAvailability":
        return action, {"operationalStatus": "Operative", "evse": {"id": evse}}
    if action == "UnlockConnector":
        return action, {"evseId": evse, "connectorId": 1}
    if action == "DataTransfer":
        return action, {"vendorId": "fleetsim", "messageId": "ping"}
    if action == "SendLocalList":
        return action, {"versionNumber": rng.randrange(1, 1000), "updateType": "Full",
                        "localAuthorizationList": [{"idToken": _id_token("LOCAL-1", "ISO14443"),
                                                    "idTokenInfo": {"status": "Accepted"}}]}
    if action == "ReserveNow":
        return action, {"id": 1, "expiryDateTime": v16.iso_timestamp(wall + 30),
                        "idToken": _id_token("RESERVED", "ISO14443"), "evseId": evse}
    if action == "CancelReservation":
        return action, {"reservationId": 1}
    if action == "GetLog":
        return action, {"logType": "DiagnosticsLog", "requestId": request_id,
                        "log": {"remoteLocation": "ftp://logs.invalid/"}}
    if action == "SetChargingProfile":
        return action, {"evseId": evse, "chargingProfile": {
            "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{
                "id": 1, "startSchedule": v16.iso_timestamp(wall), "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}]}}
    if action == "GetChargingProfiles":
        return action, {"requestId": request_id,
                        "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}}
    if action == "ClearChargingProfile":
        return action, rng.choice([{}, {"chargingProfileId": 1}, {"chargingProfileCriteria": {
            "evseId": evse, "chargingProfilePurpose": "TxDefaultProfile"}}])
    if action == "UpdateFirmware":
        return action, {"requestId": request_id, "firmware": {
            "location": "https://firmware.invalid/fw.bin",
            "retrieveDateTime": v16.iso_timestamp(wall)}}
    if action == "Reset":
        return action, {"type": "OnIdle"}
    return action, {}  # ClearCache, GetLocalListVersion
