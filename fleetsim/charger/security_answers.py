"""Answers to the CSMS's security calls, both versions: certificates (install, list, delete,
renew), logs and signed firmware (1.6 whitepaper), new Basic auth passwords.

OCPP 1.6's security whitepaper (edition 3) adds CertificateSigned, DeleteCertificate,
ExtendedTriggerMessage, GetInstalledCertificateIds, GetLog, InstallCertificate and
SignedUpdateFirmware; 2.0.1 has their counterparts in its core. As in `answers_16.py`, each payload
is held against its shape first. The charger's certificate store, pending key and new
credentials are its `ChargerSecurity` (`certificates.py`), made on the first call that needs it.

A renewal: ExtendedTriggerMessage(SignChargePointCertificate) / TriggerMessage(
SignChargingStationCertificate) makes a key and a CSR, sent in SignCertificate; a
CertificateSigned whose chain fits is Accepted, and the charger closes its connection and
reconnects with the new certificate (no reboot). A new AuthorizationKey (1.6) or
BasicAuthPassword (2.0.1) is Accepted when the whitepaper's passwordString allows it, and the
charger reconnects with it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from cryptography import x509

from fleetsim.charger import answers_16
from fleetsim.charger.answers_16 import COMMANDS, checked, date_field
from fleetsim.charger.answers_201 import HANDLERS
from fleetsim.charger.certificates import ChargerSecurity, valid_password
from fleetsim.charger.device_model import BASIC_AUTH_PASSWORD
from fleetsim.charger.shapes import REQUESTS_16, REQUESTS_16_SECURITY, REQUESTS_201
from fleetsim.ocpp import v16_security

if TYPE_CHECKING:
    from fleetsim.charger.core import ChargerCore

__all__ = ["COMMANDS_16", "HANDLERS_201", "LOG_STEPS", "SIGNED_FIRMWARE_STEPS"]

LOG_STEPS: Final = (("Uploading", 1.0), ("Uploaded", 4.0))
"""(status, seconds after the request) of a 1.6 GetLog upload."""
SIGNED_FIRMWARE_STEPS: Final = (("Downloading", 0.0), ("Downloaded", 5.0),
                                ("SignatureVerified", 5.5), ("Installing", 6.0))
"""(status, seconds after the retrieve date) of a SignedUpdateFirmware; a reboot follows."""
_INSTALL_S: Final = 5.0
_V201_SIGN_TYPE: Final = "ChargingStationCertificate"


def _security(core: ChargerCore) -> ChargerSecurity:
    if core.security is None:
        core.security = ChargerSecurity()
    return core.security


def _renew(core: ChargerCore, now: float, payload: dict[str, Any]) -> None:
    """The CSR goes in a SignCertificate after the answer."""
    csr = _security(core).signing_request(core.charger_id)
    core.send_after_answer("SignCertificate", {**payload, "csr": csr}, now)


def _certificate_signed(core: ChargerCore, chain: str, now: float) -> dict[str, Any]:
    security = core.security
    if security is None:
        return {"status": "Rejected"}
    status = security.certificate_signed(chain, core.charger_id, core.wall(now))
    if status == "Accepted":
        core.reconnect_soon(now)
    return {"status": status}


def _new_password(core: ChargerCore, password: str, now: float) -> None:
    _security(core).password = password
    core.reconnect_soon(now)


# -- OCPP 1.6 ------------------------------------------------------------------------------


def certificate_signed(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    return _certificate_signed(core, payload["certificateChain"], now)


def install_certificate(core: ChargerCore, payload: dict[str, Any],
                        now: float) -> dict[str, Any]:
    return {"status": _security(core).install(payload["certificateType"],
                                              payload["certificate"], core.wall(now))}


def delete_certificate(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    if core.security is None:
        return {"status": "NotFound"}
    return {"status": core.security.delete(payload["certificateHashData"])}


def get_installed_certificate_ids(core: ChargerCore, payload: dict[str, Any],
                                  now: float) -> dict[str, Any]:
    found = [] if core.security is None else core.security.installed(
        (payload["certificateType"],))
    if not found:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": [data for _, data in found]}


def extended_trigger_message(core: ChargerCore, payload: dict[str, Any],
                             now: float) -> dict[str, Any]:
    message: str = payload["requestedMessage"]
    if message == "SignChargePointCertificate":
        _renew(core, now, {})
        return {"status": "Accepted"}
    if message == "LogStatusNotification":
        core.send_after_answer(message, v16_security.log_status_notification("Idle"), now)
        return {"status": "Accepted"}
    return {"status": core.trigger(message, payload.get("connectorId"), now)}


def get_log(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    request_id: int = payload["requestId"]
    for status, after in LOG_STEPS:
        core.later(now + after, "LogStatusNotification",
                   v16_security.log_status_notification(status, request_id))
    kind = "security" if payload["logType"] == "SecurityLog" else "diagnostics"
    return {"status": "Accepted",
            "filename": f"{kind}-{core.charger_id}-{int(core.wall(now))}.log"[:255]}


def signed_update_firmware(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    """The signing certificate must at least be one; the signature is taken as verified."""
    firmware = payload["firmware"]
    request_id: int = payload["requestId"]
    if not _is_certificate(firmware["signingCertificate"]):
        core.send_after_answer("SecurityEventNotification",
                               v16_security.security_event_notification(
                                   "InvalidFirmwareSigningCertificate", core.wall(now)), now)
        return {"status": "InvalidCertificate"}
    start = max(now, now + date_field(firmware, "retrieveDateTime") - core.wall(now))
    for status, after in SIGNED_FIRMWARE_STEPS:
        core.later(start + after, "SignedFirmwareStatusNotification",
                   v16_security.signed_firmware_status_notification(status, request_id))
    core.later(start + SIGNED_FIRMWARE_STEPS[-1][1] + _INSTALL_S, "FirmwareInstalled",
               v16_security.signed_firmware_status_notification("Installed", request_id))
    return {"status": "Accepted"}


def _is_certificate(pem: str) -> bool:
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return False
    return True


def change_configuration(core: ChargerCore, payload: dict[str, Any],
                         now: float) -> dict[str, Any]:
    """AuthorizationKey (write-only) is the next connection's Basic auth password."""
    if payload["key"] != "AuthorizationKey":
        return answers_16.change_configuration(core, payload, now)
    value: str = payload["value"]
    if not valid_password(value):
        return {"status": "Rejected"}
    _new_password(core, value, now)
    return {"status": "Accepted"}


# -- OCPP 2.0.1 ----------------------------------------------------------------------------


def certificate_signed_201(core: ChargerCore, payload: dict[str, Any],
                           now: float) -> dict[str, Any]:
    if payload.get("certificateType", _V201_SIGN_TYPE) != _V201_SIGN_TYPE:
        return {"status": "Rejected"}  # no ISO 15118 here
    return _certificate_signed(core, payload["certificateChain"], now)


def get_installed_certificate_ids_201(core: ChargerCore, payload: dict[str, Any],
                                      now: float) -> dict[str, Any]:
    types = payload.get("certificateType")
    found = [] if core.security is None else core.security.installed(
        None if types is None else tuple(types))
    if not found:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashDataChain": [
        {"certificateType": kind, "certificateHashData": data} for kind, data in found]}


def trigger_message_201(core: ChargerCore, payload: dict[str, Any],
                        now: float) -> dict[str, Any]:
    if payload["requestedMessage"] == "SignChargingStationCertificate":
        _renew(core, now, {"certificateType": _V201_SIGN_TYPE})
        return {"status": "Accepted"}
    return _TRIGGER_201(core, payload, now)


_TRIGGER_201: Final = HANDLERS["TriggerMessage"]
_SET_VARIABLES_201: Final = HANDLERS["SetVariables"]


def set_variables_201(core: ChargerCore, payload: dict[str, Any], now: float) -> dict[str, Any]:
    """A new SecurityCtrlr.BasicAuthPassword (16..40 characters, checked by the device model)
    is the next connection's password."""
    model = core.device_model
    assert model is not None
    before = model.value(BASIC_AUTH_PASSWORD)
    answer = _SET_VARIABLES_201(core, payload, now)
    after = model.value(BASIC_AUTH_PASSWORD)
    if after != before and after:
        _new_password(core, after, now)
    return answer


Handler = Callable[["ChargerCore", dict[str, Any], float], dict[str, Any]]
COMMANDS_16: Final[dict[str, Handler]] = {
    **COMMANDS,
    **checked(REQUESTS_16, {"ChangeConfiguration": change_configuration}),
    **checked(REQUESTS_16_SECURITY, {
        "CertificateSigned": certificate_signed,
        "DeleteCertificate": delete_certificate,
        "ExtendedTriggerMessage": extended_trigger_message,
        "GetInstalledCertificateIds": get_installed_certificate_ids,
        "GetLog": get_log,
        "InstallCertificate": install_certificate,
        "SignedUpdateFirmware": signed_update_firmware,
    }),
}
"""Every CSMS-initiated 1.6 action a charger answers: the core profile and the whitepaper's."""

HANDLERS_201: Final[dict[str, Handler]] = {
    **HANDLERS,
    "SetVariables": set_variables_201,  # the device model checks its payload
    **checked(REQUESTS_201, {
        "CertificateSigned": certificate_signed_201,
        "DeleteCertificate": delete_certificate,
        "GetInstalledCertificateIds": get_installed_certificate_ids_201,
        "InstallCertificate": install_certificate,
        "TriggerMessage": trigger_message_201,
    }),
}
"""Every CSMS-initiated 2.0.1 action a station answers, its security calls answered here."""

