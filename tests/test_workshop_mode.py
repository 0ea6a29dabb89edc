"""``pytest --workshop`` driven as a learner drives it, in a pseudo-terminal (pexpect): Enter
runs each step's command, and a broken step stops the run with what was expected, what
was seen and a hint, the mesh still up (reachable with ``bookinfo-labs``) until Enter."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect", reason="pexpect is a test extra: pip install -e .[test]")

ROOT = Path(__file__).resolve().parents[1]
#: a lab's steps run in a few seconds locally; the mesh starts in a few more
STEP_DEADLINE_S = 60
BROKEN = '''\
Feature: A broken lab
  Scenario: jason expects reviews v3 where the route sends him to v2
    Given the Bookinfo sample is running
    And "destination-rule-all.yaml" is applied
    And I apply "virtual-service-reviews-test-v2.yaml"
    When jason logs in
    And jason opens the product page 5 times
    Then every page is served by reviews v3
'''


@pytest.fixture
def place():
    """A short directory (a Unix socket path has a length limit) for the endpoint and report."""
    with tempfile.TemporaryDirectory(prefix="bl-ws-") as directory:
        yield Path(directory)


def _env(place: Path, *paths: Path) -> dict[str, str]:
    return {**os.environ, "BOOKINFO_LABS_SOCKET": str(place / "control.sock"),
            "PYTHONPATH": os.pathsep.join(str(p) for p in (*paths, ROOT / "src")),
            "TERM": "dumb", "COLUMNS": "200"}


def _spawn(args: list[str], cwd: Path, env: dict[str, str]):
    return pexpect.spawn(sys.executable, ["-m", "pytest", "-p", "no:cacheprovider", *args],
                         cwd=str(cwd), env=env, encoding="utf-8", timeout=STEP_DEADLINE_S,
                         dimensions=(50, 200))


def _get(env: dict[str, str]) -> str:
    """``bookinfo-labs get`` against the mesh the workshop keeps up."""
    done = subprocess.run([sys.executable, "-m", "bookinfo_labs.cli", "get"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_enter_runs_each_step_command_shown_before_it(place: Path):
    env = _env(place)
    child = _spawn(["features/traffic/test_traffic.py", "-k", "request_routing and jason and black",
                    "--workshop", "--lab-report", str(place / "reports")], ROOT, env)
    try:
        while child.expect([r"\[Enter\] run it", r"# Given I apply \"virtual-service-all-v1.yaml\""]) == 0:
            child.sendline("")  # the Background's steps
        child.expect(r"kubectl apply -f manifests/bookinfo/networking/virtual-service-all-v1.yaml")
        child.expect(r"\[Enter\] run it")
        # shown, not yet done: the command waits for Enter
        assert "virtualservice/productpage" not in _get(env)
        child.sendline("")
        child.expect(r"# And I apply \"virtual-service-reviews-test-v2.yaml\"")
        child.expect(r"\[Enter\] run it")
        assert "virtualservice/productpage" in _get(env)  # the previous step ran
        child.sendline("")
        while child.expect([r"\[Enter\] run it", r"(\d+) passed|failed|error"]) == 0:
            child.sendline("")
        assert child.match.group(0) == "1 passed", child.before
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_a_broken_step_stops_with_a_hint_and_leaves_the_mesh_up(place: Path):
    (place / "broken.feature").write_text(BROKEN)
    (place / "test_broken.py").write_text('from pytest_bdd import scenarios\n\n'
                                          'scenarios("broken.feature")\n')
    (place / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (place / "pytest.ini").write_text(f"[pytest]\nbdd_features_base_dir = {place}\n")
    env = _env(place, ROOT)
    child = _spawn(["test_broken.py", "--workshop=auto", "--eventually-timeout", "1",
                    "--lab-report", str(place / "reports")], place, env)
    try:
        child.expect(r"✗ Then every page is served by reviews v3")
        child.expect(r"reviews versions seen: \{'v2': 5\}")  # what was seen
        child.expect(r"Hint: ")
        child.expect(r"The mesh is still up")
        child.expect(r"\[Enter\] clean up")
        # the failed scenario's config is still there, and the mesh answers
        assert "virtualservice/reviews" in _get(env)
        curl = subprocess.run([sys.executable, "-m", "bookinfo_labs.cli", "curl", "-s", "-o",
                               "/dev/null", "-w", "%{http_code}",
                               "http://productpage:9080/productpage"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert curl.stdout == "200", curl.stderr
        child.sendline("")
        child.expect(r"1 failed")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
    assert not (place / "control.sock").exists()
