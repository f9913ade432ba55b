"""What a CSMS-initiated request may hold: each action's payload shape, for both versions.

The official JSON schemas' types, enums, lengths and occurrences, plus the ranges a charger can
live with: 32-bit integers, non-negative ids and durations, finite limits that are not absurd,
1..3 phases. `check` runs before a handler reads or changes anything, so a payload that breaks
its shape gets the CALLERROR OCPP-J prescribes and changes nothing. JSON `true` is not an
integer here (`type(x) is int`), and a float is never an integer, whatever its value.

The tables are written out rather than loaded from the schemas (they are not a runtime
dependency); tests/test_shapes.py holds them against the official ones.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Protocol

import attrs

from fleetsim.ocpp.frames import ErrorCode

__all__ = ["INT32_MAX", "MAX_RATE", "REQUESTS_16", "REQUESTS_16_SECURITY", "REQUESTS_201",
           "Anything", "Array", "Boolean", "Choice", "DateTime", "Integer", "Number", "Object",
           "Shape", "String", "Violation", "check"]

INT32_MAX: Final = 2**31 - 1
"""OCPP integers are 32-bit: a CSMS's 10**18 must not reach the charger's timers."""
MAX_RATE: Final = 1e9
"""The largest charging limit (W or A) taken: far above any grid connection, far below where
floats lose their meaning."""


class Violation(Exception):
    """The CSMS's payload breaks the message's rules; `code` is the CALLERROR to answer."""

    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code


class Shape(Protocol):
    def check(self, value: Any, where: str) -> None:
        """Raise `Violation` unless `value` fits; `where` names it ("a.b[2].c")."""


def _type_error(where: str, kind: str) -> Violation:
    return Violation(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{where} must be {kind}")


@attrs.frozen
class Integer:
    low: int = -INT32_MAX - 1
    high: int = INT32_MAX

    def check(self, value: Any, where: str) -> None:
        if type(value) is not int:
            raise _type_error(where, "an integer")
        if not self.low <= value <= self.high:
            raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                            f"{where} must be in {self.low}..{self.high}")


@attrs.frozen
class Number:
    """A JSON number, integer or not, finite and in range."""

    low: float = -1e15
    high: float = 1e15

    def check(self, value: Any, where: str) -> None:
        if type(value) is not int and type(value) is not float:
            raise _type_error(where, "a number")
        if not self.low <= value <= self.high:  # false for NaN; exact for any int
            raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                            f"{where} must be a number in {self.low:g}..{self.high:g}")


@attrs.frozen
class String:
    max_length: int | None = None

    def check(self, value: Any, where: str) -> None:
        if type(value) is not str:
            raise _type_error(where, "a string")
        if self.max_length is not None and len(value) > self.max_length:
            raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                            f"{where} is longer than {self.max_length}")


_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII)


def parse_date_time(text: str) -> datetime | None:
    """An RFC 3339 date-time (the schemas' `format: date-time`; an offset is required), or
    None."""
    upper = text.upper()
    if not _RFC3339.fullmatch(upper):
        return None
    try:
        return datetime.fromisoformat(upper)
    except ValueError:  # month 13, hour 24, February 30, ...
        return None


@attrs.frozen
class DateTime:
    def check(self, value: Any, where: str) -> None:
        if type(value) is not str:
            raise _type_error(where, "a string")
        if parse_date_time(value) is None:
            raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                            f"{where} must be an RFC 3339 date-time")


@attrs.frozen
class Choice:
    values: tuple[str, ...]

    def check(self, value: Any, where: str) -> None:
        if type(value) is not str:
            raise _type_error(where, "a string")
        if value not in self.values:
            raise Violation(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                            f"{where} must be one of {', '.join(self.values)}")


@attrs.frozen
class Boolean:
    def check(self, value: Any, where: str) -> None:
        if type(value) is not bool:
            raise _type_error(where, "a boolean")


@attrs.frozen
class Anything:
    """Any JSON value (2.0.1 DataTransfer's data)."""

    def check(self, value: Any, where: str) -> None:
        pass


@attrs.frozen
class Array:
    items: Shape
    min_items: int = 0
    max_items: int | None = None

    def check(self, value: Any, where: str) -> None:
        if type(value) is not list:
            raise _type_error(where, "an array")
        if len(value) < self.min_items or (self.max_items is not None
                                           and len(value) > self.max_items):
            most = "" if self.max_items is None else self.max_items
            raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                            f"{where} must have {self.min_items}..{most} entries")
        for n, item in enumerate(value):
            self.items.check(item, f"{where}[{n}]")


_CUSTOM_DATA: Final = "customData"


@attrs.frozen
class Object:
    """A JSON object with no properties but these; names starting with "?" are optional.
    `custom_data`: 2.0.1 lets every object carry a vendor's customData."""

    properties: dict[str, Shape]
    custom_data: bool = False
    fields: dict[str, Shape] = attrs.field(init=False, eq=False)
    required: tuple[str, ...] = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        fields = {name.removeprefix("?"): shape for name, shape in self.properties.items()}
        if self.custom_data:
            fields[_CUSTOM_DATA] = _CUSTOM
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "required", tuple(
            name for name in self.properties if not name.startswith("?")))

    def check(self, value: Any, where: str) -> None:
        if type(value) is not dict:
            raise _type_error(where or "the payload", "an object")
        prefix = f"{where}." if where else ""
        for name in self.required:
            if name not in value:
                raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                                f"{prefix}{name} is required")
        fields = self.fields
        for name, item in value.items():
            shape = fields.get(name)
            if shape is None:
                raise Violation(ErrorCode.FORMATION_VIOLATION,
                                f"{where or 'the payload'} has no property {name[:40]!r}")
            shape.check(item, f"{prefix}{name}")


@attrs.frozen
class _CustomData:
    """Any object with a vendorId: the one place 2.0.1 allows properties of its own."""

    def check(self, value: Any, where: str) -> None:
        if type(value) is not dict:
            raise _type_error(where, "an object")
        if "vendorId" not in value:
            raise Violation(ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                            f"{where}.vendorId is required")
        String(255).check(value["vendorId"], f"{where}.vendorId")


_CUSTOM: Final = _CustomData()


def check(shapes: dict[str, Object], action: str, payload: Any) -> None:
    """Raise the `Violation` a CSMS's request breaks, if any (an unknown action: none)."""
    shape = shapes.get(action)
    if shape is not None:
        shape.check(payload, "")


# Shared by both versions.

_INT: Final = Integer()
_ID: Final = Integer(0)
"""A connector, EVSE or other index: never negative."""
_COUNT: Final = Integer(0)
_SECONDS: Final = Integer(0)
_RATE: Final = Number(0.0, MAX_RATE)
_PHASES: Final = Integer(1, 3)
_STACK_LEVEL: Final = Integer(0)
_DATE: Final = DateTime()
_UNIT: Final = Choice(("A", "W"))
_KIND: Final = Choice(("Absolute", "Recurring", "Relative"))
_RECURRENCY: Final = Choice(("Daily", "Weekly"))
_UPDATE_TYPE: Final = Choice(("Differential", "Full"))
_AVAILABILITY: Final = Choice(("Inoperative", "Operative"))

# OCPP 1.6

_ID_TAG: Final = String(20)


def _o16(properties: dict[str, Shape]) -> Object:
    return Object(properties)


_PROFILE_16: Final = _o16({
    "chargingProfileId": _INT, "?transactionId": _INT, "stackLevel": _STACK_LEVEL,
    "chargingProfilePurpose": Choice(("ChargePointMaxProfile", "TxDefaultProfile",
                                      "TxProfile")),
    "chargingProfileKind": _KIND, "?recurrencyKind": _RECURRENCY, "?validFrom": _DATE,
    "?validTo": _DATE,
    "chargingSchedule": _o16({
        "?duration": _SECONDS, "?startSchedule": _DATE, "chargingRateUnit": _UNIT,
        "chargingSchedulePeriod": Array(_o16({
            "startPeriod": _SECONDS, "limit": _RATE, "?numberPhases": _PHASES})),
        "?minChargingRate": _RATE}),
})

_REQUESTS_16: Final[dict[str, dict[str, Shape]]] = {
    "CancelReservation": {"reservationId": _INT},
    "ChangeAvailability": {"connectorId": _ID, "type": _AVAILABILITY},
    "ChangeConfiguration": {"key": String(50), "value": String(500)},
    "ClearCache": {},
    "ClearChargingProfile": {
        "?id": _INT, "?connectorId": _ID,
        "?chargingProfilePurpose": Choice(("ChargePointMaxProfile", "TxDefaultProfile",
                                           "TxProfile")),
        "?stackLevel": _STACK_LEVEL},
    "DataTransfer": {"vendorId": String(255), "?messageId": String(50), "?data": String()},
    "GetCompositeSchedule": {"connectorId": _ID, "duration": _SECONDS,
                             "?chargingRateUnit": _UNIT},
    "GetConfiguration": {"?key": Array(String(50))},
    "GetDiagnostics": {"location": String(), "?retries": _COUNT, "?retryInterval": _SECONDS,
                       "?startTime": _DATE, "?stopTime": _DATE},
    "GetLocalListVersion": {},
    "RemoteStartTransaction": {"?connectorId": _ID, "idTag": _ID_TAG,
                               "?chargingProfile": _PROFILE_16},
    "RemoteStopTransaction": {"transactionId": _INT},
    "ReserveNow": {"connectorId": _ID, "expiryDate": _DATE, "idTag": _ID_TAG,
                   "?parentIdTag": _ID_TAG, "reservationId": _INT},
    "Reset": {"type": Choice(("Hard", "Soft"))},
    "SendLocalList": {
        "listVersion": _INT,
        "?localAuthorizationList": Array(_o16({"idTag": _ID_TAG, "?idTagInfo": _o16({
            "?expiryDate": _DATE, "?parentIdTag": _ID_TAG,
            "status": Choice(("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"))})})),
        "updateType": _UPDATE_TYPE},
    "SetChargingProfile": {"connectorId": _ID, "csChargingProfiles": _PROFILE_16},
    "TriggerMessage": {
        "requestedMessage": Choice((
            "BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
            "Heartbeat", "MeterValues", "StatusNotification")),
        "?connectorId": _ID},
    "UnlockConnector": {"connectorId": _ID},
    "UpdateFirmware": {"location": String(), "?retries": _COUNT, "retrieveDate": _DATE,
                       "?retryInterval": _SECONDS},
}
REQUESTS_16: Final = {action: _o16(properties) for action, properties in _REQUESTS_16.items()}
"""Every CSMS-initiated OCPP 1.6 request by action."""

_CERTIFICATE_USE_16: Final = Choice(("CentralSystemRootCertificate",
                                     "ManufacturerRootCertificate"))
_REQUESTS_16_SECURITY: Final[dict[str, dict[str, Shape]]] = {
    "CertificateSigned": {"certificateChain": String(10000)},
    "DeleteCertificate": {"certificateHashData": _o16({
        "hashAlgorithm": Choice(("SHA256", "SHA384", "SHA512")), "issuerNameHash": String(128),
        "issuerKeyHash": String(128), "serialNumber": String(40)})},
    "ExtendedTriggerMessage": {"requestedMessage": Choice((
        "BootNotification", "LogStatusNotification", "FirmwareStatusNotification", "Heartbeat",
        "MeterValues", "SignChargePointCertificate", "StatusNotification")),
        "?connectorId": _ID},
    "GetInstalledCertificateIds": {"certificateType": _CERTIFICATE_USE_16},
    "GetLog": {"log": _o16({"remoteLocation": String(512), "?oldestTimestamp": _DATE,
                            "?latestTimestamp": _DATE}),
               "logType": Choice(("DiagnosticsLog", "SecurityLog")), "requestId": _INT,
               "?retries": _COUNT, "?retryInterval": _SECONDS},
    "InstallCertificate": {"certificateType": _CERTIFICATE_USE_16,
                           "certificate": String(5500)},
    "SignedUpdateFirmware": {"?retries": _COUNT, "?retryInterval": _SECONDS, "requestId": _INT,
                             "firmware": _o16({"location": String(512),
                                               "retrieveDateTime": _DATE,
                                               "?installDateTime": _DATE,
                                               "signingCertificate": String(5500),
                                               "signature": String(800)})},
}
REQUESTS_16_SECURITY: Final = {action: _o16(properties)
                               for action, properties in _REQUESTS_16_SECURITY.items()}
"""The CSMS-initiated requests of the OCPP 1.6 security whitepaper (edition 3) by action."""

# OCPP 2.0.1


def _o(properties: dict[str, Shape]) -> Object:
    return Object(properties, custom_data=True)


_IDENTIFIER: Final = String(36)
_NAME: Final = String(50)
_URL: Final = String(512)
_EVSE: Final = _o({"id": _ID, "?connectorId": _ID})
_COMPONENT: Final = _o({"?evse": _EVSE, "name": _NAME, "?instance": _NAME})
_VARIABLE: Final = _o({"name": _NAME, "?instance": _NAME})
_ID_TOKEN: Final = _o({
    "?additionalInfo": Array(_o({"additionalIdToken": _IDENTIFIER, "type": _NAME}), 1),
    "idToken": _IDENTIFIER,
    "type": Choice(("Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local",
                    "MacAddress", "NoAuthorization"))})
_CERTIFICATE_HASH: Final = _o({
    "hashAlgorithm": Choice(("SHA256", "SHA384", "SHA512")), "issuerNameHash": String(128),
    "issuerKeyHash": String(128), "serialNumber": String(40)})
_PURPOSE_201: Final = Choice(("ChargingStationExternalConstraints", "ChargingStationMaxProfile",
                              "TxDefaultProfile", "TxProfile"))
_COMPONENT_VARIABLE: Final = _o({"component": _COMPONENT, "?variable": _VARIABLE})
_SALES_TARIFF: Final = _o({
    "id": _INT, "?salesTariffDescription": String(32), "?numEPriceLevels": _COUNT,
    "salesTariffEntry": Array(_o({
        "relativeTimeInterval": _o({"start": _SECONDS, "?duration": _SECONDS}),
        "?ePriceLevel": _COUNT,
        "?consumptionCost": Array(_o({
            "startValue": Number(),
            "cost": Array(_o({
                "costKind": Choice(("CarbonDioxideEmission", "RelativePricePercentage",
                                    "RenewableGenerationPercentage")),
                "amount": _INT, "?amountMultiplier": _INT}), 1, 3)}), 1, 3)}), 1, 1024)})
_PROFILE_201: Final = _o({
    "id": _INT, "stackLevel": _STACK_LEVEL, "chargingProfilePurpose": _PURPOSE_201,
    "chargingProfileKind": _KIND, "?recurrencyKind": _RECURRENCY, "?validFrom": _DATE,
    "?validTo": _DATE,
    "chargingSchedule": Array(_o({
        "id": _INT, "?startSchedule": _DATE, "?duration": _SECONDS, "chargingRateUnit": _UNIT,
        "chargingSchedulePeriod": Array(_o({
            "startPeriod": _SECONDS, "limit": _RATE, "?numberPhases": _PHASES,
            "?phaseToUse": _PHASES}), 1, 1024),
        "?minChargingRate": _RATE, "?salesTariff": _SALES_TARIFF}), 1, 3),
    "?transactionId": _IDENTIFIER})
_MESSAGE_CONTENT: Final = _o({"format": Choice(("ASCII", "HTML", "URI", "UTF8")),
                              "?language": String(8), "content": _URL})
_SEVERITY: Final = Integer(0, 9)

_REQUESTS_201: Final[dict[str, dict[str, Shape]]] = {
    "CancelReservation": {"reservationId": _INT},
    "CertificateSigned": {"certificateChain": String(10000),
                          "?certificateType": Choice(("ChargingStationCertificate",
                                                      "V2GCertificate"))},
    "ChangeAvailability": {"?evse": _EVSE, "operationalStatus": _AVAILABILITY},
    "ClearCache": {},
    "ClearChargingProfile": {"?chargingProfileId": _INT, "?chargingProfileCriteria": _o({
        "?evseId": _ID, "?chargingProfilePurpose": _PURPOSE_201,
        "?stackLevel": _STACK_LEVEL})},
    "ClearDisplayMessage": {"id": _INT},
    "ClearVariableMonitoring": {"id": Array(_INT, 1)},
    "CostUpdated": {"totalCost": Number(), "transactionId": _IDENTIFIER},
    "CustomerInformation": {"?customerCertificate": _CERTIFICATE_HASH, "?idToken": _ID_TOKEN,
                            "requestId": _INT, "report": Boolean(), "clear": Boolean(),
                            "?customerIdentifier": String(64)},
    "DataTransfer": {"?messageId": _NAME, "?data": Anything(), "vendorId": String(255)},
    "DeleteCertificate": {"certificateHashData": _CERTIFICATE_HASH},
    "GetBaseReport": {"requestId": _INT, "reportBase": Choice((
        "ConfigurationInventory", "FullInventory", "SummaryInventory"))},
    "GetChargingProfiles": {"requestId": _INT, "?evseId": _ID, "chargingProfile": _o({
        "?chargingProfilePurpose": _PURPOSE_201, "?stackLevel": _STACK_LEVEL,
        "?chargingProfileId": Array(_INT, 1),
        "?chargingLimitSource": Array(Choice(("EMS", "Other", "SO", "CSO")), 1, 4)})},
    "GetCompositeSchedule": {"duration": _SECONDS, "?chargingRateUnit": _UNIT, "evseId": _ID},
    "GetDisplayMessages": {"?id": Array(_INT, 1), "requestId": _INT,
                           "?priority": Choice(("AlwaysFront", "InFront", "NormalCycle")),
                           "?state": Choice(("Charging", "Faulted", "Idle", "Unavailable"))},
    "GetInstalledCertificateIds": {"?certificateType": Array(Choice((
        "V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate",
        "V2GCertificateChain", "ManufacturerRootCertificate")), 1)},
    "GetLocalListVersion": {},
    "GetLog": {"log": _o({"remoteLocation": _URL, "?oldestTimestamp": _DATE,
                          "?latestTimestamp": _DATE}),
               "logType": Choice(("DiagnosticsLog", "SecurityLog")), "requestId": _INT,
               "?retries": _COUNT, "?retryInterval": _SECONDS},
    "GetMonitoringReport": {
        "?componentVariable": Array(_COMPONENT_VARIABLE, 1), "requestId": _INT,
        "?monitoringCriteria": Array(Choice(("ThresholdMonitoring", "DeltaMonitoring",
                                             "PeriodicMonitoring")), 1, 3)},
    "GetReport": {"?componentVariable": Array(_COMPONENT_VARIABLE, 1), "requestId": _INT,
                  "?componentCriteria": Array(Choice(("Active", "Available", "Enabled",
                                                      "Problem")), 1, 4)},
    "GetTransactionStatus": {"?transactionId": _IDENTIFIER},
    "GetVariables": {"getVariableData": Array(_o({
        "?attributeType": Choice(("Actual", "Target", "MinSet", "MaxSet")),
        "component": _COMPONENT, "variable": _VARIABLE}), 1)},
    "InstallCertificate": {"certificateType": Choice((
        "V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate",
        "ManufacturerRootCertificate")), "certificate": String(5500)},
    "PublishFirmware": {"location": _URL, "?retries": _COUNT, "checksum": String(32),
                        "requestId": _INT, "?retryInterval": _SECONDS},
    "RequestStartTransaction": {"?evseId": _ID, "?groupIdToken": _ID_TOKEN,
                                "idToken": _ID_TOKEN, "remoteStartId": _INT,
                                "?chargingProfile": _PROFILE_201},
    "RequestStopTransaction": {"transactionId": _IDENTIFIER},
    "ReserveNow": {"id": _INT, "expiryDateTime": _DATE, "?connectorType": Choice((
        "cCCS1", "cCCS2", "cG105", "cTesla", "cType1", "cType2", "s309-1P-16A", "s309-1P-32A",
        "s309-3P-16A", "s309-3P-32A", "sBS1361", "sCEE-7-7", "sType2", "sType3",
        "Other1PhMax16A", "Other1PhOver16A", "Other3Ph", "Pan", "wInductive", "wResonant",
        "Undetermined", "Unknown")),
        "idToken": _ID_TOKEN, "?evseId": _ID, "?groupIdToken": _ID_TOKEN},
    "Reset": {"type": Choice(("Immediate", "OnIdle")), "?evseId": _ID},
    "SendLocalList": {
        "?localAuthorizationList": Array(_o({"idToken": _ID_TOKEN, "?idTokenInfo": _o({
            "status": Choice(("Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid",
                              "NoCredit", "NotAllowedTypeEVSE", "NotAtThisLocation",
                              "NotAtThisTime", "Unknown")),
            "?cacheExpiryDateTime": _DATE, "?chargingPriority": Integer(-9, 9),
            "?language1": String(8), "?evseId": Array(_ID, 1), "?groupIdToken": _ID_TOKEN,
            "?language2": String(8), "?personalMessage": _MESSAGE_CONTENT})}), 1),
        "versionNumber": _INT, "updateType": _UPDATE_TYPE},
    "SetChargingProfile": {"evseId": _ID, "chargingProfile": _PROFILE_201},
    "SetDisplayMessage": {"message": _o({
        "?display": _COMPONENT, "id": _INT,
        "priority": Choice(("AlwaysFront", "InFront", "NormalCycle")),
        "?state": Choice(("Charging", "Faulted", "Idle", "Unavailable")),
        "?startDateTime": _DATE, "?endDateTime": _DATE, "?transactionId": _IDENTIFIER,
        "message": _MESSAGE_CONTENT})},
    "SetMonitoringBase": {"monitoringBase": Choice(("All", "FactoryDefault", "HardWiredOnly"))},
    "SetMonitoringLevel": {"severity": _SEVERITY},
    "SetNetworkProfile": {"configurationSlot": _INT, "connectionData": _o({
        "?apn": _o({"apn": _URL, "?apnUserName": String(20), "?apnPassword": String(20),
                    "?simPin": _INT, "?preferredNetwork": String(6),
                    "?useOnlyPreferredNetwork": Boolean(),
                    "apnAuthentication": Choice(("CHAP", "NONE", "PAP", "AUTO"))}),
        "ocppVersion": Choice(("OCPP12", "OCPP15", "OCPP16", "OCPP20")),
        "ocppTransport": Choice(("JSON", "SOAP")), "ocppCsmsUrl": _URL,
        "messageTimeout": _SECONDS, "securityProfile": _INT,
        "ocppInterface": Choice(("Wired0", "Wired1", "Wired2", "Wired3", "Wireless0",
                                 "Wireless1", "Wireless2", "Wireless3")),
        "?vpn": _o({"server": _URL, "user": String(20), "?group": String(20),
                    "password": String(20), "key": String(255),
                    "type": Choice(("IKEv2", "IPSec", "L2TP", "PPTP"))})})},
    "SetVariableMonitoring": {"setMonitoringData": Array(_o({
        "?id": _INT, "?transaction": Boolean(), "value": Number(),
        "type": Choice(("UpperThreshold", "LowerThreshold", "Delta", "Periodic",
                        "PeriodicClockAligned")),
        "severity": _SEVERITY, "component": _COMPONENT, "variable": _VARIABLE}), 1)},
    "SetVariables": {"setVariableData": Array(_o({
        "?attributeType": Choice(("Actual", "Target", "MinSet", "MaxSet")),
        "attributeValue": String(1000), "component": _COMPONENT, "variable": _VARIABLE}), 1)},
    "TriggerMessage": {"?evse": _EVSE, "requestedMessage": Choice((
        "BootNotification", "LogStatusNotification", "FirmwareStatusNotification", "Heartbeat",
        "MeterValues", "SignChargingStationCertificate", "SignV2GCertificate",
        "StatusNotification", "TransactionEvent", "SignCombinedCertificate",
        "PublishFirmwareStatusNotification"))},
    "UnlockConnector": {"evseId": _ID, "connectorId": _ID},
    "UnpublishFirmware": {"checksum": String(32)},
    "UpdateFirmware": {"?retries": _COUNT, "?retryInterval": _SECONDS, "requestId": _INT,
                       "firmware": _o({"location": _URL, "retrieveDateTime": _DATE,
                                       "?installDateTime": _DATE,
                                       "?signingCertificate": String(5500),
                                       "?signature": String(800)})},
}
REQUESTS_201: Final = {action: _o(properties) for action, properties in _REQUESTS_201.items()}
"""Every CSMS-initiated OCPP 2.0.1 request by action."""
