"""Interrupted or killed, the runner leaves nothing behind and says what happened.

Real pytest runs of the labs in a subprocess, stopped with a real signal while a scenario
is in the middle of a batch (curl is running); afterwards: the exit status, the lab
report, the scratch directory and the processes the run started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bookinfo_labs.checks import eventually
from bookinfo_labs.rundir import PREFIX, make_run_dir, remove_stale

ROOT = Path(__file__).resolve().parents[1]


def _interruptible() -> None:
    """A job a non-interactive shell starts in the background inherits SIGINT ignored, and
    Python then keeps ignoring it: give the run Ctrl-C back, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _children(pid: int) -> dict[int, str]:
    """The live descendants of a process: pid -> command name (from /proc)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        child = int(stat.parent.name)
        parents[child], names[child] = int(fields[1]), name
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = names[child]
                frontier.append(child)
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_scenario_cleans_up_and_reports_the_run_as_interrupted(tmp_path, signum):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "features/", "-k", "7_s_ratings_delay", "--explain",
         "--lab-report", str(tmp_path / "report"), "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_interruptible)
    try:
        # the scenario's 7 s batch is under way when curl runs under the pytest process
        curls = _curls_running(run, timeout_s=60)
        envoys = _envoys(run.pid)
        assert len(envoys) >= 7, envoys  # one per Bookinfo pod, and the client's
        run.send_signal(signum)
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, out
    # the scenario's config was deleted (--explain prints what cleanup does)
    assert re.search(r"kubectl delete --ignore-not-found virtualservice .*\bratings\b", out), out[-3000:]
    report = (tmp_path / "report" / "labs.txt").read_text()
    name = signal.Signals(signum).name
    assert f"INTERRUPTED by {name}: 1 scenario did not run" in report, report
    data = json.loads((tmp_path / "report" / "labs.json").read_text())
    assert data["interrupted"] == name and data["labs"][0]["not_run"] == 1
    assert list(scratch.glob(f"{PREFIX}*")) == []  # cookie jars and curl configs are gone
    assert not any(Path(f"/proc/{pid}").exists() for pid in curls | envoys)


def _curls_running(run: subprocess.Popen, timeout_s: float) -> set[int]:
    """Wait until curl runs under the pytest process (a batch is under way)."""
    def curls() -> set[int]:
        if run.poll() is not None:  # it ended before any batch: say why
            out = run.stdout.read() if run.stdout else ""
            pytest.fail(f"the run ended (exit {run.returncode}) before a batch:\n{out[-3000:]}")
        return {p for p, n in _children(run.pid).items() if n == "curl"}

    return eventually(curls, lambda found: bool(found) or False, expected="a curl batch running",
                      times=1, timeout_s=timeout_s, interval_s=0.05, max_backoff_s=0.1)


def _envoys(pid: int) -> set[int]:
    return {p for p, name in _children(pid).items() if name == "envoy"}


def _labs(tmp_path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "features/", *args, "--lab-report",
         str(tmp_path / "report"), "-p", "no:cacheprovider"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _gone(pids: set[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids) or False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_the_envoys_of_a_run_end_with_it(tmp_path):
    """While the traffic labs run, the sidecars are real Envoy processes under pytest, one
    per Bookinfo pod plus the client's; when pytest is done, none is left."""
    run = _labs(tmp_path, "-m", "traffic", "-k", "routing")
    try:
        envoys = eventually(lambda: _envoys(run.pid), lambda found: len(found) >= 7 or False,
                            expected="7 Envoys under pytest", times=1, timeout_s=60,
                            interval_s=0.05, max_backoff_s=0.1)
        assert run.wait(timeout=300) == 0
    finally:
        if run.poll() is None:
            run.kill()
    assert _gone(envoys)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_the_envoys_of_a_killed_run_die_within_5_s(tmp_path):
    """SIGKILL gives pytest no chance to clean up: each Envoy was started with
    PR_SET_PDEATHSIG, so the kernel ends it with its parent."""
    run = _labs(tmp_path, "-k", "7_s_ratings_delay")
    try:
        envoys = eventually(lambda: _envoys(run.pid), lambda found: len(found) >= 7 or False,
                            expected="7 Envoys under pytest", times=1, timeout_s=60,
                            interval_s=0.05, max_backoff_s=0.1)
        run.kill()
        run.wait(timeout=10)
    finally:
        if run.poll() is None:
            run.kill()
    eventually(lambda: envoys, _gone, expected="every Envoy gone", times=1, timeout_s=5,
               interval_s=0.05, max_backoff_s=0.1)


def test_a_later_run_removes_the_directories_of_killed_runs(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # exited and reaped: its pid names no process now
    killed = tmp_path / f"{PREFIX}{gone.pid}-x1"
    killed.mkdir()
    (killed / "jason-abc").write_text("cookie")
    alive = tmp_path / f"{PREFIX}{os.getpid()}-x2"
    alive.mkdir()
    other = tmp_path / f"{PREFIX}notes"
    other.mkdir()
    assert remove_stale(tmp_path) == [killed]
    assert not killed.exists() and alive.exists() and other.exists()


def test_a_run_directory_carries_its_pid(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    path = make_run_dir()
    assert path.parent == tmp_path and path.name.startswith(f"{PREFIX}{os.getpid()}-")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
def test_a_run_on_the_emulated_cluster_stopped_mid_batch_leaves_nothing(tmp_path):
    """The kube backend against the emulated cluster: SIGTERM while curl runs in the
    client "pod" (an exec); the cluster's Envoys, the exec'd commands and its directories
    all go with the run."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT / "tests")}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "features/", "-k", "7_s_ratings_delay", "-p",
         "emulated.plugin", "--mesh", "kube", "--emulated-cluster", "--lab-report",
         str(tmp_path / "report"), "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_interruptible)
    try:
        curls = _curls_running(run, timeout_s=90)
        envoys = _envoys(run.pid)
        assert len(envoys) >= 7, envoys
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert list(scratch.glob(f"{PREFIX}*")) == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in curls | envoys)
