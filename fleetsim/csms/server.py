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
import hmac
import itertools
import logging
import math
import random
import ssl
import time
from collections.abc import Callable, Sequence

import attrs
import trio

from fleetsim.csms import answers_201 as v201
from fleetsim.csms.answers_16 import CsmsCore, CsmsStats
from fleetsim.csms.commands_16 import pick_command
from fleetsim.csms.commands_201 import MIX_201, NEEDS_TRANSACTION_201, pick_command_201
from fleetsim.csms.config import CAPACITY_WORKERS, CsmsConfig
from fleetsim.csms.deck import Deck
from fleetsim.csms.security_commands import MIX_16, MIX_16_SECURITY, pick_security_command
from fleetsim.csms.signing import CsmsSecurity, csms_security
from fleetsim.errors import ConfigError, FleetsimError
from fleetsim.ocpp import v16
from fleetsim.ocpp.frames import BadFrame, Call, CallError, CallResult, decode_frame, encode_frame
from fleetsim.security import load_passwords, password_for
from fleetsim.transport import Connection, ConnectionClosed, PendingConnection, serve_websocket

__all__ = ["SUBPROTOCOLS", "CsmsServer", "agree_subprotocol", "serve_csms"]

_COMMAND_TIMEOUT_S = 30.0
_SEND_TIMEOUT_S = 10.0
"""A peer that has taken none of the CSMS's frames for this long has stopped reading: it is
dropped, so that it holds up no more than itself (and its stalled sends end)."""
SUBPROTOCOLS = (v16.SUBPROTOCOL, v201.SUBPROTOCOL)
"""What the CSMS speaks."""


def agree_subprotocol(offered: Sequence[str]) -> str | None:
    """The first subprotocol the client offers that the CSMS speaks: the client's list is in
    its order of preference (RFC 6455 section 4.2.2)."""
    for subprotocol in offered:
        if subprotocol in SUBPROTOCOLS:
            return subprotocol
    return None


class _Session:
    """What the CSMS knows of one connected charger, for the commands it sends.

    A 2.0.1 charger's running transactions are in `CsmsCore201`, which sees its seqNos anyway.
    """

    __slots__ = ("charger_id", "conn", "pending", "sending", "stalled", "transactions", "v201")

    def __init__(self, conn: Connection, charger_id: str, is_v201: bool) -> None:
        self.conn = conn
        self.charger_id = charger_id
        self.v201 = is_v201
        self.transactions: set[int] = set()
        self.pending: tuple[str, str, float] | None = None  # unique id, action, sent at
        self.sending = 0  # sends under way: an answer, a command waiting for the send lock
        self.stalled = False


@attrs.frozen
class CsmsServer:
    """What `serve_csms` hands to `nursery.start`: where it listens and its live counters."""

    url: str
    port: int
    stats: CsmsStats


def _server_ssl_context(config: CsmsConfig) -> ssl.SSLContext | None:
    if config.cert_file is None:
        if config.client_ca is not None:
            raise ConfigError("client-ca: client certificates need TLS: give --cert-file")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.cert_file, config.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cert-file: cannot load {config.cert_file!r}: {exc}") from None
    if config.client_ca is not None:
        # a missing, unknown or expired certificate fails the handshake with an alert
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(config.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"client-ca: cannot load {config.client_ca!r}: {exc}") from None
    return context


def _password_check(config: CsmsConfig) -> Callable[[str], str | None] | None:
    """The password each charger must send (None: refuse it), or None if none is asked."""
    if config.passwords_file is not None:
        if config.password is not None:
            raise ConfigError("passwords: a CSV of passwords and --password: give one")
        return load_passwords(config.passwords_file).get
    template = config.password
    if template is None:
        return None
    return functools.partial(password_for, template)


def _track_transactions(session: _Session, call: Call, answer: CallResult | CallError) -> None:
    """Remember running transactions so that RemoteStopTransaction can name real ones."""
    if not isinstance(answer, CallResult):
        return
    if call.action == "StartTransaction":
        session.transactions.add(answer.payload["transactionId"])
    elif call.action == "StopTransaction":
        session.transactions.discard(call.payload.get("transactionId", -1))


def _authorized(headers: tuple[tuple[str, str], ...], charger_id: str,
                password: str | None) -> bool:
    """Basic auth as OCPP security profiles 1 and 2 have it: the user name is the charger
    ID, and the password is that charger's."""
    if password is None:
        return False
    for name, value in headers:
        if name == "authorization" and value.startswith("Basic "):
            try:
                decoded = base64.b64decode(value[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, sent = decoded.partition(":")
            return hmac.compare_digest(user.encode(), charger_id.encode()) & \
                hmac.compare_digest(sent.encode(), password.encode())
    return False


def _logs_in(headers: tuple[tuple[str, str], ...], charger_id: str,
             expected: Callable[[str], str | None], security: CsmsSecurity | None) -> bool:
    """The charger's password, or the one the CSMS has just sent it: from now on its only."""
    if security is None:
        return _authorized(headers, charger_id, expected(charger_id))
    if _authorized(headers, charger_id, security.password(charger_id, expected)):
        return True
    proposed = security.proposed(charger_id)
    if proposed is None or not _authorized(headers, charger_id, proposed):
        return False
    security.confirm_password(charger_id)
    return True


def _secured(security: CsmsSecurity, charger_id: str, is_v201: bool, call: Call,
             answer: CallResult) -> CallResult:
    """The security duties' part in an answer: a SignCertificate is signed (or refused) here,
    an accepted BootNotification is when the CSMS asks for a renewal or a new password."""
    if call.action == "SignCertificate":
        return CallResult(answer.unique_id, security.sign_certificate(charger_id, call.payload))
    if call.action == "BootNotification" and answer.payload.get("status") == "Accepted":
        security.booted(charger_id, is_v201)
    return answer


class _AcceptErrorsInOneLine(logging.Filter):
    """trio logs a failed accept (EMFILE: out of open files) with its traceback ten times a
    second while it lasts: one line every 10 s says as much."""

    def __init__(self) -> None:
        super().__init__()
        self._last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = record.exc_text = None
        now = time.monotonic()
        if now - self._last < 10:
            return False
        self._last = now
        return True


def _log_accept_errors_in_one_line() -> None:
    logger = logging.getLogger("trio.serve_listeners")
    if not any(isinstance(f, _AcceptErrorsInOneLine) for f in logger.filters):
        logger.addFilter(_AcceptErrorsInOneLine())


Tap = Callable[[str, str, str], None]
"""(subprotocol, "in" or "out", frame text): sees every frame, for tests and debugging."""


async def serve_csms(
    config: CsmsConfig, *, tap: Tap | None = None, security: CsmsSecurity | None = None,
    task_status: trio.TaskStatus[CsmsServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve OCPP 1.6 and 2.0.1 chargers on `config.host:config.port` until cancelled.

    Each connection speaks the subprotocol agreed at its handshake, answered by that version's
    core; both cores count into the same `CsmsStats`. A peer that stops reading is dropped (see
    `_SEND_TIMEOUT_S`). `tap`, if given, is shown every frame. `security` (by default made
    from `config.ca_key`) signs renewals and sets passwords (`signing.py`).
    """
    _log_accept_errors_in_one_line()
    stats = CsmsStats()
    core = CsmsCore(stats, heartbeat_interval_s=config.heartbeat_interval_s,
                    boot_status=config.boot_status, shard=config.shard, shards=config.shards)
    core201 = v201.CsmsCore201(stats, heartbeat_interval_s=config.heartbeat_interval_s,
                               boot_status=config.boot_status)
    ssl_context = _server_ssl_context(config)
    expected_password = _password_check(config)
    security = security or csms_security(config)
    security_ids = itertools.count(1)
    rng = random.Random(config.seed + config.shard)
    delay = config.delay
    sessions: dict[str, _Session] = {}
    stuck_since: dict[_Session, float] = {}  # a send under way: since when none got through
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
        if expected_password is not None and not _logs_in(
                request.headers, charger_id, expected_password, security):
            stats.handshakes_rejected["unauthorized"] += 1
            await pending.reject(401, "unauthorized")
            return
        if config.client_ca is not None and request.client_cn != charger_id:
            # the identity is known only now, from the URL, after the TLS handshake: refused
            # as a bad password is
            stats.handshakes_rejected["certificate_cn"] += 1
            await pending.reject(401, "the client certificate's CN is not the charger ID")
            return
        agreed = agree_subprotocol(request.subprotocols)
        if agreed is None:
            stats.handshakes_rejected["subprotocol"] += 1
            conn = await pending.accept(None)
            await conn.aclose(1002, "ocpp1.6 or ocpp2.0.1 subprotocol required")
            return
        conn = await pending.accept(agreed)
        is_v201 = agreed == v201.SUBPROTOCOL
        stats.connections += 1
        stats.connections_total += 1
        stats.subprotocols[agreed] += 1
        session = sessions[charger_id] = _Session(conn, charger_id, is_v201)
        if security is not None:
            security.logged_in(charger_id, request.client_serial)
        try:
            while True:
                text = await conn.receive_text()
                if tap is not None:
                    tap(agreed, "in", text)
                frame = decode_frame(text)
                if type(frame) is Call:
                    if delay.kind != "none":
                        await trio.sleep(delay.sample_s(rng))
                    if service_s:
                        done = max(trio.current_time(), heapq.heappop(free_at)) + service_s
                        heapq.heappush(free_at, done)
                        await trio.sleep_until(done)
                    if is_v201:
                        answer = core201.answer(frame, time.time(), charger_id)
                    else:
                        answer = core.answer(frame, time.time())
                        _track_transactions(session, frame, answer)
                    if security is not None and isinstance(answer, CallResult):
                        answer = _secured(security, charger_id, is_v201, frame, answer)
                    out = encode_frame(answer)
                    if tap is not None:
                        tap(agreed, "out", out)
                    await send_to(session, out)
                elif isinstance(frame, BadFrame):
                    stats.bad_frames[frame.kind.value] += 1
                    if frame.reply is not None:
                        reply = v201.as_v201_error(frame.reply) if is_v201 else frame.reply
                        await send_to(session, encode_frame(reply))
                elif session.pending is not None and frame.unique_id == session.pending[0]:
                    action = session.pending[1]
                    session.pending = None
                    if isinstance(frame, CallError):
                        stats.commands_callerror[f"{action} {frame.error_code}"] += 1
                    else:
                        stats.commands_answered[action] += 1
                        if security is not None:
                            security.answered(charger_id, action, frame.payload)
                else:
                    stats.bad_frames["unknown_id"] += 1
                if security is not None and session.pending is None:
                    await send_owed(session, security)
        except ConnectionClosed as exc:
            how = "stalled" if session.stalled else "clean" if exc.clean else "abnormal"
            stats.closes[how] += 1
        finally:
            stats.connections -= 1
            if sessions.get(charger_id) is session:
                del sessions[charger_id]
                if security is not None:
                    security.gone(charger_id)
            if session.pending is not None:
                stats.commands_unanswered[session.pending[1]] += 1

    async def send_to(session: _Session, text: str) -> None:
        """Send under the watch of `drop_stalled`."""
        if not session.sending:
            stuck_since[session] = trio.current_time()
        session.sending += 1
        try:
            await session.conn.send_text(text)
        finally:
            session.sending -= 1
            if session.stalled or not session.sending:
                stuck_since.pop(session, None)
            else:  # this one got through: the next one waiting has its own time
                stuck_since[session] = trio.current_time()

    async def drop_stalled() -> None:
        """Abort the connections whose sends have made no progress for `_SEND_TIMEOUT_S`: the
        peer stopped reading. Their stuck sends end with the connection."""
        while True:
            await trio.sleep(_SEND_TIMEOUT_S / 4)
            deadline = trio.current_time() - _SEND_TIMEOUT_S
            for session in [s for s, since in stuck_since.items() if since <= deadline]:
                if stuck_since.get(session, math.inf) <= deadline:  # no progress meanwhile
                    del stuck_since[session]
                    session.stalled = True
                    await session.conn.abort()

    async def send_command(session: _Session, text: str) -> None:
        with contextlib.suppress(ConnectionClosed):  # its handler counts it unanswered
            await send_to(session, text)

    async def send_owed(session: _Session, security: CsmsSecurity) -> None:
        """The next command the security duties owe this charger (a CertificateSigned, a
        new password...), when none of the CSMS's is in flight."""
        command = security.next_command(session.charger_id)
        if command is None:
            return
        action, payload = command
        unique_id = f"csms-security-{next(security_ids)}"
        session.pending = (unique_id, action, trio.current_time())
        stats.commands_sent[action] += 1
        out = encode_frame(Call(unique_id, action, payload))
        if tap is not None:
            tap(v201.SUBPROTOCOL if session.v201 else v16.SUBPROTOCOL, "out", out)
        await send_command(session, out)

    async def send_commands(nursery: trio.Nursery) -> None:
        """Open schedule: CALLs to random idle chargers at `commands_per_s`.

        Each is sent in a task of its own, so that a charger that stopped reading holds up
        no command but its own (and is dropped by `drop_stalled`).
        """
        ids = itertools.count(1)
        interval = 1 / config.commands_per_s
        deck, deck_201 = Deck(MIX_16, rng), Deck(MIX_201, rng)
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
            if session.v201:
                transactions = core201.transactions(session.charger_id)
                action, payload = pick_command_201(
                    rng, transactions, time.time(),
                    action=deck_201.deal(() if transactions else NEEDS_TRANSACTION_201))
            elif (action := deck.deal()) in MIX_16_SECURITY:
                action, payload = pick_security_command(rng, time.time(), action)
            else:
                action, payload = pick_command(rng, session.transactions, time.time(),
                                               action=action)
            unique_id = f"csms-{next(ids)}"
            session.pending = (unique_id, action, now)
            stats.commands_sent[action] += 1
            out = encode_frame(Call(unique_id, action, payload))
            if tap is not None:
                tap(v201.SUBPROTOCOL if session.v201 else "ocpp1.6", "out", out)
            nursery.start_soon(send_command, session, out)

    async with trio.open_nursery() as nursery:
        try:
            ports: list[int] = await nursery.start(functools.partial(
                serve_websocket, handle, config.host, config.port, ssl_context=ssl_context))
        except OSError as exc:
            raise FleetsimError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
        nursery.start_soon(drop_stalled)
        if config.commands_per_s > 0:
            nursery.start_soon(send_commands, nursery)
        scheme = "wss" if ssl_context is not None else "ws"
        host = f"[{config.host}]" if ":" in config.host else config.host
        task_status.started(CsmsServer(f"{scheme}://{host}:{ports[0]}/ocpp", ports[0], stats))


