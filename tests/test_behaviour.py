"""Behaviour schedules on a simulated clock: rates, distributions, clock alignment, time scale,
determinism, and what a charger keeps and sends again across a lost connection."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections import Counter
from datetime import datetime
from typing import Any

import attrs
import pytest

from fleetsim import Backoff, Behaviour, Distribution, Sessions, estimate_rate, load_profile
from fleetsim.behaviour.profile import (
    MeterBurst,
    ReconnectStorm,
    Seconds,
    SessionSurge,
    shipped_profiles,
)
from fleetsim.behaviour.schedule import Surge, assign_behaviours, next_aligned, next_poisson
from fleetsim.charger.core import ChargerSpec
from fleetsim.metrics import Metrics

from .sim import WALL_OFFSET, Link
from .test_commands import command


def _within_sigmas(observed: float, expected: float, sigmas: float = 4.0) -> bool:
    """A Poisson count within `sigmas` standard deviations of its mean."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected)


def _arrivals(rate: float, hours: float, seed: int, surges: tuple[Surge, ...] = ()) -> list[float]:
    rng = random.Random(seed)
    times: list[float] = []
    t = 0.0
    while True:
        t = next_poisson(t, rate, rng, surges)
        if t > hours * 3600:
            return times
        times.append(t)


def test_poisson_arrivals_have_the_rate_and_exponential_gaps() -> None:
    rate = 2 / 3600
    times = _arrivals(rate, 20_000, seed=1)
    assert _within_sigmas(len(times), rate * 20_000 * 3600)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.fmean(gaps) == pytest.approx(1800, rel=0.03)
    # exponential: the share of gaps under the mean is 1 - 1/e
    assert sum(gap < 1800 for gap in gaps) / len(gaps) == pytest.approx(1 - 1 / math.e, abs=0.01)


def test_a_surge_multiplies_the_rate_inside_its_window_only() -> None:
    rate = 10 / 3600
    surge = Surge(start_s=1000 * 3600, end_s=2000 * 3600, factor=3.0)
    times = _arrivals(rate, 3000, seed=2, surges=(surge,))
    inside = sum(surge.start_s <= t < surge.end_s for t in times)
    assert _within_sigmas(inside, 3 * 10 * 1000)
    assert _within_sigmas(len(times) - inside, 10 * 2000)
    assert _arrivals(rate, 10, seed=2, surges=(Surge(0, 36_000, 0.0),)) == []


def test_distributions_sample_their_shape_and_clamp() -> None:
    rng = random.Random(3)
    lognormal = Distribution("lognormal", mean=3600, sd=1800)
    samples = [lognormal.sample(rng) for _ in range(40_000)]
    assert statistics.fmean(samples) == pytest.approx(3600, rel=0.03)
    assert statistics.stdev(samples) == pytest.approx(1800, rel=0.06)
    clamped = Distribution("normal", mean=40, sd=30, low=5, high=90)
    values = [clamped.sample(rng) for _ in range(5000)]
    assert min(values) == 5 and max(values) == 90
    assert Distribution("fixed", 7).sample(rng) == 7
    uniform = [Distribution("uniform", low=1, high=2).sample(rng) for _ in range(1000)]
    assert 1 <= min(uniform) < 1.05 and 1.95 < max(uniform) <= 2
    for bad in ({"kind": "uniform", "low": 1}, {"kind": "normal", "mean": 1},
                {"kind": "exponential"}, {"kind": "fixed", "low": 5, "high": 1}):
        with pytest.raises(ValueError):
            Distribution(**bad)


def test_assignment_gives_exact_shares_and_depends_only_on_the_seed() -> None:
    labels = assign_behaviours([60, 30, 10], 5001, seed=7)
    assert Counter(labels) == {0: 3001, 1: 1500, 2: 500}
    assert labels == assign_behaviours([60, 30, 10], 5001, seed=7)
    assert labels != assign_behaviours([60, 30, 10], 5001, seed=8)
    assert Counter(assign_behaviours([1, 1, 1], 2, seed=0)) == {0: 1, 1: 1}


def test_backoff_policies() -> None:
    rng = random.Random(0)
    assert Backoff("none").delay(5, rng) == 0
    fixed = [Backoff("fixed", 2, 1).delay(n, rng) for n in range(10)]
    assert all(2 <= d <= 3 for d in fixed)
    exponential = Backoff("exponential", 1, 0, repeat_times=3)
    assert [exponential.delay(n, rng) for n in range(6)] == [1, 2, 4, 8, 8, 8]


def _run(spec: ChargerSpec, hours: float, seed: int = 1, heartbeat: int = 300,
         latency: float = 0.001) -> Link:
    link = Link(spec, seed=seed, heartbeat_interval_s=heartbeat, latency=latency)
    link.connect()
    link.run_until(hours * 3600)
    return link


def _calls(link: Link, action: str) -> list[tuple[float, dict[str, Any]]]:
    return [(t, msg[3]) for t, direction, msg in link.wire
            if direction == "cp->csms" and msg[0] == 2 and msg[2] == action]


COMMUTER = Behaviour(
    name="commuter", weight=1, connectors=2, max_power_kw=11,
    meter_interval=60, clock_aligned_interval=900,  # type: ignore[arg-type]
    sessions=Sessions(arrivals_per_hour=0.5,
                      duration=Distribution("lognormal", mean=3 * 3600, sd=2 * 3600, low=900,
                                            high=36_000),
                      energy_kwh=Distribution("uniform", low=5, high=30)))


def test_a_behaviour_stream_has_its_rates_and_distributions() -> None:
    links = [_run(COMMUTER.charger_spec(), hours=300, seed=seed) for seed in range(3)]
    hours = 3 * 300
    expected = estimate_rate(COMMUTER, 300)
    for action in ("StartTransaction", "StopTransaction", "Heartbeat"):
        count = sum(len(_calls(link, action)) for link in links)
        assert _within_sigmas(count, expected[action] * hours), action
    stays = []
    for link in links:
        began: dict[int, float] = {}
        for t, direction, message in link.wire:
            if direction != "cp->csms" or message[0] != 2:
                continue
            action, payload = message[2], message[3]
            if action == "StartTransaction":
                began[payload["connectorId"]] = t
            elif (action == "StatusNotification" and payload["status"] == "Finishing"
                  and payload["connectorId"] in began):
                stays.append(t - began.pop(payload["connectorId"]))
    # lognormal 3 h +- 2 h clamped to 15 min .. 10 h
    assert min(stays) >= 900 and max(stays) <= 36_000 + 1
    assert statistics.fmean(stays) == pytest.approx(COMMUTER.sessions.duration.expected, rel=0.1)
    suspended = sum(1 for link in links for _, p in _calls(link, "StatusNotification")
                    if p["status"] == "SuspendedEV")
    stops = sum(len(_calls(link, "StopTransaction")) for link in links)
    assert 0.6 * stops <= suspended <= stops  # most stays outlast the energy they need


def test_session_energy_reaches_its_target_then_the_ev_is_suspended() -> None:
    spec = attrs.evolve(COMMUTER, sessions=Sessions(
        arrivals_per_hour=0.2, duration=Distribution("fixed", 4 * 3600),
        energy_kwh=Distribution("uniform", low=5, high=30))).charger_spec()
    link = _run(spec, hours=400)
    begun = [p["meterStart"] for _, p in _calls(link, "StartTransaction")]
    ended = [p["meterStop"] for _, p in _calls(link, "StopTransaction")]
    delivered = [stop - start for start, stop in zip(begun, ended, strict=False)]
    assert len(delivered) > 30
    # 4 h at up to 11 kW is always enough for 30 kWh: every session delivers its whole target
    assert all(5_000 <= wh <= 30_000 for wh in delivered)
    assert statistics.fmean(delivered) == pytest.approx(17_500, rel=0.15)


def test_meter_values_follow_the_interval_and_carry_the_measurands() -> None:
    measurands = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
                  "Voltage", "SoC", "Temperature")
    behaviour = Behaviour(name="dc", weight=1, connectors=1, max_power_kw=150,
                          meter_interval=10, measurands=measurands,  # type: ignore[arg-type]
                          sessions=Sessions(arrivals_per_hour=2,
                                            duration=Distribution("fixed", 1200)))
    link = _run(behaviour.charger_spec(), hours=5)
    samples = [(t, p) for t, p in _calls(link, "MeterValues")
               if p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Periodic"]
    assert len(samples) > 100
    by_tx: dict[int, list[float]] = {}
    for t, payload in samples:
        by_tx.setdefault(payload["transactionId"], []).append(t)
        names = [value["measurand"] for value in payload["meterValue"][0]["sampledValue"]]
        assert tuple(names) == measurands
    for times in by_tx.values():
        gaps = {round(b - a, 6) for a, b in itertools.pairwise(times)}
        assert gaps <= {10.0}


def test_clock_aligned_samples_land_on_the_boundaries() -> None:
    spec = attrs.evolve(COMMUTER, clock_aligned_interval=Seconds(900)).charger_spec()
    link = _run(spec, hours=50)
    aligned = [p for _, p in _calls(link, "MeterValues")
               if p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"]
    assert len(aligned) == pytest.approx(50 * 4 * 2, abs=4)
    for payload in aligned:
        stamp = datetime.fromisoformat(payload["meterValue"][0]["timestamp"].replace("Z", "+00:00"))
        assert stamp.timestamp() % 900 == 0
    times = [t for t, p in _calls(link, "MeterValues")
             if p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"]
    assert all(abs((t + WALL_OFFSET) / 900 - round((t + WALL_OFFSET) / 900)) < 1e-3
               for t in times[:20])
    assert next_aligned(1799.9, 900) == 1800 and next_aligned(1800, 900) == 2700


def test_time_scale_plays_the_same_stream_faster() -> None:
    behaviour = attrs.evolve(COMMUTER, data_transfer_per_hour=3, drops_per_hour=0)
    events = (SessionSurge(at=3600 * 5, duration=3600 * 2, factor=4),)  # type: ignore[arg-type]
    slow = _run(behaviour.charger_spec(events), hours=24, latency=0.0)
    fast = _run(behaviour.charger_spec(events, time_scale=60), hours=24 / 60, latency=0.0)
    strip = {"timestamp", "meterValue", "data"}

    def stream(link: Link) -> list[tuple[str, dict[str, Any]]]:
        return [(message[2], {k: v for k, v in message[3].items() if k not in strip})
                for _, direction, message in link.wire
                if direction == "cp->csms" and message[0] == 2 and message[2] != "Heartbeat"]

    assert len(stream(slow)) > 100
    assert stream(slow) == stream(fast)
    slow_times = [t for t, d, m in slow.wire if d == "cp->csms" and m[2] != "Heartbeat"]
    fast_times = [t for t, d, m in fast.wire if d == "cp->csms" and m[2] != "Heartbeat"]
    assert all(abs(s / 60 - f) < 1e-6 for s, f in zip(slow_times, fast_times, strict=True))
    # the CSMS's heartbeat interval (300 s) is not the profile's to speed up
    beats = [t for t, _ in _calls(fast, "Heartbeat")]
    assert len(beats) >= 4 and {round(b - a, 6) for a, b in itertools.pairwise(beats)} == {300}
    slow_stops = [p["meterStop"] for _, p in _calls(slow, "StopTransaction")]
    fast_stops = [p["meterStop"] for _, p in _calls(fast, "StopTransaction")]
    assert slow_stops == pytest.approx(fast_stops, abs=1)


def test_the_same_seed_gives_the_same_stream() -> None:
    spec = COMMUTER.charger_spec()

    def frames(seed: int) -> list[Any]:
        return [(t, m) for t, d, m in _run(spec, hours=30, seed=seed).wire]

    assert frames(4) == frames(4)
    assert frames(4) != frames(5)


@pytest.mark.parametrize("path", shipped_profiles(), ids=lambda p: p.stem)
def test_shipped_profiles_produce_the_rate_they_announce(path: Any) -> None:
    """The estimate `fleetsim profiles` prints: sessions per hour (Erlang-B losses included)
    and messages per session, against simulated charger-hours."""
    profile = load_profile(path)
    assert profile.description
    assert path.read_text().startswith(f"# {path.stem}:")
    for behaviour in profile.behaviour:
        spec = attrs.evolve(behaviour, drops_per_hour=0).charger_spec()
        estimate = estimate_rate(behaviour, 300)
        hours = min(400.0, 20_000 / sum(estimate.values()))
        metrics = Metrics()
        for seed in range(4):
            link = Link(spec, seed=seed, heartbeat_interval_s=300, metrics=metrics, record=False)
            link.connect()
            link.run_until(hours * 3600)
        charger_hours = 4 * hours
        started = metrics.actions["StartTransaction"].sent if estimate.get(
            "StartTransaction") else 0
        assert _within_sigmas(started, estimate.get("StartTransaction", 0) * charger_hours, 3)
        clock = 3600 / behaviour.clock_aligned_interval * behaviour.connectors if (
            behaviour.clock_aligned_interval) else 0.0
        steady = estimate["Heartbeat"] + estimate.get("DataTransfer", 0) + clock
        per_session = (sum(estimate.values()) - steady) / estimate["StartTransaction"]
        sent = sum(stats.sent for stats in metrics.actions.values()) - metrics.actions[
            "BootNotification"].sent
        finished = metrics.actions["StopTransaction"].sent
        # sessions still running when the simulation ends have sent only part of theirs
        low = steady * charger_hours + finished * per_session
        high = steady * charger_hours + started * per_session
        assert 0.95 * low <= sent <= 1.05 * high, behaviour.name


def _charging_link(spec: ChargerSpec) -> Link:
    link = Link(spec, heartbeat_interval_s=300)
    link.connect()
    link.run_until(60)
    assert link.charger.connectors[0].value == "charging"
    return link


def test_transaction_messages_survive_a_lost_connection() -> None:
    spec = ChargerSpec(connectors=1, idle_s=(5, 5), session_s=(120, 120), meter_interval_s=10,
                       backoff=Backoff("fixed", 300, 0))
    link = _charging_link(spec)
    link.drop()  # five minutes offline: the session ends meanwhile
    link.run_until(1000)
    sent = [(t, m[2], m[3]) for t, d, m in link.wire if d == "cp->csms" and m[0] == 2]
    reconnected = link.drops[0][1]
    after = [(t, action, payload) for t, action, payload in sent if t >= reconnected]
    assert after[0][1] == "BootNotification"
    stops = [(t, payload) for t, action, payload in after if action == "StopTransaction"
             and payload["transactionId"] == 1]
    assert len(stops) == 1
    # it is stamped with the time the session ended, while offline
    ended = datetime.fromisoformat(stops[0][1]["timestamp"].replace("Z", "+00:00")).timestamp()
    assert link.drops[0][0] < ended - WALL_OFFSET < reconnected
    offline_meters = [p for t, a, p in after if a == "MeterValues" and p.get("transactionId") == 1]
    assert len(offline_meters) >= 5
    metrics = link.metrics
    assert metrics.held_offline["StopTransaction"] == 1
    assert metrics.held_offline["MeterValues"] == len(offline_meters)
    # response time counts from the boot after the reconnect, not from the outage
    assert metrics.actions["StopTransaction"].response.get_max_value() < 1_000_000
    heartbeats_offline = [t for t, a, _ in sent if a == "Heartbeat"
                          and link.drops[0][0] < t < reconnected]
    assert heartbeats_offline == []


def test_a_storm_drops_its_share_within_the_window() -> None:
    storm = ReconnectStorm(at=600, share=0.8, within=2)  # type: ignore[arg-type]
    behaviour = attrs.evolve(COMMUTER, backoff=attrs.evolve(COMMUTER.backoff, policy="none"))
    spec = behaviour.charger_spec((storm, MeterBurst(at=950)))  # type: ignore[arg-type]
    metrics = Metrics()
    links = []
    for n in range(200):
        link = Link(spec, seed=n, heartbeat_interval_s=300, metrics=metrics,
                    charger_id=f"CP{n:05d}")
        link.connect()
        link.run_until(1000)
        links.append(link)
    dropped = [link.drops[0][0] for link in links if link.drops]
    assert 140 <= len(dropped) <= 180
    assert all(600 <= t <= 602 for t in dropped)
    stats = metrics.storms[0]
    assert stats.dropped == len(dropped) and len(stats.recovery_s) == len(dropped)
    assert not stats.waiting
    bursts = [t for link in links for t, p in _calls(link, "MeterValues")
              if p["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
              and abs(t - 950) < 0.01]
    assert len(bursts) == 200 * 2


def test_a_warm_start_begins_in_steady_state() -> None:
    """A cold fleet of commuters has no session under way and sends few meter values for
    hours; a warm one sends its steady-state rate from the first half hour (plus, once, the
    StartTransaction of each session it finds under way)."""

    def meter_values_per_charger_hour(warm: bool) -> float:
        metrics = Metrics()
        spec = COMMUTER.charger_spec(warm_start=warm)
        for n in range(300):
            link = Link(spec, seed=n, heartbeat_interval_s=300, metrics=metrics, record=False)
            link.connect()
            link.run_until(1800)
        return metrics.actions["MeterValues"].sent / 300 / 0.5

    steady = estimate_rate(COMMUTER, 300)["MeterValues"]
    assert meter_values_per_charger_hour(True) == pytest.approx(steady, rel=0.15)
    assert meter_values_per_charger_hour(False) < 0.5 * steady


def test_warm_sessions_start_spread_over_the_first_meter_interval() -> None:
    """A fleet booting together must not start every session it finds under way in the boot's
    own instant: each starts within one meter interval of the boot, and counts as one arrival."""
    metrics = Metrics()
    spec = COMMUTER.charger_spec(warm_start=True)
    starts: list[float] = []
    for n in range(300):
        link = Link(spec, seed=n, heartbeat_interval_s=300, metrics=metrics)
        link.connect()
        link.run_until(60)
        boot = _calls(link, "BootNotification")[0][0]
        starts += [t - boot for t, _ in _calls(link, "Authorize")]
    found = len(starts)
    assert found > 300 * 0.5  # about one of two connectors busy per charger
    assert metrics.arrivals == found
    assert all(0 < t <= 60.01 for t in starts)
    assert sum(t < 5 for t in starts) < found * 5 / 60 * 1.5  # not bunched at the boot


# a busy site: almost every connector is found mid-session at a warm start
BUSY_SITE = attrs.evolve(COMMUTER, connectors=1)


def _pending_warm_session() -> Link:
    """A booted charger whose one connector has a session found under way, not yet resumed."""
    spec = BUSY_SITE.charger_spec(warm_start=True)
    spec = attrs.evolve(spec, arrivals_per_s=spec.arrivals_per_s * 20)
    for seed in range(50):
        link = Link(spec, seed=seed, heartbeat_interval_s=300)
        link.connect()
        link.run_until(1.0)
        connector = link.charger._connectors[0]
        if connector.preset is not None and connector.due > 2:
            return link
    raise AssertionError("no seed gave a pending warm session")


def test_a_pending_warm_session_holds_its_connector() -> None:
    """Until it resumes, a session found under way occupies its connector: a reservation or a
    remote start cannot take it, and it resumes as the charger's own, counted once."""
    link = _pending_warm_session()
    assert command(link, "ReserveNow", {
        "connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "RESERVER",
        "reservationId": 42})[2] == {"status": "Occupied"}
    assert command(link, "RemoteStartTransaction", {"idTag": "REMOTE"})[2] == {
        "status": "Rejected"}
    link.run_until(61)
    [start] = [payload for _, payload in _calls(link, "StartTransaction")]
    assert start["idTag"] == link.charger.id_tag and "reservationId" not in start
    assert link.metrics.arrivals == 1


def test_a_pending_warm_session_survives_a_lost_connection() -> None:
    link = _pending_warm_session()
    link.run_until(link.charger._connectors[0].due - 0.01)
    link.drop()  # just before the session would have resumed
    link.run_until(link.now + 120)
    starts = [t for t, _ in _calls(link, "StartTransaction")]
    assert len(starts) == 1 and starts[0] > link.drops[0][1]  # resumed after the reconnect
    assert link.metrics.arrivals == 1
