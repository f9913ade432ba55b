"""Timer-driven benchmark: the workload users run, against a CSMS that is never the limit.

Every charger has one connector, sends a Heartbeat every second (the interval the CSMS gives
at boot) and, during a session, MeterValues every second; sessions last 10-20 s and EVs
arrive about 40 a minute per charger. The offered load is about two CALLs per charger per
second, so 5000 chargers offer about 10,000 CALLs/s. The same fleet in closed loop (each
charger sends its next Heartbeat as soon as the last is answered) is measured against the
same CSMS, and the ratio of the two is printed.

The CSMS is `benchmarks/fast_csms/server.mjs` (Node.js and its `ws` package): it answers every
CALL at once and uses a fraction of a core, so the figures are the fleet's. Install it once:

    cd benchmarks/fast_csms && npm install

Columns: boot s (first charger started -> every charger booted: the report's
chargers.all_booted_s, or the first progress row with all booted for an older fleetsim),
msgs/s (CALLs answered per second
over the steady window: boot + 3 s to the end - 1 s), client CPU and CSMS CPU (CPU time /
wall time over that window, all fleet processes together: 100 % is one core), msgs per
client CPU-s (msgs/s / client CPU), KiB/charger (peak RSS of the fleet processes / chargers,
and in idle mode the marginal RSS: (RSS - RSS of a 10-charger fleet) / (chargers - 10)),
p99 ms (the worst per-action p99 of the run's report), lag p99 (the fleet's event-loop lag).

Run: python benchmarks/timer_driven.py                        (5000 chargers, every mode)
     python benchmarks/timer_driven.py --chargers 20000 --workers auto --mode timer
Every run is bounded (--duration) and talks to 127.0.0.1 only. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spawn_scale import boot_time, cpu_and_rss

HERE = Path(__file__).resolve().parent
SERVER = HERE / "fast_csms" / "server.mjs"
BASELINE_CHARGERS = 10
WORKLOAD = ["--connectors", "1", "--meter-interval", "1s", "--session", "10s-20s",
            "--arrivals", "40/m"]
IDLE = ["--connectors", "1", "--arrivals", "0.001/h"]
"""Idle chargers: `--arrivals 0` would play the deterministic test sessions."""


def _open_files_to_the_hard_limit() -> None:
    """Each connection is an open file of the CSMS."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_fast_csms(
    heartbeat_interval: int, options: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], str]:
    node = shutil.which("node")
    if node is None or not (HERE / "fast_csms" / "node_modules" / "ws").is_dir():
        raise SystemExit("needs Node.js and the ws package: cd benchmarks/fast_csms && "
                         "npm install")
    csms = subprocess.Popen([node, str(SERVER), "--port", "0", "--heartbeat-interval",
                             str(heartbeat_interval), *options], stdout=subprocess.PIPE,
                            text=True,
                            preexec_fn=_open_files_to_the_hard_limit)
    assert csms.stdout is not None
    line = csms.stdout.readline()
    return csms, "ws://" + line.split("listening on ")[1].strip()


@dataclass
class Sample:
    wall: float
    row: dict[str, Any]
    fleet_cpu: float
    fleet_rss: int
    csms_cpu: float


@dataclass
class Run:
    mode: str
    chargers: int
    workers: str
    samples: list[Sample] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def booted_at(self) -> float | None:
        return boot_time([s.row for s in self.samples], self.chargers)


def run(mode: str, chargers: int, workers: str, duration: int, ramp: str) -> Run:
    csms, url = start_fast_csms(300 if mode == "idle" else 1)
    report_path = Path(tempfile.mkdtemp()) / "report.json"
    command = [
        sys.executable, "-m", "fleetsim", "spawn", "--url", url, "--chargers", str(chargers),
        "--duration", str(duration), "--ramp", ramp, "--workers", workers,
        "--progress", "jsonl", "--report", str(report_path),
        *(IDLE if mode == "idle" else WORKLOAD),
    ]
    if mode == "closed":
        command.append("--closed-loop")
    result = Run(mode, chargers, workers)
    try:
        fleet = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
        pids = [fleet.pid]
        assert fleet.stderr is not None
        for line in fleet.stderr:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") == "worker":
                pids.append(event["pid"])
            if "t" not in event:
                continue
            readings = [cpu_and_rss(pid) for pid in pids]
            result.samples.append(Sample(
                time.monotonic(), event, sum(cpu for cpu, _ in readings),
                sum(rss for _, rss in readings), cpu_and_rss(csms.pid)[0]))
        fleet.wait(timeout=120)
    finally:
        csms.terminate()
        csms.wait(timeout=30)
    result.report = json.loads(report_path.read_text())
    return result


@dataclass
class Figures:
    boot_s: float | None
    msgs_per_s: float
    client_cpu: float
    csms_cpu: float
    peak_rss_kib: int
    p99_ms: float
    lag_p99_ms: float
    errors: int

    @property
    def per_cpu_s(self) -> float:
        return self.msgs_per_s / self.client_cpu if self.client_cpu else 0.0


def figures(result: Run, duration: int) -> Figures:
    boot = result.report["chargers"].get("all_booted_s") or result.booted_at()
    start = (boot or 0) + 3
    steady = [s for s in result.samples if start <= s.row["t"] <= duration - 1]
    if len(steady) < 3:
        raise SystemExit(f"{result.mode} {result.chargers}: no steady window; raise --duration")
    first, last = steady[0], steady[-1]
    wall = last.wall - first.wall
    msgs = sum(s.row["ok"] + s.row["errors"] for s in steady[1:])
    report = result.report
    p99 = max((stats["service_ms"]["p99"] for stats in report["calls"].values()), default=0.0)
    lags = [s.row["loop_lag_ms"] for s in steady if s.row.get("loop_lag_ms") is not None]
    return Figures(
        boot_s=boot, msgs_per_s=msgs / wall,
        client_cpu=(last.fleet_cpu - first.fleet_cpu) / wall,
        csms_cpu=(last.csms_cpu - first.csms_cpu) / wall,
        peak_rss_kib=max(s.fleet_rss for s in result.samples),
        p99_ms=p99, lag_p99_ms=max(lags, default=0.0),
        errors=report["totals"]["errors"] + sum(report["chargers"]["connect_failures"].values()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chargers", type=int, nargs="+", default=[5000])
    parser.add_argument("--mode", nargs="+", default=["timer", "closed", "idle"],
                        choices=["timer", "closed", "idle"])
    parser.add_argument("--workers", default="1", help="--workers of fleetsim spawn")
    parser.add_argument("--duration", type=int, default=30, help="seconds per run")
    parser.add_argument("--ramp", default="2500", help="--ramp of fleetsim spawn")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f}; workers: {args.workers}; ramp: {args.ramp}")
    print(f"{'chargers':>9}{'mode':>7}{'boot s':>8}{'msgs/s':>9}{'client CPU':>11}"
          f"{'msgs/CPU-s':>11}{'CSMS CPU':>9}{'KiB/charger':>12}{'p99 ms':>9}{'lag ms':>8}"
          f"{'errors':>7}", flush=True)
    for chargers in args.chargers:
        per_cpu: dict[str, float] = {}
        baseline = None
        for mode in args.mode:
            if mode == "idle" and baseline is None:
                baseline = run("idle", BASELINE_CHARGERS, args.workers, 8, args.ramp)
            result = run(mode, chargers, args.workers, args.duration, args.ramp)
            f = figures(result, args.duration)
            per_cpu[mode] = f.per_cpu_s
            if mode == "idle" and baseline is not None:
                base_rss = max(s.fleet_rss for s in baseline.samples)
                kib = (f.peak_rss_kib - base_rss) / (chargers - BASELINE_CHARGERS)
                rate = "–"
            else:
                kib = f.peak_rss_kib / chargers
                rate = f"{f.per_cpu_s:,.0f}"
            boot = f"{f.boot_s:.1f}" if f.boot_s is not None else "never"
            print(f"{chargers:>9}{mode:>7}{boot:>8}{f.msgs_per_s:>9,.0f}{f.client_cpu:>11.0%}"
                  f"{rate:>11}{f.csms_cpu:>9.0%}{kib:>12.1f}{f.p99_ms:>9.1f}"
                  f"{f.lag_p99_ms:>8.1f}{f.errors:>7}", flush=True)
        if "timer" in per_cpu and "closed" in per_cpu and per_cpu["closed"]:
            print(f"{'':>9} timer-driven / closed loop, msgs per client CPU-s: "
                  f"{per_cpu['timer'] / per_cpu['closed']:.2f}")


if __name__ == "__main__":
    main()
