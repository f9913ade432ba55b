"""Security profiles at the connection level, over real TLS on 127.0.0.1 with certificates
from `fleetsim.certs`: each failure has its own reason."""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import signal
import ssl
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hdrh.histogram import HdrHistogram
from trio.testing import MockClock

from fleetsim import RunConfig, spawn
from fleetsim.behaviour.profile import load_profile
from fleetsim.certs import CertificateAuthority, Pki, issue_pki
from fleetsim.errors import ConfigError
from fleetsim.report import format_summary
from fleetsim.security import Credentials, load_passwords
from fleetsim.transport import (
    TRANSPORTS,
    ConnectError,
    PendingConnection,
    open_connection,
    serve_websocket,
)

from .conftest import start_csms

OCPP = ["ocpp1.6"]


@attrs.frozen
class Lab:
    """A test PKI: the fleet's CA and its files, and a foreign CA nobody trusts."""

    pki: Pki
    ca: CertificateAuthority
    foreign: Pki
    expired_server: tuple[str, str]
    expired_client: tuple[str, str]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root: Path = tmp_path_factory.mktemp("pki")
    pki = issue_pki(root / "fleet", ["CP00001", "CP00002", "CP00003"])
    ca = CertificateAuthority.load(str(pki.ca_cert), str(pki.ca_key))
    foreign = issue_pki(root / "foreign", ["CP00001"])
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    expired = []
    for name, server_names in (("server", ("127.0.0.1",)), ("CP00001", ())):
        cert_path, key_path = root / f"expired-{name}.pem", root / f"expired-{name}.key"
        ca.write_issued(cert_path, key_path, name, server_names=server_names,
                        not_before=long_ago, days=2)
        expired.append((str(cert_path), str(key_path)))
    return Lab(pki, ca, foreign, expired[0], expired[1])


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def server_context(cert: str | Path, key: str | Path, client_ca: Path | None = None
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


def client_context(ca: Path, pair: tuple[str | Path, str | Path] | None = None
                   ) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        context.load_cert_chain(*pair)
    return context


async def accept(pending: PendingConnection) -> None:
    conn = await pending.accept(pending.request.subprotocols[0])
    await conn.send_text("hello")
    await conn.aclose()


async def serve(nursery: trio.Nursery, context: ssl.SSLContext) -> str:
    ports = await nursery.start(partial(serve_websocket, accept, "127.0.0.1", 0,
                                        ssl_context=context))
    return f"wss://127.0.0.1:{ports[0]}/ocpp/CP00001"


async def reason(url: str, context: ssl.SSLContext, transport: str,
                 connect_timeout: float = 5) -> str:
    with trio.fail_after(connect_timeout + 5), pytest.raises(ConnectError) as info:
        async with open_connection(url, subprotocols=OCPP, ssl_context=context,
                                   transport=transport, connect_timeout=connect_timeout):
            pytest.fail("should not connect")
    return info.value.reason


async def test_mutual_tls_happy_path(nursery: trio.Nursery, lab: Lab, transport: str) -> None:
    pki = lab.pki
    url = await serve(nursery, server_context(pki.server_cert, pki.server_key, pki.ca_cert))
    pair = (pki.chargers / "CP00001.pem", pki.chargers / "CP00001.key")
    with trio.fail_after(5):
        async with open_connection(url, subprotocols=OCPP, transport=transport,
                                   ssl_context=client_context(pki.ca_cert, pair)) as conn:
            assert await conn.receive_text() == "hello"


async def test_server_certificate_failures_by_reason(
    nursery: trio.Nursery, lab: Lab, transport: str,
) -> None:
    pki = lab.pki
    url = await serve(nursery, server_context(pki.server_cert, pki.server_key))
    assert await reason(url, client_context(lab.foreign.ca_cert), transport) == "tls_unknown_ca"
    by_name = url.replace("127.0.0.1", "localhost")  # in the certificate: connects
    pair = (pki.ca_cert.parent / "elsewhere.pem", pki.ca_cert.parent / "elsewhere.key")
    lab.ca.write_issued(*pair, "elsewhere.test", server_names=("elsewhere.test",))
    elsewhere = await serve(nursery, server_context(*pair))
    assert await reason(elsewhere, client_context(pki.ca_cert), transport) == "tls_hostname"
    expired = await serve(nursery, server_context(*lab.expired_server))
    assert await reason(expired, client_context(pki.ca_cert), transport) == "tls_expired"
    with trio.fail_after(5):
        async with open_connection(by_name, subprotocols=OCPP, transport=transport,
                                   ssl_context=client_context(pki.ca_cert)) as conn:
            assert await conn.receive_text() == "hello"


async def test_client_certificate_refused_by_the_server_by_reason(
    nursery: trio.Nursery, lab: Lab, transport: str,
) -> None:
    pki = lab.pki
    url = await serve(nursery, server_context(pki.server_cert, pki.server_key, pki.ca_cert))
    foreign_pair = (lab.foreign.chargers / "CP00001.pem", lab.foreign.chargers / "CP00001.key")
    for pair in (None, foreign_pair, lab.expired_client):
        context = client_context(pki.ca_cert, pair)
        assert await reason(url, context, transport) == "tls_rejected", pair


async def test_a_server_that_never_answers_the_tls_handshake(
    nursery: trio.Nursery, lab: Lab, transport: str, autojump_clock: MockClock,
) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, silent, listeners)
    url = f"wss://127.0.0.1:{listeners[0].socket.getsockname()[1]}/ocpp/CP00001"
    assert await reason(url, client_context(lab.pki.ca_cert), transport,
                        connect_timeout=2) == "tls_handshake_timeout"


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("options", "message"), [
    ({"security_profile": 1, "url": "wss://h/ocpp", "password": "x"},
     "security-profile 1: needs a ws:// URL; got 'wss://h/ocpp'"),
    ({"security_profile": 2, "url": "ws://h/ocpp", "password": "x"},
     "security-profile 2: needs a wss:// URL; got 'ws://h/ocpp'"),
    ({"security_profile": 1, "url": "ws://h/ocpp"},
     "security-profile 1: needs a Basic auth password (--password, --passwords, or one in the "
     "URL)"),
    ({"security_profile": 2, "url": "wss://h/ocpp", "password": "x", "client_cert": "c"},
     "security-profile 2: Basic auth, not client certificates (that is profile 3)"),
    ({"security_profile": 3, "url": "wss://h/ocpp"},
     "security-profile 3: needs client certificates (--client-cert FILE or FOLDER; `fleetsim "
     "certs` issues test ones)"),
    ({"security_profile": 3, "url": "wss://:pw@h/ocpp", "client_cert": "c"},
     "security-profile 3: chargers authenticate by client certificate, not Basic auth: give "
     "no password"),
    ({"url": "ws://h/ocpp", "client_cert": "c"},
     "client-cert: client certificates need a wss:// URL"),
    ({"password": "x", "passwords_file": "p.csv"},
     "passwords: a CSV of passwords and --password (or one in the URL): give one"),
])
def test_security_profiles_check_the_url_and_credentials(
    options: dict[str, object], message: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        RunConfig(**options)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "problem"), [
    ("CP00001,a\nCP00002\n", ":2: expected 2 fields (id,password), got 1"),
    ("CP00001,a,b\n", ":1: expected 2 fields (id,password), got 3"),
    ("CP00001,\n", ":1: the password of CP00001 is empty"),
    (",pw\n", ":1: the charger ID is empty"),
    ("id,password\nCP00001,a\n\nCP00001,b\n", ":4: CP00001 appears twice"),
])
def test_a_bad_passwords_csv_names_file_line_and_problem(
    tmp_path: Path, text: str, problem: str,
) -> None:
    path = tmp_path / "passwords.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_passwords(str(path))
    assert str(info.value) == f"passwords: {path}{problem}"
    assert "\n" not in str(info.value)


def test_passwords_from_a_template_or_a_csv(tmp_path: Path) -> None:
    def user_and_password(credentials: Credentials, charger_id: str) -> str:
        [(name, value)] = credentials.headers(charger_id)
        assert name == "Authorization"
        return base64.b64decode(value.removeprefix("Basic ")).decode()

    template = Credentials("ws://h/ocpp", password="pw-{id}-{x}")
    assert user_and_password(template, "CP00007") == "CP00007:pw-CP00007-{x}"
    path = tmp_path / "passwords.csv"
    path.write_text("id,password\nCP00001,one\nCP00002,\"two, with a comma\"\n")
    table = Credentials("ws://h/ocpp", passwords_file=str(path))
    assert user_and_password(table, "CP00002") == "CP00002:two, with a comma"
    table.check(["CP00001", "CP00002"])
    with pytest.raises(ConfigError, match=r"has no password for CP00003$"):
        table.check(["CP00001", "CP00003"])
    assert Credentials("ws://h/ocpp").headers("CP00001") == []


def test_a_folder_of_certificates_must_have_every_charger(lab: Lab) -> None:
    credentials = Credentials("wss://h/ocpp", client_cert=str(lab.pki.chargers),
                              ca_file=str(lab.pki.ca_cert))
    credentials.check(["CP00001", "CP00003"])
    with pytest.raises(ConfigError, match=r"has no <id>.pem and <id>.key for CP00004, "
                                          r"CP00005, CP00006 and 1 more$"):
        credentials.check(["CP00001", "CP00004", "CP00005", "CP00006", "CP00007"])


# ----------------------------------------------------------------------------- fleets


async def run_fleet(config: RunConfig) -> dict[str, Any]:
    with trio.fail_after(30):
        result = await spawn(config, write=False)
    return result.report


def booted_and_failures(report: dict[str, Any]) -> tuple[int, dict[str, int]]:
    chargers = report["chargers"]
    return chargers["booted"], chargers["connect_failures"]


async def test_profile_1_per_charger_passwords(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: MockClock,
) -> None:
    server = await start_csms(nursery, password="pw-{id}")
    config = RunConfig(chargers=3, duration_s=1.5, url=server.url, password="pw-{id}",
                       security_profile=1)
    assert booted_and_failures(await run_fleet(config)) == (3, {})
    path = tmp_path / "passwords.csv"
    path.write_text("CP00001,pw-CP00001\nCP00002,wrong\nCP00003,pw-CP00003\n")
    by_csv = attrs.evolve(config, password=None, passwords_file=str(path))
    booted, failures = booted_and_failures(await run_fleet(by_csv))
    assert booted == 2
    assert set(failures) == {"http_401"}
    assert server.stats.handshakes_rejected["unauthorized"] == failures["http_401"]


async def test_profile_2_basic_auth_over_tls(
    nursery: trio.Nursery, lab: Lab, autojump_clock: MockClock,
) -> None:
    pki = lab.pki
    server = await start_csms(nursery, password="secret", cert_file=str(pki.server_cert),
                              key_file=str(pki.server_key))
    config = RunConfig(chargers=3, duration_s=1.5, url=server.url, password="secret",
                       ca_file=str(pki.ca_cert), security_profile=2)
    assert booted_and_failures(await run_fleet(config)) == (3, {})
    wrong = attrs.evolve(config, password="wrong", duration_s=10)
    assert booted_and_failures(await run_fleet(wrong)) == (0, {"http_401": 3})
    unknown = attrs.evolve(config, ca_file=str(lab.foreign.ca_cert), duration_s=10)
    assert booted_and_failures(await run_fleet(unknown)) == (0, {"tls_unknown_ca": 3})


async def test_profile_3_a_certificate_per_charger(
    nursery: trio.Nursery, lab: Lab, tmp_path: Path, autojump_clock: MockClock,
) -> None:
    pki = lab.pki
    server = await start_csms(nursery, cert_file=str(pki.server_cert),
                              key_file=str(pki.server_key), client_ca=str(pki.ca_cert))
    config = RunConfig(chargers=3, duration_s=1.5, url=server.url, ca_file=str(pki.ca_cert),
                       client_cert=str(pki.chargers), security_profile=3)
    assert booted_and_failures(await run_fleet(config)) == (3, {})
    # a folder where CP00002 has CP00001's certificate, CP00003 an expired one, and
    # CP00001 one from a CA the CSMS does not trust
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for suffix in ("pem", "key"):
        shutil.copy(pki.chargers / f"CP00001.{suffix}", mixed / f"CP00002.{suffix}")
        shutil.copy(lab.foreign.chargers / f"CP00001.{suffix}", mixed / f"CP00001.{suffix}")
    shutil.copy(lab.expired_client[0], mixed / "CP00003.pem")
    shutil.copy(lab.expired_client[1], mixed / "CP00003.key")
    config = attrs.evolve(config, client_cert=str(mixed), duration_s=10)
    booted, failures = booted_and_failures(await run_fleet(config))
    assert booted == 0
    assert set(failures) == {"http_401", "tls_rejected"}
    assert server.stats.handshakes_rejected["certificate_cn"] == failures["http_401"]
    # one pair shared by all: only the charger it names gets in
    shared = attrs.evolve(config, client_cert=str(pki.chargers / "CP00001.pem"),
                          client_key=str(pki.chargers / "CP00001.key"), duration_s=1.5)
    booted, failures = booted_and_failures(await run_fleet(shared))
    assert booted == 1
    assert set(failures) == {"http_401"}


STORM_PROFILE = """
[[behaviour]]
name = "herd"
weight = 1
connectors = 1
[behaviour.backoff]
policy = "none"

[[event]]
kind = "reconnect_storm"
at = "2s"
share = 1.0
within = "1s"
"""


async def test_a_profile_3_storm_drill_reports_each_connect_phase(
    nursery: trio.Nursery, lab: Lab, tmp_path: Path, autojump_clock: MockClock,
) -> None:
    pki = lab.pki
    server = await start_csms(nursery, cert_file=str(pki.server_cert),
                              key_file=str(pki.server_key), client_ca=str(pki.ca_cert))
    profile_file = tmp_path / "storm.toml"
    profile_file.write_text(STORM_PROFILE)
    config = RunConfig(chargers=3, duration_s=8, url=server.url, ca_file=str(pki.ca_cert),
                       client_cert=str(pki.chargers), security_profile=3,
                       profile=load_profile(profile_file))
    report = await run_fleet(config)
    assert booted_and_failures(report) == (3, {})
    assert report["chargers"]["reconnects"] == 3  # the storm dropped every charger
    phases = report["connect"]["phases"]
    assert set(phases) == {"tcp", "tls", "websocket"}
    for name, phase in phases.items():  # every connection, the storm's too, in each phase
        assert HdrHistogram.decode(phase["hdr"]).get_total_count() == 6, name
    assert phases["tls"]["ms"]["p50"] > 0
    assert "tls" in format_summary(report)


async def test_the_embedded_csms_serves_each_profile() -> None:
    """No --url: the CSMS (a child process: the real clock) is started in the profile, with a
    made-up password and PKI."""
    for profile in (1, 2, 3):
        config = RunConfig(chargers=3, duration_s=1, security_profile=profile)
        report = await run_fleet(config)
        assert booted_and_failures(report) == (3, {}), profile
        assert report["config"]["security_profile"] == profile
        assert report["config"]["password"] == ("***" if profile < 3 else None)


# ----------------------------------------------------------------------------- the command


def fleetsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleetsim", *args], capture_output=True,
                          text=True, timeout=90, check=False)


def test_no_password_or_key_is_shown_or_reported(tmp_path: Path, lab: Lab) -> None:
    secret = "Sesame-{id}-x7"
    report_path = tmp_path / "run.json"
    done = fleetsim("spawn", "--chargers", "3", "--duration", "1", "--security-profile", "2",
                    "--password", secret, "--progress", "plain", "--report", str(report_path))
    assert done.returncode == 0, done.stderr
    keys = [path.read_text() for path in (lab.pki.ca_key, lab.pki.chargers / "CP00001.key")]
    shown = done.stdout + done.stderr + report_path.read_text()
    report = json.loads(report_path.read_text())
    assert report["chargers"]["booted"] == 3
    assert report["config"]["csms"]["password"] == "***"
    for charger in ("CP00001", "CP00002", "CP00003"):
        assert secret.replace("{id}", charger) not in shown
    assert "Sesame" not in shown and "PRIVATE KEY" not in shown
    assert not any(key.splitlines()[1] in shown for key in keys)
    profile_3 = fleetsim("spawn", "--chargers", "2", "--duration", "1", "--security-profile",
                         "3", "--json", "--progress", "none", "--report",
                         str(tmp_path / "3.json"))
    assert profile_3.returncode == 0, profile_3.stderr
    assert json.loads(profile_3.stdout)["chargers"]["booted"] == 2
    assert "PRIVATE KEY" not in profile_3.stdout + profile_3.stderr


def test_bad_security_options_are_one_line_errors(tmp_path: Path) -> None:
    csv_path = tmp_path / "passwords.csv"
    csv_path.write_text("CP00001,a\nCP00002\n")
    for args, message in [
        (("--url", "ws://127.0.0.1:9/ocpp", "--passwords", str(csv_path)),
         f"passwords: {csv_path}:2: expected 2 fields (id,password), got 1"),
        (("--url", "wss://127.0.0.1:9/ocpp", "--security-profile", "3"),
         "security-profile 3: needs client certificates (--client-cert FILE or FOLDER; "
         "`fleetsim certs` issues test ones)"),
        (("--client-cert", str(tmp_path)),
         "client-cert: only applies with --url wss://...; against the embedded CSMS, "
         "--security-profile 3 issues its own"),
        (("--url", "wss://127.0.0.1:9/ocpp", "--client-cert", str(tmp_path / "none")),
         f"client-cert: {str(tmp_path / 'none')!r}: no such file"),
    ]:
        done = fleetsim("spawn", "--chargers", "2", "--duration", "1", *args)
        assert done.returncode == 104, done.stderr
        assert done.stderr.strip().splitlines() == [f"fleetsim: error: {message}"]


def test_fleetsim_csms_serves_profile_3_to_fleetsim_spawn(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    assert fleetsim("certs", "--out", str(pki_dir), "--chargers", "3").returncode == 0
    csms = subprocess.Popen(
        [sys.executable, "-m", "fleetsim", "csms", "--port", "0", "--stats-every", "1s",
         "--tls-cert", str(pki_dir / "server.pem"), "--tls-key", str(pki_dir / "server.key"),
         "--client-ca", str(pki_dir / "ca.pem")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert csms.stderr is not None
        banner = csms.stderr.readline()
        assert "listening on wss://127.0.0.1:" in banner, banner
        url = banner.split(" listening on ")[1].split("/<chargerId>")[0]
        done = fleetsim("spawn", "--url", url, "-u", "3", "-t", "1", "-q",
                        "--security-profile", "3", "--ca-file", str(pki_dir / "ca.pem"),
                        "--client-cert", str(pki_dir / "chargers"),
                        "--report", str(tmp_path / "r.json"))
        assert done.returncode == 0, done.stderr
        report = json.loads((tmp_path / "r.json").read_text())
        assert booted_and_failures(report) == (3, {})
    finally:
        csms.send_signal(signal.SIGINT)
        csms.communicate(timeout=10)
