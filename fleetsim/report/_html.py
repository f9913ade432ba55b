"""The HTML report: one self-contained file that people open in a browser, offline.

It is rendered from the JSON report alone, so a report saved months ago renders the same way,
and latency curves come from the stored HDR histograms rather than from a few percentiles.
The charts are matplotlib figures saved as SVG and embedded inline: the file needs no
network, no JavaScript and no files beside it. Reports are read through the report's typed
classes (`check_report`): an older report lacks only optional sections, which the page leaves
out, and a section its writer had to repair is named in a banner rather than drawn.

matplotlib is imported only when a report is rendered: it takes about half a second to import,
and neither a run nor the embedded CSMS process should pay that.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
from hdrh.codec import HdrCookieException, HdrLengthException
from hdrh.histogram import HdrHistogram

from fleetsim.errors import ConfigError
from fleetsim.metrics import CONNECT_PHASES, new_histogram, percentiles_ms
from fleetsim.report._model import (
    Generator,
    Percentiles,
    Ramp,
    Report,
    TimelineRow,
    check_report,
    readable,
)
from fleetsim.thresholds import parse_threshold

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["percentile_curve", "render_html", "write_html"]

_TICKS_PER_HALF_DISTANCE: Final = 5
"""Points per halving of the distance to 100 %: HdrHistogram's usual plotting resolution."""
_SERVICE: Final = "#1f77b4"  # and the run, in the charts over time
_RESPONSE: Final = "#ff7f0e"  # and the baseline, in the charts over time
_SATURATED: Final = "#d62728"
_SHORT_INTERVAL_S: Final = 0.5
"""A timeline row shorter than this (the sliver while connections close, or a stalled loop's
odd interval) is folded into a neighbour, so a few calls in 10 ms do not spike calls/s."""
_DOTS_UP_TO: Final = 300
"""Timelines up to this many rows mark each p99 point; past it the dots are clutter."""
_COUNTED: Final = ("sent", "ok", "errors")
_DECODE_ERRORS: Final = (ValueError, TypeError, zlib.error, HdrCookieException,
                         HdrLengthException, IndexError)
_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
max-width:1080px;margin:0 auto;padding:0 16px 48px}
h1{font-size:22px;margin:24px 0 4px}h2{font-size:18px;margin:32px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:20px 0 6px}
nav a{margin-right:12px}.meta{color:#555}
table{border-collapse:collapse;margin:6px 0 10px}
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f6f6f6}
.banner{padding:8px 12px;margin:10px 0;border-radius:4px;border:1px solid}
.warn{background:#fff4e5;border-color:#f0a040}.bad{background:#fdecea;border-color:#e06060}
.good{background:#edf7ed;border-color:#60b060}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.worse{color:#c62828}.better{color:#1a7f37}.none{color:#777;font-style:italic}
svg{max-width:100%;height:auto}pre{background:#f6f6f6;padding:8px;overflow:auto}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# -- reading ---------------------------------------------------------------------------------


def _typed(report: Report | Mapping[str, Any], name: str) -> Report:
    """The typed report; JSON data is checked, less the optional sections its writer had to
    repair (named in its `errors`, which the page shows)."""
    return report if isinstance(report, Report) else check_report(readable(report), name)


def _decode(encoded: object) -> HdrHistogram | None:
    """A stored histogram, or None when it is absent or unreadable."""
    if not isinstance(encoded, str) or not encoded:
        return None
    try:
        return HdrHistogram.decode(encoded)
    except _DECODE_ERRORS:
        return None


def _merged(report: Report, timing: str, action: str | None = None) -> HdrHistogram:
    """One action's histogram, or all actions' added together (never averaged)."""
    merged = new_histogram()
    for name, stats in report.calls.items():
        if action is None or name == action:
            histogram = _decode(getattr(stats.hdr, timing))
            if histogram is not None:
                # a histogram of another layout does not fit ours: it is left out
                with contextlib.suppress(*_DECODE_ERRORS):
                    merged.add(histogram)
    return merged


def percentile_curve(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """The percentile distribution as HdrHistogram plots it: x is 1/(1-p), y is milliseconds.

    The 100 % level has an infinite x and is left out, as HdrHistogram's own plotters do; the
    iteration reaches the maximum one step before it.
    """
    xs: list[float] = []
    ys: list[float] = []
    for step in histogram.get_percentile_iterator(_TICKS_PER_HALF_DISTANCE):
        level = step.percentile_level_iterated_to
        if level >= 100.0:
            continue
        xs.append(1.0 / (1.0 - level / 100.0))
        ys.append(step.value_iterated_to / 1000)
    return xs, ys


# -- charts ----------------------------------------------------------------------------------


@attrs.frozen
class _Run:
    """One report on the page: the run itself, or the baseline drawn over it."""

    label: str
    report: Report
    line: str  # matplotlib line style: solid for the run, dashed for the baseline


@contextlib.contextmanager
def _style() -> Iterator[None]:
    import matplotlib  # lazily: see the module docstring

    with matplotlib.rc_context({
        "svg.fonttype": "none",  # text stays text: smaller files, in the page's own font
        "font.size": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
    }):
        yield


def _new_figure(width: float, height: float) -> Figure:
    # A bare Figure, not pyplot: no global figure registry to leak, no GUI backend to pick.
    from matplotlib.figure import Figure  # lazily: see the module docstring

    return Figure(figsize=(width, height), layout="constrained")


def _svg(figure: Figure, chart_id: str) -> str:
    """The figure as an inline <svg> element, deterministic and with ids unique on the page."""
    import matplotlib  # lazily: see the module docstring

    buffer = io.StringIO()
    # The salt makes matplotlib's clip-path and marker ids unique per chart (they would clash
    # between charts of one page otherwise) and the same on every render.
    with matplotlib.rc_context({"svg.hashsalt": f"fleetsim-{chart_id}"}):
        figure.savefig(buffer, format="svg",
                       metadata={"Date": None, "Creator": None, "Type": None, "Format": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _one_in_n_axis(axes: Axes, largest_x: float) -> None:
    """A log x axis labelled 0 %, 90 %, 99 %, 99.9 %...: each decade is ten times rarer."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    decades = max(2, math.ceil(math.log10(max(largest_x, 10.0)) - 1e-9))
    axes.set_xscale("log")
    axes.set_xlim(1, 10.0 ** decades)
    axes.xaxis.set_major_locator(FixedLocator([10.0 ** k for k in range(decades + 1)]))
    axes.xaxis.set_minor_locator(NullLocator())

    def label(x: float, _position: int | None) -> str:
        return f"{100 - 100 / x:.{max(0, round(math.log10(x)) - 2)}f}%"

    axes.xaxis.set_major_formatter(FuncFormatter(label))
    axes.set_xlabel("percentile (a decade further right is ten times rarer)")
    axes.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0)


def _percentile_chart(chart_id: str, title: str,
                      series: Sequence[tuple[str, str, str, HdrHistogram]]) -> str | None:
    """Percentile curves of (label, colour, line style, histogram); None if all are empty."""
    figure = _new_figure(7.5, 3.4)
    axes = figure.subplots()
    largest_x = 0.0
    for label, colour, line, histogram in series:
        xs, ys = percentile_curve(histogram)
        if xs:
            axes.plot(xs, ys, color=colour, linestyle=line, linewidth=1.4, label=label)
            largest_x = max(largest_x, *xs)
    if not largest_x:
        return None
    _one_in_n_axis(axes, largest_x)
    axes.set_title(title, loc="left")
    axes.legend(loc="upper left")
    return _svg(figure, chart_id)


def _intervals(rows: Sequence[TimelineRow]) -> list[tuple[float, float, dict[str, float]]]:
    """(start, end, counts) per timeline row, with short intervals folded into a neighbour."""
    merged: list[tuple[float, float, dict[str, float]]] = []
    start = 0.0
    carry = dict.fromkeys(_COUNTED, 0.0)
    for row in rows:
        end = float(row.t)
        counts = {key: carry[key] + getattr(row, key) for key in _COUNTED}
        if end - start >= _SHORT_INTERVAL_S:
            merged.append((start, end, counts))
            carry = dict.fromkeys(_COUNTED, 0.0)
            start = end
        elif merged:
            first, _, previous = merged.pop()
            merged.append((first, end, {key: previous[key] + counts[key] for key in _COUNTED}))
            start = end
        else:
            carry = counts  # nothing before it yet: it joins the next row
    if carry != dict.fromkeys(_COUNTED, 0.0) and rows and float(rows[-1].t) > start:
        merged.append((start, float(rows[-1].t), carry))
    return merged


def _saturated_spans(axes: Axes, rows: Sequence[TimelineRow], *, label: bool) -> None:
    """Shade the saturated seconds, a run of them as one span (an hour has 3600 rows)."""
    spans: list[tuple[float, float]] = []
    start = 0.0
    for row in rows:
        end = float(row.t)
        if row.saturated:
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        start = end
    for index, (first, last) in enumerate(spans):
        axes.axvspan(first, last, color=_SATURATED, alpha=0.12, linewidth=0,
                     label="generator saturated" if label and index == 0 else None)


def _timeline_chart(runs: Sequence[_Run]) -> str | None:
    """Connected chargers, calls/s, errors/s and p99 per second, the runs overlaid."""
    timelines = [(run, run.report.timeline) for run in runs]
    if not any(rows for _, rows in timelines):
        return None
    figure = _new_figure(9, 8)
    connected, calls, errors, p99 = figure.subplots(4, 1, sharex=True)
    for index, (run, rows) in enumerate(timelines):
        if not rows:
            continue
        colour = _SERVICE if index == 0 else _RESPONSE
        ts = [float(row.t) for row in rows]
        connected.plot(ts, [row.connected for row in rows], color=colour,
                       linestyle=run.line, label=run.label)
        spans = _intervals(rows)
        ends = [end for _, end, _ in spans]
        calls.plot(ends, [c["sent"] / (end - start) for start, end, c in spans],
                   color=colour, linestyle=run.line, label=run.label)
        errors.plot(ends, [c["errors"] / (end - start) for start, end, c in spans],
                    color=colour, linestyle=run.line, label=run.label)
        # a second with no answers has no p99: a gap, not a reassuring zero
        p99.plot(ts, [row.p99_ms or math.nan for row in rows], color=colour,
                 linestyle=run.line, label=run.label,
                 marker="." if len(rows) <= _DOTS_UP_TO else None, markersize=3)
        if index == 0:
            for axes in (connected, calls, errors, p99):
                _saturated_spans(axes, rows, label=axes is connected)
    connected.set_ylabel("connected chargers")
    calls.set_ylabel("calls sent / s")
    errors.set_ylabel("errors / s")
    p99.set_ylabel("response p99 (ms)")
    p99.set_xlabel("seconds since the start")
    for axes in (connected, calls, errors, p99):
        axes.set_ylim(bottom=0, top=max(1.0, axes.get_ylim()[1]))  # all-zero: 0..1, not 0..0.05
    connected.set_xlim(left=0)
    connected.legend(loc="lower right")
    return _svg(figure, "timeline")


def _generator_chart(runs: Sequence[_Run]) -> str | None:
    """The generator's CPU share and event-loop lag per second: is fleetsim itself the limit?"""
    timelines = [(run, run.report.timeline) for run in runs]
    if not any(rows for _, rows in timelines):
        return None
    figure = _new_figure(9, 3.6)
    cpu, lag = figure.subplots(2, 1, sharex=True)
    for index, (run, rows) in enumerate(timelines):
        colour = _SERVICE if index == 0 else _RESPONSE
        ts = [float(row.t) for row in rows]
        shares = [row.cpu for row in rows]
        cpu.plot(ts, [math.nan if s is None else s * 100 for s in shares], color=colour,
                 linestyle=run.line, label=run.label)
        lag.plot(ts, [row.loop_lag_ms for row in rows], color=colour,
                 linestyle=run.line, label=run.label)
        if index == 0:
            for axes in (cpu, lag):
                _saturated_spans(axes, rows, label=axes is cpu)
    cpu.axhline(90, color=_SATURATED, linewidth=0.8, linestyle=":")
    lag.axhline(50, color=_SATURATED, linewidth=0.8, linestyle=":")
    cpu.set_ylabel("CPU (% of a core)")
    lag.set_ylabel("loop lag max (ms)")
    lag.set_xlabel("seconds since the start")
    cpu.set_ylim(bottom=0)
    lag.set_ylim(bottom=0)
    cpu.set_xlim(left=0)
    cpu.legend(loc="lower right")
    return _svg(figure, "generator")


def _latency_limits(ramp: Ramp, stat: str) -> list[tuple[str, float]]:
    """The ramp's SLOs on all actions' response `stat`, as (rule, limit in ms)."""
    limits = []
    for text in ramp.plan.slos:
        with contextlib.suppress(ConfigError):  # an unreadable rule is simply not drawn
            rule = parse_threshold(text)
            if (rule.kind == "latency" and rule.action is None and rule.timing == "response"
                    and rule.stat == stat):
                limits.append((rule.text, rule.limit))
    return limits


def _ramp_chart(ramp: Ramp) -> str | None:
    """Fleet size against p99 response time and calls/s per step, the knee marked."""
    steps = ramp.steps
    if not steps:
        return None
    figure = _new_figure(9, 4.2)
    latency = figure.subplots()
    rate = latency.twinx()
    rate.spines["right"].set_visible(True)
    rate.grid(False)  # the latency axis draws the grid
    sizes = [float(step.chargers) for step in steps]
    p99 = [float(step.p99_ms) for step in steps]
    latency.plot(sizes, p99, color=_RESPONSE, marker="o", label="response p99 (ms)")
    rate.plot(sizes, [float(step.calls_per_s) for step in steps], color=_SERVICE,
              marker="s", linestyle="--", label="answered calls/s")
    for index, step in enumerate(steps):
        value = p99[index]
        if not step.held:
            latency.plot([sizes[index]], [value], marker="X", markersize=11, color=_SATURATED,
                         linestyle="none", label="broke an SLO")
        if step.saturated:
            latency.plot([sizes[index]], [value], marker="o", markersize=15, color=_SATURATED,
                         fillstyle="none", linestyle="none", label="generator saturated")
    for text, limit in _latency_limits(ramp, "p99"):
        latency.axhline(limit, color=_SATURATED, linewidth=0.8, linestyle=":", label=f"SLO {text}")
    if ramp.knee is not None:
        knee = float(ramp.knee)
        latency.axvline(knee, color="#2ca02c", linewidth=1.2, label=f"knee: {knee:,.0f} chargers")
    latency.set_xlabel("fleet size (chargers)")
    latency.set_ylabel("response p99 of the hold (ms)")
    rate.set_ylabel("answered calls / s")
    latency.set_ylim(bottom=0)
    rate.set_ylim(bottom=0)
    handles, labels = [], []
    for axes in (latency, rate):
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            if label not in labels:  # one entry per kind of marker
                handles.append(handle)
                labels.append(label)
    latency.legend(handles, labels, loc="upper left")
    return _svg(figure, "ramp")


# -- HTML ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    """A table from already-escaped cells."""
    attr = f' class="{css}"' if css else ""
    out = [f"<table{attr}><thead><tr>", *(f"<th>{cell}</th>" for cell in head),
           "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _figure_or_note(svg: str | None, note: str) -> str:
    return svg if svg is not None else f'<p class="none">{_e(note)}</p>'


@attrs.frozen
class _Headline:
    label: str
    key: str  # in _headline_figures
    show: Callable[[float | None], str]
    worse_when: int = 0  # +1: higher is worse, -1: lower is worse, 0: neither


def _fixed(digits: int, scale: float = 1.0, suffix: str = "") -> Callable[[float | None], str]:
    return lambda v: "n/a" if v is None else f"{v * scale:,.{digits}f}{suffix}"


_HEADLINES: Final = (
    _Headline("chargers (target)", "target", _count),
    _Headline("connected peak", "connected_peak", _count),
    _Headline("booted", "booted", _count),
    _Headline("duration (s)", "duration_s", _fixed(1)),
    _Headline("calls sent", "sent", _count),
    _Headline("answered ok", "ok", _count),
    _Headline("errors (CALLERRORs + timeouts)", "errors", _count, +1),
    _Headline("error rate", "error_rate", _fixed(3, 100, "%"), +1),
    _Headline("throughput (answered calls/s)", "throughput_cps", _fixed(1), -1),
    _Headline("response p50 (ms), all actions", "response.p50", _ms, +1),
    _Headline("response p99 (ms), all actions", "response.p99", _ms, +1),
    _Headline("response p99.9 (ms), all actions", "response.p99_9", _ms, +1),
    _Headline("service p99 (ms), all actions", "service.p99", _ms, +1),
    _Headline("handshake p99 (ms)", "handshake.p99", _ms, +1),
)


def _headline_figures(report: Report) -> dict[str, float | None]:
    """The figures of the summary table, latencies from the merged stored histograms."""
    chargers, totals = report.chargers, report.totals
    figures: dict[str, float | None] = {
        key: float(getattr(chargers, key)) for key in ("target", "connected_peak", "booted")}
    figures |= {key: float(getattr(totals, key))
                for key in ("sent", "ok", "errors", "error_rate", "throughput_cps")}
    figures["duration_s"] = float(report.duration_s)
    histograms = {"service": _merged(report, "service"), "response": _merged(report, "response"),
                  "handshake": _decode(report.connect.hdr)}
    for name, histogram in histograms.items():
        if histogram is not None and histogram.get_total_count():
            figures |= {f"{name}.{stat}": value
                        for stat, value in percentiles_ms(histogram).items()}
    return figures


def _change(base: float | None, value: float | None, worse_when: int) -> str:
    if base is None or value is None:
        return "n/a"
    if base == 0:
        return "±0%" if value == 0 else "n/a"
    change = (value - base) / base
    css = ""
    if worse_when and abs(change) >= 0.1:
        css = "worse" if change * worse_when > 0 else "better"
    return f'<span class="{css}">{change * 100:+.1f}%</span>' if css else f"{change * 100:+.1f}%"


def _headline(runs: Sequence[_Run]) -> str:
    run = runs[0]
    head = ["", _e(run.label)]
    if len(runs) > 1:
        head += [_e(runs[1].label), "change"]
    figures = [_headline_figures(run.report) for run in runs]
    rows = []
    for item in _HEADLINES:
        value = figures[0].get(item.key)
        row = [_e(item.label), _e(item.show(value))]
        if len(runs) > 1:
            base = figures[1].get(item.key)
            row += [_e(item.show(base)), _change(base, value, item.worse_when)]
        rows.append(row)
    return _table(head, rows)


def _banners(report: Report) -> list[str]:
    out = []
    outcome = report.outcome
    if outcome.reason:
        out.append(f'<div class="banner bad">Run stopped ({_e(outcome.stopped_by)}): '
                   f'{_e(outcome.reason)}</div>')
    saturated = report.generator.saturated_seconds
    if saturated:
        out.append(
            f'<div class="banner warn"><b>fleetsim itself was saturated for {saturated:.0f} s'
            "</b> (CPU &ge; 90% of a core or event-loop lag &ge; 50 ms). Latencies in those "
            "seconds (shaded in the charts) include the generator's own delay: use fewer "
            "chargers per process or a slower ramp.</div>")
    for error in report.errors or ():
        part = f" (from {_e(error.part)})" if error.part else ""
        out.append(f'<div class="banner bad">The report section '
                   f"<b>{_e(error.section)}</b>{part} could not be serialised "
                   f"({_e(error.error)}): {_e(error.repair)}.</div>")
    internal = report.chargers.internal_errors
    if internal:
        kinds = ", ".join(f"{_e(kind)} &times;{_count(n)}" for kind, n in internal.items())
        out.append(f'<div class="banner bad">Internal errors (a fleetsim bug; please report '
                   f"it): {kinds}</div>")
    return out


def _baseline_banners(report: Report, baseline: Report) -> list[str]:
    """Differences that make an overlay misleading, as `fleetsim compare` warns of them."""
    out = []
    fleets = [r.chargers.target for r in (report, baseline)]
    if fleets[0] != fleets[1]:
        out.append(f'<div class="banner warn">The baseline ran a different fleet: '
                   f"{_e(fleets[1])} chargers against this run's {_e(fleets[0])}.</div>")
    schemas = [r.schema for r in (report, baseline)]
    if schemas[0] != schemas[1]:
        out.append(f'<div class="banner warn">The reports have different schemas: '
                   f"{_e(schemas[0])} and, for the baseline, {_e(schemas[1])}.</div>")
    return out


def _thresholds(report: Report) -> str:
    verdicts = report.thresholds or []
    if not verdicts:
        return '<p class="none">No thresholds were set for this run.</p>'
    failed = sum(not v.ok for v in verdicts)
    if failed:
        banner = (f'<div class="banner bad">{failed} of {len(verdicts)} thresholds failed.'
                  "</div>")
    else:
        banner = f'<div class="banner good">All {len(verdicts)} thresholds held.</div>'

    def show(number: float | None, unit: str) -> str:
        if number is None:
            return "no samples"
        return f"{number * 100:.4g}%" if unit == "ratio" else f"{number:.6g} {unit}"

    rows = []
    for verdict in verdicts:
        rows.append([
            '<span class="pass">&#10003; pass</span>' if verdict.ok
            else '<span class="fail">&#10007; fail</span>',
            _e(verdict.threshold), _e(show(verdict.value, verdict.unit)),
            _e(show(verdict.limit, verdict.unit)),
        ])
    return banner + _table(["verdict", "rule", "measured", "limit"], rows, "thresholds")


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} s"


def _ramp(ramp: Ramp) -> str:
    knee, limit = None if ramp.knee is None else float(ramp.knee), ramp.limit
    css = "warn" if limit == "generator" else "bad" if knee is None else "good"
    headline = "No knee" if knee is None else f"Knee: {knee:,.0f} chargers"
    out = [f'<div class="banner {css}"><b>{_e(headline)}.</b> '
           f'{_e(ramp.verdict)}</div>']
    plan = ramp.plan
    rules = ", ".join(plan.slos) or "none"
    out.append(f"<p>From {_count(plan.start)} chargers, {_count(plan.step)} more "
               f"a step up to {_count(plan.max)}; each step held "
               f"{_e(_seconds(plan.every_s))} once its chargers had booted, "
               f"and judged on its hold alone. SLOs: {_e(rules)}.</p>")
    out.append(_figure_or_note(_ramp_chart(ramp), "No step finished: nothing to plot."))
    rows = []
    for step in ramp.steps:
        cpu = step.cpu_share
        failed = ", ".join(v.threshold for v in step.slos if not v.ok)
        if step.held:
            verdict = '<span class="pass">&#10003; held</span>'
        else:
            why = failed or "its chargers did not all boot in time"
            verdict = f'<span class="fail">&#10007; {_e(why)}</span>'
        if step.saturated:
            verdict += " (generator saturated)"
        rate = step.error_rate
        rows.append([_count(step.step), _count(step.chargers),
                     _e(_fixed(1)(step.duration_s)), _e(_fixed(1)(step.calls_per_s)),
                     _e(_fixed(1)(step.sent_per_s)), _ms(step.p50_ms), _ms(step.p99_ms),
                     "n/a" if rate is None else f"{rate * 100:.2f}%",
                     "n/a" if cpu is None else f"{cpu * 100:.0f}%", verdict])
    out.append(_table(["step", "chargers", "hold (s)", "answered/s", "sent/s", "p50 (ms)",
                       "p99 (ms)", "error rate", "generator CPU", "verdict"], rows, "ramp"))
    return "".join(out)


def _generator(runs: Sequence[_Run]) -> str:
    head = ["", *(_e(run.label) for run in runs)]
    figures = [run.report.generator for run in runs]

    def cpu(generator: Generator) -> str:
        return f"{generator.cpu_share * 100:.0f}% of a core"

    rows = [
        ["CPU", *(_e(cpu(g)) for g in figures)],
        ["event-loop lag p99 (ms)", *(_ms(g.loop_lag_ms.p99) for g in figures)],
        ["event-loop lag max (ms)", *(_ms(g.loop_lag_ms.max) for g in figures)],
        ["saturated seconds", *(_count(g.saturated_seconds) for g in figures)],
    ]
    return (_table(head, rows) + _figure_or_note(
        _generator_chart(runs), "No timeline in this report: nothing to plot over time."))


def _action_table(runs: Sequence[_Run], action: str) -> str:
    head = ["", "sent", "ok", "CALLERROR", "timeout", "in flight",
            "service p50 / p99 / p99.9 / max (ms)", "response p50 / p99 / p99.9 / max (ms)"]
    rows = []
    for run in runs:
        stats = run.report.calls.get(action)
        if stats is None:
            continue

        def figures(ms: Percentiles) -> str:
            return " / ".join(_ms(value) for value in (ms.p50, ms.p99, ms.p99_9, ms.max))

        rows.append([_e(run.label), _count(stats.sent), _count(stats.ok),
                     _count(sum(stats.callerror.values())), _count(stats.timeout),
                     _count(stats.in_flight), figures(stats.service_ms),
                     figures(stats.response_ms)])
    return _table(head, rows)


def _latency_series(runs: Sequence[_Run], action: str | None
                    ) -> list[tuple[str, str, str, HdrHistogram]]:
    series = []
    for run in runs:
        suffix = "" if run is runs[0] else f" ({run.label})"
        series += [(f"service{suffix}", _SERVICE, run.line, _merged(run.report, "service", action)),
                   (f"response{suffix}", _RESPONSE, run.line,
                    _merged(run.report, "response", action))]
    return series


def _latencies(runs: Sequence[_Run]) -> str:
    actions = sorted({name for run in runs for name in run.report.calls})
    if not actions:
        return '<p class="none">No calls in this report: there is no latency to plot.</p>'
    out = ["<p>Each curve is the whole latency distribution from the stored HDR histogram. "
           "Service time runs from the frame written to the answer read; response time from "
           "the moment the charger meant to send, so it includes queueing.</p>",
           '<section class="action" id="all-actions"><h3>All actions</h3>',
           _figure_or_note(_percentile_chart("all-actions", "all actions",
                                             _latency_series(runs, None)),
                           "No answered calls: no latency to plot."),
           "</section>"]
    for index, action in enumerate(actions):
        out += [f'<section class="action" id="action-{_e(action)}" data-action="{_e(action)}">'
                f"<h3>{_e(action)}</h3>", _action_table(runs, action),
                _figure_or_note(_percentile_chart(f"action-{index}", action,
                                                  _latency_series(runs, action)),
                                f"No answered {action} calls: no latency to plot."),
                "</section>"]
    return "".join(out)


def _connect(runs: Sequence[_Run]) -> str:
    head = ["", *(_e(run.label) for run in runs)]
    chargers = [run.report.chargers for run in runs]
    handshakes = [run.report.connect.handshake_ms for run in runs]
    rows = [
        ["connect attempts", *(_count(c.connect_attempts) for c in chargers)],
        ["connect failures", *(_count(sum(c.connect_failures.values())) for c in chargers)],
        ["reconnects", *(_count(c.reconnects) for c in chargers)],
        ["disconnects (abnormal)", *(f"{_count(c.disconnects)} "
                                     f"({_count(c.disconnects_abnormal)})"
                                     for c in chargers)],
        *([f"handshake {stat.replace('_', '.')} (ms)",
           *(_ms(getattr(h, stat)) for h in handshakes)]
          for stat in ("p50", "p99", "p99_9", "max")),
        *([f"{name} p50 / p99 (ms)", *(
            f"{_ms(phase.ms.p50)} / {_ms(phase.ms.p99)}" if (phase := (
                run.report.connect.phases or {}).get(name)) is not None else "–"
            for run in runs)]
          for name in CONNECT_PHASES
          if any(name in (run.report.connect.phases or {}) for run in runs)),
    ]
    series = []
    for index, run in enumerate(runs):
        histogram = _decode(run.report.connect.hdr)
        if histogram is not None:
            series.append((f"handshake ({run.label})" if index else "handshake",
                           _SERVICE if index == 0 else _RESPONSE, run.line, histogram))
    return _table(head, rows) + _figure_or_note(
        _percentile_chart("connect", "WebSocket handshake: TCP connect, TLS if any, HTTP "
                          "upgrade", series),
        "No completed handshakes: no connect latency to plot.")


def _error_counts(report: Report) -> dict[tuple[str, str], float]:
    """(where, what) -> count, for every kind of failure the report records."""
    counts: dict[tuple[str, str], float] = {}

    def add(where: str, what: str, number: float | None) -> None:
        if number:
            counts[(where, what)] = counts.get((where, what), 0.0) + number

    for action, stats in report.calls.items():
        for code, n in stats.callerror.items():
            add(action, f"CALLERROR {code}", n)
        add(action, "timeout", stats.timeout)
        add(action, "of which the connection dropped", stats.lost_on_disconnect)
        add(action, "late answer (discarded)", stats.late)
        add(action, "in flight at shutdown", stats.in_flight)
    chargers = report.chargers
    for reason, n in chargers.connect_failures.items():
        add("connect", f"failed: {reason}", n)
    add("connection", "abnormal disconnect", chargers.disconnects_abnormal)
    add("connection", "CSMS stopped reading (send stall)", chargers.send_stalls)
    add("connection", "CSMS stopped answering (no pong)", chargers.ping_timeouts)
    for kind, n in report.bad_frames.items():
        add("frames from the CSMS", f"bad frame: {kind}", n)
    for action, answers in report.csms_calls.items():
        for code, n in answers.callerror_sent.items():
            add(f"{action} (from the CSMS)", f"CALLERROR sent {code}", n)
        add(f"{action} (from the CSMS)", "unanswered (its delayed answer was cut off)",
            answers.unanswered)
    for kind, n in chargers.internal_errors.items():
        add("fleetsim", f"internal error: {kind}", n)
    return counts


def _errors(runs: Sequence[_Run]) -> str:
    tables = [_error_counts(run.report) for run in runs]
    keys = sorted(set().union(*tables))
    if not keys:
        return '<p class="none">No errors: every CALL was answered with a CALLRESULT.</p>'
    head = ["where", "what", *(_e(run.label) for run in runs)]
    rows = [[_e(where), _e(what), *(_count(table.get((where, what), 0)) for table in tables)]
            for where, what in keys]
    return _table(head, rows, "errors")


def _csms_calls(report: Report) -> str:
    calls = report.csms_calls
    if not calls:
        return '<p class="none">The CSMS sent no calls to the chargers.</p>'
    rows = []
    for action, stats in calls.items():
        answer = stats.answer_ms
        rows.append([_e(action), _count(stats.received), _count(stats.answered),
                     _count(sum(stats.callerror_sent.values())), _count(stats.unanswered or 0),
                     f"{_ms(answer.p50)} / {_ms(answer.p99)}"])
    return ("<p>How fast the chargers answered the CSMS, from reading its CALL to writing the "
            "answer: a harness that falls behind under load shows it here.</p>"
            + _table(["action", "received", "answered", "CALLERROR", "unanswered",
                      "answer p50 / p99 (ms)"], rows))


def _describe(run: _Run) -> str:
    report = run.report
    target = report.target
    where = "embedded CSMS" if target.embedded else "target"
    return (f"<b>{_e(run.label)}</b>: fleetsim {_e(report.fleetsim_version)}, "
            f"{_e(report.started_at)} to {_e(report.ended_at)}, "
            f"OCPP {_e(', '.join(target.ocpp))} over {_e(target.transport)} against "
            f"{_e(target.url)} ({where})")


def render_html(report: Report | Mapping[str, Any],
                baseline: Report | Mapping[str, Any] | None = None) -> str:
    """The report as one self-contained HTML page; with a baseline, its charts overlay both.
    Reports given as JSON data are checked first (`check_report`)."""
    report = _typed(report, "report")
    runs = [_Run("run", report, "-")]
    if baseline is not None:
        baseline = _typed(baseline, "baseline")
        runs.append(_Run("baseline", baseline, "--"))
    title = f"fleetsim report: {report.chargers.target} chargers, {report.started_at}"
    with _style():
        sections = [
            ("summary", "Summary", _headline(runs)),
            *([("ramp", "Capacity ramp", _ramp(report.ramp))] if report.ramp else []),
            ("thresholds", "Thresholds", _thresholds(report)),
            ("timeline", "Over time", _figure_or_note(
                _timeline_chart(runs), "No timeline in this report: nothing to plot over time.")),
            ("latency", "Latency per action", _latencies(runs)),
            ("connect", "Connections", _connect(runs)),
            ("errors", "Errors", _errors(runs)),
            ("csms-calls", "Calls from the CSMS", _csms_calls(report)),
            ("generator", "The generator itself", _generator(runs)),
        ]
    config = json.dumps(report.config, indent=2, sort_keys=True, default=str)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        *(f'<p class="meta">{_describe(run)}</p>' for run in runs),
        *_banners(report),
        *(_baseline_banners(report, baseline) if baseline is not None else ()),
        "<nav>" + "".join(f'<a href="#{key}">{name}</a>' for key, name, _ in sections)
        + "</nav>",
        *(f'<section id="{key}"><h2>{name}</h2>{body}</section>'
          for key, name, body in sections),
        '<section id="config"><h2>Configuration</h2><details><summary>the resolved run '
        f"configuration (secrets replaced)</summary><pre>{_e(config)}</pre></details></section>",
        "</body></html>",
    ]
    return "\n".join(out) + "\n"


def write_html(report: Report | Mapping[str, Any], path: Path | str,
               baseline: Report | Mapping[str, Any] | None = None) -> None:
    """Render the report (over a baseline, if given) and write it, creating folders."""
    page = render_html(report, baseline)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
