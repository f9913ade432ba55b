"""The fleet: one trio nursery of charger tasks, each a thin shell around a `ChargerCore`.

A charger is a single task: it waits for a message or for its core's next deadline, whichever
comes first, hands what happened to the core and writes what the core answers. No extra task,
channel or nursery per charger, so thousands fit in little memory and CPU. A charger's failure
never touches its siblings: every error a connection can raise is caught and counted here.
"""

from __future__ import annotations

import base64
import math
import random
import signal
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from fleetsim.behaviour.schedule import assign_behaviours
from fleetsim.charger.core import ChargerCore, ChargerState
from fleetsim.collector import keep_collections_short
from fleetsim.config import RunConfig
from fleetsim.errors import ConfigError
from fleetsim.metrics import Metrics
from fleetsim.transport import ConnectError, Connection, ConnectionClosed, open_connection

__all__ = ["Fleet", "FleetOutcome", "ssl_context_for"]

_CLOSE_TIMEOUT_S = 2.0
_UNREACHABLE_PROBES = 10
_SETTLED_S = 60.0
"""A connection that stayed up this long resets the back-off even if the charger never booted
(a CSMS may keep it Pending)."""


@attrs.frozen
class FleetOutcome:
    """How the run ended: `stopped_by` is "duration", "interrupted" or "unreachable"."""

    stopped_by: str
    started_at: float
    ended_at: float
    reason: str = ""
    cpu_seconds: float = 0.0
    behaviours: dict[str, int] = attrs.field(factory=dict)
    """Chargers per behaviour."""


def ssl_context_for(url: str, ca_file: str | None, insecure: bool) -> ssl.SSLContext | None:
    """TLS settings for wss:// URLs: the system trust store, a CA file, or none at all."""
    if not url.startswith("wss://"):
        return None
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ca-file: cannot load {ca_file!r}: {exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Fleet:
    """Ramps up the chargers of `config` (the fleet or its segment) against `url` and runs
    them until told to stop."""

    def __init__(
        self, config: RunConfig, url: str, metrics: Metrics,
        on_second: Callable[[dict[str, Any]], None] | None = None,
        *, shard_urls: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.url = url.rstrip("/")
        self._shard_urls = [shard.rstrip("/") for shard in shard_urls] or [self.url]
        """A CSMS of several processes: charger i always goes to process (i - 1) mod n."""
        self.metrics = metrics
        self._on_second = on_second
        self._ssl_context = ssl_context_for(url, config.ca_file, config.insecure)
        self._wall_offset = time.time() - trio.current_time()
        self._stop = trio.Event()
        self._stopped_by = "duration"
        self._reason = ""
        self._t0 = trio.current_time()
        self._draining = False
        self._target = 0
        """The fleet size being grown to."""
        self._quiet = False
        self._conversing: dict[int, ChargerCore] = {}
        self._undrained: set[int] = set()
        self._all_quiet = trio.Event()
        self._all_closed = trio.Event()
        self._wait_scopes: dict[int, trio.CancelScope] = {}
        self._send_guards: dict[int, trio.CancelScope] = {}
        self._links: dict[int, Connection] = {}
        self._chargers_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._started = 0
        self._cpu_mark = (self._t0, time.process_time())
        self._cpu_start = self._cpu_mark[1]
        self.behaviour_names, self._specs, weights = config.behaviours()
        # the whole fleet's assignment, whatever slice of it runs here
        self._assignment = assign_behaviours(weights, config.chargers, config.seed)
        self._indexes = config.charger_indexes()

    def behaviour_counts(self) -> dict[str, int]:
        """How many of this run's chargers play each behaviour: those the fleet was grown to
        (a ramp may stop short), or its whole slice before it runs."""
        counts = dict.fromkeys(self.behaviour_names, 0)
        limit = self._target or self.config.chargers
        for index in self._indexes:
            if index > limit:
                break
            counts[self.behaviour_names[self._assignment[index - 1]]] += 1
        return counts

    @property
    def started(self) -> int:
        """Chargers started so far (each keeps running, reconnecting, until the end)."""
        return self._started

    @property
    def stopping(self) -> bool:
        """The fleet was asked to stop: a driver should start nothing more."""
        return self._stop.is_set()

    async def wait_stopping(self) -> None:
        await self._stop.wait()

    @property
    def t0(self) -> float:
        """When the run started (trio clock): timeline rows and profile events count from it."""
        return self._t0

    def stop(self, stopped_by: str = "interrupted", reason: str = "") -> None:
        """Ask the fleet to wind down; the first reason given wins."""
        if not self._stop.is_set():
            self._stopped_by, self._reason = stopped_by, reason
            self._stop.set()

    async def run(self, driver: Callable[[], Awaitable[None]] | None = None) -> FleetOutcome:
        """Run until the duration is over, a signal, or an unreachable target.

        With a `driver` (a ramp), the driver grows the fleet with `grow` and calls `stop` when
        it is done; the duration does not apply.
        """
        started_at = time.time()
        config = self.config
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_signals)
            nursery.start_soon(keep_collections_short)
            self._t0 = trio.current_time()
            self._cpu_mark = (self._t0, time.process_time())
            self._cpu_start = self._cpu_mark[1]
            nursery.start_soon(self._tick_seconds)
            nursery.start_soon(self._probe_loop_lag)
            async with trio.open_nursery() as chargers:
                self._chargers_scope = chargers.cancel_scope
                self._nursery = chargers
                if driver is None:
                    chargers.start_soon(self.grow, config.chargers)
                else:
                    chargers.start_soon(driver)
                with trio.move_on_after(config.duration_s if driver is None else math.inf):
                    await self._stop.wait()
                self.stop("duration")
                await self._drain()
                chargers.cancel_scope.cancel()
            self._close_second(final=True)
            nursery.cancel_scope.cancel()
        return FleetOutcome(self._stopped_by, started_at, time.time(), self._reason,
                            cpu_seconds=time.process_time() - self._cpu_start,
                            behaviours=self.behaviour_counts())

    # -- supervision ------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Graceful stop, in two phases so that closing never competes with answers.

        First every charger stops sending new CALLs and waits for the answers still due (at
        most the grace period); only when all are in, or the grace is over, do the connections
        close.
        """
        self._draining = True
        now = trio.current_time()
        # Drain every core in place rather than waking 5000 tasks at once: a wake-up storm
        # would delay the very answers the grace period is waiting for.
        for index, core in self._conversing.items():
            core.drain(now, self.config.graceful_stop_s)
            if not core.drained:
                self._undrained.add(index)
                scope = self._wait_scopes.get(index)
                if scope is not None:
                    scope.deadline = min(scope.deadline, core.next_deadline())
        if not self._undrained:
            self._go_quiet()
        with trio.move_on_after(self.config.graceful_stop_s):
            await self._all_quiet.wait()
        self._go_quiet()
        if not self._conversing:
            self._all_closed.set()
        with trio.move_on_after(_CLOSE_TIMEOUT_S + 1.0):
            await self._all_closed.wait()

    def _wake_all(self) -> None:
        for scope in self._wait_scopes.values():
            scope.cancel()

    def _go_quiet(self) -> None:
        if not self._quiet:
            self._quiet = True
            self._all_quiet.set()
            self._wake_all()

    def _note_drained(self, index: int) -> None:
        self._undrained.discard(index)
        if self._draining and not self._undrained:
            self._go_quiet()

    async def _watch_signals(self) -> None:
        """First Ctrl-C: graceful stop. Another, or one during the graceful stop: stop now."""
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread; the caller handles them there
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self._stop.is_set():
                    self._chargers_scope.cancel()
                self.stop("interrupted", "interrupted by signal")

    async def _probe_loop_lag(self) -> None:
        """Wake every 20 ms and note how late: a busy generator cannot keep time."""
        interval = 0.02
        due = trio.current_time() + interval
        while not self._quiet:  # closing connections is not measured
            await trio.sleep_until(due)
            now = trio.current_time()
            self.metrics.loop_lag(now - due)
            due = max(due + interval, now)

    async def _tick_seconds(self) -> None:
        next_tick = self._t0 + 1.0
        while True:
            await trio.sleep_until(next_tick)
            next_tick += 1.0
            self._cancel_stalled_sends()
            self._close_second()

    def _close_second(self, *, final: bool = False) -> None:
        """Close a timeline row; the last, partial one (the shutdown) is not shown live."""
        now, cpu = trio.current_time(), time.process_time()
        span = now - self._cpu_mark[0]
        share = (cpu - self._cpu_mark[1]) / span if span >= 0.5 else None
        self._cpu_mark = (now, cpu)
        row = self.metrics.close_interval(now - self._t0, share, closing=self._quiet)
        if self._on_second is not None and not final:
            self._on_second(row)

    async def grow(self, chargers: int) -> None:
        """Start chargers, `ramp_per_s` a second, until `chargers` (at most the configured
        fleet) have started; returns when the last one has, or when the fleet is draining."""
        assert self._nursery is not None, "grow() is for a running fleet"
        t0 = trio.current_time()
        first = self._target
        self._target = max(self._target, min(chargers, self.config.chargers))
        for index in self._indexes:  # a segment plays its own slice, at the fleet's times
            if index <= first:
                continue
            if index > self._target:
                break
            if self._draining:
                return
            due = t0 + (index - first - 1) / self.config.ramp_per_s
            if trio.current_time() < due:
                await trio.sleep_until(due)
            self._nursery.start_soon(self._charger, index)
            self._started += 1

    def _check_reachable(self) -> None:
        """Give up early when the first attempts all failed and none ever succeeded."""
        metrics = self.metrics
        failures = sum(metrics.connect_failures.values())
        if metrics.connected_peak == 0 and failures >= min(len(self._indexes),
                                                           _UNREACHABLE_PROBES):
            reasons = ", ".join(f"{reason} x{n}" for reason, n in
                                metrics.connect_failures.most_common())
            self.stop("unreachable", f"no charger could connect to {self.url} ({reasons})")

    # -- one charger ------------------------------------------------------------------------

    async def _charger(self, index: int) -> None:
        config = self.config
        charger_id = config.charger_id(index)
        rng = random.Random(f"{config.seed}:{charger_id}")
        spec = self._specs[self._assignment[index - 1]]
        core = ChargerCore(charger_id, spec, self.metrics, rng, self._wall_offset,
                           origin=self._t0)
        headers: list[tuple[str, str]] = []
        if config.password:
            token = base64.b64encode(f"{charger_id}:{config.password}".encode()).decode()
            headers.append(("Authorization", f"Basic {token}"))
        url = f"{self._shard_urls[(index - 1) % len(self._shard_urls)]}/{charger_id}"
        failures = 0
        attempt = 0
        try:
            while not self._draining:
                self.metrics.connect_attempt(reconnect=attempt > 0)
                attempt += 1
                try:
                    settled = await self._connection(index, url, headers, core)
                except Exception as exc:
                    # a bug or an unforeseen fault must not take the fleet down: count it,
                    # report it, and carry on as after a dropped connection
                    self.metrics.internal_errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    if core.state is not ChargerState.DISCONNECTED:
                        core.disconnected(trio.current_time())
                    settled = False
                failures = 0 if settled else failures + 1
                if self._draining:
                    return
                await trio.sleep(spec.backoff.delay(failures, rng))
        finally:
            core.finish()

    async def _connection(self, index: int, url: str, headers: list[tuple[str, str]],
                          core: ChargerCore) -> bool:
        """One connection's life; returns whether it settled: the charger booted, or the
        connection stayed up `_SETTLED_S`. Only that resets the back-off: a CSMS that accepts
        the handshake and then drops must not be retried at the shortest wait forever."""
        started = trio.current_time()
        try:
            async with open_connection(
                url, subprotocols=[core.subprotocol], ssl_context=self._ssl_context,
                headers=headers, connect_timeout=self.config.connect_timeout_s,
                transport=self.config.transport,
            ) as conn:
                opened = trio.current_time()
                self.metrics.connect_ok(opened - started)
                self._conversing[index] = core
                booted = await self._conversation(index, conn, core)
        except ConnectError as exc:
            self.metrics.connect_failed(exc.reason)
            self._check_reachable()
            return False
        finally:
            # only now, after open_connection has finished its close handshake
            if self._conversing.pop(index, None) is not None:
                self._note_drained(index)
                if self._quiet and not self._conversing:
                    self._all_closed.set()
        return booted or trio.current_time() - opened >= _SETTLED_S

    async def _conversation(self, index: int, conn: Connection, core: ChargerCore) -> bool:
        """Run `_converse` and account for how the connection ended; returns whether the
        charger was booted when it did."""
        clean = shutdown = booted = False
        try:
            with trio.CancelScope() as guard:
                self._send_guards[index] = guard
                self._links[index] = conn
                ending = await self._converse(index, conn, core)
                booted = core.booted
                if ending == "drained":
                    clean = shutdown = True
                    core.finish()
                elif ending == "reset":  # the CSMS asked for a Reset: reconnect, boot again
                    clean = True
                    self.metrics.resets += 1
                    core.disconnected(trio.current_time(), reboot=True)
                else:  # the behaviour drops the link, as a network outage would, or no pong
                    self.metrics.ping_timeouts += ending == "ping_timeout"
                    await conn.abort()
                    core.disconnected(trio.current_time())
            if guard.cancelled_caught:  # `_cancel_stalled_sends` gave up on this connection
                booted = core.booted
                await conn.abort()  # a close handshake would only wait for the stuck write
                core.disconnected(trio.current_time())
        except ConnectionClosed as exc:
            clean, booted = exc.clean, core.booted
            core.disconnected(trio.current_time())
        except trio.Cancelled:
            clean = shutdown = True
            core.finish()
            with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT_S):
                await conn.aclose()
            raise
        finally:
            self._wait_scopes.pop(index, None)
            self._send_guards.pop(index, None)
            self._links.pop(index, None)
            self.metrics.disconnected(clean=clean, shutdown=shutdown)
        return booted

    async def _converse(self, index: int, conn: Connection, core: ChargerCore) -> str:
        """Talk until the connection closes (raises), the fleet has drained ("drained"), the
        charger reboots after a Reset ("reset"), its behaviour drops the link ("drop") or the
        CSMS stopped answering even pings ("ping_timeout").

        A CSMS that stops reading may still take small frames into its socket buffer for
        ever, so writes alone never tell. As real chargers do with WebSocket pings: when the
        CSMS has said nothing for a call timeout since the charger wrote, the charger pings,
        and a pong that does not come within another call timeout drops the connection.
        """
        if self._draining:
            return "drained"
        timeout = self.config.charger.call_timeout_s
        now = trio.current_time()
        await self._send(conn, core.connected(now))
        unheard = now  # the first write since the CSMS was last heard from, or the ping
        pinged = False
        while True:
            if self._draining:
                if not core.draining:
                    core.drain(trio.current_time(), self.config.graceful_stop_s)
                if core.drained:
                    self._note_drained(index)
                    if self._quiet:
                        return "drained"
            elif core.wants_reconnect:
                return "reset"
            elif core.wants_drop:
                return "drop"
            deadline = min(core.next_deadline(), unheard + timeout)
            received: str | None = None
            if deadline > trio.current_time():
                with trio.move_on_at(deadline) as scope:
                    self._wait_scopes[index] = scope
                    received = await conn.receive_text()
            now = trio.current_time()
            if received is not None or (pinged and not conn.awaiting_pong):
                unheard, pinged = math.inf, False
            answered = None  # a CALL answered at once, timed once: not a later send
            out = []
            if received is not None:
                out = core.receive(received, now)
                answered = core.answered_action
            if now >= core.next_deadline():
                out += core.tick(now)
            if out:
                unheard = min(unheard, now)
                await self._send(conn, out)
                if answered is not None:
                    self.metrics.csms_call_answered_in(answered, trio.current_time() - now)
            if now >= unheard + timeout:
                if pinged:
                    return "ping_timeout"
                await conn.ping()
                unheard, pinged = now, True

    @staticmethod
    async def _send(conn: Connection, frames: list[str]) -> None:
        """Write frames; a write that blocks shows in the connection's `writing_since`, where
        `_cancel_stalled_sends` finds it (a cancel scope per send would cost a tenth of the
        fleet's throughput)."""
        for text in frames:
            await conn.send_text(text)

    def _cancel_stalled_sends(self) -> None:
        """A write blocked longer than the call timeout (a CALL, an answer, a ping, or a pong or
        close the transport writes by itself) means the CSMS stopped reading; the charger's
        clock may be frozen behind it: drop the connection."""
        limit = trio.current_time() - self.config.charger.call_timeout_s
        for index, conn in self._links.items():
            since = conn.writing_since
            guard = self._send_guards[index]
            if since is not None and since < limit and not guard.cancel_called:
                self.metrics.send_stalls += 1
                guard.cancel()
