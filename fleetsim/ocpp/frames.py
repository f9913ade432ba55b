"""OCPP-J RPC framing, sans-IO: CALL / CALLRESULT / CALLERROR to and from JSON text.

Decoding never raises on peer input: a frame that is not a well-formed OCPP-J message comes back
as a `BadFrame` saying what was wrong, and, when the frame claims to be a CALL whose unique id can
be read, the CALLERROR the receiver owes the sender. That keeps every charger alive whatever a CSMS
sends, and lets the caller count each kind of fault.
"""

from __future__ import annotations

import enum
import itertools
from typing import Any

import attrs
import orjson

__all__ = [
    "MAX_UNIQUE_ID_LENGTH",
    "BadFrame",
    "BadFrameKind",
    "Call",
    "CallError",
    "CallResult",
    "ErrorCode",
    "Frame",
    "MessageTypeId",
    "UniqueIds",
    "decode_frame",
    "encode_frame",
]

MAX_UNIQUE_ID_LENGTH = 36
_MAX_DESCRIPTION_LENGTH = 255


class MessageTypeId(enum.IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


class ErrorCode(enum.StrEnum):
    """The ten OCPP-J RPC error codes (OCPP 1.6 section 4.2.3)."""

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


_ERROR_CODES = frozenset(code.value for code in ErrorCode)


def _check_unique_id(_instance: object, _attribute: object, value: str) -> None:
    if not 0 < len(value) <= MAX_UNIQUE_ID_LENGTH:
        raise ValueError(f"unique id must be 1..{MAX_UNIQUE_ID_LENGTH} characters, got {value!r}")


@attrs.frozen
class Call:
    unique_id: str = attrs.field(validator=_check_unique_id)
    action: str
    payload: dict[str, Any]


@attrs.frozen
class CallResult:
    unique_id: str = attrs.field(validator=_check_unique_id)
    payload: dict[str, Any]


@attrs.frozen
class CallError:
    unique_id: str
    error_code: str
    description: str = ""
    details: dict[str, Any] = attrs.field(factory=dict)


class BadFrameKind(enum.StrEnum):
    """Why a frame could not be understood; the values are metric keys."""

    NOT_JSON = "not_json"
    NOT_ARRAY = "not_array"
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    BAD_CALL = "bad_call"
    BAD_CALLRESULT = "bad_callresult"
    BAD_CALLERROR = "bad_callerror"
    UNKNOWN_ID = "unknown_id"
    BAD_RESULT_PAYLOAD = "bad_result_payload"


@attrs.frozen
class BadFrame:
    """A frame that is not valid OCPP-J.

    `reply` is the CALLERROR owed to the sender, or None when no reply can be correlated (OCPP-J
    answers only CALLs, and only when their unique id can be read).
    """

    kind: BadFrameKind
    detail: str
    reply: CallError | None = None


Frame = Call | CallResult | CallError


def encode_frame(frame: Frame) -> str:
    """Serialise a frame to the JSON text of one WebSocket message."""
    if type(frame) is Call:
        data: list[Any] = [2, frame.unique_id, frame.action, frame.payload]
    elif type(frame) is CallResult:
        data = [3, frame.unique_id, frame.payload]
    elif type(frame) is CallError:
        data = [
            4,
            frame.unique_id,
            frame.error_code,
            frame.description[:_MAX_DESCRIPTION_LENGTH],
            frame.details,
        ]
    else:
        raise TypeError(f"not an OCPP-J frame: {frame!r}")
    return orjson.dumps(data).decode()


def _readable_id(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_UNIQUE_ID_LENGTH:
        return value
    return None


def _bad_call(message: list[Any], detail: str, code: ErrorCode) -> BadFrame:
    unique_id = _readable_id(message[1]) if len(message) > 1 else None
    reply = None if unique_id is None else CallError(unique_id, code.value, detail)
    return BadFrame(BadFrameKind.BAD_CALL, detail, reply)


def decode_frame(text: str | bytes) -> Frame | BadFrame:
    """Parse one WebSocket message into a frame, or a `BadFrame` describing the fault."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return BadFrame(BadFrameKind.NOT_JSON, f"not JSON: {exc}")
    if type(message) is not list or not message:
        return BadFrame(BadFrameKind.NOT_ARRAY, f"not a non-empty JSON array: {str(text)[:60]!r}")
    type_id = message[0]
    if type_id == 2 and type(type_id) is int:
        if len(message) != 4:
            return _bad_call(message, f"CALL needs 4 elements, got {len(message)}",
                             ErrorCode.FORMATION_VIOLATION)
        _, unique_id, action, payload = message
        if _readable_id(unique_id) is None:
            return _bad_call(message, "CALL unique id must be a string of 1..36 characters",
                             ErrorCode.FORMATION_VIOLATION)
        if type(action) is not str or not action:
            return _bad_call(message, "CALL action must be a non-empty string",
                             ErrorCode.FORMATION_VIOLATION)
        if type(payload) is not dict:
            return _bad_call(message, f"{action} payload must be a JSON object",
                             ErrorCode.FORMATION_VIOLATION)
        return Call(unique_id, action, payload)
    if type_id == 3 and type(type_id) is int:
        if len(message) != 3 or _readable_id(message[1]) is None or type(message[2]) is not dict:
            return BadFrame(BadFrameKind.BAD_CALLRESULT,
                            "CALLRESULT must be [3, uniqueId, {payload}]")
        return CallResult(message[1], message[2])
    if type_id == 4 and type(type_id) is int:
        if (
            len(message) not in (4, 5)
            or _readable_id(message[1]) is None
            or type(message[2]) is not str
            or type(message[3]) is not str
            or (len(message) == 5 and type(message[4]) is not dict)
        ):
            return BadFrame(BadFrameKind.BAD_CALLERROR,
                            "CALLERROR must be [4, uniqueId, errorCode, description, {details}]")
        code = message[2] if message[2] in _ERROR_CODES else ErrorCode.GENERIC_ERROR.value
        details = message[4] if len(message) == 5 else {}
        return CallError(message[1], code, message[3], details)
    return BadFrame(BadFrameKind.UNKNOWN_MESSAGE_TYPE, f"unknown MessageTypeId {type_id!r}")


class UniqueIds:
    """Unique ids for outgoing CALLs: a short per-connection prefix and a counter.

    Ids stay unique per charger across reconnects and well under the 36-character limit.
    """

    __slots__ = ("_counter", "_prefix")

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter)}"
