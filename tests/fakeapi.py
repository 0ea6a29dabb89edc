"""An in-process fake Kubernetes API server on 127.0.0.1, for testing the kube backend.

It serves just what KubeMesh calls, with the real wire formats, so the real kubernetes
client code runs end to end (kubeconfig loading, bearer auth, urllib3, JSON, the exec
websocket with its channel protocol):

- ``GET /version``; discovery ``GET /api/v1``, ``GET /apis/<group>/<version>``;
- objects of any kind: ``PATCH`` (server-side apply with ``fieldManager``,
  ``fieldValidation``, ``force``, ``dryRun``; merge patches), ``GET`` (one, or a list with
  ``labelSelector``, in a namespace or everywhere), ``DELETE`` (the object lingers with a
  ``deletionTimestamp`` for ``delete_lag`` reads, like a finalizer would keep it);
- pod ``exec`` (websocket, ``v5``/``v4.channel.k8s.io``) answered by ``exec_handler``, and
  pod ``log`` answered from ``pod_logs``.

Every request is recorded in ``requests`` for assertions. Not a general API server: no
watches, no field managers merging, no admission beyond ``unknown_fields`` (names that
strict field validation rejects) and ``deny`` (names an admission webhook denies).
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml
from aiohttp import web

from bookinfo_labs.kube.api import KNOWN_TYPES, ResourceType

TOKEN = "fake-token"
ExecHandler = Callable[[str, str, str, list[str]], tuple[bytes, bytes, int]]


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    content_type: str
    body: Any

    def q(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": message, "reason": reason,
                              "code": code}, status=code)


def _match(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if not term:
            continue
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term not in labels:
            return False
    return True


def _find_field(obj: Any, names: set[str], path: str = "") -> str | None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in names:
                return f"{path}.{key}"
            found = _find_field(value, names, f"{path}.{key}")
            if found:
                return found
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found = _find_field(value, names, f"{path}[{i}]")
            if found:
                return found
    return None


def _drop_fields(obj: Any, names: set[str]) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_fields(v, names) for k, v in obj.items() if k not in names}
    if isinstance(obj, list):
        return [_drop_fields(v, names) for v in obj]
    return obj


def _same_object(a: dict, b: dict) -> bool:
    """Equal but for what the server stamps on every write."""
    def content(obj: dict) -> dict:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k not in ("resourceVersion", "managedFields")}
        return {**obj, "metadata": meta}

    return content(a) == content(b)


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _merge(base.get(k), v)
        return out
    return copy.deepcopy(patch)


@dataclass
class FakeApiServer:
    served_groups: set[str] = field(default_factory=lambda: {
        "", "apps", "batch", "policy", "autoscaling", "rbac.authorization.k8s.io",
        "networking.istio.io", "security.istio.io", "telemetry.istio.io"})
    unknown_fields: set[str] = field(default_factory=lambda: {"wieght", "bogus"})
    deny: dict[str, str] = field(default_factory=dict)  # object name -> webhook message
    delete_lag: int = 2
    exec_handler: ExecHandler | None = None
    pod_logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    require_token: bool = True
    auto_rollout: bool = True  # an applied Deployment is rolled out at once, with a pod

    def __post_init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], dict] = {}
        self.requests: list[Recorded] = []
        self.namespaces: set[str] = {"default", "istio-system", "kube-system"}
        self._lag: dict[tuple[str, str, str, str], int] = {}
        self._lock = threading.Lock()
        self._rv = 100
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        for ns in sorted(self.namespaces):
            self.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeApiServer":
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-kube-api", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake API server did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def write_kubeconfig(self, path: str, context: str = "kind-bookinfo-labs") -> str:
        cluster = context.removeprefix("kind-")
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": cluster, "cluster": {"server": self.url}}],
            "users": [{"name": cluster, "user": {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": cluster}}],
        }
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(doc, fh)
        return path

    # -- seeding and inspection ----------------------------------------------------------
    def put(self, obj: dict) -> dict:
        """Store an object as if it had been created (kind looked up in the known table)."""
        group, _, _ = obj["apiVersion"].rpartition("/")
        rtype = KNOWN_TYPES[(group, obj["kind"])]
        meta = obj.setdefault("metadata", {})
        ns = meta.get("namespace", "default") if rtype.namespaced else ""
        if rtype.namespaced:
            meta["namespace"] = ns
        meta.setdefault("generation", 1)
        with self._lock:
            self._stamp(meta, bump_generation=False)
            self.objects[(group, rtype.plural, ns, meta["name"])] = obj
        return obj

    def get_object(self, group: str, plural: str, namespace: str, name: str) -> dict | None:
        return self.objects.get((group, plural, namespace, name))

    def add_deployment(self, name: str, *, labels: dict[str, str] | None = None,
                       namespace: str = "default", containers: list[str] | None = None,
                       ready: bool = True, image_tag: str = "1.26.0",
                       sidecar: bool = True, sample: str | None = None) -> None:
        """A Deployment and its one pod (``<name>-5d8f7c9b6d-x2k4p``); ``sample`` labels the
        Deployment as bookinfo-labs' own, part of that sample app."""
        labels = labels or {"app": name}
        ours = ({"app.kubernetes.io/managed-by": "bookinfo-labs", "bookinfo-labs.io/sample": sample}
                if sample else {})
        containers = containers or [name]
        images = {c: f"docker.io/istio/{c}:{image_tag}" for c in containers}
        replicas = 1
        self.put({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {**labels, **ours},
                         "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": c, "image": images[c]}
                                                          for c in containers]}}},
            "status": {"observedGeneration": 1, "replicas": replicas,
                       "updatedReplicas": replicas,
                       "readyReplicas": replicas if ready else 0,
                       "availableReplicas": replicas if ready else 0},
        })
        pod_containers = [{"name": c, "image": images[c]} for c in containers]
        if sidecar:
            pod_containers.append({"name": "istio-proxy",
                                   "image": f"docker.io/istio/proxyv2:{image_tag}"})
        self.put({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{name}-5d8f7c9b6d-x2k4p", "namespace": namespace,
                         "labels": dict(labels),
                         "annotations": {"kubectl.kubernetes.io/default-container": containers[0]}},
            "spec": {"containers": pod_containers, "nodeName": "bookinfo-labs-control-plane"},
            "status": {"phase": "Running" if ready else "Pending", "hostIP": "172.18.0.2",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [
                           {"name": c["name"], "ready": ready, "restartCount": 0,
                            "image": c["image"], "imageID": "", "started": ready}
                           for c in pod_containers]},
        })

    def requests_to(self, method: str, contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and contains in r.path]

    # -- request handling ------------------------------------------------------------------
    def _stamp(self, meta: dict, bump_generation: bool = True) -> None:
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        meta.setdefault("uid", f"uid-{self._rv}")
        meta.setdefault("creationTimestamp", "2026-11-21T10:00:00Z")
        if bump_generation:
            meta["generation"] = int(meta.get("generation") or 0) + 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = yaml.safe_load(raw)
        self.requests.append(Recorded(request.method, request.path,
                                      list(request.query.items()),
                                      request.headers.get("Content-Type", ""), body))
        if self.require_token and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized", "Unauthorized")
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return web.json_response({
                "major": "1", "minor": "32", "gitVersion": "v1.32.5", "gitCommit": "abc",
                "gitTreeState": "clean", "buildDate": "2025-05-20T00:00:00Z",
                "goVersion": "go1.23.8", "compiler": "gc", "platform": "linux/amd64"})
        if not parts or parts[0] not in ("api", "apis"):
            return _status(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            group, version, rest = "", parts[1] if len(parts) > 1 else "", parts[2:]
        else:
            if len(parts) < 3:
                return _status(404, "NotFound", "the server could not find the requested resource")
            group, version, rest = parts[1], parts[2], parts[3:]
        if group not in self.served_groups:
            return _status(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return self._discovery(group, version)
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, plural, tail = rest[1], rest[2], rest[3:]
        else:
            ns, plural, tail = "", rest[0], rest[1:]
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        if plural == "pods" and sub == "exec":
            return await self._exec(request, ns, name or "")
        if plural == "pods" and sub == "log":
            return self._log(request, ns, name or "")
        rtype = self._type(group, plural)
        if rtype is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        key = (group, plural, ns, name or "")
        with self._lock:
            if request.method == "GET" and name is None:
                return self._list(rtype, ns, request.query.get("labelSelector"))
            if request.method == "GET":
                return self._get(rtype, key)
            if request.method == "DELETE":
                return self._delete(rtype, key)
            if request.method == "PATCH":
                return self._patch(request, rtype, key, body)
        return _status(405, "MethodNotAllowed", f"{request.method} is not supported here")

    def _type(self, group: str, plural: str) -> ResourceType | None:
        for t in KNOWN_TYPES.values():
            if t.group == group and t.plural == plural:
                return t
        return None

    def _discovery(self, group: str, version: str) -> web.Response:
        resources = [{"name": t.plural, "kind": t.kind, "namespaced": t.namespaced,
                      "singularName": t.kind.lower(), "verbs": ["get", "list", "patch", "delete"]}
                     for t in KNOWN_TYPES.values() if t.group == group]
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                  "groupVersion": f"{group}/{version}" if group else version,
                                  "resources": resources})

    def _not_found(self, rtype: ResourceType, name: str) -> web.Response:
        what = f"{rtype.plural}.{rtype.group}" if rtype.group else rtype.plural
        return _status(404, "NotFound", f'{what} "{name}" not found')

    def _visible(self, key: tuple[str, str, str, str]) -> dict | None:
        obj = self.objects.get(key)
        if obj is None:
            return None
        if key in self._lag:
            self._lag[key] -= 1
            if self._lag[key] < 0:
                del self._lag[key]
                del self.objects[key]
                return None
        return obj

    def _get(self, rtype: ResourceType, key: tuple[str, str, str, str]) -> web.Response:
        obj = self._visible(key)
        if obj is None:
            return self._not_found(rtype, key[3])
        return web.json_response(obj)

    def _list(self, rtype: ResourceType, ns: str, selector: str | None) -> web.Response:
        items = []
        for key in sorted(self.objects):
            if key[0] != rtype.group or key[1] != rtype.plural or (ns and key[2] != ns):
                continue
            obj = self._visible(key)
            if obj is not None and _match((obj.get("metadata") or {}).get("labels") or {}, selector):
                items.append(obj)
        return web.json_response({"apiVersion": rtype.api_version, "kind": f"{rtype.kind}List",
                                  "metadata": {"resourceVersion": str(self._rv)}, "items": items})

    def _delete(self, rtype: ResourceType, key: tuple[str, str, str, str]) -> web.Response:
        obj = self._visible(key)
        if obj is None:
            return self._not_found(rtype, key[3])
        obj["metadata"]["deletionTimestamp"] = "2026-11-21T10:05:00Z"
        if self.delete_lag > 0:
            self._lag[key] = self.delete_lag
        else:
            del self.objects[key]
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                  "details": {"name": key[3], "kind": rtype.plural}})

    def _patch(self, request: web.Request, rtype: ResourceType,
               key: tuple[str, str, str, str], body: Any) -> web.Response:
        ctype = request.headers.get("Content-Type", "")
        group, plural, ns, name = key
        if rtype.namespaced and ns not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{ns}" not found')
        existing = self._visible(key)
        if ctype.startswith("application/apply-patch"):
            if not request.query.get("fieldManager"):
                return _status(400, "BadRequest", "PATCH for apply requires fieldManager")
            if not isinstance(body, dict) or body.get("kind") != rtype.kind:
                return _status(400, "BadRequest", "the body of an apply patch must be the object")
            if request.query.get("fieldValidation") == "Strict":
                bad = _find_field(body, self.unknown_fields)
                if bad:
                    return _status(400, "BadRequest", f"{bad}: field not declared in schema")
            else:
                body = _drop_fields(body, self.unknown_fields)
            if name in self.deny:
                return _status(400, "BadRequest",
                               f'admission webhook "validation.istio.io" denied the request: '
                               f"{self.deny[name]}")
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if existing is not None:
                for k in ("uid", "creationTimestamp", "generation"):
                    if k in existing["metadata"]:
                        meta[k] = existing["metadata"][k]
                if "status" in existing:
                    obj["status"] = existing["status"]
            meta["managedFields"] = [{"manager": request.query["fieldManager"],
                                      "operation": "Apply"}]
        elif existing is None:
            return self._not_found(rtype, name)
        else:
            obj = _merge(existing, body)
        if ns:
            obj["metadata"]["namespace"] = ns
        if request.query.get("dryRun") == "All":
            return web.json_response(obj)
        if existing is not None and _same_object(obj, existing):
            # a no-op apply: the API server keeps the resourceVersion, nothing is pushed
            return web.json_response(existing)
        self._stamp(obj["metadata"])
        self.objects[key] = obj
        if rtype.kind == "Namespace":
            self.namespaces.add(name)
        if rtype.kind == "Deployment" and self.auto_rollout:
            self._roll_out(obj)
        return web.json_response(obj, status=200 if existing is not None else 201)

    def _roll_out(self, dep: dict) -> None:
        """What the deployment controller and the sidecar injector would do, at once."""
        meta, spec = dep["metadata"], dep.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        dep["status"] = {"observedGeneration": meta["generation"], "replicas": replicas,
                         "updatedReplicas": replicas, "readyReplicas": replicas,
                         "availableReplicas": replicas}
        template = spec.get("template") or {}
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        containers = [dict(c) for c in (template.get("spec") or {}).get("containers") or []]
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.26.0"})
        ns, name = meta["namespace"], meta["name"]
        for key in [k for k in self.objects if k[:3] == ("", "pods", ns)
                    and k[3].startswith(f"{name}-")]:
            del self.objects[key]
        pod_name = f"{name}-{meta['generation']:x}6f7c9b6d-x2k4p"
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": ns, "labels": labels,
                            "annotations": {"kubectl.kubernetes.io/default-container":
                                            containers[0]["name"]}},
               "spec": {"containers": containers},
               "status": {"phase": "Running", "hostIP": "172.18.0.2",
                          "conditions": [{"type": "Ready", "status": "True"}],
                          "containerStatuses": [{"name": c["name"], "ready": True,
                                                 "restartCount": 0, "image": c.get("image", ""),
                                                 "imageID": "", "started": True}
                                                for c in containers]}}
        self._stamp(pod["metadata"], bump_generation=False)
        self.objects[("", "pods", ns, pod_name)] = pod

    def _log(self, request: web.Request, ns: str, name: str) -> web.Response:
        key = ("", "pods", ns, name)
        if key not in self.objects:
            return _status(404, "NotFound", f'pods "{name}" not found')
        text = self.pod_logs.get((ns, name, request.query.get("container", "")), "")
        return web.Response(text=text, content_type="text/plain")

    async def _exec(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        pod = self.objects.get(("", "pods", ns, name))
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found')
        container = request.query.get("container", "")
        names = [c["name"] for c in pod["spec"]["containers"]]
        if container not in names:
            return _status(400, "BadRequest",
                           f"container {container} is not valid for pod {name}")
        if request.query.get("tty") == "true":
            return _status(400, "BadRequest", "this fake refuses a TTY: the backend must not ask")
        command = request.query.getall("command", [])
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        handler = self.exec_handler or (lambda *_: (b"", b"no exec handler\n", 127))
        loop = asyncio.get_running_loop()
        stdout, stderr, code = await loop.run_in_executor(None, handler, ns, name, container,
                                                          command)
        for channel, data in ((1, stdout), (2, stderr)):
            for i in range(0, len(data), 4096):  # several frames, like the real server
                await ws.send_bytes(bytes([channel]) + data[i:i + 4096])
        if code == 0:
            status = {"metadata": {}, "status": "Success"}
        else:
            status = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: exit code {code}",
                      "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll a predicate (for tests of background behaviour)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
