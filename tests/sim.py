"""A deterministic in-memory link between a `ChargerCore` and the embedded CSMS's `CsmsCore`.

Drives both sans-IO cores on a simulated clock, so hours of charger life run in milliseconds.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from typing import Any

import orjson

from fleetsim.charger.core import ChargerCore, ChargerSpec
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.csms.answers_201 import CsmsCore201
from fleetsim.metrics import Metrics
from fleetsim.ocpp.frames import Call, decode_frame, encode_frame

WALL_OFFSET = 1_764_000_000.0


class Link:
    """Charger and CSMS joined by a wire with a fixed one-way latency.

    `csms_delay` may be replaced to make the CSMS misbehave (delay, drop, answer oddly);
    every frame on the wire is kept in `wire` as (time, direction, decoded JSON). When the
    charger's behaviour drops the link, frames in flight are lost and it reconnects after its
    back-off, as the fleet shell does; `drops` records (dropped at, reconnected at).
    """

    def __init__(self, spec: ChargerSpec | None = None, *, seed: int = 1, latency: float = 0.001,
                 heartbeat_interval_s: int = 60, boot_status: str = "Accepted",
                 charger_id: str = "CP00001", metrics: Metrics | None = None,
                 record: bool = True, wall_offset: float = WALL_OFFSET) -> None:
        self.metrics = metrics or Metrics()
        self.spec = spec or ChargerSpec()
        self.rng = random.Random(seed)
        self.charger = ChargerCore(charger_id, self.spec, self.metrics, self.rng, wall_offset)
        self.wall_offset = wall_offset
        self.csms_stats = CsmsStats()
        kind = CsmsCore201 if self.spec.ocpp == "2.0.1" else CsmsCore
        self.csms: CsmsCore | CsmsCore201 = kind(
            self.csms_stats, heartbeat_interval_s=heartbeat_interval_s, boot_status=boot_status)
        self.charger_id = charger_id
        self.latency = latency
        self.now = 0.0
        self.wire: list[tuple[float, str, list[Any]]] = []
        self.csms_delay: Callable[[Call], float | None] = lambda call: 0.0
        self._events: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self.online = False
        self.record = record
        self.drops: list[list[float]] = []

    def _at(self, when: float, kind: str, text: str) -> None:
        heapq.heappush(self._events, (when, next(self._seq), kind, text))

    def _charger_out(self, frames: list[str]) -> None:
        for text in frames:
            if self.record:
                self.wire.append((self.now, "cp->csms", orjson.loads(text)))
            self._at(self.now + self.latency, "to_csms", text)

    def send_to_charger(self, text: str, when: float | None = None) -> None:
        self._at(self.now if when is None else when, "to_charger", text)

    def connect(self) -> None:
        self.online = True
        if self.drops:
            self.drops[-1].append(self.now)
        self._charger_out(self.charger.connected(self.now))

    def drop(self) -> None:
        """The link goes down: frames in flight are lost; reconnect after the back-off."""
        self.online = False
        self._events = [event for event in self._events if event[2] == "reconnect"]
        heapq.heapify(self._events)
        self.charger.disconnected(self.now)
        self.drops.append([self.now])
        self._at(self.now + self.spec.backoff.delay(0, self.rng), "reconnect", "")

    def _after_step(self) -> None:
        if self.online and self.charger.wants_drop:
            self.drop()

    def run_until(self, end: float) -> None:
        while True:
            deadline = self.charger.next_deadline()
            when = self._events[0][0] if self._events else float("inf")
            if min(deadline, when) > end:
                self.now = end
                return
            if deadline <= when:
                self.now = deadline
                self._charger_out(self.charger.tick(self.now))
                self._after_step()
                continue
            self.now, _, kind, text = heapq.heappop(self._events)
            if kind == "reconnect":
                self.connect()
            elif kind == "to_charger":
                try:
                    if self.record:
                        self.wire.append((self.now, "csms->cp", orjson.loads(text)))
                except orjson.JSONDecodeError:
                    self.wire.append((self.now, "csms->cp", [text]))
                self._charger_out(self.charger.receive(text, self.now))
                self._after_step()
            else:
                self._csms_receive(text)

    def _csms_receive(self, text: str) -> None:
        call = decode_frame(text)
        if not isinstance(call, Call):
            return
        delay = self.csms_delay(call)
        if delay is None:
            return
        if isinstance(self.csms, CsmsCore201):
            answer = self.csms.answer(call, self.now + self.wall_offset, self.charger_id)
        else:
            answer = self.csms.answer(call, self.now + self.wall_offset)
        reply = encode_frame(answer)
        self._at(self.now + delay + self.latency, "to_charger", reply)

    def sent_actions(self) -> list[str]:
        return [str(msg[2]) for _, direction, msg in self.wire
                if direction == "cp->csms" and msg[0] == 2]
