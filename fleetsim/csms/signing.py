"""The embedded CSMS's part in the security extensions, sans-IO: it signs chargers' CSRs with
its CA, asks chargers to renew their certificate or take a new password, and keeps the
passwords it set.

Which chargers it asks (`renew`, `new_passwords`) is up to whoever builds it (tests; a CLI
option could come later); with only a CA it just answers the renewals chargers start. A new
password is taken from the moment it is sent (the charger may reconnect before the CSMS reads
its answer) and becomes the charger's only one at its first login with it, or once it answers
Accepted. Passwords and keys are never shown.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetsim.certs import CertificateAuthority
from fleetsim.csms.config import CsmsConfig
from fleetsim.errors import ConfigError

__all__ = ["CsmsSecurity", "csms_security", "sign_csr"]

_DAY: Final = datetime.timedelta(days=1)
_PEM: Final = serialization.Encoding.PEM
Command = tuple[str, dict[str, Any]]


def sign_csr(ca: CertificateAuthority, csr_pem: str, charger_id: str, *, days: int = 365
             ) -> tuple[str, int] | None:
    """A client certificate for the CSR's key, as a PEM chain (the certificate, then the CA's)
    with its serial number; None if the CSR is not a well-signed one for `charger_id` (its
    CN)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        return None
    names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not csr.is_signature_valid or not names or names[0].value != charger_id:
        return None
    start = datetime.datetime.now(datetime.UTC) - _DAY
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject).issuer_name(ca.cert.subject)
        .public_key(csr.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + days * _DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return (cert.public_bytes(_PEM) + ca.cert.public_bytes(_PEM)).decode(), cert.serial_number


class CsmsSecurity:
    """See the module docstring. `ca` signs CSRs; `renew` are the chargers asked to renew their
    certificate after each boot until they have; `new_passwords` the chargers asked once to take
    the given password."""

    def __init__(self, ca: CertificateAuthority | None = None, *, renew: Collection[str] = (),
                 new_passwords: Mapping[str, str] | None = None) -> None:
        self.ca = ca
        self._renew = set(renew)
        self._to_set = dict(new_passwords or {})
        self._proposed: dict[str, str] = {}
        self._passwords: dict[str, str] = {}
        self._owed: dict[str, list[Command]] = {}
        self.signed: dict[str, int] = {}
        """Each charger's last certificate serial number signed here."""
        self.certificates_signed = 0
        self.renewed_logins = 0
        """TLS handshakes with a certificate this CSMS signed for that charger."""
        self.passwords_changed = 0

    # -- handshakes ----------------------------------------------------------------------

    def password(self, charger_id: str, configured: Callable[[str], str | None] | None
                 ) -> str | None:
        """The password a charger must send: the one set here, or the configured one."""
        own = self._passwords.get(charger_id)
        if own is not None:
            return own
        return None if configured is None else configured(charger_id)

    def proposed(self, charger_id: str) -> str | None:
        """A password sent to the charger and not yet confirmed: good for a login too."""
        return self._proposed.get(charger_id)

    def confirm_password(self, charger_id: str) -> None:
        password = self._proposed.pop(charger_id, None)
        if password is not None:
            self._passwords[charger_id] = password
            self.passwords_changed += 1

    def logged_in(self, charger_id: str, serial: int | None) -> None:
        """A charger connected with a certificate of that serial (None: without one)."""
        if serial is not None and self.signed.get(charger_id) == serial:
            self.renewed_logins += 1
            self._renew.discard(charger_id)

    # -- the conversation ----------------------------------------------------------------

    def booted(self, charger_id: str, v201: bool) -> None:
        """After its BootNotification: what this CSMS wants of the charger."""
        if charger_id in self._renew and self.ca is not None:
            if v201:
                self._owe(charger_id, ("TriggerMessage",
                                       {"requestedMessage": "SignChargingStationCertificate"}))
            else:
                self._owe(charger_id, ("ExtendedTriggerMessage",
                                       {"requestedMessage": "SignChargePointCertificate"}))
        password = self._to_set.pop(charger_id, None)
        if password is not None:
            self._proposed[charger_id] = password
            if v201:
                self._owe(charger_id, ("SetVariables", {"setVariableData": [{
                    "attributeValue": password, "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"}}]}))
            else:
                self._owe(charger_id, ("ChangeConfiguration",
                                       {"key": "AuthorizationKey", "value": password}))

    def sign_certificate(self, charger_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The answer to a SignCertificate; if Accepted, a CertificateSigned is owed."""
        csr = payload.get("csr")
        signed = None if self.ca is None or not isinstance(csr, str) else sign_csr(
            self.ca, csr, charger_id)
        if signed is None:
            return {"status": "Rejected"}
        chain, serial = signed
        self.signed[charger_id] = serial
        self.certificates_signed += 1
        call: dict[str, Any] = {"certificateChain": chain}
        if "certificateType" in payload:  # 2.0.1
            call["certificateType"] = payload["certificateType"]
        self._owe(charger_id, ("CertificateSigned", call))
        return {"status": "Accepted"}

    def answered(self, charger_id: str, action: str, payload: dict[str, Any]) -> None:
        """The charger's CALLRESULT to a command this CSMS sent."""
        if (action == "ChangeConfiguration" and payload.get("status") == "Accepted") or (
                action == "SetVariables" and all(
                    result.get("attributeStatus") == "Accepted"
                    for result in payload.get("setVariableResult", ()))):
            self.confirm_password(charger_id)

    def next_command(self, charger_id: str) -> Command | None:
        owed = self._owe_list(charger_id)
        if not owed:
            return None
        command = owed.pop(0)
        if not owed:
            del self._owed[charger_id]
        return command

    def gone(self, charger_id: str) -> None:
        """The charger disconnected: what it was owed is dropped (asked again after a boot)."""
        self._owed.pop(charger_id, None)

    def _owe_list(self, charger_id: str) -> list[Command]:
        return self._owed.get(charger_id, [])

    def _owe(self, charger_id: str, command: Command) -> None:
        self._owed.setdefault(charger_id, []).append(command)

    def statistics(self) -> dict[str, int]:
        return {"certificates_signed": self.certificates_signed,
                "renewed_logins": self.renewed_logins,
                "passwords_changed": self.passwords_changed}


def csms_security(config: CsmsConfig) -> CsmsSecurity | None:
    """The duties `config` asks for: signing CSRs with `client_ca` and `ca_key`, or none."""
    if config.ca_key is None:
        return None
    if config.client_ca is None:
        raise ConfigError("ca-key: signs renewed certificates with the --client-ca CA: give both")
    return CsmsSecurity(CertificateAuthority.load(config.client_ca, config.ca_key))
