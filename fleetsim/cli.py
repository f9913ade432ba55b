"""The `fleetsim` command: a thin click layer over the library API.

Exit codes follow k6's where they overlap: 0 the run happened, 99 a threshold failed (or a
ramp's first step broke an SLO: no knee), 103 the target could not be reached at all, 104 bad
options or files, 105 interrupted (the report is still written), 106 a ramp found the
generator's limit rather than the CSMS's, 107 a worker process was lost (`--workers`).
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click
import orjson
import trio
from click.core import ParameterSource

import fleetsim
from fleetsim import (
    Behaviour,
    ConfigError,
    CsmsConfig,
    Distribution,
    FleetsimError,
    Profile,
    Progress,
    ProgressMode,
    RampPlan,
    RampResult,
    RunConfig,
    RunResult,
    Sessions,
    Verdict,
    build_config,
    estimate_rate,
    event_kind,
    junit_xml,
    load_profile,
    parse_delay,
    parse_duration,
    parse_listen,
    parse_range,
    parse_rate,
    parse_segment,
    parse_threshold,
    parse_workers,
    resolve_profile,
    shipped_profiles,
)

__all__ = ["EXIT_BAD_CONFIG", "EXIT_GENERATOR_LIMITED", "EXIT_INTERRUPTED", "EXIT_THRESHOLDS",
           "EXIT_UNREACHABLE", "EXIT_WORKER_LOST", "cli", "main", "ramp_exit_code"]

EXIT_THRESHOLDS = 99
EXIT_UNREACHABLE = 103
EXIT_BAD_CONFIG = 104
EXIT_INTERRUPTED = 105
EXIT_GENERATOR_LIMITED = 106
EXIT_WORKER_LOST = 107


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"fleetsim: error: {message}", err=True)
    sys.exit(code)


def _read_password(password: str | None, password_file: str | None) -> str | None:
    if password_file is None:
        return password
    try:
        return Path(password_file).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"password-file: cannot read {password_file!r}: {exc.strerror}") from None


def _options(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator, listed in the order `--help` shows them."""
    def apply(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


_csms_options = _options(
    click.option("--heartbeat-interval", type=click.IntRange(min=0), default=60,
                 show_default=True, envvar="FLEETSIM_HEARTBEAT_INTERVAL",
                 help="Heartbeat interval (s) the CSMS gives chargers at boot."),
    click.option("--delay-ms", default="0", show_default=True, envvar="FLEETSIM_DELAY_MS",
                 help="Artificial CSMS response delay: 50, uniform:10-50, exp:20."),
    click.option("--boot-status", type=click.Choice(["Accepted", "Pending", "Rejected"]),
                 default="Accepted", show_default=True,
                 help="BootNotification status the CSMS answers."),
    click.option("--capacity", default="0", show_default=True,
                 envvar="FLEETSIM_CSMS_CAPACITY",
                 help="CSMS capacity model: CALLs per second it can serve (32 workers); "
                      "beyond it CALLs queue and latency climbs. 0: unlimited."),
    click.option("--commands", default="0", show_default=True,
                 envvar="FLEETSIM_CSMS_COMMANDS",
                 help="CSMS-initiated CALLs per second across the fleet: 5/s, 300/m."),
)
"""Options shared by `fleetsim csms` and the embedded CSMS of `fleetsim spawn` and `ramp`."""


def _ramp_value(value: str | float | None) -> float | None:
    """`--ramp`: "auto" (None) or chargers per second."""
    if value is None or value == "auto":
        return None
    try:
        per_s = float(value)
    except ValueError:
        per_s = math.nan
    if not per_s > 0 or math.isinf(per_s):
        raise click.BadParameter(f"{value!r} is neither auto nor a number of chargers per "
                                 "second above 0")
    return per_s


_fleet_options = _options(
    click.option("-r", "--ramp", default="auto", show_default=True, envvar="FLEETSIM_RAMP",
                 callback=lambda _ctx, _param, value: _ramp_value(value),
                 help="Chargers started per second, or auto: as fast as the generator's "
                      "event-loop lag and CPU and the CSMS's handshake times allow (the "
                      "progress line shows the pace)."),
    click.option("--url", envvar="FLEETSIM_URL",
                 help="CSMS base URL (ws:// or wss://); the charger ID is appended. A password "
                      "in it (ws://:PASSWORD@host/ocpp) is used as --password, and never "
                      "shown. Default: start the embedded CSMS on 127.0.0.1."),
    click.option("--id-prefix", default="CP", show_default=True, envvar="FLEETSIM_ID_PREFIX",
                 help="Charger IDs are PREFIX00001, PREFIX00002, ..."),
    click.option("--security-profile", type=click.IntRange(1, 3),
                 envvar="FLEETSIM_SECURITY_PROFILE",
                 help="OCPP security profile, checked against the URL and credentials: 1 "
                      "Basic auth over ws://, 2 Basic auth over wss://, 3 wss:// with a client "
                      "certificate per charger. Without --url the embedded CSMS serves it, "
                      "with a made-up password and a throwaway PKI."),
    click.option("--password", envvar="FLEETSIM_PASSWORD",
                 help="HTTP Basic auth password (user: the charger ID); {id} in it stands "
                      "for the charger ID: 'pw-{id}'. Never reported."),
    click.option("--password-file", type=click.Path(dir_okay=False),
                 envvar="FLEETSIM_PASSWORD_FILE", help="Read the password from this file."),
    click.option("--passwords", "passwords_file", type=click.Path(dir_okay=False),
                 envvar="FLEETSIM_PASSWORDS",
                 help="A CSV of id,password: each charger's own Basic auth password."),
    click.option("--ca-file", type=click.Path(dir_okay=False), envvar="FLEETSIM_CA_FILE",
                 help="Trust this CA bundle for wss:// instead of the system store."),
    click.option("--insecure", is_flag=True, envvar="FLEETSIM_INSECURE",
                 help="Do not verify the CSMS's TLS certificate (self-signed labs)."),
    click.option("--client-cert", type=click.Path(), envvar="FLEETSIM_CLIENT_CERT",
                 help="TLS client certificate (profile 3): a folder of <id>.pem and <id>.key "
                      "(see `fleetsim certs`), or one PEM file shared by all chargers."),
    click.option("--client-key", type=click.Path(dir_okay=False), envvar="FLEETSIM_CLIENT_KEY",
                 help="The key of a shared --client-cert file.  [default: in that file]"),
    click.option("--transport", type=click.Choice(fleetsim.TRANSPORTS), default="wsproto",
                 show_default=True, envvar="FLEETSIM_TRANSPORT", help="WebSocket client engine."),
    click.option("--ocpp", type=click.Choice(["1.6", "2.0.1"]), default="1.6",
                 show_default=True,
                 help="The OCPP version the chargers speak (with a profile: every "
                      "behaviour speaks it)."),
    click.option("-p", "--profile", envvar="FLEETSIM_PROFILE", metavar="NAME|FILE",
                 help="Behaviour profile: a TOML file or a shipped profile's name (see "
                      "`fleetsim profiles`). Without it every charger plays one behaviour made "
                      "of the four options below."),
    click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0,
                 show_default=True, envvar="FLEETSIM_TIME_SCALE",
                 help="Play the profile K times faster: intervals, durations, event times and "
                      "rates scale together (protocol timeouts and back-off do not)."),
    click.option("--connectors", type=click.IntRange(1, 99), default=2, show_default=True,
                 envvar="FLEETSIM_CONNECTORS", help="Connectors per charger."),
    click.option("--meter-interval", default="10s", show_default=True,
                 help="MeterValues sampling interval during a session."),
    click.option("--session", default="30s-90s", show_default=True,
                 help="Session length, uniform in LOW-HIGH."),
    click.option("--arrivals", default="1/m", show_default=True,
                 help="EVs arriving per charger (a Poisson process): 1/m, 2/h."),
    click.option("--call-timeout", default="30s", show_default=True,
                 envvar="FLEETSIM_CALL_TIMEOUT", help="Time a CALL may wait for its answer."),
    click.option("--connect-timeout", default="10s", show_default=True,
                 help="Time a WebSocket handshake may take."),
    click.option("--graceful-stop", default="5s", show_default=True,
                 help="At the end, time given to CALLs in flight to be answered."),
    click.option("--seed", type=int, default=0, show_default=True, envvar="FLEETSIM_SEED",
                 help="Random seed: the same seed plays the same fleet."),
    click.option("--report", "report_path", type=click.Path(dir_okay=False),
                 envvar="FLEETSIM_REPORT",
                 help="JSON report path; missing folders are created, and an unwritable path "
                      "is refused before the run [default: reports/<UTC time>.json]"),
)
"""How the fleet behaves and where it runs: shared by `spawn` and `ramp`."""

_output_options = _options(
    click.option("--prometheus", "prometheus", metavar="[HOST:]PORT", envvar="FLEETSIM_PROMETHEUS",
                 help="Serve live metrics for Prometheus on this port (all interfaces unless "
                      "HOST is given)."),
    click.option("--json", "json_out", is_flag=True,
                 help="Print the JSON report on stdout instead of the summary."),
    click.option("--html", "html_path", type=click.Path(dir_okay=False), envvar="FLEETSIM_HTML",
                 help="Also write the report as a self-contained HTML page with charts "
                      "(missing folders are created)."),
    click.option("--progress", "progress_mode",
                 type=click.Choice(["auto", "plain", "jsonl", "none"]), default="auto",
                 show_default=True, envvar="FLEETSIM_PROGRESS",
                 help="Live progress on stderr: redrawn line on a terminal (auto), plain lines, "
                      "JSON lines, or none."),
    click.option("-q", "--quiet", is_flag=True, help="No live progress (--progress none)."),
    click.option("--closed-loop", is_flag=True,
                 help="Benchmark mode: each booted charger sends its next Heartbeat as soon as "
                      "the previous CALL is answered."),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@click.version_option(fleetsim.__version__, prog_name="fleetsim")
def cli() -> None:
    """Load-test OCPP-J central systems with fleets of virtual charge points."""


@cli.command()
@click.option("-u", "--chargers", type=click.IntRange(1, 1_000_000), default=100,
              show_default=True, envvar="FLEETSIM_CHARGERS", help="Fleet size.")
@click.option("-t", "--duration", default="60s", show_default=True, envvar="FLEETSIM_DURATION",
              help="Run time: 60, 90s, 10m, 1h30m.")
@_fleet_options
@click.option("--threshold", "thresholds", multiple=True, metavar="RULE",
              help="Pass/fail rule, repeatable: 'BootNotification.p99<500ms', "
                   "'error_rate<0.1%', 'throughput>1500/s'. Any failure exits 99.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
              help="Write the threshold verdicts as JUnit XML (missing folders are created).")
@_output_options
@click.option("--segment", metavar="K/N", envvar="FLEETSIM_SEGMENT",
              help="Run only the K-th of N slices of the fleet (every N-th charger from the "
                   "K-th), as one of N machines; `fleetsim merge` joins their reports.")
@click.option("--workers", metavar="N|auto", envvar="FLEETSIM_WORKERS",
              help="Split the fleet over N processes of this machine (auto: one per core); "
                   "one live view, one merged report.")
@_csms_options
def spawn(**options: Any) -> None:
    """Run a fleet of chargers against a CSMS (the embedded one without --url)."""
    config = _spawn_config(options)
    _check_outputs(options)
    mode: ProgressMode = "none" if options["quiet"] else options["progress_mode"]
    progress = Progress(sys.stderr, len(config.charger_indexes()), mode)
    try:
        result = trio.run(functools.partial(fleetsim.spawn, config, on_second=progress,
                                            on_worker=progress.event),
                          restrict_keyboard_interrupt_to_checkpoints=True)
    finally:
        progress.close()
    _show(result, options)
    if options["junit_path"]:
        verdicts = [Verdict(**verdict) for verdict in result.report.get("thresholds", ())]
        _write_file("junit", options["junit_path"],
                    junit_xml(verdicts, result.report["duration_s"]), options)
    stopped_by = result.outcome.stopped_by
    if stopped_by == "unreachable":
        _fail(result.outcome.reason, EXIT_UNREACHABLE)
    if stopped_by == "interrupted":
        sys.exit(EXIT_INTERRUPTED)
    if result.workers_lost:
        sys.exit(EXIT_WORKER_LOST)
    if result.thresholds_failed:
        sys.exit(EXIT_THRESHOLDS)


def _check_outputs(options: dict[str, Any]) -> None:
    """The HTML and JUnit paths, checked before the run (the report's is, by the run itself):
    an unwritable one costs seconds, not the run."""
    for option in ("html_path", "junit_path"):
        if options.get(option):
            fleetsim.check_output(options[option], option.removesuffix("_path"))


def _write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _write_file(kind: str, path: str, text: str, options: dict[str, Any]) -> None:
    """Write a run's file; if its path fails now, at a fallback named on stderr and stdout."""
    written = fleetsim.write_or_fall_back(path, functools.partial(_write_text, text))
    if written.error is not None:
        click.echo(f"fleetsim: error: {kind}: {written.error}", err=True)
    if written.path is not None and not options["json_out"]:
        click.echo(f"{kind}: {written.path}")


def _parse_zero_or_duration(text: str, option: str) -> float:
    return 0.0 if text.strip() in ("0", "0s") else parse_duration(text, option)



_BEHAVIOUR_OPTIONS = ("connectors", "meter_interval", "session", "arrivals")


def _profile(options: dict[str, Any]) -> Profile:
    """The named profile, or a one-behaviour profile made of the command-line options."""
    context = click.get_current_context()
    given = [name for name in _BEHAVIOUR_OPTIONS
             if context.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
    if options["profile"]:
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ConfigError(f"{flags}: the profile sets how chargers behave; "
                              "change it in the profile file instead")
        profile = load_profile(resolve_profile(options["profile"]))
        if context.get_parameter_source("ocpp") not in (None, ParameterSource.DEFAULT):
            # the same fleet in the other version: every behaviour speaks it
            profile = attrs.evolve(profile, behaviour=tuple(
                attrs.evolve(b, ocpp=options["ocpp"]) for b in profile.behaviour))
        return profile
    low, high = parse_range(options["session"], "session")
    behaviour = build_config(
        Behaviour, name="default", weight=1.0, connectors=options["connectors"],
        ocpp=options["ocpp"],
        meter_interval=parse_duration(options["meter_interval"], "meter-interval"),
        sessions=Sessions(arrivals_per_hour=parse_rate(options["arrivals"], "arrivals") * 3600,
                          duration=Distribution("uniform", low=low, high=high)))
    return Profile(behaviour=(behaviour,), name="default",
                   description="one behaviour from the command-line options")


def _spawn_config(options: dict[str, Any]) -> RunConfig:
    profile = _profile(options)
    thresholds = [parse_threshold(text).text for text in options["thresholds"]]
    for rule in profile.threshold_rules:
        try:
            thresholds.append(parse_threshold(rule).text)
        except ConfigError as exc:
            raise ConfigError(f"{profile.source}: thresholds: {exc}") from None
    return _run_config(options, profile, chargers=options["chargers"],
                       duration_s=parse_duration(options["duration"], "duration"),
                       thresholds=tuple(thresholds))


def _run_config(options: dict[str, Any], profile: Profile, *, chargers: int,
                duration_s: float, thresholds: tuple[str, ...] = ()) -> RunConfig:
    """The run configuration from the options `spawn` and `ramp` share."""
    if options["url"] is None and (options["ca_file"] or options["insecure"]):
        raise ConfigError("ca-file/insecure: only apply with --url wss://...")
    if options["url"] is None and (options["client_cert"] or options["client_key"]):
        raise ConfigError("client-cert: only applies with --url wss://...; against the "
                          "embedded CSMS, --security-profile 3 issues its own")
    csms = build_config(CsmsConfig, port=0, heartbeat_interval_s=options["heartbeat_interval"],
                 commands_per_s=parse_rate(options["commands"], "commands"),
                 capacity_per_s=parse_rate(options["capacity"], "capacity"),
                 delay=parse_delay(options["delay_ms"]), boot_status=options["boot_status"],
                 password=_read_password(options["password"], options["password_file"]),
                 passwords_file=options["passwords_file"], seed=options["seed"])
    config: RunConfig = build_config(
        RunConfig,
        chargers=chargers,
        duration_s=duration_s,
        ramp_per_s=options["ramp"],
        url=options["url"],
        id_prefix=options["id_prefix"],
        transport=options["transport"],
        password=csms.password,
        ca_file=options["ca_file"],
        insecure=options["insecure"],
        security_profile=options["security_profile"],
        passwords_file=options["passwords_file"],
        client_cert=options["client_cert"],
        client_key=options["client_key"],
        connect_timeout_s=parse_duration(options["connect_timeout"], "connect-timeout"),
        graceful_stop_s=_parse_zero_or_duration(options["graceful_stop"], "graceful-stop"),
        seed=options["seed"],
        report_path=options["report_path"],
        thresholds=thresholds,
        prometheus=(parse_listen(options["prometheus"], "prometheus")
                    if options["prometheus"] else None),
        call_timeout_s=parse_duration(options["call_timeout"], "call-timeout"),
        closed_loop=options["closed_loop"],
        profile=profile,
        time_scale=options["time_scale"],
        csms=csms,
        segment=parse_segment(options["segment"]) if options.get("segment") else None,
        workers=parse_workers(options["workers"]) if options.get("workers") else None,
    )
    return config


@cli.command(name="ramp")
@click.option("--start", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              envvar="FLEETSIM_RAMP_START", help="Fleet size of the first step.")
@click.option("--step", type=click.IntRange(1, 1_000_000), envvar="FLEETSIM_RAMP_STEP",
              help="Chargers added at each step.  [default: --start]")
@click.option("--every", default="60s", show_default=True, envvar="FLEETSIM_RAMP_EVERY",
              help="How long each step is held and measured, once its chargers have booted.")
@click.option("--max", "max_chargers", type=click.IntRange(1, 1_000_000), default=10_000,
              show_default=True, envvar="FLEETSIM_RAMP_MAX",
              help="The largest fleet: the last step.")
@click.option("--slo", "slos", multiple=True, metavar="RULE",
              help="A rule every step's hold must meet, repeatable, in the grammar of spawn's "
                   "--threshold: 'p99<1s', 'BootNotification.p99<500ms', 'error_rate<0.5%', "
                   "'throughput>1500/s'. The first step that breaks one ends the ramp.")
@click.option("--settle", default="0s", show_default=True,
              help="Extra wait between a step's last boot and its hold.")
@click.option("--settle-timeout",
              help="How long a step's chargers have to boot once the last one has started; "
                   "a step whose chargers did not all boot fails.  [default: --every]")
@_fleet_options
@_output_options
@_csms_options
def ramp_command(**options: Any) -> None:
    """Grow the fleet in steps until one breaks an SLO; report the knee, the largest fleet
    size that held every SLO (against the embedded CSMS without --url)."""
    plan = build_config(
        RampPlan, start=options["start"], step=options["step"] or options["start"],
        every_s=parse_duration(options["every"], "every"), max=options["max_chargers"],
        slos=options["slos"], settle_s=_parse_zero_or_duration(options["settle"], "settle"),
        settle_timeout_s=(parse_duration(options["settle_timeout"], "settle-timeout")
                          if options["settle_timeout"] else None))
    config = _run_config(options, _profile(options), chargers=plan.max,
                         duration_s=plan.longest_s(options["ramp"]))
    _check_outputs(options)
    mode: ProgressMode = "none" if options["quiet"] else options["progress_mode"]
    progress = Progress(sys.stderr, config.chargers, mode)
    try:
        result = trio.run(functools.partial(fleetsim.ramp, config, plan, on_second=progress,
                                            on_step=progress.step),
                          restrict_keyboard_interrupt_to_checkpoints=True)
    finally:
        progress.close()
    _show(result, options)
    code = ramp_exit_code(result)
    if code == EXIT_UNREACHABLE:
        _fail(result.outcome.reason, code)
    sys.exit(code)


def ramp_exit_code(result: RampResult) -> int:
    """0 when the ramp found a knee (or every step held), 99 when its first step already
    failed, 106 when the step that failed had saturated the generator, and 103 or 105 for an
    unreachable target or an interrupted ramp, as for spawn."""
    stopped_by = result.outcome.stopped_by
    if stopped_by == "unreachable":
        return EXIT_UNREACHABLE
    if stopped_by == "interrupted":
        return EXIT_INTERRUPTED
    if result.limit == "generator":
        return EXIT_GENERATOR_LIMITED
    return EXIT_THRESHOLDS if result.knee is None else 0


def _report_errors(report: dict[str, Any]) -> None:
    """One line on stderr per report section that could not be serialised as it was."""
    for error in report.get("errors", ()):
        part = f" (from {error['part']})" if error.get("part") else ""
        click.echo(f"fleetsim: error: report: section {error.get('section')}{part} could not "
                   f"be serialised ({error.get('error')}): {error.get('repair')}; the rest of "
                   "the report is complete", err=True)


def _show(result: RunResult, options: dict[str, Any]) -> None:
    """The summary (or the JSON report) on stdout, and the HTML page if asked for; a summary
    that cannot be formatted is one line on stderr, and costs neither the report nor the page."""
    _report_errors(result.report)
    if options["json_out"]:
        sys.stdout.buffer.write(orjson.dumps(result.report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        try:
            click.echo(fleetsim.format_summary(result.report))
        except Exception as exc:  # a fleetsim bug; the report itself is written
            click.echo(f"fleetsim: error: summary: cannot format the report "
                       f"({type(exc).__name__}: {exc})", err=True)
        click.echo(f"\nreport: {result.report_path or 'not written'}")
    if result.report_error is not None:
        click.echo(f"fleetsim: error: report: {result.report_error}", err=True)
    if options["html_path"]:
        try:
            page = fleetsim.render_html(result.report)
        except Exception as exc:  # a fleetsim bug; the report itself is written
            click.echo(f"fleetsim: error: html: cannot render the report "
                       f"({type(exc).__name__}: {exc})", err=True)
            return
        _write_file("html", options["html_path"], page, options)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="FLEETSIM_CSMS_HOST",
              help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=9000, show_default=True,
              envvar="FLEETSIM_CSMS_PORT", help="Port to listen on (0: any free port).")
@click.option("--password", envvar="FLEETSIM_PASSWORD",
              help="Require this HTTP Basic auth password from chargers, their ID as the user "
                   "name; {id} in it stands for the charger ID. Wrong: HTTP 401.")
@click.option("--passwords", "passwords_file", type=click.Path(dir_okay=False),
              envvar="FLEETSIM_PASSWORDS",
              help="Require each charger's password from this CSV of id,password.")
@click.option("--cert-file", "--tls-cert", "cert_file", type=click.Path(dir_okay=False),
              help="TLS certificate (wss://).")
@click.option("--key-file", "--tls-key", "key_file", type=click.Path(dir_okay=False),
              help="TLS private key.  [default: in the certificate file]")
@click.option("--client-ca", type=click.Path(dir_okay=False),
              help="Require a client certificate signed by this CA whose CN is the charger ID "
                   "(profile 3): a bad one fails the TLS handshake, a CN mismatch gets HTTP 401.")
@click.option("--ca-key", type=click.Path(dir_okay=False),
              help="The --client-ca's key: sign the CSRs of chargers renewing their "
                   "certificate (SignCertificate, then CertificateSigned).")
@click.option("--stats-every", default="10s", show_default=True,
              help="How often to print counts.")
@_csms_options
def csms(**options: Any) -> None:
    """Run the embedded CSMS alone, for other tools to point at."""
    config = build_config(
        CsmsConfig, host=options["host"], port=options["port"],
        heartbeat_interval_s=options["heartbeat_interval"],
        delay=parse_delay(options["delay_ms"]), boot_status=options["boot_status"],
        password=options["password"], passwords_file=options["passwords_file"],
        cert_file=options["cert_file"], key_file=options["key_file"] or options["cert_file"],
        client_ca=options["client_ca"], ca_key=options["ca_key"],
        commands_per_s=parse_rate(options["commands"], "commands"),
        capacity_per_s=parse_rate(options["capacity"], "capacity"),
    )
    every = parse_duration(options["stats_every"], "stats-every")

    def show(event: dict[str, Any]) -> None:
        if event["event"] == "listening":
            click.echo(f"fleetsim CSMS listening on {event['url']}/<chargerId> "
                       "(OCPP 1.6 and 2.0.1); Ctrl-C stops", err=True)
            return
        received = sum(event["received"].values())
        click.echo(f"connections {event['connections']}  calls received {received}  "
                   + "  ".join(f"{a} {n}" for a, n in sorted(event["received"].items())))

    trio.run(functools.partial(fleetsim.run_csms, config, show, stats_every_s=every),
             restrict_keyboard_interrupt_to_checkpoints=True)


@cli.command(name="certs")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Folder to write ca.pem/ca.key, server.pem/server.key and "
                   "chargers/<id>.pem|key into (created if missing).")
@click.option("-u", "--chargers", type=click.IntRange(0, 1_000_000), default=100,
              show_default=True, help="Client certificates to issue: one per charger ID.")
@click.option("--id-prefix", default="CP", show_default=True,
              help="Charger IDs are PREFIX00001, PREFIX00002, ... (as for spawn).")
@click.option("--ca", "ca_cert", type=click.Path(dir_okay=False),
              help="Sign with this existing CA certificate (PEM) instead of a new one.")
@click.option("--ca-key", type=click.Path(dir_okay=False),
              help="The key of --ca (unencrypted PEM, EC).  [default: --ca with .key]")
@click.option("--server-name", "server_names", multiple=True,
              help="Host name or IP address of the server certificate, repeatable.  "
                   "[default: 127.0.0.1, ::1, localhost]")
@click.option("--days", type=click.IntRange(1, 36_500), default=365, show_default=True,
              help="Validity of the certificates issued.")
def certs_command(**options: Any) -> None:
    """Issue a test PKI for security profiles 2 and 3: a CA, a server certificate and one
    client certificate per charger (CN = charger ID). Keys are EC P-256, mode 0600."""
    ca = None
    if options["ca_cert"]:
        key = options["ca_key"] or str(Path(options["ca_cert"]).with_suffix(".key"))
        ca = fleetsim.CertificateAuthority.load(options["ca_cert"], key)
    elif options["ca_key"]:
        raise ConfigError("ca-key: only applies with --ca")
    fleet: RunConfig = build_config(RunConfig, chargers=max(options["chargers"], 1),
                                    id_prefix=options["id_prefix"])
    ids = [fleet.charger_id(index) for index in range(1, options["chargers"] + 1)]
    pki = fleetsim.issue_pki(Path(options["out"]), ids, ca=ca, days=options["days"],
                             server_names=options["server_names"] or
                             ("127.0.0.1", "::1", "localhost"))
    click.echo(f"CA {pki.ca_cert}, server {pki.server_cert}, {len(ids)} chargers in "
               f"{pki.chargers}/<id>.pem|key")


@cli.command(name="compare")
@click.argument("baseline", type=click.Path(dir_okay=False))
@click.argument("candidate", type=click.Path(dir_okay=False))
@click.option("--fail-on", "gates", multiple=True, metavar="RULE",
              help="Regression gate, repeatable: 'p99>+10%', 'error_rate>+0.05pp', "
                   "'throughput<-5%', 'knee<-10%' (ramp reports). Any breach exits 99.")
@click.option("--json", "json_out", is_flag=True, help="Print the comparison as JSON.")
def compare_command(baseline: str, candidate: str, gates: tuple[str, ...],
                    json_out: bool) -> None:
    """Compare two run reports per action; gate on regressions."""
    rules = [fleetsim.parse_gate(text) for text in gates]
    comparison = fleetsim.compare(fleetsim.load_report(baseline),
                                  fleetsim.load_report(candidate), rules)
    for warning in comparison.warnings:
        click.echo(f"fleetsim: warning: {warning}", err=True)
    if json_out:
        sys.stdout.buffer.write(orjson.dumps(comparison.as_dict(), option=orjson.OPT_INDENT_2)
                                + b"\n")
    else:
        click.echo(fleetsim.format_comparison(
            attrs.evolve(comparison, warnings=[])))
    if comparison.failed:
        sys.exit(EXIT_THRESHOLDS)


@cli.command(name="profiles")
@click.argument("names", nargs=-1)
def profiles_command(names: tuple[str, ...]) -> None:
    """List the shipped profiles (or check the given files) with their expected load."""
    paths = [resolve_profile(name) for name in names] or shipped_profiles()
    for path in paths:
        profile = load_profile(path)
        total = 0.0
        parts = []
        weights = sum(profile.weights)
        for behaviour in profile.behaviour:
            rate = sum(estimate_rate(behaviour, heartbeat_s=300).values())
            total += rate * behaviour.weight / weights
            parts.append(f"{behaviour.weight / weights:.0%} {behaviour.name} "
                         f"({rate:.0f}/h)")
        events = ", ".join(sorted({event_kind(e) for e in profile.event})) or "no events"
        click.echo(f"{profile.name:<14}{profile.description}")
        click.echo(f"{'':<14}{total:.0f} calls per charger-hour at a 300 s heartbeat "
                   f"({total / 3.6:.0f} calls/s per 1000 chargers); "
                   f"{'; '.join(parts)}; {events}")
        click.echo(f"{'':<14}{path}")


@cli.command(name="report")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write the report as a self-contained HTML page with charts, instead of "
                   "printing the summary.")
@click.option("--baseline", type=click.Path(dir_okay=False),
              help="With --html: an earlier report to draw over this one in every chart.")
@click.option("--schema", "schema", is_flag=True,
              help="Print the JSON Schema of the report (fleetsim.report/1) and exit.")
def report_command(path: str | None, html_path: str | None, baseline: str | None,
                   schema: bool) -> None:
    """Print the summary of a saved run report again, or write it as HTML."""
    if schema:
        sys.stdout.buffer.write(orjson.dumps(fleetsim.report_schema(),
                                             option=orjson.OPT_INDENT_2) + b"\n")
        return
    if path is None:
        raise click.UsageError("a report file, please (or --schema)")
    if baseline is not None and html_path is None:
        raise ConfigError("baseline: only applies with --html (fleetsim compare compares two "
                          "reports as text)")
    report = fleetsim.load_report(path)
    if html_path is None:
        try:
            summary = fleetsim.format_summary(report)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: not a complete fleetsim report, cannot summarise it "
                              f"({type(exc).__name__}: {exc})") from None
        click.echo(summary)
        return
    _write_html(report, html_path, fleetsim.load_report(baseline) if baseline else None)
    click.echo(f"html: {html_path}")


def _write_html(report: dict[str, Any], path: str,
                baseline: dict[str, Any] | None = None) -> None:
    try:
        fleetsim.write_html(report, path, baseline)
    except OSError as exc:
        raise ConfigError(f"html: cannot write {path!r}: {exc.strerror or exc}") from None


@cli.command(name="merge")
@click.argument("parts", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where the merged JSON report goes.")
@click.option("--force", is_flag=True,
              help="Merge reports of different runs (config, seed, schema) or the same part "
                   "twice anyway; the merged report lists why in merge.warnings.")
def merge_command(parts: tuple[str, ...], output: str, force: bool) -> None:
    """Merge the reports of one run's parts (segments, workers) into one exact report."""
    merged = fleetsim.merge_reports([fleetsim.load_report(path) for path in parts],
                                    force=force, names=list(parts))
    for warning in merged["merge"]["warnings"]:
        click.echo(f"fleetsim: warning: {warning}", err=True)
    _report_errors(merged)
    if merged["merge"]["missing_segments"]:
        click.echo("fleetsim: warning: no part ran segment(s) "
                   + ", ".join(merged["merge"]["missing_segments"]), err=True)
    try:
        fleetsim.write_report(merged, Path(output))
    except OSError as exc:
        raise ConfigError(f"output: cannot write {output}: {exc.strerror or exc}") from None
    click.echo(fleetsim.format_summary(merged))
    click.echo(f"\nreport: {output}")
    if any(not verdict["ok"] for verdict in merged.get("thresholds", ())):
        sys.exit(EXIT_THRESHOLDS)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: clear one-line errors and documented exit codes, no tracebacks."""
    try:
        cli.main(args=argv, prog_name="fleetsim", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _fail("aborted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        _fail(exc.format_message(), EXIT_BAD_CONFIG)
    except click.ClickException as exc:
        _fail(exc.format_message(), 1)
    except ConfigError as exc:
        _fail(str(exc), EXIT_BAD_CONFIG)
    except FleetsimError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)
