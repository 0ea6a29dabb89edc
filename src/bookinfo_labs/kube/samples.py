"""The sample apps on a cluster: which manifests, which images per Istio release, rollouts.

A sample is the YAML under ``manifests/`` (the same files the local mesh reads), with the
image tags the selected Istio release ships (from the version table). Deploying is
idempotent: a sample whose Deployments are rolled out with a sidecar is left alone.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from ..mesh import MeshError, PodSummary
from ..samples import Placement, sample_objects
from ..versions import IstioVersion
from .api import KubeApi, KubeApiError, ResourceType
from .apply import SAMPLE_LABEL, Applier

DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments")
PODS = ResourceType("", "v1", "Pod", "pods")
NODES = ResourceType("", "v1", "Node", "nodes", namespaced=False)
NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", namespaced=False)
INJECTION_LABEL = "istio-injection"

Progress = Callable[[str], None]
NO_SIDECAR = "its pods have no istio-proxy sidecar"
EXTRA_SIDECAR = "its pods have an istio-proxy sidecar"


def rollout_state(dep: dict | None) -> str | None:
    """None when the Deployment is rolled out, else why not (kubectl rollout status' words)."""
    if dep is None:
        return "not created"
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return "waiting for the deployment spec update to be observed"
    updated = int(status.get("updatedReplicas") or 0)
    if updated < want:
        return f"{updated} of {want} updated replicas are available"
    if int(status.get("replicas") or 0) > updated:
        return f"{int(status.get('replicas') or 0) - updated} old replicas are pending termination"
    available = int(status.get("availableReplicas") or 0)
    if available < want:
        return f"{available} of {want} updated replicas are available"
    return None


def has_sidecar(pod: dict) -> bool:
    """istio-proxy as a container, or as a native sidecar init container (Istio >= 1.27)."""
    spec = pod.get("spec") or {}
    return any(c.get("name") == "istio-proxy"
               for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])])


def pod_summary(pod: dict) -> PodSummary:
    """Containers, native sidecars (init containers with restartPolicy Always) and READY as
    kubectl counts it: ready containers of all containers, native sidecars included."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    containers = tuple(c["name"] for c in spec.get("containers") or [])
    inits = spec.get("initContainers") or []
    native = tuple(c["name"] for c in inits if c.get("restartPolicy") == "Always")
    statuses = [*(status.get("containerStatuses") or []),
                *(s for s in status.get("initContainerStatuses") or [] if s.get("name") in native)]
    ready = sum(1 for s in statuses if s.get("ready"))
    return PodSummary((pod.get("metadata") or {}).get("name", ""), containers,
                      tuple(c["name"] for c in inits), native,
                      f"{ready}/{len(containers) + len(native)}")


def sample_deployments(name: str, istio: IstioVersion) -> list[str]:
    """The Deployment names of a sample app for an Istio release."""
    return [obj["metadata"]["name"] for _, obj in sample_objects(name, istio)
            if obj.get("kind") == "Deployment"]


def selector_of(dep: dict) -> str:
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class Samples:
    """Deploy sample apps and wait for their rollouts."""

    def __init__(self, api: KubeApi, applier: Applier, namespace: str, istio: IstioVersion,
                 timeout_s: float = 300.0, poll_s: float = 1.0):
        self.api = api
        self.applier = applier
        self.namespace = namespace
        self.istio = istio
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def deployments(self, name: str, placement: Placement | None = None) -> list[tuple[str, str]]:
        """(namespace, name) of the sample's Deployments: the labs' namespace unless the
        sample or the ``placement`` names another."""
        return [((obj.get("metadata") or {}).get("namespace") or self.namespace,
                 obj["metadata"]["name"])
                for _, obj in sample_objects(name, self.istio, placement=placement)
                if obj.get("kind") == "Deployment"]

    def missing(self, name: str) -> list[str]:
        """The sample's Deployments that do not exist."""
        return [d for ns, d in self.deployments(name) if self.api.get(DEPLOYMENTS, ns, d) is None]

    def not_ready(self, name: str, placement: Placement | None = None) -> dict[str, str]:
        """Deployment → why it is not serving yet (empty when the sample is ready). A pod
        in a namespace labelled for injection must have its sidecar; elsewhere (the
        external stand-in's namespace) it must not need one."""
        reasons = {}
        for namespace, dep_name in self.deployments(name, placement):
            dep = self.api.get(DEPLOYMENTS, namespace, dep_name)
            state = rollout_state(dep)
            wanted = self._wants_sidecar(namespace, placement)
            if state is None and wanted and not self._injected(dep):
                state = (f"{NO_SIDECAR} (is namespace {namespace} labelled "
                         "istio-injection=enabled?)")
            elif state is None and not wanted and self._injected(dep, any):
                state = f"{EXTRA_SIDECAR} (namespace {namespace} is not labelled for injection)"
            if state:
                reasons[f"{namespace}/{dep_name}"] = state
        return reasons

    def _wants_sidecar(self, namespace: str, placement: Placement | None = None) -> bool:
        if placement is not None and placement.namespace == namespace:
            return placement.injection().injected  # what the cluster's injector will decide
        if namespace == self.namespace:
            return True  # the labs' namespace is labelled when the cluster is provisioned
        ns = self.api.get(NAMESPACES, None, namespace) or {}
        return ((ns.get("metadata") or {}).get("labels") or {}).get(INJECTION_LABEL) == "enabled"

    def _injected(self, dep: dict, every: Callable[[Iterable[bool]], bool] = all) -> bool:
        """Whether its live pods have a sidecar: ``all`` of them, or with ``any``, one."""
        pods = self.api.list(PODS, dep["metadata"].get("namespace") or self.namespace,
                             selector_of(dep))
        live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
        return bool(live) and every(has_sidecar(p) for p in live)

    def deploy(self, name: str, progress: Progress | None = None,
               placement: Placement | None = None) -> bool:
        """Make the sample serve; False when it already did (nothing was changed)."""
        say = progress or (lambda _msg: None)
        reasons = self.not_ready(name, placement)
        if not reasons:
            say(f"{name}: already running")
            return False
        if placement is not None:  # the namespace first, shared by the samples placed in it
            self.applier.apply([self.applier.target(
                placement.namespace_object(), "(namespace)", {SAMPLE_LABEL: Placement.OWNER})],
                sample=Placement.OWNER)
        targets = [self.applier.target(obj, source, {SAMPLE_LABEL: name})
                   for source, obj in sample_objects(name, self.istio, placement=placement)]
        say(f"{name}: applying {len(targets)} objects")
        self.applier.apply(targets, sample=name)
        for dep, why in reasons.items():
            if why.startswith((NO_SIDECAR, EXTRA_SIDECAR)):
                say(f"{name}: restarting {dep}: {why}")
                self._restart(*dep.split("/", 1))
        self.wait(name, say, placement)
        return True

    def scale(self, namespace: str, dep_name: str, replicas: int) -> int:
        """``kubectl scale deployment/<name> --replicas=N``, then wait for the rollout and
        for exactly that many live pods; returns the replicas it had."""
        dep = self.api.get(DEPLOYMENTS, namespace, dep_name)
        if dep is None:
            raise MeshError(f"no Deployment {dep_name} in namespace {namespace} to scale")
        previous = int((dep.get("spec") or {}).get("replicas", 1))
        self.api.request("PATCH", DEPLOYMENTS.path(namespace, dep_name),
                         body={"spec": {"replicas": replicas}},
                         content_type="application/merge-patch+json")
        deadline = time.monotonic() + self.timeout_s
        while True:
            dep = self.api.get(DEPLOYMENTS, namespace, dep_name)
            pods = [p for p in self.api.list(PODS, namespace, selector_of(dep))
                    if not (p.get("metadata") or {}).get("deletionTimestamp")]
            state = rollout_state(dep) or (None if len(pods) == replicas else
                                           f"{len(pods)} pods, not {replicas}")
            if state is None:
                return previous
            if time.monotonic() > deadline:
                raise MeshError(f"deployment {namespace}/{dep_name} did not scale to {replicas} "
                                f"within {self.timeout_s:.0f} s ({state}); see `kubectl get "
                                f"pods -n {namespace}`")
            time.sleep(self.poll_s)

    def _restart(self, namespace: str, dep_name: str) -> None:
        patch = {"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}}}}
        self.api.request("PATCH", DEPLOYMENTS.path(namespace, dep_name), body=patch,
                         content_type="application/strategic-merge-patch+json")

    def wait(self, name: str, progress: Progress | None = None,
             placement: Placement | None = None) -> None:
        """Wait until every Deployment of the sample is rolled out with sidecars."""
        deadline = time.monotonic() + self.timeout_s
        last: dict[str, str] = {}
        while True:
            try:
                reasons = self.not_ready(name, placement)
            except KubeApiError as exc:
                reasons = {"(api)": exc.message}
            if not reasons:
                if progress:
                    progress(f"{name}: rolled out")
                return
            if reasons != last and progress:
                progress(f"{name}: " + "; ".join(f"{d}: {w}" for d, w in reasons.items()))
            last = reasons
            if time.monotonic() > deadline:
                detail = "; ".join(f"{d}: {w}" for d, w in reasons.items())
                raise MeshError(
                    f"sample {name} did not roll out within {self.timeout_s:.0f} s ({detail}); "
                    f"see `kubectl get pods -n {self.namespace}` and "
                    f"`kubectl get events -n {self.namespace}`"
                )
            time.sleep(self.poll_s)
