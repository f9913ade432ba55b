"""The embedded CSMS's trio shell: WebSocket handshakes, the per-connection loop, TLS, auth.

It runs in-process (tests, `await nursery.start(serve_csms, config)`) or as its own process
(`fleetsim csms`, and the embedded target of `fleetsim spawn`, so that it does not share a core
with the fleet it serves).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import heapq
import itertools
import random
import ssl
import time

import attrs
import trio

from fleetsim.config import CAPACITY_WORKERS, CsmsConfig
from fleetsim.csms.commands import pick_command
from fleetsim.csms.handlers import CsmsCore, CsmsStats
from fleetsim.errors import ConfigError, FleetsimError
from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import BadFrame, Call, CallError, CallResult, decode_frame, encode_frame
from fleetsim.transport import Connection, ConnectionClosed, PendingConnection, serve_websocket

__all__ = ["CsmsServer", "serve_csms"]

_COMMAND_TIMEOUT_S = 30.0


class _Session:
    """What the CSMS knows of one connected charger, for the commands it sends."""

    __slots__ = ("conn", "pending", "transactions")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transactions: set[int] = set()
        self.pending: tuple[str, str, float] | None = None  # unique id, action, sent at


@attrs.frozen
class CsmsServer:
    """What `serve_csms` hands to `nursery.start`: where it listens and its live counters."""

    url: str
    port: int
    stats: CsmsStats


def _server_ssl_context(config: CsmsConfig) -> ssl.SSLContext | None:
    if config.cert_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cert-file: cannot load {config.cert_file!r}: {exc}") from None
    return context


def _track_transactions(session: _Session, call: Call, answer: CallResult | CallError) -> None:
    """Remember running transactions so that RemoteStopTransaction can name real ones."""
    if not isinstance(answer, CallResult):
        return
    if call.action == "StartTransaction":
        session.transactions.add(answer.payload["transactionId"])
    elif call.action == "StopTransaction":
        session.transactions.discard(call.payload.get("transactionId", -1))


def _authorized(headers: tuple[tuple[str, str], ...], password: str) -> bool:
    for name, value in headers:
        if name == "authorization" and value.startswith("Basic "):
            try:
                decoded = base64.b64decode(value[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            return decoded.partition(":")[2] == password
    return False


async def serve_csms(
    config: CsmsConfig, *, task_status: trio.TaskStatus[CsmsServer] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve OCPP 1.6 chargers on `config.host:config.port` until cancelled."""
    stats = CsmsStats()
    core = CsmsCore(stats, heartbeat_interval_s=config.heartbeat_interval_s,
                    boot_status=config.boot_status)
    ssl_context = _server_ssl_context(config)
    rng = random.Random(config.seed)
    delay = config.delay
    sessions: dict[str, _Session] = {}
    # The capacity model keeps its workers' time on paper: each CALL takes the worker free
    # soonest, from the instant it is free, so throughput under overload is exactly the
    # capacity (sleeping `service_s` per CALL would add each wake-up's delay to the next).
    free_at = [0.0] * CAPACITY_WORKERS  # a heap of the instants each worker is free
    service_s = CAPACITY_WORKERS / config.capacity_per_s if config.capacity_per_s else 0.0

    async def handle(pending: PendingConnection) -> None:
        request = pending.request
        charger_id = request.path.partition("?")[0].rstrip("/").rpartition("/")[2]
        if not charger_id:
            stats.handshakes_rejected["no_charger_id"] += 1
            await pending.reject(404, "the URL path must end in the charger ID")
            return
        if config.password is not None and not _authorized(request.headers, config.password):
            stats.handshakes_rejected["unauthorized"] += 1
            await pending.reject(401, "unauthorized")
            return
        if v16.SUBPROTOCOL not in request.subprotocols:
            stats.handshakes_rejected["subprotocol"] += 1
            conn = await pending.accept(None)
            await conn.aclose(1002, "ocpp1.6 subprotocol required")
            return
        conn = await pending.accept(v16.SUBPROTOCOL)
        stats.connections += 1
        stats.connections_total += 1
        session = sessions[charger_id] = _Session(conn)
        try:
            while True:
                frame = decode_frame(await conn.receive_text())
                if type(frame) is Call:
                    if delay.kind != "none":
                        await trio.sleep(delay.sample_s(rng))
                    if service_s:
                        done = max(trio.current_time(), heapq.heappop(free_at)) + service_s
                        heapq.heappush(free_at, done)
                        await trio.sleep_until(done)
                    answer = core.answer(frame, time.time())
                    _track_transactions(session, frame, answer)
                    await conn.send_text(encode_frame(answer))
                elif isinstance(frame, BadFrame):
                    stats.bad_frames[frame.kind.value] += 1
                    if frame.reply is not None:
                        await conn.send_text(encode_frame(frame.reply))
                elif session.pending is not None and frame.unique_id == session.pending[0]:
                    action = session.pending[1]
                    session.pending = None
                    if isinstance(frame, CallError):
                        stats.commands_callerror[f"{action} {frame.error_code}"] += 1
                    else:
                        stats.commands_answered[action] += 1
                else:
                    stats.bad_frames["unknown_id"] += 1
        except ConnectionClosed as exc:
            stats.closes["clean" if exc.clean else "abnormal"] += 1
        finally:
            stats.connections -= 1
            if sessions.get(charger_id) is session:
                del sessions[charger_id]
            if session.pending is not None:
                stats.commands_unanswered[session.pending[1]] += 1

    async def send_commands() -> None:
        """Open schedule: CALLs to random idle chargers at `commands_per_s`."""
        ids = itertools.count(1)
        interval = 1 / config.commands_per_s
        due = trio.current_time()
        while True:
            due += interval
            await trio.sleep_until(due)
            now = trio.current_time()
            for session in list(sessions.values()):
                if session.pending is not None and now - session.pending[2] > _COMMAND_TIMEOUT_S:
                    stats.commands_unanswered[session.pending[1]] += 1
                    session.pending = None
            idle = [s for s in rng.sample(list(sessions.values()), min(8, len(sessions)))
                    if s.pending is None]
            if not idle:
                stats.commands_skipped += 1
                continue
            session = idle[0]
            action, payload = pick_command(rng, session.transactions, time.time())
            unique_id = f"csms-{next(ids)}"
            session.pending = (unique_id, action, now)
            stats.commands_sent[action] += 1
            with contextlib.suppress(ConnectionClosed):
                await session.conn.send_text(encode_frame(Call(unique_id, action, payload)))

    async with trio.open_nursery() as nursery:
        try:
            ports: list[int] = await nursery.start(functools.partial(
                serve_websocket, handle, config.host, config.port, ssl_context=ssl_context))
        except OSError as exc:
            raise FleetsimError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
        if config.commands_per_s > 0:
            nursery.start_soon(send_commands)
        scheme = "wss" if ssl_context is not None else "ws"
        host = f"[{config.host}]" if ":" in config.host else config.host
        task_status.started(CsmsServer(f"{scheme}://{host}:{ports[0]}/ocpp", ports[0], stats))


