"""A charger's own security state: the CA certificates installed on it, the key of a pending
certificate signing request, the client certificate it renewed, and a new Basic auth password.

`ChargerSecurity` is made on a charger's first security call (a charger that never gets one
holds only a `None`), and each part of it only when used. It is sans-IO: the wall-clock time
comes in as an argument; the key pairs come from `cryptography` (EC P-256, as `fleetsim
certs`), generated only when the CSMS asks for a renewal, never on the per-CALL path. Keys and
passwords stay in memory: nothing here writes or shows them.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleetsim.ocpp.certificate_hash import hash_data

__all__ = ["MAX_INSTALLED", "ChargerSecurity", "common_name", "hash_data", "valid_password"]

MAX_INSTALLED: Final = 8
"""CA certificates a charger keeps (CertificateStoreMaxLength): more is Failed."""
_PASSWORD: Final = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{16,40}", re.ASCII)
"""The security whitepaper's passwordString, 16 to 40 characters."""
_PEM: Final = serialization.Encoding.PEM


def valid_password(text: str) -> bool:
    """A Basic auth password the whitepaper allows (AuthorizationKey, BasicAuthPassword)."""
    return _PASSWORD.fullmatch(text) is not None


def common_name(name: x509.Name) -> str | None:
    names = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _valid_at(cert: x509.Certificate, wall: float) -> bool:
    moment = datetime.fromtimestamp(wall, UTC)
    return cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc


class ChargerSecurity:
    """What one charger keeps for the security extensions; see the module docstring."""

    __slots__ = ("_installed", "_pending_key", "client_pair", "client_serial", "password",
                 "reconnect")

    def __init__(self) -> None:
        self._installed: list[tuple[str, dict[str, str]]] | None = None
        """(certificate type, hash data) of each installed CA certificate."""
        self._pending_key: ec.EllipticCurvePrivateKey | None = None
        self.client_pair: tuple[bytes, bytes] | None = None
        """(certificate chain PEM, private key PEM) to present from the next connection on."""
        self.client_serial: int | None = None
        self.password: str | None = None
        """The Basic auth password to send from the next connection on."""
        self.reconnect = False
        """The charger closes its connection to use new credentials (no reboot)."""

    # -- CA certificates ---------------------------------------------------------------------

    def install(self, certificate_type: str, pem: str, wall: float) -> str:
        """InstallCertificate: a self-signed CA certificate, valid now. Rejected if it is
        not one, Failed if the store is full; installing one again is Accepted."""
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            return "Rejected"
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            cert.verify_directly_issued_by(cert)
        except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
            return "Rejected"
        if not constraints.ca or not _valid_at(cert, wall):
            return "Rejected"
        entry = (certificate_type, hash_data(cert))
        installed = self._installed if self._installed is not None else []
        if entry in installed:
            return "Accepted"
        if len(installed) >= MAX_INSTALLED:
            return "Failed"
        installed.append(entry)
        self._installed = installed
        return "Accepted"

    def installed(self, types: tuple[str, ...] | None = None) -> list[tuple[str, dict[str, str]]]:
        """(type, hash data) of the installed CA certificates of `types` (None: all)."""
        return [(kind, dict(data)) for kind, data in self._installed or ()
                if types is None or kind in types]

    def delete(self, wanted: dict[str, Any]) -> str:
        """DeleteCertificate by hash data (its hashAlgorithm must be the one installed)."""
        for index, (_, data) in enumerate(self._installed or ()):
            if all(data[key].lower() == str(wanted.get(key, "")).lower() for key in data):
                assert self._installed is not None
                del self._installed[index]
                return "Accepted"
        return "NotFound"

    # -- renewal of the charger's own certificate ---------------------------------------------

    def signing_request(self, charger_id: str, organization: str = "") -> str:
        """A new key pair and its CSR (PEM; CN = the charger ID); the key waits for the
        certificate. A new request replaces a pending one."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.NameAttribute(NameOID.COMMON_NAME, charger_id)]
        if organization:
            names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
               .sign(key, hashes.SHA256()))
        self._pending_key = key
        return csr.public_bytes(_PEM).decode()

    @property
    def renewing(self) -> bool:
        return self._pending_key is not None

    def certificate_signed(self, chain_pem: str, charger_id: str, wall: float) -> str:
        """CertificateSigned: Accepted when the chain parses, its first certificate is for
        this charger (CN), holds the pending request's public key and is valid now, and each
        certificate is signed by the next. It is then presented from the next connection on."""
        key = self._pending_key
        if key is None:
            return "Rejected"
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode())
        except ValueError:
            return "Rejected"
        leaf = chain[0]
        if common_name(leaf.subject) != charger_id or leaf.public_key() != key.public_key() \
                or not _valid_at(leaf, wall):
            return "Rejected"
        try:
            for cert, issuer in itertools.pairwise(chain):
                cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return "Rejected"
        key_pem = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self.client_pair = (b"".join(cert.public_bytes(_PEM) for cert in chain), key_pem)
        self.client_serial = leaf.serial_number
        self._pending_key = None
        return "Accepted"
