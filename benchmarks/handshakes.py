"""Handshake benchmark: what connecting costs under each OCPP security profile.

A fleet boots against `benchmarks/fast_csms/server.mjs` (Node.js, `ws`), which checks what
the profile asks of it: nothing (0), HTTP Basic auth per charger (1), the same over TLS (2),
or a client certificate per charger whose CN is the charger's ID (3). Certificates come from
`fleetsim certs` (EC P-256). Chargers are idle once booted (heartbeat every 300 s), so the
figures are the connections' own: TCP, TLS and WebSocket handshakes, plus each charger's
BootNotification and StatusNotification.

Columns: boot s (the run's start -> all booted: the report's chargers.all_booted_s),
conn/s (chargers / boot s) and peak conn/s (the busiest second), client ms and CSMS ms (CPU
per charger booted, over the boot's seconds: all fleet processes together, and the CSMS),
handshake p50/p99 (the report's connect histogram: TCP connect to the WebSocket's 101),
failures (connect failures by reason).

Install the CSMS once: cd benchmarks/fast_csms && npm install
Run: python benchmarks/handshakes.py                        (1000 and 5000, profiles 0-3)
     python benchmarks/handshakes.py --chargers 1000 --profiles 2 3 --ramp auto
Every run is bounded (--duration) and talks to 127.0.0.1 only. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spawn_scale import boot_time, cpu_and_rss
from timer_driven import IDLE, start_fast_csms

PASSWORD = "pw-{id}"


@dataclass
class Figures:
    boot_s: float | None
    peak_per_s: int
    client_ms: float
    csms_ms: float
    handshake_p50: float
    handshake_p99: float
    failures: dict[str, int]


def issue_certs(folder: Path, chargers: int) -> None:
    subprocess.run([sys.executable, "-m", "fleetsim", "certs", "--out", str(folder),
                    "--chargers", str(chargers)], check=True, stdout=subprocess.DEVNULL)


def csms_options(profile: int, certs: Path) -> list[str]:
    options = ["--password", PASSWORD] if profile in (1, 2) else []
    if profile >= 2:
        options += ["--tls-cert", str(certs / "server.pem"), "--tls-key",
                    str(certs / "server.key")]
    if profile == 3:
        options += ["--client-ca", str(certs / "ca.pem")]
    return options


def fleet_options(profile: int, certs: Path) -> list[str]:
    if profile == 0:
        return []
    options = ["--security-profile", str(profile)]
    if profile in (1, 2):
        options += ["--password", PASSWORD]
    if profile >= 2:
        options += ["--ca-file", str(certs / "ca.pem")]
    if profile == 3:
        options += ["--client-cert", str(certs / "chargers")]
    return options


def run(profile: int, chargers: int, ramp: str, duration: int, workers: str,
        certs: Path) -> Figures:
    csms, url = start_fast_csms(300, csms_options(profile, certs))
    if profile >= 2:
        url = url.replace("ws://", "wss://", 1)
    report_path = Path(tempfile.mkdtemp()) / "report.json"
    command = [
        sys.executable, "-m", "fleetsim", "spawn", "--url", url + "/ocpp",
        "--chargers", str(chargers), "--duration", str(duration), "--ramp", ramp,
        "--workers", workers, "--progress", "jsonl", "--report", str(report_path),
        *IDLE, *fleet_options(profile, certs),
    ]
    rows: list[tuple[dict[str, Any], float]] = []
    csms_before = cpu_and_rss(csms.pid)[0]
    try:
        fleet = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
        assert fleet.stderr is not None
        for line in fleet.stderr:
            if line.startswith("{") and '"t"' in line:
                rows.append((json.loads(line), cpu_and_rss(csms.pid)[0]))
            elif not line.startswith("{"):
                sys.stderr.write(line)
        fleet.wait(timeout=120)
    finally:
        csms.terminate()
        csms.wait(timeout=30)
    report = json.loads(report_path.read_text())
    booted = next((i for i, (row, _) in enumerate(rows) if row["booted"] >= chargers), None)
    boot_rows = rows[:booted + 1] if booted is not None else rows
    client_s = sum(row.get("cpu") or 0.0 for row, _ in boot_rows)
    csms_s = boot_rows[-1][1] - csms_before
    handshake = report["connect"]["handshake_ms"]
    return Figures(
        boot_s=(report["chargers"].get("all_booted_s")
                or boot_time([row for row, _ in rows], chargers)),
        peak_per_s=max((row["connects"] for row, _ in rows), default=0),
        client_ms=client_s * 1000 / chargers, csms_ms=csms_s * 1000 / chargers,
        handshake_p50=handshake["p50"], handshake_p99=handshake["p99"],
        failures=dict(report["chargers"]["connect_failures"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chargers", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--profiles", type=int, nargs="+", default=[0, 1, 2, 3],
                        choices=[0, 1, 2, 3], help="0: no security")
    parser.add_argument("--ramp", default="5000", help="--ramp of fleetsim spawn")
    parser.add_argument("--workers", default="1", help="--workers of fleetsim spawn")
    parser.add_argument("--duration", type=int, default=20, help="seconds per run")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}; ramp: {args.ramp}; "
          f"workers: {args.workers}")
    print(f"{'profile':>8}{'chargers':>9}{'boot s':>8}{'conn/s':>8}{'peak/s':>8}"
          f"{'client ms':>10}{'CSMS ms':>9}{'hs p50':>8}{'hs p99':>8}  failures", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        certs = Path(folder)
        if any(profile >= 2 for profile in args.profiles):
            issue_certs(certs, max(args.chargers))
        for chargers in args.chargers:
            for profile in args.profiles:
                f = run(profile, chargers, args.ramp, args.duration, args.workers, certs)
                boot = f"{f.boot_s:.1f}" if f.boot_s is not None else "never"
                rate = f"{chargers / f.boot_s:,.0f}" if f.boot_s else "–"
                failures = ", ".join(f"{k} {v}" for k, v in f.failures.items()) or "none"
                print(f"{profile:>8}{chargers:>9}{boot:>8}{rate:>8}{f.peak_per_s:>8,}"
                      f"{f.client_ms:>10.2f}{f.csms_ms:>9.2f}{f.handshake_p50:>8.1f}"
                      f"{f.handshake_p99:>8.1f}  {failures}", flush=True)


if __name__ == "__main__":
    main()
