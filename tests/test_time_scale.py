"""`--time-scale` speeds up the profile's own clocks, never the intervals the CSMS sets: a
heartbeat, sampling or clock-aligned interval from the CSMS, and its boot retry interval, stay
in real seconds (sans-IO, fake clock)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

import pytest

from fleetsim.charger.core import ChargerSpec, ConnectorState
from fleetsim.ocpp.frames import Call, encode_frame

from .sim import Link

SCALE = 60.0
IDLE = ChargerSpec(connectors=1, idle_s=(10_000, 10_000), time_scale=SCALE,
                   heartbeat_default_s=300 / SCALE, meter_interval_s=60 / SCALE)
CHARGING = ChargerSpec(connectors=1, idle_s=(1, 1), session_s=(10_000, 10_000),
                       time_scale=SCALE, heartbeat_default_s=300 / SCALE,
                       meter_interval_s=60 / SCALE)


def _sent_at(link: Link, action: str, since: float = 0.0) -> list[float]:
    return [t for t, d, m in link.wire
            if d == "cp->csms" and m[0] == 2 and m[2] == action and t >= since]


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in pairwise(times)]


def _command(link: Link, action: str, payload: dict[str, Any]) -> Any:
    unique_id = f"csms-{len(link.wire)}"
    link.send_to_charger(encode_frame(Call(unique_id, action, payload)))
    link.run_until(link.now + 0.01)
    return next(m[2] for _, d, m in link.wire if d == "cp->csms" and m[1] == unique_id)


@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_the_heartbeat_interval_of_the_boot_stays_real(ocpp: Literal["1.6", "2.0.1"]) -> None:
    link = Link(ChargerSpec(connectors=1, idle_s=(10_000, 10_000), time_scale=SCALE, ocpp=ocpp),
                heartbeat_interval_s=10)
    link.connect()
    link.run_until(55)
    assert set(_gaps(_sent_at(link, "Heartbeat"))) == {10.0}


def test_a_pending_boot_is_retried_after_the_real_interval() -> None:
    link = Link(IDLE, boot_status="Pending", heartbeat_interval_s=10)
    link.connect()
    link.run_until(35)
    gaps = _gaps(_sent_at(link, "BootNotification"))  # from each answer: plus the round trip
    assert len(gaps) == 3 and gaps == pytest.approx([10.0] * 3, abs=0.01)


def test_intervals_changed_by_the_csms_stay_real_on_1_6() -> None:
    link = Link(CHARGING, heartbeat_interval_s=1000)
    link.connect()
    link.run_until(5)
    assert link.charger.connectors == [ConnectorState.CHARGING]
    for key, value in (("HeartbeatInterval", "30"), ("MeterValueSampleInterval", "20"),
                       ("ClockAlignedDataInterval", "900")):
        assert _command(link, "ChangeConfiguration", {"key": key, "value": value}) == {
            "status": "Accepted"}
    t = link.now
    link.run_until(t + 1900)
    assert set(_gaps(_sent_at(link, "Heartbeat", t))) == {30.0}
    meter = [(when, m[3]["meterValue"][0]["sampledValue"][0].get("context"))
             for when, d, m in link.wire
             if d == "cp->csms" and m[0] == 2 and m[2] == "MeterValues" and when > t + 1]
    periodic = [when for when, context in meter if context == "Sample.Periodic"]
    aligned = [when for when, context in meter if context == "Sample.Clock"]
    assert len(periodic) > 80 and max(_gaps(periodic)) <= 20.001
    assert min(_gaps(periodic)) >= 19.999
    assert len(aligned) == 2 and _gaps(aligned) == [900.0]


def test_intervals_set_by_the_csms_stay_real_on_2_0_1() -> None:
    spec = ChargerSpec(ocpp="2.0.1", connectors=1, idle_s=(1, 1), session_s=(10_000, 10_000),
                       time_scale=SCALE, heartbeat_default_s=300 / SCALE,
                       meter_interval_s=60 / SCALE)
    link = Link(spec, heartbeat_interval_s=1000)
    link.connect()
    link.run_until(5)
    assert link.charger.connectors == [ConnectorState.CHARGING]
    answer = _command(link, "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "30"},
        {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"},
         "attributeValue": "20"},
        {"component": {"name": "AlignedDataCtrlr"}, "variable": {"name": "Interval"},
         "attributeValue": "900"}]})
    assert {r["attributeStatus"] for r in answer["setVariableResult"]} == {"Accepted"}
    t = link.now
    link.run_until(t + 1900)
    assert set(_gaps(_sent_at(link, "Heartbeat", t))) == {30.0}
    updates = [when for when, d, m in link.wire if d == "cp->csms" and m[0] == 2
               and m[2] == "TransactionEvent" and when > t + 1
               and m[3]["triggerReason"] == "MeterValuePeriodic"]
    assert len(updates) > 80 and set(_gaps(updates)) == {20.0}
    aligned = _sent_at(link, "MeterValues", t + 1)
    assert len(aligned) == 2 and _gaps(aligned) == [900.0]
