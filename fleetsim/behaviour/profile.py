"""Profile files: weighted charger behaviours and fleet-wide events, in TOML.

A file is read with `tomllib` and structured by cattrs into the frozen attrs specs below, in
the units people write (hours, kW, kWh, "15m"). `Behaviour.charger_spec` turns one into the
`ChargerSpec` the charger core plays, in real seconds after `--time-scale`. Every mistake
becomes one `ConfigError` naming the file, the field path and the problem.
"""

from __future__ import annotations

import math
import os
import re
import sysconfig
import tomllib
from pathlib import Path
from typing import Any, Final, Literal, NewType

import attrs
import cattrs
from cattrs.strategies import configure_tagged_union

from fleetsim import units
from fleetsim.behaviour.distributions import Distribution
from fleetsim.behaviour.schedule import Backoff, Burst, Storm, Surge
from fleetsim.charger.core import ChargerSpec
from fleetsim.errors import ConfigError
from fleetsim.ocpp import v16

__all__ = [
    "SHIPPED_PROFILES",
    "Behaviour",
    "Event",
    "MeterBurst",
    "Profile",
    "ReconnectStorm",
    "SessionSurge",
    "Sessions",
    "estimate_rate",
    "event_kind",
    "load_profile",
    "resolve_profile",
    "shipped_profiles",
]

def _shipped_profiles_dir(checkout: Path, data_dirs: list[Path]) -> Path:
    """Where the ready profiles are: a checkout's (or an editable install's) `profiles/`,
    else where a wheel put its data files (`share/fleetsim/profiles` under the environment,
    or under the user base after `pip install --user`)."""
    if checkout.is_dir():
        return checkout
    for data in data_dirs:
        installed = data / "share" / "fleetsim" / "profiles"
        if installed.is_dir():
            return installed
    return checkout


SHIPPED_PROFILES: Final = _shipped_profiles_dir(
    Path(__file__).resolve().parents[2] / "profiles",
    [Path(sysconfig.get_path("data", scheme))
     for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user")])
"""The ready profiles, found by name."""

Seconds = NewType("Seconds", float)
"""A duration: a number of seconds or a string such as "90s", "15m", "1h30m", "250ms"."""

def _seconds(value: object, _type: object = None) -> Seconds:
    problem = f"expected a duration like 90, \"90s\" or \"15m\", got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(problem)
    try:
        result = units.seconds(value) if isinstance(value, str) else float(value)
    except ValueError:
        raise ValueError(problem) from None
    if not (math.isfinite(result) and result >= 0):
        raise ValueError(f"a duration must be >= 0, got {value!r}")
    return Seconds(result)


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _share(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value!r}")


@attrs.frozen
class Sessions:
    """EVs arrive at a charger as a Poisson process; each stays `duration` and wants
    `energy_kwh` (all of its time, if not given) at up to `power_kw`."""

    arrivals_per_hour: float = attrs.field(default=1.0, validator=_non_negative)
    duration: Distribution = attrs.field(
        factory=lambda: Distribution("uniform", low=1800.0, high=5400.0))
    energy_kwh: Distribution | None = None
    power_kw: Distribution | None = None
    """The EV's acceptance; default: 70-100 % of the behaviour's max_power_kw."""


@attrs.frozen
class BackoffSpec:
    """OCPP 2.0.1's RetryBackOffWaitMinimum / RetryBackOffRandomRange / RetryBackOffRepeatTimes."""

    policy: Literal["none", "fixed", "exponential"] = "exponential"
    wait_minimum: Seconds = Seconds(1.0)
    random_range: Seconds = Seconds(1.0)
    repeat_times: int = attrs.field(default=6, validator=attrs.validators.in_(range(0, 31)))


@attrs.frozen
class Behaviour:
    """One kind of charger in the fleet, with its share (`weight`) of the fleet."""

    name: str
    weight: float = attrs.field(validator=_positive)
    ocpp: Literal["1.6", "2.0.1"] = "1.6"
    connectors: int = attrs.field(default=2, validator=attrs.validators.in_(range(1, 100)))
    max_power_kw: float = attrs.field(default=22.0, validator=_positive)
    vendor: str = "fleetsim"
    model: str = "VirtualAC"
    firmware: str = "0.1.0"
    heartbeat_interval: Seconds = attrs.field(default=Seconds(300.0), validator=_positive)
    """Used until the CSMS gives one at boot."""
    meter_interval: Seconds = attrs.field(default=Seconds(60.0), validator=_positive)
    measurands: tuple[str, ...] = attrs.field(default=v16.DEFAULT_MEASURANDS)
    clock_aligned_interval: Seconds = Seconds(0.0)
    sessions: Sessions = attrs.field(factory=Sessions)
    drops_per_hour: float = attrs.field(default=0.0, validator=_non_negative)
    answer_delay: Distribution = attrs.field(factory=Distribution)
    """How long it takes to answer a CSMS-initiated CALL (not scaled by --time-scale)."""
    data_transfer_per_hour: float = attrs.field(default=0.0, validator=_non_negative)
    data_transfer_vendor: str = "fleetsim"
    backoff: BackoffSpec = attrs.field(factory=BackoffSpec)

    @measurands.validator
    def _check_measurands(self, _attribute: object, value: tuple[str, ...]) -> None:
        unknown = [name for name in value if name not in v16.MEASURANDS]
        if unknown:
            raise ValueError(f"unknown measurand {unknown[0]!r}; known: "
                             f"{', '.join(v16.MEASURANDS)}")

    def charger_spec(self, events: tuple[Event, ...] = (), time_scale: float = 1.0,
                     call_timeout_s: float = 30.0, closed_loop: bool = False,
                     warm_start: bool = False) -> ChargerSpec:
        """The spec in real seconds: intervals, durations and event times divide by
        `time_scale` and rates multiply by it; protocol timers (back-off, timeouts, the time
        to answer) stay real, because the network and the CSMS do not speed up."""
        k = time_scale
        sessions = self.sessions
        max_w = self.max_power_kw * 1000
        power = (sessions.power_kw.scaled(1000) if sessions.power_kw is not None
                 else Distribution("uniform", low=0.7 * max_w, high=max_w))
        power = attrs.evolve(power, high=min(power.high, max_w), low=min(power.low, max_w))
        backoff = self.backoff
        return ChargerSpec(
            connectors=self.connectors, ocpp=self.ocpp, vendor=self.vendor, model=self.model,
            firmware=self.firmware,
            meter_interval_s=self.meter_interval / k,
            measurands=self.measurands,
            clock_aligned_s=self.clock_aligned_interval / k,
            arrivals_per_s=sessions.arrivals_per_hour / 3600 * k,
            idle_s=(math.inf, math.inf),  # no arrivals means no sessions, not the gap model
            session_s=sessions.duration.scaled(1 / k),
            energy_wh=(None if sessions.energy_kwh is None
                       else sessions.energy_kwh.scaled(1000)),
            power_w=power,
            drops_per_s=self.drops_per_hour / 3600 * k,
            answer_delay_s=self.answer_delay,
            data_transfer_per_s=self.data_transfer_per_hour / 3600 * k,
            data_transfer_vendor=self.data_transfer_vendor,
            backoff=Backoff(backoff.policy, backoff.wait_minimum, backoff.random_range,
                            backoff.repeat_times),
            time_scale=k,
            surges=tuple(Surge(e.at / k, (e.at + e.duration) / k, e.factor)
                         for e in events if isinstance(e, SessionSurge)),
            storms=tuple(Storm(e.at / k, e.share, e.within / k)
                         for e in events if isinstance(e, ReconnectStorm)),
            bursts=tuple(Burst(e.at / k, e.share) for e in events if isinstance(e, MeterBurst)),
            heartbeat_default_s=self.heartbeat_interval / k,
            call_timeout_s=call_timeout_s,
            closed_loop=closed_loop,
            warm_start=warm_start,
            spread_heartbeats=True,
        )


@attrs.frozen
class ReconnectStorm:
    """At `at`, a `share` of the fleet drops its connection within `within`."""

    at: Seconds
    share: float = attrs.field(default=0.8, validator=_share)
    within: Seconds = Seconds(2.0)
    name: str = ""


@attrs.frozen
class MeterBurst:
    """At `at`, a `share` of the fleet sends a clock-aligned MeterValues in the same instant."""

    at: Seconds
    share: float = attrs.field(default=1.0, validator=_share)


@attrs.frozen
class SessionSurge:
    """From `at`, for `duration`, session arrivals come `factor` times as often."""

    at: Seconds
    duration: Seconds = attrs.field(validator=_positive)
    factor: float = attrs.field(validator=_non_negative)


Event = ReconnectStorm | MeterBurst | SessionSurge
_EVENT_KINDS: Final[dict[type, str]] = {
    ReconnectStorm: "reconnect_storm", MeterBurst: "meter_burst", SessionSurge: "session_surge",
}


def event_kind(event: Event) -> str:
    """The `kind` a profile file gives this event."""
    return _EVENT_KINDS[type(event)]


@attrs.frozen
class Profile:
    """A whole profile file."""

    behaviour: tuple[Behaviour, ...] = attrs.field()
    description: str = ""
    warm_start: bool = True
    """Start in steady state, sessions already under way, instead of an empty fleet."""
    event: tuple[Event, ...] = ()
    thresholds: dict[str, str] = attrs.field(factory=dict)
    """`"BootNotification.p99" = "<500ms"`: the metric, then the condition."""
    name: str = ""
    source: str = ""

    @behaviour.validator
    def _check_behaviours(self, _attribute: object, value: tuple[Behaviour, ...]) -> None:
        if not value:
            raise ValueError("a profile needs at least one [[behaviour]]")
        names = [b.name for b in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"behaviour names must be unique; {duplicates[0]!r} repeats")

    @property
    def weights(self) -> list[float]:
        return [b.weight for b in self.behaviour]

    @property
    def threshold_rules(self) -> tuple[str, ...]:
        return tuple(f"{metric}{condition}" for metric, condition in self.thresholds.items())


def _structure_distribution(value: object, _type: object) -> Distribution:
    """A plain value is fixed; a table names its `dist` and parameters (durations allowed)."""
    if not isinstance(value, dict):
        return Distribution("fixed", _seconds(value))
    fields = dict(value)
    kind = fields.pop("dist", None)
    allowed = {"fixed", "uniform", "normal", "lognormal", "exponential"}
    if kind not in allowed:
        raise ValueError(f"dist must be one of {', '.join(sorted(allowed))}; got {kind!r}")
    unknown = sorted(set(fields) - {"mean", "sd", "low", "high"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in a distribution "
                         "(use dist, mean, sd, low, high)")
    numbers = {key: _seconds(item) for key, item in fields.items()}
    return Distribution(kind, **numbers)


def _number(value: object, _type: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _integer(value: object, _type: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _string(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(float, _number)
    converter.register_structure_hook(int, _integer)
    converter.register_structure_hook(str, _string)
    converter.register_structure_hook(Seconds, _seconds)
    converter.register_structure_hook(Distribution, _structure_distribution)
    configure_tagged_union(Event, converter, tag_name="kind",
                           tag_generator=lambda cls: _EVENT_KINDS[cls])
    return converter


_CONVERTER: Final = _make_converter()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return f"required key {exc.args[0]!r} is missing"
    literal = re.fullmatch(r"(.*) not in literal typing\.Literal\[(.*)\]", str(exc))
    if literal:
        return f"{literal[1]!r} is not one of {literal[2]}"
    if isinstance(exc, TypeError) and "iterable" in str(exc):
        return "expected a list ([[table]] or [...])"
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)
    return f"invalid value ({type(exc).__name__})"


def _formatted_errors(exc: Exception, where: str) -> list[str]:
    messages = cattrs.transform_error(
        exc, path="", format_exception=lambda e, _t: _describe(e))
    result = []
    for message in messages:
        problem, _, path = message.rpartition(" @ ")
        field = path.lstrip(".") or "(top level)"
        result.append(f"{where}: {field}: {problem}")
    return result


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile file; any mistake is one `ConfigError` naming file and field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"profile {str(path)!r}: cannot read it: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"profile {str(path)!r}: not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    data["source"] = str(path)
    errors = _event_kind_errors(data, str(path))
    try:
        profile = _CONVERTER.structure(data, Profile)
    except Exception as exc:
        errors += _formatted_errors(exc, str(path))
    if not errors:
        return profile
    shown = errors[:_MAX_ERRORS]
    if len(errors) > _MAX_ERRORS:
        shown.append(f"... and {len(errors) - _MAX_ERRORS} more")
    raise ConfigError("\n  ".join(shown)) from None


_MAX_ERRORS: Final = 10


def _event_kind_errors(data: dict[str, Any], where: str) -> list[str]:
    """The tagged union would report an unknown kind as a missing key: say it plainly, and
    leave those events out so that the rest of the file is still checked."""
    events = data.get("event")
    if not isinstance(events, list):
        return []
    kinds = ", ".join(_EVENT_KINDS.values())
    errors = []
    for index, event in enumerate(events):
        if isinstance(event, dict) and event.get("kind") not in _EVENT_KINDS.values():
            problem = ("required key 'kind' is missing" if "kind" not in event
                       else f"unknown kind {event['kind']!r}")
            errors.append(f"{where}: event[{index}].kind: {problem} (use one of {kinds})")
    if errors:  # a harmless stand-in keeps the indices of the other events right
        data["event"] = [event if not isinstance(event, dict)
                         or event.get("kind") in _EVENT_KINDS.values()
                         else {"kind": "meter_burst", "at": 0} for event in events]
    return errors


def shipped_profiles() -> list[Path]:
    return sorted(SHIPPED_PROFILES.glob("*.toml"))


def resolve_profile(name_or_path: str) -> Path:
    """A path to a file, or the name of a shipped profile ("city-mix")."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_PROFILES / f"{name_or_path}.toml"
    if "/" not in name_or_path and shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in shipped_profiles()) or "none found"
    raise ConfigError(f"profile {name_or_path!r}: no such file, nor a shipped profile "
                      f"(shipped: {names})")


def unstructure_profile(profile: Profile) -> dict[str, Any]:
    data: dict[str, Any] = _CONVERTER.unstructure(profile)
    return data


def _erlang_b(servers: int, load: float) -> float:
    """The share of arrivals that find every connector busy (Erlang's loss formula)."""
    blocking = 1.0
    for n in range(1, servers + 1):
        blocking = load * blocking / (n + load * blocking)
    return blocking


def estimate_rate(behaviour: Behaviour, heartbeat_s: float | None = None) -> dict[str, float]:
    """Expected CALLs per charger-hour by action, in profile time, before it runs.

    Sessions lost because every connector was busy are left out (Erlang B, which holds
    whatever the distribution of session lengths); drops, storms and CSMS commands are not
    counted.
    """
    sessions = behaviour.sessions
    heartbeat = heartbeat_s or behaviour.heartbeat_interval
    duration = sessions.duration.expected
    offered = sessions.arrivals_per_hour * duration / 3600
    started = sessions.arrivals_per_hour * (1 - _erlang_b(behaviour.connectors, offered))
    suspended = 0.0
    if sessions.energy_kwh is not None:
        power_kw = (sessions.power_kw.expected if sessions.power_kw is not None
                    else 0.85 * behaviour.max_power_kw)
        if sessions.energy_kwh.expected < power_kw * duration / 3600:
            suspended = 1.0
    samples = duration / behaviour.meter_interval - 0.5  # samples fall strictly inside
    rates = {
        "Heartbeat": 3600 / heartbeat,
        "Authorize": started,
        "StartTransaction": started,
        "StopTransaction": started,
        "StatusNotification": started * (4 + suspended),
        "MeterValues": started * max(samples, 0),
        "DataTransfer": behaviour.data_transfer_per_hour,
    }
    if behaviour.clock_aligned_interval:
        rates["MeterValues"] += 3600 / behaviour.clock_aligned_interval * behaviour.connectors
    return {action: rate for action, rate in rates.items() if rate}
