"""The security extensions end to end, fleet against the embedded CSMS over real sockets on
127.0.0.1: a certificate renewal round trip over mutual TLS (ExtendedTriggerMessage /
TriggerMessage → SignCertificate → CertificateSigned → the charger reconnects and the CSMS sees
the certificate it signed), and a new Basic auth password (ChangeConfiguration AuthorizationKey
/ SetVariables BasicAuthPassword → the charger reconnects with it, and only it works since)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
import trio
from cryptography import x509
from trio.testing import MockClock

from fleetsim import RunConfig, spawn
from fleetsim.charger.core import ChargerSpec
from fleetsim.csms.config import CsmsConfig
from fleetsim.csms.server import CsmsServer, serve_csms
from fleetsim.csms.signing import CsmsSecurity, csms_security
from fleetsim.errors import ConfigError
from fleetsim.security import Credentials
from fleetsim.transport import ConnectError, open_connection

from .test_security import Lab, lab  # noqa: F401  (the session's test PKI)

VERSIONS = ["1.6", "2.0.1"]


async def _serve(nursery: trio.Nursery, security: CsmsSecurity, **options: Any) -> CsmsServer:
    server: CsmsServer = await nursery.start(partial(
        serve_csms, CsmsConfig(port=0, **options), security=security))
    return server


async def _run(config: RunConfig) -> dict[str, Any]:
    with trio.fail_after(60):
        result = await spawn(config, write=False)
    return result.report


def _spec(ocpp: str) -> ChargerSpec:
    return ChargerSpec(ocpp=ocpp, connectors=1, idle_s=(10_000, 10_000))  # type: ignore[arg-type]


@pytest.mark.parametrize("ocpp", VERSIONS)
async def test_a_certificate_renewal_round_trip_over_mutual_tls(
    nursery: trio.Nursery, lab: Lab, autojump_clock: MockClock, ocpp: str,  # noqa: F811
) -> None:
    pki = lab.pki
    security = CsmsSecurity(lab.ca, renew={"CP00001"})
    server = await _serve(nursery, security, cert_file=str(pki.server_cert),
                          key_file=str(pki.server_key), client_ca=str(pki.ca_cert))
    config = RunConfig(chargers=2, duration_s=8, url=server.url, ca_file=str(pki.ca_cert),
                       client_cert=str(pki.chargers), security_profile=3, charger=_spec(ocpp))
    report = await _run(config)
    old_serial = x509.load_pem_x509_certificate(
        (pki.chargers / "CP00001.pem").read_bytes()).serial_number
    assert set(security.signed) == {"CP00001"}
    assert security.signed["CP00001"] != old_serial
    assert security.certificates_signed == 1
    # the charger reconnected once, presenting the certificate the CSMS had signed for it
    assert security.renewed_logins == 1
    assert server.stats.connections_total == 3
    assert report["chargers"]["reconnects"] == 1
    assert report["chargers"]["resets"] == 0  # a reconnection, not a reboot
    assert report["chargers"]["connect_failures"] == {}
    assert server.stats.commands_answered["CertificateSigned"] == 1
    trigger = "TriggerMessage" if ocpp == "2.0.1" else "ExtendedTriggerMessage"
    assert server.stats.commands_answered[trigger] == 1
    assert report["calls"]["SignCertificate"]["ok"] == 1
    assert report["calls"]["BootNotification"]["ok"] == 3


async def test_a_charger_without_a_signer_is_refused_its_renewal(
    nursery: trio.Nursery, lab: Lab, autojump_clock: MockClock,  # noqa: F811
) -> None:
    """No CA key: the CSMS answers SignCertificate Rejected and sends nothing more."""
    pki = lab.pki
    security = CsmsSecurity(None, renew={"CP00001"})
    server = await _serve(nursery, security, cert_file=str(pki.server_cert),
                          key_file=str(pki.server_key), client_ca=str(pki.ca_cert))
    config = RunConfig(chargers=1, duration_s=3, url=server.url, ca_file=str(pki.ca_cert),
                       client_cert=str(pki.chargers), security_profile=3)
    report = await _run(config)
    assert security.certificates_signed == 0
    assert report["chargers"]["reconnects"] == 0
    assert "SignCertificate" not in report["calls"]  # without a CA, no trigger is sent


def test_the_csms_signs_only_with_a_ca_key_and_its_certificate(lab: Lab) -> None:  # noqa: F811
    pki = lab.pki
    assert csms_security(CsmsConfig()) is None
    with pytest.raises(ConfigError, match=r"ca-key: .*--client-ca"):
        csms_security(CsmsConfig(ca_key=str(pki.ca_key)))
    with pytest.raises(ConfigError, match=r"ca-key: .* is not the key of"):
        csms_security(CsmsConfig(client_ca=str(lab.foreign.ca_cert), ca_key=str(pki.ca_key)))
    signer = csms_security(CsmsConfig(client_ca=str(pki.ca_cert), ca_key=str(pki.ca_key)))
    assert signer is not None and signer.ca is not None


@pytest.mark.parametrize("ocpp", VERSIONS)
async def test_a_new_password_is_taken_and_only_it_works_since(
    nursery: trio.Nursery, autojump_clock: MockClock, ocpp: str,
) -> None:
    new = "Rotated-0123456789abcdef"
    security = CsmsSecurity(new_passwords={"CP00001": new})
    server = await _serve(nursery, security, password="pw-{id}")
    config = RunConfig(chargers=2, duration_s=5, url=server.url, password="pw-{id}",
                       security_profile=1, charger=_spec(ocpp))
    report = await _run(config)
    assert security.passwords_changed == 1
    assert report["chargers"]["reconnects"] == 1
    assert report["chargers"]["connect_failures"] == {}
    assert server.stats.handshakes_rejected == {}
    action = "SetVariables" if ocpp == "2.0.1" else "ChangeConfiguration"
    assert server.stats.commands_answered[action] == 1
    assert new not in json.dumps(report)
    subprotocol = "ocpp2.0.1" if ocpp == "2.0.1" else "ocpp1.6"
    credentials = Credentials(server.url, password="pw-{id}")
    with pytest.raises(ConnectError) as refused:  # the old password no longer
        async with open_connection(f"{server.url}/CP00001", subprotocols=[subprotocol],
                                   headers=credentials.headers("CP00001")):
            pass
    assert refused.value.reason == "http_401"
    async with open_connection(f"{server.url}/CP00001", subprotocols=[subprotocol],
                               headers=credentials.headers("CP00001", new)):
        pass
    # the other charger's password is as it was
    async with open_connection(f"{server.url}/CP00002", subprotocols=[subprotocol],
                               headers=credentials.headers("CP00002")):
        pass


def test_the_renewed_pair_is_loaded_into_the_next_connections_context(
        lab: Lab) -> None:  # noqa: F811
    pki = lab.pki
    credentials = Credentials("wss://127.0.0.1:1/ocpp", ca_file=str(pki.ca_cert),
                              client_cert=str(pki.chargers))
    pair = ((pki.chargers / "CP00002.pem").read_bytes(),
            (pki.chargers / "CP00002.key").read_bytes())
    assert credentials.ssl_context("CP00001", pair) is not None
    with pytest.raises(ConfigError, match="client-cert: cannot load"):
        credentials.ssl_context("CP00001", (pair[0], (pki.chargers / "CP00001.key").read_bytes()))
    plain = Credentials("ws://127.0.0.1:1/ocpp")
    assert plain.ssl_context("CP00001", pair) is None
