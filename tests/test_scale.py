"""Scale out (issue 7): segments of one fleet, run apart and merged into one report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim import (
    ChargerSpec,
    ConfigError,
    CsmsServer,
    Metrics,
    RunConfig,
    Segment,
    load_profile,
    merge_reports,
    parse_segment,
    resolve_profile,
)
from fleetsim.behaviour.schedule import assign_behaviours
from fleetsim.fleet import Fleet
from fleetsim.report import build_report

FLEETSIM = [sys.executable, "-m", "fleetsim"]
CITY_MIX = load_profile(resolve_profile("city-mix"))


def plan(config: RunConfig) -> list[tuple[int, str, str]]:
    """(index, charger ID, behaviour) of each charger `config` runs, as `Fleet` picks them."""
    names, _, weights = config.behaviours()
    assignment = assign_behaviours(weights, config.chargers, config.seed)
    return [(index, config.charger_id(index), names[assignment[index - 1]])
            for index in config.charger_indexes()]


# -- segments: pure ------------------------------------------------------------------------


@given(chargers=st.integers(1, 400), count=st.integers(1, 12), seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_segments_together_are_the_whole_fleet_without_overlap(
        chargers: int, count: int, seed: int) -> None:
    whole = RunConfig(chargers=chargers, seed=seed, profile=CITY_MIX)
    parts = []
    for index in range(1, min(count, chargers) + 1):
        segment = RunConfig(chargers=chargers, seed=seed, profile=CITY_MIX,
                            segment=Segment(index, count))
        parts.append(plan(segment))
    union = [charger for part in parts for charger in part]
    assert sorted(union) == plan(whole)  # same IDs, same behaviours, none twice
    assert len(union) == len({charger_id for _, charger_id, _ in union})
    # a strided slice takes its share of every behaviour: the sizes differ by at most one
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1


@given(chargers=st.integers(1, 300), outer=st.integers(1, 5), inner=st.integers(1, 5))
@settings(max_examples=30, deadline=None)
def test_a_segment_split_again_is_a_segment_of_the_whole_fleet(
        chargers: int, outer: int, inner: int) -> None:
    for index in range(1, outer + 1):
        segment = Segment(index, outer)
        pieces = segment.split(inner)
        assert all(piece.count == outer * inner for piece in pieces)
        covered = sorted(i for piece in pieces for i in piece.indexes(chargers))
        assert covered == list(segment.indexes(chargers))


def test_the_fleet_of_a_segment_counts_its_own_behaviours() -> None:
    async def counts(config: RunConfig) -> dict[str, int]:
        return Fleet(config, "ws://127.0.0.1:9/ocpp", Metrics()).behaviour_counts()

    whole = RunConfig(chargers=101, seed=3, profile=CITY_MIX)
    total: Counter[str] = Counter()
    for index in (1, 2, 3):
        part = trio.run(counts, attrs.evolve(whole, segment=Segment(index, 3)))
        assert sum(part.values()) == len(range(index, 102, 3))
        total.update(part)
    assert total == trio.run(counts, whole)


def test_segment_and_worker_options() -> None:
    assert parse_segment("3/8") == Segment(3, 8) and str(Segment(3, 8)) == "3/8"
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="segment"):
            parse_segment(bad)
    with pytest.raises(ConfigError, match="segment: 5/5 of 4 chargers is empty"):
        RunConfig(chargers=4, segment=Segment(5, 5))


# -- segments: real runs ---------------------------------------------------------------------


async def test_three_segments_run_the_whole_fleet_and_merge_exactly(csms: CsmsServer) -> None:
    """Three 'machines' run the three segments of one fleet, one after the other (fleets in
    one trio run at once would interleave their signal handlers)."""
    whole = RunConfig(chargers=30, duration_s=1.5, url=csms.url, seed=5, profile=CITY_MIX,
                      ramp_per_s=100, charger=ChargerSpec(call_timeout_s=10))
    runs: list[tuple[Metrics, dict[str, Any]]] = []
    for index in (1, 2, 3):
        config = attrs.evolve(whole, segment=Segment(index, 3))
        metrics = Metrics()
        with trio.fail_after(20):
            outcome = await Fleet(config, csms.url, metrics).run()
        runs.append((metrics, build_report(config, csms.url, metrics, outcome)))
    booted = [metrics.booted_ids for metrics, _ in runs]
    assert set().union(*booted) == {whole.charger_id(i) for i in range(1, 31)}
    assert sum(len(ids) for ids in booted) == 30  # no charger in two segments
    reports = [report for _, report in runs]
    assert sorted(report["chargers"]["target"] for report in reports) == [10, 10, 10]
    merged = merge_reports(reports)
    assert merged["chargers"]["target"] == merged["chargers"]["booted"] == 30
    assert merged["merge"]["missing_segments"] == []
    assert {name: entry["chargers"] for name, entry in merged["behaviours"].items()} == (
        Counter(name for _, _, name in plan(whole)))
    assert {action: stats["ok"] for action, stats in merged["calls"].items()} == dict(
        csms.stats.received)
    partial = merge_reports(reports[:2])
    assert partial["chargers"]["target"] == 20
    assert len(partial["merge"]["missing_segments"]) == 1


def test_a_segment_from_the_command_line(tmp_path: Path) -> None:
    report_path = tmp_path / "part.json"
    done = subprocess.run(
        [*FLEETSIM, "spawn", "--chargers", "10", "--duration", "1", "--segment", "2/3",
         "--report", str(report_path), "--progress", "plain"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "connected 3/3" in done.stderr  # CP00002, CP00005, CP00008
    assert "3 chargers (segment 2/3 of 10)" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["config"]["segment"] == "2/3" and report["config"]["chargers"] == 10
    assert report["chargers"]["target"] == report["chargers"]["booted"] == 3
    bad = subprocess.run([*FLEETSIM, "spawn", "--segment", "4/3"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 104 and bad.stderr.startswith("fleetsim: error: segment")
