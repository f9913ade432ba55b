"""Scale benchmark: the fleet in one process, the embedded CSMS in another, both on loopback.

For each transport, fleet size and mode it prints: time until every charger is booted, steady
calls/s, the client's and the CSMS's CPU share over the steady window, CALL round trips per
second of one client core (calls/s divided by the client's CPU share), client RSS per connected
charger, and p50/p99 service time. CPU and RSS are read from /proc from outside the processes.

Modes:
  idle    chargers boot and then only heartbeat (300 s): boot time and memory per charger
  default the default charging-session behaviour: a realistic steady message rate
  closed  closed loop, each charger sends its next Heartbeat as soon as the last is answered:
          the ceiling of the harness

Run: python benchmarks/spawn_scale.py            (all modes, 1000 and 5000, both transports)
     python benchmarks/spawn_scale.py --chargers 5000 --mode closed --transport wsproto
Every run is bounded (--duration) and talks to 127.0.0.1 only. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

TICK = os.sysconf("SC_CLK_TCK")
BASELINE_CHARGERS = 10


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def boot_time(rows: Sequence[Mapping[str, Any]], chargers: int) -> float | None:
    """The time of the first progress row (one a second) at which every charger had booted:
    the last boot came within the second before it."""
    return next((float(row["t"]) for row in rows if row["booted"] >= chargers), None)


def cpu_and_rss(pid: int) -> tuple[float, int]:
    """A process's CPU seconds and RSS (KiB); zeros once it has exited."""
    try:
        return cpu_seconds(pid), rss_kib(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0


@dataclass
class Sample:
    wall: float
    row: dict[str, Any]
    client_cpu: float
    client_rss: int
    csms_cpu: float


@dataclass
class Result:
    transport: str
    chargers: int
    mode: str
    boot_s: float | None
    calls_per_s: float
    client_cpu: float
    csms_cpu: float
    client_rss_kib: int
    service_p50: float
    service_p99: float
    errors: int

    @property
    def per_core(self) -> float:
        return self.calls_per_s / self.client_cpu if self.client_cpu else 0.0


def start_csms(*options: str) -> tuple[subprocess.Popen[str], str]:
    csms = subprocess.Popen(
        [sys.executable, "-m", "fleetsim", "csms", "--port", "0", "--heartbeat-interval", "300",
         "--stats-every", "1h", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    assert csms.stderr is not None
    line = csms.stderr.readline()
    url = line.split(" listening on ")[1].split("/<chargerId>")[0]
    return csms, url


def read_rows(stream: IO[str], fleet_pid: int, csms_pid: int) -> list[Sample]:
    samples = []
    for line in stream:
        if not line.startswith("{"):
            continue
        try:
            samples.append(Sample(time.monotonic(), json.loads(line), cpu_seconds(fleet_pid),
                                  rss_kib(fleet_pid), cpu_seconds(csms_pid)))
        except (FileNotFoundError, ProcessLookupError):
            break
    return samples


def run_one(transport: str, chargers: int, mode: str, duration: int, ramp: float) -> Result:
    csms, url = start_csms()
    report_path = Path(tempfile.mkdtemp()) / "report.json"
    command = [
        sys.executable, "-m", "fleetsim", "spawn", "--url", url, "--chargers", str(chargers),
        "--duration", str(duration), "--ramp", str(ramp), "--transport", transport,
        "--progress", "jsonl", "--report", str(report_path),
    ]
    if mode in ("idle", "closed"):
        command += ["--arrivals", "0"]
    if mode == "closed":
        command += ["--closed-loop"]
    try:
        fleet = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
        assert fleet.stderr is not None
        samples = read_rows(fleet.stderr, fleet.pid, csms.pid)
        fleet.wait(timeout=60)
    finally:
        csms.terminate()
        csms.wait(timeout=30)
    report = json.loads(report_path.read_text())
    boot_s = boot_time([s.row for s in samples], chargers)
    start = (boot_s or 0) + 2
    steady = [s for s in samples if start <= s.row["t"] <= duration - 1]
    if len(steady) < 2:
        raise SystemExit(f"{transport} {chargers} {mode}: no steady window; raise --duration")
    first, last = steady[0], steady[-1]
    wall = last.wall - first.wall
    calls = sum(s.row["ok"] + s.row["errors"] for s in steady[1:])
    service = [stats["service_ms"] for action, stats in report["calls"].items()
               if action == ("Heartbeat" if mode == "closed" else action)]
    return Result(
        transport=transport, chargers=chargers, mode=mode, boot_s=boot_s,
        calls_per_s=calls / wall,
        client_cpu=(last.client_cpu - first.client_cpu) / wall,
        csms_cpu=(last.csms_cpu - first.csms_cpu) / wall,
        client_rss_kib=max(s.client_rss for s in steady),
        service_p50=max(s["p50"] for s in service),
        service_p99=max(s["p99"] for s in service),
        errors=report["totals"]["errors"] + sum(report["chargers"]["connect_failures"].values()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chargers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--transport", nargs="+", default=["wsproto", "trio-websocket"])
    parser.add_argument("--mode", nargs="+", default=["idle", "default", "closed"])
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    parser.add_argument("--ramp", type=float, default=2500, help="chargers started per second")
    args = parser.parse_args()
    print(f"{'transport':<15}{'chargers':>9}{'mode':>9}{'boot s':>8}{'calls/s':>9}"
          f"{'client CPU':>11}{'calls/core-s':>13}{'CSMS CPU':>9}{'KiB/charger':>12}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}", flush=True)
    for transport in args.transport:
        baseline = run_one(transport, BASELINE_CHARGERS, "idle", 8, args.ramp)
        for chargers in args.chargers:
            for mode in args.mode:
                r = run_one(transport, chargers, mode, args.duration, args.ramp)
                per_charger = (r.client_rss_kib - baseline.client_rss_kib) / (
                    chargers - BASELINE_CHARGERS)
                boot = f"{r.boot_s:.1f}" if r.boot_s is not None else "never"
                print(f"{transport:<15}{chargers:>9}{mode:>9}{boot:>8}{r.calls_per_s:>9.0f}"
                      f"{r.client_cpu:>11.0%}{r.per_core:>13.0f}{r.csms_cpu:>9.0%}"
                      f"{per_charger:>12.1f}{r.service_p50:>8.2f}{r.service_p99:>8.2f}"
                      f"{r.errors:>7}", flush=True)


if __name__ == "__main__":
    main()
