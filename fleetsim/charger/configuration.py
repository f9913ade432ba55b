"""A charger's OCPP 1.6 configuration keys: the standard core set, typed and access-checked.

GetConfiguration and ChangeConfiguration work on this store, and the charger reads the keys
that change its behaviour (HeartbeatInterval, MeterValueSampleInterval, ...) from it, so a
CSMS that reconfigures the fleet under load sees the effect, as with real chargers.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from typing import Final

import attrs

__all__ = ["ChangeStatus", "Configuration", "KeySpec"]

_MAX_VALUE_LENGTH: Final = 500


class ChangeStatus(enum.StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


@attrs.frozen
class KeySpec:
    kind: type[int] | type[bool] | type[str]
    readonly: bool = False
    minimum: int = 0


_KEYS: Final[dict[str, KeySpec]] = {
    "AllowOfflineTxForUnknownId": KeySpec(bool),
    "AuthorizationCacheEnabled": KeySpec(bool),
    "AuthorizeRemoteTxRequests": KeySpec(bool),
    "ClockAlignedDataInterval": KeySpec(int),
    "ConnectionTimeOut": KeySpec(int),
    "ConnectorPhaseRotation": KeySpec(str),
    "GetConfigurationMaxKeys": KeySpec(int, readonly=True),
    "HeartbeatInterval": KeySpec(int, minimum=1),
    "LocalAuthorizeOffline": KeySpec(bool),
    "LocalPreAuthorize": KeySpec(bool),
    "MeterValuesAlignedData": KeySpec(str),
    "MeterValuesSampledData": KeySpec(str),
    "MeterValueSampleInterval": KeySpec(int, minimum=1),
    "NumberOfConnectors": KeySpec(int, readonly=True),
    "ResetRetries": KeySpec(int),
    "StopTransactionOnEVSideDisconnect": KeySpec(bool),
    "StopTransactionOnInvalidId": KeySpec(bool),
    "StopTxnAlignedData": KeySpec(str),
    "StopTxnSampledData": KeySpec(str),
    "SupportedFeatureProfiles": KeySpec(str, readonly=True),
    "TransactionMessageAttempts": KeySpec(int),
    "TransactionMessageRetryInterval": KeySpec(int),
    "UnlockConnectorOnEVSideDisconnect": KeySpec(bool),
    "WebSocketPingInterval": KeySpec(int),
    "LocalAuthListEnabled": KeySpec(bool),
    "LocalAuthListMaxLength": KeySpec(int, readonly=True),
    "SendLocalListMaxLength": KeySpec(int, readonly=True),
    "ChargeProfileMaxStackLevel": KeySpec(int, readonly=True),
    "ChargingScheduleAllowedChargingRateUnit": KeySpec(str, readonly=True),
    "ChargingScheduleMaxPeriods": KeySpec(int, readonly=True),
    "MaxChargingProfilesInstalled": KeySpec(int, readonly=True),
}

GET_CONFIGURATION_MAX_KEYS: Final = 64


@functools.cache
def _defaults(connectors: int, heartbeat_s: float, meter_interval_s: float,
              aligned_s: float) -> dict[str, str]:
    """Shared by every charger of one shape; each charger stores only what it changed."""
    return {
        "AllowOfflineTxForUnknownId": "false",
        "AuthorizationCacheEnabled": "true",
        "AuthorizeRemoteTxRequests": "true",
        "ClockAlignedDataInterval": f"{aligned_s:g}",
        "ConnectionTimeOut": "60",
        "ConnectorPhaseRotation": ",".join(f"{n}.RST" for n in range(connectors + 1)),
        "GetConfigurationMaxKeys": str(GET_CONFIGURATION_MAX_KEYS),
        "HeartbeatInterval": f"{heartbeat_s:g}",
        "LocalAuthorizeOffline": "true",
        "LocalPreAuthorize": "false",
        "MeterValuesAlignedData": "Energy.Active.Import.Register",
        "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
        "MeterValueSampleInterval": f"{meter_interval_s:g}",
        "NumberOfConnectors": str(connectors),
        "ResetRetries": "3",
        "StopTransactionOnEVSideDisconnect": "true",
        "StopTransactionOnInvalidId": "true",
        "StopTxnAlignedData": "",
        "StopTxnSampledData": "",
        "SupportedFeatureProfiles": "Core,LocalAuthListManagement,RemoteTrigger,Reservation",
        "TransactionMessageAttempts": "3",
        "TransactionMessageRetryInterval": "60",
        "UnlockConnectorOnEVSideDisconnect": "true",
        "WebSocketPingInterval": "0",
        "LocalAuthListEnabled": "true",
        "LocalAuthListMaxLength": "1000",
        "SendLocalListMaxLength": "100",
        "ChargeProfileMaxStackLevel": "8",
        "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
        "ChargingScheduleMaxPeriods": "24",
        "MaxChargingProfilesInstalled": "8",
    }


_INTEGER: Final = re.compile(r"[+-]?[0-9]{1,10}")
_MAX_INTEGER: Final = 2**31 - 1
"""OCPP integers are 32-bit: a 400-digit interval is refused, not scheduled."""


def _valid(spec: KeySpec, value: str) -> bool:
    if spec.kind is bool:
        return value.lower() in ("true", "false")
    if spec.kind is int:
        return bool(_INTEGER.fullmatch(value)) and spec.minimum <= int(value) <= _MAX_INTEGER
    return len(value) <= _MAX_VALUE_LENGTH


class Configuration:
    """The key/value store. Values are kept as the strings OCPP 1.6 carries on the wire."""

    __slots__ = ("_changed", "_defaults")

    def __init__(self, connectors: int, heartbeat_s: float, meter_interval_s: float,
                 aligned_s: float = 0.0) -> None:
        self._defaults = _defaults(connectors, heartbeat_s, meter_interval_s, aligned_s)
        self._changed: dict[str, str] | None = None

    def value(self, key: str) -> str:
        if self._changed is not None and key in self._changed:
            return self._changed[key]
        return self._defaults[key]

    def get(self, keys: Iterable[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """(configurationKey entries, unknownKey list), as GetConfiguration.conf wants them."""
        wanted = list(self._defaults) if keys is None else list(keys)
        known: list[dict[str, object]] = [
            {"key": key, "readonly": _KEYS[key].readonly, "value": self.value(key)}
            for key in wanted if key in self._defaults
        ]
        unknown = [key for key in wanted if key not in self._defaults]
        return known, unknown

    def change(self, key: str, value: str) -> ChangeStatus:
        spec = _KEYS.get(key)
        if spec is None:
            return ChangeStatus.NOT_SUPPORTED
        if spec.readonly or not _valid(spec, value):
            return ChangeStatus.REJECTED
        if spec.kind is bool:
            value = value.lower()
        elif spec.kind is int:
            value = str(int(value))  # "+0030" is stored, and reported back, as "30"
        self.set_internal(key, value)
        return ChangeStatus.ACCEPTED

    def set_internal(self, key: str, value: str) -> None:
        """What the charger itself learns (e.g. the heartbeat interval at boot)."""
        if self._changed is None:
            self._changed = {}
        self._changed[key] = value

    def integer(self, key: str) -> int:
        return int(self.value(key))

    def flag(self, key: str) -> bool:
        return self.value(key) == "true"
