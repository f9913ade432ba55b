"""The embedded CSMS's configuration: where it listens and how it answers.

Here, with the CSMS, so that the CSMS (and its child processes) import nothing of the charger
or the run's configuration.
"""

from __future__ import annotations

from typing import Literal

import attrs

from fleetsim.behaviour.random_stream import Rng
from fleetsim.errors import ConfigError

__all__ = ["CAPACITY_WORKERS", "CsmsConfig", "Delay", "parse_delay"]


@attrs.frozen
class Delay:
    """An artificial response delay of the embedded CSMS, in milliseconds."""

    kind: Literal["none", "fixed", "uniform", "exp"] = "none"
    low_ms: float = 0.0
    high_ms: float = 0.0

    def sample_s(self, rng: Rng) -> float:
        if self.kind == "fixed":
            return self.low_ms / 1000
        if self.kind == "uniform":
            return rng.uniform(self.low_ms, self.high_ms) / 1000
        if self.kind == "exp":
            return rng.expovariate(1 / self.low_ms) / 1000
        return 0.0

    def __str__(self) -> str:
        if self.kind == "uniform":
            return f"uniform:{self.low_ms:g}-{self.high_ms:g}"
        if self.kind in ("fixed", "exp"):
            return f"{self.kind}:{self.low_ms:g}"
        return "0"


def parse_delay(text: str) -> Delay:
    """'50' (fixed ms), 'uniform:10-50', 'exp:20' (mean ms), or '0' for none."""
    kind, _, value = text.strip().partition(":")
    try:
        if not value:
            ms = float(kind)
            if ms < 0:
                raise ValueError
            return Delay("fixed", ms, ms) if ms else Delay()
        if kind == "uniform":
            low_text, _, high_text = value.partition("-")
            low, high = float(low_text), float(high_text)
            if not 0 <= low <= high:
                raise ValueError
            return Delay("uniform", low, high)
        if kind == "exp" and float(value) > 0:
            return Delay("exp", float(value), float(value))
    except ValueError:
        pass
    raise ConfigError(
        f"delay: expected milliseconds like 50, uniform:10-50 or exp:20; got {text!r}"
    )


CAPACITY_WORKERS = 32


@attrs.frozen
class CsmsConfig:
    """The embedded CSMS: where it listens and how it answers."""

    host: str = "127.0.0.1"
    port: int = attrs.field(default=9000, validator=attrs.validators.in_(range(0, 65536)))
    heartbeat_interval_s: int = attrs.field(default=60, validator=attrs.validators.ge(0))
    boot_status: Literal["Accepted", "Pending", "Rejected"] = "Accepted"
    delay: Delay = Delay()
    password: str | None = attrs.field(default=None, repr=False)
    """Required of every charger (Basic auth, user = charger ID); `{id}` stands for its ID."""
    passwords_file: str | None = None
    """A CSV of id,password: each charger's own password (security profiles 1 and 2)."""
    cert_file: str | None = None
    key_file: str | None = None
    client_ca: str | None = None
    """Require a client certificate signed by this CA, its CN the charger ID (profile 3)."""
    ca_key: str | None = None
    """The key of `client_ca`: sign the CSRs of chargers renewing their certificate."""
    seed: int = 0
    commands_per_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    capacity_per_s: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    """0: answer at once. Otherwise a pool of `CAPACITY_WORKERS` serves CALLs, each taking
    workers / capacity seconds, so latency climbs and CALLs queue once load passes it."""
    shard: int = 0
    shards: int = 1
    """This process is shard `shard` (0-based) of `shards` embedded CSMS processes: it hands
    out every `shards`-th transaction ID and seeds its randomness with `seed + shard`."""
