"""Scale-out benchmark: `fleetsim spawn --workers N` against one CSMS of its own, on loopback.

Two measurements:

  efficiency  closed loop (each charger sends its next Heartbeat as soon as the last is
              answered) with --workers 1 and --workers 2: calls/s, the CPU share of the
              workers, of the parent and of the CSMS, and calls per CPU-second of the fleet
              (workers + parent), the figure that must not drop when the fleet is split
  boot        20,000 idle chargers (heartbeats only): seconds until every charger has booted,
              and client RSS per charger (all fleet processes, less the RSS of the same
              processes with a 10-charger fleet). With --workers 1 and 2 against one CSMS,
              and as 2 segments, each a process against a CSMS of its own: a process may
              hold only as many connections as it may open files (`ulimit -Hn`), so when
              that is near 20,000 the one-CSMS runs take a few less chargers

The CSMS is `fleetsim csms` in its own process. CPU and RSS are read from /proc at every live
row of the parent (`--progress jsonl`), from outside the processes; worker pids come from the
parent's "worker" lines. The load average is printed with the figures: the machine may be
shared.

Run: python benchmarks/scale_out.py                   (both measurements, about 4 minutes)
     python benchmarks/scale_out.py --only efficiency --chargers 1000 --repeat 3
Every run is bounded (--duration) and talks to 127.0.0.1 only. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spawn_scale import boot_time, cpu_and_rss, start_csms

BASELINE_CHARGERS = 10
NO_SESSIONS = "0.001/h"
"""Idle chargers: `--arrivals 0` would play the deterministic test sessions (an EV 5-30 s
after the last one left), and a rate this low plays none."""


@dataclass
class Sample:
    wall: float
    row: dict[str, Any]
    cpu: dict[int, float]
    rss: dict[int, int]


@dataclass
class Run:
    workers: int
    chargers: int
    samples: list[Sample] = field(default_factory=list)
    worker_pids: list[int] = field(default_factory=list)
    parent_pid: int = 0
    csms_pid: int = 0
    report: dict[str, Any] = field(default_factory=dict)

    def booted_at(self) -> float | None:
        return boot_time([s.row for s in self.samples], self.chargers)


def run(url: str, csms_pid: int, chargers: int, workers: int, duration: int, ramp: float,
        closed: bool, segment: str | None = None, cpus: set[int] | None = None) -> Run:
    """`--workers N` (the parent and its workers), or `--segment K/N` (one process); with
    `cpus`, the fleet's processes run only there."""
    report_path = Path(tempfile.mkdtemp()) / "report.json"
    command = [
        sys.executable, "-m", "fleetsim", "spawn", "--url", url, "--chargers", str(chargers),
        "--duration", str(duration), "--ramp", str(ramp), "--arrivals", NO_SESSIONS,
        "--progress", "jsonl", "--report", str(report_path),
    ]
    command += ["--segment", segment] if segment else ["--workers", str(workers)]
    if closed:
        command.append("--closed-loop")
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    if cpus:
        os.sched_setaffinity(parent.pid, cpus)  # before it starts workers, which inherit it
    mine = len(range(int(segment.split("/")[0]), chargers + 1, int(segment.split("/")[1]))
               ) if segment else chargers
    result = Run(workers, mine, parent_pid=parent.pid, csms_pid=csms_pid)
    assert parent.stderr is not None
    for line in parent.stderr:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "worker":
            result.worker_pids.append(event["pid"])
            if cpus:
                os.sched_setaffinity(event["pid"], cpus)
            continue
        if "t" not in event:
            continue
        pids = [parent.pid, csms_pid, *result.worker_pids]
        readings = {pid: cpu_and_rss(pid) for pid in pids}
        result.samples.append(Sample(time.monotonic(), event,
                                     {pid: cpu for pid, (cpu, _) in readings.items()},
                                     {pid: rss for pid, (_, rss) in readings.items()}))
    parent.wait(timeout=120)
    result.report = json.loads(report_path.read_text())
    return result


@dataclass
class Efficiency:
    calls_per_s: float
    workers_cpu: float
    parent_cpu: float
    csms_cpu: float
    p99_ms: float

    @property
    def per_cpu_s(self) -> float:
        return self.calls_per_s / (self.workers_cpu + self.parent_cpu)


def efficiency(result: Run, duration: int) -> Efficiency:
    start = (result.booted_at() or 0) + 2
    steady = [s for s in result.samples if start <= s.row["t"] <= duration - 1]
    if len(steady) < 3:
        raise SystemExit(f"workers {result.workers}: no steady window; raise --duration")
    first, last = steady[0], steady[-1]
    wall = last.wall - first.wall

    def share(pids: list[int]) -> float:
        return sum(last.cpu[pid] - first.cpu[pid] for pid in pids) / wall

    calls = sum(s.row["ok"] + s.row["errors"] for s in steady[1:])
    return Efficiency(calls / wall, share(result.worker_pids), share([result.parent_pid]),
                      share([result.csms_pid]),
                      result.report["calls"]["Heartbeat"]["service_ms"]["p99"])


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["efficiency", "boot"])
    parser.add_argument("--chargers", type=int, default=1000,
                        help="fleet size for the efficiency runs")
    parser.add_argument("--boot-chargers", type=int, default=20000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per efficiency run")
    parser.add_argument("--ramp", type=float, default=2500,
                        help="chargers started per second, efficiency runs")
    parser.add_argument("--boot-ramp", type=float, default=1000,
                        help="chargers started per second, boot runs (the default --ramp)")
    parser.add_argument("--repeat", type=int, default=1, help="efficiency runs per setting")
    parser.add_argument("--pin", action="store_true",
                        help="efficiency runs: the CSMS on the first core, the fleet on the "
                             "others, so that its processes never compete with the CSMS")
    parser.add_argument("--delay-ms", type=float, default=0,
                        help="efficiency runs: the CSMS answers after this long, so the closed "
                             "loop offers chargers/delay calls/s and no process saturates")
    args = parser.parse_args()
    # every connection is an open file in the CSMS and in a fleet process
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, args.boot_chargers + 1024)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"{os.cpu_count()} cores; load average {load_average()} at the start", flush=True)

    if args.only in (None, "efficiency"):
        delay = f", CSMS delay {args.delay_ms:g} ms" if args.delay_ms else ""
        delay += ", the CSMS on core 0 and the fleet on the others" if args.pin else ""
        print(f"\nefficiency: {args.chargers} chargers, closed loop{delay}, "
              f"{args.duration} s per run")
        print(f"{'workers':>8}{'calls/s':>9}{'workers CPU':>12}{'parent CPU':>11}"
              f"{'calls/CPU-s':>12}{'CSMS CPU':>9}{'p99 ms':>8}{'load avg':>17}", flush=True)
        for _ in range(args.repeat):
            for workers in (1, 2):
                csms, url = start_csms("--delay-ms", f"{args.delay_ms:g}")
                cores = sorted(os.sched_getaffinity(0))
                fleet_cpus = set(cores[1:]) if args.pin and len(cores) > 1 else None
                if fleet_cpus:
                    os.sched_setaffinity(csms.pid, {cores[0]})
                try:
                    result = run(url, csms.pid, args.chargers, workers, args.duration,
                                 args.ramp, closed=True, cpus=fleet_cpus)
                finally:
                    csms.terminate()
                    csms.wait(timeout=30)
                e = efficiency(result, args.duration)
                print(f"{workers:>8}{e.calls_per_s:>9.0f}{e.workers_cpu:>12.0%}"
                      f"{e.parent_cpu:>11.1%}{e.per_cpu_s:>12.0f}{e.csms_cpu:>9.0%}"
                      f"{e.p99_ms:>8.1f}{load_average():>17}", flush=True)

    if args.only in (None, "boot"):
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        chargers = min(args.boot_chargers, limit - 100)  # the CSMS's listener, pipes, epoll
        ramp = args.boot_ramp
        settle = int(args.boot_chargers / ramp) + 30
        print(f"\nboot: idle chargers at --ramp {ramp:g} (open files: {limit} a process)")
        print(f"{'fleet':<26}{'chargers':>9}{'boot s':>8}{'RSS MiB':>9}{'KiB/charger':>12}"
              f"{'booted':>8}{'errors':>7}{'load avg':>17}", flush=True)
        for workers in (1, 2):
            csms, url = start_csms()
            try:
                baseline = [run(url, csms.pid, BASELINE_CHARGERS * workers, workers, 6,
                                ramp, closed=False)]
                boot = [run(url, csms.pid, chargers, workers, settle, ramp, closed=False)]
            finally:
                csms.terminate()
                csms.wait(timeout=30)
            show_boot(f"--workers {workers}, 1 CSMS", chargers, baseline, boot)
        segments = 2
        csmss = [start_csms() for _ in range(segments)]
        try:
            parts_baseline = together([(url, csms.pid, BASELINE_CHARGERS * segments,
                                        f"{k + 1}/2") for k, (csms, url) in enumerate(csmss)],
                                      6, ramp)
            parts = together([(url, csms.pid, args.boot_chargers, f"{k + 1}/2")
                              for k, (csms, url) in enumerate(csmss)], settle, ramp)
        finally:
            for csms, _ in csmss:
                csms.terminate()
                csms.wait(timeout=30)
        show_boot("--segment 1/2 and 2/2, 2 CSMS", args.boot_chargers, parts_baseline, parts)


def together(parts: list[tuple[str, int, int, str]], duration: int, ramp: float) -> list[Run]:
    """Segments of one fleet, each a process (as on separate machines), run side by side."""
    results: list[Run] = [Run(1, 0) for _ in parts]
    with concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
        futures = [pool.submit(run, url, csms_pid, chargers, 1, duration, ramp, closed=False,
                               segment=segment)
                   for url, csms_pid, chargers, segment in parts]
        results = [future.result() for future in futures]
    return results


def show_boot(label: str, chargers: int, baseline: list[Run], result: list[Run]) -> None:
    def fleet_rss(r: Run, sample: Sample) -> int:
        return sum(sample.rss.get(pid, 0) for pid in [r.parent_pid, *r.worker_pids])

    peak = sum(max(fleet_rss(r, s) for s in r.samples) for r in result)
    base = sum(max(fleet_rss(r, s) for s in r.samples) for r in baseline)
    base_chargers = sum(r.chargers for r in baseline)
    per_charger = (peak - base) / (chargers - base_chargers)
    boots = [r.booted_at() for r in result]
    boot = max(b for b in boots if b is not None) if all(b is not None for b in boots) else None
    booted = sum(r.report["chargers"]["booted"] for r in result)
    errors = sum(r.report["totals"]["errors"]
                 + sum(r.report["chargers"]["connect_failures"].values()) for r in result)
    print(f"{label:<26}{chargers:>9}{boot if boot is not None else float('nan'):>8.1f}"
          f"{peak / 1024:>9.0f}{per_charger:>12.1f}{booted:>8}{errors:>7}"
          f"{load_average():>17}", flush=True)


if __name__ == "__main__":
    main()
