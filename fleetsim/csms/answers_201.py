"""The embedded CSMS's answers to charger-initiated OCPP 2.0.1 CALLs, sans-IO.

The 2.0.1 twin of `CsmsCore`, sharing its `CsmsStats`: it accepts every charging station and
authorises every token. Since 2.0.1 transaction ids come from the charger, it also keeps, per
charger and transaction, the last TransactionEvent `seqNo` it saw, and counts gaps and repeats:
the CSMS is where a charger's sequencing mistakes become visible under load.

The catalogue lives here rather than in `fleetsim.ocpp` because only the CSMS needs it so far.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

from fleetsim.csms.answers_16 import CsmsStats
from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import Call, CallError, CallResult
from fleetsim.ocpp.v201 import CHARGER_ACTIONS, CSMS_ACTIONS, SUBPROTOCOL, as_v201_error

__all__ = [
    "CHARGER_ACTIONS",
    "CSMS_ACTIONS",
    "ERROR_CODES",
    "SUBPROTOCOL",
    "CsmsCore201",
    "as_v201_error",
]

ERROR_CODES: Final = frozenset({
    "FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported",
    "NotImplemented", "NotSupported", "OccurenceConstraintViolation",
    "PropertyConstraintViolation", "ProtocolError", "RpcFrameworkError", "SecurityError",
    "TypeConstraintViolation",
})
"""The OCPP-J 2.0.1 RPC error codes. 2.0.1 fixed 1.6's `FormationViolation` to
`FormatViolation` but kept the `OccurenceConstraintViolation` typo (the `ocpp` package agrees)."""

_NOT_IMPLEMENTED: Final = "NotImplemented"
_OCCURRENCE: Final = "OccurenceConstraintViolation"
_TYPE: Final = "TypeConstraintViolation"
_PROPERTY: Final = "PropertyConstraintViolation"

_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "Authorize": ("idToken",),
    "BootNotification": ("reason", "chargingStation"),
    "ClearedChargingLimit": ("chargingLimitSource",),
    "DataTransfer": ("vendorId",),
    "FirmwareStatusNotification": ("status",),
    "Get15118EVCertificate": ("iso15118SchemaVersion", "action", "exiRequest"),
    "GetCertificateStatus": ("ocspRequestData",),
    "Heartbeat": (),
    "LogStatusNotification": ("status",),
    "MeterValues": ("evseId", "meterValue"),
    "NotifyChargingLimit": ("chargingLimit",),
    "NotifyCustomerInformation": ("data", "seqNo", "generatedAt", "requestId"),
    "NotifyDisplayMessages": ("requestId",),
    "NotifyEVChargingNeeds": ("evseId", "chargingNeeds"),
    "NotifyEVChargingSchedule": ("timeBase", "evseId", "chargingSchedule"),
    "NotifyEvent": ("generatedAt", "seqNo", "eventData"),
    "NotifyMonitoringReport": ("requestId", "seqNo", "generatedAt"),
    "NotifyReport": ("requestId", "generatedAt", "seqNo"),
    "PublishFirmwareStatusNotification": ("status",),
    "ReportChargingProfiles": ("requestId", "chargingLimitSource", "evseId", "chargingProfile"),
    "ReservationStatusUpdate": ("reservationId", "reservationUpdateStatus"),
    "SecurityEventNotification": ("type", "timestamp"),
    "SignCertificate": ("csr",),
    "StatusNotification": ("timestamp", "connectorStatus", "evseId", "connectorId"),
    "TransactionEvent": ("eventType", "timestamp", "triggerReason", "seqNo", "transactionInfo"),
}
"""Each charger-initiated action's required top-level fields (a test holds them to the schemas)."""

_ACCEPTED_TOKEN: Final = {"status": "Accepted"}
_STATIC: Final[dict[str, dict[str, Any]]] = {
    "Authorize": {"idTokenInfo": _ACCEPTED_TOKEN},
    "DataTransfer": {"status": "UnknownVendorId"},
    # no ISO 15118 PKI behind this CSMS: say so rather than promise a certificate later
    "Get15118EVCertificate": {"status": "Failed", "exiResponse": ""},
    "GetCertificateStatus": {"status": "Failed"},
    "SignCertificate": {"status": "Rejected"},
    "NotifyEVChargingNeeds": {"status": "Accepted"},
    "NotifyEVChargingSchedule": {"status": "Accepted"},
}
_EVENT_TYPES: Final = frozenset({"Started", "Updated", "Ended"})
_ENDED_KEPT: Final = 16
"""Ended transactions remembered per charger, so that a repeated Ended counts as a duplicate."""


class _Ledger:
    """One charger's transactions: the last seqNo of each open one and of the latest ended."""

    __slots__ = ("ended", "open")

    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self.ended: dict[str, int] = {}


class CsmsCore201:
    """Answers OCPP 2.0.1 CALLs; `heartbeat_interval_s` is what BootNotification tells chargers.

    `charger_id` keys the seqNo ledger: transaction ids are only unique per charger, and a
    transaction outlives the connection it started on.
    """

    def __init__(self, stats: CsmsStats, *, heartbeat_interval_s: int = 60,
                 boot_status: str = "Accepted") -> None:
        self.stats = stats
        self._heartbeat_interval_s = heartbeat_interval_s
        self._boot_status = boot_status
        self._ledgers: dict[str, _Ledger] = {}
        self._builders: dict[str, Callable[[Call, float, str], dict[str, Any] | CallError]] = {
            "BootNotification": self._boot,
            "Heartbeat": self._heartbeat,
            "TransactionEvent": self._transaction_event,
        }

    def answer(self, call: Call, wall: float, charger_id: str = "") -> CallResult | CallError:
        action = call.action
        self.stats.received[action] += 1
        required = _REQUIRED.get(action)
        if required is None:
            return self._error(call, _NOT_IMPLEMENTED, f"unknown action {action[:40]}")
        missing = [key for key in required if key not in call.payload]
        if missing:
            return self._error(call, _OCCURRENCE, f"{action} lacks {', '.join(missing)}")
        builder = self._builders.get(action)
        payload = _STATIC.get(action, {}) if builder is None else builder(call, wall, charger_id)
        if isinstance(payload, CallError):
            return payload
        self.stats.answered[action] += 1
        return CallResult(call.unique_id, payload)

    def transactions(self, charger_id: str) -> Collection[str]:
        """The charger's transactions that have started and not ended, as far as the CSMS saw."""
        ledger = self._ledgers.get(charger_id)
        return () if ledger is None else ledger.open.keys()

    def _error(self, call: Call, code: str, text: str) -> CallError:
        self.stats.callerror_sent[code] += 1
        return CallError(call.unique_id, code, text)

    def _boot(self, _call: Call, wall: float, _charger_id: str) -> dict[str, Any]:
        return {"currentTime": v16.iso_timestamp(wall), "interval": self._heartbeat_interval_s,
                "status": self._boot_status}

    def _heartbeat(self, _call: Call, wall: float, _charger_id: str) -> dict[str, Any]:
        return {"currentTime": v16.iso_timestamp(wall)}

    def _transaction_event(self, call: Call, _wall: float,
                           charger_id: str) -> dict[str, Any] | CallError:
        payload = call.payload
        event_type = payload["eventType"]
        seq_no = payload["seqNo"]
        info = payload["transactionInfo"]
        if type(seq_no) is not int or type(event_type) is not str or type(info) is not dict:
            return self._error(call, _TYPE,
                               "TransactionEvent: seqNo must be an integer, eventType a string, "
                               "transactionInfo an object")
        if event_type not in _EVENT_TYPES:
            return self._error(call, _PROPERTY, f"unknown eventType {event_type[:20]!r}")
        if seq_no < 0:
            return self._error(call, _PROPERTY, f"seqNo must not be negative, got {seq_no}")
        transaction_id = info.get("transactionId")
        if transaction_id is None:
            return self._error(call, _OCCURRENCE, "transactionInfo lacks transactionId")
        if type(transaction_id) is not str:
            return self._error(call, _TYPE, "transactionInfo.transactionId must be a string")
        self.stats.transaction_events[event_type] += 1
        self._sequence(charger_id, transaction_id, seq_no, event_type == "Ended")
        return {"idTokenInfo": _ACCEPTED_TOKEN} if "idToken" in payload else {}

    def _sequence(self, charger_id: str, transaction_id: str, seq_no: int, ended: bool) -> None:
        """A transaction's events carry seqNo 0, 1, 2...; count what is skipped or repeated."""
        ledger = self._ledgers.get(charger_id)
        if ledger is None:
            ledger = self._ledgers[charger_id] = _Ledger()
        book = ledger.ended if transaction_id in ledger.ended else ledger.open
        last = book.get(transaction_id, -1)
        if seq_no <= last:
            self.stats.seqno_duplicates += 1
        else:
            self.stats.seqno_gaps += seq_no - last - 1
            book[transaction_id] = seq_no
        if ended and book is ledger.open:
            ledger.ended[transaction_id] = ledger.open.pop(transaction_id)
            if len(ledger.ended) > _ENDED_KEPT:
                del ledger.ended[next(iter(ledger.ended))]
