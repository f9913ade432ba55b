"""The Kubernetes example (deploy/kubernetes/) is wired right: N segments, 0-based pod indexes
mapped to 1-based segments, the parts the pods write are the parts the merge reads.

The pods' shell scripts really run here, with `fleetsim` replaced by a stub that notes its
arguments and writes the report file it was given.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetsim import Segment, parse_segment, write_report

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
ROOT = DEPLOY.parent.parent


def documents() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((DEPLOY / name).read_text()):
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


MANIFESTS = documents()
SEGMENTS = MANIFESTS[("Job", "fleetsim-segments")]
MERGE = MANIFESTS[("Job", "fleetsim-merge")]
RUN = MANIFESTS[("ConfigMap", "fleetsim-run")]["data"]


def container(job: dict[str, Any]) -> dict[str, Any]:
    [only] = job["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def script(job: dict[str, Any]) -> str:
    spec = container(job)
    assert spec["command"] == ["/bin/sh", "-c"]
    [text] = spec["args"]
    assert isinstance(text, str)
    return text


def run_script(job: dict[str, Any], tmp_path: Path, index: int | None = None
               ) -> list[list[str]]:
    """Run a pod's script with /reports in `tmp_path` and a stub `fleetsim`; its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    stub = bin_dir / "fleetsim"
    stub.write_text(
        "#!/bin/sh\n"
        f'for arg in "$@"; do printf "%s\\0" "$arg"; done >> {shlex.quote(str(calls))}\n'
        f'printf "\\n" >> {shlex.quote(str(calls))}\n'
        'while [ $# -gt 0 ]; do\n'
        '  case "$1" in --report|-o) echo "{}" > "$2";; esac\n'
        '  shift\n'
        'done\n')
    stub.chmod(0o755)
    calls.write_text("")
    env = {**RUN, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MERGE_WAIT_S": "0"}
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    text = script(job).replace("/reports", str(tmp_path / "reports"))
    (tmp_path / "reports").mkdir(exist_ok=True)
    done = subprocess.run(["/bin/sh", "-c", text], env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return [line.split("\0")[:-1] for line in calls.read_text().splitlines() if line]


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_an_indexed_job_runs_n_segments_at_once() -> None:
    spec = SEGMENTS["spec"]
    assert spec["completionMode"] == "Indexed"
    count = spec["completions"]
    assert spec["parallelism"] == count >= 2
    assert f'--segment "$((JOB_COMPLETION_INDEX + 1))/{count}"' in script(SEGMENTS)
    assert re.search(rf"-ge {count}\b", script(MERGE)), "the merge waits for every part"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_every_pod_runs_its_own_segment_and_the_merge_reads_every_part(
        tmp_path: Path) -> None:
    count = SEGMENTS["spec"]["completions"]
    segments = []
    for index in range(count):
        [args] = run_script(SEGMENTS, tmp_path, index)
        assert args[0] == "spawn"
        assert option(args, "--url") == RUN["CSMS_URL"]
        assert option(args, "--chargers") == RUN["CHARGERS"]  # the whole fleet, every pod
        segments.append(parse_segment(option(args, "--segment")))
        report = Path(option(args, "--report"))
        assert report == tmp_path / "reports" / RUN["RUN_ID"] / f"part-{index}.json"
        assert report.exists()
    assert segments == [Segment(k, count) for k in range(1, count + 1)]  # 0-based to 1-based
    merge, html = run_script(MERGE, tmp_path)
    parts = sorted(tmp_path.joinpath("reports", RUN["RUN_ID"]).glob("part-*.json"))
    assert merge[0] == "merge"
    assert sorted(merge[1:merge.index("-o")]) == [str(path) for path in parts]
    assert len(parts) == count
    total = str(tmp_path / "reports" / RUN["RUN_ID"] / "total.json")
    assert option(merge, "-o") == total
    assert html[:2] == ["report", total] and "--html" in html


@pytest.mark.parametrize("job", [SEGMENTS, MERGE], ids=["segments", "merge"])
def test_pods_share_the_reports_volume_and_say_what_they_need(job: dict[str, Any]) -> None:
    pod = job["spec"]["template"]["spec"]
    [volume] = pod["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] == "fleetsim-reports"
    assert ("PersistentVolumeClaim", "fleetsim-reports") in MANIFESTS
    spec = container(job)
    assert spec["volumeMounts"] == [{"name": volume["name"], "mountPath": "/reports"}]
    resources = spec["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    assert spec["envFrom"] == [{"configMapRef": {"name": "fleetsim-run"}}]
    used = set(re.findall(r"\$\{?([A-Z_]+)", script(job))) | set(
        re.findall(r"\+ ([A-Z_]+) \)\)", script(job)))
    assert used - {"JOB_COMPLETION_INDEX"} <= RUN.keys()
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user owns /reports
    assert spec["image"] == "fleetsim:latest" and spec["imagePullPolicy"] == "IfNotPresent"


def test_the_image_runs_fleetsim() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert 'ENTRYPOINT ["fleetsim"]' in dockerfile
    assert "USER 10001" in dockerfile
    copied = {name for source in re.findall(r"^COPY (?!--from)(.+) /src/", dockerfile, re.M)
              for name in source.split()}
    # what `pip install /src` needs: the package, and profiles/ for its data files
    assert copied == {"pyproject.toml", "README.md", "fleetsim", "profiles"}
    assert all((ROOT / name).exists() for name in copied)
    assert "pip install --no-cache-dir /src" in dockerfile


def test_a_report_appears_whole_for_the_merge_step_to_read(tmp_path: Path) -> None:
    path = tmp_path / "run-1" / "part-0.json"
    write_report({"sent": 1}, path)
    write_report({"sent": 2}, path)
    assert json.loads(path.read_text()) == {"sent": 2}
    assert [entry.name for entry in path.parent.iterdir()] == ["part-0.json"]  # no leftovers
    link = tmp_path / "latest.json"
    link.symlink_to(path)
    write_report({"sent": 3}, link)
    assert link.is_symlink() and json.loads(path.read_text()) == {"sent": 3}
    write_report({"sent": 4}, Path(os.devnull))  # not a plain file: written as it is
