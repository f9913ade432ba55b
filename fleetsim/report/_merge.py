"""Merging the reports of one run's parts (segments, workers, hosts) into one exact report.

Counts add. HDR histograms add bucket by bucket, and every percentile block is computed again
from the sum with `percentiles_ms`, the function the report itself uses: the merged p99 is the
p99 of all samples together, never an average. Rates are recomputed from the merged counts
over the merged wall-clock span (earliest start to latest end).

Per-second timeline rows are aligned on wall-clock seconds, and their counts and gauges add.
A row carries its second's p99 but not the second's histogram, so a merged row's `p99_ms` is
the highest of the parts' p99s for that second: the worst part, not the p99 of all the
second's samples (usually above it, at times below it, since HDR rounds a percentile's rank).
The merged report says so in `merge.timeline_p99_ms`. A histogram per row would make it exact
at 2-6 KB per second per worker under load (measured), 15 to 35 times the row itself, in every
report, merged or not; the whole-run percentiles that thresholds and `compare` use are exact
either way. A merged row's `loop_lag_ms` and `cpu` are also the highest among the parts: the
busiest worker, the one that matters for saturation.

Reports merge only when they come from the same run: the same schema and the same `config`
apart from the keys in `PART_CONFIG_KEYS`, and no part twice. `force=True` merges anyway and
keeps the reasons in `merge.warnings`. A merged report lists its inputs in `parts` (flattened,
so merging merged reports is associative) with each one's fleet share and generator health,
so a saturated worker stands out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from hdrh.histogram import HdrHistogram

from fleetsim.errors import ConfigError
from fleetsim.metrics import (
    CONNECT_PHASES,
    UnreadableHistogram,
    add_counts,
    merge_encoded,
    percentiles_ms,
)
from fleetsim.report._build import SCHEMA, peak_connects
from fleetsim.report._model import check_report
from fleetsim.thresholds import evaluate, parse_threshold

__all__ = ["PART_CONFIG_KEYS", "merge_reports"]

PART_CONFIG_KEYS: Final = frozenset({"segment", "workers", "report_path", "prometheus"})
"""Configuration keys that legitimately differ between the parts of one run."""

TIMELINE_P99: Final = (
    "the highest of the parts' p99s in each second (the worst part), not the p99 of all the "
    "second's samples; whole-run percentiles are exact")
_LABEL_KEYS: Final = ("segment", "worker")
_SEGMENT_LABEL: Final = re.compile(r"([1-9][0-9]{0,8})/([1-9][0-9]{0,8})")
_MAX_PERIOD: Final = 1 << 20
_SEVERITY: Final = ("unreachable", "interrupted", "duration")
_ROW_SUMS: Final = ("sent", "ok", "errors", "connects", "connect_failures")
_ROW_GAUGES: Final = ("connected", "booted", "queued")
_ROW_MAXES: Final = ("p99_ms", "loop_lag_ms", "cpu")


def merge_reports(reports: Sequence[Mapping[str, Any]], *, force: bool = False,
                  names: Sequence[str] | None = None) -> dict[str, Any]:
    """One `fleetsim.report/1` report for all of `reports`, as if one process had run them.

    `names` (file names, say) label the inputs in messages and in `parts`. Raises
    `ConfigError` for a report that cannot be read, and, unless `force`, for reports that are
    not parts of one run (the message names the differing keys and the files).
    """
    if not reports:
        raise ConfigError("merge: no reports to merge")
    sources = list(names) if names is not None else [
        f"report {index + 1}" for index in range(len(reports))]
    if len(sources) != len(reports):
        raise ConfigError("merge: one name per report, please")
    named = list(zip(reports, sources, strict=True))
    for report, source in named:
        check_report(report, source)
    starts = [_epoch(report, "started_at", source) for report, source in named]
    ends = [_epoch(report, "ended_at", source) for report, source in named]
    leaves: list[dict[str, Any]] = []
    within: list[str] = []
    for report, source in named:
        for part in _leaves(report, source):
            leaves.append(part)
            within.append(part["source"] if part["source"] == source
                          else f"{part['source']} in {source}")
    missing, overlaps = _coverage(leaves, within, reports[0]["config"].get("chargers"))
    problems = _not_one_run(reports, sources) + _duplicates(leaves, within) + overlaps
    if problems and not force:
        raise ConfigError("merge: refusing to merge reports of different runs: "
                          + "; ".join(problems) + " (--force merges anyway)")
    warnings = [w for report in reports for w in report.get("merge", {}).get("warnings", ())]
    warnings += [f"forced: {problem}" for problem in problems]
    warnings += _apart(starts, ends, sources)

    first = min(range(len(reports)), key=starts.__getitem__)
    last = max(range(len(reports)), key=ends.__getitem__)
    origin = starts[first]
    duration = max(ends[last] - origin, 1e-9)
    config = _merged_config([report["config"] for report in reports])
    timeline = _merge_timelines(reports, starts, origin)
    calls = _merge_calls(reports, sources)
    totals = add_counts([report["totals"] for report in reports])
    sent, ok, callerrors = totals["sent"], totals["ok"], totals["callerrors"]
    totals["error_rate"] = round(totals["errors"] / sent, 6) if sent else 0.0
    totals["throughput_cps"] = round((ok + callerrors) / duration, 2)
    lag = _histogram([(report["generator"]["hdr"], f"{source}: generator.hdr")
                      for report, source in named])
    cpu_seconds = sum(part["cpu_share"] * part["duration_s"] for part in leaves)

    merged: dict[str, Any] = {
        "schema": SCHEMA,
        "fleetsim_version": _same_or_listed(report["fleetsim_version"] for report in reports),
        "started_at": reports[first]["started_at"],
        "ended_at": reports[last]["ended_at"],
        "duration_s": round(duration, 3),
        "outcome": _merged_outcome(reports),
        "target": _merged_target(reports),
        "config": config,
        "chargers": _merged_chargers(reports, leaves, timeline, starts, origin),
        "calls": calls,
        "csms_calls": _merge_csms_calls(reports, sources),
        "bad_frames": add_counts([report["bad_frames"] for report in reports]),
        "connect": _merged_connect(reports, sources),
        "totals": totals,
        "timeline": timeline,
        "generator": {
            "cpu_share": round(cpu_seconds / duration, 3),
            "loop_lag_ms": percentiles_ms(lag),
            "hdr": lag.encode().decode(),
            "saturated_seconds": sum(1 for row in timeline if row["saturated"]),
        },
        "parts": leaves,
        "merge": {"warnings": warnings, "timeline_p99_ms": TIMELINE_P99,
                  "missing_segments": missing},
    }
    merged.update(_merged_behaviour_sections(reports, sources, starts, origin, timeline))
    errors = [{**error, "part": source} for report, source in named
              for error in report.get("errors", ()) if isinstance(error, dict)]
    if errors:  # sections a part could not serialise: still named in the whole
        merged["errors"] = errors
    embedded = [report["embedded_csms"] for report in reports if "embedded_csms" in report]
    if embedded:
        merged["embedded_csms"] = add_counts(embedded)
    rules = config.get("thresholds") or ()
    if rules:
        try:
            verdicts = evaluate([parse_threshold(str(rule)) for rule in rules], merged)
        except ConfigError as exc:
            raise ConfigError(f"merge: {sources[0]}: {exc}") from None
        merged["thresholds"] = [verdict.as_dict() for verdict in verdicts]
    return merged


# -- checks -----------------------------------------------------------------------------------


def _epoch(report: Mapping[str, Any], key: str, source: str) -> float:
    try:
        return datetime.fromisoformat(report[key]).timestamp()
    except ValueError:
        raise ConfigError(f"{source}: {key} {report[key]!r} is not an ISO 8601 time") from None


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to plain JSON values (a tuple in memory is a list once read from a file)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key in PART_CONFIG_KEYS:
            continue
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _as_json(value)
    return flat


def _as_json(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    return value


def _difference(key: str, one: Any, other: Any) -> str:
    """`key (a vs b)`, or just the key when the values are too long to read in one line."""
    values = f"{one!r} vs {other!r}"
    return f"{key} ({values})" if len(values) <= 80 else key


def _not_one_run(reports: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> list[str]:
    """Why these reports are not parts of one run: differing schema or configuration."""
    problems = []
    for report, source in zip(reports, sources, strict=True):
        if report["schema"] != SCHEMA:
            problems.append(f"{source} has schema {report['schema']!r}; this fleetsim merges "
                            f"{SCHEMA!r}")
    reference = _flatten(reports[0]["config"])
    for report, source in zip(reports[1:], sources[1:], strict=True):
        other = _flatten(report["config"])
        differing = sorted(key for key in reference.keys() | other.keys()
                           if reference.get(key, "<absent>") != other.get(key, "<absent>"))
        if differing:
            shown = ", ".join(_difference(key, reference.get(key, "<absent>"),
                                          other.get(key, "<absent>"))
                              for key in differing[:5])
            more = f" and {len(differing) - 5} more" if len(differing) > 5 else ""
            problems.append(f"{sources[0]} and {source} differ in config: {shown}{more}")
    return problems


def _duplicates(leaves: Sequence[Mapping[str, Any]], within: Sequence[str]) -> list[str]:
    """The same part given twice: the same segment label, or an unlabelled report repeated.

    `within` says where each part came from, for parts of an already merged report.
    """
    seen: dict[tuple[Any, ...], str] = {}
    problems = []
    for part, where in zip(leaves, within, strict=True):
        if part["label"] is not None:
            key: tuple[Any, ...] = ("label", part["label"])
            what = f"segment {part['label']}"
        else:
            key = ("run", part["started_at"], part["ended_at"], part["sent"])
            what = "the same report"
        if key in seen:
            problems.append(f"{what} twice ({seen[key]} and {where})")
        else:
            seen[key] = where
    return problems


def _coverage(leaves: Sequence[Mapping[str, Any]], within: Sequence[str],
              fleet: Any) -> tuple[list[str], list[str]]:
    """When every part is a segment (a `K/N` label): the segments of the fleet that no part
    ran, and the parts that ran the same chargers (1/2 and 1/4 share every 4th charger).

    Segments of different sizes compare on the least common multiple of their counts, so the
    parts of one machine's workers (1/4, 3/4) and another's segment (2/2) cover the fleet.
    """
    labels = [_SEGMENT_LABEL.fullmatch(str(part["label"])) for part in leaves]
    if not labels or not all(labels):
        return [], []
    segments = [(int(m[1]), int(m[2])) for m in labels if m]
    if any(index > count for index, count in segments):
        return [], []
    period = math.lcm(*(count for _, count in segments))
    if period > _MAX_PERIOD:
        return [], []
    owner: dict[int, int] = {}
    overlaps = []
    for position, (index, count) in enumerate(segments):
        for residue in range(index - 1, period, count):
            other = owner.setdefault(residue, position)
            if other != position and segments[other] != segments[position]:
                overlaps.append(f"segments {leaves[other]['label']} and "
                                f"{leaves[position]['label']} ran the same chargers "
                                f"({within[other]} and {within[position]})")
                break
    gaps = [residue for residue in range(period) if residue not in owner]
    if isinstance(fleet, int) and not isinstance(fleet, bool):
        gaps = [residue for residue in gaps if residue < fleet]
    return [f"{residue + 1}/{period}" for residue in gaps], overlaps


def _apart(starts: Sequence[float], ends: Sequence[float], sources: Sequence[str]) -> list[str]:
    """Parts of one run overlap in time; one that does not is worth a warning, not a refusal."""
    warnings = []
    for index, source in enumerate(sources):
        if len(sources) > 1 and not any(
                starts[index] < ends[other] and starts[other] < ends[index]
                for other in range(len(sources)) if other != index):
            warnings.append(f"{source} did not run at the same time as any other part; "
                            "its load did not add to theirs")
    return warnings


# -- parts ------------------------------------------------------------------------------------


def _label(config: Mapping[str, Any]) -> str | None:
    for key in _LABEL_KEYS:
        if config.get(key) is not None:
            return str(config[key])
    return None


def _leaves(report: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """The report's entries for `parts`: its own, or those it was merged from."""
    if report.get("parts"):
        return [dict(part) for part in report["parts"]]
    chargers, generator = report["chargers"], report["generator"]
    return [{
        "label": _label(report["config"]),
        "source": source,
        "started_at": report["started_at"],
        "ended_at": report["ended_at"],
        "duration_s": report["duration_s"],
        "chargers": chargers["target"],
        "booted": chargers["booted"],
        "connected_peak": chargers["connected_peak"],
        "sent": report["totals"]["sent"],
        "throughput_cps": report["totals"]["throughput_cps"],
        "cpu_share": generator["cpu_share"],
        "loop_lag_p99_ms": generator["loop_lag_ms"]["p99"],
        "loop_lag_max_ms": generator["loop_lag_ms"]["max"],
        "saturated_seconds": generator["saturated_seconds"],
    }]


# -- sections ---------------------------------------------------------------------------------


def _histogram(sources: Sequence[tuple[str, str]]) -> HdrHistogram:
    """The sum of encoded histograms, each given with where it is from, for the message."""
    try:
        return merge_encoded(text for text, _ in sources)
    except UnreadableHistogram as exc:
        raise ConfigError(f"{sources[exc.index][1]}: not a readable HDR histogram "
                          f"({exc.why})") from None


def _by_action(reports: Sequence[Mapping[str, Any]], sources: Sequence[str],
               section: str) -> Iterator[tuple[str, list[tuple[Mapping[str, Any], str]]]]:
    """Each action of a per-action section, with its entry in each report that has one."""
    for action in sorted({action for report in reports for action in report[section]}):
        yield action, [(report[section][action], source)
                       for report, source in zip(reports, sources, strict=True)
                       if action in report[section]]


def _merge_calls(reports: Sequence[Mapping[str, Any]],
                 sources: Sequence[str]) -> dict[str, Any]:
    calls: dict[str, Any] = {}
    for action, present in _by_action(reports, sources, "calls"):
        entry = add_counts([stats for stats, _ in present],
                            skip=("hdr", "service_ms", "response_ms", "lateness_ms"))
        hdr = {}
        timings = ["service", "response"]
        if all("lateness" in stats["hdr"] for stats, _ in present):
            timings.append("lateness")
        for timing in timings:
            histogram = _histogram([(stats["hdr"][timing],
                                     f"{source}: calls.{action}.hdr.{timing}")
                                    for stats, source in present])
            entry[f"{timing}_ms"] = percentiles_ms(histogram)
            hdr[timing] = histogram.encode().decode()
        entry["hdr"] = hdr
        calls[action] = entry
    return calls


def _merge_csms_calls(reports: Sequence[Mapping[str, Any]],
                      sources: Sequence[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for action, present in _by_action(reports, sources, "csms_calls"):
        entry = add_counts([stats for stats, _ in present], skip=("hdr", "answer_ms"))
        histogram = _histogram([(stats["hdr"], f"{source}: csms_calls.{action}.hdr")
                                for stats, source in present])
        entry["answer_ms"] = percentiles_ms(histogram)
        entry["hdr"] = histogram.encode().decode()
        merged[action] = entry
    return merged


def _merged_behaviour_sections(reports: Sequence[Mapping[str, Any]], sources: Sequence[str],
                               starts: Sequence[float], origin: float,
                               timeline: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Behaviour counts, sessions and drops add; the queue peak is the merged timeline's;
    each storm's recovery times merge through their HDR histograms (3 significant digits)."""
    if not any("behaviours" in report for report in reports):
        return {}
    behaviours: dict[str, Any] = {}
    for report in reports:
        for name, entry in report.get("behaviours", {}).items():
            merged = behaviours.setdefault(name, {**entry, "chargers": 0})
            merged["chargers"] += entry["chargers"]
    storms = []
    count = max(len(report.get("storms", ())) for report in reports)
    for index in range(count):
        present = [(report["storms"][index], source, start)
                   for report, source, start in zip(reports, sources, starts, strict=True)
                   if len(report.get("storms", ())) > index]
        storm = add_counts([entry for entry, _, _ in present],
                            skip=("hdr", "recovery_s", "peak_connects_per_s"))
        histogram = _histogram([(entry["hdr"], f"{source}: storms[{index}].hdr")
                                for entry, source, _ in present])
        first, _, start = present[0]
        at_s = first["at_s"] + start - origin

        def until(share: float, histogram: HdrHistogram = histogram,
                  dropped: int = storm["dropped"], recovered: int = storm["recovered"],
                  ) -> float | None:
            rank = share * dropped
            if not dropped or recovered < rank:
                return None
            value: float = histogram.get_value_at_percentile(100 * rank / recovered)
            return round(value / 1e6, 3)

        worst = histogram.get_max_value() / 1e6 if storm["recovered"] else None
        storms.append({
            "name": first["name"], "at_s": round(at_s, 3), **storm,
            "recovery_s": {"p50": until(0.5), "p95": until(0.95), "p99": until(0.99),
                           "max": worst},
            "peak_connects_per_s": peak_connects(timeline, at_s, worst or 0.0),
            "hdr": histogram.encode().decode(),
        })
    return {
        "behaviours": behaviours,
        "sessions": add_counts([report.get("sessions", {}) for report in reports]),
        "drops": add_counts([report.get("drops", {}) for report in reports]),
        "queue": {"peak": max((row.get("queued", 0) for row in timeline), default=0)},
        "storms": storms,
    }


def _merged_connect(reports: Sequence[Mapping[str, Any]],
                    sources: Sequence[str]) -> dict[str, Any]:
    histogram = _histogram([(report["connect"]["hdr"], f"{source}: connect.hdr")
                            for report, source in zip(reports, sources, strict=True)])
    merged: dict[str, Any] = {"handshake_ms": percentiles_ms(histogram),
                              "hdr": histogram.encode().decode()}
    phases: dict[str, Any] = {}
    for name in CONNECT_PHASES:
        parts = [(report["connect"]["phases"][name]["hdr"], f"{source}: connect.phases.{name}")
                 for report, source in zip(reports, sources, strict=True)
                 if name in (report["connect"].get("phases") or {})]
        if parts:
            phase = _histogram(parts)
            phases[name] = {"ms": percentiles_ms(phase), "hdr": phase.encode().decode()}
    if phases:
        merged["phases"] = phases
    return merged


def _merged_config(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The first part's configuration; a per-part key is kept only where all parts agree."""
    config = dict(configs[0])
    for key in PART_CONFIG_KEYS:
        values = [c.get(key) for c in configs if key in c]
        if values:
            config[key] = values[0] if all(v == values[0] for v in values) else None
    return config


def _merged_chargers(reports: Sequence[Mapping[str, Any]], leaves: Sequence[Mapping[str, Any]],
                     timeline: Sequence[Mapping[str, Any]], starts: Sequence[float],
                     origin: float) -> dict[str, Any]:
    """Counts add; `target` and `connected_peak` need thought.

    `connected_peak` is the peak of the aligned timeline's summed `connected`, or a part's own
    peak if that is higher (timeline rows sample once a second and can miss a part's peak).
    Both are lower bounds of the true peak. Without a timeline in every part, it is the sum
    of the parts' peaks, an upper bound.

    `target` is the sum of the parts' targets: a segment's report counts the chargers of its
    own slice (`--segment K/N`), so the segments of a fleet add up to the fleet, and a merge
    that lacks some says so in `merge.missing_segments`.

    `all_booted_s` is when the last part had all its chargers booted, from the earliest start;
    absent unless every part has it.
    """
    chargers = add_counts([report["chargers"] for report in reports],
                           skip=("target", "connected_peak", "all_booted_s"))
    booted_at = [start + report["chargers"]["all_booted_s"]
                 for report, start in zip(reports, starts, strict=True)
                 if report["chargers"].get("all_booted_s") is not None]
    if booted_at and len(booted_at) == len(reports):
        chargers["all_booted_s"] = round(max(booted_at) - origin, 3)
    peaks = [report["chargers"]["connected_peak"] for report in reports]
    if all(report.get("timeline") for report in reports):
        chargers["connected_peak"] = max(
            [row["connected"] for row in timeline] + peaks)
    else:
        chargers["connected_peak"] = sum(peaks)
    chargers["target"] = sum(part["chargers"] for part in leaves)
    return {"target": chargers.pop("target"), "connected_peak": chargers.pop("connected_peak"),
            **chargers}


def _same_or_listed(values: Iterable[Any]) -> str:
    """One value when the parts agree, else all of them; already-merged lists are split."""
    return ", ".join(sorted({piece for value in values for piece in str(value).split(", ")}))


def _merged_target(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    targets = [report["target"] for report in reports]
    return {
        "url": _same_or_listed(target["url"] for target in targets),
        "embedded": all(target["embedded"] for target in targets),
        "ocpp": list(dict.fromkeys(version for target in targets for version in target["ocpp"])),
        "transport": _same_or_listed(target["transport"] for target in targets),
    }


def _merged_outcome(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The most serious way any part stopped, with the reasons of the parts that gave one."""
    stopped = {report["outcome"]["stopped_by"] for report in reports}
    stopped_by = next((s for s in _SEVERITY if s in stopped), sorted(stopped)[0])
    reasons = []
    for report in reports:
        reason = report["outcome"]["reason"]
        label = _label(report["config"])
        if reason:
            reasons.append(f"{label}: {reason}" if label and not report.get("parts") else reason)
    return {"stopped_by": stopped_by, "reason": "; ".join(reasons)}


def _merge_timelines(reports: Sequence[Mapping[str, Any]], starts: Sequence[float],
                     origin: float) -> list[dict[str, Any]]:
    """Rows aligned on the wall-clock second nearest to each row's end (`started_at + t`).

    Within one part, two rows that land on the same second (the short last row) add their
    counts and keep the later gauges; across parts, counts and gauges add. `p99_ms`,
    `loop_lag_ms` and `cpu` are the highest among the parts (see the module docstring), and
    `parts` counts the parts that had a row for that second.
    """
    seconds: dict[int, dict[str, Any]] = {}
    for report, start in zip(reports, starts, strict=True):
        own: dict[int, dict[str, Any]] = {}
        for row in sorted(report["timeline"], key=lambda row: float(row["t"])):
            key = math.floor(start + row["t"] + 0.5)
            plain = _row(row)
            previous = own.get(key)
            own[key] = plain if previous is None else _fold(previous, plain, same=True)
        for key, row in own.items():
            seconds[key] = row if key not in seconds else _fold(seconds[key], row, same=False)
    return [{"t": round(key - origin, 3), **seconds[key]} for key in sorted(seconds)]


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **{key: row.get(key, 0) for key in (*_ROW_GAUGES, *_ROW_SUMS)},
        "p99_ms": row["p99_ms"],
        "cpu": row["cpu"],
        "loop_lag_ms": row["loop_lag_ms"],
        "saturated": row["saturated"],
        "parts": row.get("parts", 1),
    }


def _fold(into: dict[str, Any], row: Mapping[str, Any], *, same: bool) -> dict[str, Any]:
    """`row` added to `into`: from the same part (a later row) or from another part."""
    for key in _ROW_SUMS:
        into[key] += row.get(key, 0)
    for key in _ROW_GAUGES:
        into[key] = row.get(key, 0) if same else into[key] + row.get(key, 0)
    for key in _ROW_MAXES:
        present = [value for value in (into[key], row[key]) if value is not None]
        into[key] = max(present) if present else None
    into["saturated"] = into["saturated"] or row["saturated"]
    into["parts"] = max(into["parts"], row["parts"]) if same else into["parts"] + row["parts"]
    return into
