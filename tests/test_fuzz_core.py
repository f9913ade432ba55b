"""Whatever a CSMS sends, the charger core stays up (issue 12): every frame kind and every
CSMS-initiated action of both versions, fed arbitrary JSON and schema-shaped payloads with
extreme values. No exception escapes, every CALL gets exactly one answer, a refused CALL
changes nothing, every CALLRESULT validates, and the run's report serialises.

The official schemas (tests/schemas.py) are the oracle and the source of the schema-shaped
payloads. Bounded and deterministic: a fixed number of derandomised examples, no database.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetsim import RunConfig
from fleetsim.charger.core import ChargerCore, ChargerSpec
from fleetsim.metrics import FleetOutcome, Metrics
from fleetsim.ocpp import v16, v201
from fleetsim.report import build_report

from .schemas import schema_16, schema_201, validator_16, validator_201
from .sim import WALL_OFFSET, Link

FUZZ = settings(max_examples=80, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CALLS = settings(FUZZ, max_examples=10)
SPECS = {version: ChargerSpec(ocpp=version, connectors=2, meter_interval_s=10,
                              session_s=(600, 600), idle_s=(5, 5))
         for version in ("1.6", "2.0.1")}
ACTIONS = {"1.6": sorted(v16.CSMS_ACTIONS), "2.0.1": sorted(v201.CSMS_ACTIONS)}
UNKNOWN_ACTIONS = ["MakeCoffee", "heartbeat", "BootNotification", "x" * 100]

SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=5)
OBJECTS = st.dictionaries(st.text(max_size=12), JSON, max_size=4)
EXTREMES = st.sampled_from([
    None, True, False, 0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**64 - 1, -(2**63),
    -1e300, 1e300, 1.7976931348623157e308, 5e-324, -0.0, 0.5, "", "x" * 600, "forever",
    "2026-01-01T00:00:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", [], {}, [3],
    {"a": 1}, [None], "9" * 400])
DATES = st.sampled_from([
    "2025-11-24T16:00:30.123Z", "2025-11-24T17:00:00+01:00", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "2025-11-24T16:00:00z"]) | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC)).map(datetime.isoformat)
INTEGERS = st.integers(-3, 100) | st.sampled_from([0, 1, 2, 3, 3600, 2**31 - 1, -(2**31), 2**31,
                                                   2**40])
NUMBERS = st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0, 0.1, 16, 22_000.0, 1e9])


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _odd(draw: st.DrawFn, odd: float) -> bool:
    return bool(odd) and draw(st.floats(0, 1)) < odd


def _shaped(draw: st.DrawFn, node: dict[str, Any], root: dict[str, Any], odd: float) -> Any:
    """A value after the schema `node`, its leaves each replaced by anything at all with
    probability `odd`, its objects now and then missing a property or holding one more."""
    node = _resolve(node, root)
    kind = node.get("type")
    if kind not in ("object", "array") and _odd(draw, odd):
        return draw(EXTREMES | JSON)
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    if kind == "object":
        required = set(node.get("required", ()))
        value = {}
        for name, child in node.get("properties", {}).items():
            if name in required or draw(st.booleans()):
                value[name] = ({"vendorId": "fleetsim", "x": draw(JSON)} if name == "customData"
                               else _shaped(draw, child, root, odd))
        if value and _odd(draw, odd / 4):
            del value[draw(st.sampled_from(sorted(value)))]
        if _odd(draw, odd / 4):
            value[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
        return value
    if kind == "array":
        low = max(node.get("minItems", 0), 1)  # [] comes with the odd values
        count = draw(st.integers(low, min(node.get("maxItems", low + 1), low + 1)))
        return [_shaped(draw, node["items"], root, odd) for _ in range(count)]
    if kind == "string" and node.get("format") == "date-time":
        return draw(DATES)
    if kind == "string":
        longest = node.get("maxLength", 30)
        return draw(st.text(max_size=min(longest, 30)) | st.just("x" * longest))
    if kind == "integer":
        return draw(INTEGERS)
    if kind == "number":
        return draw(NUMBERS)
    if kind == "boolean":
        return draw(st.booleans())
    return draw(JSON)


def schema(version: str, action: str, direction: str = "Request") -> dict[str, Any]:
    if version == "1.6":
        return schema_16(action if direction == "Request" else f"{action}Response")
    return schema_201(f"{action}{direction}")


def validator(version: str, action: str, direction: str) -> jsonschema.Validator:
    if version == "1.6":
        return validator_16(action if direction == "Request" else f"{action}Response")
    return validator_201(f"{action}{direction}")


@st.composite
def shaped(draw: st.DrawFn, version: str, action: str, direction: str = "Request") -> Any:
    """A payload after the action's official schema, mostly valid, now and then odd."""
    root = schema(version, action, direction)
    return _shaped(draw, root, root, draw(st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.4])))


@st.composite
def csms_calls(draw: st.DrawFn, version: str, action: str | None = None) -> tuple[str, Any]:
    """A CSMS CALL's action and payload: schema-shaped, or any JSON object at all."""
    if action is None:
        action = draw(st.sampled_from(ACTIONS[version] + UNKNOWN_ACTIONS))
    if action in UNKNOWN_ACTIONS or draw(st.integers(0, 3)) == 0:
        return action, draw(OBJECTS)
    return action, draw(shaped(version, action))


@st.composite
def csms_conversations(draw: st.DrawFn, version: str, focus: str) -> list[tuple[str, Any]]:
    """A few CALLs, most of the `focus` action (SetChargingProfile after SetChargingProfile),
    some of any other (GetCompositeSchedule after it)."""
    return [draw(csms_calls(version, focus if draw(st.integers(0, 3)) else None))
            for _ in range(draw(st.integers(1, 8)))]


def state(core: ChargerCore) -> tuple[object, ...]:
    """Everything a CSMS CALL can change."""
    model = core.device_model
    return (core.charging_profiles(), core.config.get(None), core.local_list.version,
            dict(core.local_list.entries), None if model is None else model.changes(),
            core.connectors, core.transaction_ids, core.queued, core.next_deadline(),
            core.state)


def serialises(metrics: Metrics, ended: float) -> None:
    report = build_report(RunConfig(url="ws://127.0.0.1:9/ocpp"), "ws://127.0.0.1:9/ocpp",
                          metrics, FleetOutcome("duration", WALL_OFFSET, WALL_OFFSET + ended))
    orjson.loads(orjson.dumps(report))


def _schema_errors(version: str, action: str, payload: Any) -> list[str]:
    """What the official schema finds wrong, less `multipleOf`: 1.6 limits in tenths are a
    resolution, and a charger takes 16.05 A as readily as 16.1."""
    return [error.message for error in validator(version, action, "Request").iter_errors(payload)
            if error.validator != "multipleOf"]


def answer_each(version: str, calls: list[tuple[str, Any]], metrics: Metrics) -> None:
    """A booted charger with sessions under way receives `calls` one after another; each is
    checked as it is answered; then the charger lives on for five minutes."""
    link = Link(SPECS[version], metrics=metrics)
    link.connect()
    link.run_until(20)
    known = set(ACTIONS[version])
    for n, (action, payload) in enumerate(calls):
        unique_id = f"fuzz-{n}"
        before = state(link.charger)
        written = len(link.wire)
        link.send_to_charger(orjson.dumps([2, unique_id, action, payload]).decode())
        link.run_until(link.now)
        answers = [msg for _, direction, msg in link.wire[written:]
                   if direction == "cp->csms" and msg[0] in (3, 4) and msg[1] == unique_id]
        assert len(answers) == 1, (action, payload, answers)
        [answer] = answers
        if answer[0] == 4:
            assert state(link.charger) == before, (action, payload, answer)
            assert answer[2] != "InternalError", (action, payload, answer)
        else:
            validator(version, action, "Response").validate(answer[2])
        if action in known and _schema_errors(version, action, payload):
            assert answer[0] == 4, (action, payload, _schema_errors(version, action, payload))
        if action not in known:
            assert answer[0] == 4 and answer[2] == "NotImplemented", answer
    link.run_until(link.now + 300)
    assert not link.metrics.internal_errors


def fuzz_calls(version: str, action: str) -> None:
    """Every example's counts go into one `Metrics`, whose report is built once: what a CSMS
    can put in it (actions, error codes, bad frame kinds) is all there."""
    metrics = Metrics()

    @CALLS
    @given(csms_conversations(version, action))
    def example(calls: list[tuple[str, Any]]) -> None:
        answer_each(version, calls, metrics)

    example()
    assert metrics.csms_calls
    serialises(metrics, 300.0)


@pytest.mark.parametrize("action", ACTIONS["1.6"] + UNKNOWN_ACTIONS[:1])
def test_any_csms_call_to_a_1_6_charger(action: str) -> None:
    fuzz_calls("1.6", action)


@pytest.mark.parametrize("action", ACTIONS["2.0.1"] + UNKNOWN_ACTIONS[:1])
def test_any_csms_call_to_a_2_0_1_charger(action: str) -> None:
    fuzz_calls("2.0.1", action)


class Bench:
    """One charger core on a fake clock with no CSMS behind it: the test is the CSMS, and
    answers the charger's CALLs (or not) as the examples say. Run as the fleet shell runs it:
    a Reset or a dropped link is a new connection."""

    def __init__(self, version: str) -> None:
        self.metrics = Metrics()
        self.core = ChargerCore("CP00001", SPECS[version], self.metrics, random.Random(1),
                                WALL_OFFSET)
        self.now = 0.0
        self.pending: tuple[str, str] | None = None
        """The unique id and action of the charger's CALL awaiting its answer."""
        self._write(self.core.connected(self.now))

    def _write(self, frames: list[str]) -> list[list[Any]]:
        written = []
        for text in frames:
            message = orjson.loads(text)
            assert type(message) is list and message[0] in (2, 3, 4), message
            if message[0] == 2:
                self.pending = (message[1], message[2])
            written.append(message)
        if self.core.wants_reconnect or self.core.wants_drop:
            self.core.disconnected(self.now, reboot=self.core.wants_reconnect)
            self.pending = None
            written += self._write(self.core.connected(self.now))
        return written

    def feed(self, text: str) -> list[list[Any]]:
        return self._write(self.core.receive(text, self.now))

    def wait(self, seconds: float) -> None:
        end = self.now + seconds
        for _ in range(100_000):
            deadline = self.core.next_deadline()
            if deadline > end:
                self.now = end
                return
            self.now = max(self.now, deadline)
            self._write(self.core.tick(self.now))
        raise AssertionError("the charger's clock does not move on")


def _is_call(message: Any) -> str | None:
    """The unique id OCPP-J obliges an answer to: a CALL's, when it can be read."""
    if type(message) is not list or len(message) < 2:
        return None
    type_id, unique_id = message[0], message[1]
    if type(type_id) is int and type_id == 2 and type(unique_id) is str and (
            0 < len(unique_id) <= 36):
        return unique_id
    return None


Step = tuple[str, Any]


@st.composite
def steps(draw: st.DrawFn, version: str) -> Step:
    """One thing the CSMS does: answer the charger (validly, oddly, late, with an error),
    call it, send any frame at all or not JSON, or let time pass."""
    kind = draw(st.sampled_from(["answer", "answer", "result", "error", "call", "frame",
                                 "text", "wait"]))
    if kind == "answer":  # a schema-shaped CALLRESULT to the charger's pending CALL
        return kind, draw(st.data())
    if kind == "result":
        return kind, draw(JSON)
    if kind == "error":
        return kind, [draw(st.sampled_from(["GenericError", "InternalError", "NotImplemented",
                                            "FormatViolation", "Nonsense", ""])),
                      draw(st.text(max_size=20)), draw(OBJECTS)]
    if kind == "call":
        return kind, draw(csms_calls(version))
    if kind == "frame":
        head = draw(st.sampled_from([2, 3, 4, 5, 0, -1, 2.0, True, "2", None]))
        unique_id = draw(st.sampled_from(["fz", "", "x" * 37, 7, None]) | st.text(max_size=3))
        return kind, [head, unique_id, *draw(st.lists(JSON, max_size=4))]
    if kind == "text":
        return kind, draw(st.text(max_size=30) | st.sampled_from(["", "[", "[]", "{}", "null",
                                                                 "[2,", "1e400", "NaN"]))
    return kind, draw(st.floats(0, 900))


def play(version: str, interval: int, script: list[Step]) -> None:
    bench = Bench(version)
    accepted = {"status": "Accepted", "currentTime": "2025-11-24T16:00:00Z",
                "interval": interval}
    bench.feed(orjson.dumps([3, bench.pending[0] if bench.pending else "?", accepted]).decode())
    for n, (kind, arg) in enumerate(script):
        pending = bench.pending
        text: str
        if kind == "wait":
            bench.wait(arg)
            continue
        if kind == "answer":
            if pending is None:
                continue
            payload = arg.draw(shaped(version, pending[1], "Response"))
            text = orjson.dumps([3, pending[0], payload]).decode()
        elif kind == "result":
            text = orjson.dumps([3, pending[0] if pending else "old", arg]).decode()
        elif kind == "error":
            text = orjson.dumps([4, pending[0] if pending else "old", *arg]).decode()
        elif kind == "call":
            text = orjson.dumps([2, f"fz{n}", *arg]).decode()
        elif kind == "frame":
            text = orjson.dumps(arg).decode()
        else:
            text = arg
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        written = bench.feed(text)
        unique_id = _is_call(message)
        answers = [m for m in written if m[0] in (3, 4)]
        if unique_id is None:
            assert answers == [], (text, answers)
        else:
            assert [m[1] for m in answers] == [unique_id], (text, answers)
            if answers[0][0] == 3 and kind == "call":
                validator(version, arg[0], "Response").validate(answers[0][2])
    bench.wait(1800)
    assert not bench.metrics.internal_errors
    serialises(bench.metrics, bench.now)


BOOT_INTERVALS = INTEGERS | st.sampled_from([60, 2**63 - 1])


@FUZZ
@given(BOOT_INTERVALS, st.lists(steps("1.6"), max_size=12))
def test_every_frame_kind_to_a_1_6_charger(interval: int, script: list[Step]) -> None:
    play("1.6", interval, script)


@FUZZ
@given(BOOT_INTERVALS, st.lists(steps("2.0.1"), max_size=12))
def test_every_frame_kind_to_a_2_0_1_charger(interval: int, script: list[Step]) -> None:
    play("2.0.1", interval, script)
