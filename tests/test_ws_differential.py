"""The connection's reader (fleetsim.wsframes's fast path beside wsproto) against wsproto
alone, the behaviour it replaced: random frame sequences, valid and invalid, cut at random
bytes, on both sides, and frames whose lengths or headers RFC 6455 forbids. Memory streams,
seeded: the same sequences every run."""
from __future__ import annotations

import os
import random
import struct
from collections.abc import Sequence

import pytest
import trio
import trio.testing
from wsproto import ConnectionType
from wsproto.connection import Connection as _FrameConnection
from wsproto.events import BytesMessage, CloseConnection, Event, TextMessage

from fleetsim.transport import MAX_MESSAGE_SIZE, ConnectionClosed, _WsprotoConnection


def _frame(first: int, payload: bytes, mask: bool, lenform: str = "min") -> bytes:
    size = len(payload)
    m = 0x80 if mask else 0
    if lenform == "min":
        if size < 126:
            head = bytes((first, m | size))
        elif size < 65536:
            head = bytes((first, m | 126)) + struct.pack("!H", size)
        else:
            head = bytes((first, m | 127)) + struct.pack("!Q", size)
    elif lenform == "16":
        head = bytes((first, m | 126)) + struct.pack("!H", size)
    else:
        head = bytes((first, m | 127)) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


TEXTS = [b"", b"[2,\"1\",\"Heartbeat\",{}]", "é🚗".encode(), b"x" * 200, b"y" * 70000]
BAD_UTF8 = [b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", "🚗".encode()[:2]]


def _random_frames(rng: random.Random, mask: bool) -> bytes:
    out = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.random()
        if kind < 0.45:
            out.append(_frame(0x81, rng.choice(TEXTS), mask))
        elif kind < 0.6:  # a fragmented text, maybe with a ping inside, maybe cut mid-UTF-8
            data = rng.choice(TEXTS[1:4])
            cut = rng.randint(0, len(data))
            out.append(_frame(0x01, data[:cut], mask))
            if rng.random() < 0.5:
                out.append(_frame(0x89, b"p", mask))
            out.append(_frame(0x80, data[cut:], mask))
        elif kind < 0.65:
            out.append(_frame(0x82, b"[1]", mask))
        elif kind < 0.7:
            out.append(_frame(0x89, b"ping", mask))
        elif kind < 0.73:
            out.append(_frame(0x8A, b"pong", mask))
        else:  # something wrong, one of many kinds
            bad = rng.choice([
                _frame(0x81, rng.choice(BAD_UTF8), mask),
                _frame(0x81, b"hi", not mask),  # wrong masking
                _frame(0xC1, b"hi", mask),  # RSV1
                _frame(0xA1, b"hi", mask),  # RSV2
                _frame(0x83, b"hi", mask),  # reserved data opcode
                _frame(0x8B, b"hi", mask),  # reserved control opcode
                _frame(0x80, b"hi", mask),  # continuation with nothing to continue
                _frame(0x09, b"hi", mask),  # fragmented ping
                _frame(0x89, b"p" * 126, mask),  # control frame too long
                _frame(0x01, b"a", mask) + _frame(0x81, b"b", mask),  # text inside text
                _frame(0x88, b"\x03", mask),  # close with 1 byte
                _frame(0x88, struct.pack("!H", 1005), mask),  # local-only code
                _frame(0x88, struct.pack("!H", 1000) + b"\xc3\x28", mask),  # bad reason
                _frame(0x88, struct.pack("!H", 1000) + b"bye", mask),
                _frame(0x88, b"", mask),
            ])
            out.append(bad)
    return b"".join(out)


def _oracle(raw: bytes, client: bool) -> list[object]:
    proto = _FrameConnection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
    proto.receive_data(raw)
    seen: list[object] = []
    parts: list[object] = []
    for event in proto.events():
        if isinstance(event, (TextMessage, BytesMessage)):
            parts.append(event.data)
            if event.message_finished:
                if isinstance(event, TextMessage):
                    seen.append("".join(parts))  # type: ignore[arg-type]
                else:
                    seen.append(b"".join(parts).decode("utf-8", "replace"))  # type: ignore
                parts = []
        elif isinstance(event, CloseConnection):
            seen.append(int(event.code))
            return seen
    seen.append("eof")
    return seen


async def _ours(raw: bytes, client: bool, cuts: Sequence[int] = (),
                first: int = 0) -> list[object]:
    """What the connection reads of `raw`, written cut at `cuts`; the first `first` bytes
    came with the handshake (`received=`)."""
    ours, peer = trio.testing.memory_stream_pair()
    proto = _FrameConnection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
    conn = _WsprotoConnection(ours, proto, "ocpp1.6", client=client, received=raw[:first])
    seen: list[object] = []

    async def feed() -> None:
        last = first
        for cut in [*cuts, len(raw)]:
            await peer.send_all(raw[last:cut])
            last = cut
            await trio.testing.wait_all_tasks_blocked()
        await peer.send_eof() if hasattr(peer, "send_eof") else await peer.aclose()

    async def drain() -> None:
        while await peer.receive_some():
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(drain)
            try:
                while True:
                    seen.append(await conn.receive_text())
            except ConnectionClosed as exc:
                seen.append("eof" if exc.code is None else int(exc.code))
            await conn.abort()
            nursery.cancel_scope.cancel()
    return seen


@pytest.mark.parametrize("client", [True, False])
@pytest.mark.parametrize("seed", range(20))
async def test_differential(seed: int, client: bool) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        raw = _random_frames(rng, mask=not client)
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(0, 4))))
        expected = _oracle(raw, client)
        got = await _ours(raw, client, cuts)
        assert got == expected, (raw[:80], cuts)


@pytest.mark.parametrize("client", [True, False])
@pytest.mark.parametrize("seed", range(10))
async def test_differential_received_with_head(seed: int, client: bool) -> None:
    rng = random.Random(1000 + seed)
    for _ in range(25):
        raw = _random_frames(rng, mask=not client)
        first = rng.randint(0, len(raw))
        assert await _ours(raw, client, first=first) == _oracle(raw, client)


async def _client_reads(raw: bytes) -> tuple[str | int | None, list[Event]]:
    """A client _WsprotoConnection fed `raw` server bytes: what receive_text gives (text or
    close code) and what the client wrote back (as a wsproto server sees it)."""
    charger, csms_side = trio.testing.memory_stream_pair()
    conn = _WsprotoConnection(charger, _FrameConnection(ConnectionType.CLIENT), "ocpp1.6",
                              client=True)
    csms = _FrameConnection(ConnectionType.SERVER)
    got: str | int | None = None
    with trio.fail_after(5):
        await csms_side.send_all(raw)
        try:
            got = await conn.receive_text()
        except ConnectionClosed as exc:
            got = exc.code
        await conn.abort()
        events: list[Event] = []
        while data := await csms_side.receive_some():
            csms.receive_data(bytes(data))
            events.extend(csms.events())
    return got, events


def _first_answer(raw: bytes) -> str | int | None:
    """What wsproto alone makes of the same bytes."""
    proto = _FrameConnection(ConnectionType.CLIENT)
    proto.receive_data(raw)
    for event in proto.events():
        if isinstance(event, TextMessage):
            return event.data
        if isinstance(event, CloseConnection):
            return event.code
    return None


CASES = {
    # RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length"
    "non-minimal 16-bit length": bytes((0x81, 126)) + struct.pack("!H", 5) + b"hello",
    "non-minimal 64-bit length": bytes((0x81, 127)) + struct.pack("!Q", 5) + b"hello",
    # RFC 6455 5.2: 64-bit length, "the most significant bit MUST be 0"
    "64-bit length, MSB set": bytes((0x81, 127)) + struct.pack("!Q", 1 << 63),
    # control frames: payload <= 125 (5.5)
    "ping with 64-bit length > cap": bytes((0x89, 127)) + struct.pack("!Q", MAX_MESSAGE_SIZE + 1),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_same_answer_as_wsproto(name: str) -> None:
    raw = CASES[name]
    got, _events = await _client_reads(raw)
    assert got == _first_answer(raw), f"{name}: fleetsim {got!r}, wsproto {_first_answer(raw)!r}"
