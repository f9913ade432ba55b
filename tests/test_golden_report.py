"""The report's JSON and summary stay what they were: a report built from fixed inputs, the
merge of two parts and the summaries of reports written by fleetsim 0.1.0 are compared with
copies made by that release (`tests/data/`). Only `fleetsim_version` may differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from fleetsim import compare, format_summary, merge_reports, render_html
from tests.test_merge import play, random_run, report

DATA = Path(__file__).resolve().parent / "data"
RELEASED = DATA / "reports-0.1.0"
REPORTS = sorted(RELEASED.glob("*.json"))


def _json(value: Any) -> Any:
    """As a file holds it: tuples become lists, and so on."""
    return json.loads(orjson.dumps(value))


def _built() -> dict[str, Any]:
    metrics = play(random_run(11, seconds=4), 4, [[0.001, 0.002, 0.004]] * 4, [0.5] * 4)
    built: dict[str, Any] = _json(report(metrics, seconds=4.0))
    return built


def test_a_report_built_from_fixed_inputs_is_unchanged() -> None:
    golden = json.loads((DATA / "golden-built.json").read_text())
    built = _built()
    built["fleetsim_version"] = golden["fleetsim_version"]
    assert built == golden
    assert list(built) == list(golden)  # the order of the sections too
    assert format_summary(built) == (DATA / "golden-built.txt").read_text()


def test_merging_released_parts_gives_the_released_merge() -> None:
    parts = [json.loads((RELEASED / name).read_text()) for name in ("seg1.json", "seg2.json")]
    merged = _json(merge_reports(parts, names=["seg1.json", "seg2.json"]))
    assert merged == json.loads((RELEASED / "merged.json").read_text())


@pytest.mark.parametrize("path", REPORTS, ids=lambda path: path.name)
def test_released_reports_read_as_before(path: Path) -> None:
    saved = json.loads(path.read_text())
    assert format_summary(saved) == path.with_suffix(".txt").read_text()
    assert "<html" in render_html(saved)
    assert not compare(saved, saved).failed
