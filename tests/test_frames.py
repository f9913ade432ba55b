"""OCPP-J framing: exact encodings both ways, and every kind of bad frame classified."""

from __future__ import annotations

import pytest

from fleetsim.ocpp.frames import (
    MAX_UNIQUE_ID_LENGTH,
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


def test_all_ten_error_codes() -> None:
    assert {code.value for code in ErrorCode} == {
        "NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
        "FormationViolation", "PropertyConstraintViolation", "OccurrenceConstraintViolation",
        "TypeConstraintViolation", "GenericError",
    }


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        (Call("1", "Heartbeat", {}), '[2,"1","Heartbeat",{}]'),
        (Call("a-b", "Authorize", {"idTag": "T"}), '[2,"a-b","Authorize",{"idTag":"T"}]'),
        (CallResult("7", {"status": "Accepted"}), '[3,"7",{"status":"Accepted"}]'),
        (CallError("9", "NotImplemented", "nope", {}), '[4,"9","NotImplemented","nope",{}]'),
    ],
)
def test_encode_and_decode_round_trip(frame: Call | CallResult | CallError, text: str) -> None:
    assert encode_frame(frame) == text
    assert decode_frame(text) == frame
    assert decode_frame(text.encode()) == frame


def test_callerror_description_is_truncated_to_255() -> None:
    text = encode_frame(CallError("1", "GenericError", "x" * 300))
    decoded = decode_frame(text)
    assert isinstance(decoded, CallError)
    assert len(decoded.description) == 255


def test_callerror_without_details_decodes() -> None:
    assert decode_frame('[4,"1","InternalError","boom"]') == CallError("1", "InternalError",
                                                                      "boom", {})


def test_unknown_error_code_becomes_generic_error() -> None:
    decoded = decode_frame('[4,"1","Teapot","",{}]')
    assert isinstance(decoded, CallError)
    assert decoded.error_code == "GenericError"


def test_unique_ids_are_unique_and_short() -> None:
    ids = UniqueIds("r1-")
    seen = {ids.next() for _ in range(10_000)}
    assert len(seen) == 10_000
    assert max(map(len, seen)) <= MAX_UNIQUE_ID_LENGTH


def test_call_rejects_overlong_unique_id() -> None:
    with pytest.raises(ValueError, match="unique id"):
        Call("x" * 37, "Heartbeat", {})


@pytest.mark.parametrize(
    ("text", "kind", "reply_code"),
    [
        ("not json", BadFrameKind.NOT_JSON, None),
        ('{"a": 1}', BadFrameKind.NOT_ARRAY, None),
        ("[]", BadFrameKind.NOT_ARRAY, None),
        ('[7,"1",{}]', BadFrameKind.UNKNOWN_MESSAGE_TYPE, None),
        ('["2","1","Heartbeat",{}]', BadFrameKind.UNKNOWN_MESSAGE_TYPE, None),
        ('[2,"1","Heartbeat"]', BadFrameKind.BAD_CALL, "FormationViolation"),
        ('[2,"1","Reset",[]]', BadFrameKind.BAD_CALL, "FormationViolation"),
        ('[2,"1",5,{}]', BadFrameKind.BAD_CALL, "FormationViolation"),
        ('[2,17,"Reset",{}]', BadFrameKind.BAD_CALL, None),
        ('[2,"' + "x" * 37 + '","Reset",{}]', BadFrameKind.BAD_CALL, None),
        ('[3,"1"]', BadFrameKind.BAD_CALLRESULT, None),
        ('[3,"1","ok"]', BadFrameKind.BAD_CALLRESULT, None),
        ('[4,"1",3,"x",{}]', BadFrameKind.BAD_CALLERROR, None),
        ('[4,"1","GenericError","x",[]]', BadFrameKind.BAD_CALLERROR, None),
    ],
)
def test_bad_frames_are_classified(text: str, kind: BadFrameKind, reply_code: str | None) -> None:
    decoded = decode_frame(text)
    assert isinstance(decoded, BadFrame)
    assert decoded.kind is kind
    if reply_code is None:
        assert decoded.reply is None
    else:
        assert decoded.reply is not None
        assert decoded.reply.unique_id == "1"
        assert decoded.reply.error_code == reply_code
