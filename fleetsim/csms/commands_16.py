"""What the embedded CSMS asks of OCPP 1.6 chargers when told to send commands
(`--commands RATE`).

Sans-IO: given a random source and what the CSMS knows of one charger (its running
transactions), pick a CSMS-initiated CALL with a valid payload from the OCPP 1.6 catalogue,
all of it. The commands that make a charger reboot or reflash are rare, as in real life.
"""

from __future__ import annotations

import random
from typing import Any, Final

from fleetsim.ocpp import v16

__all__ = ["MIX", "pick_command"]

MIX: Final[dict[str, int]] = {
    "GetConfiguration": 30, "ChangeConfiguration": 20, "TriggerMessage": 30,
    "RemoteStartTransaction": 20, "RemoteStopTransaction": 20, "ChangeAvailability": 10,
    "UnlockConnector": 5, "ClearCache": 10, "DataTransfer": 10, "GetLocalListVersion": 10,
    "SendLocalList": 10, "ReserveNow": 10, "CancelReservation": 10, "GetDiagnostics": 10,
    "SetChargingProfile": 10, "ClearChargingProfile": 10, "GetCompositeSchedule": 10,
    "UpdateFirmware": 1, "Reset": 1,
}
"""The 19 CSMS-initiated OCPP 1.6 actions, each with its weight: its cards in a `Deck` round."""

_ACTIONS: Final = list(MIX)
_WEIGHTS: Final = list(MIX.values())
_TRIGGERS: Final = ("Heartbeat", "StatusNotification", "MeterValues", "BootNotification",
                    "DiagnosticsStatusNotification", "FirmwareStatusNotification")


def pick_command(rng: random.Random, transactions: set[int], wall: float,
                 connectors: int = 2, *, action: str | None = None) -> tuple[str, dict[str, Any]]:
    """One CSMS-initiated CALL: (action, payload); `action` is drawn by weight if not given."""
    if action is None:
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
    if action == "GetCompositeSchedule":
        return action, {"connectorId": rng.randint(0, connectors), "duration": 3600,
                        "chargingRateUnit": rng.choice(["A", "W"])}
    if action == "Reset":
        return action, {"type": "Soft"}
    return action, {}  # ClearCache, GetLocalListVersion, ClearChargingProfile
