"""The fleet: one trio nursery of charger tasks, each a thin shell around a `ChargerCore`.

A charger is a single task that reads its connection, hands each message to its core and
writes what the core answers. Its timers are not its own: one scheduler task keeps every
charger's next deadline in a heap, wakes once for all that are due, ticks their cores and
writes what they send without waiting (`Connection.send_now`). A waiting charger costs no
cancel scope and no wake-up, and a timer costs no task switch: no extra task, channel or
nursery per charger, so thousands fit in little memory and CPU. A charger's failure never
touches its siblings: every error a connection can raise is caught and counted here.
"""

from __future__ import annotations

import heapq
import itertools
import math
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from fleetsim.behaviour.random_stream import RandomStream
from fleetsim.behaviour.schedule import assign_behaviours
from fleetsim.charger.core import ChargerCore, ChargerState
from fleetsim.collector import keep_collections_short
from fleetsim.config import RunConfig
from fleetsim.errors import ConfigError
from fleetsim.metrics import FleetOutcome, Metrics
from fleetsim.pacing import STEP_S, AutoPace
from fleetsim.security import fleet_credentials, ssl_context_for
from fleetsim.transport import ConnectError, Connection, ConnectionClosed, open_connection

__all__ = ["Fleet", "ssl_context_for"]  # the last from fleetsim.security

_CLOSE_TIMEOUT_S = 2.0
_UNREACHABLE_PROBES = 10
_SETTLED_S = 60.0
"""A connection that stayed up this long resets the back-off even if the charger never booted
(a CSMS may keep it Pending)."""
_TIMER_BATCH = 256
"""Timers handled in one go before the scheduler lets the readers run."""


class _Link:
    """A charger's open connection, as its reader task and the timer scheduler share it."""

    __slots__ = ("conn", "core", "due", "ending", "flushing", "index", "pinged", "scope",
                 "unheard")

    def __init__(self, index: int, conn: Connection, core: ChargerCore) -> None:
        self.index = index
        self.conn = conn
        self.core = core
        self.scope = trio.CancelScope()
        self.due = math.inf
        """The deadline of the link's earliest entry in the timer heap."""
        self.unheard = math.inf
        """The first write since the CSMS was last heard from, or the ping."""
        self.pinged = False
        self.flushing = False
        self.ending: str | None = None
        """Why the conversation ends, once it does: set before `scope` is cancelled."""


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
        self._credentials = fleet_credentials(config, url)
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
        self._links: dict[int, _Link] = {}
        self._timers: list[tuple[float, int, _Link]] = []
        self._timer_order = itertools.count()
        self._timer_scope: trio.CancelScope | None = None
        self._call_timeout = config.call_timeout_s
        self._chargers_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._started = 0
        self._pace = AutoPace()
        """The pace of `--ramp auto`, kept from one `grow` to the next (a capacity ramp's
        steps)."""
        self._pacing = False
        self._step_lag = 0.0
        self._step_handshakes = [0, 0.0]
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
            nursery.start_soon(self._run_timers)
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
        metrics = self.metrics
        all_booted = (None if metrics.last_first_boot is None
                      or len(metrics.booted_ids) < len(config.charger_indexes())
                      else metrics.last_first_boot - self._t0)
        return FleetOutcome(self._stopped_by, started_at, time.time(), self._reason,
                            cpu_seconds=time.process_time() - self._cpu_start,
                            behaviours=self.behaviour_counts(), all_booted_s=all_booted)

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
                link = self._links.get(index)
                if link is not None:
                    self._schedule(link)
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
        for link in list(self._links.values()):
            if link.ending is None:
                self._end_if_done(link)

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
            self._step_lag = max(self._step_lag, now - due)
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
            if self._pacing:  # shown live, not a figure of the report's timeline
                row = {**row, "ramp_per_s": round(self._pace.per_s)}
            self._on_second(row)

    async def grow(self, chargers: int) -> None:
        """Start chargers, `ramp_per_s` a second (or at `--ramp auto`'s pace), until
        `chargers` (at most the configured fleet) have started; returns when the last one
        has, or when the fleet is draining."""
        assert self._nursery is not None, "grow() is for a running fleet"
        first = self._target
        self._target = max(self._target, min(chargers, self.config.chargers))
        indexes = [index for index in self._indexes if first < index <= self._target]
        if self.config.ramp_per_s is None:
            await self._grow_paced(indexes)
            return
        t0 = trio.current_time()
        for index in indexes:  # a segment plays its own slice, at the fleet's times
            if self._draining:
                return
            due = t0 + (index - first - 1) / self.config.ramp_per_s
            if trio.current_time() < due:
                await trio.sleep_until(due)
            self._start(index)

    def _start(self, index: int) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._charger, index)
        self._started += 1

    async def _grow_paced(self, indexes: list[int]) -> None:
        """`--ramp auto`: the pace is decided every `STEP_S` from the step's loop lag, CPU
        and handshake times (see `fleetsim.pacing`). A segment's process paces itself."""
        pace = self._pace
        self._pacing = True
        try:
            step_start = trio.current_time()
            cpu_mark = time.process_time()
            self._step_lag, self._step_handshakes = 0.0, [0, 0.0]
            next_start = step_start
            for index in indexes:
                if self._draining:
                    return
                now = trio.current_time()
                if now >= step_start + STEP_S:
                    cpu = time.process_time()
                    count, total = self._step_handshakes
                    pace.step(self._step_lag, (cpu - cpu_mark) / (now - step_start),
                              total / count if count else None)
                    step_start, cpu_mark = now, cpu
                    self._step_lag, self._step_handshakes = 0.0, [0, 0.0]
                if now < next_start:
                    await trio.sleep_until(next_start)
                self._start(index)
                next_start = max(next_start, now - STEP_S) + 1 / pace.per_s
        finally:
            self._pacing = False

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
        rng = RandomStream(f"{config.seed}:{charger_id}")
        spec = self._specs[self._assignment[index - 1]]
        core = ChargerCore(charger_id, spec, self.metrics, rng, self._wall_offset,
                           origin=self._t0)
        headers = self._credentials.headers(charger_id)
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
                    self.metrics.internal_error(exc)
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
        security = core.security
        try:
            if security is None:
                ssl_context = self._credentials.ssl_context(core.charger_id)
            else:  # what the CSMS gave it: a renewed certificate, a new password
                ssl_context = self._credentials.ssl_context(core.charger_id,
                                                            security.client_pair)
                headers = self._credentials.headers(core.charger_id, security.password)
        except ConfigError:  # its certificate went away since the start
            self.metrics.connect_failed("client_cert")
            return False
        try:
            async with open_connection(
                url, subprotocols=[core.subprotocol], ssl_context=ssl_context,
                headers=headers, connect_timeout=self.config.connect_timeout_s,
                transport=self.config.transport,
            ) as conn:
                opened = trio.current_time()
                phases = conn.phases
                self.metrics.connect_ok(opened - started, () if phases is None else (
                    phases.tcp_s, phases.tls_s, phases.websocket_s))
                self._step_handshakes[0] += 1
                self._step_handshakes[1] += opened - started
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
        link = _Link(index, conn, core)
        self._links[index] = link
        try:
            with link.scope:
                ending = await self._converse(link)
            if link.scope.cancelled_caught:  # the scheduler, a drain or a stalled write
                ending = link.ending or "stalled"
            booted = core.booted
            if ending == "drained":
                clean = shutdown = True
                core.finish()
            elif ending == "reset" and core.reconnecting:  # new credentials: no reboot
                clean = True
                core.disconnected(trio.current_time())
            elif ending == "reset":  # the CSMS asked for a Reset: reconnect, boot again
                clean = True
                self.metrics.resets += 1
                core.disconnected(trio.current_time(), reboot=True)
            elif ending == "lost":  # a write found the connection gone
                core.disconnected(trio.current_time())
            else:  # the behaviour drops the link, as a network outage would; no pong; stalled
                self.metrics.ping_timeouts += ending == "ping_timeout"
                await conn.abort()  # a close handshake would only wait for a stuck write
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
            link.ending = link.ending or "closed"
            self._links.pop(index, None)
            self.metrics.disconnected(clean=clean, shutdown=shutdown)
        return booted

    async def _converse(self, link: _Link) -> str:
        """Read until the connection closes (raises), the fleet has drained ("drained"), the
        charger reboots after a Reset ("reset") or its behaviour drops the link ("drop");
        the scheduler ends it by cancelling `link.scope` for the same reasons, and when the
        CSMS stopped answering even pings ("ping_timeout", see `_on_timer`).
        """
        if self._draining:
            return "drained"
        conn, core = link.conn, link.core
        now = trio.current_time()
        link.unheard = now
        await self._send(conn, core.connected(now))
        self._schedule(link)
        metrics = self.metrics
        while True:
            ending = self._ending(link)
            if ending is not None:
                return ending
            received = await conn.receive_text()
            now = trio.current_time()
            link.unheard, link.pinged = math.inf, False
            out = core.receive(received, now)
            answered = core.answered_action  # a CALL answered at once, timed once
            if now >= core.next_deadline():
                out += core.tick(now)
            if out:
                link.unheard = now
                await self._send(conn, out)
                if answered is not None:
                    metrics.csms_call_answered_in(answered, trio.current_time() - now)
            self._schedule(link)

    @staticmethod
    async def _send(conn: Connection, frames: list[str]) -> None:
        """Write at once if the socket takes it, else wait until it has."""
        if not conn.send_now(frames):
            await conn.flush()

    def _ending(self, link: _Link) -> str | None:
        """Whether the conversation is over, after whatever the core last did."""
        core = link.core
        if self._draining:
            if not core.draining:
                core.drain(trio.current_time(), self.config.graceful_stop_s)
            if core.drained:
                self._note_drained(link.index)
                if self._quiet:
                    return "drained"
        elif core.wants_reconnect:
            return "reset"
        elif core.wants_drop:
            return "drop"
        return None

    def _end_if_done(self, link: _Link) -> bool:
        ending = self._ending(link)
        if ending is not None:
            self._end(link, ending)
        return ending is not None

    @staticmethod
    def _end(link: _Link, ending: str) -> None:
        """End a conversation from outside its reader task."""
        if link.ending is None:
            link.ending = ending
            link.scope.cancel()

    # -- timers -----------------------------------------------------------------------------

    def _schedule(self, link: _Link) -> None:
        """Put the link's next deadline in the heap, unless an entry as early is there."""
        due = min(link.core.next_deadline(), link.unheard + self._call_timeout)
        if due < link.due and link.ending is None:
            link.due = due
            heapq.heappush(self._timers, (due, next(self._timer_order), link))
            scope = self._timer_scope
            if scope is not None and due < scope.deadline:
                scope.deadline = due

    async def _run_timers(self) -> None:
        """The one task that wakes for every charger's timers."""
        timers = self._timers
        while True:
            with trio.CancelScope(deadline=timers[0][0] if timers else math.inf) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            now = trio.current_time()
            for _ in range(_TIMER_BATCH):
                if not timers or timers[0][0] > now:
                    break
                due, _order, link = heapq.heappop(timers)
                if due != link.due or link.ending is not None:
                    continue  # superseded by an earlier entry, or the connection is gone
                link.due = math.inf
                try:
                    self._on_timer(link, now)
                except Exception as exc:  # a bug must not stop every charger's timers
                    self.metrics.internal_error(exc)
                    self._end(link, "error")

    def _on_timer(self, link: _Link, now: float) -> None:
        """A charger's deadline came: tick its core and write what it sends, without waiting.

        A CSMS that stops reading may still take small frames into its socket buffer for
        ever, so writes alone never tell. As real chargers do with WebSocket pings: when the
        CSMS has said nothing for a call timeout since the charger wrote, the charger pings,
        and a pong that does not come within another call timeout drops the connection.
        """
        conn, core = link.conn, link.core
        if link.pinged and not conn.awaiting_pong:
            link.unheard, link.pinged = math.inf, False
        try:
            if now >= core.next_deadline():
                out = core.tick(now)
                if out:
                    link.unheard = min(link.unheard, now)
                    if not conn.send_now(out):
                        self._flush_later(link)
            if self._end_if_done(link):
                return
            if now >= link.unheard + self._call_timeout:
                if link.pinged:
                    self._end(link, "ping_timeout")
                    return
                link.unheard, link.pinged = now, True
                if not conn.ping_now():
                    self._flush_later(link)
        except ConnectionClosed:
            self._end(link, "lost")
            return
        self._schedule(link)

    def _flush_later(self, link: _Link) -> None:
        """What a socket could not take at once is written by a task of its own (the reader
        is busy reading); the stall watch sees it in the connection's `writing_since`."""
        if not link.flushing and self._nursery is not None:
            link.flushing = True
            self._nursery.start_soon(self._flush, link)

    async def _flush(self, link: _Link) -> None:
        try:
            await link.conn.flush()
        except ConnectionClosed:
            self._end(link, "lost")
        except Exception as exc:  # as in `_charger`: counted, and the charger carries on
            self.metrics.internal_error(exc)
            self._end(link, "error")
        finally:
            link.flushing = False

    def _cancel_stalled_sends(self) -> None:
        """A write blocked longer than the call timeout (a CALL, an answer, a ping, or a pong or
        close the transport writes by itself) means the CSMS stopped reading; the charger's
        clock may be frozen behind it: drop the connection."""
        limit = trio.current_time() - self._call_timeout
        for link in list(self._links.values()):
            since = link.conn.writing_since
            if since is not None and since < limit and link.ending is None:
                self.metrics.send_stalls += 1
                self._end(link, "stalled")
