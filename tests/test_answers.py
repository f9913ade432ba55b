"""Answers to the CSMS's CALLs, above all those a profile delays on purpose (`answer_delay`):
written before a Reset takes effect, sent during the graceful stop while due within it, and
counted when written or lost, so that every CSMS CALL received ends answered, CALLERROR or
unanswered; each answer written at once is timed once. Sans-IO on a fake clock, then a fleet
against a scripted CSMS on 127.0.0.1."""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
from typing import Any, Literal

import attrs
import pytest
import trio

from fleetsim import RunConfig, format_summary, merge_reports, render_html, spawn
from fleetsim.charger.core import ChargerSpec, ConnectorState
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.metrics import Metrics, merge_encoded
from fleetsim.ocpp.frames import Call, CallError, CallResult, decode_frame, encode_frame
from fleetsim.transport import ConnectionClosed, PendingConnection, serve_websocket

from .sim import Link
from .test_merge import tiny

DELAY = 2.0
IDLE_16 = ChargerSpec(connectors=2, idle_s=(10_000, 10_000), answer_delay_s=DELAY)
_ids = itertools.count()


class ShellLink(Link):
    """Acts on `wants_reconnect` as the fleet shell does: the connection closes at once
    (frames written reach the CSMS, none come back), the charger reboots and reconnects."""

    def __init__(self, spec: ChargerSpec, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.reboots: list[float] = []

    def _after_step(self) -> None:
        if self.online and self.charger.wants_reconnect:
            self.online = False
            self._events = [event for event in self._events if event[2] != "to_charger"]
            self.charger.disconnected(self.now, reboot=True)
            self.reboots.append(self.now)
            self._at(self.now + 1.0, "reconnect", "")
        super()._after_step()


def _booted(spec: ChargerSpec, until: float = 1.0) -> ShellLink:
    link = ShellLink(spec)
    link.connect()
    link.run_until(until)
    return link


def _call(link: Link, action: str, payload: dict[str, Any]) -> str:
    unique_id = f"csms-{next(_ids)}"
    link.send_to_charger(encode_frame(Call(unique_id, action, payload)))
    return unique_id


def _answer(link: Link, unique_id: str) -> tuple[int, float, list[Any]] | None:
    """(position on the wire, time written, frame) of the answer to `unique_id`."""
    for index, (when, direction, message) in enumerate(link.wire):
        if direction == "cp->csms" and message[0] in (3, 4) and message[1] == unique_id:
            return index, when, message
    return None


def _accounted(metrics: Metrics) -> None:
    """Every CSMS CALL received is answered, refused with a CALLERROR, or unanswered."""
    for action, stats in metrics.csms_calls.items():
        assert stats.received == (stats.answered + sum(stats.callerror_sent.values())
                                  + stats.unanswered), action


@pytest.mark.parametrize(("ocpp", "payload"), [
    ("1.6", {"type": "Hard"}), ("1.6", {"type": "Soft"}),
    ("2.0.1", {"type": "Immediate"}), ("2.0.1", {"type": "OnIdle"}),
])
def test_a_delayed_reset_is_answered_then_the_charger_reboots(
        ocpp: Literal["1.6", "2.0.1"], payload: dict[str, Any]) -> None:
    link = _booted(attrs.evolve(IDLE_16, ocpp=ocpp))
    t = link.now
    unique_id = _call(link, "Reset", payload)
    link.run_until(t + 10)
    answer = _answer(link, unique_id)
    assert answer is not None, "the Reset was never answered"
    _, written, message = answer
    assert message[0] == 3 and message[2]["status"] == "Accepted"
    assert written == pytest.approx(t + DELAY)
    assert link.reboots and link.reboots[0] >= written
    assert link.charger.booted  # reconnected and booted again
    stats = link.metrics.csms_calls["Reset"]
    assert (stats.received, stats.answered, stats.unanswered) == (1, 1, 0)


def test_a_reset_takes_effect_once_its_delayed_answer_is_written() -> None:
    link = _booted(attrs.evolve(IDLE_16, idle_s=(5, 5), session_s=(600, 600)), until=10)
    assert link.charger.connectors == [ConnectorState.CHARGING] * 2
    t = link.now
    unique_id = _call(link, "Reset", {"type": "Hard"})
    link.run_until(t + 10)
    answer = _answer(link, unique_id)
    assert answer is not None
    position, _, _ = answer
    stops = [index for index, (when, direction, message) in enumerate(link.wire)
             if direction == "cp->csms" and message[0] == 2 and message[2] == "StopTransaction"
             and when >= t]
    assert len(stops) == 2 and min(stops) > position
    assert [link.wire[index][2][3]["reason"] for index in stops] == ["HardReset"] * 2
    assert len(link.reboots) == 1


def test_the_graceful_stop_sends_answers_due_within_it_and_counts_the_rest() -> None:
    link = _booted(IDLE_16)
    t = link.now
    soon = _call(link, "GetConfiguration", {"key": ["HeartbeatInterval"]})
    link.run_until(t + 1)
    later = _call(link, "ClearCache", {})
    link.run_until(t + 1.5)
    link.charger.drain(link.now, grace_s=1.0)  # answers are due at t+2 and t+3
    assert link.charger.draining and not link.charger.drained
    link.run_until(t + 2.1)
    answer = _answer(link, soon)
    assert answer is not None and answer[1] == pytest.approx(t + DELAY)
    assert link.charger.drained  # the one due after the grace is not waited for
    link.run_until(t + 10)
    assert _answer(link, later) is None
    link.charger.finish()
    metrics = link.metrics
    assert metrics.csms_calls["GetConfiguration"].answered == 1
    clear = metrics.csms_calls["ClearCache"]
    assert (clear.received, clear.answered, clear.unanswered) == (1, 0, 1)
    _accounted(metrics)


def test_answers_due_after_a_dropped_link_count_as_unanswered() -> None:
    link = _booted(IDLE_16)
    t = link.now
    _call(link, "ClearCache", {})
    link.run_until(t + 0.5)
    link.drop()
    link.run_until(t + 10)
    stats = link.metrics.csms_calls["ClearCache"]
    assert (stats.received, stats.answered, stats.unanswered) == (1, 0, 1)
    _accounted(link.metrics)


def test_answers_pending_when_the_run_ends_count_as_unanswered() -> None:
    link = _booted(IDLE_16)
    _call(link, "ClearCache", {})
    link.run_until(link.now + 0.5)
    link.charger.finish()
    link.charger.finish()  # the shell may finish twice: counted once
    stats = link.metrics.csms_calls["ClearCache"]
    assert (stats.received, stats.answered, stats.unanswered) == (1, 0, 1)


@pytest.mark.parametrize("ocpp", ["1.6", "2.0.1"])
def test_every_csms_call_is_accounted_for_over_a_flaky_life(
        ocpp: Literal["1.6", "2.0.1"]) -> None:
    """CSMS calls, random delays, dropped links and Resets for an hour, then a graceful stop:
    received always equals answered + CALLERRORs + unanswered."""
    spec = ChargerSpec(ocpp=ocpp, connectors=2, idle_s=(5, 60), session_s=(30, 300),
                       answer_delay_s=(0.0, 3.0), drops_per_s=1 / 120)
    link = ShellLink(spec, seed=3)
    link.connect()
    rng = random.Random(11)
    reset = {"type": "Soft"} if ocpp == "1.6" else {"type": "Immediate"}
    commands = [("ClearCache", {}), ("Reset", reset), ("GetLocalListVersion", {}),
                ("ChangeAvailability", {"connectorId": 1, "type": "Operative"}
                 if ocpp == "1.6" else {"operationalStatus": "Operative"}),
                ("NoSuchAction", {})]
    for _ in range(600):
        action, payload = commands[rng.randrange(len(commands))]
        if link.online:
            _call(link, action, payload)
        link.run_until(link.now + rng.uniform(0.5, 12.0))
    link.charger.drain(link.now, grace_s=5)
    link.run_until(link.now + 10)
    link.charger.finish()
    metrics = link.metrics
    _accounted(metrics)
    assert sum(s.received for s in metrics.csms_calls.values()) > 400
    assert metrics.csms_calls["Reset"].answered > 10
    assert sum(s.unanswered for s in metrics.csms_calls.values()) > 0
    assert len(link.reboots) > 10 and link.drops


@attrs.define
class CommandingCsms:
    """Answers like the embedded CSMS (heartbeats every second); after each BootNotification
    and each Heartbeat it sends the charger one CALL, after the first boot a Reset."""

    core: CsmsCore = attrs.Factory(lambda: CsmsCore(CsmsStats(), heartbeat_interval_s=1))
    booted: set[str] = attrs.Factory(set)
    sent: dict[str, int] = attrs.Factory(dict)
    answered: dict[str, int] = attrs.Factory(dict)

    async def handle(self, pending: PendingConnection) -> None:
        charger_id = pending.request.path.rsplit("/", 1)[1]
        conn = await pending.accept("ocpp1.6")
        asked: dict[str, str] = {}
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = decode_frame(await conn.receive_text())
                if isinstance(frame, Call):
                    await conn.send_text(encode_frame(self.core.answer(frame, 1.7e9)))
                    if frame.action not in ("BootNotification", "Heartbeat"):
                        continue
                    action, payload = "GetConfiguration", {}
                    if charger_id not in self.booted:
                        self.booted.add(charger_id)
                        action, payload = "Reset", {"type": "Soft"}
                    unique_id = f"{action}-{len(asked)}"
                    asked[unique_id] = action
                    self.sent[action] = self.sent.get(action, 0) + 1
                    await conn.send_text(encode_frame(Call(unique_id, action, payload)))
                elif isinstance(frame, CallResult | CallError) and frame.unique_id in asked:
                    action = asked.pop(frame.unique_id)
                    self.answered[action] = self.answered.get(action, 0) + 1


@pytest.mark.parametrize("delay", [0.0, 0.3])
async def test_a_fleet_answers_every_reset_and_times_each_prompt_answer_once(
        nursery: trio.Nursery, delay: float) -> None:
    csms = CommandingCsms()
    ports = await nursery.start(functools.partial(serve_websocket, csms.handle, "127.0.0.1", 0))
    config = RunConfig(chargers=10, duration_s=3.5, url=f"ws://127.0.0.1:{ports[0]}/ocpp",
                       charger=ChargerSpec(idle_s=(100, 100), answer_delay_s=delay))
    with trio.fail_after(20):
        result = await spawn(config, write=False)
    report = result.report
    assert csms.answered["Reset"] == csms.sent["Reset"] == 10
    assert report["chargers"]["resets"] == 10 and report["chargers"]["booted"] == 10
    csms_calls = report["csms_calls"]
    assert csms_calls["Reset"]["answered"] == 10
    for action, stats in csms_calls.items():
        assert stats["received"] == (stats["answered"] + sum(stats["callerror_sent"].values())
                                     + stats["unanswered"]), action
        timed = merge_encoded([stats["hdr"]]).get_total_count()
        assert timed == (0 if delay else stats["answered"]), action
    assert csms_calls["GetConfiguration"]["answered"] >= 20


def test_unanswered_is_reported_merged_and_shown_and_old_reports_still_merge() -> None:
    new, old = tiny("1/2"), tiny("2/2")
    reset = new["csms_calls"]["Reset"]
    assert reset["unanswered"] == 0
    reset["received"] += 2
    reset["unanswered"] = 2
    del old["csms_calls"]["Reset"]["unanswered"]  # a report from before the key
    merged = merge_reports([new, old])
    assert merged["csms_calls"]["Reset"]["unanswered"] == 2
    assert merged["csms_calls"]["Reset"]["received"] == 4
    summary = format_summary(merged)
    header = next(line for line in summary.splitlines() if line.startswith("CSMS call"))
    row = next(line for line in summary.splitlines() if line.startswith("Reset"))
    assert "unansw" in header and row.split()[1:5] == ["4", "2", "0", "2"]
    assert "unanswered" in render_html(merged)
    other_old = tiny("1/2")
    del other_old["csms_calls"]["Reset"]["unanswered"]
    only_old = merge_reports([other_old, old])
    assert "unanswered" not in only_old["csms_calls"]["Reset"]
    assert next(line for line in format_summary(only_old).splitlines()
                if line.startswith("Reset")).split()[4] == "0"
    render_html(only_old)
