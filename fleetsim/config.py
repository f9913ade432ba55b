"""Run configuration as small frozen attrs objects, and the parsers for option strings.

The CLI, environment variables and tests all end up here; validation errors become
`ConfigError` with a message naming the option, so users never see a traceback.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

import attrs
import cattrs

from fleetsim import units
from fleetsim.behaviour.profile import Profile, unstructure_profile
from fleetsim.charger.core import ChargerSpec
from fleetsim.csms.config import CsmsConfig
from fleetsim.errors import ConfigError

__all__ = [
    "RunConfig",
    "Segment",
    "build_config",
    "parse_duration",
    "parse_listen",
    "parse_range",
    "parse_rate",
    "parse_segment",
    "parse_workers",
    "redact_url",
    "unstructure_config",
]

def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds from '90', '90s', '1h30m', '250ms' (locust / k6 style)."""
    try:
        value = units.seconds(text)
    except ValueError:
        raise ConfigError(f"{option}: expected a duration like 60, 30s, 10m, 1h30m; "
                          f"got {text.strip().lower()!r}") from None
    if not value > 0:
        raise ConfigError(f"{option}: must be positive, got {text.strip().lower()!r}")
    return value


def parse_rate(text: str, option: str) -> float:
    """Events per second from '5', '5/s', '300/m' or '0'."""
    number, _, unit = text.strip().partition("/")
    scale = {"": 1.0, "s": 1.0, "m": 1 / 60, "h": 1 / 3600}.get(unit)
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if scale is None or value < 0:
        raise ConfigError(f"{option}: expected a rate like 5/s, 300/m or 0; got {text!r}")
    return value * scale


def parse_listen(text: str, option: str) -> tuple[str, int]:
    """'9100' (all interfaces), '127.0.0.1:9100' or '[::1]:9100' to (host, port)."""
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(f"{option}: expected [HOST:]PORT like 9100 or 127.0.0.1:9100; "
                          f"got {text!r}")
    return host, number


def parse_range(text: str, option: str) -> tuple[float, float]:
    """'30' or '30-90' (seconds, durations allowed on each side) to a (low, high) pair."""
    low_text, _, high_text = text.partition("-")
    low = parse_duration(low_text, option)
    high = parse_duration(high_text, option) if high_text else low
    if high < low:
        raise ConfigError(f"{option}: range {text!r} has its high end below its low end")
    return low, high


def _userinfo(url: str) -> tuple[str, str | None, str]:
    """(scheme://, the user information or None, the rest). The user information ends at the
    last "@" before any query or fragment, so that an unescaped "@" or "/" in a password
    still counts as part of it."""
    scheme, separator, rest = url.partition("://")
    at = re.split(r"[?#]", rest, maxsplit=1)[0].rfind("@")
    if not separator or at < 0:
        return url, None, ""
    return scheme + separator, rest[:at], rest[at + 1:]


def redact_url(url: str) -> str:
    """A URL as fleetsim shows it anywhere (summary, reports, messages): its password, or
    user information without one, replaced by `***`."""
    prefix, userinfo, rest = _userinfo(url)
    if userinfo is None:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{prefix}{user}:***@{rest}" if colon else f"{prefix}***@{rest}"


def _check_url(_instance: object, _attribute: object, value: str | None) -> None:
    if value is None:
        return
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ConfigError(f"url: {exc}; got {redact_url(value)!r}") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ConfigError(f"url: expected ws://host:port/path or wss://...; "
                          f"got {redact_url(value)!r}")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ConfigError(f"url: spaces and control characters must be %-encoded (%20); "
                          f"got {redact_url(value)!r}")


@attrs.frozen
class Segment:
    """The `index`-th of `count` slices of a fleet (1-based): every `count`-th charger index,
    starting at `index`.

    Strided rather than contiguous, so that each segment takes its share of every behaviour
    and ramps up alongside the others, and so that a segment split again (`split`) is still a
    segment of the whole fleet: a report's label says exactly which chargers it ran.
    """

    index: int
    count: int

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ConfigError(f"segment: expected K/N with 1 <= K <= N; got {self}")

    def indexes(self, chargers: int) -> range:
        """The 1-based charger indexes of this slice of a fleet of `chargers`."""
        return range(self.index, chargers + 1, self.count)

    def split(self, parts: int) -> tuple[Segment, ...]:
        """This slice in `parts` slices, each a segment of the whole fleet."""
        return tuple(Segment(self.index + self.count * part, self.count * parts)
                     for part in range(parts))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE_FLEET: Final = Segment(1, 1)
MAX_WORKERS: Final = 1024


def parse_segment(text: str) -> Segment:
    """'3/8': the 3rd of 8 slices."""
    index, _, count = text.strip().partition("/")
    try:
        return Segment(int(index), int(count))
    except (ValueError, ConfigError):
        raise ConfigError(f"segment: expected K/N with 1 <= K <= N, like 3/8; got {text!r}"
                          ) from None


def parse_workers(text: str) -> int:
    """'auto' (one per core this process may run on) or a number of worker processes."""
    if text.strip().lower() == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return min(cores or os.cpu_count() or 1, MAX_WORKERS)
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"workers: expected auto or 1 to {MAX_WORKERS}; got {text!r}")
    return workers


_IDENTITY = re.compile(r"[A-Za-z0-9._~-]{0,40}")


def _check_id_prefix(_instance: object, _attribute: object, value: str) -> None:
    """Charger IDs are the last URL path segment: only characters that need no escaping."""
    if not _IDENTITY.fullmatch(value):
        raise ConfigError(
            f"id-prefix: use up to 40 of A-Z a-z 0-9 . _ ~ - (a URL path segment); got {value!r}")


@attrs.frozen
class RunConfig:
    """One `fleetsim spawn` run. `url=None` means: start the embedded CSMS."""

    chargers: int = attrs.field(default=100, validator=attrs.validators.in_(range(1, 1_000_001)))
    duration_s: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    url: str | None = attrs.field(default=None, validator=_check_url)
    ramp_per_s: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    """Chargers started per second; None: `--ramp auto` (see `fleetsim.pacing`)."""
    id_prefix: str = attrs.field(default="CP", validator=_check_id_prefix)
    transport: Literal["wsproto", "trio-websocket"] = "wsproto"
    password: str | None = attrs.field(default=None, repr=False)
    """The Basic auth password; `{id}` in it stands for the charger ID."""
    ca_file: str | None = None
    insecure: bool = False
    security_profile: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_((1, 2, 3))))
    """OCPP security profile: checked against the URL and credentials; with the embedded
    CSMS, the CSMS serves it and fleetsim makes up the password or certificates."""
    passwords_file: str | None = None
    """A CSV of id,password: each charger's own Basic auth password."""
    client_cert: str | None = None
    """A client certificate for all chargers, or a folder of `<id>.pem` and `<id>.key`."""
    client_key: str | None = None
    connect_timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    graceful_stop_s: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    seed: int = 0
    report_path: str | None = None
    thresholds: tuple[str, ...] = ()
    prometheus: tuple[str, int] | None = None
    """(host, port) to serve live Prometheus metrics on, if any."""
    call_timeout_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    """How long a CALL waits for its answer before it counts as a timeout."""
    closed_loop: bool = False
    """Benchmark mode: each booted charger sends its next CALL as soon as one is answered."""
    charger: ChargerSpec = attrs.field(factory=ChargerSpec)
    """What every charger plays when there is no `profile` (library and tests); the run's
    `call_timeout_s` and `closed_loop` replace its own."""
    profile: Profile | None = None
    time_scale: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    csms: CsmsConfig = attrs.field(factory=lambda: CsmsConfig(port=0))
    segment: Segment | None = None
    """Run only this slice of the fleet (IDs, behaviours and schedules as in the whole)."""
    workers: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(
            attrs.validators.in_(range(1, MAX_WORKERS + 1))))
    """Split the fleet (or segment) over this many worker processes; None: run it here."""

    def __attrs_post_init__(self) -> None:
        self._take_credentials()
        self._check_security()
        if self.profile is None and self.time_scale != 1.0:
            raise ConfigError("time-scale: applies to a profile's behaviours; give a profile")
        if not self.charger_indexes():
            raise ConfigError(f"segment: {self.segment} of {self.chargers} chargers is empty")

    def _take_credentials(self) -> None:
        """A password in `url` (`ws://:PASSWORD@host/...`) is the Basic auth password, as
        `password`: it moves there, and the chargers connect to the URL without it."""
        if self.url is None:
            return
        prefix, userinfo, rest = _userinfo(self.url)
        if userinfo is None:
            return
        user, colon, password = userinfo.partition(":")
        if user:
            raise ConfigError(
                f"url: the user name in the URL ({unquote(user)!r}) cannot be used: each "
                "charger sends its own ID as the Basic auth user name (OCPP security profile "
                "1); give the password alone, as ws://:PASSWORD@host/..., or with --password")
        if not colon or not password:
            raise ConfigError("url: no password after the '@' of the URL's user information")
        if self.password is not None:
            raise ConfigError("url: a password in the URL and --password (or "
                              "--password-file): give one")
        # frozen: the credentials move during construction, before anyone sees the object
        object.__setattr__(self, "url", prefix + rest)
        object.__setattr__(self, "password", unquote(password))

    def _check_security(self) -> None:
        """Credentials that make sense together, and the security profile's demands."""
        has_password = self.password is not None or self.passwords_file is not None
        if self.password is not None and self.passwords_file is not None:
            raise ConfigError("passwords: a CSV of passwords and --password (or one in the "
                              "URL): give one")
        if self.client_key is not None and self.client_cert is None:
            raise ConfigError("client-key: only applies with --client-cert")
        secure = self.url is not None and self.url.startswith("wss://")
        if self.client_cert is not None and self.url is not None and not secure:
            raise ConfigError("client-cert: client certificates need a wss:// URL")
        profile = self.security_profile
        if profile == 3 and has_password:
            raise ConfigError("security-profile 3: chargers authenticate by client "
                              "certificate, not Basic auth: give no password")
        if profile is None or self.url is None:  # the embedded CSMS: see fleetsim.security
            return
        wanted = "ws" if profile == 1 else "wss"
        if secure != (wanted == "wss"):
            raise ConfigError(f"security-profile {profile}: needs a {wanted}:// URL; got "
                              f"{redact_url(self.url)!r}")
        if profile in (1, 2) and not has_password:
            raise ConfigError(f"security-profile {profile}: needs a Basic auth password "
                              "(--password, --passwords, or one in the URL)")
        if profile in (1, 2) and self.client_cert is not None:
            raise ConfigError(f"security-profile {profile}: Basic auth, not client "
                              "certificates (that is profile 3)")
        if profile == 3 and self.client_cert is None:
            raise ConfigError("security-profile 3: needs client certificates (--client-cert "
                              "FILE or FOLDER; `fleetsim certs` issues test ones)")

    def charger_indexes(self) -> range:
        """The 1-based indexes of the chargers this run plays: the fleet, or its segment."""
        return (self.segment or WHOLE_FLEET).indexes(self.chargers)

    def behaviours(self) -> tuple[tuple[str, ...], tuple[ChargerSpec, ...], list[float]]:
        """(names, the spec each plays in real seconds, weights)."""
        profile = self.profile
        if profile is None:
            return ("default",), (self._plain_spec(),), [1.0]
        specs = tuple(
            behaviour.charger_spec(profile.event, self.time_scale, self.call_timeout_s,
                                   self.closed_loop, profile.warm_start)
            for behaviour in profile.behaviour)
        return tuple(b.name for b in profile.behaviour), specs, profile.weights

    def _plain_spec(self) -> ChargerSpec:
        return attrs.evolve(self.charger, call_timeout_s=self.call_timeout_s,
                            closed_loop=self.closed_loop)

    def charger_id(self, index: int) -> str:
        """IDs are 1-based and zero-padded: CP00001 ... CP05000."""
        return f"{self.id_prefix}{index:05d}"


_converter = cattrs.Converter()
_converter.register_unstructure_hook(Segment, str)


def unstructure_config(config: RunConfig) -> dict[str, Any]:
    """The resolved configuration for the report, with secrets replaced by what kind they are."""
    data: dict[str, Any] = _converter.unstructure(config)
    data["password"] = "***" if config.password else None
    if config.url is not None:
        data["url"] = redact_url(config.url)
    data["csms"]["password"] = "***" if config.csms.password else None
    data["csms"]["delay"] = str(config.csms.delay)
    if config.profile is not None:
        data["profile"] = unstructure_profile(config.profile)
        del data["charger"]
    else:
        data["charger"].update(call_timeout_s=config.call_timeout_s,
                               closed_loop=config.closed_loop)
    if config.url is not None:
        del data["csms"]
    safe: dict[str, Any] = _json_safe(data)
    return safe


def _json_safe(value: Any) -> Any:
    """JSON has no infinity: an unbounded limit (a distribution's `high`) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def build_config(cls: type[Any], **values: Any) -> Any:
    """Construct a config object, turning validation failures into `ConfigError`."""
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None
