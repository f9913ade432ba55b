"""HDR metrics: percentiles within HDR precision, exact merging, nothing dropped silently."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetsim.metrics import (
    Metrics,
    UnreadableHistogram,
    mean_us,
    merge_encoded,
    new_histogram,
    percentiles_ms,
)


@given(st.lists(st.integers(1, 3_600_000_000), min_size=1, max_size=500))
@settings(max_examples=50, deadline=None)
def test_percentiles_match_the_samples_within_hdr_precision(values: list[int]) -> None:
    histogram = new_histogram()
    for value in values:
        assert histogram.record_value(value)
    ordered = sorted(values)
    result = percentiles_ms(histogram)
    for name, pct in (("p50", 50.0), ("p99", 99.0)):
        exact = ordered[max(0, -(-len(ordered) * int(pct * 10) // 1000) - 1)]
        assert abs(result[name] * 1000 - exact) <= exact * 0.001 + 1, (name, exact)
    assert abs(result["max"] * 1000 - ordered[-1]) <= ordered[-1] * 0.001 + 1


@given(st.lists(st.lists(st.integers(1, 10_000_000), max_size=200), min_size=2, max_size=5))
@settings(max_examples=30, deadline=None)
def test_merging_encoded_histograms_equals_recording_everything_together(
    parts: list[list[int]],
) -> None:
    together = new_histogram()
    encoded = []
    for part in parts:
        piece = new_histogram()
        for value in part:
            piece.record_value(value)
            together.record_value(value)
        encoded.append(piece.encode().decode())
    merged = merge_encoded(encoded)
    assert merged.get_total_count() == together.get_total_count()
    assert percentiles_ms(merged) == percentiles_ms(together)
    assert merged.encode() == together.encode()


def test_a_histogram_that_does_not_decode_is_named_by_its_position() -> None:
    good = new_histogram().encode().decode()
    with pytest.raises(UnreadableHistogram, match="histogram 1: ") as caught:
        merge_encoded([good, "not base64 at all"])
    assert caught.value.index == 1


@given(st.lists(st.integers(1, 3_600_000_000), max_size=300), st.integers(1, 5))
@settings(max_examples=50, deadline=None)
def test_the_fast_mean_is_hdrh_own(values: list[int], repeat: int) -> None:
    histogram = new_histogram()
    for value in values:
        histogram.record_value(value, repeat)
    assert mean_us(histogram) == histogram.get_mean_value()


def test_out_of_range_samples_are_counted_not_lost() -> None:
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", service_s=-0.001, response_s=0.001)
    stats = metrics.actions["Heartbeat"]
    assert stats.ok == 1 and stats.dropped_samples == 1
    assert stats.balanced()


def test_timeline_rows_and_interval_reset() -> None:
    metrics = Metrics()
    rng = random.Random(3)
    for _ in range(1000):
        metrics.call_sent("MeterValues")
        metrics.call_ok("MeterValues", 0.002, rng.uniform(0.001, 0.010))
    metrics.call_sent("MeterValues")
    metrics.call_timeout("MeterValues")
    row = metrics.close_interval(1.0)
    assert (row["sent"], row["ok"], row["errors"]) == (1001, 1000, 1)
    assert 9.5 <= row["p99_ms"] <= 10.1
    empty = metrics.close_interval(2.0)
    assert (empty["sent"], empty["ok"], empty["p99_ms"]) == (0, 0, 0.0)
    assert metrics.totals() == (1001, 1000, 1)
    assert isinstance(metrics.actions["MeterValues"].service, HdrHistogram)


def test_seconds_where_the_generator_was_saturated_are_flagged() -> None:
    metrics = Metrics()
    metrics.loop_lag(0.002)
    calm = metrics.close_interval(1.0, cpu_share=0.3)
    assert (calm["loop_lag_ms"], calm["cpu"], calm["saturated"]) == (2.0, 0.3, False)
    metrics.loop_lag(0.080)
    assert metrics.close_interval(2.0, cpu_share=0.3)["saturated"]
    assert metrics.close_interval(3.0, cpu_share=0.95)["saturated"]
    assert metrics.lag.get_total_count() == 2


def test_nothing_is_flagged_while_connections_close() -> None:
    metrics = Metrics()
    metrics.loop_lag(0.5)
    assert not metrics.close_interval(9.0, cpu_share=1.0, closing=True)["saturated"]


def test_each_connect_phase_has_its_histogram() -> None:
    metrics = Metrics()
    metrics.connect_ok(0.010, (0.001, 0.006, 0.002))
    metrics.connect_ok(0.004, (0.001, None, 0.002))  # ws://: no TLS
    metrics.connect_ok(0.003)  # a transport that did not measure them
    counts = {phase: h.get_total_count() for phase, h in metrics.connect_phases.items()}
    assert counts == {"tcp": 2, "tls": 1, "websocket": 2}
    assert metrics.handshake.get_total_count() == 3
    assert 5_900 <= metrics.connect_phases["tls"].get_max_value() <= 6_100
