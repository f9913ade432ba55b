"""`fleetsim certs` and the test PKI: real files, real certificates, loaded by `ssl`."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fleetsim.certs import CertificateAuthority, issue_pki
from fleetsim.errors import ConfigError

FLEETSIM = [sys.executable, "-m", "fleetsim"]


def fleetsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETSIM, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def common_name(path: Path) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_issue_pki_writes_a_ca_a_server_and_one_pair_per_charger(tmp_path: Path) -> None:
    pki = issue_pki(tmp_path, ["CP00001", "CP00002"])
    assert sorted(p.name for p in pki.chargers.iterdir()) == [
        "CP00001.key", "CP00001.pem", "CP00002.key", "CP00002.pem"]
    assert common_name(pki.chargers / "CP00002.pem") == "CP00002"
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # each pair loads, and a context trusting the CA accepts what it signed
    for cert, key in ((pki.server_cert, pki.server_key),
                      (pki.chargers / "CP00001.pem", pki.chargers / "CP00001.key")):
        ssl.create_default_context().load_cert_chain(cert, key)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    x509.load_pem_x509_certificate((pki.chargers / "CP00001.pem").read_bytes()
                                   ).verify_directly_issued_by(ca)


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    pki = issue_pki(tmp_path, ["CP00001"])
    (tmp_path / "again").mkdir()
    stale = tmp_path / "again" / "ca.key"
    stale.write_text("old")
    stale.chmod(0o644)  # a key file already there, world-readable: rewritten owner-only
    issue_pki(tmp_path / "again", [])
    for key in (pki.ca_key, pki.server_key, pki.chargers / "CP00001.key", stale):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert "PRIVATE KEY" in stale.read_text()


def test_an_existing_ca_signs_and_a_wrong_key_is_refused(tmp_path: Path) -> None:
    first = issue_pki(tmp_path / "first", [])
    ca = CertificateAuthority.load(str(first.ca_cert), str(first.ca_key))
    second = issue_pki(tmp_path / "second", ["CP00001"], ca=ca)
    assert second.ca_cert.read_bytes() == first.ca_cert.read_bytes()
    assert not second.ca_key.exists()  # the CA's key stays where it was
    other = issue_pki(tmp_path / "other", [])
    with pytest.raises(ConfigError, match="is not the key of"):
        CertificateAuthority.load(str(first.ca_cert), str(other.ca_key))
    with pytest.raises(ConfigError, match="is not a PEM certificate"):
        CertificateAuthority.load(str(first.ca_key), str(first.ca_key))


def test_the_certs_command(tmp_path: Path) -> None:
    done = fleetsim("certs", "--out", str(tmp_path / "pki"), "--chargers", "3",
                    "--id-prefix", "LAB")
    assert done.returncode == 0, done.stderr
    assert "PRIVATE KEY" not in done.stdout + done.stderr
    chargers = tmp_path / "pki" / "chargers"
    assert common_name(chargers / "LAB00003.pem") == "LAB00003"
    again = fleetsim("certs", "--out", str(tmp_path / "more"), "--chargers", "1",
                     "--ca", str(tmp_path / "pki" / "ca.pem"))
    assert again.returncode == 0, again.stderr
    bad = fleetsim("certs", "--out", str(tmp_path / "x"), "--ca", str(tmp_path / "missing.pem"))
    assert bad.returncode == 104
    assert bad.stderr.strip().splitlines() == [
        f"fleetsim: error: ca: cannot read {str(tmp_path / 'missing.pem')!r}: "
        "No such file or directory"]
    bad_prefix = fleetsim("certs", "--out", str(tmp_path / "y"), "--id-prefix", "../x")
    assert bad_prefix.returncode == 104
    assert "id-prefix" in bad_prefix.stderr and "Traceback" not in bad_prefix.stderr
