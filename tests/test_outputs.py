"""What a run writes (JSON report, summary, HTML, JUnit, Prometheus), end to end: nothing a
CSMS sends and no unwritable path loses it, and no secret shows in it."""

from __future__ import annotations

import re
import urllib.request

import trio

from fleetsim.exporter import Exporter
from fleetsim.metrics import Metrics


async def test_prometheus_quantile_labels_are_the_strings_users_query() -> None:
    metrics = Metrics()
    metrics.call_sent("Heartbeat")
    metrics.call_ok("Heartbeat", 0.002, 0.003)
    metrics.loop_lag(0.001)
    exporter = Exporter(metrics, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        body = await trio.to_thread.run_sync(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    finally:
        exporter.close()
    for name in ("fleetsim_call_response_seconds", "fleetsim_call_service_seconds",
                 "fleetsim_generator_loop_lag_seconds"):
        labels = re.findall(rf'^{name}{{.*quantile="([^"]*)"}}', body, re.MULTILINE)
        assert labels == ["0.5", "0.9", "0.99", "0.999"], name
