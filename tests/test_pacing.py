"""`--ramp auto`: the pace decisions (sans-IO), and a fleet booting at that pace."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from click.testing import CliRunner

from fleetsim import CsmsServer, RunConfig, spawn
from fleetsim.cli import cli
from fleetsim.pacing import (
    CPU_LIMIT,
    CPU_TARGET,
    LAG_BOUND_S,
    MAX_PER_S,
    MIN_PER_S,
    START_PER_S,
    AutoPace,
)

FINE = (0.001, 0.30, 0.002)


def test_the_pace_doubles_while_all_is_fine() -> None:
    pace = AutoPace()
    assert [pace.step(*FINE) for _ in range(3)] == [START_PER_S * 2, START_PER_S * 4,
                                                   START_PER_S * 8]
    assert pace.verdict == "slow start"


@pytest.mark.parametrize(("lag", "cpu", "verdict"), [
    (LAG_BOUND_S * 1.5, 0.3, "back off (lag)"),
    (0.001, CPU_LIMIT + 0.05, "back off (CPU)"),
])
def test_a_late_loop_or_a_busy_core_halves_the_pace_then_it_steers_by_the_cpu(
    lag: float, cpu: float, verdict: str,
) -> None:
    pace = AutoPace()
    pace.step(*FINE)
    pace.step(*FINE)
    assert pace.step(lag, cpu, 0.002) == START_PER_S * 2
    assert pace.verdict == verdict
    assert not pace.slow_start
    assert pace.step(*FINE) == pytest.approx(START_PER_S * 2 * 1.5)  # 30 %: grow, capped
    assert pace.verdict == "steer"
    before = pace.per_s
    assert pace.step(0.001, CPU_TARGET, None) == pytest.approx(before)  # on target: hold
    assert pace.step(0.001, 0.85, None) < before  # over it: slow down, short of halving
    assert pace.per_s > before * 0.7


def test_slow_start_ends_when_the_cpu_reaches_its_target() -> None:
    pace = AutoPace()
    pace.step(*FINE)
    assert pace.step(0.001, CPU_TARGET + 0.02, None) < START_PER_S * 2
    assert not pace.slow_start and pace.verdict == "steer"


def test_handshakes_that_slow_down_back_off_but_small_or_proportionate_ones_do_not() -> None:
    pace = AutoPace()
    pace.step(0.001, 0.3, 0.002)  # the quickest handshakes: 2 ms
    pace.step(0.001, 0.3, 0.007)  # 3.5 times as slow: fine
    pace.step(0.001, 0.3, 0.040)  # 20 times, but only 38 ms more: fine
    assert pace.verdict == "slow start"
    before = pace.per_s
    assert pace.step(0.001, 0.3, 0.300) == before / 2
    assert pace.verdict == "back off (handshakes)"


def test_unknown_cpu_and_no_handshakes_count_as_fine() -> None:
    pace = AutoPace()
    assert pace.step(0.001, None, None) == START_PER_S * 2


def test_the_pace_stays_within_its_bounds() -> None:
    pace = AutoPace()
    for _ in range(40):
        pace.step(*FINE)
    assert pace.per_s == MAX_PER_S
    for _ in range(40):
        pace.step(1.0, 1.0, None)
    assert pace.per_s == MIN_PER_S


async def test_an_auto_ramp_boots_the_fleet_and_shows_its_pace(csms: CsmsServer) -> None:
    rows: list[dict[str, Any]] = []
    # slow start: at most 12 + 25 + 50 + 100 chargers have started when the first row shows
    config = RunConfig(chargers=300, duration_s=8, url=csms.url, ramp_per_s=None)
    with trio.fail_after(40):
        result = await spawn(config, on_second=rows.append, write=False)
    assert result.report["chargers"]["booted"] == 300
    paces = [row["ramp_per_s"] for row in rows if "ramp_per_s" in row]
    assert paces, "the progress rows show the pace while chargers start"
    assert all(MIN_PER_S <= pace <= MAX_PER_S for pace in paces)
    assert "ramp_per_s" not in rows[-1]  # only while it ramps
    assert all("ramp_per_s" not in row for row in result.report["timeline"])


@pytest.mark.parametrize("value", ["0", "-5", "fast", "inf", "nan"])
def test_a_bad_ramp_is_refused_in_one_line(value: str) -> None:
    result = CliRunner().invoke(cli, ["spawn", "--ramp", value, "--chargers", "1"])
    assert result.exit_code == 2
    assert "neither auto nor a number" in result.output
    assert "Traceback" not in result.output
