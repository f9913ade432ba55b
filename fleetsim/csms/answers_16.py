"""The embedded CSMS's answers to charger-initiated OCPP 1.6 CALLs, sans-IO.

A fast, well-behaved central system: it accepts every charger, authorises every tag and hands out
unique transaction ids, so that whatever the harness measures against it is the harness itself
(or the artificial delay a test asked for).
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, Final

import attrs

from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import Call, CallError, CallResult, ErrorCode

__all__ = ["CsmsCore", "CsmsStats"]

_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "Authorize": ("idTag",),
    "BootNotification": ("chargePointVendor", "chargePointModel"),
    "DataTransfer": ("vendorId",),
    "DiagnosticsStatusNotification": ("status",),
    "FirmwareStatusNotification": ("status",),
    "Heartbeat": (),
    "MeterValues": ("connectorId", "meterValue"),
    "StartTransaction": ("connectorId", "idTag", "meterStart", "timestamp"),
    "StatusNotification": ("connectorId", "errorCode", "status"),
    "StopTransaction": ("meterStop", "timestamp", "transactionId"),
    # the security whitepaper's (edition 3)
    "LogStatusNotification": ("status",),
    "SecurityEventNotification": ("type", "timestamp"),
    "SignCertificate": ("csr",),
    "SignedFirmwareStatusNotification": ("status",),
}
_ACCEPTED: Final = {"status": "Accepted"}


@attrs.define
class CsmsStats:
    """What the CSMS saw: CALLs received per action, how it answered, and connections."""

    received: Counter[str] = attrs.field(factory=Counter)
    answered: Counter[str] = attrs.field(factory=Counter)
    callerror_sent: Counter[str] = attrs.field(factory=Counter)
    bad_frames: Counter[str] = attrs.field(factory=Counter)
    connections: int = 0
    connections_total: int = 0
    handshakes_rejected: Counter[str] = attrs.field(factory=Counter)
    closes: Counter[str] = attrs.field(factory=Counter)
    commands_sent: Counter[str] = attrs.field(factory=Counter)
    commands_answered: Counter[str] = attrs.field(factory=Counter)
    commands_callerror: Counter[str] = attrs.field(factory=Counter)
    commands_unanswered: Counter[str] = attrs.field(factory=Counter)
    commands_skipped: int = 0
    subprotocols: Counter[str] = attrs.field(factory=Counter)
    """Connections accepted, by the subprotocol agreed."""
    transaction_events: Counter[str] = attrs.field(factory=Counter)
    """OCPP 2.0.1 TransactionEvents answered, by eventType."""
    seqno_gaps: int = 0
    """TransactionEvent seqNo values skipped: a charger lost or never sent those events."""
    seqno_duplicates: int = 0
    """TransactionEvents whose seqNo was not above the last one seen for their transaction."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": dict(self.received),
            "answered": dict(self.answered),
            "callerror_sent": dict(self.callerror_sent),
            "bad_frames": dict(self.bad_frames),
            "connections": self.connections,
            "connections_total": self.connections_total,
            "handshakes_rejected": dict(self.handshakes_rejected),
            "closes": dict(self.closes),
            "commands_sent": dict(self.commands_sent),
            "commands_answered": dict(self.commands_answered),
            "commands_callerror": dict(self.commands_callerror),
            "commands_unanswered": dict(self.commands_unanswered),
            "commands_skipped": self.commands_skipped,
            "subprotocols": dict(self.subprotocols),
            "transaction_events": dict(self.transaction_events),
            "seqno_gaps": self.seqno_gaps,
            "seqno_duplicates": self.seqno_duplicates,
        }


class CsmsCore:
    """Answers CALLs; `heartbeat_interval_s` is what BootNotification tells chargers."""

    def __init__(self, stats: CsmsStats, *, heartbeat_interval_s: int = 60,
                 boot_status: str = "Accepted", shard: int = 0, shards: int = 1) -> None:
        self.stats = stats
        self._heartbeat_interval_s = heartbeat_interval_s
        self._boot_status = boot_status
        self._transaction_ids = itertools.count(shard + 1, shards)
        """Unique across the `shards` processes of one CSMS."""

    def answer(self, call: Call, wall: float) -> CallResult | CallError:
        action = call.action
        self.stats.received[action] += 1
        required = _REQUIRED.get(action)
        if required is None:
            return self._error(call, ErrorCode.NOT_IMPLEMENTED, f"unknown action {action[:40]}")
        missing = [key for key in required if key not in call.payload]
        if missing:
            return self._error(call, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
                               f"{action} lacks {', '.join(missing)}")
        self.stats.answered[action] += 1
        return CallResult(call.unique_id, self._payload(action, wall))

    def _error(self, call: Call, code: ErrorCode, text: str) -> CallError:
        self.stats.callerror_sent[code.value] += 1
        return CallError(call.unique_id, code.value, text)

    def _payload(self, action: str, wall: float) -> dict[str, Any]:
        if action == "Heartbeat":
            return {"currentTime": v16.iso_timestamp(wall)}
        if action == "BootNotification":
            return {"currentTime": v16.iso_timestamp(wall),
                    "interval": self._heartbeat_interval_s, "status": self._boot_status}
        if action == "Authorize" or action == "StopTransaction":
            return {"idTagInfo": _ACCEPTED}
        if action == "StartTransaction":
            return {"idTagInfo": _ACCEPTED, "transactionId": next(self._transaction_ids)}
        if action == "DataTransfer":
            return {"status": "Accepted"}
        if action == "SignCertificate":  # the server accepts it when it has a CA to sign with
            return {"status": "Rejected"}
        return {}
