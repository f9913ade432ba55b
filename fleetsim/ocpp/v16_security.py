"""The OCPP 1.6 security whitepaper's (edition 3) messages: the catalogue, and builders for
those a charger sends. They travel over the `ocpp1.6` subprotocol like the core messages; kept
apart from `v16` so that a CSMS or a test can tell the core profile from the extension.
"""

from __future__ import annotations

from typing import Any, Final

from fleetsim.ocpp.v16 import iso_timestamp

__all__ = ["CHARGER_ACTIONS", "CSMS_ACTIONS", "log_status_notification",
           "security_event_notification", "sign_certificate",
           "signed_firmware_status_notification"]

CHARGER_ACTIONS: Final = frozenset({
    "LogStatusNotification", "SecurityEventNotification", "SignCertificate",
    "SignedFirmwareStatusNotification",
})
CSMS_ACTIONS: Final = frozenset({
    "CertificateSigned", "DeleteCertificate", "ExtendedTriggerMessage",
    "GetInstalledCertificateIds", "GetLog", "InstallCertificate", "SignedUpdateFirmware",
})


def sign_certificate(csr: str) -> dict[str, Any]:
    return {"csr": csr}


def security_event_notification(kind: str, wall: float) -> dict[str, Any]:
    return {"type": kind, "timestamp": iso_timestamp(wall)}


def log_status_notification(status: str, request_id: int | None = None) -> dict[str, Any]:
    return {"status": status} if request_id is None else {"status": status,
                                                          "requestId": request_id}


def signed_firmware_status_notification(status: str,
                                        request_id: int | None = None) -> dict[str, Any]:
    return log_status_notification(status, request_id)
