"""OCPP 1.6 smart charging: charging profiles, their stacking, and the resulting power limit.

Pure and clock-free: times are Unix seconds passed in. The charger asks `limit_w` for the power
it may draw on a connector at an instant, and caps the meter's power with it, so a CSMS that
curtails the fleet sees the curtailment in MeterValues, as with real chargers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from fleetsim.charger.shapes import MAX_RATE, parse_date_time

__all__ = ["ChargingProfile", "ProfileStore", "changes", "parse_profile"]

VOLTS: Final = 230.0
DEFAULT_PHASES: Final = 3
_PURPOSES: Final = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
_KINDS: Final = ("Absolute", "Recurring", "Relative")
_RECURRENCE_S: Final = {"Daily": 86_400.0, "Weekly": 604_800.0}


@attrs.frozen
class ChargingProfile:
    profile_id: int
    connector_id: int
    purpose: str
    stack_level: int
    kind: str
    unit: str
    periods: tuple[tuple[float, float, int], ...]
    """(startPeriod s, limit, phases), sorted by start."""
    start: float | None = None
    duration: float | None = None
    recurrence_s: float | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    transaction_id: int | str | None = None
    raw: dict[str, Any] | None = attrs.field(default=None, eq=False)
    """OCPP 2.0.1: the profile as the CSMS sent it, for GetChargingProfiles."""

    def limit_w(self, at: float, transaction_start: float | None) -> float | None:
        """The limit in watts at Unix time `at`, or None where the profile does not apply."""
        if (self.valid_from is not None and at < self.valid_from) or (
                self.valid_to is not None and at >= self.valid_to):
            return None
        origin = transaction_start if self.kind == "Relative" else self.start
        if origin is None:
            return None
        offset = at - origin
        if self.recurrence_s is not None:
            offset %= self.recurrence_s
        if offset < 0 or (self.duration is not None and offset >= self.duration):
            return None
        limit: float | None = None
        for start, value, phases in self.periods:
            if start > offset:
                break
            limit = value if self.unit == "W" else value * VOLTS * phases
        return limit


def _time(value: Any, name: str) -> float | None:
    if value is None:
        return None
    moment = parse_date_time(value) if type(value) is str else None
    if moment is None:
        raise ValueError(f"{name} must be an RFC 3339 date-time")
    return moment.timestamp()


def parse_profile(connector_id: int, data: Any, now_wall: float) -> ChargingProfile:
    """A csChargingProfiles object to a `ChargingProfile`; ValueError names what is wrong.

    Callers hold the payload against its shape first; what is checked again here is what
    would break the limit computation later, on every meter sample."""
    if type(data) is not dict:
        raise ValueError("csChargingProfiles must be an object")
    schedule = data.get("chargingSchedule")
    if type(schedule) is not dict or type(schedule.get("chargingSchedulePeriod")) is not list:
        raise ValueError("chargingSchedule with chargingSchedulePeriod is required")
    periods = []
    for period in schedule["chargingSchedulePeriod"]:
        if type(period) is not dict or type(period.get("startPeriod")) is not int or type(
                period.get("limit")) not in (int, float):
            raise ValueError("each chargingSchedulePeriod needs startPeriod and limit")
        phases = period.get("numberPhases", DEFAULT_PHASES)
        if type(phases) is not int or not 1 <= phases <= DEFAULT_PHASES:
            raise ValueError("numberPhases must be 1..3")
        if not 0 <= period["limit"] <= MAX_RATE:
            raise ValueError(f"limit must be in 0..{MAX_RATE:g}")
        periods.append((float(period["startPeriod"]), float(period["limit"]), phases))
    purpose, kind = data.get("chargingProfilePurpose"), data.get("chargingProfileKind")
    if purpose not in _PURPOSES or kind not in _KINDS:
        raise ValueError("chargingProfilePurpose or chargingProfileKind is not valid")
    if schedule.get("chargingRateUnit") not in ("A", "W"):
        raise ValueError("chargingRateUnit must be A or W")
    for key in ("chargingProfileId", "stackLevel"):
        if type(data.get(key)) is not int:
            raise ValueError(f"{key} must be an integer")
    duration = schedule.get("duration")
    if duration is not None and (type(duration) is not int or duration < 0):
        raise ValueError("duration must be a non-negative integer")
    recurrency = data.get("recurrencyKind")
    start = _time(schedule.get("startSchedule"), "startSchedule")
    if kind == "Absolute" and start is None:
        start = now_wall
    return ChargingProfile(
        profile_id=data["chargingProfileId"], connector_id=connector_id, purpose=purpose,
        stack_level=data["stackLevel"], kind=kind, unit=schedule["chargingRateUnit"],
        periods=tuple(sorted(periods)), start=start,
        duration=duration,
        recurrence_s=_RECURRENCE_S.get(str(recurrency)) if kind == "Recurring" else None,
        valid_from=_time(data.get("validFrom"), "validFrom"),
        valid_to=_time(data.get("validTo"), "validTo"),
        transaction_id=data.get("transactionId"),
    )


_MAX_RECURRENCES: Final = 1024


def changes(profiles: Iterable[ChargingProfile], start: float, end: float,
            transaction_starts: Mapping[int, float]) -> list[float]:
    """The instants strictly between `start` and `end` at which a profile may begin, step or
    end (Unix times; `transaction_starts`: connector -> start of its transaction, the origin
    of Relative profiles). Between two of them every limit is constant, which makes a
    composite schedule. A recurring profile is followed for at most 1024 recurrences."""
    instants: set[float] = set()
    for p in profiles:
        instants.update(edge for edge in (p.valid_from, p.valid_to) if edge is not None)
        offsets = [period[0] for period in p.periods]
        if p.duration is not None:
            offsets.append(float(p.duration))
        if p.kind == "Relative":
            origins = [t for connector, t in transaction_starts.items()
                       if p.connector_id in (0, connector)]
        else:
            origins = [] if p.start is None else [p.start]
        for origin in origins:
            recurrence = p.recurrence_s
            if recurrence is None:
                instants.update(origin + offset for offset in offsets)
                continue
            first = math.floor((start - origin) / recurrence)
            for n in range(first, first + _MAX_RECURRENCES):
                base = origin + n * recurrence
                if base >= end:
                    break
                instants.update(base + offset for offset in offsets if offset < recurrence)
    return sorted(t for t in instants if start < t < end)


class ProfileStore:
    """The installed profiles of one charger, with OCPP 1.6's replacement and stacking rules."""

    __slots__ = ("profiles",)

    def __init__(self) -> None:
        self.profiles: list[ChargingProfile] = []

    def install(self, profile: ChargingProfile, max_installed: int) -> bool:
        """Replace a profile with the same id, or the same connector/purpose/stack level."""
        kept = [p for p in self.profiles if p.profile_id != profile.profile_id and not (
            p.connector_id == profile.connector_id and p.purpose == profile.purpose
            and p.stack_level == profile.stack_level)]
        if len(kept) >= max_installed:
            return False
        self.profiles = [*kept, profile]
        return True

    def clear(self, profile_id: int | None, connector_id: int | None, purpose: str | None,
              stack_level: int | None) -> int:
        """Remove what matches every given criterion; returns how many were removed."""
        def matches(p: ChargingProfile) -> bool:
            if profile_id is not None:
                return p.profile_id == profile_id
            return ((connector_id is None or p.connector_id == connector_id)
                    and (purpose is None or p.purpose == purpose)
                    and (stack_level is None or p.stack_level == stack_level))

        before = len(self.profiles)
        self.profiles = [p for p in self.profiles if not matches(p)]
        return before - len(self.profiles)

    def end_transaction(self, connector_id: int) -> None:
        """TxProfiles live only as long as their transaction."""
        self.profiles = [p for p in self.profiles
                         if not (p.purpose == "TxProfile" and p.connector_id == connector_id)]

    def _top(self, purpose: str, connector_ids: tuple[int, ...], at: float,
             transaction_start: float | None) -> float | None:
        """The limit of the highest stack level that applies, connector-specific first."""
        for connector_id in connector_ids:
            best: tuple[int, float] | None = None
            for p in self.profiles:
                if p.purpose != purpose or p.connector_id != connector_id:
                    continue
                limit = p.limit_w(at, transaction_start)
                if limit is not None and (best is None or p.stack_level > best[0]):
                    best = (p.stack_level, limit)
            if best is not None:
                return best[1]
        return None

    def limit_w(self, connector_id: int, at: float, transaction_start: float | None,
                connectors: int) -> float | None:
        """The composite limit of a connector: the lowest of the charge point's maximum
        (shared by its connectors) and the transaction's own profile."""
        limits = []
        maximum = self._top("ChargePointMaxProfile", (0,), at, None)
        if maximum is not None:
            limits.append(maximum / connectors)
        if transaction_start is not None:
            tx = self._top("TxProfile", (connector_id,), at, transaction_start)
            if tx is None:
                tx = self._top("TxDefaultProfile", (connector_id, 0), at, transaction_start)
            if tx is not None:
                limits.append(tx)
        return min(limits) if limits else None
