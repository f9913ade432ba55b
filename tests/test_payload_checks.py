"""What a CSMS should not send is refused before it changes anything, in both versions, and
what is accepted, however extreme, never breaks the charger later (sans-IO, fake clock).

Regressions of issue 12: SetChargingProfile with `numberPhases: null` or `[3]` raised out of the
charger; `duration: "forever"` and `limit: -1e300` were accepted and then broke every meter
sample; a 400-digit interval in ChangeConfiguration raised OverflowError.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import orjson
import pytest

from fleetsim.charger import answers_16, security_answers
from fleetsim.charger.core import ChargerSpec
from fleetsim.charger.shapes import MAX_RATE, Number, Violation
from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import ErrorCode

from .schemas import validator_16, validator_201
from .sim import WALL_OFFSET, Link

SPEC_16 = ChargerSpec(connectors=2, meter_interval_s=10, session_s=(600, 600), idle_s=(5, 5),
                      power_w=(22_000, 22_000))
SPEC_201 = attrs.evolve(SPEC_16, ocpp="2.0.1")
HOURS = 3600.0
INT32_MAX = 2**31 - 1


def booted(spec: ChargerSpec, until: float = 20.0) -> Link:
    """A charger whose connectors are both charging by `until`."""
    link = Link(spec)
    link.connect()
    link.run_until(until)
    return link


def call(link: Link, action: str, payload: dict[str, Any]) -> list[Any]:
    """The charger's answer frame to a CSMS CALL, handled at this very instant."""
    unique_id = f"csms-{len(link.wire)}"
    link.send_to_charger(orjson.dumps([2, unique_id, action, payload]).decode())
    link.run_until(link.now)
    answers = [msg for _, d, msg in link.wire if d == "cp->csms" and msg[1] == unique_id]
    assert len(answers) == 1, answers
    return answers[0]


def state(link: Link) -> tuple[object, ...]:
    """Everything a CSMS command can change."""
    core = link.charger
    model = core.device_model
    return (core.charging_profiles(), core.config.get(None), core.local_list.version,
            dict(core.local_list.entries), None if model is None else model.changes(),
            core.connectors, core.transaction_ids, core.queued, core.next_deadline(),
            core.state)


def refused(link: Link, action: str, payload: dict[str, Any]) -> str:
    """The CALLERROR code a payload gets; the charger is left as it was."""
    before = state(link)
    answer = call(link, action, payload)
    assert answer[0] == 4, answer
    assert state(link) == before
    return str(answer[2])


def sampled_power(link: Link, after: float = 0.0) -> list[float]:
    """Every Power.Active.Import value the charger reported, in either version."""
    values = []
    for when, direction, msg in link.wire:
        if direction != "cp->csms" or msg[0] != 2 or when < after:
            continue
        payload = msg[3]
        if msg[2] not in ("MeterValues", "TransactionEvent"):
            continue
        for reading in payload.get("meterValue", ()):
            for sample in reading["sampledValue"]:
                if sample.get("measurand") == "Power.Active.Import":
                    values.append(float(sample["value"]))
    return values


def energy_registers(link: Link) -> dict[object, list[float]]:
    """Energy.Active.Import.Register readings per connector (MeterValues) or transaction
    (TransactionEvent)."""
    registers: dict[object, list[float]] = {}
    for _, direction, msg in link.wire:
        if direction != "cp->csms" or msg[0] != 2 or msg[2] not in ("MeterValues",
                                                                   "TransactionEvent"):
            continue
        payload = msg[3]
        key = payload.get("connectorId", payload.get("evseId")) if msg[2] == "MeterValues" \
            else payload["transactionInfo"]["transactionId"]
        for reading in payload.get("meterValue", ()):
            for sample in reading["sampledValue"]:
                if sample.get("measurand", "Energy.Active.Import.Register") == \
                        "Energy.Active.Import.Register":
                    registers.setdefault(key, []).append(float(sample["value"]))
    return registers


def assert_healthy(link: Link) -> None:
    """Every sample sane, every register rising, nothing went wrong inside."""
    power = sampled_power(link)
    assert power, "no power samples"
    assert all(math.isfinite(p) and 0 <= p < 1e7 for p in power), power[:5]  # demand wanders
    for key, values in energy_registers(link).items():
        assert all(math.isfinite(v) and v >= 0 for v in values), key
        assert values == sorted(values), key
    assert not link.metrics.internal_errors


def profile_16(period: dict[str, Any] | None = None, **schedule: Any) -> dict[str, Any]:
    return {"chargingProfileId": 1, "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0, **(period or {})}], **schedule}}


def profile_201(period: dict[str, Any] | None = None, **schedule: Any) -> dict[str, Any]:
    return {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": [{
                "id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 16.0, **(period or {})}], **schedule}]}


BAD_PROFILES: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"numberPhases": None}, {}, "TypeConstraintViolation"),
    ({"numberPhases": [3]}, {}, "TypeConstraintViolation"),
    ({"numberPhases": True}, {}, "TypeConstraintViolation"),
    ({"numberPhases": 4}, {}, "PropertyConstraintViolation"),
    ({"numberPhases": 0}, {}, "PropertyConstraintViolation"),
    ({}, {"duration": "forever"}, "TypeConstraintViolation"),
    ({}, {"duration": 3600.5}, "TypeConstraintViolation"),
    ({}, {"duration": -1}, "PropertyConstraintViolation"),
    ({"limit": -1e300}, {}, "PropertyConstraintViolation"),
    ({"limit": -1}, {}, "PropertyConstraintViolation"),
    ({"limit": 1e300}, {}, "PropertyConstraintViolation"),
    ({"limit": "16"}, {}, "TypeConstraintViolation"),
    ({"startPeriod": 1.5}, {}, "TypeConstraintViolation"),
    ({"startPeriod": -60}, {}, "PropertyConstraintViolation"),
    ({}, {"startSchedule": "tomorrow"}, "PropertyConstraintViolation"),
    ({}, {"startSchedule": 1_764_000_000}, "TypeConstraintViolation"),
]


@pytest.mark.parametrize(("period", "schedule", "code"), BAD_PROFILES)
def test_a_bad_1_6_charging_profile_is_refused_and_changes_nothing(
        period: dict[str, Any], schedule: dict[str, Any], code: str) -> None:
    link = booted(SPEC_16)
    for connector_id in (0, 1):
        assert refused(link, "SetChargingProfile", {
            "connectorId": connector_id,
            "csChargingProfiles": profile_16(period, **schedule)}) == code
    link.run_until(link.now + 2 * HOURS)
    assert link.charger.charging_profiles() == []
    assert_healthy(link)


_V201_CODES = {"FormationViolation": "FormatViolation"}


@pytest.mark.parametrize(("period", "schedule", "code"), BAD_PROFILES)
def test_a_bad_2_0_1_charging_profile_is_refused_and_changes_nothing(
        period: dict[str, Any], schedule: dict[str, Any], code: str) -> None:
    link = booted(SPEC_201)
    for evse_id in (0, 1):
        assert refused(link, "SetChargingProfile", {
            "evseId": evse_id, "chargingProfile": profile_201(period, **schedule)}) == code
    link.run_until(link.now + 2 * HOURS)
    assert link.charger.charging_profiles() == []
    assert_healthy(link)


def test_the_same_profile_with_sane_values_is_accepted_in_both_versions() -> None:
    """The refusals above are about the values, not the shape of the profiles."""
    link = booted(SPEC_16)
    answer = call(link, "SetChargingProfile", {"connectorId": 1,
                                               "csChargingProfiles": profile_16()})
    assert answer[2] == {"status": "Accepted"}
    link = booted(SPEC_201)
    answer = call(link, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile_201()})
    assert answer[2] == {"status": "Accepted"}


@pytest.mark.parametrize("key", ["HeartbeatInterval", "MeterValueSampleInterval",
                                 "ClockAlignedDataInterval"])
@pytest.mark.parametrize("value", ["9" * 400, str(2**31), "-1", "1e3", "٣٠", " 30", "30s"])
def test_an_absurd_1_6_interval_is_rejected_and_changes_nothing(key: str, value: str) -> None:
    link = booted(SPEC_16)
    before = state(link)
    answer = call(link, "ChangeConfiguration", {"key": key, "value": value})
    assert answer[2] == {"status": "Rejected"}
    assert state(link) == before
    link.run_until(link.now + HOURS)
    assert_healthy(link)


@pytest.mark.parametrize(("component", "variable"), [
    ("OCPPCommCtrlr", "HeartbeatInterval"), ("SampledDataCtrlr", "TxUpdatedInterval"),
    ("AlignedDataCtrlr", "Interval")])
@pytest.mark.parametrize("value", ["9" * 400, str(2**31), "-1", "1e3"])
def test_an_absurd_2_0_1_interval_is_rejected_and_changes_nothing(
        component: str, variable: str, value: str) -> None:
    link = booted(SPEC_201)
    before = state(link)
    answer = call(link, "SetVariables", {"setVariableData": [{
        "component": {"name": component}, "variable": {"name": variable},
        "attributeValue": value}]})
    assert answer[2]["setVariableResult"][0]["attributeStatus"] == "Rejected"
    assert state(link) == before
    link.run_until(link.now + HOURS)
    assert_healthy(link)


def configuration_value(link: Link, key: str) -> str:
    answer = call(link, "GetConfiguration", {"key": [key]})
    value: str = answer[2]["configurationKey"][0]["value"]
    return value


@pytest.mark.parametrize(("key", "value"), [
    ("HeartbeatInterval", "1"), ("HeartbeatInterval", str(INT32_MAX)),
    ("MeterValueSampleInterval", "1"), ("MeterValueSampleInterval", str(INT32_MAX)),
    ("ClockAlignedDataInterval", "0"), ("ClockAlignedDataInterval", "1"),
    ("ClockAlignedDataInterval", str(INT32_MAX))])
def test_1_6_intervals_at_the_edges_are_accepted_and_the_charger_lives_on(
        key: str, value: str) -> None:
    link = booted(SPEC_16)
    assert call(link, "ChangeConfiguration", {"key": key, "value": value})[2] == {
        "status": "Accepted"}
    assert configuration_value(link, key) == value
    link.run_until(link.now + HOURS)
    assert_healthy(link)
    assert configuration_value(link, key) == value


def test_an_interval_is_stored_as_the_number_it_is() -> None:
    link = booted(SPEC_16)
    assert call(link, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "+0030"})[
        2] == {"status": "Accepted"}
    assert configuration_value(link, "HeartbeatInterval") == "30"


def iso(wall: float) -> str:
    return v16.iso_timestamp(wall)


def edge_profiles_16(now_wall: float) -> list[tuple[int, dict[str, Any]]]:
    """Profiles at the edges of what is accepted: zero and huge limits, the longest durations
    and periods, the earliest and latest dates, every kind."""
    def profile(pid: int, purpose: str, kind: str, periods: list[dict[str, Any]],
                **extra: Any) -> dict[str, Any]:
        schedule = {"chargingRateUnit": extra.pop("unit", "W"),
                    "chargingSchedulePeriod": periods}
        for key in ("duration", "startSchedule", "minChargingRate"):
            if key in extra:
                schedule[key] = extra.pop(key)
        return {"chargingProfileId": pid, "stackLevel": extra.pop("stack", 0),
                "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
                "chargingSchedule": schedule, **extra}

    return [
        (0, profile(1, "ChargePointMaxProfile", "Absolute", [
            {"startPeriod": 0, "limit": 1e9}, {"startPeriod": INT32_MAX, "limit": 0}],
            duration=INT32_MAX, minChargingRate=1e9)),
        (0, profile(2, "TxDefaultProfile", "Recurring", [
            {"startPeriod": 0, "limit": 0.1, "numberPhases": 1},
            {"startPeriod": 3600, "limit": 1e9, "numberPhases": 3}],
            unit="A", recurrencyKind="Weekly", startSchedule="0001-01-01T00:00:00Z",
            validFrom="0001-01-01T00:00:00+23:59", validTo="9999-12-31T23:59:59-23:59",
            duration=0, stack=1)),
        (1, profile(3, "TxDefaultProfile", "Relative", [
            {"startPeriod": 0, "limit": 0}, {"startPeriod": 60, "limit": 7000}],
            duration=INT32_MAX, stack=2)),
        (2, profile(4, "TxProfile", "Absolute", [{"startPeriod": 0, "limit": 0.0}],
                    startSchedule=iso(now_wall + 1800), duration=1, stack=8)),
        (2, profile(5, "TxDefaultProfile", "Recurring", [{"startPeriod": 0, "limit": 5000}],
                    recurrencyKind="Daily", startSchedule="9999-12-31T23:59:59Z", stack=3)),
    ]


def test_1_6_profiles_at_the_edges_are_accepted_and_every_sample_stays_sane() -> None:
    link = booted(SPEC_16)
    for connector_id, profile in edge_profiles_16(link.now + WALL_OFFSET):
        request = {"connectorId": connector_id, "csChargingProfiles": profile}
        validator_16("SetChargingProfile").validate(request)
        assert call(link, "SetChargingProfile", request)[2] == {"status": "Accepted"}, profile
    start = link.now
    link.run_until(link.now + 3 * HOURS)
    assert_healthy(link)
    assert len(sampled_power(link, start)) > 100
    for connector_id in (0, 1, 2):
        for unit in ("A", "W"):
            answer = call(link, "GetCompositeSchedule", {
                "connectorId": connector_id, "duration": INT32_MAX, "chargingRateUnit": unit})
            validator_16("GetCompositeScheduleResponse").validate(answer[2])
            assert answer[2]["status"] == "Accepted"


def test_2_0_1_profiles_at_the_edges_are_accepted_and_every_sample_stays_sane() -> None:
    link = booted(SPEC_201)
    for evse_id, v16_profile in edge_profiles_16(link.now + WALL_OFFSET):
        schedule = {"id": 1, **v16_profile["chargingSchedule"]}
        profile = {"id": v16_profile["chargingProfileId"],
                   "stackLevel": v16_profile["stackLevel"],
                   "chargingProfilePurpose": v16_profile["chargingProfilePurpose"].replace(
                       "ChargePoint", "ChargingStation"),
                   "chargingProfileKind": v16_profile["chargingProfileKind"],
                   "chargingSchedule": [schedule]}
        for key in ("recurrencyKind", "validFrom", "validTo"):
            if key in v16_profile:
                profile[key] = v16_profile[key]
        request = {"evseId": evse_id, "chargingProfile": profile}
        validator_201("SetChargingProfileRequest").validate(request)
        assert call(link, "SetChargingProfile", request)[2] == {"status": "Accepted"}, profile
    start = link.now
    link.run_until(link.now + 3 * HOURS)
    assert_healthy(link)
    assert len(sampled_power(link, start)) > 100
    for evse_id in (0, 1, 2):
        answer = call(link, "GetCompositeSchedule", {"evseId": evse_id, "duration": INT32_MAX})
        validator_201("GetCompositeScheduleResponse").validate(answer[2])
        assert answer[2]["status"] == "Accepted"


@pytest.mark.parametrize("spec", [SPEC_16, SPEC_201], ids=["1.6", "2.0.1"])
@pytest.mark.parametrize("interval", [2**31, 2**40, 2**63 - 1])
def test_a_boot_interval_beyond_32_bits_is_ignored(spec: ChargerSpec, interval: int) -> None:
    """The CSMS's answer to BootNotification is CSMS input too: an interval no charger can
    hold leaves the default heartbeat in place."""
    link = Link(spec, heartbeat_interval_s=interval)
    link.connect()
    link.run_until(2 * spec.heartbeat_default_s + 1)
    assert link.charger.booted
    assert link.sent_actions().count("Heartbeat") == 2
    assert not link.metrics.internal_errors


def test_get_configuration_with_an_empty_key_list_returns_every_key() -> None:
    link = booted(SPEC_16)
    everything = call(link, "GetConfiguration", {})[2]
    assert len(everything["configurationKey"]) > 20
    assert call(link, "GetConfiguration", {"key": []})[2] == everything


def tx_default(periods: list[tuple[int, float]], start_wall: float, *, unit: str = "A",
               kind: str = "Absolute", **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"chargingRateUnit": unit, "chargingSchedulePeriod": [
        {"startPeriod": start, "limit": limit} for start, limit in periods]}
    if kind != "Relative":
        schedule["startSchedule"] = iso(start_wall)
    return {"chargingProfileId": 9, "stackLevel": 0, "chargingProfilePurpose":
            "TxDefaultProfile", "chargingProfileKind": kind, "chargingSchedule": schedule,
            **extra}


def composite(link: Link, connector_id: int, duration: int, unit: str) -> dict[str, Any]:
    answer = call(link, "GetCompositeSchedule", {"connectorId": connector_id,
                                                 "duration": duration,
                                                 "chargingRateUnit": unit})
    assert answer[0] == 3, answer
    validator_16("GetCompositeScheduleResponse").validate(answer[2])
    result: dict[str, Any] = answer[2]
    return result


def test_1_6_composite_schedule_follows_the_installed_profile() -> None:
    link = booted(SPEC_16)
    wall = link.now + WALL_OFFSET
    assert call(link, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": tx_default(
        [(0, 16.0), (600, 10.0), (1200, 6.0)], wall)})[2] == {"status": "Accepted"}
    amps = composite(link, 1, 1800, "A")
    assert amps["connectorId"] == 1 and amps["scheduleStart"] == iso(wall)
    assert amps["chargingSchedule"] == {
        "duration": 1800, "startSchedule": iso(wall), "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0},
                                   {"startPeriod": 600, "limit": 10.0},
                                   {"startPeriod": 1200, "limit": 6.0}]}
    watts = composite(link, 1, 900, "W")["chargingSchedule"]
    assert watts["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16 * 690.0},
                                               {"startPeriod": 600, "limit": 10 * 690.0}]
    assert watts["duration"] == 900
    # connector 2 has no profile: the charger's own maximum, held all along
    assert composite(link, 2, 1800, "W")["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 22_000.0}]
    assert call(link, "GetCompositeSchedule", {"connectorId": 3, "duration": 60})[2] == {
        "status": "Rejected"}


def test_1_6_composite_schedule_of_a_relative_profile_counts_from_the_transaction() -> None:
    link = booted(SPEC_16)
    started = 7.0  # connectors charge from a few seconds after the boot
    profile = tx_default([(0, 16.0), (3600, 8.0)], 0.0, kind="Relative")
    assert call(link, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile})[
        2] == {"status": "Accepted"}
    periods = composite(link, 1, 7200, "A")["chargingSchedule"]["chargingSchedulePeriod"]
    assert [p["limit"] for p in periods] == [16.0, 8.0]
    assert abs(periods[1]["startPeriod"] - (3600 - (link.now - started))) <= 15


def test_1_6_composite_schedule_is_cut_at_the_periods_a_schedule_may_hold() -> None:
    link = booted(SPEC_16)
    daily = tx_default([(0, 10.0), (43_200, 20.0)], link.now + WALL_OFFSET, kind="Recurring",
                       recurrencyKind="Daily")
    assert call(link, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": daily})[
        2] == {"status": "Accepted"}
    schedule = composite(link, 1, 30 * 86_400, "A")["chargingSchedule"]
    periods = schedule["chargingSchedulePeriod"]
    assert len(periods) == answers_16.MAX_COMPOSITE_PERIODS
    assert [p["limit"] for p in periods[:4]] == [10.0, 20.0, 10.0, 20.0]
    assert schedule["duration"] == answers_16.MAX_COMPOSITE_PERIODS * 43_200


def test_2_0_1_composite_schedule_follows_the_installed_profile() -> None:
    link = booted(SPEC_201)
    wall = link.now + WALL_OFFSET
    profile = {"id": 3, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Absolute", "chargingSchedule": [{
                   "id": 1, "chargingRateUnit": "W", "startSchedule": iso(wall),
                   "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11_000},
                                              {"startPeriod": 300, "limit": 4_000}]}]}
    assert call(link, "SetChargingProfile", {"evseId": 2, "chargingProfile": profile})[2] == {
        "status": "Accepted"}
    answer = call(link, "GetCompositeSchedule", {"evseId": 2, "duration": 600})
    validator_201("GetCompositeScheduleResponse").validate(answer[2])
    assert answer[2]["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 11_000.0}, {"startPeriod": 300, "limit": 4_000.0}]


@pytest.mark.parametrize("spec", [SPEC_16, SPEC_201], ids=["1.6", "2.0.1"])
def test_a_handler_that_fails_is_answered_counted_and_survived(
        spec: ChargerSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last resort for a bug in a handler: InternalError, an internal_errors entry, and
    the charger goes on as before."""
    def broken(core: object, payload: dict[str, Any], now: float) -> dict[str, Any]:
        raise KeyError("oops")

    table = security_answers.HANDLERS_201 if spec.ocpp == "2.0.1" else \
        security_answers.COMMANDS_16  # what the core dispatches from
    monkeypatch.setitem(table, "ClearCache", broken)
    link = booted(spec)
    answer = call(link, "ClearCache", {})
    assert answer[0] == 4 and answer[2] == "InternalError"
    assert link.metrics.internal_errors == {"ClearCache: KeyError: 'oops'": 1}
    assert link.metrics.csms_calls["ClearCache"].callerror_sent == {"InternalError": 1}
    assert call(link, "GetLocalListVersion", {})[0] == 3
    sent = len(link.sent_actions())
    link.run_until(link.now + 600)
    assert len(link.sent_actions()) > sent


def test_a_number_no_float_can_hold_is_out_of_range_not_a_crash() -> None:
    """orjson turns such a number on the wire into a bad frame, but a payload built in
    Python (the library API, a test CSMS) must get the same CALLERROR as -1e300."""
    with pytest.raises(Violation) as caught:
        Number(0, MAX_RATE).check(10**400, "limit")
    assert caught.value.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
