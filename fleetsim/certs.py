"""A throwaway test PKI for OCPP security profiles 2 and 3: a CA, a server certificate and one
client certificate per charger (CN = charger ID, as OCPP requires).

EC P-256 keys: generating and signing one takes a fraction of a millisecond, where RSA 2048
takes tens, so that tens of thousands of chargers are a matter of seconds. Private keys are
written with owner-only permissions (0600) and never shown anywhere.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetsim.errors import ConfigError

__all__ = ["CertificateAuthority", "Pki", "issue_pki", "write_key"]

_DAY = datetime.timedelta(days=1)
_ENCODING = serialization.Encoding.PEM


@attrs.frozen
class Pki:
    """Where `issue_pki` wrote things: the CA's pair, the server's pair, and the folder of
    `<id>.pem` / `<id>.key` client pairs."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    chargers: Path


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """A private key as unencrypted PKCS#8 PEM, created owner-only (0600): it is never
    readable by anyone else, not even between creation and a chmod."""
    data = key.private_bytes(_ENCODING, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, data)
    finally:
        os.close(fd)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@attrs.frozen
class CertificateAuthority:
    """A CA that signs server and charger certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str = "", days: int = 365) -> CertificateAuthority:
        """A new CA; its default name has a random part, so that two test CAs are never
        taken for one another."""
        common_name = common_name or f"fleetsim test CA {secrets.token_hex(4)}"
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + days * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_path: str, key_path: str) -> CertificateAuthority:
        """An existing CA's PEM certificate and (unencrypted) key; bad files are one-line
        `ConfigError`s naming the file."""
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"ca: cannot read {cert_path!r}: {exc.strerror}") from None
        except ValueError:
            raise ConfigError(f"ca: {cert_path!r} is not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
        except OSError as exc:
            raise ConfigError(f"ca-key: cannot read {key_path!r}: {exc.strerror}") from None
        except (ValueError, TypeError):
            raise ConfigError(f"ca-key: {key_path!r} is not an unencrypted PEM private key"
                              ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"ca-key: {key_path!r} is not an EC key (fleetsim signs with "
                              "EC P-256)")
        if cert.public_key() != key.public_key():
            raise ConfigError(f"ca-key: {key_path!r} is not the key of {cert_path!r}")
        return cls(cert, key)

    def issue(
        self, common_name: str, *, server_names: Sequence[str] = (),
        not_before: datetime.datetime | None = None, days: int = 365,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A certificate for `common_name`: a server's (`server_names`: DNS names or IP
        addresses) or else a client's. `key` lets many certificates share one key pair."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        start = not_before or datetime.datetime.now(datetime.UTC) - _DAY
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else \
            ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + days * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(name) for name in server_names]),
                critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(self.cert.public_bytes(_ENCODING))
        write_key(key_path, self.key)

    def write_issued(
        self, cert_path: Path, key_path: Path, common_name: str, *,
        server_names: Sequence[str] = (), not_before: datetime.datetime | None = None,
        days: int = 365,
    ) -> None:
        """`issue` a pair and write it."""
        cert, key = self.issue(common_name, server_names=server_names, not_before=not_before,
                               days=days)
        cert_path.write_bytes(cert.public_bytes(_ENCODING))
        write_key(key_path, key)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_pki(
    out: Path, charger_ids: Iterable[str], *, ca: CertificateAuthority | None = None,
    server_names: Sequence[str] = ("127.0.0.1", "::1", "localhost"), days: int = 365,
) -> Pki:
    """Write a CA (unless given one), a server pair and one client pair per charger ID under
    `out`: `ca.pem`, `ca.key`, `server.pem`, `server.key`, `chargers/<id>.pem|key`."""
    chargers = out / "chargers"
    try:
        chargers.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out: cannot create {str(chargers)!r}: {exc.strerror}") from None
    pki = Pki(out / "ca.pem", out / "ca.key", out / "server.pem", out / "server.key", chargers)
    if ca is None:
        ca = CertificateAuthority.create(days=days)
        ca.write(pki.ca_cert, pki.ca_key)
    else:
        pki.ca_cert.write_bytes(ca.cert.public_bytes(_ENCODING))
    ca.write_issued(pki.server_cert, pki.server_key, server_names[0] if server_names else
                    "fleetsim CSMS", server_names=server_names, days=days)
    for charger_id in charger_ids:
        ca.write_issued(chargers / f"{charger_id}.pem", chargers / f"{charger_id}.key",
                        charger_id, days=days)
    return pki
