"""OCPP's CertificateHashDataType of a certificate: how a charger and a CSMS name an installed
CA certificate (GetInstalledCertificateIds, DeleteCertificate), in both versions."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["hash_data"]


def hash_data(cert: x509.Certificate) -> dict[str, str]:
    """A self-signed certificate's CertificateHashDataType (SHA256): the hashes of its issuer's
    DER name and public key bit string, as OCSP has them, and its serial number in hex."""
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        key_bits = key.public_bytes(serialization.Encoding.X962,
                                    serialization.PublicFormat.UncompressedPoint)
    else:
        key_bits = key.public_bytes(serialization.Encoding.DER,
                                    serialization.PublicFormat.PKCS1)
    return {"hashAlgorithm": "SHA256",
            "issuerNameHash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
            "issuerKeyHash": hashlib.sha256(key_bits).hexdigest(),
            "serialNumber": format(cert.serial_number, "x")}
