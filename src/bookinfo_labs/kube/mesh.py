"""KubeMesh: the Mesh verbs against a real cluster with Istio (kind, or a named context).

- apply: server-side apply, ``fieldValidation=Strict``, every object labelled as ours;
  a dry run of the whole batch first, so a rejected object leaves nothing applied.
- delete / owned_resources: only objects with our label; delete waits until gone.
- send: ONE exec in the client pod runs the whole batch in one curl process
  (``curlbatch``), cookie jars kept in the pod; load: ``fortio load -json -``.
- logs, proxy_stats (``pilot-agent request GET stats`` in ``istio-proxy``).
- after an apply, a cheap propagation gate: the client sidecar's config dump mentions
  the VirtualServices and DestinationRules just applied (the behaviour poll of the
  eventually primitive stays the real gate).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from .. import curlbatch
from ..loadgen import LoadResult
from ..manifests import Manifest
from ..mesh import HttpRequest, HttpResponse, Mesh, MeshError, ResourceKey
from ..proxyconfig import SECTIONS
from ..rundir import make_run_dir
from ..samples import Placement
from ..tracing import Trace, from_jaeger, jaeger_query_url
from ..versions import IstioVersion
from . import diagnostics
from .addons import PROMETHEUS_URL
from .api import (GATEWAY_API_TYPES, ISTIO_TYPES, TYPES_BY_KIND, KubeApi, KubeApiError,
                  api_error, kube_contexts, load_api_client)
from .apply import Applier, Target
from .batch import batch_command
from .context import (check_kind_nodes, check_kind_server, fix_hint, is_kind_context,
                      resolve_context)
from .exec import ExecResult, PodExec
from .fortio import load_argv, result_of
from .istioctl import Istioctl, find_istioctl
from .samples import DEPLOYMENTS, NODES, PODS, Samples, sample_deployments, selector_of
from .stats import STATS_COMMAND, parse_stats

log = logging.getLogger(__name__)

#: built-in kinds the labs apply as config (a gateway's credentials): listed with the
#: Istio kinds, so what a killed run left is found by the next one
LAB_BUILTIN_TYPES = (TYPES_BY_KIND["Secret"],)
ISTIO_NAMESPACE = "istio-system"
INGRESS_SERVICE = "istio-ingressgateway"
MESH_CONFIGMAP = "istio"
#: the demo profile's gateways, found in istio-system by their bare name
_GATEWAYS = ("istio-ingressgateway", "istio-egressgateway")
SIDECAR = "istio-proxy"


class KubeMesh(Mesh):
    name = "kube"
    poll_interval_s = 0.5

    def __init__(self, *, context: str, api_client: client.ApiClient,
                 exec_client: client.ApiClient, istio: IstioVersion,
                 namespace: str = "default", propagation_timeout_s: float = 10.0):
        self.context = context
        self.istio = istio
        self.namespace = namespace
        self.api_client = api_client
        self.exec_client = exec_client
        self.api = KubeApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.applier = Applier(self.api, namespace)
        self.samples = Samples(self.api, self.applier, namespace, istio)
        self.executor = PodExec(exec_client)
        self.propagation_timeout_s = propagation_timeout_s
        self.propagation_poll_s = 0.5
        self._applied: dict[ResourceKey, Target] = {}
        self._host_dir: Path | None = None  # cookie jars of the curl on this machine
        self._closed = False

    # -- connecting ------------------------------------------------------------------
    @classmethod
    def connect(cls, *, context: str | None, allow_any_context: bool, istio: IstioVersion,
                namespace: str = "default", kubeconfig: str | None = None,
                timeout_s: float = 3.0, emulated: bool = False) -> "KubeMesh":
        """Check, in order, the context guard, the cluster, Istio and the sample apps.

        Each failure is a MeshError of one line naming what fixes it. The checks use
        short timeouts, so a run without a cluster stops at once.
        """
        ctx = resolve_context(context, allow_any_context, emulated)
        hint = fix_hint(ctx)
        unreachable = f"no cluster reachable at context {ctx}: {hint}"
        if ctx not in kube_contexts(kubeconfig):
            raise MeshError(unreachable)
        try:
            # The quick checks use their own client with no retries, so a run without a
            # cluster stops at once. urllib3 reads ``retries`` when the ApiClient builds its
            # pool, so the run's clients are made afresh afterwards, never re-configured.
            probe = load_api_client(ctx, kubeconfig, retries=0)
        except (ConfigException, OSError, ValueError) as exc:
            raise MeshError(f"{unreachable} ({exc})") from None
        try:
            check_nodes = check_kind_server(ctx, probe.configuration.host, allow_any_context,
                                            emulated)
            cls._check_cluster(KubeApi(probe, timeout_s=timeout_s), context=ctx, istio=istio,
                               namespace=namespace, unreachable=unreachable, hint=hint,
                               check_nodes=check_nodes, emulated=emulated)
        finally:
            probe.close()
        return cls(context=ctx, api_client=load_api_client(ctx, kubeconfig, retries=1),
                   exec_client=load_api_client(ctx, kubeconfig, retries=1), istio=istio,
                   namespace=namespace)

    @staticmethod
    def _check_cluster(api: KubeApi, *, context: str, istio: IstioVersion, namespace: str,
                       unreachable: str, hint: str, check_nodes: bool,
                       emulated: bool = False) -> None:
        """The cluster answers, is a kind cluster if it must be, runs the expected Istio,
        and has the samples; each failure is one line naming what fixes it."""
        try:
            api.request("GET", "/version")
        except KubeApiError as exc:
            if exc.status in (401, 403):
                raise MeshError(f"the cluster at context {context} refused our "
                                f"credentials ({exc.message})") from None
            raise MeshError(unreachable) from None
        if check_nodes:
            try:
                nodes = api.list(NODES)
            except KubeApiError as exc:
                raise MeshError(f"cannot list the nodes at context {context} to check it is a "
                                f"kind cluster: {exc.message}") from None
            check_kind_nodes(context, nodes, emulated)
        try:
            istiod = api.get(DEPLOYMENTS, ISTIO_NAMESPACE, "istiod")
        except KubeApiError as exc:
            raise MeshError(f"cannot check Istio at context {context}: {exc.message}") from None
        if istiod is None:
            raise MeshError(f"Istio is not installed at context {context} (no istiod "
                            f"Deployment in {ISTIO_NAMESPACE}): {hint}")
        found = installed_istio_version(istiod)
        if found and ".".join(found.split(".")[:2]) != istio.version:
            raise MeshError(
                f"the cluster at context {context} runs Istio {found} but the labs "
                f"expect {istio.version}: pass --istio-version {'.'.join(found.split('.')[:2])}, "
                f"or recreate it with `make kind-down kind-up ISTIO_VERSION={istio.version}`"
            )
        try:
            names = {d["metadata"]["name"] for d in api.list(DEPLOYMENTS, namespace)}
        except KubeApiError as exc:
            raise MeshError(f"cannot list the Deployments in namespace {namespace} at "
                            f"context {context}: {exc.message}") from None
        for sample in ("bookinfo", istio.client):
            missing = [d for d in sample_deployments(sample, istio) if d not in names]
            if missing:
                raise MeshError(f"sample app {sample} is not deployed in namespace "
                                f"{namespace} at context {context} (missing "
                                f"{', '.join(missing)}): {hint}")

    # -- lifecycle -------------------------------------------------------------------
    def deploy(self, sample: str, placement: Placement | None = None) -> None:
        self.samples.deploy(sample, lambda msg: log.info("%s", msg), placement)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for api_client in (self.api_client, self.exec_client):
            try:
                api_client.close()
            except Exception:  # noqa: BLE001 - closing twice or a dead pool is fine
                pass
        if self._host_dir is not None:
            shutil.rmtree(self._host_dir, ignore_errors=True)

    # -- configuration ---------------------------------------------------------------
    def apply(self, manifests: list[Manifest]) -> list[ResourceKey]:
        targets = [self.applier.target(m.raw, m.source) for m in manifests]
        watched = self._watchers(targets)
        before = {who: self._proxy_config(who) for who in watched}
        keys = self.applier.apply(targets)
        for t in targets:
            self._applied[t.key] = t
        for who, ts in watched.items():
            wanted = [t for t in ts if t.key in self.applier.changed]
            snapshot = before[who]
            if wanted and snapshot is not None:
                self._await_propagation(
                    who, f"{', '.join(t.describe() for t in wanted)} to reach it",
                    lambda config, wanted=wanted, snapshot=snapshot:
                        config.digest != snapshot.digest and all(
                            diagnostics.has_config(config.refs, t.rtype.kind, t.namespace, t.name)
                            for t in wanted))
        return keys

    def delete(self, keys: Iterable[ResourceKey]) -> None:
        keys = list(keys)
        # Only the client's routes are waited on: a gateway drains a removed listener, and
        # keeps the routes it had until then (RDS has no removal in Envoy's state of the
        # world), so its config still names what was deleted for the drain's duration.
        watched = self.client() if any(k.kind in diagnostics.CONFIG_KINDS for k in keys) else None
        before = {watched: self._proxy_config(watched)} if watched else {}
        self.applier.delete(keys)
        for key in keys:
            self._applied.pop(key, None)
        for who, snapshot in before.items():
            gone = [k for k in keys if snapshot is not None
                    and diagnostics.has_config(snapshot.refs, k.kind, k.namespace, k.name)]
            if gone:
                self._await_propagation(
                    who, f"{', '.join(str(k) for k in gone)} to leave it",
                    lambda config, gone=gone: not any(
                        diagnostics.has_config(config.refs, k.kind, k.namespace, k.name)
                        for k in gone))

    def _watchers(self, targets: list[Target]) -> dict[str, list[Target]]:
        """Whose config shows each target: the client sidecar's for what is bound to the
        mesh, the ingress gateway's for a VirtualService bound to Gateways only."""
        out: dict[str, list[Target]] = {}
        for t in targets:
            if _visible_to_sidecars(t):
                out.setdefault(self.client(), []).append(t)
            elif _bound_to_gateways_only(t):
                out.setdefault(INGRESS_SERVICE, []).append(t)
        return out

    def owned_resources(self) -> set[ResourceKey]:
        session_types = set(self.applier.types.values())
        return self.applier.list_owned([*ISTIO_TYPES, *GATEWAY_API_TYPES, *LAB_BUILTIN_TYPES,
                                        *session_types])

    def warnings_for(self, manifests: list[Manifest]) -> list[str]:
        istioctl = self._istioctl()
        if istioctl is None:
            return []
        try:
            text = istioctl.analyze(self.namespace)
        except MeshError:
            return []
        names = {m.name for m in manifests}
        return [line.strip() for line in text.splitlines()
                if line.startswith(("Error", "Warning", "Info"))
                and any(f" {n}." in line or f"/{n}" in line for n in names)]

    def _await_propagation(self, workload: str, what: str,
                           arrived: Callable[[diagnostics.ProxyConfig], bool]) -> None:
        """Wait until the proxy of ``workload`` shows a change (apply or delete).

        istiod pushes to each proxy in its own time: without this gate the first batch
        after an apply may still run on the old routes. The gate compares with a snapshot
        taken before the change, so a re-applied name or a name the previous scenario
        deleted is not taken for the new config. A timeout is logged and this change left
        to the behaviour checks; the next change is gated again.
        """
        deadline = time.monotonic() + self.propagation_timeout_s
        while True:
            config = self._proxy_config(workload)
            if config is None or arrived(config):
                return
            if time.monotonic() > deadline:
                log.warning("the %s proxy's config did not change within %.0f s, waiting for "
                            "%s; the behaviour checks decide", workload,
                            self.propagation_timeout_s, what)
                return
            time.sleep(self.propagation_poll_s)

    def _proxy_config(self, workload: str) -> diagnostics.ProxyConfig | None:
        """A proxy's routes and clusters (None when they cannot be read)."""
        try:
            pod = self._pod(workload)
            dumps = []
            for command in (diagnostics.ROUTES_DUMP, diagnostics.CLUSTERS_DUMP):
                run = self._exec(pod, SIDECAR, command, 30)
                if run.exit_code != 0:
                    raise MeshError(f"config_dump failed: {run.stderr_tail()}")
                dumps.append(run.stdout)
        except MeshError as exc:
            log.info("propagation check skipped: %s", exc)
            return None
        return diagnostics.ProxyConfig.of(*dumps)

    # -- traffic ---------------------------------------------------------------------
    def client(self) -> str:
        return self.istio.client

    def send(self, client: str, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        pod = self._pod(client)
        marker = curlbatch.new_marker()
        per_request = request.max_time_s or 30.0
        timeout = 60.0 + count * per_request
        run = self._exec(pod, self._app_container(pod, client),
                         batch_command(request, count, marker), timeout)
        try:
            return curlbatch.parse_output(run.stdout, marker, count)
        except ValueError as exc:
            raise MeshError(f"curl in pod {pod['metadata']['name']} exited {run.exit_code}: "
                            f"{exc}; stderr: {run.stderr_tail()}") from None

    def set_mesh_config(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set fields of the mesh config istiod reads (the ``mesh`` key of the ``istio``
        ConfigMap of istio-system; istioctl install writes the same fields and would
        overwrite an edit made here) and return their previous values. istiod reloads the
        ConfigMap and pushes; the behaviour checks that follow wait for it (eventually)."""
        path = f"/api/v1/namespaces/{ISTIO_NAMESPACE}/configmaps/{MESH_CONFIGMAP}"
        try:
            configmap = self.api.request("GET", path)
        except KubeApiError as exc:
            raise MeshError(f"cannot read the mesh config (ConfigMap {MESH_CONFIGMAP} in "
                            f"{ISTIO_NAMESPACE}): {exc.message}") from None
        mesh = yaml.safe_load((configmap.get("data") or {}).get("mesh") or "") or {}
        previous = {key: mesh.get(key) for key in changes}
        for key, value in changes.items():
            if value is None:
                mesh.pop(key, None)
            else:
                mesh[key] = value
        self.api.request("PATCH", path, body={"data": {"mesh": yaml.safe_dump(mesh)}},
                         content_type="application/merge-patch+json")
        return previous

    def traces(self, service: str, limit: int = 20) -> list[Trace]:
        """From the Jaeger addon's query API, with curl from the client pod (what its UI's
        search asks)."""
        pod = self._pod(self.client())
        url = jaeger_query_url(service, limit)
        run = self._exec(pod, self._app_container(pod, self.client()),
                         ["curl", "-sS", "--max-time", "10", url], 30.0)
        try:
            body = json.loads(run.text)
        except ValueError:
            body = None
        if run.exit_code != 0 or not isinstance(body, dict):
            raise MeshError(f"the Jaeger query API did not answer {url} (is the addon installed? "
                            f"`make kind-up` installs it): curl exited {run.exit_code}: "
                            f"{run.text[:200]!r} {run.stderr_tail()}")
        if body.get("errors") and not body.get("data"):
            raise MeshError(f"the Jaeger query API answered {url} with {body['errors']}")
        return from_jaeger(body)

    def pod_ip(self, workload: str) -> str:
        address = (self._pod(workload).get("status") or {}).get("podIP")
        if not address:
            raise MeshError(f"the pod of {workload} has no IP address yet")
        return address

    def send_from_host(self, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        if self._host_dir is None:
            self._host_dir = make_run_dir()
        return curlbatch.run_here(request, count, self._host_dir)

    def load(self, client: str, url: str, *, connections: int, requests: int,
             qps: float = 0) -> LoadResult:
        """``fortio load -c <connections> -qps <qps> -n <requests> -json - <url>``."""
        pod = self._pod(client)
        expected = requests / qps if qps else requests * 0.5
        run = self._exec(pod, self._app_container(pod, client),
                         load_argv(url, connections=connections, requests=requests, qps=qps),
                         120.0 + expected)
        return result_of(run, pod["metadata"]["name"])

    # -- observation -----------------------------------------------------------------
    def logs(self, workload: str, since_s: float | None = None,
             container: str | None = None) -> list[str]:
        lines: list[str] = []
        for pod in self._pods(workload):
            kwargs = {"container": container or self._app_container(pod, workload)}
            if since_s is not None:
                kwargs["since_seconds"] = max(1, math.ceil(since_s))
            try:
                text = self.core.read_namespaced_pod_log(pod["metadata"]["name"],
                                                         _namespace_of(pod, self.namespace),
                                                         **kwargs)
            except ApiException as exc:
                raise MeshError(f"cannot read the logs of {workload}: "
                                f"{api_error(exc).message}") from None
            lines.extend(text.splitlines())
        return lines

    def prometheus_api(self, path: str, params: Mapping[str, str] | None = None) -> dict:
        """The Prometheus addon's API, asked with curl from the client pod as the handouts
        do (``curl http://prometheus.istio-system:9090/api/v1/query?query=...``)."""
        url = f"{PROMETHEUS_URL}/api/v1/{path}" + (f"?{urlencode(params)}" if params else "")
        response = self.send(self.client(), HttpRequest(url=url, max_time_s=30))[0]
        if response.status == 0:
            raise MeshError(f"Prometheus did not answer at {PROMETHEUS_URL} from the "
                            f"{self.client()} pod ({response.error}): is the addon installed? "
                            "(`make kind-up` installs it)")
        try:
            return json.loads(response.body)
        except ValueError:
            raise MeshError(f"Prometheus answered {response.status} with no JSON: "
                            f"{response.body[:200]}") from None

    def proxy_stats(self, workload: str) -> dict[str, int]:
        pod = self._pod(workload)
        run = self._exec(pod, SIDECAR, STATS_COMMAND, 60)
        if run.exit_code != 0:
            raise MeshError(f"pilot-agent stats in {pod['metadata']['name']} exited "
                            f"{run.exit_code}: {run.stderr_tail()}")
        return parse_stats(run.stdout)

    def proxy_config(self, workload: str, section: str) -> dict:
        """``pilot-agent request GET config_dump?resource=...`` in the pod's ``istio-proxy``
        (what ``istioctl proxy-config`` reads)."""
        if section not in SECTIONS:
            raise MeshError(f"proxy-config {section}: choose one of {', '.join(SECTIONS)}")
        resource = SECTIONS[section]
        query = f"config_dump?resource={resource}" if resource else "config_dump?include_eds"
        pod = self._pod(workload)
        run = self._exec(pod, SIDECAR, ["pilot-agent", "request", "GET", query], 60)
        if run.exit_code != 0:
            raise MeshError(f"config_dump in {pod['metadata']['name']} exited {run.exit_code}: "
                            f"{run.stderr_tail()}")
        return json.loads(run.text or "{}")

    def ingress_address(self, port_name: str = "http2") -> tuple[str, int]:
        """Where the ingress gateway listens from this machine: host and port.

        A LoadBalancer address when the Service has one; on kind, 127.0.0.1 and the fixed
        NodePort (the kind config maps it to the same port on the host); elsewhere the
        gateway pod's node IP and the NodePort, as the lab computes INGRESS_HOST.
        """
        try:
            svc = self.api.request("GET", f"/api/v1/namespaces/{ISTIO_NAMESPACE}/services/{INGRESS_SERVICE}")
        except KubeApiError as exc:
            raise MeshError(f"no ingress gateway Service {INGRESS_SERVICE} in {ISTIO_NAMESPACE}: "
                            f"{exc.message}") from None
        ports = (svc.get("spec") or {}).get("ports") or []
        port = next((p for p in ports if p.get("name") == port_name), None)
        if port is None:
            names = ", ".join(p.get("name", "?") for p in ports)
            raise MeshError(f"the ingress gateway has no port named {port_name} (it has {names})")
        for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = ingress.get("ip") or ingress.get("hostname")
            if host:
                return host, int(port["port"])
        if not port.get("nodePort"):
            raise MeshError(f"the ingress gateway Service has neither a load balancer address "
                            f"nor a NodePort for {port_name}")
        if is_kind_context(self.context):
            return "127.0.0.1", int(port["nodePort"])
        pods = self.api.list(PODS, ISTIO_NAMESPACE, "istio=ingressgateway")
        host_ip = next(((p.get("status") or {}).get("hostIP") for p in pods
                        if (p.get("status") or {}).get("hostIP")), None)
        if not host_ip:
            raise MeshError("cannot find the node of the ingress gateway pod")
        return host_ip, int(port["nodePort"])

    # -- diagnostics -----------------------------------------------------------------
    def diagnostics(self, manifests: list[Manifest], since_s: float | None = None,
                    client: str | None = None) -> str:
        """The common part (what was applied, the last requests), then the cluster's view
        of it, trimmed: istioctl analyze's findings about the applied objects, the client
        sidecar's routes and clusters for the applied hosts, recent warning events."""
        istioctl = self._istioctl()
        client_name = client or self.client()
        names = {m.name for m in manifests}
        hosts = {h for m in manifests for h in _hosts_of(m.raw)}

        def analyze() -> str:
            if istioctl is None:
                return "(istioctl not found: run `make kind-up` to download it)"
            return "\n".join(line for line in istioctl.analyze(self.namespace).splitlines()
                             if any(f" {n}." in line or f"/{n}" in line for n in names))

        def dump(command: list[str], summarise) -> str:
            pod = self._pod(client_name)
            run = self._exec(pod, SIDECAR, command, 30)
            if run.exit_code != 0:
                return f"(exit {run.exit_code}: {run.stderr_tail()})"
            lines = [line for line in summarise(run.stdout)
                     if not hosts or any(f"|{h}." in line or f" {h}." in line or f"{h}:" in line
                                         for h in hosts)]
            return "\n".join(_capped(lines, 20))

        def events() -> str:
            items = self.api.request("GET", f"/api/v1/namespaces/{self.namespace}/events")
            warnings = [e for e in (items or {}).get("items") or [] if e.get("type") == "Warning"]
            return "\n".join(diagnostics.event_lines(warnings, limit=10))

        return "\n".join([
            super().diagnostics(manifests, since_s, client_name),
            diagnostics.section(f"istioctl analyze -n {self.namespace}, about these objects",
                                analyze),
            diagnostics.section(f"routes of the {client_name} sidecar",
                                lambda: dump(diagnostics.ROUTES_DUMP, diagnostics.route_lines)),
            diagnostics.section(f"clusters of the {client_name} sidecar",
                                lambda: dump(diagnostics.CLUSTERS_DUMP, diagnostics.cluster_lines)),
            diagnostics.section(f"recent warning events in {self.namespace}", events),
        ])

    # -- helpers ---------------------------------------------------------------------
    def _istioctl(self) -> Istioctl | None:
        path = find_istioctl(self.istio.patch)
        return Istioctl(path, self.context) if path else None

    def _pods(self, workload: str) -> list[dict]:
        """The live pods of a workload: a Deployment of that name, else label app=<name>;
        in the labs' namespace, or ``<namespace>/<workload>``, or istio-system's gateways."""
        namespace, _, workload = workload.rpartition("/")
        if not namespace:
            namespace = ISTIO_NAMESPACE if workload in _GATEWAYS else self.namespace
        try:
            dep = self.api.get(DEPLOYMENTS, namespace, workload)
            selector = selector_of(dep) if dep else f"app={workload}"
            pods = self.api.list(PODS, namespace, selector)
        except KubeApiError as exc:
            raise MeshError(f"cannot find the pods of {workload}: {exc.message}") from None
        live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") == "Running"]
        if not live:
            raise MeshError(f"no running pod for {workload} in namespace {namespace}: "
                            f"deploy it first (or check `kubectl get pods -n {namespace}`)")
        return sorted(live, key=lambda p: (not _ready(p), p["metadata"].get("creationTimestamp", "")),
                      )

    def _pod(self, workload: str) -> dict:
        return self._pods(workload)[0]

    @staticmethod
    def _app_container(pod: dict, workload: str) -> str:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        default = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if default:
            return default
        names = [c["name"] for c in spec.get("containers") or [] if c["name"] != SIDECAR]
        return workload if workload in names else (names[0] if names else SIDECAR)  # a gateway

    def _exec(self, pod: dict, container: str, command: list[str], timeout_s: float) -> ExecResult:
        return self.executor.run(_namespace_of(pod, self.namespace), pod["metadata"]["name"],
                                 container, command, timeout_s)


def _capped(lines: list[str], limit: int) -> list[str]:
    return lines if len(lines) <= limit else [*lines[:limit], f"(+{len(lines) - limit} more)"]


def _hosts_of(raw: dict) -> set[str]:
    """The short service names an Istio object is about (VirtualService hosts, a
    DestinationRule's host)."""
    spec = raw.get("spec") or {}
    hosts = list(spec.get("hosts") or []) + ([spec["host"]] if spec.get("host") else [])
    return {str(h).split(".")[0] for h in hosts if h and "*" not in str(h)}


def _ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _namespace_of(pod: dict, default: str) -> str:
    return (pod.get("metadata") or {}).get("namespace") or default


def _bound_to_gateways_only(t: Target) -> bool:
    """A VirtualService whose routes only gateways have (``gateways`` without ``mesh``)."""
    if t.rtype.group != "networking.istio.io" or t.rtype.kind != "VirtualService":
        return False
    spec = t.body.get("spec") or {}
    gateways = spec.get("gateways") or []
    return bool(spec.get("hosts")) and bool(gateways) and "mesh" not in gateways


def _visible_to_sidecars(t: Target) -> bool:
    """A VirtualService bound to sidecars (no gateways, or "mesh"), or a DestinationRule.
    A VirtualService without hosts is a delegate: the routes made of it name its root
    (docs/facts.md#delegation), so it is never seen by its own name."""
    if t.rtype.group != "networking.istio.io":
        return False
    if t.rtype.kind == "DestinationRule":
        return True
    if t.rtype.kind == "VirtualService":
        spec = t.body.get("spec") or {}
        gateways = spec.get("gateways") or []
        return bool(spec.get("hosts")) and (not gateways or "mesh" in gateways)
    return False


def installed_istio_version(istiod: dict) -> str | None:
    """The release istiod runs, from its image tag (``pilot:1.26.0`` → ``1.26.0``)."""
    containers = (((istiod.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        image = container.get("image", "")
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        parts = tag.split("-")[0].split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return ".".join(parts[:3])
    return None
