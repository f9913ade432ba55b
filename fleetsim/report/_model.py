"""The `fleetsim.report/1` contract as typed classes, and the one converter that reads and
writes it.

Each section is a frozen attrs class in the order a run writes it. A field marked `_optional`
is a key that some reports do not have (a run without a profile, a report that was not merged,
a worker's part): it is None in memory and left out when written, so a report read and written
again is the same JSON. Open maps (counts by action, by reason, by code) are `dict[str, ...]`.
Keys a newer fleetsim adds are ignored when reading, so old code reads new reports.

`structure_report` checks every field's type (cattrs' detailed validation) and says where a
bad one is, as `$.chargers.booted`; `unstructure_report` gives plain JSON-ready data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override

from fleetsim.errors import ConfigError
from fleetsim.thresholds import Verdict

__all__ = [
    "CONVERTER", "OPTIONAL_SECTIONS", "Behaviour", "CallHdr", "CallStats", "Chargers",
    "Connect", "CsmsCallStats",
    "Generator", "LostWorker", "Merge", "Outcome", "Part", "Percentiles", "Phase", "Queue",
    "Ramp",
    "RampPlan", "RampStep", "Recovery", "Report", "ReportError", "Sessions", "StepHdr", "Storm",
    "Target", "TimelineRow", "Totals", "Verdict", "WorkerEntry", "Workers", "check_report",
    "readable",
    "structure_report", "unstructure_report",
]

_OPTIONAL: Final = "fleetsim.optional"
_ABSENT: Final = {_OPTIONAL: True}
"""The metadata of a key some reports lack: None in memory, absent when written."""
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Percentiles:
    """Milliseconds, HDR bucket upper edges (`metrics.percentiles_ms`)."""

    p50: float
    p90: float
    p99: float
    p99_9: float
    max: float
    mean: float


@attrs.frozen(kw_only=True)
class Outcome:
    stopped_by: str
    reason: str


@attrs.frozen(kw_only=True)
class Target:
    url: str
    embedded: bool
    ocpp: list[str]
    transport: str


@attrs.frozen(kw_only=True)
class Chargers:
    target: int
    connected_peak: int
    booted: int
    boots: int | None = attrs.field(default=None, metadata=_ABSENT)
    all_booted_s: float | None = attrs.field(default=None, metadata=_ABSENT)
    """Seconds from the start until every charger had booted once (absent if one never did,
    and before fleetsim 0.2)."""
    connect_attempts: int
    connect_failures: dict[str, int]
    disconnects: int
    disconnects_abnormal: int
    reconnects: int
    send_stalls: int | None = attrs.field(default=None, metadata=_ABSENT)
    ping_timeouts: int | None = attrs.field(default=None, metadata=_ABSENT)
    resets: int | None = attrs.field(default=None, metadata=_ABSENT)
    internal_errors: dict[str, int]


@attrs.frozen(kw_only=True)
class CallHdr:
    """Encoded HDR histograms (base64), microseconds."""

    service: str
    response: str
    lateness: str | None = attrs.field(default=None, metadata=_ABSENT)


@attrs.frozen(kw_only=True)
class CallStats:
    """One action the chargers sent: `sent == ok + callerror + timeout + in_flight`."""

    sent: int
    ok: int
    callerror: dict[str, int]
    timeout: int
    in_flight: int
    lost_on_disconnect: int | None = attrs.field(default=None, metadata=_ABSENT)
    late: int | None = attrs.field(default=None, metadata=_ABSENT)
    queued_at_shutdown: int | None = attrs.field(default=None, metadata=_ABSENT)
    discarded_on_disconnect: int | None = attrs.field(default=None, metadata=_ABSENT)
    dropped_samples: int | None = attrs.field(default=None, metadata=_ABSENT)
    scheduled: int | None = attrs.field(default=None, metadata=_ABSENT)
    held_offline: int | None = attrs.field(default=None, metadata=_ABSENT)
    lateness_ms: Percentiles | None = attrs.field(default=None, metadata=_ABSENT)
    service_ms: Percentiles
    response_ms: Percentiles
    hdr: CallHdr


@attrs.frozen(kw_only=True)
class CsmsCallStats:
    """One action the CSMS sent to the chargers, and how they answered."""

    received: int
    answered: int
    callerror_sent: dict[str, int]
    unanswered: int | None = attrs.field(default=None, metadata=_ABSENT)
    answer_ms: Percentiles
    hdr: str


@attrs.frozen(kw_only=True)
class Phase:
    """One step of opening a connection (`metrics.CONNECT_PHASES`): TCP connect, TLS
    handshake, WebSocket upgrade."""

    ms: Percentiles
    hdr: str


@attrs.frozen(kw_only=True)
class Connect:
    handshake_ms: Percentiles
    hdr: str
    phases: dict[str, Phase] | None = attrs.field(default=None, metadata=_ABSENT)
    """The steps that were taken (no `tls` on ws://); absent before fleetsim 0.2."""


@attrs.frozen(kw_only=True)
class Totals:
    sent: int
    ok: int
    errors: int
    callerrors: int
    timeouts: int
    error_rate: float
    throughput_cps: float


@attrs.frozen(kw_only=True)
class TimelineRow:
    """One second of the run; `parts` only in a merged report."""

    t: float
    connected: int
    booted: int
    sent: int
    ok: int
    errors: int
    p99_ms: float
    queued: int | None = attrs.field(default=None, metadata=_ABSENT)
    connects: int | None = attrs.field(default=None, metadata=_ABSENT)
    connect_failures: int | None = attrs.field(default=None, metadata=_ABSENT)
    cpu: float | None
    loop_lag_ms: float
    saturated: bool
    parts: int | None = attrs.field(default=None, metadata=_ABSENT)


@attrs.frozen(kw_only=True)
class Generator:
    cpu_share: float
    loop_lag_ms: Percentiles
    hdr: str
    saturated_seconds: int


@attrs.frozen(kw_only=True)
class Behaviour:
    """Who played a behaviour of the profile; the rest is known only with the profile."""

    chargers: int
    weight: float | None = attrs.field(default=None, metadata=_ABSENT)
    ocpp: str | None = attrs.field(default=None, metadata=_ABSENT)
    estimated_calls_per_charger_hour: float | None = attrs.field(default=None, metadata=_ABSENT)


@attrs.frozen(kw_only=True)
class Sessions:
    arrivals: int
    missed: int


@attrs.frozen(kw_only=True)
class Queue:
    peak: int


@attrs.frozen(kw_only=True)
class Recovery:
    """Seconds until the given share of a storm's dropped chargers booted again."""

    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@attrs.frozen(kw_only=True)
class Storm:
    name: str
    at_s: float
    dropped: int
    recovered: int
    not_recovered: int
    recovery_s: Recovery
    peak_connects_per_s: int
    connect_failures: int
    hdr: str


@attrs.frozen(kw_only=True)
class RampPlan:
    start: int
    step: int
    every_s: float
    max: int
    settle_s: float
    settle_timeout_s: float
    slos: list[str]


@attrs.frozen(kw_only=True)
class StepHdr:
    service: str
    response: str


@attrs.frozen(kw_only=True)
class RampStep:
    step: int
    chargers: int
    started_at_s: float
    hold_started_at_s: float
    duration_s: float
    settled: bool
    booted: int
    sent: int
    ok: int
    errors: int
    calls_per_s: float
    sent_per_s: float
    p50_ms: float
    p99_ms: float
    p99_9_ms: float
    service_p99_ms: float
    error_rate: float | None
    queued: int
    connects: int
    connect_failures: dict[str, int]
    slos: list[Verdict]
    held: bool
    cpu_share: float | None
    loop_lag_p99_ms: float
    saturated: bool
    saturated_seconds: int
    hdr: StepHdr


@attrs.frozen(kw_only=True)
class Ramp:
    plan: RampPlan
    steps: list[RampStep]
    knee: int | None
    stopped_because: str
    limit: str | None
    verdict: str


@attrs.frozen(kw_only=True)
class WorkerEntry:
    """A worker process of `--workers`; the figures only when its report came back."""

    worker: int
    segment: str
    pid: int
    chargers: int
    exit: str
    lost: bool
    booted: int | None = attrs.field(default=None, metadata=_ABSENT)
    connected_peak: int | None = attrs.field(default=None, metadata=_ABSENT)
    sent: int | None = attrs.field(default=None, metadata=_ABSENT)
    throughput_cps: float | None = attrs.field(default=None, metadata=_ABSENT)
    cpu_share: float | None = attrs.field(default=None, metadata=_ABSENT)
    loop_lag_p99_ms: float | None = attrs.field(default=None, metadata=_ABSENT)
    loop_lag_max_ms: float | None = attrs.field(default=None, metadata=_ABSENT)
    saturated_seconds: int | None = attrs.field(default=None, metadata=_ABSENT)


@attrs.frozen(kw_only=True)
class LostWorker:
    worker: int
    segment: str
    pid: int
    chargers: int
    exit: str
    stderr: str | None
    live_rows: int
    live_sent: int
    live_ok: int
    message: str


@attrs.frozen(kw_only=True)
class Workers:
    count: int
    parent_cpu_share: float
    each: list[WorkerEntry]
    lost: list[LostWorker]


@attrs.frozen(kw_only=True)
class Part:
    """One input of a merged report, with its fleet share and generator health."""

    label: str | None
    source: str
    started_at: str
    ended_at: str
    duration_s: float
    chargers: int
    booted: int
    connected_peak: int
    sent: int
    throughput_cps: float
    cpu_share: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    saturated_seconds: int


@attrs.frozen(kw_only=True)
class Merge:
    warnings: list[str]
    timeline_p99_ms: str | None = attrs.field(default=None, metadata=_ABSENT)
    missing_segments: list[str] | None = attrs.field(default=None, metadata=_ABSENT)


@attrs.frozen(kw_only=True)
class ReportError:
    """A section that JSON could not hold, and how it was repaired (`serialisable_report`)."""

    section: str
    error: str
    repair: str
    part: str | None = attrs.field(default=None, metadata=_ABSENT)


@attrs.frozen(kw_only=True)
class Report:
    """A whole `fleetsim.report/1` report (DESIGN.md, "The report contract")."""

    schema: str
    fleetsim_version: str
    started_at: str
    ended_at: str
    duration_s: float
    outcome: Outcome
    target: Target
    config: dict[str, Any]
    chargers: Chargers
    calls: dict[str, CallStats]
    csms_calls: dict[str, CsmsCallStats]
    bad_frames: dict[str, int]
    connect: Connect
    totals: Totals
    timeline: list[TimelineRow]
    generator: Generator
    parts: list[Part] | None = attrs.field(default=None, metadata=_ABSENT)
    merge: Merge | None = attrs.field(default=None, metadata=_ABSENT)
    behaviours: dict[str, Behaviour] | None = attrs.field(default=None, metadata=_ABSENT)
    sessions: Sessions | None = attrs.field(default=None, metadata=_ABSENT)
    drops: dict[str, int] | None = attrs.field(default=None, metadata=_ABSENT)
    queue: Queue | None = attrs.field(default=None, metadata=_ABSENT)
    storms: list[Storm] | None = attrs.field(default=None, metadata=_ABSENT)
    errors: list[ReportError] | None = attrs.field(default=None, metadata=_ABSENT)
    embedded_csms: dict[str, Any] | None = attrs.field(default=None, metadata=_ABSENT)
    thresholds: list[Verdict] | None = attrs.field(default=None, metadata=_ABSENT)
    ramp: Ramp | None = attrs.field(default=None, metadata=_ABSENT)
    workers: Workers | None = attrs.field(default=None, metadata=_ABSENT)


OPTIONAL_SECTIONS: Final = frozenset(
    field.name for field in attrs.fields(Report) if field.metadata.get(_OPTIONAL))
"""The report's top-level keys that some reports lack."""


def _strict(kind: type[T], *accepted: type) -> Any:
    """A JSON scalar of exactly this type: cattrs would turn "12" into 12 and True into 1."""
    allowed = accepted or (kind,)

    def structure(value: object, _: object) -> Any:
        if isinstance(value, bool) and bool not in allowed:
            raise TypeError(f"{value!r} is not a {kind.__name__}")
        if not isinstance(value, allowed):
            raise TypeError(f"{value!r} is not a {kind.__name__}")
        return value

    return structure


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    converter.register_structure_hook(int, _strict(int))
    converter.register_structure_hook(float, _strict(float, int, float))
    converter.register_structure_hook(str, _strict(str))
    converter.register_structure_hook(bool, _strict(bool))

    def unstructure_factory(cls: type) -> Any:
        overrides: dict[str, Any] = {field.name: override(omit_if_default=True)
                                     for field in attrs.fields(cls)
                                     if field.metadata.get(_OPTIONAL)}
        return make_dict_unstructure_fn(cls, converter, **overrides)

    converter.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return converter


CONVERTER: Final = _converter()
"""The one converter for the report: strict JSON types in, plain JSON-ready data out."""


def structure_report(data: object) -> Report:
    """The typed report; `cattrs.ClassValidationError` names each bad field."""
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    return CONVERTER.structure(data, Report)


def unstructure_report(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = CONVERTER.unstructure(report)
    return data


def readable(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The report less the optional sections its writer had to repair (named in `errors`,
    `serialisable_report`): what JSON could not hold is no figure to show, and the rest is
    still read."""
    errors = report.get("errors")
    damaged = {error.get("section") for error in errors if isinstance(error, Mapping)} if (
        isinstance(errors, list)) else set()
    return {key: value for key, value in report.items()
            if key not in damaged or key not in OPTIONAL_SECTIONS}


def check_report(data: object, source: str) -> Report:
    """The typed report, or a one-line `ConfigError` naming `source` and the first bad field
    (`$.calls.Heartbeat.sent`), and how many more there are."""
    try:
        return structure_report(data)
    except TypeError as exc:
        raise ConfigError(f"{source}: not a fleetsim report: {exc}") from None
    except cattrs.ClassValidationError as exc:
        problems = cattrs.transform_error(exc, path="$")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{source}: not a fleetsim report: {problems[0]}{more}") from None
