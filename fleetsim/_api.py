"""The library API that the CLI and tests call: run a fleet, ramp one up, serve a CSMS."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from fleetsim._groups import single_error
from fleetsim.capacity import Ramp, RampPlan, conclude
from fleetsim.config import MAX_WORKERS, RunConfig
from fleetsim.csms.process import EmbeddedCsms, embedded_csms
from fleetsim.errors import ConfigError
from fleetsim.exporter import Exporter
from fleetsim.fleet import Fleet
from fleetsim.limits import SPARE_FILES, csms_processes, raise_open_file_limit
from fleetsim.metrics import FleetOutcome, Metrics
from fleetsim.outputs import Written, check_output, write_or_fall_back
from fleetsim.report import build_report, default_report_path, serialisable_report, write_report
from fleetsim.security import embedded_profile, fleet_credentials
from fleetsim.thresholds import evaluate, parse_threshold
from fleetsim.workers.supervisor import run_workers

__all__ = ["RampResult", "RunResult", "ramp", "run", "run_ramp", "spawn"]


@attrs.frozen
class RunResult:
    """A finished run: the report (also written to `report_path` unless disabled).

    `report_error` says why `report_path` is a fallback (or None: nothing could be written).
    """

    report: dict[str, Any]
    outcome: FleetOutcome
    report_path: Path | None
    report_error: str | None = None

    @property
    def thresholds_failed(self) -> bool:
        return any(not verdict["ok"] for verdict in self.report.get("thresholds", ()))

    @property
    def workers_lost(self) -> int:
        """Worker processes that died or hung: their chargers are missing from the report."""
        return len(self.report.get("workers", {}).get("lost", ()))


@attrs.frozen
class RampResult(RunResult):
    """A finished ramp: the report, whose `ramp` section has the steps and the verdict."""

    @property
    def knee(self) -> int | None:
        """The largest fleet size that held every SLO; None if the first step failed."""
        knee: int | None = self.report["ramp"]["knee"]
        return knee

    @property
    def limit(self) -> str | None:
        """Whose limit the failing step found: "csms", "generator", or None (none failed)."""
        limit: str | None = self.report["ramp"]["limit"]
        return limit


@asynccontextmanager
async def _target(config: RunConfig, open_files: int) -> AsyncIterator[EmbeddedCsms]:
    """The CSMS to run against: the given URL, or the embedded CSMS in child processes
    (as many as it takes to hold the fleet's connections in `open_files` each)."""
    if config.url is not None:
        yield EmbeddedCsms(url=config.url)
        return
    processes = csms_processes(len(config.charger_indexes()), open_files)
    async with embedded_csms(config.csms, processes) as csms:
        yield csms


def _check_open_files(config: RunConfig) -> int:
    """Each connected charger is an open file in its fleet process: refuse a plan that the
    open-file limit cannot hold, before anything starts; returns the limit (a child process
    inherits it)."""
    limit = raise_open_file_limit()
    chargers = len(config.charger_indexes())
    processes = config.workers or 1
    per_process = math.ceil(chargers / processes)
    if per_process + SPARE_FILES <= limit:
        return limit
    where = "one process" if processes == 1 else f"each of {processes} worker processes"
    needed = math.ceil(chargers / (limit - SPARE_FILES)) if limit > SPARE_FILES else 0
    split = (f"use --workers {needed} or more, split the fleet with --segment, or "
             if 0 < needed <= MAX_WORKERS else "")
    raise ConfigError(
        f"{per_process} chargers in {where} need {per_process + SPARE_FILES} open files, but a "
        f"process here may open {limit} (ulimit -n): {split}raise the limit")


async def _run_fleet(
    config: RunConfig, on_second: Callable[[dict[str, Any]], None] | None,
    plan: RampPlan | None = None, on_step: Callable[[dict[str, Any]], None] | None = None,
    on_worker: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], FleetOutcome]:
    """Run the fleet (through a ramp plan, if given; in worker processes, with
    `config.workers`) against its target and report on it."""
    with embedded_profile(config) as config:
        # every charger's password and certificate, checked before anything starts
        url = config.url or ("wss://" if config.csms.cert_file else "ws://") + config.csms.host
        fleet_credentials(config, url).check(
            [config.charger_id(index) for index in config.charger_indexes()])
        return await _run_secured(config, on_second, plan, on_step, on_worker)


async def _run_secured(
    config: RunConfig, on_second: Callable[[dict[str, Any]], None] | None,
    plan: RampPlan | None, on_step: Callable[[dict[str, Any]], None] | None,
    on_worker: Callable[[dict[str, Any]], None] | None,
) -> tuple[dict[str, Any], FleetOutcome]:
    open_files = _check_open_files(config)
    metrics = Metrics()
    embedded_stats: dict[str, Any] | None = None
    exporter = None
    if config.prometheus is not None and config.workers is None:  # workers serve their own
        exporter = Exporter(metrics, *config.prometheus)
    ramp = None
    supervised: tuple[dict[str, Any], FleetOutcome] | None = None
    try:
        with single_error():
            async with _target(config, open_files) as target:
                if config.workers is not None:
                    supervised = await run_workers(config, target.url, on_second=on_second,
                                                   on_worker=on_worker, shard_urls=target.urls)
                else:
                    fleet = Fleet(config, target.url, metrics, on_second,
                                  shard_urls=target.urls)
                    if plan is not None:
                        ramp = Ramp(fleet, metrics, plan, on_step)
                    outcome = await fleet.run(ramp)
            url = target.url
            if config.url is None:
                embedded_stats = target.stats
    finally:
        if exporter is not None:
            exporter.close()
    if supervised is None:
        report = build_report(config, url, metrics, outcome, embedded_stats)
    else:
        report, outcome = supervised
        if embedded_stats is not None:
            report["embedded_csms"] = {k: v for k, v in embedded_stats.items() if k != "event"}
    if config.thresholds:
        verdicts = evaluate([parse_threshold(text) for text in config.thresholds], report)
        report["thresholds"] = [verdict.as_dict() for verdict in verdicts]
    if ramp is not None:
        report["ramp"] = conclude(ramp.plan, ramp.steps, outcome.stopped_by)
        report["chargers"]["target"] = fleet.started  # the fleet size the ramp reached
    return serialisable_report(report), outcome


def _check_report_path(config: RunConfig) -> None:
    """An unwritable report path is refused before anything starts, not found at the end."""
    check_output(config.report_path or default_report_path(), "report")


def _write(report: dict[str, Any], config: RunConfig, write: bool) -> Written:
    """The report at its path, or, if that fails at the end of the run, at a fallback."""
    if not write:
        return Written(None)
    path = Path(config.report_path) if config.report_path else default_report_path()
    return write_or_fall_back(path, functools.partial(write_report, report))


async def spawn(
    config: RunConfig, *, on_second: Callable[[dict[str, Any]], None] | None = None,
    on_worker: Callable[[dict[str, Any]], None] | None = None, write: bool = True,
) -> RunResult:
    """Run a fleet to the end (duration, signal, or unreachable target) and report on it.

    Without `config.url` the embedded CSMS is started in a child process first. With
    `config.workers`, worker processes run the fleet (see `fleetsim.workers`): `on_second`
    then gets their rows summed, and `on_worker` hears of each worker's start and loss.

    With `write`, an unwritable `config.report_path` is a `ConfigError` before anything
    starts; if the write still fails at the end, the report goes to a fallback in the
    temporary directory, and `report_error` says so.
    """
    if write:
        _check_report_path(config)
    report, outcome = await _run_fleet(config, on_second, on_worker=on_worker)
    written = _write(report, config, write)
    return RunResult(report, outcome, written.path, written.error)


async def ramp(
    config: RunConfig, plan: RampPlan, *,
    on_second: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None, write: bool = True,
) -> RampResult:
    """Grow the fleet through the plan's steps until one breaks an SLO, and find the knee.

    `config` says how chargers behave and where the CSMS is; the plan sets the fleet size
    (`config.chargers` and `config.duration_s` are replaced). `on_step` gets each step's
    entry of the report's `ramp.steps` as soon as its hold is over. The plan's SLOs judge the
    steps; `config.thresholds`, if any, judge the whole run, as for `spawn`.
    """
    try:
        config = attrs.evolve(config, chargers=plan.max,
                              duration_s=round(plan.longest_s(config.ramp_per_s), 3))
    except (ValueError, TypeError) as exc:
        raise ConfigError(str(exc)) from None
    if write:
        _check_report_path(config)
    report, outcome = await _run_fleet(config, on_second, plan, on_step)
    written = _write(report, config, write)
    return RampResult(report, outcome, written.path, written.error)


def run(config: RunConfig, **options: Any) -> RunResult:
    """Synchronous `spawn`, for scripts: starts and ends its own trio run."""
    return trio.run(functools.partial(spawn, config, **options))


def run_ramp(config: RunConfig, plan: RampPlan, **options: Any) -> RampResult:
    """Synchronous `ramp`, for scripts: starts and ends its own trio run."""
    return trio.run(functools.partial(ramp, config, plan, **options))
