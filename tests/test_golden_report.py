"""The report's JSON and summary stay what they were: a report built from fixed inputs, the
merge of two parts and the summaries of reports written by fleetsim 0.1.0 are compared with
copies made by that release (`tests/data/`). Only `fleetsim_version` may differ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from fleetsim import (
    SCHEMA,
    ConfigError,
    check_report,
    compare,
    format_summary,
    merge_reports,
    render_html,
    report_schema,
)
from fleetsim.report import unstructure_report
from tests.test_merge import play, random_run, report

DATA = Path(__file__).resolve().parent / "data"
RELEASED = DATA / "reports-0.1.0"
REPORTS = sorted(RELEASED.glob("*.json"))


def _json(value: Any) -> Any:
    """As a file holds it: tuples become lists, and so on."""
    return json.loads(orjson.dumps(value))


def _flat(section: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = json.dumps(value)
    return flat


def _built() -> dict[str, Any]:
    metrics = play(random_run(11, seconds=4), 4, [[0.001, 0.002, 0.004]] * 4, [0.5] * 4)
    built: dict[str, Any] = _json(report(metrics, seconds=4.0))
    return built


def test_a_report_built_from_fixed_inputs_is_unchanged() -> None:
    golden = json.loads((DATA / "golden-built.json").read_text())
    built = _built()
    built["fleetsim_version"] = golden["fleetsim_version"]
    assert list(built) == list(golden)  # the order of the sections too
    assert format_summary(built) == (DATA / "golden-built.txt").read_text()
    # the resolved configuration only gains keys (options added since 0.1.0), among them the
    # run's own CALL timeout and closed loop
    config, old = _flat(built.pop("config")), _flat(golden.pop("config"))
    assert old.items() <= config.items()
    assert (config["call_timeout_s"], config["closed_loop"]) == ("30.0", "false")
    assert built == golden


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


@pytest.mark.parametrize("path", [*REPORTS, DATA / "golden-built.json"],
                         ids=lambda path: path.name)
def test_released_reports_load_typed_and_write_back_the_same(path: Path) -> None:
    saved = json.loads(path.read_text())
    report = check_report(saved, path.name)
    assert report.schema == SCHEMA
    assert _json(unstructure_report(report)) == saved


def test_the_schema_is_generated_from_the_classes_and_holds_every_report(
) -> None:
    done = subprocess.run([sys.executable, "-m", "fleetsim", "report", "--schema"],
                          capture_output=True, check=True, timeout=60)
    schema = json.loads(done.stdout)
    assert schema == report_schema()
    # the copy in docs/ for pipelines without fleetsim is the current one
    assert (DATA.parent.parent / "docs" / "fleetsim.report-1.schema.json").read_bytes() == (
        done.stdout), "run: fleetsim report --schema > docs/fleetsim.report-1.schema.json"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for each in [*(json.loads(path.read_text()) for path in REPORTS), _built()]:
        assert not list(validator.iter_errors(each))
    wrong = _built()
    wrong["totals"]["ok"] = "12"
    del wrong["connect"]
    assert {error.json_path for error in validator.iter_errors(wrong)} == {
        "$.totals.ok", "$"}
    wrong["schema"] = "fleetsim.report/2"
    assert "$.schema" in {error.json_path for error in validator.iter_errors(wrong)}


@pytest.mark.parametrize(("change", "where"), [
    (lambda report: report["chargers"].update(booted=True), "$.chargers.booted"),
    (lambda report: report["totals"].update(error_rate="0.1"), "$.totals.error_rate"),
    (lambda report: report["timeline"][1].pop("t"), "$.timeline[1].t"),
    (lambda report: report["calls"]["Heartbeat"]["callerror"].update(X=1.5),
     "$.calls['Heartbeat'].callerror['X']"),
    (lambda report: report.update(storms=[{"name": "s"}]), "$.storms[0].at_s"),
])
def test_a_bad_field_is_named_in_one_line(change: Any, where: str) -> None:
    report = _built()
    change(report)
    with pytest.raises(ConfigError) as caught:
        check_report(report, "run.json")
    message = str(caught.value)
    assert message.startswith("run.json: not a fleetsim report: ")
    assert f"@ {where}" in message
    assert "\n" not in message
