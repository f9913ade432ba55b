"""What the embedded CSMS asks of chargers when told to send commands (`--commands RATE`).

Sans-IO: given a random source and what the CSMS knows of one charger (its running
transactions), pick a CSMS-initiated OCPP 1.6 CALL with a valid payload. The mix exercises the
whole catalogue under load; the commands that make a charger reboot are rare, as in real life.
"""

from __future__ import annotations

import random
from typing import Any, Final

from fleetsim.ocpp import v16

__all__ = ["MIX", "pick_command"]

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
