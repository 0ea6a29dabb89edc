"""The workshop mesh's control endpoint: a small HTTP API on a Unix socket, server and client.

``bookinfo-labs up`` (and ``pytest --workshop``) serve it for the mesh they run; the other
``bookinfo-labs`` commands are its clients, so they act on that mesh and never start a
second one. A Unix socket in a per-user directory (mode 0700) rather than a TCP port:
only this user can reach it, and no token is needed.

Every verb reuses what the labs use: manifests are validated by ``manifests.parse_text``
and ``check_release`` and applied all or nothing by ``Mesh.apply`` (same errors, same
warnings); ``curl`` is the real curl with the pod's capture options, as ``Mesh.send``.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from .manifests import Manifest

#: how long one ``bookinfo-labs curl`` may run inside the mesh (curl's own --max-time is
#: the learner's to set; this only stops a forgotten one from holding the server)
CURL_LIMIT_S = 120.0


class ControlError(Exception):
    """The control endpoint could not do what was asked: the message says why (the mesh's
    own error, file and field included) and what to do."""


def socket_path() -> Path:
    """Where this user's workshop mesh listens: $BOOKINFO_LABS_SOCKET, else
    ``$XDG_RUNTIME_DIR/bookinfo-labs/control.sock``, else ``/tmp/bookinfo-labs-<uid>/...``."""
    explicit = os.environ.get("BOOKINFO_LABS_SOCKET")
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "bookinfo-labs" if runtime and os.path.isdir(runtime) else \
        Path("/tmp") / f"bookinfo-labs-{os.getuid()}"
    return base / "control.sock"


def _kubectl_name(m: "Manifest") -> str:
    """``virtualservice.networking.istio.io/reviews``, as kubectl names what it applied."""
    group = m.raw.get("apiVersion", "v1").rpartition("/")[0]
    return f"{m.kind.lower()}{'.' + group if group else ''}/{m.name}"


class ControlServer:
    """Serves one mesh's control API on a Unix socket, from a thread of its own."""

    def __init__(self, mesh, path: Path | None = None, info: dict | None = None,
                 own_config: tuple[str, ...] = ()):
        self.mesh = mesh
        self.path = path or socket_path()
        self.info = info or {}
        #: the lab files the mesh's starter applied (``up``'s gateway and subsets): the labs
        #: start without them, as on a fresh cluster, and get them back afterwards
        self.own_config = own_config
        #: a labs run holds the mesh: a hand-made change meanwhile would change its results
        self._labs_running = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def claim(self) -> None:
        """Fail at once when another workshop mesh serves this endpoint (before a second
        mesh starts); remove a socket a killed run left."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists():
            if _answers(self.path):
                raise ControlError(f"a workshop mesh already runs for this user (its control "
                                f"endpoint is {self.path}): stop it with Ctrl-C in its "
                                "terminal, or set BOOKINFO_LABS_SOCKET for a second one")
            self.path.unlink()

    def start(self) -> "ControlServer":
        self.claim()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve())
            except BaseException as exc:  # noqa: BLE001 - handed to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="control-endpoint", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise ControlError(f"cannot serve the control endpoint at {self.path}: {failure[0]}")
        return self

    async def _serve(self) -> None:
        from aiohttp import web  # the server's alone: the client commands start faster

        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.add_routes([
            web.get("/info", self._info), web.get("/resources", self._resources),
            web.post("/apply", self._apply), web.post("/delete", self._delete),
            web.post("/curl", self._curl), web.get("/proxy-config", self._proxy_config),
            web.get("/proxy-status", self._proxy_status), web.post("/labs", self._labs)])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.path)).start()
        os.chmod(self.path, 0o600)

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self.path.unlink(missing_ok=True)

    # -- handlers: each runs the blocking mesh call on a worker thread ---------------
    @staticmethod
    async def _answer(work, *args) -> "web.Response":
        from aiohttp import web

        from .manifests import ManifestError
        from .mesh import MeshError

        try:
            result = await asyncio.to_thread(work, *args)
        except (ManifestError, MeshError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)

    async def _info(self, request: "web.Request") -> "web.Response":
        return await self._answer(lambda: self.info)

    async def _resources(self, request: "web.Request") -> "web.Response":
        return await self._answer(lambda: {"resources": sorted(
            [list(k) for k in self.mesh.owned_resources()])})

    async def _apply(self, request: "web.Request") -> "web.Response":
        body = await request.json()
        return await self._answer(self._unless_labs(self.apply_text), body["text"],
                                  body.get("source", "<stdin>"))

    async def _delete(self, request: "web.Request") -> "web.Response":
        body = await request.json()
        return await self._answer(self._unless_labs(self.delete_text), body["text"],
                                  body.get("source", "<stdin>"))

    def _unless_labs(self, change):
        def guarded(*args):
            if self._labs_running.locked():
                raise ValueError("the labs are running on this mesh (bookinfo-labs labs): "
                                 "change it once they are done")
            return change(*args)
        return guarded

    async def _labs(self, request: "web.Request") -> "web.StreamResponse":
        """Run the features in this process against this mesh (``bookinfo-labs labs``),
        streaming pytest's output; the last line is ``EXIT_MARKER`` and pytest's status."""
        from aiohttp import web

        body = await request.json()
        if not self._labs_running.acquire(blocking=False):
            return web.json_response({"error": "the labs are already running on this mesh"},
                                     status=409)
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        sink = _Sink(lambda text: loop.call_soon_threadsafe(queue.put_nowait, text))

        def run() -> int:
            try:
                return run_labs(self.mesh, body["args"], body["report"], sink, self.own_config)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        try:
            running = asyncio.ensure_future(asyncio.to_thread(run))
            while (text := await queue.get()) is not None:
                await response.write(text.encode())
            status = await running
            await response.write(f"\n{EXIT_MARKER}{status}\n".encode())
        finally:
            self._labs_running.release()
        return response

    async def _curl(self, request: "web.Request") -> "web.Response":
        body = await request.json()
        return await self._answer(self.curl, body.get("from"), body["args"], body.get("cwd"))

    async def _proxy_config(self, request: "web.Request") -> "web.Response":
        return await self._answer(lambda: self.mesh.proxy_config(
            request.query["workload"], request.query["section"]))

    async def _proxy_status(self, request: "web.Request") -> "web.Response":
        from .local.xds import format_status

        return await self._answer(lambda: {"text": format_status(self.mesh.proxy_status())})

    # -- the verbs ------------------------------------------------------------------
    def apply_text(self, text: str, source: str) -> dict[str, Any]:
        """``kubectl apply -f``: validated, then applied all or nothing, as a lab applies."""
        from .manifests import check_release, parse_text, webhook_warnings

        manifests = parse_text(text, source)
        check_release(manifests, self.mesh.istio)
        before = self.mesh.owned_resources()
        keys = self.mesh.apply(manifests)
        lines = [f"{_kubectl_name(m)} {'configured' if k in before else 'created'}"
                 for m, k in zip(manifests, keys)]
        warnings = webhook_warnings(manifests) + self.mesh.warnings_for(manifests)
        return {"lines": lines, "warnings": warnings}

    def delete_text(self, text: str, source: str) -> dict[str, Any]:
        """``kubectl delete -f``: what exists is deleted; what does not is said, as kubectl does."""
        from .manifests import parse_text
        from .mesh import ResourceKey

        manifests = parse_text(text, source)
        owned = self.mesh.owned_resources()
        keys = [ResourceKey(m.kind, m.namespace or self.mesh.namespace, m.name) for m in manifests]
        self.mesh.delete([k for k in keys if k in owned])
        lines = [f"{_kubectl_name(m)} deleted" if k in owned else
                 f'Error from server (NotFound): {m.kind.lower()} "{m.name}" not found'
                 for m, k in zip(manifests, keys)]
        return {"lines": lines, "warnings": []}

    def curl(self, workload: str | None, args: list[str], cwd: str | None) -> dict[str, Any]:
        """A real curl inside ``workload`` (the client pod by default): its sidecar captures
        the connections, as ``kubectl exec deploy/<workload> -- curl ...``."""
        argv = ["curl", *self.mesh.curl_capture_for(workload or self.mesh.client()), *args]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=CURL_LIMIT_S,
                                  cwd=cwd if cwd and os.path.isdir(cwd) else None)
        except subprocess.TimeoutExpired as exc:
            from .mesh import MeshError

            raise MeshError(f"curl ran longer than {CURL_LIMIT_S:g} s; give it --max-time") from exc
        return {"stdout": base64.b64encode(done.stdout).decode(),
                "stderr": base64.b64encode(done.stderr).decode(), "exit_code": done.returncode}


#: how a labs run's output ends: this, then pytest's exit status
EXIT_MARKER = "@@bookinfo-labs labs exit "


class _Sink:
    """A text stream for pytest's terminal output that hands every write on."""

    def __init__(self, put) -> None:
        self._put = put
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        self._put(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def run_labs(mesh, args: list[str], report: str, out: _Sink, own_config: tuple[str, ...]) -> int:
    """pytest on the features, in this process, against ``mesh`` (plugin.RunningMesh): it
    neither starts a mesh nor closes this one. The labs expect what a fresh cluster has, as
    the plugin refuses a cluster holding lab config: the starter's own config is taken out
    for the run and put back; config a learner applied stops it, listed."""
    import contextlib
    import warnings

    import pytest

    from .manifests import MANIFESTS_ROOT, load_file
    from .mesh import ResourceKey
    from .plugin import RunningMesh

    own = [m for name in own_config for m in load_file(name)]
    own_keys = {ResourceKey(m.kind, m.namespace or mesh.namespace, m.name) for m in own}
    learners = sorted(mesh.owned_resources() - own_keys, key=str)
    if learners:
        out.write("bookinfo-labs labs: the labs start from a mesh without lab config; delete "
                  "what was applied by hand first (bookinfo-labs get, bookinfo-labs delete "
                  "-f FILE): " + ", ".join(str(k) for k in learners) + "\n")
        return int(pytest.ExitCode.USAGE_ERROR)
    root = MANIFESTS_ROOT.parent
    mesh.delete(sorted(own_keys & mesh.owned_resources(), key=str))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
                warnings.catch_warnings():
            # this process imported the plugin modules before (a first run, or up itself),
            # so pytest cannot rewrite their asserts (their messages say what failed
            # anyway); pytest's warnings plugin would report that at every run
            warnings.simplefilter("ignore", pytest.PytestAssertRewriteWarning)
            # sys capture (never fd: the process's descriptors are up's own); no
            # signal-based timeout off the main thread
            return int(pytest.main([
                *(args or [str(root / "features")]), "--rootdir", str(root),
                "-c", str(root / "pyproject.toml"), "--capture=sys", "--timeout=0",
                "--istio-version", mesh.istio.version, "--lab-report", report,
                "-p", "no:cacheprovider", "-p", "no:warnings"], plugins=[RunningMesh(mesh)]))
    finally:
        if own:
            mesh.apply(own)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


# -- the client ---------------------------------------------------------------------------

class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


class ControlClient:
    """Calls the running workshop mesh; every failure is a ControlError saying what to do."""

    def __init__(self, path: Path | None = None, timeout_s: float = CURL_LIMIT_S + 60):
        self.path = path or socket_path()
        self.timeout_s = timeout_s

    def call(self, method: str, route: str, body: dict | None = None) -> dict:
        connection = _UnixConnection(self.path, self.timeout_s)
        try:
            payload = None if body is None else json.dumps(body)
            connection.request(method, route, body=payload,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"no workshop mesh runs (nothing listens at {self.path}): start "
                            "one with `bookinfo-labs up` in another terminal") from None
        except OSError as exc:
            raise ControlError(f"the workshop mesh at {self.path} did not answer: {exc}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise ControlError(answer.get("error") or f"HTTP {response.status} from {route}")
        return answer

    def stream(self, route: str, body: dict, show) -> int:
        """POST ``body``; hand each line of the answer to ``show`` as it arrives; return the
        exit status its last line carries (a labs run)."""
        connection = _UnixConnection(self.path, None)
        try:
            connection.request("POST", route, body=json.dumps(body),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            if response.status != 200:
                answer = json.loads(response.read() or b"{}")
                raise ControlError(answer.get("error") or f"HTTP {response.status} from {route}")
            status = None
            for raw in response:
                line = raw.decode("utf-8", errors="replace")
                if line.startswith(EXIT_MARKER):
                    status = int(line[len(EXIT_MARKER):])
                else:
                    show(line)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"no workshop mesh runs (nothing listens at {self.path}): start "
                               "one with `bookinfo-labs up` in another terminal") from None
        finally:
            connection.close()
        if status is None:
            raise ControlError("the workshop mesh stopped before the labs ended")
        return status

    def get(self, route: str) -> dict:
        return self.call("GET", route)

    def post(self, route: str, body: dict) -> dict:
        return self.call("POST", route, body)
