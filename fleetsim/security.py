"""Each charger's credentials for OCPP security profiles 1-3: its Basic auth password (one for
all, a template, or a CSV of id,password) and its TLS client certificate (a shared pair, or a
folder of `<id>.pem` / `<id>.key`).

With a certificate per charger, a charger's `ssl.SSLContext` (about 24 KB and 1 ms to build
with a `--ca-file`) is made when it connects: the connection's SSL object keeps it alive while
it lasts, and a disconnected charger holds none. Passwords and keys are never shown: errors
name files, lines and charger IDs only.
"""

from __future__ import annotations

import base64
import csv
import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from fleetsim.certs import issue_pki
from fleetsim.errors import ConfigError

if TYPE_CHECKING:  # the CSMS uses the password helpers here and imports nothing of the run
    from fleetsim.config import RunConfig

__all__ = ["ID_PLACEHOLDER", "Credentials", "embedded_profile", "fleet_credentials",
           "load_passwords", "password_for", "ssl_context_for"]

ID_PLACEHOLDER: Final = "{id}"
"""In a password, replaced by the charger ID: `--password 'pw-{id}'`."""


def password_for(template: str, charger_id: str) -> str:
    """A charger's password from a template: `{id}` replaced by its ID (no other escapes,
    so that any other character, braces included, stands for itself)."""
    return template.replace(ID_PLACEHOLDER, charger_id)


def load_passwords(path: str) -> dict[str, str]:
    """A CSV of `id,password` rows (an `id,password` header is allowed): charger ID to
    password. A bad file is a one-line `ConfigError` naming the file, the line and the
    problem, never the password."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"passwords: cannot read {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"passwords: {path!r} is not UTF-8 text") from None
    passwords: dict[str, str] = {}
    reader = csv.reader(text.splitlines())
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if line == 1 and [cell.strip().lower() for cell in row] == ["id", "password"]:
                continue
            if len(row) != 2:
                raise ConfigError(f"passwords: {path}:{line}: expected 2 fields (id,password), "
                                  f"got {len(row)}")
            charger_id, password = row[0].strip(), row[1]
            if not charger_id:
                raise ConfigError(f"passwords: {path}:{line}: the charger ID is empty")
            if not password:
                raise ConfigError(f"passwords: {path}:{line}: the password of {charger_id} "
                                  "is empty")
            if charger_id in passwords:
                raise ConfigError(f"passwords: {path}:{line}: {charger_id} appears twice")
            passwords[charger_id] = password
    except csv.Error as exc:
        raise ConfigError(f"passwords: {path}:{reader.line_num}: {exc}") from None
    if not passwords:
        raise ConfigError(f"passwords: {path!r} has no id,password rows")
    return passwords


def ssl_context_for(url: str, ca_file: str | None, insecure: bool) -> ssl.SSLContext | None:
    """TLS settings for wss:// URLs: the system trust store, a CA file, or none at all."""
    if not url.startswith("wss://"):
        return None
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ca-file: cannot load {ca_file!r}: {exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _load_pair(context: ssl.SSLContext, cert: str, key: str | None, charger_id: str = ""
               ) -> None:
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError:
        whose = f"{charger_id}'s " if charger_id else ""
        files = repr(cert) if key is None else f"{cert!r} or {key!r}"
        raise ConfigError(f"client-cert: {whose}{files}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"client-cert: cannot load {cert!r} with key {key!r}: "
                          f"{getattr(exc, 'reason', None) or exc}") from None


class Credentials:
    """What each charger of a fleet presents: the Authorization header and the TLS context.

    `password` may hold `{id}`; `passwords` (a CSV) gives each its own; `client_cert` is one
    certificate file for all (its key in `client_key`, or in the same file) or a folder of
    `<id>.pem` and `<id>.key`.
    """

    def __init__(
        self, url: str, *, password: str | None = None, passwords_file: str | None = None,
        client_cert: str | None = None, client_key: str | None = None,
        ca_file: str | None = None, insecure: bool = False,
    ) -> None:
        self._template = password
        self._passwords = load_passwords(passwords_file) if passwords_file else None
        self._passwords_file = passwords_file
        self._folder: Path | None = None
        self._secure = url.startswith("wss://")
        self._context = ssl_context_for(url, ca_file, insecure)
        self._ca_data: str | None = None
        self._ca_file = ca_file
        self._insecure = insecure
        if client_cert is None:
            return
        if not self._secure:
            raise ConfigError("client-cert: client certificates need a wss:// URL")
        if Path(client_cert).is_dir():
            if client_key is not None:
                raise ConfigError("client-key: applies to one shared --client-cert file, "
                                  "not to a folder of <id>.pem and <id>.key")
            self._folder = Path(client_cert)
            if ca_file is not None:  # read once; each charger's context parses it
                try:
                    self._ca_data = Path(ca_file).read_text()
                except (OSError, UnicodeDecodeError) as exc:
                    raise ConfigError(f"ca-file: cannot read {ca_file!r}: {exc}") from None
        else:
            assert self._context is not None
            _load_pair(self._context, client_cert, client_key)

    def check(self, charger_ids: list[str]) -> None:
        """Refuse, before anything starts, a fleet some of whose chargers have no password in
        the CSV or no certificate in the folder."""
        if self._passwords is not None:
            missing = [i for i in charger_ids if i not in self._passwords]
            if missing:
                raise ConfigError(f"passwords: {self._passwords_file} has no password for "
                                  f"{_some(missing)}")
        if self._folder is not None:
            missing = [i for i in charger_ids
                       if not (self._folder / f"{i}.pem").is_file()
                       or not (self._folder / f"{i}.key").is_file()]
            if missing:
                raise ConfigError(f"client-cert: {str(self._folder)!r} has no <id>.pem and "
                                  f"<id>.key for {_some(missing)}")

    def headers(self, charger_id: str, password: str | None = None) -> list[tuple[str, str]]:
        """The handshake's extra headers: Basic auth with the charger ID as the user name;
        `password`, if given, is one the CSMS set since (AuthorizationKey, BasicAuthPassword)."""
        if password is None and self._passwords is not None:
            password = self._passwords.get(charger_id)
        elif password is None and self._template:
            password = password_for(self._template, charger_id)
        if password is None:
            return []
        token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
        return [("Authorization", f"Basic {token}")]

    def ssl_context(self, charger_id: str, pair: tuple[bytes, bytes] | None = None
                    ) -> ssl.SSLContext | None:
        """The TLS context of one connection: the shared one, or one made now with the
        charger's own certificate (dropped with the connection). `pair` is a certificate
        chain and key in PEM that the CSMS gave the charger since (CertificateSigned)."""
        if pair is not None and self._secure:
            return self._context_with(pair)
        if self._folder is None:
            return self._context
        try:
            context = ssl.create_default_context(cadata=self._ca_data)
        except ssl.SSLError as exc:
            raise ConfigError(f"ca-file: cannot load: {exc}") from None
        if self._insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        _load_pair(context, str(self._folder / f"{charger_id}.pem"),
                   str(self._folder / f"{charger_id}.key"), charger_id)
        return context


    def _context_with(self, pair: tuple[bytes, bytes]) -> ssl.SSLContext:
        """`ssl` loads key pairs from files only: the pair goes through an owner-only
        temporary folder, removed at once."""
        try:
            context = ssl.create_default_context(cafile=self._ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca-file: cannot load {self._ca_file!r}: {exc}") from None
        if self._insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with tempfile.TemporaryDirectory(prefix="fleetsim-renewed-") as folder:
            cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert.write_bytes(pair[0])
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, pair[1])
            finally:
                os.close(fd)
            _load_pair(context, str(cert), str(key))
        return context


def _some(ids: list[str]) -> str:
    shown = ", ".join(ids[:3])
    return f"{shown} and {len(ids) - 3} more" if len(ids) > 3 else shown


def fleet_credentials(config: RunConfig, url: str) -> Credentials:
    """The credentials of `config`'s chargers against `url`."""
    return Credentials(url, password=config.password, passwords_file=config.passwords_file,
                       client_cert=config.client_cert, client_key=config.client_key,
                       ca_file=config.ca_file, insecure=config.insecure)


@contextmanager
def embedded_profile(config: RunConfig) -> Iterator[RunConfig]:
    """`config` with the embedded CSMS (no `url`) set up to serve its security profile, and
    the chargers to meet it: a made-up password for profiles 1 and 2 unless one is given, and
    for 2 and 3 a throwaway PKI in a temporary folder (removed on exit) with a server
    certificate for 127.0.0.1 and, for 3, one client certificate per charger."""
    profile = config.security_profile
    if config.url is not None or profile is None:
        yield config
        return
    password = config.password
    if profile in (1, 2) and password is None and config.passwords_file is None:
        password = secrets.token_urlsafe(16)
    csms = attrs.evolve(config.csms, password=password, passwords_file=config.passwords_file)
    if profile == 1:
        yield attrs.evolve(config, password=password, csms=csms)
        return
    with tempfile.TemporaryDirectory(prefix="fleetsim-pki-") as folder:
        ids = [config.charger_id(i) for i in config.charger_indexes()] if profile == 3 else []
        pki = issue_pki(Path(folder), ids, server_names=(csms.host,))
        csms = attrs.evolve(csms, cert_file=str(pki.server_cert), key_file=str(pki.server_key),
                            client_ca=str(pki.ca_cert) if profile == 3 else None,
                            ca_key=str(pki.ca_key) if profile == 3 else None)
        yield attrs.evolve(config, password=password, csms=csms, ca_file=str(pki.ca_cert),
                           client_cert=str(pki.chargers) if profile == 3 else None)
