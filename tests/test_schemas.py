"""Every message fleetsim sends, and every answer the embedded CSMS gives, checked against the
official OCPP 1.6 JSON schemas shipped by the `ocpp` package (an independent oracle)."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from fleetsim.behaviour.profile import load_profile, shipped_profiles
from fleetsim.charger.core import ChargerSpec
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.csms.commands_16 import MIX, pick_command
from fleetsim.ocpp import v16, v16_security
from fleetsim.ocpp.frames import Call, CallResult

from .schemas import SCHEMAS_16, validator_16
from .sim import Link


def _traffic() -> list[tuple[str, list[Any]]]:
    """A few hours of life for chargers of several shapes, with a CSMS that sometimes stalls."""
    wire: list[tuple[str, list[Any]]] = []
    for seed, spec in enumerate([
        ChargerSpec(connectors=1, session_s=(30, 600), idle_s=(1, 60)),
        ChargerSpec(connectors=4, meter_interval_s=5, session_s=(10, 100), idle_s=(0, 5),
                    call_timeout_s=3),
    ]):
        link = Link(spec, seed=seed, heartbeat_interval_s=120)
        link.csms_delay = lambda call: 5.0 if int(call.unique_id) % 50 == 0 else 0.01
        link.connect()
        link.run_until(3 * 3600)
        link.charger.finish()
        wire += [(direction, msg) for _, direction, msg in link.wire]
    for path in shipped_profiles():  # measurands, SuspendedEV, Sample.Clock, DataTransfer...
        profile = load_profile(path)
        for seed, behaviour in enumerate(profile.behaviour):
            link = Link(behaviour.charger_spec(profile.event, time_scale=30), seed=seed,
                        heartbeat_interval_s=300)
            link.connect()
            link.run_until(3600 if behaviour.sessions.arrivals_per_hour < 10 else 300)
            link.charger.finish()
            wire += [(direction, msg) for _, direction, msg in link.wire]
    return wire


def test_every_charger_call_and_csms_answer_validates() -> None:
    wire = _traffic()
    pending: dict[str, str] = {}
    checked: dict[str, int] = {}
    for direction, msg in wire:
        if direction == "cp->csms" and msg[0] == 2:
            _, unique_id, action, payload = msg
            validator_16(action).validate(payload)
            pending[unique_id] = action
            checked[action] = checked.get(action, 0) + 1
        elif direction == "csms->cp" and msg[0] == 3:
            action = pending.pop(msg[1])
            validator_16(f"{action}Response").validate(msg[2])
            checked[f"{action}Response"] = checked.get(f"{action}Response", 0) + 1
    sent = {"Authorize", "BootNotification", "DataTransfer", "Heartbeat", "MeterValues",
            "StartTransaction", "StatusNotification", "StopTransaction"}
    assert sent <= checked.keys()
    assert {f"{a}Response" for a in sent} <= checked.keys()
    assert min(checked[action] for action in sent - {"BootNotification"}) >= 10
    payloads = [msg[3] for direction, msg in wire if direction == "cp->csms" and msg[0] == 2]
    statuses = {p.get("status") for p in payloads if "errorCode" in p}
    assert {"Available", "Preparing", "Charging", "SuspendedEV", "Finishing"} <= statuses
    sampled = [value for p in payloads for reading in p.get("meterValue", ())
               for value in reading["sampledValue"]]
    assert {value["measurand"] for value in sampled} == set(v16.MEASURANDS)
    assert {value["context"] for value in sampled} >= {"Sample.Periodic", "Sample.Clock"}


def test_csms_action_catalogue_matches_the_official_schemas() -> None:
    schemas = SCHEMAS_16
    for action in v16.CHARGER_ACTIONS | v16.CSMS_ACTIONS:
        assert schemas.joinpath(f"{action}.json").is_file(), action
    assert len(v16.CHARGER_ACTIONS) == 10
    assert len(v16.CSMS_ACTIONS) == 19


@pytest.mark.parametrize(("action", "bad"), [
    ("Authorize", {"idTag": "x" * 21}),
    ("Authorize", {}),
    ("Heartbeat", {"extra": 1}),
    ("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available",
                            "timestamp": "yesterday"}),
])
def test_the_oracle_can_fail(action: str, bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator_16(action).validate(bad)


MINIMAL_CALLS: dict[str, dict[str, Any]] = {
    "Authorize": {"idTag": "T1"},
    "BootNotification": {"chargePointVendor": "v", "chargePointModel": "m"},
    "DataTransfer": {"vendorId": "fleetsim"},
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "Heartbeat": {},
    "MeterValues": {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-01-01T00:00:00.000Z", "sampledValue": [{"value": "1"}]}]},
    "StartTransaction": {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                         "timestamp": "2026-01-01T00:00:00.000Z"},
    "StatusNotification": {"connectorId": 0, "errorCode": "NoError", "status": "Available"},
    "StopTransaction": {"meterStop": 10, "timestamp": "2026-01-01T00:00:00.000Z",
                        "transactionId": 1},
    "LogStatusNotification": {"status": "Uploaded", "requestId": 1},
    "SecurityEventNotification": {"type": "FirmwareUpdated",
                                  "timestamp": "2026-01-01T00:00:00.000Z"},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "SignedFirmwareStatusNotification": {"status": "Installed", "requestId": 1},
}


@pytest.mark.parametrize("action", sorted(v16.CHARGER_ACTIONS | v16_security.CHARGER_ACTIONS))
def test_the_embedded_csms_answers_every_charger_action_validly(action: str) -> None:
    stats = CsmsStats()
    csms = CsmsCore(stats)
    payload = MINIMAL_CALLS[action]
    validator_16(action).validate(payload)
    answer = csms.answer(Call("1", action, payload), 1_764_000_000.0)
    assert isinstance(answer, CallResult), answer
    validator_16(f"{action}Response").validate(answer.payload)
    assert stats.received[action] == stats.answered[action] == 1


def test_every_command_the_embedded_csms_sends_validates() -> None:
    rng = random.Random(5)
    seen = set()
    for n in range(3000):
        action, payload = pick_command(rng, {17, 42} if n % 2 else set(), 1_764_000_000.0)
        validator_16(action).validate(payload)
        seen.add(action)
    assert seen == set(MIX)
    assert set(MIX) == v16.CSMS_ACTIONS
