"""The exceptions fleetsim raises, in one tree::

    FleetsimError
    ├── ConfigError            bad options or files; nothing was run (exit code 104)
    └── ProtocolError
        └── LocalProtocolError   fleetsim itself misused a state machine (a bug)

Peer faults met during a run are counted, not raised, and an unreachable target is the run's
outcome (`stopped_by` "unreachable", exit code 103): these are for the API's callers.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FleetsimError",
    "LocalProtocolError",
    "ProtocolError",
]


class FleetsimError(Exception):
    """Base of every error fleetsim raises on purpose."""


class ConfigError(FleetsimError):
    """The run configuration is invalid; the message says which option and why."""


class ProtocolError(FleetsimError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """fleetsim broke a protocol rule itself: a bug in fleetsim, never the peer's fault."""
