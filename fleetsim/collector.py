"""Keeping garbage-collection pauses out of the measurements.

Thousands of connections' long-lived objects (cores, parsers, coroutines; and a CSMS
connection's cancel scopes, remade at each wake) fill the collector's generations, so each
collection would pause the event loop for tens to hundreds of milliseconds, which would be
measured as latency. Parking every live object outside the collector (`gc.freeze`, which
costs nothing) every 20 ms keeps collections short, and everything goes back to the collector
at the end.

The price: refcounting still frees what dies, but an object parked there that ends up in
cyclic garbage stays until the end of the run. So a connection's life must make none, and
it makes none, on either side (fleet and CSMS), on both transports, however it ends: closed,
dropped, reset, refused, rejected, timed out, over TLS or not (tests/test_garbage.py). The
transport breaks the cycles its libraries would leave: wsproto's frame parser (its parser
generator refers back to it), trio's SSLStream (its handshake, a bound method of itself) and
the tracebacks of a failed connect; `metrics.new_histogram` breaks hdrh's (a histogram and
its encoder), so a finished ramp step's window is freed at once. What does stay until the
end is a few objects per run.
"""

from __future__ import annotations

import gc

import trio

__all__ = ["keep_collections_short"]


async def keep_collections_short(interval_s: float = 0.02) -> None:
    """Park live objects outside the collector every `interval_s` until cancelled; then hand
    them all back."""
    try:
        while True:
            gc.freeze()
            await trio.sleep(interval_s)
    finally:
        gc.unfreeze()
