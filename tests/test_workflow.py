"""The nightly conformance workflow is valid, and its matrix is the version table.

actionlint cannot be installed here (its PyPI wrapper downloads the binary from GitHub
at build time), so the workflow is checked with GitHub's workflow JSON schema (vendored
by check-jsonschema, offline) plus the checks actionlint would add: job and step
references in expressions, pinned actions, and `bash -n` on every run script.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bookinfo_labs.versions import VERSIONS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly-conformance.yaml"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
CONTEXTS = {"github", "inputs", "matrix", "needs", "steps", "runner", "env", "secrets",
            "strategy", "job", "vars"}
FUNCTIONS = {"fromJSON", "toJSON", "hashFiles", "format", "contains", "startsWith",
             "endsWith", "join", "always", "failure", "success", "cancelled"}


@pytest.fixture(scope="module")
def workflow():
    text = WORKFLOW.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    # YAML 1.1 reads the key `on` as True
    doc["on"] = doc.pop(True, doc.get("on"))
    return text, doc


def _check_jsonschema():
    exe = Path(sys.executable).with_name("check-jsonschema")
    return str(exe) if exe.exists() else shutil.which("check-jsonschema")


@pytest.mark.skipif(_check_jsonschema() is None,
                    reason="check-jsonschema is not installed (pip install -e '.[test]')")
def test_workflow_matches_githubs_schema():
    done = subprocess.run([_check_jsonschema(), "--builtin-schema", "vendor.github-workflows",
                           str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_triggers_are_nightly_and_manual(workflow):
    _, doc = workflow
    (schedule,) = doc["on"]["schedule"]
    fields = schedule["cron"].split()
    assert len(fields) == 5 and fields[2:] == ["*", "*", "*"]  # every day
    assert "istio" in doc["on"]["workflow_dispatch"]["inputs"]
    assert doc["permissions"] == {"contents": "read"}


def _expressions(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)
    elif isinstance(node, str):
        for match in EXPRESSION.finditer(node):
            yield match.group(1).strip()


def test_expressions_reference_what_exists(workflow):
    text, doc = workflow
    assert text.count("${{") == text.count("}}"), "unbalanced ${{ }}"
    jobs = doc["jobs"]
    for job_id, job in jobs.items():
        assert "runs-on" in job and job["steps"], job_id
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        assert set(needs) <= set(jobs), f"{job_id} needs an unknown job"
        step_ids = {s["id"] for s in job["steps"] if "id" in s}
        matrix = ((job.get("strategy") or {}).get("matrix") or {})
        for expr in _expressions(job):
            for name in re.findall(r"\b([A-Za-z_][\w-]*)\s*\(", expr):
                assert name in FUNCTIONS, f"{job_id}: unknown function {name} in {expr}"
            for ref in re.findall(r"\b([a-z]+)((?:\.[\w-]+)+)", expr):
                context, path = ref[0], ref[1].split(".")[1:]
                if context not in CONTEXTS:
                    continue
                if context == "needs":
                    assert path[0] in needs, f"{job_id}: {expr} names a job it does not need"
                    assert path[1] == "outputs" and path[2] in jobs[path[0]].get("outputs", {}), expr
                elif context == "steps":
                    assert path[0] in step_ids, f"{job_id}: no step with id {path[0]}"
                elif context == "matrix":
                    assert path[0] in matrix, f"{job_id}: no matrix key {path[0]}"
                elif context == "inputs":
                    assert path[0] in doc["on"]["workflow_dispatch"]["inputs"], expr
    outputs = jobs["versions"]["outputs"]
    for value in outputs.values():
        step = EXPRESSION.search(value).group(1).strip().split(".")[1]
        assert step in {s.get("id") for s in jobs["versions"]["steps"]}


def test_actions_are_pinned(workflow):
    _, doc = workflow
    for job in doc["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+(\.\d+)*", step["uses"]), step["uses"]
            else:
                assert step.get("run"), step


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_run_scripts_are_valid_bash(workflow):
    _, doc = workflow
    for job_id, job in doc["jobs"].items():
        for step in job["steps"]:
            if "run" not in step:
                continue
            script = EXPRESSION.sub("EXPR", step["run"])
            done = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
            assert done.returncode == 0, f"{job_id} / {step.get('name')}: {done.stderr}"


def _matrix_program(doc):
    (step,) = [s for s in doc["jobs"]["versions"]["steps"] if s.get("id") == "table"]
    return step["run"]


def _run_matrix_step(doc, only, tmp_path):
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "ONLY": only, "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(["bash", "-e", "-c", _matrix_program(doc)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    return done, output.read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_matrix_is_the_version_table(workflow, tmp_path):
    _, doc = workflow
    done, output = _run_matrix_step(doc, "", tmp_path)
    assert done.returncode == 0, done.stderr
    key, _, value = output.strip().partition("=")
    assert key == "matrix" and json.loads(value) == list(VERSIONS)
    done, output = _run_matrix_step(doc, "1.26", tmp_path)
    assert json.loads(output.strip().partition("=")[2]) == ["1.26"]
    done, _ = _run_matrix_step(doc, "0.9", tmp_path)
    assert done.returncode != 0 and "not in the version table" in done.stderr


def test_conformance_job_provisions_runs_the_labs_and_uploads(workflow):
    _, doc = workflow
    job = doc["jobs"]["conformance"]
    assert job["needs"] == "versions" and job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"]["istio"] == "${{ fromJSON(needs.versions.outputs.matrix) }}"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'python scripts/cluster.py up --istio "${ISTIO_VERSION}"' in runs
    assert re.search(r"pytest features/ --mesh kube --istio-version \"\$\{ISTIO_VERSION\}\"", runs)
    assert "--junit-xml" in runs and "--lab-report" in runs
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "reports/istio-${{ matrix.istio }}/"
    down = job["steps"][-1]
    assert down["if"] == "always()" and down["run"] == "python scripts/cluster.py down"


def test_the_pytest_options_the_workflow_uses_exist():
    done = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    for option in ("--mesh", "--istio-version", "--lab-report", "--junit-xml"):
        assert option in done.stdout, option


def test_ci_and_make_kind_up_use_the_same_kind(workflow):
    """`make kind-up` downloads KIND_VERSION; the nightly job installs kind with
    helm/kind-action: the two must build the same cluster."""
    from bookinfo_labs.kube.tools import KIND_VERSION

    _, doc = workflow
    steps = doc["jobs"]["conformance"]["steps"]
    (kind,) = [s for s in steps if str(s.get("uses", "")).startswith("helm/kind-action")]
    assert kind["with"]["version"] == KIND_VERSION
