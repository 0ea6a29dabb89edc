"""The emulated cluster's controllers: what istiod and the kubelet do with API objects.

- ``Istiod``: the validating webhook (``validation.istio.io``) and the CRDs' schemas at
  admission; then, after a write, a debounced push of the API's Istio objects (and the
  gateways' credentials: the Secrets of istio-system) to the local control plane, which
  hands them to the real Envoys over ADS. The API answers before the push, as on a
  cluster: config reaches the sidecars asynchronously.
- ``Workloads``: the Deployment controller, the sidecar injector and the kubelet in one.
  A Deployment's replicas start as local pods, behind their Envoys in a namespace labelled
  for injection, without one elsewhere; a Service joins the registry; Pod objects and
  Deployment status then say so; the Secrets and ConfigMaps a pod's volumes name are
  mounted. A gateway's Deployment (its container is the proxy
  image) starts as Envoy alone in any namespace, and its NodePort
  Service gets as nodePorts the ports of this machine the local mesh bound it on (the API
  server's allocation and kube-proxy's node port in one). Pods are not restarted when a
  template changes and deleted Deployments keep their pods (no lab does either).

Both take watch events on the API server's thread and only enqueue; the work runs on
their own thread.
"""

from __future__ import annotations

import logging
import re
import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any

import yaml

from bookinfo_labs.istio import releases
from bookinfo_labs.istio.base import FieldError
from bookinfo_labs.istio.registry import parse_resource
from bookinfo_labs.kube.api import ISTIO_TYPES
from bookinfo_labs.local import LocalMesh
from bookinfo_labs.local.pilot import meshconfig
from bookinfo_labs.local.registry import Pod
from bookinfo_labs.manifests import Manifest, ManifestError, manifest_from_object
from bookinfo_labs.mesh import ResourceKey
from bookinfo_labs.versions import IstioVersion

log = logging.getLogger(__name__)

ISTIO_GROUPS = frozenset({"networking.istio.io", "security.istio.io", "telemetry.istio.io"})
#: istiod serves a gateway the Secrets of the gateway's own namespace (xds/sds.go)
GATEWAY_NAMESPACE = "istio-system"
#: istiod waits this long after a change for more before it pushes (PILOT_DEBOUNCE_AFTER),
#: and no longer than the maximum in all (PILOT_DEBOUNCE_MAX); docs/facts.md#istiod-push-debounce
DEBOUNCE_S = 0.1
DEBOUNCE_MAX_S = 10.0
INJECTION_LABEL = "istio-injection"
#: istiod's Deployment (namespace, name): the install's, run by the Istiod controller
ISTIOD = ("istio-system", "istiod")
#: the ConfigMap istiod reads its mesh config from (namespace, name)
MESH_CONFIG = ("istio-system", "istio")
NODE_NAME = "bookinfo-labs-emulated"


def group_of(obj: dict) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[0]


def spec_object(obj: dict) -> dict:
    """The object as a manifest states it: no server-owned metadata, no status."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": kept,
            **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata", "status")}}


def source_of(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


class Istiod:
    """Admission for Istio objects, and the push of the API's Istio config to the mesh."""

    def __init__(self, api, mesh: LocalMesh, istio: IstioVersion):
        self.api = api
        self.mesh = mesh
        self.istio = istio
        self.pushed: dict[ResourceKey, str] = {}  # what the mesh has: key -> resourceVersion
        self.mesh_config = meshconfig.demo_mesh_config(istio)  # the mesh's, as last pushed
        self.errors: list[str] = []  # pushes the mesh refused (a NACK), newest last
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="emulated-istiod", daemon=True)

    def start(self) -> "Istiod":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join(30)

    # -- admission -------------------------------------------------------------------
    def unknown_fields(self, obj: dict) -> list[str]:
        """Fields the CRD's schema (of the selected release) does not declare."""
        if group_of(obj) not in ISTIO_GROUPS:
            return []
        try:
            model = parse_resource(spec_object(obj))
        except FieldError as exc:
            # "unknown field 'wieght' (allowed here: ...)" at the parent's path
            unknown = re.match(r"unknown field '([^']+)'", exc.message)
            return [f".{exc.path}.{unknown.group(1)}"] if unknown else []
        try:
            releases.check_release(obj.get("kind", ""), model, self.istio.minor)
        except FieldError as exc:
            # A field added in a later release is not in this release's CRD schema; a later
            # enum value is (the webhook refuses it instead).
            if not exc.message.startswith("the value"):
                return [f".{exc.path}"]
        return []

    def admission(self, operation: str, obj: dict, old: dict | None, dry_run: bool) -> str | None:
        """The webhook's answer: None admits, a message denies."""
        if operation == "DELETE" or group_of(obj) not in ISTIO_GROUPS:
            return None
        try:
            manifest = manifest_from_object(spec_object(obj), source_of(obj))
            releases.check_release(manifest.kind, manifest.model, self.istio.minor)
        except ManifestError as exc:
            return f"configuration is invalid: {_where(exc)}{exc.reason}"
        except FieldError as exc:
            return f"configuration is invalid: {exc.path}: {exc.message}"
        try:
            self.mesh.check_supported(manifest)
        except ManifestError as exc:
            # Not Istio's answer: the emulation cannot run what its istiod cannot translate.
            return (f"the emulated cluster's istiod (bookinfo-labs' local control plane) "
                    f"cannot translate it: {_where(exc)}{exc.reason}")
        return None

    # -- the push --------------------------------------------------------------------
    def on_event(self, event: str, obj: dict) -> None:
        if group_of(obj) in ISTIO_GROUPS or _is_mesh_config(obj) or _gateway_secret(obj):
            self._idle.clear()
            self._dirty.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once every change seen has been pushed (tests of the emulation use it)."""
        return self._idle.wait(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            # Debounce: keep waiting while changes keep coming, up to a maximum, as istiod does.
            self._dirty.clear()
            first = time.monotonic()
            while (self._dirty.wait(DEBOUNCE_S) and not self._stop.is_set()
                   and time.monotonic() - first < DEBOUNCE_MAX_S):
                self._dirty.clear()
            try:
                self._push()
            except Exception as exc:  # noqa: BLE001 - istiod logs and tries again
                log.exception("emulated istiod: push failed; trying again in 1 s")
                self.errors.append(str(exc))
                if not self._stop.wait(1.0):
                    self._dirty.set()
                continue
            if not self._dirty.is_set():
                self._idle.set()

    def _push_mesh_config(self) -> None:
        """The mesh config istiod reads from its ConfigMap: each top-level field that differs
        from what the control plane has is handed to it."""
        configmap = self.api.get_object("", "configmaps", *MESH_CONFIG) or {}
        mesh = meshconfig.effective(
            yaml.safe_load((configmap.get("data") or {}).get("mesh") or "") or {})
        changes = {key: mesh.get(key) for key in set(mesh) | set(self.mesh_config)
                   if mesh.get(key) != self.mesh_config.get(key)}
        if changes:
            self.mesh.set_mesh_config(changes)
            self.mesh_config = mesh

    def _desired(self) -> dict[ResourceKey, dict]:
        wanted: dict[ResourceKey, dict] = {}
        for rtype in ISTIO_TYPES:
            group, kind = rtype.group, rtype.kind
            for obj in self.api.list_objects(group, rtype.plural):
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    wanted[ResourceKey(kind, meta.get("namespace", ""), meta["name"])] = obj
        for obj in self.api.list_objects("", "secrets", GATEWAY_NAMESPACE):  # credentials
            if not obj["metadata"].get("deletionTimestamp"):
                wanted[ResourceKey("Secret", GATEWAY_NAMESPACE, obj["metadata"]["name"])] = obj
        return wanted

    def _push(self) -> None:
        self._push_mesh_config()
        desired = self._desired()
        gone = [key for key in self.pushed if key not in desired]
        changed = {key: obj for key, obj in desired.items()
                   if self.pushed.get(key) != obj["metadata"]["resourceVersion"]}
        if gone:
            self.mesh.delete(gone)
            for key in gone:
                self.pushed.pop(key, None)
        if changed:
            manifests: list[Manifest] = [manifest_from_object(spec_object(obj), source_of(obj))
                                         for obj in changed.values()]
            try:
                self.mesh.apply(manifests)
            except ManifestError as exc:
                # A NACK: the sidecars keep their previous config, istiod keeps the object.
                log.warning("emulated istiod: the sidecars rejected the push: %s", exc)
                self.errors.append(str(exc))
            for key, obj in changed.items():
                self.pushed[key] = obj["metadata"]["resourceVersion"]


def _is_mesh_config(obj: dict) -> bool:
    meta = obj.get("metadata") or {}
    return obj.get("kind") == "ConfigMap" and meta.get("namespace") == MESH_CONFIG[0] \
        and meta.get("name") == MESH_CONFIG[1]


def _gateway_secret(obj: dict) -> bool:
    return obj.get("kind") == "Secret" and \
        (obj.get("metadata") or {}).get("namespace") == GATEWAY_NAMESPACE


def _where(exc: ManifestError) -> str:
    return f"{exc.path}: " if exc.path else ""


class Workloads:
    """Deployments and Services become local pods and registry entries."""

    def __init__(self, api, mesh: LocalMesh, istio: IstioVersion):
        self.api = api
        self.mesh = mesh
        self.istio = istio
        self.started: dict[tuple[str, str], list[Pod]] = {}  # (namespace, deployment) -> pods
        self._templates: dict[tuple[str, str], dict] = {}  # the pod template they run
        self._services: set[tuple[str, str]] = set()
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="emulated-kubelet", daemon=True)

    def start(self) -> "Workloads":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(60)

    def on_event(self, event: str, obj: dict) -> None:
        if event != "DELETED" and obj.get("kind") in ("Deployment", "Service"):
            self._queue.put(obj)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while not self._queue.empty():  # a sample's objects arrive together
                item = self._queue.get()
                if item is None:
                    return
                batch.append(item)
            try:
                self._reconcile(batch)
            except Exception:  # noqa: BLE001 - a controller logs and goes on
                log.exception("emulated kubelet: could not start %s",
                              ", ".join(source_of(o) for o in batch))

    def _reconcile(self, batch: list[dict]) -> None:
        services = []
        for obj in batch:
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if obj["kind"] == "Service" and key not in self._services:
                self._services.add(key)
                services.append(manifest_from_object(spec_object(obj), source_of(obj)))
        new, seen = [], set()
        for obj in batch:
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            if obj["kind"] != "Deployment" or key in seen:
                continue
            seen.add(key)
            if key in self.started and self._templates.get(key) != obj["spec"]["template"]:
                self._roll_out(key)  # a changed pod template (kubectl rollout restart)
            if key in self.started:
                self._scale(key, obj)
                self._observe(obj)
            elif key != ISTIOD:  # istiod's pod is the Istiod controller above
                new.append(obj)
        if not services and not new:
            return
        # the injector's answer per namespace: the local mesh starts a sidecar where asked
        namespaces = {o["metadata"].get("namespace", "") for o in new}
        manifests = [manifest_from_object(self._namespace(n), f"Namespace/{n}") for n in namespaces]
        manifests += services + [manifest_from_object(spec_object(o), source_of(o)) for o in new]
        pods = self.mesh.start_objects(manifests + self._mounted(new))
        for obj in new:
            meta = obj["metadata"]
            mine = [p for p in pods if p.deployment == meta["name"]
                    and p.namespace == meta.get("namespace")]
            self.started[(meta.get("namespace", ""), meta["name"])] = mine
            self._templates[(meta.get("namespace", ""), meta["name"])] = obj["spec"]["template"]
            for pod in mine:
                self.api.create(self._pod_object(obj, pod))
                if pod.host_ports:
                    self._publish_node_ports(pod)
            self._observe(obj)

    def _roll_out(self, key: tuple[str, str]) -> None:
        """The old pods go (out of the endpoints, their processes stopped, their objects
        deleted); the Deployment then starts anew, with what its namespace asks now."""
        old = self.started.pop(key)
        self.mesh.stop_pods(old)
        for pod in old:
            self.api.remove("", "pods", pod.namespace, pod.name)

    def _scale(self, key: tuple[str, str], dep: dict) -> None:
        """``spec.replicas`` changed (kubectl scale): pods go or start, as the kubelet runs
        them, and their objects follow."""
        want = int(dep["spec"].get("replicas", 1))
        running = self.started[key]
        if want == len(running):
            return
        _, new = self.mesh.scale_deployment(key[0], key[1], want)
        for pod in running[want:]:
            self.api.remove("", "pods", pod.namespace, pod.name)
        self.started[key] = running[:want] + new
        for pod in new:
            self.api.create(self._pod_object(dep, pod))

    def _publish_node_ports(self, pod: Pod) -> None:
        """Each NodePort Service port selecting ``pod`` gets the machine's port its
        targetPort is bound on as its nodePort."""
        for service in self.api.list_objects("", "services"):
            meta, spec = service["metadata"], service.get("spec") or {}
            selector = spec.get("selector") or {}
            if meta.get("namespace") != pod.namespace or spec.get("type") != "NodePort" \
                    or not selector or not pod.matches(selector):
                continue

            def allocate(obj: dict) -> None:
                for port in obj["spec"]["ports"]:
                    bound = pod.host_ports.get(int(port.get("targetPort", port["port"])))
                    if bound is not None:
                        port["nodePort"] = bound

            self.api.mutate("", "services", pod.namespace, meta["name"], allocate)

    def _mounted(self, deployments: list[dict]) -> list[Manifest]:
        """The Secrets and ConfigMaps the new pods' volumes name, which the kubelet mounts."""
        found = []
        for dep in deployments:
            namespace = dep["metadata"].get("namespace", "")
            for volume in (dep["spec"]["template"].get("spec") or {}).get("volumes") or []:
                for field, plural, key in (("secret", "secrets", "secretName"),
                                           ("configMap", "configmaps", "name")):
                    obj = self.api.get_object("", plural, namespace, volume[field].get(key)) \
                        if field in volume else None
                    if obj is not None:
                        found.append(manifest_from_object(spec_object(obj), source_of(obj)))
        return found

    def _namespace(self, name: str) -> dict:
        ns = self.api.get_object("", "namespaces", "", name) or {}
        labels = (ns.get("metadata") or {}).get("labels") or {}
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(labels)}}

    def _observe(self, dep: dict) -> None:
        """Deployment status: the current generation observed, its pods ready."""
        meta = dep["metadata"]
        current = self.api.get_object("apps", "deployments", meta.get("namespace", ""), meta["name"])
        if current is None:
            return
        ready = len(self.started.get((meta.get("namespace", ""), meta["name"]), []))
        self.api.update_status("apps", "deployments", meta.get("namespace", ""), meta["name"], {
            "observedGeneration": current["metadata"].get("generation", 1), "replicas": ready,
            "updatedReplicas": ready, "readyReplicas": ready, "availableReplicas": ready})

    def _pod_object(self, dep: dict, pod: Pod) -> dict[str, Any]:
        template = dep["spec"]["template"]
        spec = template.get("spec") or {}
        containers = [dict(c) for c in spec.get("containers") or []]
        if pod.injected:  # the injected sidecar; a gateway pod is the proxy
            containers.append({"name": "istio-proxy",
                               "image": f"docker.io/istio/proxyv2:{self.istio.patch}"})
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace,
                         "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                         "annotations": {"kubectl.kubernetes.io/default-container":
                                         containers[0]["name"]}},
            "spec": {"containers": containers, "nodeName": NODE_NAME,
                     "serviceAccountName": spec.get("serviceAccountName", "default")},
            "status": {"phase": "Running", "podIP": pod.ip, "hostIP": "127.0.0.1",
                       "startTime": now,
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": c["name"], "ready": True, "started": True,
                                              "restartCount": 0, "image": c.get("image", ""),
                                              "imageID": ""} for c in containers]},
        }
