"""The HTML report: pages written from real runs, read back with an HTML parser and loaded in
headless Chromium."""

from __future__ import annotations

import copy
import io
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from PIL import Image

from fleetsim import (
    ConfigError,
    Metrics,
    RampPlan,
    format_summary,
    load_report,
    parse_threshold,
    render_html,
)
from fleetsim.capacity import conclude, step_result
from fleetsim.metrics import new_histogram
from fleetsim.report import OPTIONAL_SECTIONS, percentile_curve
from fleetsim.thresholds import latency_ms
from tests.browser import NAMES, Chromium, find_chromium, launch, load_page

FLEETSIM = [sys.executable, "-m", "fleetsim"]
BUSY = ["--arrivals", "200/m", "--session", "0.5-1", "--meter-interval", "0.2", "-q"]


def fleetsim(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FLEETSIM, *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


class Page(HTMLParser):
    """What a reader of the page gets: sections with their text and charts, links, chart text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.svgs = 0
        self.sections: dict[str, dict[str, Any]] = {}
        self.links: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.chart_text: list[str] = []
        self.title = ""
        self.body = ""
        self._open: list[str] = []
        self._in_svg = 0
        self._in_title = False
        self.feed(text)
        self.close()
        assert not self._open and not self._in_svg, "unbalanced <section> or <svg>"

    def _gap(self) -> None:
        """Cells and elements are separate words to a reader."""
        self.body += " "
        for key in self._open:
            self.sections[key]["text"] += " "

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._gap()
        self.tags.add(tag)
        found = dict(attrs)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data") and value is not None:
                self.links.append((tag, name, value))
        if tag == "section":
            key = found.get("id") or f"section-{len(self.sections)}"
            self.sections[key] = {"svgs": 0, "text": "", "action": found.get("data-action")}
            self._open.append(key)
        elif tag == "svg":
            self.svgs += 1
            self._in_svg += 1
            for key in self._open:
                self.sections[key]["svgs"] += 1
        elif tag == "title" and not self._in_svg:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        self._gap()
        if tag == "section":
            self._open.pop()
        elif tag == "svg":
            self._in_svg -= 1
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._in_svg:
            self.chart_text.append(data.strip())
            return
        self.body += data
        for key in self._open:
            self.sections[key]["text"] += data

    def actions(self) -> set[str]:
        return {s["action"] for s in self.sections.values() if s["action"] is not None}

    def text(self, section: str | None = None) -> str:
        """The words of one section, or of the whole page, as a reader sees them."""
        text = self.body if section is None else str(self.sections[section]["text"])
        return " ".join(text.split())


def assert_offline(page: Page, raw: str) -> None:
    """Nothing on the page reaches out: no scripts, stylesheets, images or remote links."""
    assert page.links, "the page should at least link its own sections"
    for tag, name, value in page.links:
        assert value.startswith("#"), (tag, name, value)
        assert not value.startswith(("http://", "https://", "//")), (tag, name, value)
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "@import" not in raw
    references = re.findall(r"url\(([^)]*)\)", raw)
    assert all(ref.startswith("#") for ref in references), references  # SVG clip paths


@attrs.frozen
class Run:
    report: dict[str, Any]
    json_path: Path
    html_path: Path
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A short real run against the embedded CSMS, one threshold held and one failed."""
    directory = tmp_path_factory.mktemp("html-run")
    json_path, html_path = directory / "run.json", directory / "pages" / "run.html"
    done = fleetsim("spawn", "-u", "10", "-t", "2", *BUSY, "--report", str(json_path),
                    "--html", str(html_path), "--threshold", "p99<10s",
                    "--threshold", "throughput>1000000/s")
    assert done.returncode == 99, done.stderr  # the impossible throughput failed
    return Run(load_report(str(json_path)), json_path, html_path, done)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An earlier, slower run: a CSMS that answers after 3 ms."""
    path = tmp_path_factory.mktemp("html-base") / "base.json"
    done = fleetsim("spawn", "-u", "5", "-t", "1.5", *BUSY, "--delay-ms", "3",
                    "--report", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_spawn_writes_the_page_beside_the_json_report(run: Run) -> None:
    assert f"html: {run.html_path}" in run.done.stdout
    assert run.json_path.exists()
    raw = run.html_path.read_text(encoding="utf-8")
    page = Page(raw)
    assert page.title.startswith("fleetsim report: 10 chargers")
    assert_offline(page, raw)
    calls = run.report["calls"]
    assert "StartTransaction" in calls and "Heartbeat" not in calls  # 60 s heartbeats
    # one section per action the run sent, each with its percentile chart, and no others
    assert page.actions() == set(calls)
    for action in calls:
        section = page.sections[f"action-{action}"]
        assert section["svgs"] == 1, action
        assert f"{calls[action]['sent']:,}" in section["text"]
    assert page.sections["all-actions"]["svgs"] == 1
    assert page.sections["timeline"]["svgs"] == 1
    assert page.sections["connect"]["svgs"] == 1
    assert page.sections["generator"]["svgs"] == 1
    assert page.svgs == len(calls) + 4
    # the percentile axis is the "1 in N" one, labelled as HdrHistogram plots are
    assert {"90%", "99%", "99.9%"} <= set(page.chart_text)
    assert {"service", "response", "connected chargers", "errors / s"} <= set(page.chart_text)
    assert not any("baseline" in text for text in page.chart_text)


def test_the_page_shows_the_verdicts_and_headline_numbers(run: Run) -> None:
    page = Page(run.html_path.read_text(encoding="utf-8"))
    verdicts = page.text("thresholds")
    assert "1 of 2 thresholds failed" in verdicts
    assert "✓ pass p99<10s" in verdicts
    assert "✗ fail throughput>1000000/s" in verdicts
    summary = page.text("summary")
    totals = run.report["totals"]
    assert f"calls sent {totals['sent']:,}" in summary
    assert f"throughput (answered calls/s) {totals['throughput_cps']:,.1f}" in summary
    p99 = latency_ms(run.report, None, "response")["p99"]  # the thresholds' own merge
    shown = f"{p99:.2f}" if p99 < 100 else f"{p99:,.0f}"
    assert f"response p99 (ms), all actions {shown}" in summary
    generator = page.text("generator")
    assert "CPU" in generator and "saturated seconds" in generator
    assert "No errors" in page.text("errors")


@attrs.frozen
class Overlay:
    html_path: Path
    done: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def overlay(run: Run, baseline: Path, tmp_path_factory: pytest.TempPathFactory) -> Overlay:
    """The run's page over the baseline, from `fleetsim report --baseline`."""
    out = tmp_path_factory.mktemp("html-overlay") / "compare.html"
    done = fleetsim("report", str(run.json_path), "--html", str(out),
                    "--baseline", str(baseline))
    return Overlay(out, done)


def test_report_command_overlays_a_baseline(run: Run, baseline: Path, overlay: Overlay) -> None:
    out, done = overlay.html_path, overlay.done
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"html: {out}"
    raw = out.read_text(encoding="utf-8")
    page = Page(raw)
    assert_offline(page, raw)
    assert page.chart_text.count("baseline") == 2  # the timeline's and the generator's legends
    assert "response (baseline)" in page.chart_text and "handshake (baseline)" in page.chart_text
    assert "run baseline change" in page.text("summary")
    assert "The baseline ran a different fleet: 5 chargers against this run's 10." in page.text()
    base_report = load_report(str(baseline))
    assert page.actions() == set(run.report["calls"]) | set(base_report["calls"])
    boot = page.text("action-BootNotification")
    assert "run 10 10" in boot and "baseline 5 5" in boot


def test_report_without_html_prints_the_summary_again(run: Run) -> None:
    done = fleetsim("report", str(run.json_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == format_summary(run.report).strip()


def test_a_run_that_made_no_calls_still_gets_a_page(tmp_path: Path) -> None:
    html_path = tmp_path / "unreachable.html"
    done = fleetsim("spawn", "--url", "ws://127.0.0.1:9/ocpp", "-u", "3", "-t", "5", "-q",
                    "--report", str(tmp_path / "r.json"), "--html", str(html_path))
    assert done.returncode == 103, done.stderr
    assert "Traceback" not in done.stderr
    page = Page(html_path.read_text(encoding="utf-8"))
    assert page.actions() == set()
    assert "No calls in this report" in page.text("latency")
    assert "Run stopped (unreachable): no charger could connect" in page.text()
    assert "connect failed: refused 3" in page.text("errors")
    assert "No completed handshakes" in page.text("connect")


def test_partial_and_odd_reports_render(run: Run) -> None:
    with pytest.raises(ConfigError, match=r"^report: not a fleetsim report: required field "
                                          r"missing @ \$\.schema \(and 20 more\)$"):
        render_html({"calls": {}, "totals": {}})
    older = {key: value for key, value in run.report.items() if key not in OPTIONAL_SECTIONS}
    older["timeline"] = []
    page = Page(render_html(older))  # a report from before profiles, thresholds, ramps
    assert "No timeline in this report" in page.text("timeline")
    assert "No thresholds were set" in page.text("thresholds")

    odd = copy.deepcopy(run.report)
    odd["calls"]["Authorize"]["hdr"] = {"service": "not base64!",
                                        "response": "bm90IGEgaGlzdG9ncmFt"}
    empty = new_histogram().encode().decode()
    none = {"p50": 0.0, "p90": 0.0, "p99": 0.0, "p99_9": 0.0, "max": 0.0, "mean": 0.0}
    odd["calls"]["DataTransfer"] = {"sent": 3, "ok": 0, "callerror": {}, "timeout": 3,
                                    "in_flight": 0, "service_ms": none, "response_ms": none,
                                    "hdr": {"service": empty, "response": empty}}
    odd["thresholds"][0]["value"] = None
    odd["timeline"] = []
    odd["target"]["url"] = "ws://csms/<script>alert(1)</script>"
    odd["calls"]["<em>Odd</em>"] = odd["calls"]["BootNotification"]
    page = Page(render_html(odd))
    assert "<em>Odd</em>" in page.actions()
    assert "ws://csms/<script>alert(1)</script>" in page.text()
    assert "No answered Authorize calls" in page.text("action-Authorize")
    assert "No answered DataTransfer calls" in page.text("action-DataTransfer")
    assert "DataTransfer timeout 3" in page.text("errors")
    assert "no samples" in page.text("thresholds")
    assert "No timeline in this report" in page.text("timeline")
    assert not page.tags & {"script", "em"}
    assert page.sections["all-actions"]["svgs"] == 1  # the readable histograms still merge


def test_ten_saturated_minutes_stay_a_small_page(run: Run) -> None:
    """A run of saturated seconds is one shaded span, not one per second and chart."""
    long = copy.deepcopy(run.report)
    long["timeline"] = [{"t": float(t), "connected": 10, "booted": 10, "sent": 100, "ok": 100,
                         "errors": 0, "p99_ms": 5.0 + t % 7, "cpu": 0.95, "loop_lag_ms": 60.0,
                         "saturated": True} for t in range(1, 601)]
    raw = render_html(long)
    [timeline] = re.findall(r'<section id="timeline">.*?</section>', raw, flags=re.S)
    assert len(timeline) < 100_000  # 620 kB with a span per second
    assert Page(timeline).chart_text.count("generator saturated") == 1


def _ramp_step(number: int, chargers: int, p99_s: float, cpu: float = 0.3) -> dict[str, Any]:
    metrics = Metrics()
    window = metrics.open_window()
    window.start_hold()
    for _ in range(chargers):
        metrics.call_sent("Heartbeat")
        metrics.call_ok("Heartbeat", p99_s, p99_s)
    metrics.close_window()
    return step_result(number, chargers, (parse_threshold("p99<1s"),), window, 10.0,
                       started_at_s=number * 12.0, hold_started_at_s=number * 12.0 + 2,
                       settled=True, booted=chargers, cpu_share=cpu)


def test_a_ramp_gets_its_chart_steps_and_knee(run: Run) -> None:
    plan = RampPlan(start=100, step=100, every_s=10, max=500, slos=("p99<1s", "error_rate<1%"))
    steps = [_ramp_step(1, 100, 0.1), _ramp_step(2, 200, 0.2), _ramp_step(3, 300, 1.5)]
    report = copy.deepcopy(run.report) | {"ramp": conclude(plan, steps, "ramp")}
    raw = render_html(report)
    page = Page(raw)
    assert_offline(page, raw)
    assert ("a", "href", "#ramp") in page.links
    ramp = page.text("ramp")
    assert "Knee: 200 chargers. At 300 chargers p99<1s failed (measured 1500 ms): the CSMS " \
        "was the limit." in ramp
    assert "SLOs: p99<1s, error_rate<1%" in ramp
    assert "1 100 10.0 10.0 10.0" in ramp and "✓ held" in ramp and "✗ p99<1s" in ramp
    assert page.sections["ramp"]["svgs"] == 1
    assert {"knee: 200 chargers", "SLO p99<1s", "broke an SLO", "fleet size (chargers)",
            "answered calls / s"} <= set(page.chart_text)
    assert "generator saturated" not in page.chart_text

    steps[-1] = _ramp_step(3, 300, 1.5, cpu=0.97)
    page = Page(render_html(report | {"ramp": conclude(plan, steps, "ramp")}))
    assert "the generator, not the CSMS, was the limit" in page.text("ramp")
    assert "(generator saturated)" in page.text("ramp")
    assert "generator saturated" in page.chart_text
    assert "ramp" not in Page(render_html(run.report)).sections  # a spawn has no ramp


def test_percentile_curve_follows_the_histogram() -> None:
    histogram = new_histogram()
    for ms in range(1, 1001):
        histogram.record_value(ms * 1000)
    xs, ys = percentile_curve(histogram)
    assert xs[0] == 1.0
    assert all(a < b for a, b in itertools.pairwise(xs))
    assert all(a <= b for a, b in itertools.pairwise(ys))
    at_99 = next(y for x, y in zip(xs, ys, strict=True) if x >= 100)
    assert at_99 == pytest.approx(991, rel=0.01)
    assert ys[-1] == histogram.get_max_value() / 1000
    assert percentile_curve(new_histogram()) == ([], [])


@pytest.mark.parametrize(("args", "message"), [
    (["corrupt.json", "--html", "out.html"], "corrupt.json: not JSON"),
    (["missing.json", "--html", "out.html"], "missing.json: cannot read it"),
    (["other.json", "--html", "out.html"], "other.json: not a fleetsim report"),
    (["good.json", "--html", "out.html", "--baseline", "corrupt.json"],
     "corrupt.json: not JSON"),
    (["good.json", "--baseline", "good.json"], "baseline: only applies with --html"),
    (["good.json", "--html", "other.json/out.html"], "html: cannot write"),
    (["sparse.json"], "sparse.json: not a fleetsim report: required field missing @ $.schema "
                      "(and 20 more)"),
    (["bad.json"], "bad.json: not a fleetsim report: invalid value for type, expected int @ "
                   "$.calls['Heartbeat'].sent"),
])
def test_bad_files_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "corrupt.json").write_text('{"calls": {"Heartbeat": ')
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / "sparse.json").write_text(json.dumps({"calls": {}, "totals": {}}))
    good = json.loads((Path(__file__).parent / "data" / "golden-built.json").read_text())
    (tmp_path / "good.json").write_text(json.dumps(good))
    good["calls"]["Heartbeat"]["sent"] = "12"
    (tmp_path / "bad.json").write_text(json.dumps(good))
    done = subprocess.run([*FLEETSIM, "report", *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=tmp_path)
    assert done.returncode == 104, done.stderr
    assert done.stderr.startswith("fleetsim: error:")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.html").exists()


def test_importing_fleetsim_leaves_matplotlib_alone() -> None:
    """Runs and the embedded CSMS process should not pay matplotlib's import time."""
    done = subprocess.run([sys.executable, "-c", "import sys, fleetsim, fleetsim.cli; "
                           "print('matplotlib' in sys.modules)"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"


# -- in a real browser -------------------------------------------------------------------------

BLUE = (0x1F, 0x77, 0xB4)  # the run's colour in the charts (html_report._SERVICE)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    """One headless Chromium for the module; each test opens its own tab."""
    executable = find_chromium()
    if executable is None:
        chosen = os.environ.get("CHROMIUM")
        missing = f"$CHROMIUM={chosen!r}" if chosen else f"Chromium ({', '.join(NAMES)})"
        reason = f"no browser: {missing} not found; `apt-get install chromium`, as .ci/run does"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI must load the HTML report in a real browser; {reason}")
        pytest.skip(reason)
    with launch(executable) as browser:
        yield browser


async def test_chromium_renders_the_page_without_console_errors(
        run: Run, chromium: Chromium) -> None:
    with trio.fail_after(20):
        loaded = await load_page(chromium, run.html_path)
    assert loaded.errors == ()
    assert loaded.requests == (run.html_path.resolve().as_uri(),)  # the page, and nothing else
    # every chart was laid out at its size: none collapsed, none hidden
    assert len(loaded.charts) == Page(run.html_path.read_text(encoding="utf-8")).svgs
    assert len(loaded.charts) == len(run.report["calls"]) + 4
    assert all(width > 500 and height > 250 for width, height in loaded.charts), loaded.charts

    # One screenshot, from the title to the end of the charts over time: a real picture.
    image = Image.open(io.BytesIO(loaded.screenshot))
    assert image.format == "PNG"
    width, height = image.size
    assert 1000 <= width <= 1200 and 1200 <= height <= 3000, image.size
    colours = image.convert("RGB").getcolors(maxcolors=width * height)
    assert colours is not None
    most = max(count for count, _ in colours)
    assert len(colours) > 50 and most < 0.95 * width * height  # text and lines on white
    blue = sum(count for count, colour in colours if colour == BLUE)
    assert blue > 200, "the run's lines were not painted"


async def test_chromium_renders_the_baseline_overlay(
        overlay: Overlay, chromium: Chromium) -> None:
    page = overlay.html_path
    assert overlay.done.returncode == 0, overlay.done.stderr
    with trio.fail_after(20):
        loaded = await load_page(chromium, page)
    assert loaded.errors == ()
    assert loaded.requests == (page.resolve().as_uri(),)
    assert len(loaded.charts) == Page(page.read_text(encoding="utf-8")).svgs
    assert all(width > 500 and height > 250 for width, height in loaded.charts), loaded.charts


async def test_the_report_with_a_script_error_fails_the_check(
        run: Run, chromium: Chromium, tmp_path: Path) -> None:
    """The check above is only worth something if it fails on a page with an error."""
    page = tmp_path / "broken-report.html"
    raw = run.html_path.read_text(encoding="utf-8")
    page.write_text(raw.replace("</body>", "<script>undefinedFunction();</script></body>"),
                    encoding="utf-8")
    with trio.fail_after(20):
        loaded = await load_page(chromium, page, shot="h1")
    assert len(loaded.errors) == 1
    assert loaded.errors[0].startswith(
        "uncaught: ReferenceError: undefinedFunction is not defined"), loaded.errors


@pytest.mark.parametrize(("body", "error"), [
    pytest.param("<script>undefinedFunction();</script>",
                 "uncaught: ReferenceError: undefinedFunction is not defined", id="exception"),
    pytest.param("<script>let = = 1;</script>", "uncaught: SyntaxError", id="syntax-error"),
    pytest.param('<script>console.error("deliberate", 42);</script>',
                 "console.error: deliberate 42", id="console.error"),
    pytest.param('<script>console.assert(1 === 2, "a failed assertion");</script>',
                 "console.assert: a failed assertion", id="console.assert"),
    pytest.param('<img src="missing.png" alt="">',
                 "network: Failed to load resource: net::ERR_FILE_NOT_FOUND", id="missing-file"),
    pytest.param('<link rel="stylesheet" href="https://cdn.example.com/style.css">',
                 "network: Failed to load resource: net::ERR_NAME_NOT_RESOLVED", id="remote"),
    pytest.param('<svg width="10" height="10"><path d="M 0 0 L x y"/></svg>',
                 "rendering: Error: <path> attribute d: Expected number", id="bad-svg"),
])
async def test_a_broken_page_is_caught(chromium: Chromium, tmp_path: Path, body: str,
                                       error: str) -> None:
    """Each kind of error a developer's console shows is caught."""
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><title>broken</title><h1>A page</h1>{body}")
    with trio.fail_after(20):
        loaded = await load_page(chromium, page, shot="h1")
    assert any(found.startswith(error) for found in loaded.errors), loaded.errors
    if error.startswith("network"):  # and the file it asked for shows among the requests
        assert len(loaded.requests) == 2, loaded.requests


async def test_warnings_and_logs_are_not_errors(chromium: Chromium, tmp_path: Path) -> None:
    page = tmp_path / "chatty.html"
    page.write_text('<!DOCTYPE html><title>chatty</title><h1>A page</h1><script>'
                    'console.log("hello"); console.warn("careful"); console.info("fyi");'
                    "</script>")
    with trio.fail_after(20):
        loaded = await load_page(chromium, page, shot="h1")
    assert loaded.errors == ()
