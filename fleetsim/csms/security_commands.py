"""The OCPP 1.6 security whitepaper's commands in the embedded CSMS's mix (`--commands RATE`).

Sans-IO, like `commands_16.py`: given a random source, a CSMS-initiated CALL of the whitepaper with
a valid payload. The CA certificate installed, listed and deleted is a real one (made once, on
first use), so that a charger's certificate store does fill and empty; the CertificateSigned
sent out of the blue names a key no charger has, so it is Rejected; an
ExtendedTriggerMessage(SignChargePointCertificate) starts a real renewal, which a CSMS with a CA
key (`--ca-key`) completes.
"""

from __future__ import annotations

import functools
import random
from typing import Any, Final

from cryptography.hazmat.primitives import serialization

from fleetsim.certs import CertificateAuthority
from fleetsim.csms.commands_16 import MIX
from fleetsim.ocpp import v16
from fleetsim.ocpp.certificate_hash import hash_data

__all__ = ["MIX_16", "MIX_16_SECURITY", "pick_security_command"]

MIX_16_SECURITY: Final[dict[str, int]] = {
    "ExtendedTriggerMessage": 10, "GetInstalledCertificateIds": 5, "InstallCertificate": 3,
    "DeleteCertificate": 3, "GetLog": 5, "CertificateSigned": 1, "SignedUpdateFirmware": 1,
}
"""The 7 CSMS-initiated actions of the whitepaper, each with its weight."""
MIX_16: Final[dict[str, int]] = {**MIX, **MIX_16_SECURITY}
"""Everything the CSMS sends a 1.6 charger: the core profile's mix and the whitepaper's."""

_TRIGGERS: Final = ("BootNotification", "LogStatusNotification", "FirmwareStatusNotification",
                    "Heartbeat", "MeterValues", "SignChargePointCertificate",
                    "StatusNotification")
_ROOT_TYPE: Final = "CentralSystemRootCertificate"
_REQUEST_IDS: Final = 2**31 - 1


@functools.cache
def _root() -> tuple[str, dict[str, str], str]:
    """A CA certificate for chargers to install (PEM), its hash data, and a client certificate
    of that CA for a key no charger has (PEM)."""
    ca = CertificateAuthority.create("fleetsim CSMS root")
    stranger, _ = ca.issue("nobody")
    pem = serialization.Encoding.PEM
    return (ca.cert.public_bytes(pem).decode(), hash_data(ca.cert),
            stranger.public_bytes(pem).decode())


def pick_security_command(rng: random.Random, wall: float, action: str
                          ) -> tuple[str, dict[str, Any]]:
    """The payload of one of `MIX_16_SECURITY`'s actions."""
    root, root_hash, stranger = _root()
    request_id = rng.randrange(1, _REQUEST_IDS)
    if action == "ExtendedTriggerMessage":
        return action, {"requestedMessage": rng.choice(_TRIGGERS)}
    if action == "GetInstalledCertificateIds":
        return action, {"certificateType": rng.choice(
            [_ROOT_TYPE, "ManufacturerRootCertificate"])}
    if action == "InstallCertificate":
        return action, {"certificateType": _ROOT_TYPE, "certificate": root}
    if action == "DeleteCertificate":
        return action, {"certificateHashData": dict(root_hash)}
    if action == "GetLog":
        return action, {"logType": rng.choice(["DiagnosticsLog", "SecurityLog"]),
                        "requestId": request_id,
                        "log": {"remoteLocation": "ftp://logs.invalid/"}}
    if action == "CertificateSigned":
        return action, {"certificateChain": stranger + root}
    if action == "SignedUpdateFirmware":
        return action, {"requestId": request_id, "firmware": {
            "location": "https://firmware.invalid/fw.bin",
            "retrieveDateTime": v16.iso_timestamp(wall), "signingCertificate": root,
            "signature": "ZmxlZXRzaW0="}}
    raise ValueError(f"not a security command: {action}")
