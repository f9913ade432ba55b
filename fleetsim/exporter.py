"""Live metrics for dashboards: a Prometheus endpoint over the run's `Metrics`.

The official client serves `/metrics` from its own thread; this collector reads the fleet's
counters and histograms when Prometheus scrapes, so the hot path pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fleetsim.errors import ConfigError
from fleetsim.metrics import PERCENTILES, Metrics, new_histogram

__all__ = ["METRIC_NAMES", "Exporter"]

METRIC_NAMES = {
    "fleetsim_chargers_connected": "chargers with an open WebSocket",
    "fleetsim_chargers_booted": "chargers whose BootNotification was accepted",
    "fleetsim_connect_attempts_total": "WebSocket connection attempts",
    "fleetsim_connect_failures_total": "failed attempts, by reason",
    "fleetsim_calls_total": "CALLs sent by chargers, by action and outcome "
                            "(sent, ok, callerror, timeout)",
    "fleetsim_call_response_seconds": "response time quantiles (intended send to answer), "
                                      "by action",
    "fleetsim_call_service_seconds": "service time quantiles (frame written to answer), "
                                     "by action",
    "fleetsim_csms_calls_total": "CALLs received from the CSMS, by action",
    "fleetsim_generator_loop_lag_seconds": "event-loop lag quantiles of the generator",
    "fleetsim_queued_messages": "messages waiting in chargers' queues (the CSMS is behind)",
    "fleetsim_sessions_total": "EV arrivals, by outcome (started, missed)",
    "fleetsim_drops_total": "links dropped by the behaviour, by cause (flaky, storm)",
}
_QUANTILES: Final = {pct: f"{pct / 100:g}" for pct in PERCENTILES.values()}
"""Each percentile's `quantile` label, spelled as users query it: `0.999`, never the float
`99.9 / 100` (`0.9990000000000001`)."""


def _quantiles_us(histogram: HdrHistogram) -> dict[float, int]:
    """The percentiles (ascending) of a histogram the fleet's thread may be recording into.

    hdrh's walk compares the counts it has passed with the total, read when it gets there: a
    value recorded meanwhile below the walk's position leaves the top percentiles unreached,
    missing. So the walk goes over a copy whose total is read before its counts: a record
    adds to a count before the total, so that total never exceeds the copied counts' sum.
    """
    total = histogram.total_count
    if not total:
        return {}
    copy = new_histogram()
    copy.add(histogram)
    copy.total_count = total
    values: dict[float, int] = copy.get_percentile_to_value_dict(list(_QUANTILES))
    return values


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._metrics
        yield GaugeMetricFamily("fleetsim_chargers_connected",
                                METRIC_NAMES["fleetsim_chargers_connected"], value=m.connected)
        yield GaugeMetricFamily("fleetsim_chargers_booted",
                                METRIC_NAMES["fleetsim_chargers_booted"], value=m.booted_now)
        yield CounterMetricFamily("fleetsim_connect_attempts",
                                  METRIC_NAMES["fleetsim_connect_attempts_total"],
                                  value=m.connect_attempts)
        failures = CounterMetricFamily("fleetsim_connect_failures",
                                       METRIC_NAMES["fleetsim_connect_failures_total"],
                                       labels=["reason"])
        for reason, count in list(m.connect_failures.items()):
            failures.add_metric([reason], count)
        yield failures
        calls = CounterMetricFamily("fleetsim_calls", METRIC_NAMES["fleetsim_calls_total"],
                                    labels=["action", "outcome"])
        timings = {
            name: GaugeMetricFamily(f"fleetsim_call_{name}_seconds",
                                    METRIC_NAMES[f"fleetsim_call_{name}_seconds"],
                                    labels=["action", "quantile"])
            for name in ("response", "service")
        }
        for action, stats in list(m.actions.items()):
            for outcome, count in (("sent", stats.sent), ("ok", stats.ok),
                                   ("callerror", stats.errors), ("timeout", stats.timeout)):
                calls.add_metric([action, outcome], count)
            for name, histogram in (("response", stats.response), ("service", stats.service)):
                for pct, value in _quantiles_us(histogram).items():
                    timings[name].add_metric([action, _QUANTILES[pct]], value / 1e6)
        yield calls
        yield from timings.values()
        csms = CounterMetricFamily("fleetsim_csms_calls", METRIC_NAMES["fleetsim_csms_calls_total"],
                                   labels=["action"])
        for action, csms_stats in list(m.csms_calls.items()):
            csms.add_metric([action], csms_stats.received)
        yield csms
        lag = GaugeMetricFamily("fleetsim_generator_loop_lag_seconds",
                                METRIC_NAMES["fleetsim_generator_loop_lag_seconds"],
                                labels=["quantile"])
        for pct, value in _quantiles_us(m.lag).items():
            lag.add_metric([_QUANTILES[pct]], value / 1e6)
        yield lag
        yield GaugeMetricFamily("fleetsim_queued_messages",
                                METRIC_NAMES["fleetsim_queued_messages"], value=m.queued)
        sessions = CounterMetricFamily("fleetsim_sessions", METRIC_NAMES["fleetsim_sessions_total"],
                                       labels=["outcome"])
        sessions.add_metric(["started"], m.arrivals)
        sessions.add_metric(["missed"], m.arrivals_missed)
        yield sessions
        drops = CounterMetricFamily("fleetsim_drops", METRIC_NAMES["fleetsim_drops_total"],
                                    labels=["cause"])
        for cause, count in list(m.drops.items()):
            drops.add_metric([cause], count)
        yield drops


class Exporter:
    """Serves `/metrics` on `host:port` (port 0: any free port) until `close()`."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        registry = CollectorRegistry()
        registry.register(_Collector(metrics))
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"prometheus: cannot listen on {host}:{port}: "
                              f"{exc.strerror or exc}") from None
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
