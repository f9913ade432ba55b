"""What the embedded CSMS asks of OCPP 2.0.1 chargers when told to send commands
(`--commands RATE`).

Sans-IO: given a random source and what the CSMS knows of one charger (its running
transactions), pick a CSMS-initiated CALL with a valid payload from the OCPP 2.0.1 catalogue,
all of it. Those a simulated station has no use for (certificates, display messages, network
profiles) carry inert payloads: `.invalid` URLs, certificates no one has.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from typing import Any, Final

from fleetsim.ocpp import v16

__all__ = ["MIX_201", "NEEDS_TRANSACTION_201", "pick_command_201"]


MIX_201: Final[dict[str, int]] = {
    "GetVariables": 30, "SetVariables": 20, "GetBaseReport": 10, "GetReport": 10,
    "TriggerMessage": 30, "RequestStartTransaction": 20, "RequestStopTransaction": 20,
    "GetTransactionStatus": 10, "ChangeAvailability": 10, "UnlockConnector": 5,
    "ClearCache": 10, "DataTransfer": 10, "GetLocalListVersion": 10, "SendLocalList": 10,
    "ReserveNow": 10, "CancelReservation": 10, "GetLog": 10, "SetChargingProfile": 10,
    "GetChargingProfiles": 10, "ClearChargingProfile": 10, "GetCompositeSchedule": 10,
    "CostUpdated": 5, "SetVariableMonitoring": 3, "ClearVariableMonitoring": 3,
    "SetMonitoringBase": 3, "SetMonitoringLevel": 3, "GetMonitoringReport": 3,
    "SetDisplayMessage": 3, "GetDisplayMessages": 3, "ClearDisplayMessage": 3,
    "CustomerInformation": 3, "GetInstalledCertificateIds": 2, "CertificateSigned": 2,
    "InstallCertificate": 2, "DeleteCertificate": 2, "PublishFirmware": 1,
    "UnpublishFirmware": 1, "SetNetworkProfile": 1, "UpdateFirmware": 1, "Reset": 1,
}
"""The 40 CSMS-initiated OCPP 2.0.1 actions, each with its weight: its cards in a `Deck` round."""

NEEDS_TRANSACTION_201: Final = frozenset({"RequestStopTransaction", "CostUpdated"})
"""Actions that name a transaction running on the charger: not sent to a charger without one."""
_ACTIONS_201: Final = list(MIX_201)
_WEIGHTS_201: Final = list(MIX_201.values())
_ACTIONS_201_IDLE: Final = [a for a in MIX_201 if a not in NEEDS_TRANSACTION_201]
_WEIGHTS_201_IDLE: Final = [MIX_201[a] for a in _ACTIONS_201_IDLE]
_TRIGGERS_201: Final = ("Heartbeat", "StatusNotification", "MeterValues", "BootNotification",
                        "TransactionEvent", "LogStatusNotification", "FirmwareStatusNotification",
                        "SignChargingStationCertificate")
_VARIABLES: Final = (("OCPPCommCtrlr", "HeartbeatInterval"),
                     ("SampledDataCtrlr", "TxUpdatedInterval"),
                     ("AuthCtrlr", "LocalPreAuthorize"), ("TxCtrlr", "EVConnectionTimeOut"))
_SETTINGS: Final = (("OCPPCommCtrlr", "HeartbeatInterval", "60"),
                    ("SampledDataCtrlr", "TxUpdatedInterval", "10"),
                    ("TxCtrlr", "EVConnectionTimeOut", "60"))
_REQUEST_IDS: Final = 2**31 - 1
_NOT_A_CERTIFICATE: Final = (
    "-----BEGIN CERTIFICATE-----\nZmxlZXRzaW0=\n-----END CERTIFICATE-----\n")
_NO_SUCH_HASH: Final = {"hashAlgorithm": "SHA256", "issuerNameHash": "0" * 64,
                        "issuerKeyHash": "0" * 64, "serialNumber": "0"}
_NO_SUCH_CHECKSUM: Final = "0" * 32


def _id_token(text: str, kind: str = "Central") -> dict[str, str]:
    return {"idToken": text, "type": kind}


def pick_command_201(rng: random.Random, transactions: Collection[str], wall: float,
                     evses: int = 2, *, action: str | None = None) -> tuple[str, dict[str, Any]]:
    """One CSMS-initiated OCPP 2.0.1 CALL: (action, payload); `action` is drawn by weight if not
    given.

    RequestStopTransaction and CostUpdated name a transaction the CSMS has seen running on this
    charger; with none, they are not drawn (the draw is made without them, so the command rate
    holds), and must not be given.
    """
    if action is None:
        if transactions:
            action = rng.choices(_ACTIONS_201, _WEIGHTS_201)[0]
        else:
            action = rng.choices(_ACTIONS_201_IDLE, _WEIGHTS_201_IDLE)[0]
    elif action in NEEDS_TRANSACTION_201 and not transactions:
        raise ValueError(f"{action} needs a running transaction")
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
    return action, _less_used_201(rng, action, transactions, evse, request_id)


def _less_used_201(rng: random.Random, action: str, transactions: Collection[str], evse: int,
                   request_id: int) -> dict[str, Any]:
    """Payloads of the rest of the catalogue: most simulated stations refuse these."""
    if action == "GetCompositeSchedule":
        return {"duration": 3600, "evseId": rng.choice([0, evse]),
                "chargingRateUnit": rng.choice(["A", "W"])}
    if action == "CostUpdated":
        return {"totalCost": round(rng.uniform(0, 50), 2),
                "transactionId": rng.choice(sorted(transactions))}
    if action == "SetVariableMonitoring":
        return {"setMonitoringData": [{
            "value": 22_000.0, "type": "UpperThreshold", "severity": 5,
            "component": {"name": "EVSE", "evse": {"id": evse}}, "variable": {"name": "Power"}}]}
    if action == "ClearVariableMonitoring":
        return {"id": [rng.randrange(1, 100)]}
    if action == "SetMonitoringBase":
        return {"monitoringBase": rng.choice(["All", "FactoryDefault", "HardWiredOnly"])}
    if action == "SetMonitoringLevel":
        return {"severity": rng.randint(0, 9)}
    if action == "GetMonitoringReport":
        return {"requestId": request_id, "monitoringCriteria": ["ThresholdMonitoring"]}
    if action == "SetDisplayMessage":
        return {"message": {"id": rng.randrange(1, 100), "priority": "NormalCycle",
                            "message": {"format": "UTF8", "content": "fleetsim"}}}
    if action == "GetDisplayMessages":
        return {"requestId": request_id}
    if action == "ClearDisplayMessage":
        return {"id": rng.randrange(1, 100)}
    if action == "CustomerInformation":
        return {"requestId": request_id, "report": True, "clear": False,
                "idToken": _id_token(f"CSMS-{rng.randrange(10_000):04d}")}
    if action == "GetInstalledCertificateIds":
        return rng.choice([{}, {"certificateType": ["CSMSRootCertificate"]}])
    if action == "CertificateSigned":
        return {"certificateChain": _NOT_A_CERTIFICATE,
                "certificateType": "ChargingStationCertificate"}
    if action == "InstallCertificate":
        return {"certificateType": "CSMSRootCertificate", "certificate": _NOT_A_CERTIFICATE}
    if action == "DeleteCertificate":
        return {"certificateHashData": dict(_NO_SUCH_HASH)}
    if action == "PublishFirmware":
        return {"location": "https://firmware.invalid/fw.bin", "checksum": _NO_SUCH_CHECKSUM,
                "requestId": request_id}
    if action == "UnpublishFirmware":
        return {"checksum": _NO_SUCH_CHECKSUM}
    if action == "SetNetworkProfile":
        return {"configurationSlot": 9, "connectionData": {
            "ocppVersion": "OCPP20", "ocppTransport": "JSON",
            "ocppCsmsUrl": "wss://csms.invalid/ocpp", "messageTimeout": 30,
            "securityProfile": 1, "ocppInterface": "Wired0"}}
    return {}  # ClearCache, GetLocalListVersion
