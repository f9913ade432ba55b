"""Merging the reports of a run's parts: exact counts and percentiles, associative, and only
for parts of one run (unless forced)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim import (
    ConfigError,
    FleetOutcome,
    Metrics,
    RunConfig,
    format_summary,
    merge_reports,
    parse_segment,
)
from fleetsim.report import build_report

T0 = 1_700_000_000.0
URL = "ws://127.0.0.1:9/ocpp"
CHARGERS = 30
ACTIONS = ("BootNotification", "Heartbeat", "MeterValues", "StartTransaction")
CSMS_ACTIONS = ("GetConfiguration", "RemoteStartTransaction", "Reset")


@attrs.frozen
class Event:
    """Something a charger did during one second of a run, recorded as the fleet records it."""

    second: int
    charger: int
    kind: str
    action: str = ""
    code: str = ""
    service_s: float = 0.0
    response_s: float = 0.0


def random_run(seed: int, seconds: int = 6, actions: int = len(ACTIONS)) -> list[Event]:
    """A few seconds of a fleet's life: connects, boots, CALLs in every outcome, CSMS calls.

    Fewer `actions` make fewer histograms, which keeps many runs quick: computing a report's
    percentiles is most of the time these tests take.
    """
    rng = random.Random(seed)
    events = []
    connected: set[int] = set()
    for second in range(seconds):
        for charger in range(CHARGERS):
            for _ in range(rng.randint(0, 20)):
                kind = rng.choices(
                    ["connect", "connect_failed", "disconnect", "boot", "ok", "callerror",
                     "timeout", "in_flight", "late", "csms", "csms_error", "bad_frame"],
                    [3, 1, 1, 2, 40, 4, 3, 1, 1, 4, 1, 1])[0]
                if kind in ("connect", "disconnect"):
                    if (charger in connected) == (kind == "connect"):
                        kind = "ok"  # a charger has one connection, never a negative count
                    else:
                        connected.symmetric_difference_update({charger})
                response = rng.lognormvariate(-4.5, 1.0)
                events.append(Event(
                    second, charger, kind,
                    action=rng.choice((CSMS_ACTIONS if kind.startswith("csms")
                                       else ACTIONS)[:actions]),
                    code=rng.choice(["InternalError", "NotSupported", "refused", "timeout"]),
                    service_s=response * rng.uniform(0.2, 1.0), response_s=response))
    return events


def play(events: list[Event], seconds: int, lag_s: list[list[float]],
         cpu: list[float], *, phases: bool = False) -> Metrics:
    """Feed the events to a fresh `Metrics`, with `lag_s[second]` the event-loop lags of a
    second and `cpu[second]` its CPU share, closing one timeline row per second; with
    `phases`, connections are timed by phase too (every other one over TLS)."""
    metrics = Metrics()
    for second in range(seconds):
        for event in (e for e in events if e.second == second):
            match event.kind:
                case "connect":
                    metrics.connect_attempt(reconnect=False)
                    tls = event.service_s / 2 if event.charger % 2 else None
                    metrics.connect_ok(event.response_s, (
                        event.service_s / 4, tls, event.service_s / 3) if phases else ())
                case "connect_failed":
                    metrics.connect_attempt(reconnect=True)
                    metrics.connect_failed(event.code)
                case "disconnect":
                    metrics.disconnected(clean=event.response_s < 0.02)
                case "boot":
                    metrics.charger_booted(f"CP{event.charger:05d}")
                case "ok":
                    metrics.call_sent(event.action)
                    metrics.call_ok(event.action, event.service_s, event.response_s)
                case "callerror":
                    metrics.call_sent(event.action)
                    metrics.call_error(event.action, event.code, event.service_s,
                                       event.response_s)
                case "timeout":
                    metrics.call_sent(event.action)
                    metrics.call_timeout(event.action, lost=event.response_s < 0.01)
                case "in_flight":
                    metrics.call_sent(event.action)
                    metrics.call_in_flight(event.action)
                case "late":
                    metrics.call_late(event.action)
                case "csms" | "csms_error":
                    metrics.csms_call(event.action,
                                      event.code if event.kind == "csms_error" else None)
                    metrics.csms_call_answered_in(event.action, event.response_s)
                case "bad_frame":
                    metrics.bad_frames[event.code] += 1
        for lag in lag_s[second]:
            metrics.loop_lag(lag)
        metrics.close_interval(second + 1.0, cpu[second])
    return metrics


def report(metrics: Metrics, *, start: float = T0, seconds: float = 6.0, cpu_s: float = 1.5,
           segment: str | None = None, **config: Any) -> dict[str, Any]:
    """A real report, built the way a run builds it."""
    run_config = RunConfig(chargers=CHARGERS, url=URL, seed=config.pop("seed", 7), **config)
    outcome = FleetOutcome("duration", start, start + seconds, cpu_seconds=cpu_s)
    built = build_report(run_config, URL, metrics, outcome)
    if segment is not None:
        built["config"]["segment"] = segment  # what `--segment K/N` adds to the config
    return built


def split(seed: int, parts: int, seconds: int = 6, actions: int = len(ACTIONS), *,
          phases: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One random run recorded by one `Metrics`, and the same run split by charger into parts,
    each recorded by its own `Metrics`, as separate processes would."""
    events = random_run(seed, seconds, actions)
    rng = random.Random(seed + 1)
    owner = {charger: rng.randrange(parts) for charger in range(CHARGERS)}
    lags = [[[rng.uniform(0.0001, 0.08) for _ in range(rng.randint(0, 5))]
             for _ in range(seconds)] for _ in range(parts)]
    cpus = [[round(rng.uniform(0.1, 0.97), 3) for _ in range(seconds)] for _ in range(parts)]
    together = report(play(events, seconds,
                           [[x for lag in lags for x in lag[s]] for s in range(seconds)],
                           [max(cpu[s] for cpu in cpus) for s in range(seconds)],
                           phases=phases),
                      cpu_s=1.5 * parts)
    pieces = [report(play([e for e in events if owner[e.charger] == part], seconds, lags[part],
                          cpus[part], phases=phases), segment=f"{part + 1}/{parts}")
              for part in range(parts)]
    for part, piece in enumerate(pieces):  # a segment's report counts its own chargers
        piece["chargers"]["target"] = sum(1 for who in owner.values() if who == part)
    return together, pieces


def names(reports: list[Any], prefix: str = "part") -> list[str]:
    return [f"{prefix}-{index + 1}.json" for index in range(len(reports))]


# -- exactness -------------------------------------------------------------------------------


def assert_exact(merged: dict[str, Any], together: dict[str, Any]) -> None:
    """Everything the merged report says equals what one process recording it all says."""
    for section in ("calls", "csms_calls", "connect", "bad_frames", "totals", "duration_s",
                    "started_at", "ended_at"):
        assert merged[section] == together[section], section
    peak = merged["chargers"].pop("connected_peak")
    true_peak = together["chargers"].pop("connected_peak")
    assert max(row["connected"] for row in together["timeline"]) <= peak <= true_peak
    assert merged["chargers"] == together["chargers"]
    assert merged["generator"]["loop_lag_ms"] == together["generator"]["loop_lag_ms"]
    assert merged["generator"]["hdr"] == together["generator"]["hdr"]
    assert merged["generator"]["cpu_share"] == pytest.approx(together["generator"]["cpu_share"])


def test_merging_three_segments_equals_recording_everything_together() -> None:
    together, parts = split(seed=11, parts=3, phases=True)
    merged = merge_reports(parts, names=names(parts))
    assert_exact(merged, together)
    assert merged["totals"]["sent"] > 1000
    assert merged["calls"]["Heartbeat"]["callerror"]  # nested code maps were exercised
    assert sum(merged["chargers"]["connect_failures"].values()) > 0
    assert [part["label"] for part in merged["parts"]] == ["1/3", "2/3", "3/3"]
    assert merged["merge"]["warnings"] == []
    assert set(merged["connect"]["phases"]) == {"tcp", "tls", "websocket"}


@given(seed=st.integers(0, 2**32 - 1), parts=st.integers(1, 4))
@settings(max_examples=6, deadline=None)
def test_merge_is_exact_for_any_run_and_split(seed: int, parts: int) -> None:
    together, pieces = split(seed, parts, seconds=3, actions=2)
    assert_exact(merge_reports(pieces), together)


def test_timeline_adds_counts_and_takes_the_worst_parts_p99() -> None:
    together, parts = split(seed=5, parts=3, actions=2)
    merged = merge_reports(parts)
    assert len(merged["timeline"]) == len(together["timeline"]) == 6
    for second, (row, whole) in enumerate(zip(merged["timeline"], together["timeline"],
                                              strict=True)):
        own = [part["timeline"][second] for part in parts]
        assert row["t"] == whole["t"]
        for key in ("connected", "booted", "sent", "ok", "errors", "loop_lag_ms"):
            assert row[key] == whole[key], key
        assert row["p99_ms"] == max(r["p99_ms"] for r in own)
        assert row["cpu"] == max(r["cpu"] for r in own)
        assert row["saturated"] == any(r["saturated"] for r in own)
        assert row["parts"] == 3
    assert merged["generator"]["saturated_seconds"] == sum(r["saturated"] for r in
                                                           merged["timeline"])


def test_timelines_align_on_wall_clock_seconds() -> None:
    early, late = Metrics(), Metrics()
    for second in range(1, 6):
        early.call_sent("Heartbeat")
        early.connect_ok(0.01)
        early.close_interval(float(second))
    late.connect_ok(0.01)
    for second in range(1, 4):
        for _ in range(10):
            late.call_sent("Heartbeat")
        late.close_interval(second + 0.002)
    late.close_interval(3.4)  # the short last row lands on the same second as the one before
    merged = merge_reports([report(early, seconds=5.0),
                            report(late, start=T0 + 1.8, seconds=3.4)])
    assert [(row["t"], row["sent"], row["connected"], row["parts"])
            for row in merged["timeline"]] == [
        (1.0, 1, 1, 1), (2.0, 1, 2, 1), (3.0, 11, 4, 2), (4.0, 11, 5, 2), (5.0, 11, 6, 2)]
    assert merged["duration_s"] == 5.2
    assert merged["chargers"]["connected_peak"] == 6


# -- associativity ---------------------------------------------------------------------------


def test_merging_is_associative() -> None:
    _, (a, b, c) = split(seed=23, parts=3, seconds=4, actions=2)
    b = report_moved(b, 0.4)
    c = report_moved(c, 1.7)
    files = dict(zip(("a.json", "b.json", "c.json"), (a, b, c), strict=True))

    def merge(*keys: str) -> dict[str, Any]:
        return merge_reports([files[k] for k in keys], names=list(keys))

    files["ab.json"], files["bc.json"] = merge("a.json", "b.json"), merge("b.json", "c.json")
    left, right, flat = merge("ab.json", "c.json"), merge("a.json", "bc.json"), merge(
        "a.json", "b.json", "c.json")
    assert left == right == flat
    assert flat["chargers"]["connected_peak"] > 0 and flat["timeline"][-1]["t"] > 4


def report_moved(report: dict[str, Any], by_s: float) -> dict[str, Any]:
    """The same report as if its part had started `by_s` seconds later."""
    moved: dict[str, Any] = json.loads(json.dumps(report))
    for key in ("started_at", "ended_at"):
        when = datetime.fromisoformat(moved[key]) + timedelta(seconds=by_s)
        moved[key] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moved


# -- what merges and what does not ----------------------------------------------------------


def small(seed: int = 7, segment: str | None = "1/2", **config: Any) -> dict[str, Any]:
    metrics = Metrics()
    for n in range(1, 101):
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", n / 20_000, n / 1000)
    metrics.close_interval(1.0, 0.2)
    return report(metrics, seconds=1.0, segment=segment, seed=seed, **config)


def test_reports_of_different_runs_are_refused_naming_keys_and_files() -> None:
    with pytest.raises(ConfigError) as refused:
        merge_reports([small(), small(seed=8, segment="2/2")], names=["p1.json", "p2.json"])
    message = str(refused.value)
    assert "p1.json and p2.json differ in config: seed (7 vs 8)" in message
    assert "--force" in message
    with pytest.raises(ConfigError, match=r"charger\.connectors \(2 vs 4\)"):
        other = small(segment="2/2")
        other["config"]["charger"]["connectors"] = 4
        merge_reports([small(), other])
    with pytest.raises(ConfigError) as long_values:
        other = small(segment="2/2")
        other["config"]["charger"]["measurands"] = ["Energy.Active.Import.Register"] * 5
        merge_reports([small(), other])
    assert "differ in config: charger.measurands (--force" in str(long_values.value)
    future = small(segment="2/2")
    future["schema"] = "fleetsim.report/2"
    with pytest.raises(ConfigError, match=r"report 2 has schema 'fleetsim\.report/2'"):
        merge_reports([small(), future])


def test_keys_that_differ_between_parts_do_not_stop_a_merge() -> None:
    one = small(report_path="one.json", prometheus=("127.0.0.1", 9101))
    two = small(segment="2/2", report_path="two.json", prometheus=("127.0.0.1", 9102))
    one["config"]["workers"] = two["config"]["workers"] = 2  # kept where all parts agree
    merged = merge_reports([one, two])
    assert merged["calls"]["Heartbeat"]["sent"] == 200
    assert merged["config"]["segment"] is None and merged["config"]["report_path"] is None
    assert merged["config"]["workers"] == 2


def test_the_same_part_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"segment 1/2 twice \(a\.json and b\.json\)"):
        merge_reports([small(), small()], names=["a.json", "b.json"])
    unlabelled = small(segment=None)
    with pytest.raises(ConfigError, match="the same report twice"):
        merge_reports([unlabelled, unlabelled])
    both = merge_reports([small(), small(segment="2/2")])
    with pytest.raises(ConfigError, match="segment 2/2 twice"):
        merge_reports([both, small(segment="2/2")])


def segment(label: str) -> dict[str, Any]:
    """A report of segment `label` of the CHARGERS-strong fleet, counting its own chargers."""
    part = small(segment=label)
    part["chargers"]["target"] = len(parse_segment(label).indexes(CHARGERS))
    return part


def test_segments_no_part_ran_are_named_and_overlapping_ones_refused() -> None:
    merged = merge_reports([segment("1/3"), segment("3/3")])
    assert merged["merge"]["missing_segments"] == ["2/3"]
    assert merged["chargers"]["target"] == 20
    assert "WARNING: merge: no part ran segment 2/3: its parts ran 20 of 30 chargers" in (
        format_summary(merged))
    # one machine's two workers (1/4 and 3/4) and another machine's segment 2/2
    nested = merge_reports([segment("1/4"), segment("3/4"), segment("2/2")])
    assert nested["merge"]["missing_segments"] == []
    assert nested["chargers"]["target"] == CHARGERS
    assert merge_reports([segment("1/4")])["merge"]["missing_segments"] == ["2/4", "3/4", "4/4"]
    assert merge_reports([small(segment=None)])["merge"]["missing_segments"] == []
    with pytest.raises(ConfigError, match=r"segments 1/2 and 3/4 ran the same chargers "
                                          r"\(a\.json and b\.json\)"):
        merge_reports([segment("1/2"), segment("3/4")], names=["a.json", "b.json"])


def test_force_merges_anyway_and_says_so() -> None:
    merged = merge_reports([small(), small(seed=8), small(seed=9, segment="3/3")], force=True,
                           names=["a.json", "b.json", "c.json"])
    assert merged["calls"]["Heartbeat"]["sent"] == 300
    warnings = merged["merge"]["warnings"]
    assert any(w.startswith("forced: a.json and b.json differ in config: seed") for w in warnings)
    assert "forced: segment 1/2 twice (a.json and b.json)" in warnings
    assert "WARNING: merge: forced:" in format_summary(merged)
    again = merge_reports([merged, small(segment="4/4")], force=True)
    assert set(warnings) <= set(again["merge"]["warnings"])


def test_unreadable_histograms_are_named() -> None:
    broken = small(segment="2/2")
    broken["calls"]["Heartbeat"]["hdr"]["response"] = "bm90IGEgaGlzdG9ncmFt"
    with pytest.raises(ConfigError, match=r"b\.json: calls\.Heartbeat\.hdr\.response: not a "
                                          "readable HDR histogram"):
        merge_reports([small(), broken], names=["a.json", "b.json"])
    with pytest.raises(ConfigError, match=r"report 1: not a fleetsim report: required field "
                                          r"missing @ \$\.started_at$"):
        merge_reports([{k: v for k, v in small().items() if k != "started_at"}])
    with pytest.raises(ConfigError, match="no reports"):
        merge_reports([])


# -- the spread of the run ---------------------------------------------------------------------


def test_a_saturated_worker_stands_out() -> None:
    calm, busy = Metrics(), Metrics()
    for second in range(1, 4):
        calm.loop_lag(0.001)
        calm.close_interval(float(second), 0.3)
        busy.loop_lag(0.120)
        busy.close_interval(float(second), 0.98)
    parts = [report(calm, seconds=3.0, cpu_s=0.9, segment="1/2"),
             report(busy, seconds=3.0, cpu_s=2.94, segment="2/2")]
    merged = merge_reports(parts, names=["calm.json", "busy.json"])
    spread = {part["label"]: part for part in merged["parts"]}
    assert spread["1/2"]["saturated_seconds"] == 0 and spread["1/2"]["cpu_share"] == 0.3
    assert spread["2/2"]["saturated_seconds"] == 3 and spread["2/2"]["cpu_share"] == 0.98
    assert spread["2/2"]["loop_lag_p99_ms"] == pytest.approx(120, rel=0.001)
    assert spread["2/2"]["source"] == "busy.json"
    assert merged["generator"]["cpu_share"] == 1.28  # cores used by the whole fleet
    assert merged["generator"]["saturated_seconds"] == 3
    summary = format_summary(merged)
    assert "parts      2 reports merged" in summary
    busy_line = next(line for line in summary.splitlines() if line.startswith("  2/2"))
    assert "CPU   98%" in busy_line and "saturated 3 s   <- saturated" in busy_line


def test_thresholds_are_judged_again_on_the_whole_run() -> None:
    rules = ("Heartbeat.p99<150ms",)
    fast = small(thresholds=rules)
    slow_metrics = Metrics()
    for n in range(1, 101):
        slow_metrics.call_sent("Heartbeat")
        slow_metrics.call_ok("Heartbeat", n / 20_000, n / 100)
    slow = report(slow_metrics, seconds=1.0, segment="2/2", thresholds=rules)
    [alone] = merge_reports([fast])["thresholds"]
    assert alone["ok"] is True
    [verdict] = merge_reports([fast, slow])["thresholds"]
    assert verdict["ok"] is False and verdict["value"] > 900


# -- the command line ------------------------------------------------------------------------


def fleetsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleetsim", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_cli(tmp_path: Path) -> None:
    _, parts = split(seed=3, parts=3, seconds=3, actions=2)
    paths = []
    for index, part in enumerate(parts):
        paths.append(str(tmp_path / f"part-{index + 1}.json"))
        Path(paths[-1]).write_text(json.dumps(part))
    total = tmp_path / "out" / "total.json"
    done = fleetsim("merge", *paths, "-o", str(total))
    assert done.returncode == 0, done.stderr
    assert json.loads(total.read_text()) == json.loads(json.dumps(
        merge_reports(parts, names=paths)))
    assert "parts      3 reports merged" in done.stdout and "throughput" in done.stdout
    assert f"report: {total}" in done.stdout

    other = tmp_path / "other.json"
    other.write_text(json.dumps(small(seed=99, segment="9/9")))
    refused = fleetsim("merge", paths[0], str(other), "-o", str(tmp_path / "x.json"))
    assert refused.returncode == 104
    assert refused.stderr.startswith("fleetsim: error: merge: refusing")
    assert "seed (7 vs 99)" in refused.stderr and str(other) in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "x.json").exists()
    forced = fleetsim("merge", paths[0], str(other), "-o", str(tmp_path / "x.json"), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "fleetsim: warning: forced:" in forced.stderr

    (tmp_path / "junk.json").write_text("{not json")
    for args, message in [
        ([str(tmp_path / "missing.json")], "missing.json: cannot read it"),
        ([str(tmp_path / "junk.json")], "junk.json: not JSON"),
        ([], "Missing argument"),
    ]:
        bad = fleetsim("merge", *args, "-o", str(tmp_path / "y.json"))
        assert bad.returncode == 104, (args, bad.stderr)
        assert message in bad.stderr and "Traceback" not in bad.stderr

    gated = []
    for segment in ("1/2", "2/2"):
        gated.append(tmp_path / f"gated-{segment[0]}.json")
        gated[-1].write_text(json.dumps(small(segment=segment, thresholds=("p99<10ms",))))
    failed = fleetsim("merge", *map(str, gated), "-o", str(tmp_path / "gated.json"))
    assert failed.returncode == 99, failed.stderr
    assert "✗ p99<10ms" in failed.stdout


# -- damaged input -------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a report where a value sits, as a path of keys and indexes."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return [prefix]
    return [prefix, *(path for key, item in items for path in _paths(item, (*prefix, key)))]


def tiny(segment: str) -> dict[str, Any]:
    """A report with a little of everything, its latencies in microseconds so that it is quick
    to merge many times."""
    metrics = Metrics()
    metrics.connect_attempt(reconnect=False)
    metrics.connect_ok(0.000_050)
    metrics.connect_failed("refused")
    metrics.charger_booted("CP00001")
    for n in range(1, 21):
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", n / 2e6, n / 1e6)
    metrics.call_sent("Authorize")
    metrics.call_error("Authorize", "InternalError", 0.000_010, 0.000_020)
    metrics.call_sent("Authorize")
    metrics.call_timeout("Authorize")
    metrics.csms_call("Reset", None)
    metrics.csms_call_answered_in("Reset", 0.000_030)
    metrics.loop_lag(0.000_040)
    metrics.close_interval(1.0, 0.2)
    built: dict[str, Any] = json.loads(json.dumps(
        report(metrics, seconds=1.0, segment=segment, thresholds=("p99<1s",))))
    return built


SOUND, OTHER = tiny("2/2"), tiny("1/2")
JUNK_VALUES: list[Any] = [None, "x", "", -1, 1.5, True, [], {}, [{}], {"t": "x"}]
JUNK = st.sampled_from(JUNK_VALUES)


@given(path=st.sampled_from(_paths(SOUND)[1:]), junk=JUNK)
@settings(max_examples=15, deadline=None)
def test_a_damaged_report_is_refused_with_a_message_never_a_crash(
        path: tuple[Any, ...], junk: Any) -> None:
    damaged = json.loads(json.dumps(SOUND))
    *parents, last = path
    holder = damaged
    for key in parents:
        holder = holder[key]
    holder[last] = junk
    try:
        merged = merge_reports([OTHER, damaged], names=["a.json", "b.json"], force=True)
    except ConfigError as exc:
        assert "b.json" in str(exc)
    else:
        format_summary(merged)


def test_all_booted_is_when_the_last_part_had_booted_from_the_first_start() -> None:
    _, (a, b) = split(seed=9, parts=2, seconds=3, actions=2)
    b = report_moved(b, 0.5)  # the second worker started half a second later
    a["chargers"]["all_booted_s"], b["chargers"]["all_booted_s"] = 2.0, 1.75
    assert merge_reports([a, b])["chargers"]["all_booted_s"] == 2.25
    del a["chargers"]["all_booted_s"]  # one part's chargers never all booted
    assert "all_booted_s" not in merge_reports([a, b])["chargers"]
