"""The hot-path frame codec against wsproto as the oracle: what one writes the other reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from fleetsim.wsframes import RandomDraws, frame_extent, read_text, text_frame

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def _read_by_wsproto(frames: bytes, side: ConnectionType) -> list[str]:
    reader = Connection(side)
    reader.receive_data(frames)
    texts = []
    for event in reader.events():
        assert isinstance(event, TextMessage) and event.message_finished, event
        texts.append(event.data)
    return texts


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("client", [True, False])
def test_wsproto_reads_what_text_frame_writes(size: int, client: bool) -> None:
    text = ("é" * size)[:size]  # two bytes a character: the byte length differs
    frame = text_frame(text, RandomDraws(4) if client else None)
    reader_side = ConnectionType.SERVER if client else ConnectionType.CLIENT
    assert _read_by_wsproto(frame + frame, reader_side) == [text, text]
    assert bool(frame[1] & 0x80) is client  # a client masks, a server must not


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("masked", [True, False])
def test_read_text_reads_what_wsproto_writes(size: int, masked: bool) -> None:
    text = ("ü" * size)[:size]
    writer = Connection(ConnectionType.CLIENT if masked else ConnectionType.SERVER)
    frame = writer.send(TextMessage(data=text))
    data = b"junk" + frame + b"next"
    for cut in range(4, 4 + 10):  # the header arrives a byte at a time
        extent = frame_extent(data[:cut], 4)
        assert extent is None or extent[1] == 4 + len(frame)
    extent = frame_extent(data, 4)
    assert extent is not None
    start, end = extent
    assert end == 4 + len(frame)
    assert read_text(data, 4, start, end, masked=masked) == text


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=300), st.booleans())
def test_any_text_survives_both_ways(text: str, client: bool) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates: no JSON encoder fleetsim uses produces them
    frame = text_frame(text, RandomDraws(4) if client else None)
    reader_side = ConnectionType.SERVER if client else ConnectionType.CLIENT
    assert _read_by_wsproto(frame, reader_side) == [text]
    extent = frame_extent(frame, 0)
    assert extent is not None and extent[1] == len(frame)
    assert read_text(frame, 0, extent[0], extent[1], masked=client) == text


def _server_frames() -> dict[str, bytes]:
    def server() -> Connection:
        return Connection(ConnectionType.SERVER)

    bad_utf8 = bytes((0x81, 2, 0xC3, 0x28))
    rsv1 = bytes((0xC1, 1)) + b"x"
    return {
        "first fragment": server().send(TextMessage(data="part", message_finished=False)),
        "binary": server().send(BytesMessage(data=b"[]")),
        "ping": server().send(Ping(b"p")),
        "close": server().send(CloseConnection(code=1000)),
        "invalid UTF-8": bad_utf8,
        "RSV1 set": rsv1,
        "masked, from a server": text_frame("[]", RandomDraws(4)),
    }


@pytest.mark.parametrize("name", list(_server_frames()))
def test_anything_but_a_whole_text_message_is_left_to_wsproto(name: str) -> None:
    frame = _server_frames()[name]
    extent = frame_extent(frame, 0)
    assert extent is not None and extent[1] == len(frame)
    assert read_text(frame, 0, extent[0], extent[1], masked=False) is None


def test_mask_keys_are_fresh_across_draws() -> None:
    keys = RandomDraws(4)
    taken = [keys.take() for _ in range(3000)]  # crosses two draws of 1024
    assert all(len(key) == 4 for key in taken)
    assert len(set(taken)) > 2900  # 32 random bits: collisions are rare, repeats a bug
