"""Headless Chromium for the HTML report tests, driven over the DevTools protocol.

The protocol is JSON over a local WebSocket, so the project's own trio-websocket drives it:
no new dependency, and no driver binary that must match the browser's version (selenium
needs chromedriver; Playwright downloads a browser of its own). Unlike `--dump-dom` and
`--screenshot` on the command line, the protocol reports console messages, uncaught
exceptions and failed loads as structured events, and measures the laid-out page.

`python -m tests.browser PAGE.html OUT.png [CSS-SELECTOR]` saves a screenshot of a page;
the README's picture of the report was made so.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

__all__ = ["Chromium", "PageLoad", "find_chromium", "launch", "load_page"]

NAMES: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Debian's package installs `chromium`; the others are the usual names elsewhere."""
FLAGS: Final = (
    "--headless",
    # The pages are our own local files, and CI containers run as root, where Chromium
    # refuses to start with its sandbox on.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    # Nothing reaches beyond this machine: a name that is not 127.0.0.1 does not resolve, so
    # a page that refers to the network fails to load it, and that failure is a console error.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",  # the port it picked is in DevToolsActivePort
)
WIDTH: Final = 1200
"""The viewport: a laptop browser window, wider than the report's 1080 px column."""
HEIGHT: Final = 900


def find_chromium() -> str | None:
    """The browser's path: $CHROMIUM if set, else the first of NAMES on the PATH."""
    if chosen := os.environ.get("CHROMIUM"):
        return shutil.which(chosen)
    return next((path for name in NAMES if (path := shutil.which(name))), None)


@attrs.frozen
class Chromium:
    """A running headless browser and the address of its DevTools endpoint."""

    process: subprocess.Popen[bytes]
    url: str  # ws://127.0.0.1:PORT/devtools/browser/ID


@contextlib.contextmanager
def launch(executable: str, timeout: float = 30) -> Iterator[Chromium]:
    """Start the browser in a throwaway profile, yield it once its endpoint is up, stop it.

    Synchronous, so that one browser can serve a whole test module (pytest-trio's async
    fixtures are per test); each test then opens its own DevTools connection and tab.
    """
    # Chromium's helper processes may still write to the profile for a moment after the
    # browser has exited: a cleanup that races them is no test failure.
    with tempfile.TemporaryDirectory(prefix="fleetsim-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        log = Path(profile) / "stderr.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [executable, *FLAGS, f"--user-data-dir={profile}/data", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            port_file = Path(profile) / "data" / "DevToolsActivePort"
            deadline = time.monotonic() + timeout
            while True:
                lines = port_file.read_text().split() if port_file.exists() else []
                if len(lines) == 2:  # written in one go, but read it whole to be sure
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{executable} did not start its DevTools endpoint: "
                                       f"{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.05)
            yield Chromium(process, f"ws://127.0.0.1:{lines[0]}{lines[1]}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@attrs.frozen
class PageLoad:
    """What the browser made of a page."""

    errors: tuple[str, ...]
    """Console errors, uncaught exceptions and failed loads, as a developer's console lists
    them; empty for a healthy page."""
    requests: tuple[str, ...]
    """Every URL the page asked for, the page itself first."""
    charts: tuple[tuple[float, float], ...]
    """The laid-out width and height of each <svg> element, in CSS pixels."""
    screenshot: bytes
    """A PNG of the part of the page that `load_page` was asked for, one pixel per CSS pixel."""


class _DevTools:
    """One DevTools connection: commands in order, the events that arrive meanwhile kept."""

    def __init__(self, websocket: WebSocketConnection) -> None:
        self._websocket = websocket
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, session: str | None = None,
                   **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer; a protocol error raises."""
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self._websocket.send_message(json.dumps(message))
        while True:
            reply = await self._next()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    async def wait_event(self, method: str, session: str) -> dict[str, Any]:
        """The first event of this kind from this session, whether it came already or not."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            seen = len(self.events)
            await self._next()

    async def _next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self._websocket.get_message())
        if "method" in message:
            self.events.append(message)
        return message


def _remote_object(value: dict[str, Any]) -> str:
    """A console argument as the console prints it."""
    if "value" in value:
        return str(value["value"])
    return str(value.get("description", value.get("type", "?")))


def _errors(events: list[dict[str, Any]], session: str) -> tuple[str, ...]:
    """The error-level entries a developer would see in the console, in order."""
    out = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(_remote_object(arg) for arg in params.get("args", []))
            out.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text")
            out.append(f"uncaught: {description}")
        # The Log domain carries what scripts do not: failed loads ("network"), and invalid
        # SVG or CSS that the browser dropped ("rendering").
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            where = f" ({entry['url']})" if entry.get("url") else ""
            out.append(f"{entry.get('source', 'log')}: {entry.get('text')}{where}")
    return tuple(out)


_CHARTS: Final = """
new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(
  Array.from(document.querySelectorAll("svg"), svg => {
    const box = svg.getBoundingClientRect();
    return [box.width, box.height];
  })))))
"""
"""The laid-out size of each chart, read after two frames: by then the page has painted."""
_CLIP: Final = """
(() => {
  const boxes = Array.from(document.querySelectorAll(%s), element => {
    const box = element.getBoundingClientRect();
    return [box.left + scrollX, box.top + scrollY, box.right + scrollX, box.bottom + scrollY];
  });
  if (!boxes.length) return null;
  const margin = 16;  // a little of the page around them, as a reader sees it
  const left = Math.max(0, Math.min(...boxes.map(b => b[0])) - margin);
  const top = Math.max(0, Math.min(...boxes.map(b => b[1])) - margin);
  const right = Math.max(...boxes.map(b => b[2])) + margin;
  const bottom = Math.max(...boxes.map(b => b[3])) + margin;
  return {x: left, y: top, width: right - left, height: bottom - top, scale: 1};
})()
"""
"""The page area that the matching elements span, and a margin, in page coordinates."""


async def load_page(browser: Chromium, page: Path, shot: str = "h1, #timeline") -> PageLoad:
    """Open the page in a new tab, let it load and paint, and read what the browser saw.

    The screenshot spans the elements that match the CSS selector `shot`, and whatever lies
    between them: by default from the title to the end of the charts over time.
    """
    async with open_websocket_url(browser.url, max_message_size=64 * 2**20,
                                  connect_timeout=10, disconnect_timeout=5) as websocket:
        devtools = _DevTools(websocket)
        target = (await devtools.call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await devtools.call("Target.attachToTarget", targetId=target,
                                       flatten=True))["sessionId"]
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                await devtools.call(f"{domain}.enable", session)
            await devtools.call("Emulation.setDeviceMetricsOverride", session, width=WIDTH,
                                height=HEIGHT, deviceScaleFactor=1, mobile=False)
            navigated = await devtools.call("Page.navigate", session,
                                            url=page.resolve().as_uri())
            if navigated.get("errorText"):
                raise RuntimeError(f"{page}: {navigated['errorText']}")
            await devtools.wait_event("Page.loadEventFired", session)
            charts = await devtools.call("Runtime.evaluate", session, expression=_CHARTS,
                                         awaitPromise=True, returnByValue=True)
            if "exceptionDetails" in charts:
                raise RuntimeError(f"measuring the charts: {charts['exceptionDetails']}")
            clip = await devtools.call("Runtime.evaluate", session, returnByValue=True,
                                       expression=_CLIP % json.dumps(shot))
            if not clip["result"].get("value"):
                raise RuntimeError(f"{page}: nothing on the page matches {shot!r}")
            png = await devtools.call("Page.captureScreenshot", session, format="png",
                                      clip=clip["result"]["value"], captureBeyondViewport=True)
        finally:
            # even when the test failed or timed out: the browser serves the next test too
            with trio.move_on_after(5, shield=True):
                await devtools.call("Target.closeTarget", targetId=target)
    requests = tuple(event["params"]["request"]["url"] for event in devtools.events
                     if event.get("sessionId") == session
                     and event["method"] == "Network.requestWillBeSent")
    return PageLoad(errors=_errors(devtools.events, session), requests=requests,
                    charts=tuple((float(w), float(h)) for w, h in charts["result"]["value"]),
                    screenshot=base64.b64decode(png["data"]))


def main(argv: list[str]) -> int:
    """Screenshot a page; 1 if the browser saw errors on it (they go to stderr)."""
    if len(argv) not in (2, 3):
        raise SystemExit("usage: python -m tests.browser PAGE.html OUT.png [CSS-SELECTOR]")
    page, out = Path(argv[0]), Path(argv[1])
    executable = find_chromium()
    if executable is None:
        raise SystemExit(f"no browser: install Debian's chromium, or set CHROMIUM "
                         f"(looked for {', '.join(NAMES)})")
    with launch(executable) as browser:

        async def shoot() -> PageLoad:
            with trio.fail_after(30):
                return await load_page(browser, page, *argv[2:])

        loaded = trio.run(shoot)
    for error in loaded.errors:
        print(f"{page}: {error}", file=sys.stderr)
    out.write_bytes(loaded.screenshot)
    print(f"{out}: {len(loaded.screenshot):,} bytes, {len(loaded.charts)} charts")
    return 1 if loaded.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
