"""The OCPP 1.6 charger as a sans-IO state machine.

`ChargerCore` never touches a socket or a clock: the shell tells it what happened (connected,
a message arrived, time passed, the connection went away) together with the current monotonic
time, and it answers with the frames to write. Time-driven behaviour (heartbeats, meter samples,
session arrivals, CALL timeouts) is exposed as `next_deadline()`, so a test can drive hours of
charger life in milliseconds.

OCPP-J allows one CALL in flight per direction: everything the charger wants to say while a CALL
is unanswered waits in `_queue`, in order, stamped with the instant it *meant* to send, so the
response time it records is honest when the CSMS is slow (DESIGN.md, "open schedules").
"""

from __future__ import annotations

import enum
import functools
import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs

from fleetsim.behaviour.distributions import Distribution, as_distribution
from fleetsim.behaviour.random_stream import Rng
from fleetsim.behaviour.schedule import (
    Backoff,
    Burst,
    Storm,
    Surge,
    next_aligned,
    next_poisson,
)
from fleetsim.charger.answers_16 import Violation
from fleetsim.charger.certificates import ChargerSecurity
from fleetsim.charger.configuration import Configuration
from fleetsim.charger.device_model import (
    HEARTBEAT_INTERVAL,
    DeviceModel,
    Ref,
    StationShape,
    connector_ref,
)
from fleetsim.charger.local_list import LocalList
from fleetsim.charger.security_answers import COMMANDS_16 as COMMANDS
from fleetsim.charger.security_answers import HANDLERS_201
from fleetsim.charger.shapes import INT32_MAX
from fleetsim.charger.smart_charging import ChargingProfile, ProfileStore
from fleetsim.errors import LocalProtocolError
from fleetsim.metrics import Metrics
from fleetsim.ocpp import v16, v201
from fleetsim.ocpp.frames import (
    BadFrame,
    BadFrameKind,
    Call,
    CallError,
    CallResult,
    ErrorCode,
    UniqueIds,
    decode_frame,
    encode_frame,
)

__all__ = ["NEVER", "ChargerCore", "ChargerSpec", "ChargerState", "ConnectorState"]

NEVER: Final = float("inf")
_JOB_ORDER = itertools.count()
_Answer = tuple[str, str, str | None]
"""An answer to a CSMS CALL: (frame, action it is counted under, CALLERROR code or None)."""
DIAGNOSTICS_STEPS: Final = (("Uploading", 1.0), ("Uploaded", 4.0))
"""(status, seconds after the request) of a GetDiagnostics upload."""
FIRMWARE_STEPS: Final = (("Downloading", 0.0), ("Downloaded", 5.0), ("Installing", 6.0))
"""(status, seconds after the retrieve date) of an UpdateFirmware; a reboot follows."""
FIRMWARE_INSTALL_S: Final = 5.0
_ABANDONED_KEPT: Final = 4
"""Late answers are recognised for this many CALLs given up on."""
_BATTERY_WH: Final = 60_000.0
"""The EV battery behind the SoC measurand."""


def _check_range(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    low, high = value
    if not 0 <= low <= high:
        raise ValueError(f"{attribute.name} must be (low, high) with 0 <= low <= high, got {value}")


def _check_measurands(_instance: object, _attribute: object, value: tuple[str, ...]) -> None:
    unknown = [name for name in value if name not in v16.MEASURANDS]
    if unknown:
        raise ValueError(f"unknown measurand {unknown[0]!r}; known: {', '.join(v16.MEASURANDS)}")


_ZERO: Final = Distribution()
_DEFAULT_BACKOFF: Final = Backoff()


@attrs.frozen
class ChargerSpec:
    """How a charger behaves, in real seconds (a profile's behaviour after `--time-scale`).

    Sessions arrive as a Poisson process at `arrivals_per_s` per charger (an open schedule:
    an EV that finds every connector busy, or the charger offline, is counted as missed). With
    `arrivals_per_s == 0` each connector instead waits `idle_s` after a session for the next EV,
    which makes session timing deterministic for tests.
    """

    connectors: int = attrs.field(default=2, validator=attrs.validators.in_(range(1, 100)))
    ocpp: Literal["1.6", "2.0.1"] = "1.6"
    """2.0.1: one EVSE per connector, TransactionEvent instead of Start/StopTransaction and
    transaction MeterValues, a device model instead of configuration keys."""
    vendor: str = "fleetsim"
    model: str = "VirtualAC"
    firmware: str = "0.1.0"
    meter_interval_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    measurands: tuple[str, ...] = attrs.field(default=v16.DEFAULT_MEASURANDS,
                                              validator=_check_measurands)
    clock_aligned_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    """OCPP's ClockAlignedDataInterval (0: off): samples on shared wall-clock boundaries."""
    arrivals_per_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    session_s: Distribution = attrs.field(default=Distribution("uniform", low=30.0, high=90.0),
                                          converter=as_distribution)
    idle_s: tuple[float, float] = attrs.field(default=(5.0, 30.0), validator=_check_range)
    energy_wh: Distribution | None = None
    """Energy the EV wants; once delivered it stays plugged in (SuspendedEV) until it leaves."""
    power_w: Distribution = attrs.field(
        default=Distribution("uniform", low=7_400.0, high=22_000.0), converter=as_distribution)
    drops_per_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    answer_delay_s: Distribution = attrs.field(default=_ZERO, converter=as_distribution)
    data_transfer_per_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    data_transfer_vendor: str = "fleetsim"
    backoff: Backoff = _DEFAULT_BACKOFF
    time_scale: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    """Energy accrues this much faster than real time (`--time-scale`)."""
    surges: tuple[Surge, ...] = ()
    storms: tuple[Storm, ...] = ()
    bursts: tuple[Burst, ...] = ()
    call_timeout_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    heartbeat_default_s: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    boot_retry_default_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    closed_loop: bool = False
    """Benchmark mode: once booted, send a Heartbeat whenever nothing else is waiting."""
    measurands_201: tuple[str, ...] = attrs.field(init=False, default=attrs.Factory(
        lambda spec: tuple(m for m in spec.measurands if m in v201.MEASURANDS)
        or v201.DEFAULT_MEASURANDS, takes_self=True))
    """2.0.1 has no Temperature measurand."""
    warm_start: bool = False
    """Begin in steady state: at the first boot, connectors are found busy as often as the
    arrival rate and session lengths make them, with sessions part-way through."""
    spread_heartbeats: bool = False
    """Start each heartbeat clock at a random phase, so a fleet that booted together does
    not heartbeat together."""


def _status_payload(status: str, request_id: int | None) -> dict[str, Any]:
    return {"status": status} if request_id is None else {"status": status,
                                                          "requestId": request_id}


@functools.cache
def _station_shape(spec: ChargerSpec) -> StationShape:
    """The 2.0.1 device model's defaults, shared by every charger of one spec."""
    scale = spec.time_scale
    top = spec.power_w.high if math.isfinite(spec.power_w.high) else spec.power_w.expected
    return StationShape(
        evses=(1,) * spec.connectors, vendor=spec.vendor[:50], model=spec.model[:20],
        heartbeat_s=max(1, round(spec.heartbeat_default_s * scale)),
        tx_updated_s=max(1, round(spec.meter_interval_s * scale)),
        aligned_s=round(spec.clock_aligned_s * scale),
        measurands=spec.measurands_201, max_power_w=max(top, 1.0))


class ChargerState(enum.Enum):
    DISCONNECTED = "disconnected"
    BOOTING = "booting"
    BOOTED = "booted"


class ConnectorState(enum.Enum):
    IDLE = "idle"
    AUTHORIZING = "authorizing"
    STARTING = "starting"
    CHARGING = "charging"
    STOPPING = "stopping"


class _ConnectorEvent(enum.Enum):
    PLUG_IN = "plug_in"
    AUTHORIZED = "authorized"
    NOT_AUTHORIZED = "not_authorized"
    STARTED = "started"
    NOT_STARTED = "not_started"
    SESSION_END = "session_end"
    STOPPED = "stopped"
    RESET = "reset"


_C = ConnectorState
_E = _ConnectorEvent
CONNECTOR_TRANSITIONS: Final[dict[ConnectorState, dict[_ConnectorEvent, ConnectorState]]] = {
    _C.IDLE: {_E.PLUG_IN: _C.AUTHORIZING},
    _C.AUTHORIZING: {_E.AUTHORIZED: _C.STARTING, _E.NOT_AUTHORIZED: _C.IDLE},
    _C.STARTING: {_E.STARTED: _C.CHARGING, _E.NOT_STARTED: _C.IDLE},
    _C.CHARGING: {_E.SESSION_END: _C.STOPPING},
    _C.STOPPING: {_E.STOPPED: _C.IDLE},
}


_STATUS_BY_STATE: Final = {
    ConnectorState.AUTHORIZING: "Preparing",
    ConnectorState.STARTING: "Preparing",
    ConnectorState.CHARGING: "Charging",
    ConnectorState.STOPPING: "Finishing",
}


class _Connector:
    __slots__ = (
        "applied_w", "connector_id", "due", "id_tag", "meter_start", "meter_wh", "operative",
        "power_w", "preset", "remote_start_id", "reported", "reservation", "sampled_at",
        "scheduled_operative", "seq_no", "session_end", "soc_start", "started_wall", "state",
        "stop_reason", "suspended", "target_wh", "transaction_id",
    )

    def __init__(self, connector_id: int) -> None:
        self.connector_id = connector_id
        self.state = ConnectorState.IDLE
        self.due = NEVER
        self.session_end = NEVER
        self.transaction_id: int | str | None = None
        """1.6: the CSMS's number; 2.0.1: the charger's own string."""
        self.seq_no = 0
        self.reported = ""
        """2.0.1: the connector status last sent (only changes are)."""
        self.remote_start_id: int | None = None
        self.id_tag = ""
        self.meter_wh = 0.0
        self.meter_start = 0.0
        self.target_wh = NEVER
        self.suspended = False
        self.soc_start = 0.0
        self.preset: tuple[float, float] | None = None
        """(remaining seconds, energy Wh) of a session found in progress at a warm start."""
        self.power_w = 0.0
        self.applied_w = 0.0
        self.started_wall: float | None = None
        self.sampled_at = 0.0
        self.operative = True
        self.scheduled_operative: bool | None = None
        self.stop_reason = "EVDisconnected"
        self.reservation: tuple[int, str] | None = None

    @property
    def status(self) -> str:
        """The OCPP 1.6 ChargePointStatus this connector would report now."""
        if self.state is ConnectorState.IDLE:
            if not self.operative:
                return "Unavailable"
            return "Available" if self.reservation is None else "Reserved"
        if self.suspended and self.state is ConnectorState.CHARGING:
            return "SuspendedEV"
        return _STATUS_BY_STATE[self.state]

    @property
    def meter(self) -> int:
        """The energy register as the Wh integer OCPP carries."""
        return round(self.meter_wh)

    def fire(self, event: _ConnectorEvent) -> None:
        if event is _ConnectorEvent.RESET:
            self.state = ConnectorState.IDLE
            return
        try:
            self.state = CONNECTOR_TRANSITIONS[self.state][event]
        except KeyError:
            raise LocalProtocolError(
                f"can't handle event {event.value} when connector {self.connector_id} "
                f"is {self.state.value}"
            ) from None


class _Outgoing:
    """A CALL the charger wants to send: queued, then pending until answered."""

    __slots__ = ("action", "connector", "deadline", "held", "intended", "keep", "payload",
                 "unique_id", "written")

    def __init__(
        self, action: str, payload: dict[str, Any], intended: float, connector: _Connector | None
    ) -> None:
        self.action = action
        self.payload = payload
        self.intended = intended
        self.connector = connector
        self.unique_id = ""
        self.written = 0.0
        self.deadline = NEVER
        self.keep = action in _TRANSACTION_ACTIONS or (
            action == "MeterValues" and "transactionId" in payload)
        """A transaction message: kept across a lost connection and delivered after reboot."""
        self.held = False
        """Made while the charger could not send: its response clock starts at the next boot."""

    def again(self) -> _Outgoing:
        """A fresh CALL with the same content, to retry after the connection was lost."""
        item = _Outgoing(self.action, self.payload, self.intended, self.connector)
        item.held = True
        return item


_TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", "StopTransaction",
                                         "TransactionEvent"})
_STATUS_201: Final = {
    "Available": "Available", "Preparing": "Occupied", "Charging": "Occupied",
    "SuspendedEV": "Occupied", "SuspendedEVSE": "Occupied", "Finishing": "Occupied",
    "Reserved": "Reserved", "Unavailable": "Unavailable", "Faulted": "Faulted",
}
"""1.6 ChargePointStatus to 2.0.1 ConnectorStatus."""
_ENDED_201: Final = {  # 1.6 stop reason: (2.0.1 stoppedReason, triggerReason)
    "EVDisconnected": ("EVDisconnected", "EVDeparted"),
    "DeAuthorized": ("DeAuthorized", "Deauthorized"),
    "Remote": ("Remote", "RemoteStop"),
    "UnlockCommand": ("Other", "UnlockCommand"),
    "SoftReset": ("ImmediateReset", "ResetCommand"),
    "HardReset": ("ImmediateReset", "ResetCommand"),
}


class ChargerCore:
    """One OCPP 1.6 charge point: boot, heartbeat, status, sessions and the clocks of its
    behaviour (arrivals, drops, DataTransfer, clock-aligned samples, fleet-wide events)."""

    __slots__ = (
        "_abandoned", "_after_boot", "_aligned_due", "_aligned_s", "_answer_at", "_arrival_due",
        "_boot_due", "_boot_reason", "_clock_due", "_connected_at", "_connectors",
        "_drain_deadline", "_drop_due", "_events",
        "_heartbeat_due", "_heartbeat_s", "_ids", "_jobs", "_local_list", "_meter_interval_s",
        "_metrics", "_origin", "_pending", "_profiles", "_queue", "_resetting", "_rng", "_spec",
        "_started", "_transactions", "_transfer_due", "_v201", "_wall_offset", "_warm",
        "answered_action", "charger_id", "config", "device_model", "id_tag", "security",
        "state", "wants_drop", "wants_reconnect",
    )

    def __init__(
        self, charger_id: str, spec: ChargerSpec, metrics: Metrics, rng: Rng,
        wall_offset: float, origin: float = 0.0,
    ) -> None:
        self.charger_id = charger_id
        self.id_tag = f"TAG-{charger_id}"[:20]
        self.state = ChargerState.DISCONNECTED
        self._spec = spec
        self._metrics = metrics
        self._rng = rng
        self._wall_offset = wall_offset
        self._origin = origin
        """The run's start (monotonic): fleet-wide events are timed from it."""
        self._ids = UniqueIds()
        self._queue: list[_Outgoing] = []
        self._pending: _Outgoing | None = None
        self._abandoned: list[tuple[str, str]] = []
        """The last few CALLs given up on, whose answers may still come (lists, not deques:
        an empty deque costs 600 bytes, and every charger has a few)."""
        self._connectors = [_Connector(n) for n in range(1, spec.connectors + 1)]
        scale = spec.time_scale
        self._heartbeat_s = spec.heartbeat_default_s
        self._meter_interval_s = spec.meter_interval_s
        self._aligned_s = spec.clock_aligned_s
        self.config = Configuration(spec.connectors, spec.heartbeat_default_s * scale,
                                    spec.meter_interval_s * scale, spec.clock_aligned_s * scale)
        self._v201 = spec.ocpp == "2.0.1"
        self.device_model = DeviceModel(_station_shape(spec), f"SN-{charger_id}"[:25]) if (
            self._v201) else None
        self._transactions = itertools.count(1)
        self._local_list: LocalList | None = None
        self._profiles: ProfileStore | None = None
        self._resetting = ""
        self.security: ChargerSecurity | None = None
        """Installed certificates and new credentials (`security_answers.py`), once used."""
        self.wants_reconnect = False
        self.wants_drop = False
        """The behaviour drops the connection now (a flaky link or a reconnect storm)."""
        self.answered_action: str | None = None
        """The CSMS CALL the last `receive` answered (its action), if it was one."""
        self._jobs: list[tuple[float, int, str, Any]] = []
        self._answer_at: float | None = None
        """While a CSMS CALL is handled: when its delayed answer will be written (None: at
        once). A Reset waits for it, so that the CSMS hears the answer before the reboot."""
        self._after_boot: dict[str, Any] | None = None
        """A FirmwareStatusNotification to send once booted again after installing."""
        self._boot_reason = "PowerUp"
        """2.0.1: why the next BootNotification is sent (a Reset, a firmware update)."""
        self._heartbeat_due = NEVER
        self._boot_due = NEVER
        self._drain_deadline: float | None = None
        self._started = False
        self._warm = spec.warm_start and spec.arrivals_per_s > 0
        self._connected_at = NEVER
        self._arrival_due = self._drop_due = self._transfer_due = self._aligned_due = NEVER
        events: list[tuple[float, str, int]] = []
        for index, storm in enumerate(spec.storms):
            if rng.random() < storm.share:
                events.append((origin + storm.at_s + rng.uniform(0.0, storm.within_s),
                               "storm", index))
        for burst in spec.bursts:
            if rng.random() < burst.share:
                events.append((origin + burst.at_s, "burst", 0))
        self._events = sorted(events)
        self._clock_due = self._events[0][0] if events else NEVER

    # -- inputs from the shell --------------------------------------------------------------

    def connected(self, now: float) -> list[str]:
        """The WebSocket is open: boot (what was kept from the last connection waits)."""
        if self.state is not ChargerState.DISCONNECTED:
            raise LocalProtocolError(f"can't connect when charger is {self.state.value}")
        self.state = ChargerState.BOOTING
        self._connected_at = now
        if not self._started:
            self._start_clocks(now)
        self._enqueue_boot(now)
        return self._pump(now)

    def receive(self, text: str, now: float) -> list[str]:
        """A message arrived from the CSMS: returns the frames to write, in order."""
        self.answered_action = None
        frame = decode_frame(text)
        if type(frame) is CallResult or type(frame) is CallError:
            self._complete(frame, now)
            return self._pump(now)
        if type(frame) is Call:
            delay = self._spec.answer_delay_s
            if delay.kind == "fixed" and not delay.mean:
                text, action, error_code = self._answer(frame, now)
                self._metrics.csms_call_answered(action, error_code)
                return [text, *self._pump(now)]
            due = self._answer_at = now + delay.sample(self._rng)
            try:
                answer = self._answer(frame, now)
            finally:
                self._answer_at = None
            self.answered_action = None  # answered later, on purpose: not the harness's lag
            if self._drain_deadline is not None and due > self._drain_deadline:
                self._metrics.csms_call_unanswered(answer[1])  # due after the run's end
            else:
                self._schedule(due, "answer", answer)
            return self._pump(now)
        assert isinstance(frame, BadFrame)
        self._metrics.bad_frames[frame.kind.value] += 1
        if frame.reply is None:
            return []
        reply = v201.as_v201_error(frame.reply) if self._v201 else frame.reply
        self._metrics.csms_call("<malformed>", reply.error_code)
        self.answered_action = "<malformed>"
        return [encode_frame(reply)]

    def tick(self, now: float) -> list[str]:
        """Time has reached `next_deadline()`: fire what is due."""
        if self._drain_deadline is not None and now >= self._drain_deadline:
            due: list[_Answer] = []
            while self._jobs and now >= self._jobs[0][0]:  # a late tick: still within the grace
                job = heapq.heappop(self._jobs)
                if job[2] == "answer":
                    due.append(job[3])
            out = self._hand_out(due)
            self.finish()
            self._drain_deadline = NEVER
            return out
        pending = self._pending
        if pending is not None and now >= pending.deadline:
            self._pending = None
            self._metrics.call_timeout(pending.action)
            self._abandon((pending.unique_id, pending.action))
            self._failed(pending, now)
        if now >= self._boot_due:
            self._boot_due = NEVER
            self._enqueue_boot(now)
        answers: list[_Answer] = []
        jobs = self._jobs
        while jobs and now >= jobs[0][0]:
            _, _, kind, arg = heapq.heappop(jobs)
            if kind == "answer":
                answers.append(arg)
            else:
                self._run_job(kind, arg, now)
        if now >= self._clock_due:
            self._run_clocks(now)
        if self.state is ChargerState.BOOTED:
            while now >= self._heartbeat_due:
                self._send_later("Heartbeat", v16.heartbeat(), self._heartbeat_due)
                self._heartbeat_due += self._heartbeat_s
        for connector in self._connectors:
            while now >= connector.due:
                self._connector_due(connector)
        if self.wants_drop:  # the link goes down now: nothing more is written to it
            for _, action, _ in answers:
                self._metrics.csms_call_unanswered(action)
            return []
        if answers:
            return [*self._hand_out(answers), *self._pump(now)]
        return self._pump(now)

    def disconnected(self, now: float, *, reboot: bool = False) -> None:
        """The connection is gone. What was pending can never be answered. Transaction
        messages stay queued (the pending one is queued again) and sessions go on, as on a real
        charger that lost its network; a `reboot` (Reset) starts from scratch."""
        reboot = reboot or bool(self._resetting)
        self._lose_answers()
        pending = self._pending
        metrics = self._metrics
        kept: list[_Outgoing] = []
        if pending is not None:
            self._pending = None
            metrics.call_timeout(pending.action, lost=True)
            if pending.keep and not reboot:
                kept.append(pending.again())
                metrics.queued += 1
        for item in self._queue:
            if item.keep and not reboot:
                item.held = True
                kept.append(item)
            else:
                metrics.discarded_unsent[item.action] += 1
                metrics.queued -= 1
        self._queue = kept
        if self.state is ChargerState.BOOTED:
            metrics.charger_unbooted()
        self.state = ChargerState.DISCONNECTED
        self._heartbeat_due = self._boot_due = NEVER
        if reboot:
            self._boot_reason = ("FirmwareUpdate" if self._after_boot is not None
                                 else "RemoteReset")
        self._resetting = ""
        self.wants_reconnect = self.wants_drop = False
        if self.security is not None:
            self.security.reconnect = False
        if not reboot:
            for connector in self._connectors:
                if connector.state is ConnectorState.AUTHORIZING:  # its Authorize is gone
                    connector.fire(_ConnectorEvent.NOT_AUTHORIZED)
                    self._idle(connector, now)
            return
        self._jobs.clear()
        for connector in self._connectors:
            connector.reservation = None
            connector.fire(_ConnectorEvent.RESET)
            connector.due = connector.session_end = NEVER
            connector.preset = None
            connector.transaction_id = None
            connector.suspended = False
            if connector.scheduled_operative is not None:
                connector.operative = connector.scheduled_operative
                connector.scheduled_operative = None

    def drain(self, now: float, grace_s: float) -> None:
        """The run is ending: start nothing new, give the CALL in flight `grace_s` to finish.

        Like k6's graceful stop, this lets the last answers arrive so that the charger's
        counts and the CSMS's agree; what is still unanswered after the grace is in flight.
        """
        self._drain_deadline = now + grace_s
        self._clear_queue()
        self._heartbeat_due = self._boot_due = NEVER
        self._lose_answers(self._drain_deadline)
        self._jobs = [job for job in self._jobs if job[2] == "answer"]
        self._stop_clocks()
        for connector in self._connectors:
            connector.due = NEVER

    @property
    def subprotocol(self) -> str:
        return v201.SUBPROTOCOL if self._v201 else v16.SUBPROTOCOL

    @property
    def draining(self) -> bool:
        return self._drain_deadline is not None

    @property
    def drained(self) -> bool:
        """Draining, nothing left in flight and no answer still to write: the connection may
        close."""
        return (self._drain_deadline is not None and self._pending is None
                and not self._answers_due())

    def finish(self) -> None:
        """The run is over: count the CALL still in flight, what never left the queue and the
        answers still due."""
        self._lose_answers()
        if self._pending is not None:
            self._metrics.call_in_flight(self._pending.action)
            self._abandon((self._pending.unique_id, self._pending.action))
            self._pending = None
        self._clear_queue()
        self._stop_clocks()
        if self.state is ChargerState.BOOTED:
            self._metrics.charger_unbooted()
        self.state = ChargerState.DISCONNECTED

    def _clear_queue(self) -> None:
        metrics = self._metrics
        for item in self._queue:
            metrics.queued_at_shutdown[item.action] += 1
        metrics.queued -= len(self._queue)
        self._queue.clear()

    def next_deadline(self) -> float:
        """The monotonic instant at which `tick` has something to do (NEVER if nothing)."""
        deadline = self._boot_due
        if self._clock_due < deadline:
            deadline = self._clock_due
        if self._drain_deadline is not None and self._drain_deadline < deadline:
            deadline = self._drain_deadline
        if self._pending is not None and self._pending.deadline < deadline:
            deadline = self._pending.deadline
        if self._jobs and self._jobs[0][0] < deadline:
            deadline = self._jobs[0][0]
        if self.state is ChargerState.BOOTED and self._heartbeat_due < deadline:
            deadline = self._heartbeat_due
        for connector in self._connectors:
            if connector.due < deadline:
                deadline = connector.due
        return deadline

    # -- the behaviour's clocks -------------------------------------------------------------

    def _start_clocks(self, now: float) -> None:
        """The behaviour's own processes start when the charger first comes online."""
        self._started = True
        spec, rng = self._spec, self._rng
        self._arrival_due = next_poisson(now, spec.arrivals_per_s, rng, spec.surges,
                                         self._origin)
        if spec.drops_per_s:
            self._drop_due = now + rng.expovariate(spec.drops_per_s)
        if spec.data_transfer_per_s:
            self._transfer_due = now + rng.expovariate(spec.data_transfer_per_s)
        self._schedule_aligned(now)
        self._refresh_clock()

    def _stop_clocks(self) -> None:
        self._arrival_due = self._drop_due = self._transfer_due = self._aligned_due = NEVER
        self._events.clear()
        self._clock_due = NEVER

    def _refresh_clock(self) -> None:
        self._clock_due = min(self._arrival_due, self._drop_due, self._transfer_due,
                              self._aligned_due, self._events[0][0] if self._events else NEVER)

    def _schedule_aligned(self, now: float) -> None:
        if self._aligned_s > 0:
            boundary = next_aligned(self.wall(now) + 1e-6, self._aligned_s)
            self._aligned_due = boundary - self._wall_offset
        else:
            self._aligned_due = NEVER

    def _online_at(self, due: float) -> bool:
        """Was the charger booted and connected at `due`? (Clocks catch up after an outage.)"""
        return self.state is ChargerState.BOOTED and due >= self._connected_at

    def _run_clocks(self, now: float) -> None:
        spec, rng, metrics = self._spec, self._rng, self._metrics
        while now >= self._arrival_due:
            due = self._arrival_due
            self._arrive(due)
            self._arrival_due = next_poisson(due, spec.arrivals_per_s, rng, spec.surges,
                                             self._origin)
        while now >= self._drop_due:
            due = self._drop_due
            if self.state is not ChargerState.DISCONNECTED and due >= self._connected_at:
                self.wants_drop = True
                metrics.drops["flaky"] += 1
            self._drop_due = due + rng.expovariate(spec.drops_per_s)
        while now >= self._transfer_due:
            due = self._transfer_due
            if self._online_at(due):
                self._send_later("DataTransfer", v16.data_transfer(
                    spec.data_transfer_vendor, "Telemetry", f"{self.wall(due):.0f}"), due)
            self._transfer_due = due + rng.expovariate(spec.data_transfer_per_s)
        while now >= self._aligned_due:
            due = self._aligned_due
            if self._online_at(due):
                self._aligned_sample(due)
            self._schedule_aligned(due)
        events = self._events
        while events and now >= events[0][0]:
            due, kind, index = events.pop(0)
            if kind == "storm":
                if self.state is not ChargerState.DISCONNECTED and due >= self._connected_at:
                    self.wants_drop = True
                    metrics.storm_drop(index, self.charger_id,
                                       self._origin + spec.storms[index].at_s)
            elif self._online_at(due):
                self._aligned_sample(due)
        self._refresh_clock()

    def _arrive(self, due: float) -> None:
        """An EV arrives: it takes the first free connector, or leaves (counted as missed)."""
        if self._online_at(due) and not self._resetting and self._drain_deadline is None:
            for connector in self._connectors:
                if (connector.state is ConnectorState.IDLE and connector.operative
                        and connector.reservation is None and connector.preset is None):
                    self._metrics.arrivals += 1
                    self._plug_in(connector, self.id_tag, due)
                    return
        self._metrics.arrivals_missed += 1

    def _aligned_sample(self, due: float) -> None:
        """A clock-aligned MeterValues per connector (context Sample.Clock)."""
        for connector in self._connectors:
            charging = connector.state is ConnectorState.CHARGING
            if charging:
                self._charge(connector, due)
            self._send_later("MeterValues", self._meter_values(
                connector, due, "Sample.Clock", charging), due, connector)

    def _soc(self, connector: _Connector) -> float | None:
        if connector.state is not ConnectorState.CHARGING or "SoC" not in self._spec.measurands:
            return None
        return min(100.0, connector.soc_start
                   + (connector.meter_wh - connector.meter_start) / _BATTERY_WH * 100)

    def _meter_values(self, connector: _Connector, due: float, context: str,
                      charging: bool) -> dict[str, Any]:
        spec = self._spec
        power = connector.applied_w if charging else 0.0
        offered = connector.power_w if charging else 0.0
        if self._v201:  # outside a transaction's events: the EVSE's own meter
            samples = v201.sampled_values(spec.measurands_201, context, connector.meter, power,
                                          offered, self._soc(connector))
            return v201.meter_values(connector.connector_id,
                                     [v201.meter_value(self.wall(due), samples)])
        transaction_id = connector.transaction_id if charging else None
        assert not isinstance(transaction_id, str)
        return v16.meter_values(
            connector.connector_id, transaction_id, connector.meter, power, self.wall(due),
            context, spec.measurands, offered, self._soc(connector))

    @property
    def connectors(self) -> list[ConnectorState]:
        return [connector.state for connector in self._connectors]

    @property
    def transaction_ids(self) -> list[int | str]:
        """The transactions under way, connector by connector."""
        return [c.transaction_id for c in self._connectors if c.transaction_id is not None]

    @property
    def queued(self) -> int:
        return len(self._queue)

    # -- what the CSMS can ask for (payloads are checked in answers_16.py) -----------------

    @property
    def booted(self) -> bool:
        return self.state is ChargerState.BOOTED

    @property
    def local_list(self) -> LocalList:
        if self._local_list is None:
            self._local_list = LocalList()
        return self._local_list

    def has_connector(self, connector_id: int) -> bool:
        return 1 <= connector_id <= len(self._connectors)

    def transaction_started_wall(self, connector_id: int) -> float | None:
        """When the connector's transaction began (Unix time): Relative profiles count from it."""
        return self._connectors[connector_id - 1].started_wall

    def _charger_status(self) -> str:
        """Connector 0: the charge point as a whole."""
        return "Available" if any(c.operative for c in self._connectors) else "Unavailable"

    def set_heartbeat_interval(self, seconds: float, now: float) -> None:
        """From the CSMS, so in real seconds: `--time-scale` speeds up the profile's clocks,
        not the intervals the CSMS sets (nor the other intervals below)."""
        self._heartbeat_s = seconds
        self.config.set_internal("HeartbeatInterval", f"{seconds:.0f}")
        if self.device_model is not None and seconds >= 1:
            self.device_model.set_internal(HEARTBEAT_INTERVAL, str(int(seconds)))
        if self.state is ChargerState.BOOTED and self._drain_deadline is None:
            self._heartbeat_due = now + self._heartbeat_s

    def set_meter_interval(self, seconds: float) -> None:
        """Takes effect from the next sample on."""
        self._meter_interval_s = seconds

    def set_aligned_interval(self, seconds: float, now: float) -> None:
        """ClockAlignedDataInterval: 0 stops clock-aligned samples."""
        self._aligned_s = seconds
        if self._started and self._drain_deadline is None:
            self._schedule_aligned(now)
            self._refresh_clock()

    def start_remote(self, connector_id: int | None, id_tag: str, now: float, *,
                     remote_start_id: int | None = None, authorize: bool | None = None) -> bool:
        """RemoteStartTransaction / RequestStartTransaction: start a session on a free
        connector, as if an EV arrived."""
        if self.state is not ChargerState.BOOTED or self._resetting or self._drain_deadline:
            return False
        if authorize is None:
            authorize = self.config.flag("AuthorizeRemoteTxRequests")
        candidates = (self._connectors if connector_id is None
                      else [self._connectors[connector_id - 1]])
        for connector in candidates:
            if (connector.state is ConnectorState.IDLE and connector.operative
                    and connector.preset is None):
                connector.remote_start_id = remote_start_id
                if authorize:
                    self._plug_in(connector, id_tag, now)
                else:
                    connector.id_tag = id_tag
                    connector.fire(_ConnectorEvent.PLUG_IN)
                    connector.due = NEVER
                    info = {"status": "Accepted"}
                    self._on_authorize(_Outgoing("Authorize", {}, now, connector),
                                       {"idTokenInfo": info, "idTagInfo": info}, now)
                return True
        return False

    def later(self, due: float, action: str, payload: dict[str, Any]) -> None:
        """A CALL to queue at monotonic `due` (or "FirmwareInstalled": reboot, then send
        `payload` as the status notification)."""
        self._schedule(due, action, payload)

    def reconnect_soon(self, now: float) -> None:
        """Close the connection once the answer being made is written, and connect again
        without a reboot: new credentials are used from the next connection on."""
        self._schedule(now if self._answer_at is None else self._answer_at, "reconnect", None)

    @property
    def reconnecting(self) -> bool:
        """The connection ends for new credentials, not for a reboot."""
        return self.security is not None and self.security.reconnect

    def send_after_answer(self, action: str, payload: dict[str, Any], now: float) -> None:
        """A CALL that follows the answer to a CSMS CALL (a NotifyReport, say)."""
        self._send_later(action, payload, now)

    def charging(self, connector_id: int) -> bool:
        return self._connectors[connector_id - 1].state is not ConnectorState.IDLE

    def transaction_running(self, transaction_id: str) -> bool:
        return any(c.transaction_id == transaction_id and c.state is not ConnectorState.IDLE
                   for c in self._connectors)

    def transaction_messages_queued(self, transaction_id: str | None) -> bool:
        """GetTransactionStatus: are events of this transaction (any, if None) still queued?"""
        return any(item.action == "TransactionEvent" and (
            transaction_id is None
            or item.payload["transactionInfo"]["transactionId"] == transaction_id)
            for item in self._queue)

    def reset_on_idle(self, now: float) -> bool:
        """Reset OnIdle: start nothing new, reboot once every session has ended by itself;
        returns whether it has to wait."""
        busy = any(c.state is not ConnectorState.IDLE for c in self._connectors)
        if self._answer_at is not None:
            self._schedule(self._answer_at, "reset", "OnIdle")
            return busy
        self._resetting = "SoftReset"
        for connector in self._connectors:
            if connector.state is ConnectorState.IDLE:
                connector.due = NEVER
                connector.preset = None
        self._heartbeat_due = NEVER
        return busy

    def reserve_any(self, connector_id: int | None, reservation_id: int, id_tag: str,
                    expiry_wall: float, now: float) -> str:
        """ReserveNow without an EVSE (2.0.1): the first connector that can take it."""
        if connector_id is not None:
            return self.reserve(connector_id, reservation_id, id_tag, expiry_wall, now)
        status = "Occupied"
        for connector in self._connectors:
            status = self.reserve(connector.connector_id, reservation_id, id_tag, expiry_wall,
                                  now)
            if status == "Accepted":
                break
        return status

    def trigger_201(self, message: str, connector_id: int | None, now: float) -> str:
        """TriggerMessage (2.0.1): queue the requested message behind the answer."""
        targets = [c for c in self._connectors if connector_id in (None, c.connector_id)]
        if message == "BootNotification":
            if self.state is ChargerState.BOOTED:
                return "Rejected"  # 2.0.1 refuses a BootNotification once accepted
            self._enqueue_boot(now, "Triggered")
        elif message == "Heartbeat":
            self._send_later("Heartbeat", v16.heartbeat(), now)
        elif message == "StatusNotification":
            if connector_id is None:
                return "Rejected"  # needs an EVSE and connector
            for connector in targets:
                connector.reported = ""
                self._status(connector, connector.status, now)
        elif message == "MeterValues":
            for connector in targets:
                self._send_later("MeterValues", self._meter_values(
                    connector, now, "Trigger", connector.state is ConnectorState.CHARGING),
                    now, connector)
        elif message == "TransactionEvent":
            running = [c for c in targets if c.state is ConnectorState.CHARGING]
            if not running:
                return "Rejected"  # no transaction to report on
            for connector in running:
                self._send_later("TransactionEvent", self._transaction_event(
                    connector, "Updated", "Trigger", now, "Trigger"), now, connector)
        elif message in ("FirmwareStatusNotification", "LogStatusNotification"):
            self._send_later(message, {"status": "Idle"}, now)
        else:
            return "NotImplemented"
        return "Accepted"

    def _plug_in(self, connector: _Connector, id_tag: str, now: float) -> None:
        connector.fire(_ConnectorEvent.PLUG_IN)
        connector.due = NEVER
        connector.id_tag = id_tag
        self._send_later("Authorize", v201.authorize(id_tag) if self._v201
                         else v16.authorize(id_tag), now, connector)

    def stop_transaction(self, transaction_id: int | str, reason: str, now: float) -> bool:
        """RemoteStopTransaction and friends: end the matching session now."""
        for connector in self._connectors:
            if (connector.state is ConnectorState.CHARGING
                    and connector.transaction_id == transaction_id):
                self._end_session(connector, reason, now)
                return True
        return False

    def _end_session(self, connector: _Connector, reason: str, now: float) -> None:
        connector.stop_reason = reason
        connector.session_end = min(connector.session_end, now)
        connector.due = min(connector.due, now)

    def unlock(self, connector_id: int, now: float) -> None:
        """UnlockConnector: a charging session on it ends (reason UnlockCommand)."""
        connector = self._connectors[connector_id - 1]
        if connector.state is ConnectorState.CHARGING:
            self._end_session(connector, "UnlockCommand", now)

    def set_availability(self, connector_id: int, operative: bool, now: float) -> str:
        """ChangeAvailability: Accepted at once, or Scheduled after a running session."""
        targets = self._connectors if connector_id == 0 else [self._connectors[connector_id - 1]]
        scheduled = False
        for connector in targets:
            if connector.state is not ConnectorState.IDLE:
                connector.scheduled_operative = operative
                scheduled = True
                continue
            if connector.operative == operative:
                continue
            connector.operative = operative
            connector.scheduled_operative = None
            if self.state is ChargerState.BOOTED:
                self._idle(connector, now)
                self._status(connector, connector.status, now)
        return "Scheduled" if scheduled else "Accepted"

    def reset(self, kind: str, now: float) -> None:
        """Reset: stop every session (reason SoftReset/HardReset), then reconnect and boot;
        with a delayed answer, once it was written."""
        if self._answer_at is not None:
            self._schedule(self._answer_at, "reset", kind)
            return
        self._resetting = f"{kind}Reset"
        for connector in self._connectors:
            if connector.state is ConnectorState.CHARGING:
                self._end_session(connector, self._resetting, now)
            elif connector.state is ConnectorState.IDLE:
                connector.due = NEVER
                connector.preset = None
        self._heartbeat_due = NEVER

    def trigger(self, message: str, connector_id: int | None, now: float) -> str:
        """TriggerMessage: queue the requested message behind the answer."""
        if connector_id is not None and not self.has_connector(connector_id) and (
                connector_id != 0 or message == "MeterValues"):
            return "Rejected"
        wall = self.wall(now)
        if message == "BootNotification":
            self._enqueue_boot(now)
        elif message == "Heartbeat":
            self._send_later("Heartbeat", v16.heartbeat(), now)
        elif message == "StatusNotification":
            if connector_id in (None, 0):
                self._send_later("StatusNotification", v16.status_notification(
                    0, self._charger_status(), wall), now)
            for connector in self._connectors:
                if connector_id in (None, connector.connector_id):
                    self._status(connector, connector.status, now)
        elif message == "MeterValues":
            for connector in self._connectors:
                if connector_id in (None, connector.connector_id):
                    self._send_later("MeterValues", self._meter_values(
                        connector, now, "Trigger",
                        connector.state is ConnectorState.CHARGING), now, connector)
        elif message == "DiagnosticsStatusNotification" or message == "FirmwareStatusNotification":
            self._send_later(message, {"status": "Idle"}, now)
        else:
            return "NotImplemented"
        return "Accepted"

    def set_charging_profile(self, connector_id: int, profile: ChargingProfile) -> str:
        """SetChargingProfile, with OCPP 1.6's rules on where each purpose may go."""
        if connector_id != 0 and not self.has_connector(connector_id):
            return "Rejected"
        if profile.purpose == "ChargePointMaxProfile" and connector_id != 0:
            return "Rejected"
        if profile.purpose == "TxProfile":
            if connector_id == 0:
                return "Rejected"
            connector = self._connectors[connector_id - 1]
            if connector.state is not ConnectorState.CHARGING or (
                    profile.transaction_id not in (None, connector.transaction_id)):
                return "Rejected"
        if (profile.stack_level > self.config.integer("ChargeProfileMaxStackLevel")
                or len(profile.periods) > self.config.integer("ChargingScheduleMaxPeriods")):
            return "Rejected"
        if self._profiles is None:
            self._profiles = ProfileStore()
        installed = self._profiles.install(
            profile, self.config.integer("MaxChargingProfilesInstalled"))
        return "Accepted" if installed else "Rejected"

    def power_limit_w(self, connector_id: int, now: float) -> float:
        """What a connector (0: the whole station) may draw now under its charging profiles."""
        top = self._spec.power_w.high
        per_connector = top if math.isfinite(top) else self._spec.power_w.expected
        numbers = [connector_id] if connector_id else [c.connector_id for c in self._connectors]
        total = 0.0
        for number in numbers:
            limit = None
            if self._profiles is not None:
                limit = self._profiles.limit_w(number, self.wall(now),
                                               self._connectors[number - 1].started_wall,
                                               len(self._connectors))
            total += per_connector if limit is None else min(limit, per_connector)
        return total

    def charging_profiles(self) -> list[ChargingProfile]:
        return [] if self._profiles is None else list(self._profiles.profiles)

    def clear_charging_profile(self, profile_id: int | None, connector_id: int | None,
                               purpose: str | None, stack_level: int | None) -> str:
        if self._profiles is None:
            return "Unknown"
        removed = self._profiles.clear(profile_id, connector_id, purpose, stack_level)
        return "Accepted" if removed else "Unknown"

    def _schedule(self, due: float, kind: str, arg: Any) -> None:
        heapq.heappush(self._jobs, (due, next(_JOB_ORDER), kind, arg))

    def _answers_due(self) -> bool:
        return any(job[2] == "answer" for job in self._jobs)

    def _hand_out(self, answers: list[_Answer]) -> list[str]:
        """The answers' frames, to be written now: only now do they count as answered."""
        metrics = self._metrics
        for _, action, error_code in answers:
            metrics.csms_call_answered(action, error_code)
        return [text for text, _, _ in answers]

    def _lose_answers(self, after: float = -math.inf) -> None:
        """Answers due after `after` (by default all) will never be written: count them as
        unanswered. A Reset put off until its answer is written is called off."""
        jobs = self._jobs
        if not jobs:
            return
        kept = []
        for job in jobs:
            if job[2] == "answer" and job[0] > after:
                self._metrics.csms_call_unanswered(job[3][1])
            elif job[2] != "reset" and job[2] != "reconnect":
                kept.append(job)
        if len(kept) != len(jobs):
            heapq.heapify(kept)
            self._jobs = kept

    def _run_job(self, kind: str, arg: Any, now: float) -> None:
        if kind == "reset":  # put off until its answer was written
            if arg == "OnIdle":
                self.reset_on_idle(now)
            else:
                self.reset(arg, now)
        elif kind == "expire":
            connector_id, reservation_id = arg
            if self.cancel_reservation(reservation_id, now, connector_id) and self._v201:
                self._send_later("ReservationStatusUpdate", v201.reservation_status_update(
                    reservation_id, "Expired"), now)
        elif kind == "FirmwareInstalled":
            self._after_boot = arg
            self.reset("Hard", now)
        elif kind == "reconnect":
            if self.security is not None and not self._resetting:
                self.security.reconnect = self.wants_reconnect = True
        else:
            self._send_later(kind, arg if isinstance(arg, dict) else {"status": arg}, now)

    def reserve(self, connector_id: int, reservation_id: int, id_tag: str, expiry_wall: float,
                now: float) -> str:
        """ReserveNow: hold an idle connector for `id_tag` until the expiry date."""
        connector = self._connectors[connector_id - 1]
        if not connector.operative:
            return "Unavailable"
        if connector.state is not ConnectorState.IDLE or connector.preset is not None:
            return "Occupied"
        if connector.reservation is not None and connector.reservation[0] != reservation_id:
            return "Occupied"
        connector.reservation = (reservation_id, id_tag)
        self._schedule(expiry_wall - self._wall_offset, "expire", (connector_id, reservation_id))
        self._status(connector, connector.status, now)
        return "Accepted"

    def cancel_reservation(self, reservation_id: int, now: float,
                           connector_id: int | None = None) -> bool:
        """CancelReservation, or its expiry (then only on the connector it was made for)."""
        for connector in self._connectors:
            if connector_id not in (None, connector.connector_id):
                continue
            if connector.reservation is not None and connector.reservation[0] == reservation_id:
                connector.reservation = None
                if connector.state is ConnectorState.IDLE:
                    self._status(connector, connector.status, now)
                return True
        return False

    def upload_diagnostics(self, now: float, request_id: int | None = None) -> str:
        """GetDiagnostics (1.6) / GetLog (2.0.1, with its requestId): the upload's status
        notifications follow; returns the file name."""
        action = "LogStatusNotification" if self._v201 else "DiagnosticsStatusNotification"
        for status, after in DIAGNOSTICS_STEPS:
            self._schedule(now + after, action, _status_payload(status, request_id))
        return f"diagnostics-{self.charger_id}-{int(self.wall(now))}.log"

    def update_firmware(self, retrieve_wall: float, now: float,
                        request_id: int | None = None) -> None:
        """UpdateFirmware: download and install from the retrieve date, then reboot."""
        start = max(now, retrieve_wall - self._wall_offset)
        for status, after in FIRMWARE_STEPS:
            self._schedule(start + after, "FirmwareStatusNotification",
                           _status_payload(status, request_id))
        last = FIRMWARE_STEPS[-1][1]
        self._schedule(start + last + FIRMWARE_INSTALL_S, "FirmwareInstalled",
                       _status_payload("Installed", request_id))

    # -- the send queue ---------------------------------------------------------------------

    def wall(self, now: float) -> float:
        """Unix time at monotonic `now`, for timestamps and dates in payloads."""
        return now + self._wall_offset

    def _send_later(
        self, action: str, payload: dict[str, Any], intended: float,
        connector: _Connector | None = None, *, first: bool = False,
    ) -> None:
        metrics = self._metrics
        metrics.scheduled[action] += 1
        if self._drain_deadline is not None:
            metrics.queued_at_shutdown[action] += 1
            return
        item = _Outgoing(action, payload, intended, connector)
        if self.state is not ChargerState.BOOTED:
            if self.state is ChargerState.DISCONNECTED and not item.keep:
                metrics.discarded_unsent[action] += 1
                return
            item.held = action != "BootNotification"
        metrics.queued += 1
        if first:
            self._queue.insert(0, item)
        else:
            self._queue.append(item)

    def _pump(self, now: float) -> list[str]:
        if self._pending is not None or self.state is ChargerState.DISCONNECTED:
            return []
        queue = self._queue
        if self._resetting and not queue and all(
                c.state is ConnectorState.IDLE for c in self._connectors
        ) and not self._answers_due():
            self.wants_reconnect = True
            return []
        if queue and (self.state is ChargerState.BOOTED
                      or queue[0].action == "BootNotification"):
            item = queue.pop(0)
            self._metrics.queued -= 1
        elif (self._spec.closed_loop and self.state is ChargerState.BOOTED
              and self._drain_deadline is None):
            item = _Outgoing("Heartbeat", v16.heartbeat(), now, None)
        else:
            return []
        item.unique_id = self._ids.next()
        item.written = now
        item.deadline = now + self._spec.call_timeout_s
        self._pending = item
        self._metrics.call_sent(item.action, now - item.intended)
        return [encode_frame(Call(item.unique_id, item.action, item.payload))]

    def _abandon(self, call: tuple[str, str]) -> None:
        abandoned = self._abandoned
        abandoned.append(call)
        if len(abandoned) > _ABANDONED_KEPT:
            del abandoned[0]

    def _complete(self, frame: CallResult | CallError, now: float) -> None:
        pending = self._pending
        if pending is None or pending.unique_id != frame.unique_id:
            for unique_id, action in self._abandoned:
                if unique_id == frame.unique_id:
                    self._metrics.call_late(action)
                    return
            self._metrics.bad_frames[BadFrameKind.UNKNOWN_ID.value] += 1
            return
        self._pending = None
        service, response = now - pending.written, now - pending.intended
        if isinstance(frame, CallError):
            self._metrics.call_error(pending.action, frame.error_code, service, response)
            self._failed(pending, now)
            return
        self._metrics.call_ok(pending.action, service, response)
        if self._drain_deadline is not None:
            return  # the run is ending: the answer is counted, nothing new starts from it
        handler = _RESULT_HANDLERS.get(pending.action)
        if handler is not None:
            handler(self, pending, frame.payload, now)

    def _failed(self, item: _Outgoing, now: float) -> None:
        """A CALL got a CALLERROR or no answer: move on as a real charger would."""
        if self._drain_deadline is not None:
            return
        if item.action == "BootNotification":
            self._boot_due = now + self._spec.boot_retry_default_s
        elif item.action == "TransactionEvent":
            self._transaction_event_failed(item, now)
        elif item.connector is not None:
            self._connector_failed(item.connector, item.action, now)

    # -- CSMS-initiated CALLs ---------------------------------------------------------------

    def _answer(self, call: Call, now: float) -> _Answer:
        """Act on the CALL and make its answer; it counts as answered once handed out."""
        handler = (HANDLERS_201 if self._v201 else COMMANDS).get(call.action)
        if handler is None:
            code = ErrorCode.NOT_IMPLEMENTED
            self._metrics.csms_call_received("<unknown>")
            self.answered_action = "<unknown>"
            return (encode_frame(CallError(call.unique_id, code.value,
                                           f"unknown action {call.action[:40]}")),
                    "<unknown>", code.value)
        self._metrics.csms_call_received(call.action)
        self.answered_action = call.action
        try:
            payload = handler(self, call.payload, now)
        except Violation as exc:
            error = CallError(call.unique_id, exc.code.value, str(exc))
            if self._v201:
                error = v201.as_v201_error(error)
            return encode_frame(error), call.action, error.error_code
        except Exception as exc:  # a bug must not take the charger down: counted, answered
            self._metrics.internal_error(exc, call.action)
            internal = ErrorCode.INTERNAL_ERROR.value
            return (encode_frame(CallError(call.unique_id, internal, type(exc).__name__)),
                    call.action, internal)
        return encode_frame(CallResult(call.unique_id, payload)), call.action, None

    # -- boot and heartbeat -----------------------------------------------------------------

    def _enqueue_boot(self, now: float, reason: str | None = None) -> None:
        """Before the boot is accepted it jumps the queue: nothing else may be sent first."""
        spec = self._spec
        serial = f"SN-{self.charger_id}"[:25]
        payload = (v201.boot_notification(spec.vendor[:50], spec.model[:20], serial,
                                          spec.firmware[:50], reason or self._boot_reason)
                   if self._v201 else
                   v16.boot_notification(spec.vendor, spec.model, serial, spec.firmware))
        self._send_later("BootNotification", payload, now,
                         first=self.state is not ChargerState.BOOTED)

    def _on_boot(self, item: _Outgoing, payload: dict[str, Any], now: float) -> None:
        status = payload.get("status")
        interval = payload.get("interval")
        interval_s = float(interval) if type(interval) is int and 0 < interval <= INT32_MAX else 0.0
        if status != "Accepted":
            if status != "Pending" and status != "Rejected":
                self._metrics.bad_frames[BadFrameKind.BAD_RESULT_PAYLOAD.value] += 1
            self._boot_due = now + (interval_s or self._spec.boot_retry_default_s)
            return
        if self.state is not ChargerState.BOOTING:
            return
        self.state = ChargerState.BOOTED
        self._boot_reason = "PowerUp"  # a lost connection is taken for a power cut
        metrics = self._metrics
        metrics.charger_booted(self.charger_id, now)
        if interval_s:
            self.set_heartbeat_interval(interval_s, now)
        self._heartbeat_due = now + (self._rng.uniform(0.0, self._heartbeat_s)
                                     if self._spec.spread_heartbeats else self._heartbeat_s)
        held = list(self._queue)  # kept while offline: their response clock starts now
        self._queue.clear()
        for item in held:
            if item.held:
                item.held = False
                item.intended = now
                metrics.held_offline[item.action] += 1
        wall = self.wall(now)
        if not self._v201:
            self._send_later("StatusNotification", v16.status_notification(
                0, self._charger_status(), wall), now)
        for connector in self._connectors:
            connector.reported = ""
            self._status(connector, connector.status, now)
        self._queue.extend(held)
        for connector in self._connectors:
            if connector.state is ConnectorState.IDLE and connector.due == NEVER:
                if connector.preset is not None:  # found under way, then the link went down
                    connector.due = now + self._pickup_delay(connector.preset[0])
                elif connector.operative and not self._spec.arrivals_per_s:
                    connector.due = now + self._idle_gap()
        if self._after_boot is not None:
            signed = not self._v201 and "requestId" in self._after_boot  # 1.6 whitepaper
            self._send_later("SignedFirmwareStatusNotification" if signed
                             else "FirmwareStatusNotification", self._after_boot, now)
            if self._v201 or signed:
                self._send_later("SecurityEventNotification", v201.security_event_notification(
                    "FirmwareUpdated", self.wall(now)), now)
            self._after_boot = None
        if self._warm:
            self._warm = False
            self._find_sessions_in_progress(now)

    def _find_sessions_in_progress(self, now: float) -> None:
        """Warm start: how many connectors are busy follows Erlang's loss distribution for the
        offered load, and each busy one is part-way through a session whose total length is
        length-biased (a long session is more likely to be caught running). Each is picked up
        within its first meter interval, not at the boot itself: a fleet booting together would
        otherwise start all its sessions in the same few seconds."""
        spec, rng = self._spec, self._rng
        load = spec.arrivals_per_s * spec.session_s.expected
        weights = [1.0]
        for n in range(1, len(self._connectors) + 1):
            weights.append(weights[-1] * load / n)
        busy = rng.choices(range(len(weights)), weights)[0]
        for connector in rng.sample(self._connectors, busy):
            total = spec.session_s.length_biased(rng)
            left = rng.random()
            energy = NEVER if spec.energy_wh is None else spec.energy_wh.sample(rng) * left
            delay = self._pickup_delay(total * left)
            connector.preset = (total * left - delay, energy)
            connector.due = now + delay

    def _pickup_delay(self, remaining_s: float) -> float:
        """When a session found under way is picked up: within one meter interval (and
        before it would have ended), so that a fleet booting together spreads them out."""
        return self._rng.random() * min(self._meter_interval_s, remaining_s)

    # -- the charging-session loop ----------------------------------------------------------

    def _status(self, connector: _Connector, status: str, intended: float) -> None:
        if self._v201:  # one connector per EVSE; only changes of ConnectorStatus are sent
            mapped = _STATUS_201[status]
            if mapped != connector.reported:
                previous, connector.reported = connector.reported, mapped
                self._send_later("StatusNotification", v201.status_notification(
                    connector.connector_id, 1, mapped, self.wall(intended)), intended)
                assert self.device_model is not None
                ref = connector_ref(connector.connector_id, 1, "AvailabilityState")
                self.device_model.set_internal(ref, mapped)
                if "Unavailable" in (previous, mapped) and previous:
                    self._notify_event(ref, mapped, intended)
            return
        self._send_later("StatusNotification", v16.status_notification(
            connector.connector_id, status, self.wall(intended)), intended)

    def _connector_due(self, connector: _Connector) -> None:
        due = connector.due
        state = connector.state
        if state is ConnectorState.IDLE:
            connector.due = NEVER
            if self._online_at(due):
                self._metrics.arrivals += 1
                self._plug_in(connector, self.id_tag if connector.reservation is None
                              or connector.preset is not None
                              else connector.reservation[1], due)
            elif connector.preset is not None:
                pass  # under way already: picked up after the next boot
            else:
                self._metrics.arrivals_missed += 1
                self._idle(connector, due)
        elif state is ConnectorState.CHARGING and due < connector.session_end:
            self._charge(connector, due)
            if connector.applied_w == 0.0 and connector.meter_wh >= (
                    connector.meter_start + connector.target_wh) and not connector.suspended:
                connector.suspended = True
                if self._v201:
                    self._send_later("TransactionEvent", self._transaction_event(
                        connector, "Updated", "ChargingStateChanged", due,
                        charging_state="SuspendedEV"), due, connector)
                else:
                    self._status(connector, "SuspendedEV", due)
            if self._v201:
                self._send_later("TransactionEvent", self._transaction_event(
                    connector, "Updated", "MeterValuePeriodic", due, "Sample.Periodic"),
                    due, connector)
            else:
                self._send_later("MeterValues", self._meter_values(
                    connector, due, "Sample.Periodic", True), due, connector)
            connector.due = min(due + self._meter_interval_s, connector.session_end)
        elif state is ConnectorState.CHARGING:
            connector.fire(_ConnectorEvent.SESSION_END)
            connector.due = NEVER
            self._charge(connector, due)
            if self._v201:
                stopped, trigger = _ENDED_201.get(connector.stop_reason,
                                                  ("Other", "AbnormalCondition"))
                self._send_later("TransactionEvent", self._transaction_event(
                    connector, "Ended", trigger, due, "Transaction.End",
                    charging_state="EVConnected", stopped_reason=stopped), due, connector)
            else:
                transaction_id = connector.transaction_id
                assert not isinstance(transaction_id, str)
                self._send_later("StopTransaction", v16.stop_transaction(
                    transaction_id or 0, connector.id_tag, connector.meter,
                    self.wall(due), connector.stop_reason), due, connector)
            self._status(connector, "Finishing", due)
        else:
            connector.due = NEVER

    def _charge(self, connector: _Connector, until: float) -> None:
        """Advance the energy register: the EV's demand wanders a little, charging profiles
        cap it, a full battery stops it, and the register never falls."""
        connector.power_w = max(0.0, connector.power_w * self._rng.uniform(0.97, 1.03))
        connector.applied_w = connector.power_w
        if self._profiles is not None:
            limit = self._profiles.limit_w(connector.connector_id, self.wall(until),
                                           connector.started_wall, len(self._connectors))
            if limit is not None:
                connector.applied_w = min(connector.power_w, limit)
        energy = connector.applied_w * (until - connector.sampled_at) * self._spec.time_scale
        remaining = connector.meter_start + connector.target_wh - connector.meter_wh
        if energy / 3600 >= remaining:
            connector.meter_wh += max(remaining, 0.0)
            connector.applied_w = 0.0
        else:
            connector.meter_wh += energy / 3600
        connector.sampled_at = until

    def _idle_gap(self) -> float:
        low, high = self._spec.idle_s
        return NEVER if low == NEVER else self._rng.uniform(low, high)

    def _idle(self, connector: _Connector, now: float) -> None:
        """Back to idle: apply a scheduled availability change, then wait for the next EV."""
        connector.transaction_id = None
        connector.started_wall = None
        connector.suspended = False
        connector.preset = None
        if self._profiles is not None:
            self._profiles.end_transaction(connector.connector_id)
        connector.stop_reason = "EVDisconnected"
        if connector.scheduled_operative is not None:
            connector.operative = connector.scheduled_operative
            connector.scheduled_operative = None
        if (connector.operative and not self._resetting and not self._spec.arrivals_per_s
                and self._drain_deadline is None):
            connector.due = now + self._idle_gap()
        else:
            connector.due = NEVER

    def _on_authorize(self, item: _Outgoing, payload: dict[str, Any], now: float) -> None:
        connector = item.connector
        assert connector is not None
        info = payload.get("idTokenInfo" if self._v201 else "idTagInfo")
        if type(info) is dict and info.get("status") == "Accepted" and not self._resetting:
            connector.fire(_ConnectorEvent.AUTHORIZED)
            self._status(connector, "Preparing", now)
            if self._v201:
                self._transaction_started(connector, now)
                return
            payload = v16.start_transaction(
                connector.connector_id, connector.id_tag, connector.meter, self.wall(now))
            if connector.reservation is not None:
                payload["reservationId"] = connector.reservation[0]
                connector.reservation = None
            self._send_later("StartTransaction", payload, now, connector)
        else:
            connector.fire(_ConnectorEvent.NOT_AUTHORIZED)
            self._idle(connector, now)

    def _notify_event(self, ref: Ref, value: str, now: float) -> None:
        """2.0.1: a connector taken out of or back into service is an event worth reporting
        (the AvailabilityState delta a station monitors by default)."""
        event = v201.event_data(
            next(self._transactions), self.wall(now), "Delta", value,
            v201.component(ref.component, evse=ref.evse, connector=ref.connector),
            v201.variable(ref.variable))
        self._send_later("NotifyEvent", v201.notify_event(self.wall(now), 0, [event]), now)

    def _transaction_started(self, connector: _Connector, now: float) -> None:
        """2.0.1: the charger names the transaction itself and reports it at once."""
        connector.transaction_id = f"{self.charger_id}-{next(self._transactions)}"
        connector.seq_no = 0
        payload = self._transaction_event(connector, "Started", "Authorized", now,
                                          "Transaction.Begin", charging_state="Charging")
        payload["idToken"] = v201.id_token(connector.id_tag)
        payload["evse"] = {"id": connector.connector_id, "connectorId": 1}
        if connector.reservation is not None:
            payload["reservationId"] = connector.reservation[0]
            connector.reservation = None
        if connector.remote_start_id is not None:
            payload["transactionInfo"]["remoteStartId"] = connector.remote_start_id
            connector.remote_start_id = None
        self._send_later("TransactionEvent", payload, now, connector)

    def _transaction_event(self, connector: _Connector, event: str, trigger: str, now: float,
                           context: str | None = None, **info: Any) -> dict[str, Any]:
        charging = connector.state is ConnectorState.CHARGING
        samples = None
        if context is not None:
            samples = v201.sampled_values(
                self._spec.measurands_201, context,
                connector.meter, connector.applied_w if charging else 0.0,
                connector.power_w if charging else 0.0, self._soc(connector))
        payload = v201.transaction_event(
            event, self.wall(now), trigger, connector.seq_no, str(connector.transaction_id),
            samples=samples, **info)
        connector.seq_no += 1
        return payload

    def _on_transaction_event(self, item: _Outgoing, payload: dict[str, Any],
                              now: float) -> None:
        event = item.payload["eventType"]
        if event == "Started":
            self._on_start(item, payload, now)
        elif event == "Ended":
            self._on_stop(item, payload, now)

    def _on_start(self, item: _Outgoing, payload: dict[str, Any], now: float) -> None:
        connector = item.connector
        assert connector is not None
        if self._v201:
            info = payload.get("idTokenInfo", {"status": "Accepted"})
            transaction_id: Any = connector.transaction_id
        else:
            transaction_id = payload.get("transactionId")
            info = payload.get("idTagInfo")
        if type(transaction_id) is not int and not self._v201:
            self._metrics.bad_frames[BadFrameKind.BAD_RESULT_PAYLOAD.value] += 1
            connector.fire(_ConnectorEvent.NOT_STARTED)
            self._idle(connector, now)
            self._status(connector, connector.status, now)
            return
        connector.fire(_ConnectorEvent.STARTED)
        connector.transaction_id = transaction_id
        if type(info) is not dict or info.get("status") != "Accepted" or self._resetting:
            if self._resetting:
                connector.stop_reason = self._resetting
            else:
                connector.stop_reason = "DeAuthorized"
            connector.session_end = now
            connector.due = now
            return
        self._status(connector, "Charging", now)
        spec, rng = self._spec, self._rng
        connector.power_w = connector.applied_w = spec.power_w.sample(rng)
        connector.started_wall = self.wall(now)
        connector.sampled_at = now
        connector.meter_start = connector.meter_wh
        connector.soc_start = rng.uniform(10.0, 60.0)
        first_sample = self._meter_interval_s
        if connector.preset is not None:  # under way for a while: its meter clock has a phase
            remaining, connector.target_wh = connector.preset
            connector.preset = None
            first_sample *= rng.random()
        else:
            remaining = spec.session_s.sample(rng)
            connector.target_wh = NEVER if spec.energy_wh is None else spec.energy_wh.sample(rng)
        connector.session_end = now + remaining
        connector.due = min(now + first_sample, connector.session_end)

    def _on_stop(self, item: _Outgoing, payload: dict[str, Any], now: float) -> None:
        connector = item.connector
        assert connector is not None
        connector.fire(_ConnectorEvent.STOPPED)
        self._idle(connector, now)
        self._status(connector, connector.status, now)

    def _connector_failed(self, connector: _Connector, action: str, now: float) -> None:
        if action == "Authorize" and connector.state is ConnectorState.AUTHORIZING:
            connector.fire(_ConnectorEvent.NOT_AUTHORIZED)
            self._idle(connector, now)
        elif action == "StartTransaction" and connector.state is ConnectorState.STARTING:
            connector.fire(_ConnectorEvent.NOT_STARTED)
            self._idle(connector, now)
            self._status(connector, connector.status, now)
        elif action == "StopTransaction" and connector.state is ConnectorState.STOPPING:
            self._on_stop(_Outgoing(action, {}, now, connector), {}, now)

    def _transaction_event_failed(self, item: _Outgoing, now: float) -> None:
        """2.0.1: the transaction is the charger's own; an unanswered event changes nothing
        on its side (a real one would retry it, TransactionMessageAttempts times)."""
        connector = item.connector
        assert connector is not None
        event = item.payload["eventType"]
        if event == "Started" and connector.state is ConnectorState.STARTING:
            self._on_start(item, {}, now)
        elif event == "Ended" and connector.state is ConnectorState.STOPPING:
            self._on_stop(item, {}, now)


_ResultHandler = Callable[[ChargerCore, _Outgoing, dict[str, Any], float], None]
_RESULT_HANDLERS: Final[dict[str, _ResultHandler]] = {
    "TransactionEvent": ChargerCore._on_transaction_event,
    "BootNotification": ChargerCore._on_boot,
    "Authorize": ChargerCore._on_authorize,
    "StartTransaction": ChargerCore._on_start,
    "StopTransaction": ChargerCore._on_stop,
}
