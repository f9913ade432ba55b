"""Open-file limits: every WebSocket connection is an open file, on both sides.

A fleet process holds one socket per connected charger, and so does each embedded CSMS
process, so the per-process limit on open files (`ulimit -n`) caps how many chargers one
process can run or serve. Both raise their soft limit to the hard one at start (as any server
would), and the fleet checks its plan against what is left before it starts anything, rather
than let connections fail one by one.
"""

from __future__ import annotations

import math

try:
    import resource
except ImportError:  # not on Unix: no limit we can read or raise
    resource = None  # type: ignore[assignment]

__all__ = ["SPARE_FILES", "csms_processes", "raise_open_file_limit"]

SPARE_FILES = 200
"""Open files a process needs besides its connections: the interpreter, pipes, listeners,
reports, DNS, TLS files."""

_CSMS_SHARE = 0.9
"""Linux spreads connections over the processes sharing a port by a hash, not evenly: leave
room for a process that gets more than its share."""


_UNLIMITED_TRIES = (1 << 20, 1 << 16, 10240)
"""Soft limits to try when the hard limit is unlimited (macOS caps a process lower)."""


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files as far as the hard limit lets it; returns the soft
    limit now. A child process inherits it."""
    if resource is None:
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        targets = [n for n in _UNLIMITED_TRIES if soft == resource.RLIM_INFINITY or n > soft]
    else:
        targets = [hard] if soft == resource.RLIM_INFINITY or soft < hard else []
    for target in targets:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        soft = target
        break
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def csms_processes(connections: int, limit: int) -> int:
    """How many embedded CSMS processes, sharing one port, can hold `connections`."""
    per_process = max(1, int((limit - SPARE_FILES) * _CSMS_SHARE))
    return max(1, math.ceil(connections / per_process))
