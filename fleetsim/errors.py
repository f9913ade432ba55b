"""The exceptions fleetsim raises, in one tree::

    FleetsimError
    ├── ConfigError            bad options or files; nothing was run (exit code 104)
    ├── TargetUnreachable      the target CSMS could not be reached at all (exit code 103)
    └── ProtocolError
        ├── LocalProtocolError   fleetsim itself misused a state machine (a bug)
        └── RemoteProtocolError  the peer broke the protocol

Peer faults met during a run are counted, not raised: these are for the API's callers.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FleetsimError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "TargetUnreachable",
]


class FleetsimError(Exception):
    """Base of every error fleetsim raises on purpose."""


class ConfigError(FleetsimError):
    """The run configuration is invalid; the message says which option and why."""


class TargetUnreachable(FleetsimError):
    """No charger could connect to the target; the message gives the failure reasons."""


class ProtocolError(FleetsimError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """fleetsim broke a protocol rule itself: a bug in fleetsim, never the peer's fault."""


class RemoteProtocolError(ProtocolError):
    """The peer broke a protocol rule."""
