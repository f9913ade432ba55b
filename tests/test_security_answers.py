"""The charger's answers to the security calls of both versions (the 1.6 whitepaper's and their
2.0.1 counterparts), sans-IO on a fake clock: each request shape is its official schema, each
answer and each CALL they lead to validates, and the certificate store, a renewal and a new
password do what they say."""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fleetsim.certs import CertificateAuthority
from fleetsim.charger import shapes
from fleetsim.charger.certificates import hash_data
from fleetsim.charger.core import ChargerSpec
from fleetsim.charger.security_answers import COMMANDS_16, HANDLERS_201
from fleetsim.csms.commands_16 import MIX
from fleetsim.csms.commands_201 import pick_command_201
from fleetsim.csms.security_commands import MIX_16, MIX_16_SECURITY, pick_security_command
from fleetsim.csms.signing import sign_csr
from fleetsim.ocpp import v16, v16_security, v201
from fleetsim.ocpp.frames import Call, encode_frame

from .schemas import SCHEMAS_16, schema_16, validator_16, validator_201
from .sim import Link
from .test_shapes import _same

_ids = itertools.count()
CHARGER = "CP00001"
IDLE_16 = ChargerSpec(connectors=1, idle_s=(10_000, 10_000))
IDLE_201 = ChargerSpec(connectors=1, idle_s=(10_000, 10_000), ocpp="2.0.1")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding
    return cert.public_bytes(Encoding.PEM).decode()


def _booted(spec: ChargerSpec) -> Link:
    link = Link(spec, charger_id=CHARGER, wall_offset=time.time())  # certificates: valid now
    link.connect()
    link.run_until(1.0)
    return link


def _ask(link: Link, action: str, payload: dict[str, Any], *, run: float = 0.5) -> Any:
    """Send a CSMS CALL, run the link a while, return the answer's payload (checked against
    the official schema), or the CALLERROR frame."""
    unique_id = f"csms-{next(_ids)}"
    link.send_to_charger(encode_frame(Call(unique_id, action, payload)), link.now)
    link.run_until(link.now + run)
    for _, direction, message in link.wire:
        if direction == "cp->csms" and message[0] in (3, 4) and message[1] == unique_id:
            if message[0] == 4:
                return message
            if link.spec.ocpp == "2.0.1":
                validator_201(f"{action}Response").validate(message[2])
            else:
                validator_16(f"{action}Response").validate(message[2])
            return message[2]
    raise AssertionError(f"no answer to {action}")


def _calls(link: Link, action: str) -> list[dict[str, Any]]:
    return [message[3] for _, direction, message in link.wire
            if direction == "cp->csms" and message[0] == 2 and message[2] == action]


def _all_valid(link: Link) -> None:
    """Every CALL the charger sent and every answer the CSMS gave validates."""
    pending: dict[str, str] = {}
    v2 = link.spec.ocpp == "2.0.1"
    for _, direction, message in link.wire:
        if direction == "cp->csms" and message[0] == 2:
            (validator_201(f"{message[2]}Request") if v2 else validator_16(message[2])).validate(
                message[3])
            pending[message[1]] = message[2]
        elif direction == "csms->cp" and message[0] == 3 and message[1] in pending:
            action = pending.pop(message[1])
            validator = validator_201 if v2 else validator_16
            validator(f"{action}Response").validate(message[2])


def test_the_catalogue_holds_the_whitepaper_and_every_action_is_answered() -> None:
    for action in v16_security.CHARGER_ACTIONS | v16_security.CSMS_ACTIONS:
        assert SCHEMAS_16.joinpath(f"{action}.json").is_file(), action
    assert not (v16_security.CSMS_ACTIONS & v16.CSMS_ACTIONS)
    assert set(COMMANDS_16) == v16.CSMS_ACTIONS | v16_security.CSMS_ACTIONS
    assert set(shapes.REQUESTS_16_SECURITY) == v16_security.CSMS_ACTIONS
    assert set(HANDLERS_201) == v201.CSMS_ACTIONS


@pytest.mark.parametrize("action", sorted(v16_security.CSMS_ACTIONS))
def test_a_1_6_security_shape_is_its_official_schema(action: str) -> None:
    schema = schema_16(action)
    _same(shapes.REQUESTS_16_SECURITY[action], schema, schema, action)


def test_a_bad_security_request_gets_the_callerror_and_changes_nothing(
        ca: CertificateAuthority) -> None:
    link = _booted(IDLE_16)
    error = _ask(link, "InstallCertificate", {"certificateType": "V2GRootCertificate",
                                              "certificate": _pem(ca.cert)})
    assert error[2] == "PropertyConstraintViolation"
    assert "certificateType must be one of" in error[3]
    assert link.charger.security is None


@pytest.mark.parametrize(("spec", "kind"), [(IDLE_16, "CentralSystemRootCertificate"),
                                            (IDLE_201, "CSMSRootCertificate")])
def test_ca_certificates_are_installed_listed_and_deleted(
        ca: CertificateAuthority, spec: ChargerSpec, kind: str) -> None:
    link = _booted(spec)
    v2 = spec.ocpp == "2.0.1"
    listing = {"certificateType": [kind]} if v2 else {"certificateType": kind}
    assert link.charger.security is None  # nothing until used
    assert _ask(link, "GetInstalledCertificateIds", listing) == {"status": "NotFound"}
    assert link.charger.security is None
    client, _ = ca.issue("not-a-ca")
    assert _ask(link, "InstallCertificate", {"certificateType": kind,
                                             "certificate": _pem(client)}) == {
        "status": "Rejected"}
    assert _ask(link, "InstallCertificate", {"certificateType": kind,
                                             "certificate": "garbage"}) == {"status": "Rejected"}
    assert _ask(link, "InstallCertificate", {"certificateType": kind,
                                             "certificate": _pem(ca.cert)}) == {
        "status": "Accepted"}
    expected = hash_data(ca.cert)
    assert expected["serialNumber"] == format(ca.cert.serial_number, "x")
    listed = _ask(link, "GetInstalledCertificateIds", listing)
    if v2:
        assert listed == {"status": "Accepted", "certificateHashDataChain": [
            {"certificateType": kind, "certificateHashData": expected}]}
    else:
        assert listed == {"status": "Accepted", "certificateHashData": [expected]}
    other = "ManufacturerRootCertificate"
    assert _ask(link, "GetInstalledCertificateIds",
                {"certificateType": [other]} if v2 else {"certificateType": other}) == {
        "status": "NotFound"}
    wrong = {**expected, "serialNumber": "1"}
    assert _ask(link, "DeleteCertificate", {"certificateHashData": wrong}) == {
        "status": "NotFound"}
    assert _ask(link, "DeleteCertificate", {"certificateHashData": expected}) == {
        "status": "Accepted"}
    assert _ask(link, "GetInstalledCertificateIds", listing) == {"status": "NotFound"}
    _all_valid(link)


@pytest.mark.parametrize("spec", [IDLE_16, IDLE_201], ids=["1.6", "2.0.1"])
def test_a_renewal_makes_a_csr_and_takes_only_the_certificate_made_for_it(
        ca: CertificateAuthority, spec: ChargerSpec) -> None:
    link = _booted(spec)
    v2 = spec.ocpp == "2.0.1"
    # no request pending: a certificate is refused
    signed_elsewhere, _ = ca.issue(CHARGER)
    chain = {"certificateChain": _pem(signed_elsewhere)}
    assert _ask(link, "CertificateSigned", chain) == {"status": "Rejected"}
    if v2:
        trigger = ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
    else:
        trigger = ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
    assert _ask(link, *trigger) == {"status": "Accepted"}
    [request] = _calls(link, "SignCertificate")
    assert request.get("certificateType") == ("ChargingStationCertificate" if v2 else None)
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == CHARGER
    # a certificate for another key, or for another charger, is refused
    assert _ask(link, "CertificateSigned", chain) == {"status": "Rejected"}
    assert sign_csr(ca, request["csr"], "CP00002") is None
    signed = sign_csr(ca, request["csr"], CHARGER)
    assert signed is not None
    assert _ask(link, "CertificateSigned", {"certificateChain": "not a chain"}) == {
        "status": "Rejected"}
    security = link.charger.security
    assert security is not None and security.client_pair is None
    assert _ask(link, "CertificateSigned", {"certificateChain": signed[0]}) == {
        "status": "Accepted"}
    assert security.client_serial == signed[1]
    assert security.client_pair is not None
    leaf = x509.load_pem_x509_certificates(security.client_pair[0])[0]
    assert leaf.serial_number == signed[1]
    # it reconnects, without a reboot, to use it
    assert link.charger.reconnecting and link.charger.wants_reconnect
    link.charger.disconnected(link.now)
    assert not link.charger.reconnecting
    _all_valid(link)


@pytest.mark.parametrize(("value", "status"), [
    ("0123456789abcdef", "Accepted"), ("A" * 40, "Accepted"), ("0123456789abcde", "Rejected"),
    ("A" * 41, "Rejected"), ("0123456789abcdef!", "Rejected"),
])
def test_a_new_authorization_key_is_the_next_connections_password(value: str,
                                                                   status: str) -> None:
    link = _booted(IDLE_16)
    assert _ask(link, "ChangeConfiguration", {"key": "AuthorizationKey", "value": value}) == {
        "status": status}
    security = link.charger.security
    if status == "Rejected":
        assert security is None and not link.charger.wants_reconnect
        return
    assert security is not None and security.password == value
    assert link.charger.reconnecting
    link.charger.disconnected(link.now)
    assert security.password == value  # kept for the connections to come
    # other keys are answered as before
    link.connect()
    link.run_until(link.now + 1)
    assert _ask(link, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "30"}) == {
        "status": "Accepted"}


def test_a_new_basic_auth_password_is_the_next_connections_password() -> None:
    link = _booted(IDLE_201)
    short = {"setVariableData": [{"attributeValue": "short", "component": {
        "name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}]}
    answer = _ask(link, "SetVariables", short)
    assert answer["setVariableResult"][0]["attributeStatus"] == "Rejected"
    assert link.charger.security is None
    good = {"setVariableData": [{**short["setVariableData"][0],
                                 "attributeValue": "s3cret-s3cret-s3cret"}]}
    answer = _ask(link, "SetVariables", good)
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert link.charger.security is not None
    assert link.charger.security.password == "s3cret-s3cret-s3cret"
    assert link.charger.reconnecting
    _all_valid(link)


def test_get_log_uploads_with_its_request_id() -> None:
    link = _booted(IDLE_16)
    answer = _ask(link, "GetLog", {"logType": "SecurityLog", "requestId": 7,
                                   "log": {"remoteLocation": "ftp://logs.invalid/"}}, run=10)
    assert answer["status"] == "Accepted"
    assert answer["filename"].startswith(f"security-{CHARGER}-")
    assert _calls(link, "LogStatusNotification") == [
        {"status": "Uploading", "requestId": 7}, {"status": "Uploaded", "requestId": 7}]
    assert _ask(link, "ExtendedTriggerMessage",
                {"requestedMessage": "LogStatusNotification"}) == {"status": "Accepted"}
    assert _calls(link, "LogStatusNotification")[-1] == {"status": "Idle"}
    assert _ask(link, "ExtendedTriggerMessage", {"requestedMessage": "Heartbeat"}) == {
        "status": "Accepted"}
    _all_valid(link)


def test_a_signed_firmware_update_reports_each_step_then_reboots(
        ca: CertificateAuthority) -> None:
    link = _booted(IDLE_16)
    firmware = {"location": "https://firmware.invalid/fw.bin",
                "retrieveDateTime": v16.iso_timestamp(link.now + link.charger.wall(0.0)),
                "signingCertificate": "garbage", "signature": "c2lnbmF0dXJl"}
    assert _ask(link, "SignedUpdateFirmware", {"requestId": 3, "firmware": firmware}) == {
        "status": "InvalidCertificate"}
    assert _calls(link, "SecurityEventNotification")[-1]["type"] == \
        "InvalidFirmwareSigningCertificate"
    firmware["signingCertificate"] = _pem(ca.cert)
    assert _ask(link, "SignedUpdateFirmware", {"requestId": 4, "firmware": firmware}) == {
        "status": "Accepted"}
    link.run_until(link.now + 12)
    assert link.charger.wants_reconnect and not link.charger.reconnecting  # a reboot
    link.charger.disconnected(link.now, reboot=True)
    link.connect()
    link.run_until(link.now + 2)
    assert [p["status"] for p in _calls(link, "SignedFirmwareStatusNotification")] == [
        "Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
    assert {p.get("requestId") for p in _calls(link, "SignedFirmwareStatusNotification")} == {4}
    assert _calls(link, "SecurityEventNotification")[-1]["type"] == "FirmwareUpdated"
    _all_valid(link)


def test_every_security_command_the_embedded_csms_sends_validates_and_is_answered() -> None:
    """The whitepaper's part of the CSMS's 1.6 mix: valid requests, valid answers, and the
    store fills and empties with the real CA certificate they carry."""
    rng = random.Random(2)
    link = _booted(IDLE_16)
    answers: dict[str, set[str]] = {}
    for action in ["InstallCertificate", "GetInstalledCertificateIds", "DeleteCertificate",
                   *sorted(MIX_16_SECURITY) * 3]:
        _, payload = pick_security_command(rng, link.now + link.wall_offset, action)
        validator_16(action).validate(payload)
        answer = _ask(link, action, payload, run=0.1)
        answers.setdefault(action, set()).add(str(answer.get("status")))
        if link.charger.wants_reconnect:
            link.charger.disconnected(link.now, reboot=not link.charger.reconnecting)
            link.connect()
            link.run_until(link.now + 1)
    assert set(answers) == set(MIX_16_SECURITY) == v16_security.CSMS_ACTIONS
    assert "Accepted" in answers["InstallCertificate"]
    assert "Accepted" in answers["DeleteCertificate"]
    assert answers["CertificateSigned"] == {"Rejected"}  # a key the charger never made
    assert MIX_16 == {**MIX, **MIX_16_SECURITY}
    _all_valid(link)


def test_the_2_0_1_mix_asks_for_renewals_too() -> None:
    rng = random.Random(4)
    payloads = [pick_command_201(rng, (), 0.0, action="TriggerMessage")[1] for _ in range(200)]
    renewal = {"requestedMessage": "SignChargingStationCertificate"}
    assert renewal in payloads
    validator_201("TriggerMessageRequest").validate(renewal)
    link = _booted(IDLE_201)
    assert _ask(link, "TriggerMessage", renewal) == {"status": "Accepted"}
    assert len(_calls(link, "SignCertificate")) == 1
    _all_valid(link)  # the CSMS, without a CA here, answers Rejected
