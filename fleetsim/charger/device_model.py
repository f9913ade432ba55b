"""A charging station's OCPP 2.0.1 device model: components, their variables, typed and
access-checked.

GetVariables, SetVariables, GetBaseReport and GetReport work on it, and the charger reads the
variables that steer its behaviour (HeartbeatInterval, TxUpdatedInterval, ...) from it, so a CSMS
that reconfigures the fleet under load sees the effect, as with real stations. It is the 2.0.1
counterpart of `configuration.py` and keeps its memory rule: every station of one shape shares
one immutable table of variables and defaults, and each station stores only the values that
differ from it (usually none).

Only the Actual attribute is modelled. Wire requests reach these methods already checked by
`answers_201_variables`, which owns the CALLERRORs.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

import attrs

from fleetsim.ocpp import v201

__all__ = [
    "ALIGNED_INTERVAL",
    "ALIGNED_MEASURANDS",
    "ALIGNED_TX_ENDED_INTERVAL",
    "ALIGNED_TX_ENDED_MEASURANDS",
    "AUTHORIZE_REMOTE_START",
    "AUTH_CACHE_ENABLED",
    "BASIC_AUTH_PASSWORD",
    "BYTES_PER_MESSAGE_GET_REPORT",
    "BYTES_PER_MESSAGE_GET_VARIABLES",
    "BYTES_PER_MESSAGE_SET_VARIABLES",
    "CHARGING_PROFILE_ENTRIES",
    "CONFIGURATION_VALUE_SIZE",
    "EV_CONNECTION_TIMEOUT",
    "HEARTBEAT_INTERVAL",
    "ITEMS_PER_MESSAGE_GET_REPORT",
    "ITEMS_PER_MESSAGE_GET_VARIABLES",
    "ITEMS_PER_MESSAGE_SET_VARIABLES",
    "LOCAL_AUTHORIZE_OFFLINE",
    "LOCAL_AUTH_LIST_ENABLED",
    "LOCAL_AUTH_LIST_ENTRIES",
    "LOCAL_AUTH_LIST_ITEMS_PER_MESSAGE",
    "LOCAL_PRE_AUTHORIZE",
    "MESSAGE_ATTEMPTS_TRANSACTION_EVENT",
    "MESSAGE_ATTEMPT_INTERVAL_TRANSACTION_EVENT",
    "MESSAGE_TIMEOUT",
    "NETWORK_PROFILE_CONNECTION_ATTEMPTS",
    "OFFLINE_THRESHOLD",
    "OFFLINE_TX_FOR_UNKNOWN_ID",
    "PROFILE_STACK_LEVEL",
    "RESERVATION_ENABLED",
    "RETRY_BACK_OFF_RANDOM_RANGE",
    "RETRY_BACK_OFF_REPEAT_TIMES",
    "RETRY_BACK_OFF_WAIT_MINIMUM",
    "SMART_CHARGING_ENABLED",
    "STATION_AVAILABILITY",
    "STOP_TX_ON_EV_SIDE_DISCONNECT",
    "STOP_TX_ON_INVALID_ID",
    "TX_ENDED_INTERVAL",
    "TX_ENDED_MEASURANDS",
    "TX_STARTED_MEASURANDS",
    "TX_START_POINT",
    "TX_STOP_POINT",
    "TX_UPDATED_INTERVAL",
    "TX_UPDATED_MEASURANDS",
    "DataType",
    "DeviceModel",
    "GetVariableStatus",
    "Mutability",
    "Ref",
    "ReportBase",
    "SetOutcome",
    "SetVariableStatus",
    "StationShape",
    "VariableSpec",
    "connector_ref",
    "evse_ref",
]


class Mutability(enum.StrEnum):
    READ_ONLY = "ReadOnly"
    READ_WRITE = "ReadWrite"
    WRITE_ONLY = "WriteOnly"


class DataType(enum.StrEnum):
    STRING = "string"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATE_TIME = "dateTime"
    BOOLEAN = "boolean"
    OPTION_LIST = "OptionList"
    SEQUENCE_LIST = "SequenceList"
    MEMBER_LIST = "MemberList"


class GetVariableStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"


class SetVariableStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"
    REBOOT_REQUIRED = "RebootRequired"


class ReportBase(enum.StrEnum):
    CONFIGURATION_INVENTORY = "ConfigurationInventory"
    FULL_INVENTORY = "FullInventory"
    SUMMARY_INVENTORY = "SummaryInventory"


class Ref(NamedTuple):
    """Where a variable lives: the key of every table, hashable and cheap to compare.

    `evse` 0 is the station as a whole (EVSE ids start at 1), `connector` 0 the EVSE as a whole.
    Names are spelled as the standard spells them; the wire's case-insensitive names are
    resolved by the model.
    """

    component: str
    variable: str
    evse: int = 0
    connector: int = 0
    component_instance: str = ""
    variable_instance: str = ""


def evse_ref(evse: int, variable: str) -> Ref:
    return Ref("EVSE", variable, evse)


def connector_ref(evse: int, connector: int, variable: str) -> Ref:
    return Ref("Connector", variable, evse, connector)


@attrs.frozen
class VariableSpec:
    """A variable's fixed characteristics. For strings and lists the limits bound the length."""

    data_type: DataType
    mutability: Mutability = Mutability.READ_WRITE
    unit: str = ""
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] = ()
    reboot_required: bool = False
    """A new value is stored but takes effect only after a reboot (SetVariables says so)."""
    constant: bool = False


_MEASURAND_NAMES: Final = tuple(v201.MEASURANDS)
_TX_POINTS: Final = ("ParkingBayOccupancy", "EVConnected", "Authorized", "DataSigned",
                     "PowerPathClosed", "EnergyTransfer")
_AVAILABILITY: Final = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


def _check_evses(_instance: object, _attribute: object, value: tuple[int, ...]) -> None:
    if not value or any(not 1 <= connectors <= 9 for connectors in value):
        raise ValueError(f"evses must list 1..9 connectors for each EVSE, got {value!r}")


def _check_measurands(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    unknown = set(value) - set(_MEASURAND_NAMES)
    if unknown:
        raise ValueError(f"not OCPP 2.0.1 measurands fleetsim samples: {sorted(unknown)}")


@attrs.frozen
class StationShape:
    """What every station of one kind shares: its build and its default settings.

    Intervals are whole seconds as the CSMS sees them on the wire; a time-scaled run divides
    them when it schedules, it does not change them here.
    """

    evses: tuple[int, ...] = attrs.field(default=(1,), validator=_check_evses)
    """Connectors per EVSE: (1, 1) is two EVSEs with one connector each."""
    vendor: str = attrs.field(default="fleetsim", validator=attrs.validators.max_len(50))
    model: str = attrs.field(default="Virtual201", validator=attrs.validators.max_len(20))
    heartbeat_s: int = attrs.field(default=300, validator=attrs.validators.ge(1))
    tx_updated_s: int = attrs.field(default=60, validator=attrs.validators.ge(0))
    aligned_s: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    message_timeout_s: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    measurands: tuple[str, ...] = attrs.field(default=v201.DEFAULT_MEASURANDS,
                                              validator=_check_measurands)
    max_power_w: float = attrs.field(default=22_000.0, validator=attrs.validators.gt(0))
    connector_type: str = "cType2"
    items_per_message: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    """DeviceDataCtrlr.ItemsPerMessage for GetReport, GetVariables and SetVariables."""


def _ctrlr(component: str, variable: str, instance: str = "") -> Ref:
    return Ref(component, variable, variable_instance=instance)


HEARTBEAT_INTERVAL: Final = _ctrlr("OCPPCommCtrlr", "HeartbeatInterval")
MESSAGE_TIMEOUT: Final = _ctrlr("OCPPCommCtrlr", "MessageTimeout", "Default")
MESSAGE_ATTEMPTS_TRANSACTION_EVENT: Final = _ctrlr("OCPPCommCtrlr", "MessageAttempts",
                                                   "TransactionEvent")
MESSAGE_ATTEMPT_INTERVAL_TRANSACTION_EVENT: Final = _ctrlr(
    "OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent")
NETWORK_PROFILE_CONNECTION_ATTEMPTS: Final = _ctrlr("OCPPCommCtrlr",
                                                    "NetworkProfileConnectionAttempts")
OFFLINE_THRESHOLD: Final = _ctrlr("OCPPCommCtrlr", "OfflineThreshold")
RETRY_BACK_OFF_RANDOM_RANGE: Final = _ctrlr("OCPPCommCtrlr", "RetryBackOffRandomRange")
RETRY_BACK_OFF_REPEAT_TIMES: Final = _ctrlr("OCPPCommCtrlr", "RetryBackOffRepeatTimes")
RETRY_BACK_OFF_WAIT_MINIMUM: Final = _ctrlr("OCPPCommCtrlr", "RetryBackOffWaitMinimum")
TX_UPDATED_INTERVAL: Final = _ctrlr("SampledDataCtrlr", "TxUpdatedInterval")
TX_UPDATED_MEASURANDS: Final = _ctrlr("SampledDataCtrlr", "TxUpdatedMeasurands")
TX_STARTED_MEASURANDS: Final = _ctrlr("SampledDataCtrlr", "TxStartedMeasurands")
TX_ENDED_MEASURANDS: Final = _ctrlr("SampledDataCtrlr", "TxEndedMeasurands")
TX_ENDED_INTERVAL: Final = _ctrlr("SampledDataCtrlr", "TxEndedInterval")
ALIGNED_INTERVAL: Final = _ctrlr("AlignedDataCtrlr", "Interval")
ALIGNED_MEASURANDS: Final = _ctrlr("AlignedDataCtrlr", "Measurands")
ALIGNED_TX_ENDED_INTERVAL: Final = _ctrlr("AlignedDataCtrlr", "TxEndedInterval")
ALIGNED_TX_ENDED_MEASURANDS: Final = _ctrlr("AlignedDataCtrlr", "TxEndedMeasurands")
EV_CONNECTION_TIMEOUT: Final = _ctrlr("TxCtrlr", "EVConnectionTimeOut")
STOP_TX_ON_EV_SIDE_DISCONNECT: Final = _ctrlr("TxCtrlr", "StopTxOnEVSideDisconnect")
STOP_TX_ON_INVALID_ID: Final = _ctrlr("TxCtrlr", "StopTxOnInvalidId")
TX_START_POINT: Final = _ctrlr("TxCtrlr", "TxStartPoint")
TX_STOP_POINT: Final = _ctrlr("TxCtrlr", "TxStopPoint")
AUTHORIZE_REMOTE_START: Final = _ctrlr("AuthCtrlr", "AuthorizeRemoteStart")
LOCAL_AUTHORIZE_OFFLINE: Final = _ctrlr("AuthCtrlr", "LocalAuthorizeOffline")
LOCAL_PRE_AUTHORIZE: Final = _ctrlr("AuthCtrlr", "LocalPreAuthorize")
OFFLINE_TX_FOR_UNKNOWN_ID: Final = _ctrlr("AuthCtrlr", "OfflineTxForUnknownIdEnabled")
AUTH_CACHE_ENABLED: Final = _ctrlr("AuthCacheCtrlr", "Enabled")
LOCAL_AUTH_LIST_ENABLED: Final = _ctrlr("LocalAuthListCtrlr", "Enabled")
LOCAL_AUTH_LIST_ENTRIES: Final = _ctrlr("LocalAuthListCtrlr", "Entries")
LOCAL_AUTH_LIST_ITEMS_PER_MESSAGE: Final = _ctrlr("LocalAuthListCtrlr", "ItemsPerMessage")
SMART_CHARGING_ENABLED: Final = _ctrlr("SmartChargingCtrlr", "Enabled")
CHARGING_PROFILE_ENTRIES: Final = _ctrlr("SmartChargingCtrlr", "Entries", "ChargingProfiles")
PROFILE_STACK_LEVEL: Final = _ctrlr("SmartChargingCtrlr", "ProfileStackLevel")
RESERVATION_ENABLED: Final = _ctrlr("ReservationCtrlr", "Enabled")
ITEMS_PER_MESSAGE_GET_REPORT: Final = _ctrlr("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
ITEMS_PER_MESSAGE_GET_VARIABLES: Final = _ctrlr("DeviceDataCtrlr", "ItemsPerMessage",
                                                "GetVariables")
ITEMS_PER_MESSAGE_SET_VARIABLES: Final = _ctrlr("DeviceDataCtrlr", "ItemsPerMessage",
                                                "SetVariables")
BYTES_PER_MESSAGE_GET_REPORT: Final = _ctrlr("DeviceDataCtrlr", "BytesPerMessage", "GetReport")
BYTES_PER_MESSAGE_GET_VARIABLES: Final = _ctrlr("DeviceDataCtrlr", "BytesPerMessage",
                                                "GetVariables")
BYTES_PER_MESSAGE_SET_VARIABLES: Final = _ctrlr("DeviceDataCtrlr", "BytesPerMessage",
                                                "SetVariables")
CONFIGURATION_VALUE_SIZE: Final = _ctrlr("DeviceDataCtrlr", "ConfigurationValueSize")
BASIC_AUTH_PASSWORD: Final = _ctrlr("SecurityCtrlr", "BasicAuthPassword")
STATION_AVAILABILITY: Final = Ref("ChargingStation", "AvailabilityState")
_SERIAL_NUMBER: Final = Ref("ChargingStation", "SerialNumber")

_RO: Final = Mutability.READ_ONLY
_WO: Final = Mutability.WRITE_ONLY
_BOOLEAN: Final = VariableSpec(DataType.BOOLEAN)
_BOOLEAN_RO: Final = VariableSpec(DataType.BOOLEAN, _RO)
_SECONDS: Final = VariableSpec(DataType.INTEGER, unit="s", min_limit=0)
_COUNT: Final = VariableSpec(DataType.INTEGER, min_limit=0)
_COUNT_RO: Final = VariableSpec(DataType.INTEGER, _RO, min_limit=0)
_MEASURAND_LIST: Final = VariableSpec(DataType.MEMBER_LIST, values_list=_MEASURAND_NAMES)
_TX_POINT_LIST: Final = VariableSpec(DataType.MEMBER_LIST, values_list=_TX_POINTS)
_AVAILABILITY_STATE: Final = VariableSpec(DataType.OPTION_LIST, _RO, values_list=_AVAILABILITY)
_PER_MESSAGE: Final = VariableSpec(DataType.INTEGER, _RO, min_limit=1)
_BYTES_PER_MESSAGE: Final = 65_536
_SERIAL_PLACEHOLDER: Final = "\x00serial"
_MAX_SERIAL_LENGTH: Final = 25
_CONTROLLER_SUFFIX: Final = "Ctrlr"

_Entry = tuple[Ref, VariableSpec, str]


def _entries(shape: StationShape) -> list[_Entry]:
    """The variables of one shape of station, in report order, with their defaults."""
    measurands = ",".join(shape.measurands)
    per_message = str(shape.items_per_message)
    entries: list[_Entry] = [
        (_ctrlr("OCPPCommCtrlr", "FileTransferProtocols"),
         VariableSpec(DataType.MEMBER_LIST, _RO,
                      values_list=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP")), "HTTPS,HTTP"),
        (HEARTBEAT_INTERVAL, VariableSpec(DataType.INTEGER, unit="s", min_limit=1),
         str(shape.heartbeat_s)),
        (MESSAGE_TIMEOUT, VariableSpec(DataType.INTEGER, unit="s", min_limit=1),
         str(shape.message_timeout_s)),
        (MESSAGE_ATTEMPTS_TRANSACTION_EVENT, _COUNT, "3"),
        (MESSAGE_ATTEMPT_INTERVAL_TRANSACTION_EVENT, _SECONDS, "60"),
        (_ctrlr("OCPPCommCtrlr", "NetworkConfigurationPriority"),
         VariableSpec(DataType.SEQUENCE_LIST, values_list=("1", "2"), reboot_required=True),
         "1"),
        (NETWORK_PROFILE_CONNECTION_ATTEMPTS, VariableSpec(DataType.INTEGER, min_limit=1), "3"),
        (OFFLINE_THRESHOLD, _SECONDS, "60"),
        (_ctrlr("OCPPCommCtrlr", "ResetRetries"), _COUNT, "2"),
        (RETRY_BACK_OFF_RANDOM_RANGE, _SECONDS, "10"),
        (RETRY_BACK_OFF_REPEAT_TIMES, _COUNT, "5"),
        (RETRY_BACK_OFF_WAIT_MINIMUM, _SECONDS, "3"),
        (_ctrlr("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"), _BOOLEAN, "true"),
        (_ctrlr("SampledDataCtrlr", "Enabled"), _BOOLEAN, "true"),
        (TX_ENDED_MEASURANDS, _MEASURAND_LIST, "Energy.Active.Import.Register"),
        (TX_ENDED_INTERVAL, _SECONDS, "0"),
        (TX_STARTED_MEASURANDS, _MEASURAND_LIST, "Energy.Active.Import.Register"),
        (TX_UPDATED_MEASURANDS, _MEASURAND_LIST, measurands),
        (TX_UPDATED_INTERVAL, _SECONDS, str(shape.tx_updated_s)),
        (_ctrlr("AlignedDataCtrlr", "Enabled"), _BOOLEAN, "true"),
        (ALIGNED_INTERVAL, _SECONDS, str(shape.aligned_s)),
        (ALIGNED_MEASURANDS, _MEASURAND_LIST, "Energy.Active.Import.Register"),
        (ALIGNED_TX_ENDED_INTERVAL, _SECONDS, "0"),
        (ALIGNED_TX_ENDED_MEASURANDS, _MEASURAND_LIST, ""),
        (EV_CONNECTION_TIMEOUT, _SECONDS, "60"),
        (STOP_TX_ON_EV_SIDE_DISCONNECT, _BOOLEAN, "true"),
        (STOP_TX_ON_INVALID_ID, _BOOLEAN, "true"),
        (TX_START_POINT, _TX_POINT_LIST, "PowerPathClosed"),
        (TX_STOP_POINT, _TX_POINT_LIST, "EVConnected,Authorized"),
        (_ctrlr("AuthCtrlr", "Enabled"), _BOOLEAN, "true"),
        (AUTHORIZE_REMOTE_START, _BOOLEAN, "true"),
        (LOCAL_AUTHORIZE_OFFLINE, _BOOLEAN, "true"),
        (LOCAL_PRE_AUTHORIZE, _BOOLEAN, "false"),
        (OFFLINE_TX_FOR_UNKNOWN_ID, _BOOLEAN, "false"),
        (AUTH_CACHE_ENABLED, _BOOLEAN, "true"),
        (_ctrlr("AuthCacheCtrlr", "Available"), _BOOLEAN_RO, "true"),
        (_ctrlr("AuthCacheCtrlr", "LifeTime"), _SECONDS, "86400"),
        (LOCAL_AUTH_LIST_ENABLED, _BOOLEAN, "true"),
        (_ctrlr("LocalAuthListCtrlr", "Available"), _BOOLEAN_RO, "true"),
        (LOCAL_AUTH_LIST_ENTRIES, _COUNT_RO, "0"),
        (LOCAL_AUTH_LIST_ITEMS_PER_MESSAGE, _PER_MESSAGE, "100"),
        (_ctrlr("LocalAuthListCtrlr", "BytesPerMessage"), _PER_MESSAGE, str(_BYTES_PER_MESSAGE)),
        (SMART_CHARGING_ENABLED, _BOOLEAN, "true"),
        (_ctrlr("SmartChargingCtrlr", "Available"), _BOOLEAN_RO, "true"),
        (CHARGING_PROFILE_ENTRIES, _COUNT_RO, "0"),
        (_ctrlr("SmartChargingCtrlr", "LimitChangeSignificance"),
         VariableSpec(DataType.DECIMAL, unit="Percent", min_limit=0, max_limit=100), "10"),
        (_ctrlr("SmartChargingCtrlr", "PeriodsPerSchedule"), _PER_MESSAGE, "24"),
        (PROFILE_STACK_LEVEL, _COUNT_RO, "8"),
        (_ctrlr("SmartChargingCtrlr", "RateUnit"),
         VariableSpec(DataType.MEMBER_LIST, _RO, values_list=("A", "W")), "A,W"),
        (RESERVATION_ENABLED, _BOOLEAN, "true"),
        (_ctrlr("ReservationCtrlr", "Available"), _BOOLEAN_RO, "true"),
        (_ctrlr("ReservationCtrlr", "NonEvseSpecific"), _BOOLEAN_RO, "false"),
        (ITEMS_PER_MESSAGE_GET_REPORT, _PER_MESSAGE, per_message),
        (ITEMS_PER_MESSAGE_GET_VARIABLES, _PER_MESSAGE, per_message),
        (ITEMS_PER_MESSAGE_SET_VARIABLES, _PER_MESSAGE, per_message),
        (BYTES_PER_MESSAGE_GET_REPORT, _PER_MESSAGE, str(_BYTES_PER_MESSAGE)),
        (BYTES_PER_MESSAGE_GET_VARIABLES, _PER_MESSAGE, str(_BYTES_PER_MESSAGE)),
        (BYTES_PER_MESSAGE_SET_VARIABLES, _PER_MESSAGE, str(_BYTES_PER_MESSAGE)),
        (CONFIGURATION_VALUE_SIZE, _PER_MESSAGE, "1000"),
        (_ctrlr("DeviceDataCtrlr", "ReportingValueSize"), _PER_MESSAGE, "2500"),
        (BASIC_AUTH_PASSWORD,
         VariableSpec(DataType.STRING, _WO, min_limit=16, max_limit=40), ""),
        (_ctrlr("SecurityCtrlr", "OrganizationName"),
         VariableSpec(DataType.STRING, max_limit=50), shape.vendor),
        (_ctrlr("SecurityCtrlr", "SecurityProfile"), _COUNT_RO, "1"),
        (STATION_AVAILABILITY, _AVAILABILITY_STATE, "Available"),
        (Ref("ChargingStation", "Available"), _BOOLEAN_RO, "true"),
        (Ref("ChargingStation", "Model"),
         VariableSpec(DataType.STRING, _RO, max_limit=20, constant=True), shape.model),
        (Ref("ChargingStation", "VendorName"),
         VariableSpec(DataType.STRING, _RO, max_limit=50, constant=True), shape.vendor),
        (_SERIAL_NUMBER,
         VariableSpec(DataType.STRING, _RO, max_limit=_MAX_SERIAL_LENGTH, constant=True),
         _SERIAL_PLACEHOLDER),
        (Ref("ChargingStation", "Problem"), _BOOLEAN_RO, "false"),
    ]
    power = VariableSpec(DataType.DECIMAL, _RO, unit="W", min_limit=0,
                         max_limit=shape.max_power_w)
    phases = VariableSpec(DataType.INTEGER, _RO, min_limit=0, max_limit=3, constant=True)
    connector_type = VariableSpec(DataType.STRING, _RO, constant=True)
    for evse, connectors in enumerate(shape.evses, start=1):
        entries += [
            (evse_ref(evse, "AvailabilityState"), _AVAILABILITY_STATE, "Available"),
            (evse_ref(evse, "Available"), _BOOLEAN_RO, "true"),
            (evse_ref(evse, "Power"), power, "0"),
            (evse_ref(evse, "SupplyPhases"), phases, "3"),
            (evse_ref(evse, "Problem"), _BOOLEAN_RO, "false"),
        ]
        for connector in range(1, connectors + 1):
            entries += [
                (connector_ref(evse, connector, "AvailabilityState"), _AVAILABILITY_STATE,
                 "Available"),
                (connector_ref(evse, connector, "Available"), _BOOLEAN_RO, "true"),
                (connector_ref(evse, connector, "ConnectorType"), connector_type,
                 shape.connector_type),
                (connector_ref(evse, connector, "SupplyPhases"), phases, "3"),
                (connector_ref(evse, connector, "Problem"), _BOOLEAN_RO, "false"),
            ]
    return entries


def _fold(ref: Ref) -> Ref:
    return Ref(ref.component.lower(), ref.variable.lower(), ref.evse, ref.connector,
               ref.component_instance.lower(), ref.variable_instance.lower())


_ComponentKey = tuple[str, str, int, int]


def _component_key(ref: Ref) -> _ComponentKey:
    return ref.component, ref.component_instance, ref.evse, ref.connector


def _characteristics(spec: VariableSpec) -> dict[str, Any]:
    result: dict[str, Any] = {"dataType": spec.data_type.value, "supportsMonitoring": False}
    if spec.unit:
        result["unit"] = spec.unit
    if spec.min_limit is not None:
        result["minLimit"] = spec.min_limit
    if spec.max_limit is not None:
        result["maxLimit"] = spec.max_limit
    if spec.values_list:
        result["valuesList"] = ",".join(spec.values_list)
    return result


class _Table:
    """One shape's variables, shared read-only by every station of that shape."""

    __slots__ = ("components", "configuration", "defaults", "index", "specs", "wire")

    def __init__(self, entries: list[_Entry]) -> None:
        self.specs: dict[Ref, VariableSpec] = {ref: spec for ref, spec, _ in entries}
        self.defaults: dict[Ref, str] = {ref: default for ref, _, default in entries}
        self.index: dict[Ref, Ref] = {_fold(ref): ref for ref in self.specs}
        """Case-folded to canonical, in report order: the wire's names are case-insensitive."""
        self.components: frozenset[_ComponentKey] = frozenset(
            _component_key(_fold(ref)) for ref in self.specs)
        self.configuration: tuple[Ref, ...] = tuple(
            ref for ref in self.specs if ref.component.endswith(_CONTROLLER_SUFFIX))
        self.wire: dict[Ref, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
            ref: (v201.component(ref.component, evse=ref.evse, connector=ref.connector,
                                 instance=ref.component_instance),
                  v201.variable(ref.variable, ref.variable_instance),
                  _characteristics(spec))
            for ref, spec in self.specs.items()}


@functools.cache
def _table(shape: StationShape) -> _Table:
    return _Table(_entries(shape))


_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL: Final = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_MAX_INTEGER: Final = 2**31 - 1
"""OCPP integers are 32-bit: a CSMS's 10**40 must not reach the charger's timers."""
_LISTS: Final = (DataType.MEMBER_LIST, DataType.SEQUENCE_LIST)


def _canonical(spec: VariableSpec, text: str) -> tuple[str | None, str]:
    """(the value as stored, "") or (None, the StatusInfo reason code it is refused with)."""
    kind = spec.data_type
    if kind is DataType.INTEGER or kind is DataType.DECIMAL:
        if not (_INTEGER if kind is DataType.INTEGER else _DECIMAL).fullmatch(text):
            return None, "InvalidValue"
        number = int(text) if kind is DataType.INTEGER else float(text)
        if number < (-_MAX_INTEGER - 1 if spec.min_limit is None else spec.min_limit):
            return None, "ValueTooLow"
        if number > (_MAX_INTEGER if spec.max_limit is None else spec.max_limit):
            return None, "ValueTooHigh"
        return (str(number) if kind is DataType.INTEGER else text.lstrip("+")), ""
    if kind is DataType.BOOLEAN:
        lowered = text.lower()
        return (lowered, "") if lowered in ("true", "false") else (None, "InvalidValue")
    if kind is DataType.DATE_TIME:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return None, "InvalidValue"
        return text, ""
    if kind is DataType.OPTION_LIST:
        return (text, "") if text in spec.values_list else (None, "InvalidValue")
    if spec.max_limit is not None and len(text) > spec.max_limit:
        return None, "TooLargeElement"
    if kind in _LISTS:
        members = [member.strip() for member in text.split(",")] if text.strip() else []
        if len(set(members)) < len(members) or not set(members) <= set(spec.values_list):
            return None, "InvalidValue"
        return ",".join(members), ""
    if spec.min_limit is not None and len(text) < spec.min_limit:
        return None, "InvalidValue"
    return text, ""


class SetOutcome(NamedTuple):
    """SetVariables' answer, and which variables now hold another value, for the charger to
    act on (a new HeartbeatInterval reschedules the heartbeat, and so on)."""

    results: list[dict[str, Any]]
    changed: list[Ref]


_Located = Ref | GetVariableStatus


class DeviceModel:
    """One station's device model: the shared table of its shape, plus what it changed.

    Values are the strings OCPP carries on the wire; the typed accessors (`integer`, `flag`,
    `members`, ...) convert them.
    """

    __slots__ = ("_changed", "_serial", "_table")

    def __init__(self, shape: StationShape, serial_number: str = "") -> None:
        if len(serial_number) > _MAX_SERIAL_LENGTH:
            raise ValueError(f"serial number longer than {_MAX_SERIAL_LENGTH} characters: "
                             f"{serial_number!r}")
        self._table = _table(shape)
        self._serial = serial_number
        self._changed: dict[Ref, str] | None = None

    # The charger's own view.

    def value(self, ref: Ref) -> str:
        """The Actual value; a KeyError for a variable this shape lacks is a bug in the caller."""
        changed = self._changed
        if changed is not None:
            found = changed.get(ref)
            if found is not None:
                return found
        default = self._table.defaults[ref]
        return self._serial if default is _SERIAL_PLACEHOLDER else default

    def integer(self, ref: Ref) -> int:
        return int(self.value(ref))

    def decimal(self, ref: Ref) -> float:
        return float(self.value(ref))

    def flag(self, ref: Ref) -> bool:
        return self.value(ref) == "true"

    def members(self, ref: Ref) -> tuple[str, ...]:
        """A MemberList or SequenceList variable's members, in order."""
        text = self.value(ref)
        return tuple(text.split(",")) if text else ()

    def spec(self, ref: Ref) -> VariableSpec:
        return self._table.specs[ref]

    def refs(self) -> Iterable[Ref]:
        return self._table.specs.keys()

    def changes(self) -> Mapping[Ref, str]:
        """The values this station holds apart from its shape's defaults (a copy)."""
        return dict(self._changed or {})

    def set_internal(self, ref: Ref, value: str) -> None:
        """What the station itself changes, even read-only variables: AvailabilityState when
        a connector's status changes, HeartbeatInterval from the BootNotification answer,
        Entries when the local list changes. A value its data type refuses is a bug."""
        stored, reason = _canonical(self._table.specs[ref], value)
        if stored is None:
            raise ValueError(f"{value!r} is not a valid {ref} ({reason})")
        self._store(ref, stored)

    def _store(self, ref: Ref, value: str) -> None:
        if value == self._table.defaults[ref]:
            if self._changed is not None:
                self._changed.pop(ref, None)
                if not self._changed:
                    self._changed = None
        elif self._changed is None:
            self._changed = {ref: value}
        else:
            self._changed[ref] = value

    # GetVariables and SetVariables: lists of checked wire entries in, result entries out.

    def _locate(self, component: dict[str, Any], variable: dict[str, Any]) -> _Located:
        evse = component.get("evse")
        key: _ComponentKey = (
            component["name"].lower(), component.get("instance", "").lower(),
            evse["id"] if evse else 0, evse.get("connectorId", 0) if evse else 0)
        if key not in self._table.components:
            return GetVariableStatus.UNKNOWN_COMPONENT
        ref = self._table.index.get(Ref(key[0], variable["name"].lower(), key[2], key[3],
                                        key[1], variable.get("instance", "").lower()))
        return GetVariableStatus.UNKNOWN_VARIABLE if ref is None else ref

    def get_variables(self, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """GetVariableData entries in, GetVariableResult entries out, in the same order."""
        results = []
        for request in requests:
            result = _echo(request)
            found = self._locate(request["component"], request["variable"])
            if not isinstance(found, Ref):
                result["attributeStatus"] = found.value
            elif request.get("attributeType", "Actual") != "Actual":
                result["attributeStatus"] = GetVariableStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE.value
            elif self._table.specs[found].mutability is Mutability.WRITE_ONLY:
                result["attributeStatus"] = GetVariableStatus.REJECTED.value
                result["attributeStatusInfo"] = {"reasonCode": "WriteOnly"}
            else:
                result["attributeStatus"] = GetVariableStatus.ACCEPTED.value
                result["attributeValue"] = self.value(found)
            results.append(result)
        return results

    def set_variables(self, requests: Sequence[dict[str, Any]]) -> SetOutcome:
        """SetVariableData entries in, SetVariableResult entries out, in the same order.

        Each entry stands alone, as OCPP wants: one refused value does not undo the others.
        """
        results = []
        changed: list[Ref] = []
        size_limit = self.integer(CONFIGURATION_VALUE_SIZE)
        for request in requests:
            result = _echo(request)
            found = self._locate(request["component"], request["variable"])
            status: SetVariableStatus
            reason = ""
            if not isinstance(found, Ref):
                status = SetVariableStatus(found.value)
            elif request.get("attributeType", "Actual") != "Actual":
                status = SetVariableStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE
            else:
                spec = self._table.specs[found]
                text: str = request["attributeValue"]
                stored: str | None = None
                if spec.mutability is Mutability.READ_ONLY:
                    reason = "ReadOnly"
                elif len(text) > size_limit:
                    reason = "TooLargeElement"
                else:
                    stored, reason = _canonical(spec, text)
                if stored is None:
                    status = SetVariableStatus.REJECTED
                elif stored == self.value(found):
                    status = SetVariableStatus.ACCEPTED
                else:
                    self._store(found, stored)
                    changed.append(found)
                    status = (SetVariableStatus.REBOOT_REQUIRED if spec.reboot_required
                              else SetVariableStatus.ACCEPTED)
            result["attributeStatus"] = status.value
            if reason:
                result["attributeStatusInfo"] = {"reasonCode": reason}
            results.append(result)
        return SetOutcome(results, changed)

    # Reports: lists of ReportDataType entries, for `v201.notify_reports` to split.

    def report_data(self, refs: Iterable[Ref]) -> list[dict[str, Any]]:
        """One ReportDataType per variable. Its component, variable and characteristics dicts
        are shared by every station of the shape: encode them, never change them."""
        table = self._table
        entries = []
        for ref in refs:
            spec = table.specs[ref]
            component, variable, characteristics = table.wire[ref]
            attribute: dict[str, Any] = {"type": "Actual", "mutability": spec.mutability.value}
            if spec.mutability is not Mutability.WRITE_ONLY:
                attribute["value"] = self.value(ref)
            if spec.constant:
                attribute["constant"] = True
            entries.append({"component": component, "variable": variable,
                            "variableAttribute": [attribute],
                            "variableCharacteristics": characteristics})
        return entries

    def base_report(self, base: ReportBase | str) -> list[dict[str, Any]]:
        """GetBaseReport: ConfigurationInventory is every controller's variables (the
        configuration variables of the standard); SummaryInventory is availability and any
        problem; FullInventory is everything."""
        base = ReportBase(base)
        if base is ReportBase.CONFIGURATION_INVENTORY:
            return self.report_data(self._table.configuration)
        if base is ReportBase.SUMMARY_INVENTORY:
            return self.report_data(
                ref for ref in self._table.specs
                if ref.variable == "AvailabilityState"
                or (ref.variable == "Problem" and self.value(ref) == "true"))
        return self.report_data(self._table.specs)

    def report(self, component_variables: Sequence[dict[str, Any]] | None = None,
               criteria: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """GetReport: the variables that match any `componentVariable` entry (an entry without
        a variable means all of the component's; a component without evse or instance matches
        every evse or instance), of components meeting any criterion (Active, Available,
        Enabled, Problem: the component has that variable and it is true)."""
        refs: Iterable[Ref] = self._table.specs
        if component_variables is not None:
            refs = [ref for folded, ref in self._table.index.items()
                    if any(_matches(folded, entry) for entry in component_variables)]
        if criteria:
            refs = [ref for ref in refs if self._meets(ref, criteria)]
        return self.report_data(refs)

    def _meets(self, ref: Ref, criteria: Sequence[str]) -> bool:
        for criterion in criteria:
            probe = Ref(ref.component, criterion, ref.evse, ref.connector,
                        ref.component_instance)
            if probe in self._table.specs and self.value(probe) == "true":
                return True
        return False


def _matches(folded: Ref, entry: dict[str, Any]) -> bool:
    component = entry["component"]
    if component["name"].lower() != folded.component:
        return False
    if "instance" in component and component["instance"].lower() != folded.component_instance:
        return False
    evse = component.get("evse")
    if evse is not None and (evse["id"] != folded.evse or (
            "connectorId" in evse and evse["connectorId"] != folded.connector)):
        return False
    variable = entry.get("variable")
    if variable is None:
        return True
    if variable["name"].lower() != folded.variable:
        return False
    return "instance" not in variable or variable["instance"].lower() == folded.variable_instance


def _echo(request: dict[str, Any]) -> dict[str, Any]:
    """The request's component, variable and attributeType, rebuilt from known keys only."""
    component = request["component"]
    echoed: dict[str, Any] = {"name": component["name"]}
    if "instance" in component:
        echoed["instance"] = component["instance"]
    if "evse" in component:
        evse = component["evse"]
        echoed["evse"] = ({"id": evse["id"], "connectorId": evse["connectorId"]}
                          if "connectorId" in evse else {"id": evse["id"]})
    variable = request["variable"]
    result: dict[str, Any] = {"component": echoed,
                              "variable": v201.variable(variable["name"],
                                                        variable.get("instance", ""))}
    if "attributeType" in request:
        result["attributeType"] = request["attributeType"]
    return result
