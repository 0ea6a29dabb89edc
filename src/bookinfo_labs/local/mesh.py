"""LocalMesh on real Envoy: Istio's architecture without Kubernetes.

Every pod is an app on its own loopback addresses behind a real Envoy sidecar; our control
plane (``pilot``) translates the config store and the service registry into each sidecar's
resources, and the ADS server (``xds``) delivers them. An apply returns once every sidecar
has ACKed the new version; a NACK puts the previous config back and fails the apply with
Envoy's reason. Nothing here decides a route, a retry or an ejection: Envoy does.

Addresses: pod n has ``127.B.a.b`` (its IP: endpoints, its sidecar's inbound listeners,
the source of its connections), ``127.B+1.a.b`` (where its apps and clients reach every
Service: the sidecar's outbound listeners, as iptables capture would) and ``127.B+2.a.b``
(its "localhost": the app), B chosen per mesh. Linux routes all of 127.0.0.0/8 to the
loopback interface.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import inspect
import json
import os
import random
import re
import shutil
import socket
import tempfile
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from .. import curlbatch
from ..accesslog import parse_line
from ..istio import iter_set_fields
from ..istio.injection import INJECTION_LABEL, decide as injection_decision
from ..loadgen import LoadResult
from ..manifests import MANIFESTS_ROOT, Manifest, ManifestError, load_file, manifest_from_object
from ..mesh import HttpRequest, HttpResponse, Mesh, MeshError, PodSummary, ResourceKey
from ..proxyconfig import SECTIONS
from ..rundir import make_run_dir
from ..samples import Placement, sample_manifests
from ..tracing import Trace, from_zipkin
from ..versions import IstioVersion
from . import pilot
from .analysis import analyze
from .apps import find_app, image_name
from .apps.base import TLS_CONTEXTS, AppContext, GrpcApp, TcpApp, UpstreamResponse
from .bootstrap import StatsMatcher, envoy_bootstrap
from .config import ConfigStore
from .dns import MeshDns
from .identity import NodeAgent
from . import prometheus as local_prometheus
from .metrics import Directory, MetricsAgent
from .envoyproc import EnvoyProcess, envoy_version, find_envoy
from .fortio import run_load
from .registry import Pod, Service, ServicePort, ServiceRegistry, pod_name
from .runtime import LoopThread
from .xds import XdsRejected, XdsServer

# The Istio config fields the control plane translates, per kind. A field outside these is
# a clear error rather than silently ignored (docs/architecture.md#refuse-never-ignore).
# "[]" stands for any list index; a listed path covers everything below it.
_TRAFFIC_POLICY = (
    "loadBalancer.simple",
    "connectionPool.tcp.maxConnections", "connectionPool.tcp.connectTimeout",
    "connectionPool.http.http1MaxPendingRequests", "connectionPool.http.http2MaxRequests",
    "connectionPool.http.maxRequestsPerConnection", "connectionPool.http.maxRetries",
    "outlierDetection.consecutive5xxErrors", "outlierDetection.consecutiveGatewayErrors",
    "outlierDetection.consecutiveErrors", "outlierDetection.interval",
    "outlierDetection.baseEjectionTime", "outlierDetection.maxEjectionPercent",
    "outlierDetection.minHealthPercent",
    "tls.mode",  # ISTIO_MUTUAL or DISABLE (_MESH_TLS_MODES)
)
#: DestinationRule tls modes the control plane translates (SIMPLE and MUTUAL originate TLS
#: with the user's certificates, which it does not do yet)
_MESH_TLS_MODES = ("ISTIO_MUTUAL", "DISABLE")
_POLICY_PLACES = ("spec.trafficPolicy", "spec.trafficPolicy.portLevelSettings[]",
                  "spec.subsets[].trafficPolicy", "spec.subsets[].trafficPolicy.portLevelSettings[]")
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "VirtualService": (
        "spec.hosts", "spec.gateways",
        "spec.http[].name", "spec.http[].match",
        "spec.http[].route[].destination", "spec.http[].route[].weight",
        "spec.http[].timeout",
        "spec.http[].retries.attempts", "spec.http[].retries.perTryTimeout",
        "spec.http[].retries.retryOn", "spec.http[].retries.backoff",
        "spec.http[].retries.retryIgnorePreviousHosts",
        "spec.http[].fault.delay.fixedDelay", "spec.http[].fault.delay.percentage",
        "spec.http[].fault.delay.percent",
        "spec.http[].fault.abort.httpStatus", "spec.http[].fault.abort.percentage",
        "spec.http[].mirror", "spec.http[].mirrorPercentage", "spec.http[].mirrorPercent",
        "spec.http[].mirror_percent", "spec.http[].mirrors",
        "spec.http[].redirect", "spec.http[].directResponse", "spec.http[].rewrite",
        "spec.http[].headers", "spec.http[].route[].headers", "spec.http[].corsPolicy",
        "spec.http[].delegate",
        "spec.tcp[].match[].port", "spec.tcp[].match[].gateways",
        "spec.tcp[].match[].sourceLabels", "spec.tcp[].match[].sourceNamespace",
        "spec.tcp[].route[].destination", "spec.tcp[].route[].weight",
        "spec.tls[].match[].sniHosts", "spec.tls[].match[].port", "spec.tls[].match[].gateways",
        "spec.tls[].route[].destination", "spec.tls[].route[].weight",
    ),
    "Gateway": (
        "spec.selector", "spec.servers[].port", "spec.servers[].hosts", "spec.servers[].name",
        "spec.servers[].tls.mode", "spec.servers[].tls.credentialName",
        "spec.servers[].tls.httpsRedirect",
    ),
    "ServiceEntry": (
        "spec.hosts", "spec.ports", "spec.location", "spec.resolution",
        "spec.endpoints[].address", "spec.endpoints[].ports",
    ),
    "Sidecar": (
        "spec.workloadSelector", "spec.egress[].hosts", "spec.outboundTrafficPolicy.mode",
    ),
    # a gateway's credentials (credentialName), in the gateway's namespace
    "Secret": (),
    "PeerAuthentication": ("spec.selector", "spec.mtls.mode", "spec.portLevelMtls"),
    "AuthorizationPolicy": (
        "spec.selector", "spec.action", "spec.rules[].from[].source.principals",
        "spec.rules[].from[].source.notPrincipals", "spec.rules[].from[].source.namespaces",
        "spec.rules[].from[].source.notNamespaces",
        "spec.rules[].from[].source.requestPrincipals",
        "spec.rules[].from[].source.notRequestPrincipals",
        "spec.rules[].from[].source.serviceAccounts",
        "spec.rules[].from[].source.notServiceAccounts",
        "spec.rules[].from[].source.ipBlocks", "spec.rules[].from[].source.notIpBlocks",
        "spec.rules[].from[].source.remoteIpBlocks",
        "spec.rules[].from[].source.notRemoteIpBlocks", "spec.rules[].to[].operation",
        "spec.rules[].when[].key", "spec.rules[].when[].values",
        "spec.rules[].when[].notValues",
    ),
    # jwksUri is refused below: istiod fetches it, the local mesh has no internet
    "RequestAuthentication": (
        "spec.selector", "spec.jwtRules[].issuer", "spec.jwtRules[].audiences",
        "spec.jwtRules[].jwks", "spec.jwtRules[].fromHeaders", "spec.jwtRules[].fromParams",
        "spec.jwtRules[].fromCookies", "spec.jwtRules[].outputPayloadToHeader",
        "spec.jwtRules[].forwardOriginalToken", "spec.jwtRules[].outputClaimToHeaders",
        "spec.jwtRules[].jwksUri",
    ),
    "EnvoyFilter": (
        "spec.workloadSelector", "spec.priority", "spec.configPatches[].applyTo",
        "spec.configPatches[].match.context", "spec.configPatches[].match.proxy.proxyVersion",
        "spec.configPatches[].match.listener.name",
        "spec.configPatches[].match.listener.portNumber",
        "spec.configPatches[].match.listener.filterChain",
        "spec.configPatches[].match.listener.listenerFilter",
        "spec.configPatches[].match.routeConfiguration",
        "spec.configPatches[].match.cluster", "spec.configPatches[].patch.operation",
        "spec.configPatches[].patch.value",
    ),
    # accessLogging: providers are meshConfig's file loggers (the built-in envoy among them);
    # tracing: a provider whose kind the control plane does not translate is refused below
    "Telemetry": (
        "spec.selector", "spec.accessLogging[].providers", "spec.accessLogging[].match.mode",
        "spec.accessLogging[].disabled", "spec.accessLogging[].filter.expression",
        "spec.tracing[].providers", "spec.tracing[].randomSamplingPercentage",
        "spec.tracing[].disableSpanReporting", "spec.tracing[].match.mode",
        "spec.tracing[].customTags", "spec.tracing[].enableIstioTags",
    ),
    "DestinationRule": (
        "spec.host", "spec.subsets[].name", "spec.subsets[].labels",
        "spec.trafficPolicy.portLevelSettings[].port",
        "spec.subsets[].trafficPolicy.portLevelSettings[].port",
        *(f"{place}.{field}" for place in _POLICY_PLACES for field in _TRAFFIC_POLICY),
    ),
}
_INDEX = re.compile(r"\[\d+\]")
#: Gateway server protocols the control plane translates
_GATEWAY_PROTOCOLS = {"HTTP", "HTTP2", "TCP", "HTTPS", "TLS"}
#: the TLS modes it translates, per server protocol
_GATEWAY_TLS_MODES = {"HTTPS": ("SIMPLE", "MUTUAL", "PASSTHROUGH"), "TLS": ("PASSTHROUGH",)}
#: the Istio config kinds the control plane reads
CONFIG_KINDS = ("VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar",
                "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication",
                "EnvoyFilter", "Telemetry")
#: ServiceEntry resolutions the control plane translates (NONE needs iptables' original
#: destination, which the local mesh has not)
_RESOLUTIONS = {"DNS", "STATIC"}
#: how long an apply may wait for every proxy's ACK
ACK_TIMEOUT_S = 30.0
#: the demo profile's gateways, as the local mesh installs them
GATEWAYS_FILE = MANIFESTS_ROOT / "istio" / "gateways.yaml"
#: the image of a pod that is a proxy alone (a gateway)
PROXY_IMAGE = "proxyv2"
ISTIO_NAMESPACE = "istio-system"
INGRESS_SERVICE = "istio-ingressgateway"
#: the tracing backend the local mesh runs in istio-system (its stand-in for Zipkin)
TRACING_ADDON = "zipkin"
ZIPKIN_PORT = 9411


def mounted_files(deployment: Manifest, pod_spec: dict, container: dict,
                  mountable: dict[tuple[str, str, str], Manifest],
                  namespace: str) -> dict[str, bytes]:
    """The files the kubelet puts in a container from its Secret and ConfigMap volumes:
    ``<mountPath>/<key>`` (or ``<mountPath>/<path>`` for a volume's ``items``); an
    emptyDir has none. A volume whose object is missing is a MeshError (on a cluster the
    pod stays ContainerCreating), unless it is ``optional``."""
    volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []}
    files: dict[str, bytes] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name")) or {}
        if "secret" in volume:
            kind, source, name = "Secret", volume["secret"], volume["secret"].get("secretName")
        elif "configMap" in volume:
            kind, source, name = "ConfigMap", volume["configMap"], volume["configMap"].get("name")
        elif "emptyDir" in volume:
            continue  # starts empty: nothing to put in it
        else:
            raise MeshError(f"{deployment.source}: {deployment.describe()} mounts volume "
                            f"{mount.get('name')!r}, which the local mesh does not implement "
                            "(it mounts Secret, ConfigMap and emptyDir volumes); run it with "
                            "--mesh kube")
        obj = mountable.get((kind, namespace, name))
        if obj is None and source.get("optional"):
            continue  # an optional volume of a missing object mounts empty
        if obj is None:
            raise MeshError(f"{deployment.source}: {deployment.describe()} mounts {kind} "
                            f"{name!r}, which is not among the objects it is deployed with")
        data = obj.model.decoded() if kind == "Secret" else {
            **{k: v.encode() for k, v in obj.model.data.items()},
            **{k: base64.b64decode(v) for k, v in obj.model.binary_data.items()}}
        paths = {i["key"]: i["path"] for i in source.get("items") or []} or {k: k for k in data}
        root = mount["mountPath"].rstrip("/")
        files.update({f"{root}/{path}": data[key] for key, path in paths.items() if key in data})
    return files


class EnvoyOutbound:
    """An app's HTTP client: every request goes to its pod's outbound listener for the
    port, with the name it used as Host, as iptables capture would send it."""

    def __init__(self, pod: Pod):
        self.pod = pod
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, url: str, *, headers: Sequence[tuple[str, str]] = (),
                      body: bytes | None = None, timeout_s: float | None = None) -> UpstreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(self.pod.ip, 0)),
                auto_decompress=False, skip_auto_headers=("User-Agent",),
                timeout=aiohttp.ClientTimeout(total=None))
        target, host = captured(self.pod, url)
        sent = [(k, v) for k, v in headers if k.lower() != "host"] + [("host", host)]
        try:
            async with asyncio.timeout(timeout_s):
                async with self._session.request(method, target, headers=sent, data=body,
                                                 allow_redirects=False) as resp:
                    return UpstreamResponse(resp.status, dict(resp.headers), await resp.read())
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionError(str(exc)) from exc

    async def close(self) -> None:
        if self._session:
            await self._session.close()


def captured(pod: Pod, url: str) -> tuple[str, str]:
    """Where the pod's sidecar takes a request for ``url``: the outbound listener's URL, and
    the Host it keeps."""
    parts = urlsplit(url)
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return f"http://{pod.outbound_ip}:{pilot.listen_port(port)}{path}", parts.netloc


class Sidecar:
    """One pod's Envoy: what the control plane serves it, and the process."""

    def __init__(self, pod: Pod, view: pilot.ProxyView, process: EnvoyProcess, log_path: Path):
        self.pod = pod
        self.view = view
        self.process = process
        self.log_path = log_path

    def access_log(self, since_s: float | None = None) -> list[str]:
        """The istio-proxy container's log: Envoy's access log lines (since ``since_s``)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        if since_s is None:
            return lines
        cutoff = datetime.now(timezone.utc).timestamp() - since_s
        return [line for line in lines if _started(line) >= cutoff]


def _started(line: str) -> float:
    """The START_TIME of an access-log line, TEXT (``[2026-11-26T17:00:00.123Z] ...``) or
    JSON (``{"start_time":"2026-11-26T17:00:00.123Z",...}``)."""
    entry = parse_line(line)
    try:
        return datetime.strptime(entry.start, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=timezone.utc).timestamp()
    except (AttributeError, ValueError):
        return float("inf")  # not an access-log line: keep it


#: where meshes on this machine hold one lock file per address block they use: one place
#: for the whole machine (a run with its own TMPDIR still shares the loopback addresses)
BLOCK_LOCKS = (Path("/tmp") if os.access("/tmp", os.W_OK) else
               Path(tempfile.gettempdir())) / ".bookinfo-labs-address-blocks"


class AddressBlock:
    """Three /16s of 127.0.0.0/8 for one mesh (pod IPs, outbound, app), from second octet
    ``base``. Picked at random and held with a lock file, so two meshes on one machine
    (two runs, or a run beside a workshop mesh) never share addresses; the kernel drops
    the lock when the process dies, however it dies."""

    def __init__(self) -> None:
        BLOCK_LOCKS.mkdir(parents=True, exist_ok=True)
        candidates = list(range(10, 250, 3))
        random.shuffle(candidates)
        for base in candidates:
            handle = open(BLOCK_LOCKS / f"{base}.lock", "a")  # noqa: SIM115 - held while in use
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.base, self._handle = base, handle
            return
        raise MeshError(f"every local address block is in use ({len(candidates)} meshes run on "
                        "this machine?); stop some, or remove stale runs")

    def release(self) -> None:
        self._handle.close()


class HostPort:
    """A port of this machine's 127.0.0.1 that one mesh's gateway binds (where a NodePort or
    kind's port mapping would be): the preferred number when it is free, else a free one.
    Held with a lock file, so two meshes on one machine never pick the same port even
    before their gateways bind it."""

    def __init__(self, preferred: int) -> None:
        BLOCK_LOCKS.mkdir(parents=True, exist_ok=True)
        for candidate in (preferred, *_spare_ports(20)):
            handle = open(BLOCK_LOCKS / f"port-{candidate}.lock", "a")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            if candidate == preferred and not _bindable(candidate):
                handle.close()  # something else on this machine has it
                continue
            self.port, self._handle = candidate, handle
            return
        raise MeshError(f"found no free port on 127.0.0.1 for the gateway's port {preferred}")

    def release(self) -> None:
        self._handle.close()


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _spare_ports(count: int) -> list[int]:
    """Ports to try after the preferred one, below the kernel's ephemeral range: a port
    from that range may be taken by any outgoing connection before the gateway binds it."""
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return [port for port in random.sample(range(10000, max(first, 10001)), count)
            if _bindable(port)]


class LocalMesh(Mesh):
    name = "local"
    poll_interval_s = 0.0
    #: its Envoys flush their access logs every 250 ms (envoyproc), read from the file;
    #: 0.25 s each for scheduling noise (the timing bands' allowance) and the read
    access_log_flush_s = 0.75
    prometheus_scrape_interval_s = local_prometheus.SCRAPE_INTERVAL_S

    def __init__(self, istio: IstioVersion, namespace: str = "default", envoy: str | None = None):
        self.istio = istio
        self.namespace = namespace
        self.envoy = find_envoy(envoy)
        self.envoy_version = envoy_version(self.envoy)
        self.registry = ServiceRegistry()
        self.store = ConfigStore()
        self._owned: set[ResourceKey] = set()
        self._deployed: set[tuple[str, Placement | None]] = set()
        self._runners: list[web.AppRunner] = []
        self._tcp_servers: list[asyncio.Server] = []
        self._grpc_servers: list = []  # grpc.aio servers
        self._outbounds: list[EnvoyOutbound] = []
        self._sidecars: dict[str, Sidecar] = {}  # pod name -> its sidecar
        #: pod name -> the pilot-agent's metrics part (local/metrics.py)
        self._agents: dict[str, MetricsAgent] = {}
        self._directory: Directory | None = None  # what the agents look peers up in
        self._prometheus: local_prometheus.LocalPrometheus | None = None  # started on first use
        self._workdir = make_run_dir()  # removes those of killed runs first
        self._loop = LoopThread()
        self._xds = XdsServer()
        self._xds_port = self._xds.start()
        self._next_address = 1
        self._address_block = AddressBlock()
        self._block = self._address_block.base
        self._host_ports: list[HostPort] = []
        self._mesh_config = pilot.meshconfig.demo_mesh_config(istio)  # istiod's meshConfig
        self._dns = MeshDns(self.registry, namespace, f"127.{self._block}.255.253").start()
        #: namespace -> its labels, which the injector reads; a namespace never declared is
        #: the labs' (labelled for injection when a cluster is provisioned) or istio-system
        self._namespace_labels: dict[str, dict[str, str]] = {}
        #: (namespace, name) -> a Deployment and the files its pods mount, to scale it
        self._deployments: dict[tuple[str, str], tuple[Manifest, dict]] = {}
        self._agent = NodeAgent()  # workload certificates, served over SDS
        self._push_lock = threading.Lock()
        #: per node id, the resources last handed to the ADS server (what it serves now)
        self._pushed: dict[str, dict[str, dict]] = {}
        self._closed = False

    @classmethod
    def start(cls, istio: IstioVersion, namespace: str = "default",
              envoy: str | None = None, gateways: bool = True) -> "LocalMesh":
        """A mesh with Istio's gateways running (``gateways=False``: without them, for a
        caller that starts them itself, as the emulated cluster's kubelet does)."""
        if shutil.which("curl") is None:
            raise MeshError("the local mesh sends traffic with the real curl, which is not "
                            "installed: run `make deps` (or apt-get install curl)")
        mesh = cls(istio, namespace, envoy)
        if gateways:
            try:
                mesh.start_objects(load_file(GATEWAYS_FILE))
                mesh.deploy(TRACING_ADDON)  # the zipkin Service a tracing provider names
            except BaseException:
                mesh.close()
                raise
        return mesh

    # -- lifecycle -------------------------------------------------------------------
    def deploy(self, sample: str, placement: Placement | None = None) -> None:
        key = (sample, placement)
        if key in self._deployed:
            return
        replaced = [k for k in self._deployed if k[0] == sample and k[1] is not None
                    and placement is not None and k[1].namespace == placement.namespace]
        for old in replaced:  # the namespace's injection changed: new pods, as a rollout
            self.stop_pods([p for p in self.registry.pods if p.namespace == placement.namespace
                             and any(p.deployment == m.name for m in sample_manifests(
                                 sample, self.istio, placement=placement)
                                     if m.kind == "Deployment")])
            self._deployed.discard(old)
        namespace = [] if placement is None else [
            manifest_from_object(placement.namespace_object(), "(namespace)")]
        self.start_objects(namespace + sample_manifests(sample, self.istio, placement=placement))
        self._deployed.add(key)

    def start_objects(self, manifests: Sequence[Manifest]) -> list[Pod]:
        """Services join the registry and each Deployment's replicas start as pods behind
        their sidecars; then every sidecar gets the new endpoints. What a cluster's
        Deployment controller, kubelet and endpoints controller do: the kubelet mounts the
        Secrets and ConfigMaps among ``manifests`` that a pod's volumes name; other kinds
        are left to the caller. Returns the new pods."""
        mountable = {(m.kind, m.namespace or self.namespace, m.name): m for m in manifests
                     if m.kind in ("Secret", "ConfigMap")}
        for m in manifests:
            if m.kind == "Namespace":  # the injector reads its labels for the new pods
                self._namespace_labels[m.name] = dict(m.raw["metadata"].get("labels") or {})
            elif m.kind == "Service":
                self.registry.add_service(self._service(m))
            elif m.kind == "Deployment":  # what a later scale starts more replicas of
                self._deployments[(m.namespace or self.namespace, m.name)] = (m, mountable)
        return self._start_replicas([(m, mountable) for m in manifests if m.kind == "Deployment"
                                     for _ in range(m.raw["spec"].get("replicas", 1))])

    def _start_replicas(self, replicas: list[tuple[Manifest, dict]]) -> list[Pod]:
        """One pod per (Deployment, mountable) pair, behind its sidecar if injected; then
        every sidecar gets the new endpoints."""
        pods = [self._loop.run(self._start_pod(m, mountable)) for m, mountable in replicas]
        with ThreadPoolExecutor(max_workers=8) as pool:  # Envoys start in parallel
            list(pool.map(self._start_sidecar, [p for p in pods if p.gateway or p.injected]))
        self._push()  # the new endpoints reach every sidecar
        self._update_scrape_targets()
        return pods

    def scale(self, workload: str, replicas: int) -> int:
        """``workload``: a Deployment's name in the labs' namespace, or ``<namespace>/<name>``."""
        namespace, _, name = workload.rpartition("/")
        previous, _ = self.scale_deployment(namespace or self.namespace, name, replicas)
        return previous

    def scale_deployment(self, namespace: str, deployment: str,
                         replicas: int) -> tuple[int, list[Pod]]:
        """Run ``replicas`` pods of a Deployment: the newest go, or new ones start (the
        Deployment controller and kubelet). Returns the replicas it had and the new pods."""
        name = deployment
        if replicas < 0:
            raise MeshError(f"scale {name}: replicas must be 0 or more, not {replicas}")
        if (namespace, deployment) not in self._deployments:
            raise MeshError(f"no Deployment {deployment} in namespace {namespace} to scale; "
                            "deploy its sample first")
        pods = [p for p in self.registry.pods
                if p.namespace == namespace and p.deployment == deployment]
        if replicas < len(pods):
            self.stop_pods(pods[replicas:])
            return len(pods), []
        template = self._deployments[(namespace, deployment)]
        return len(pods), self._start_replicas([template] * (replicas - len(pods)))

    def pod_summary(self, workload: str) -> PodSummary:
        """The local pod as the injector made it: the app's container, and istio-proxy
        where it was injected (as a container: Istio 1.26's default has no native
        sidecars); its processes run, so every container is ready."""
        pod = self._pod(workload)
        containers = (pod.container, "istio-proxy") if pod.injected else (pod.container,)
        return PodSummary(pod.name, containers, ready=f"{len(containers)}/{len(containers)}")

    def stop_pods(self, pods: list[Pod]) -> None:
        """Take pods out of the registry (so out of every endpoint list), then stop their
        sidecars and apps: what a rollout does to the old ReplicaSet's pods."""
        gone = {id(p) for p in pods}
        self.registry.pods = [p for p in self.registry.pods if id(p) not in gone]
        self._push()

        async def stop(pod: Pod) -> None:
            for item in pod.runtime:
                if isinstance(item, web.AppRunner):
                    self._runners.remove(item)
                    await item.cleanup()
                elif isinstance(item, EnvoyOutbound):
                    self._outbounds.remove(item)
                    await item.close()
                else:
                    self._tcp_servers.remove(item)
                    item.close()

        for pod in pods:
            sidecar = self._sidecars.pop(pod.name, None)
            self._agents.pop(pod.name, None)
            if sidecar is not None:
                sidecar.process.stop()
            self._loop.run(stop(pod))
        self._update_scrape_targets()

    def _service(self, m: Manifest) -> Service:
        spec = m.raw["spec"]
        ports = [ServicePort(p.get("name", ""), p["port"], int(p.get("targetPort", p["port"])),
                             p.get("protocol", "TCP"), p.get("appProtocol"))
                 for p in spec.get("ports", [])]
        return Service(m.name, m.namespace or self.namespace, ports,
                       dict(spec.get("selector") or {}), dict(m.raw["metadata"].get("labels") or {}),
                       spec.get("type", "ClusterIP"))

    def _addresses(self) -> tuple[str, str, str]:
        """The next pod's IP, outbound and app addresses, in this mesh's own block."""
        n = self._next_address
        self._next_address += 1
        a, b = divmod(n, 250)
        base = self._block
        return (f"127.{base}.{a}.{b + 1}", f"127.{base + 1}.{a}.{b + 1}",
                f"127.{base + 2}.{a}.{b + 1}")

    async def _start_pod(self, m: Manifest, mountable: dict[tuple[str, str, str], Manifest]) -> Pod:
        template = m.raw["spec"]["template"]
        container = template["spec"]["containers"][0]
        files = mounted_files(m, template["spec"], container, mountable,
                              m.namespace or self.namespace)
        image = container["image"]
        # the proxy image itself, or "auto" with the gateway injection template (how
        # Istio's Helm gateway chart makes a pod that is Envoy alone)
        gateway = image_name(image) == PROXY_IMAGE or (image == "auto" and (
            template["metadata"].get("annotations") or {}).get(
                "inject.istio.io/templates") == "gateway")
        try:
            app = None if gateway else find_app(image)
        except KeyError:
            raise MeshError(f"{m.source}: {m.describe()} runs image {image}, which has no "
                            "local implementation; run this sample with --mesh kube") from None
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
        ip, outbound_ip, app_ip = self._addresses()
        pod = Pod(
            name=pod_name(m.name), namespace=m.namespace or self.namespace, deployment=m.name,
            labels=dict(template["metadata"].get("labels") or {}),
            annotations=dict(template["metadata"].get("annotations") or {}),
            service_account=template["spec"].get("serviceAccountName", "default"),
            image=image, env=env, container=container.get("name", m.name),
            ip=ip, outbound_ip=outbound_ip, app_ip=app_ip, gateway=gateway)
        if gateway:
            pod.host_ports = self._map_host_ports(pod)
        if not gateway:
            decision = injection_decision(
                pod.namespace,
                self._namespace_labels.get(pod.namespace, {INJECTION_LABEL: "enabled"}),
                pod.labels, pod.annotations)
            pod.injected, pod.injection = decision.injected, decision.reason
        else:
            pod.injected = False
        if app is not None:
            factory, options = app
            outbound = EnvoyOutbound(pod)
            self._outbounds.append(outbound)
            pod.runtime.append(outbound)
            ctx = AppContext(pod_name=pod.name, labels=pod.labels, env={**env, "HOSTNAME": pod.name},
                             outbound=outbound, istio=self.istio, log=pod.log.append,
                             options=options,
                             command=[*container.get("command", ()), *container.get("args", ())],
                             files=files)
            application = factory(ctx)
            if inspect.isawaitable(application):
                application = await application
            if isinstance(application, (TcpApp, GrpcApp)):  # a TCP or gRPC server, no aiohttp
                await self._serve_tcp(application, pod, container)
                self.registry.pods.append(pod)
                return pod
            # A reset from the sidecar (a timeout upstream) reaches the app as a disconnect.
            runner = web.AppRunner(application, access_log=None, handle_signals=False,
                                   handler_cancellation=True)
            await runner.setup()
            self._runners.append(runner)
            pod.runtime.append(runner)
            # Behind a sidecar the app listens on the pod's own loopback; without one it is
            # the pod's address, and also serves its Services' ports there (what kube-proxy
            # does for a ClusterIP, which the local mesh has not).
            numbers = [int(port["containerPort"]) for port in container.get("ports") or []]
            if not pod.injected:
                numbers += [p.port for s in self.registry.services.values()
                            if s.namespace == pod.namespace and s.selector
                            and pod.matches(s.selector) for p in s.ports if p.port not in numbers]
            tls = application.get(TLS_CONTEXTS, {})  # ports the app serves with TLS itself
            for number in numbers:
                await web.TCPSite(runner, app_ip if pod.injected else ip,
                                  pilot.listen_port(number), ssl_context=tls.get(number)).start()
                pod.ports[number] = pilot.listen_port(number)
        self.registry.pods.append(pod)
        return pod

    async def _serve_tcp(self, app: TcpApp | GrpcApp, pod: Pod, container: dict) -> None:
        """A plain TCP or gRPC app listens on its own ports (else the container's) at the
        pod's "localhost", behind the inbound listeners."""
        numbers = app.ports or [int(p["containerPort"]) for p in container.get("ports") or []]
        if isinstance(app, GrpcApp):
            import grpc

            server = grpc.aio.server()
            app.add_services(server)
            for number in numbers:
                server.add_insecure_port(f"{pod.app_ip}:{pilot.listen_port(number)}")
                pod.ports[number] = pilot.listen_port(number)
            await server.start()
            self._grpc_servers.append(server)
            return
        for number in numbers:
            server = await asyncio.start_server(app.handle, pod.app_ip, pilot.listen_port(number))
            self._tcp_servers.append(server)
            pod.runtime.append(server)
            pod.ports[number] = pilot.listen_port(number)

    def _map_host_ports(self, pod: Pod) -> dict[int, int]:
        """The ports of the NodePort/LoadBalancer Services selecting a gateway pod, each
        bound on this machine too: on its targetPort's number when free (8080 for http2)."""
        mapped = {}
        for service in self.registry.services.values():
            if service.type in ("NodePort", "LoadBalancer") and service.selector and \
                    service.namespace == pod.namespace and pod.matches(service.selector):
                for port in service.ports:
                    if port.target_port not in mapped:
                        held = HostPort(port.target_port)
                        self._host_ports.append(held)
                        mapped[port.target_port] = held.port
        return mapped

    def _proxy_view(self, pod: Pod, log_path: Path, metrics_path: Path) -> pilot.ProxyView:
        targeted = sorted({p.target_port for s in self.registry.services.values()
                           if s.namespace == pod.namespace and s.selector
                           and pod.matches(s.selector) for p in s.ports
                           if p.target_port in pod.ports})
        return pilot.ProxyView(pod=pod.name, namespace=pod.namespace, labels=pod.labels,
                               ip=pod.ip, outbound_ip=pod.outbound_ip, app_ip=pod.app_ip,
                               inbound_ports=() if pod.gateway else tuple(targeted),
                               service_account=pod.service_account,
                               access_log_path=str(log_path),
                               metrics_log_path=str(metrics_path), annotations=pod.annotations,
                               kind="router" if pod.gateway else "sidecar",
                               host_ports=dict(pod.host_ports))

    def _start_sidecar(self, pod: Pod) -> None:
        work = self._workdir / pod.name
        work.mkdir(parents=True, exist_ok=True)
        log_path = work / "istio-proxy.log"
        metrics_path = work / "istio-metrics.jsonl"  # what the metrics agent reads
        view = self._proxy_view(pod, log_path, metrics_path)
        bootstrap = envoy_bootstrap(
            node_id=view.node_id, node_cluster=view.node_cluster, namespace=pod.namespace,
            labels=pod.labels, source_ip=pod.ip, xds_port=self._xds_port,
            stats=StatsMatcher.for_pod(pod.name, pod.annotations), istio_version=self.istio.patch,
            delimited_stats=self.istio.stat_delimiter)
        process = EnvoyProcess(bootstrap, work, name=pod.name, envoy=self.envoy).start()
        sidecar = Sidecar(pod, view, process, log_path)
        pod.sidecar = sidecar
        self._sidecars[pod.name] = sidecar
        agent = MetricsAgent(pod.ip, metrics_path, self._metrics_directory)
        runner = self._loop.run(agent.serve())
        self._runners.append(runner)
        pod.runtime.append(runner)
        self._agents[pod.name] = agent

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._prometheus is not None:
                self._prometheus.stop()
            for sidecar in self._sidecars.values():
                sidecar.process.stop()

            async def _stop() -> None:
                for outbound in self._outbounds:
                    await outbound.close()
                for runner in self._runners:
                    await runner.cleanup()
                for server in self._tcp_servers:
                    server.close()
                for grpc_server in self._grpc_servers:
                    await grpc_server.stop(0)

            self._loop.run(_stop(), timeout_s=10)
        finally:
            self._loop.stop()
            self._dns.stop()
            self._xds.stop()
            self._address_block.release()
            for held in self._host_ports:
                held.release()
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- the control plane -----------------------------------------------------------
    def mesh_view(self) -> pilot.MeshView:
        services = tuple(pilot.ServiceView(s.name, s.namespace, tuple(
            pilot.ServicePortView(p.name, p.port, p.target_port, p.app_protocol or "")
            for p in s.ports),
            dict(s.selector)) for s in list(self.registry.services.values()))
        workloads = tuple(pilot.WorkloadView(p.name, p.namespace, p.ip, dict(p.labels),
                                             p.service_account, p.injected)
                          for p in self.registry.pods)
        configs = tuple(pilot.ConfigView(e.key.kind, e.key.namespace, e.key.name, e.spec,
                                         e.manifest.raw.get("apiVersion", "networking.istio.io/v1"),
                                         e.created)
                        for kind in CONFIG_KINDS for e in self.store.of_kind(kind))
        secrets = tuple(pilot.SecretView(e.key.namespace, e.key.name, e.manifest.model.decoded())
                        for e in self.store.of_kind("Secret"))
        return pilot.MeshView(self.istio, services, workloads, configs,
                              mesh_config=self._mesh_config,
                              outbound_policy=pilot.meshconfig.outbound_policy(self._mesh_config),
                              dns_server=self._dns.address,
                              secrets=secrets)

    def set_mesh_config(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        previous = {key: self._mesh_config.get(key) for key in changes}
        merged = pilot.meshconfig.merged(self._mesh_config, changes)
        try:  # checked before anything changes
            pilot.accesslog.check_mesh_config(merged)
        except ValueError as exc:
            raise MeshError(str(exc)) from None
        self._mesh_config = merged
        self._push()
        return previous

    def _push(self) -> None:
        """Translate for every sidecar; hand the ADS server a new version for each one whose
        config changed, and wait for those ACKs. As istiod's incremental pushes, a proxy
        whose config an update leaves alone gets nothing (with ~40 proxies a full push per
        apply made the late labs of a run several times slower). Raises XdsRejected (with
        Envoy's reason) when a sidecar NACKs."""
        with self._push_lock:
            mesh = self.mesh_view()
            # what the metrics agents look peers up in, built here (the agents run on the
            # loop thread, while an apply may be changing the config store)
            self._directory = Directory.of(mesh)
            # a copy: pods may start on another thread meanwhile (a controller's); their
            # own push follows once their Envoys run
            sidecars = dict(self._sidecars)
            versions = {}
            for name, sidecar in sidecars.items():
                node_id = sidecar.view.node_id
                resources = self._resources(mesh, sidecar.view)
                if self._pushed.get(node_id) == resources and self._xds.snapshot(node_id):
                    continue
                versions[name] = self._xds.set_snapshot(node_id, resources)
                self._pushed[node_id] = resources
            for name, version in versions.items():
                self._xds.wait_acked(sidecars[name].view.node_id, version, ACK_TIMEOUT_S)

    def _resources(self, mesh: pilot.MeshView, proxy: pilot.ProxyView) -> dict[str, dict]:
        """istiod's config for a proxy, plus what its node agent serves over SDS: the
        workload certificate and the root its TLS contexts name."""
        resources = pilot.generate(mesh, proxy)
        secrets = {**resources.get(pilot.SECRET, {}),
                   **self._agent.secrets(proxy.namespace, proxy.service_account)}
        return {**resources, pilot.SECRET: secrets}

    # -- metrics -----------------------------------------------------------------------
    def _metrics_directory(self) -> Directory:
        return self._directory or Directory()  # every push sets it; none before the first

    def _scrape_targets(self) -> list[dict]:
        pods = {p.name: p for p in self.registry.pods}
        return [local_prometheus.target_group(f"{agent.pod_ip}:{agent.port}", pod.namespace,
                                              pod.name, pod.labels)
                for name, agent in list(self._agents.items()) if (pod := pods.get(name))]

    def _update_scrape_targets(self) -> None:
        if self._prometheus is not None:
            self._prometheus.set_targets(self._scrape_targets())

    def prometheus_api(self, path: str, params: Mapping[str, str] | None = None) -> dict:
        """The local Prometheus' API; the server starts on first use (a run without the
        metrics labs does not pay for it), scraping every pod's agent."""
        if self._prometheus is None:
            executable = local_prometheus.binary()
            if executable is None:
                raise MeshError(local_prometheus.missing_reason())
            self._prometheus = local_prometheus.LocalPrometheus(
                self._workdir / "prometheus", executable).start(self._scrape_targets())
        return self._prometheus.api(path, params)

    # -- configuration ---------------------------------------------------------------
    def apply(self, manifests: list[Manifest]) -> list[ResourceKey]:
        items = []
        for m in manifests:  # check everything first: all or nothing
            self.check_supported(m)
            items.append((ResourceKey(m.kind, m.namespace or self.namespace, m.name), m))
        previous = self.store.snapshot()
        self.store.apply(items)
        try:
            self._push()
        except XdsRejected as exc:
            patched_by = self._envoy_filters_behind(exc)
            self.store.restore(previous)
            self._push()  # the previous config serves again
            m = manifests[0]
            raise ManifestError(m.source, f"the sidecars rejected the config the control plane "
                                f"made of it ({exc.reason}){patched_by}; the previous config "
                                "is back", resource=", ".join(x.describe() for x in manifests),
                                line=m.line) from None
        keys = [key for key, _ in items]
        self._owned.update(keys)
        return keys

    def _envoy_filters_behind(self, exc: XdsRejected) -> str:
        """", patched by EnvoyFilter <file>: <ns>/<name>" for the EnvoyFilters that changed
        a resource of the rejected type for that proxy (those whose resource Envoy's reason
        names, when it names one); "" when none did."""
        sidecar = next((s for s in self._sidecars.values() if s.view.node_id == exc.node_id), None)
        if sidecar is None:
            return ""
        mesh = self.mesh_view()
        touched = pilot.envoyfilter.trace(mesh, sidecar.view,
                                          pilot.translate(mesh, sidecar.view)).touched
        of_type = {name: filters for (type_url, name), filters in touched.items()
                   if type_url == exc.type_url}
        named = [f for name, filters in of_type.items() if name and name in exc.reason
                 for f in filters]
        filters = sorted(set(named) or {f for fs in of_type.values() for f in fs})
        if not filters:
            return ""
        entries = [self.store.get(ResourceKey("EnvoyFilter", *f.split("/", 1))) for f in filters]
        return ", patched by " + ", ".join(
            f"EnvoyFilter {f} ({e.manifest.source})" if e is not None else f"EnvoyFilter {f}"
            for f, e in zip(filters, entries))

    def _check_log_providers(self, m: Manifest) -> None:
        """A Telemetry's access-log providers must be file loggers (``envoy``, or a
        meshConfig ``envoyFileAccessLog`` provider): the local mesh has no gRPC or
        OpenTelemetry log service. An unknown name is left alone, as istiod does."""
        for i, logging in enumerate(m.model.spec.access_logging):
            for j, ref in enumerate(logging.providers):
                provider = pilot.meshconfig.extension_provider(self._mesh_config, ref.name)
                if provider is not None and "envoyFileAccessLog" not in provider:
                    kind = pilot.meshconfig.provider_kind(provider) or "?"
                    raise ManifestError(
                        m.source, f"the local mesh writes access logs with file providers only "
                        f"(envoy, or an envoyFileAccessLog extension provider); {ref.name!r} is "
                        f"a {kind} provider: run this lab with --mesh kube",
                        resource=m.describe(), path=f"spec.accessLogging[{i}].providers[{j}].name",
                        line=m.line)

    def check_supported(self, m: Manifest) -> None:
        """ManifestError unless the control plane translates the kind and every field set."""
        supported = SUPPORTED_FIELDS.get(m.kind)
        if supported is None:
            kinds = ", ".join(SUPPORTED_FIELDS)
            raise ManifestError(m.source, f"the local mesh does not implement {m.kind} yet "
                                f"(it implements {kinds}); run this lab with --mesh kube",
                                resource=m.describe(), line=m.line)
        for path, _ in iter_set_fields(m.model):
            if not path.startswith("spec.") or path == "spec":
                continue
            general = _INDEX.sub("[]", path)
            if not any(general == s or general.startswith((s + ".", s + "[")) or
                       s.startswith((general + ".", general + "[")) for s in supported):
                raise ManifestError(
                    m.source, "the local mesh does not implement this field yet; run this "
                    "lab with --mesh kube, or leave the field out", resource=m.describe(),
                    path=path, line=m.line)

        if m.kind == "EnvoyFilter":
            for i, cp in enumerate(m.model.spec.config_patches):
                if cp.apply_to in ("EXTENSION_CONFIG", "BOOTSTRAP"):
                    raise ManifestError(
                        m.source, f"the local mesh does not implement EnvoyFilter applyTo "
                        f"{cp.apply_to} (it patches listeners, filter chains, filters, route "
                        "configurations, virtual hosts, routes and clusters); run this lab with "
                        "--mesh kube", resource=m.describe(),
                        path=f"spec.configPatches[{i}].applyTo", line=m.line)
        if m.kind == "AuthorizationPolicy":
            if "istio.io/dry-run" in (m.raw["metadata"].get("annotations") or {}):
                raise ManifestError(
                    m.source, "the local mesh does not implement dry-run policies (the "
                    "annotation istio.io/dry-run) yet; remove the annotation, or run this lab "
                    "with --mesh kube", resource=m.describe(), path="metadata.annotations",
                    line=m.line)
            for i, rule in enumerate(m.model.spec.rules):
                for j, condition in enumerate(rule.when):
                    if condition.key.startswith("experimental."):
                        raise ManifestError(
                            m.source, f"the local mesh does not implement the experimental "
                            f"attribute {condition.key} yet; run this lab with --mesh kube",
                            resource=m.describe(), path=f"spec.rules[{i}].when[{j}].key",
                            line=m.line)
        if m.kind == "Telemetry":
            self._check_log_providers(m)
            self._check_tracing_providers(m)
        if m.kind == "RequestAuthentication":
            for i, rule in enumerate(m.model.spec.jwt_rules):
                if rule.jwks_uri:
                    raise ManifestError(
                        m.source, f"the local mesh cannot fetch jwksUri {rule.jwks_uri} (istiod "
                        "fetches it; the local mesh runs offline): inline the key set instead, "
                        "jwks: '<the JSON the URI serves>', or run this lab with --mesh kube",
                        resource=m.describe(), path=f"spec.jwtRules[{i}].jwksUri", line=m.line)
        if m.kind == "DestinationRule":
            for path, value in iter_set_fields(m.model):
                if path.endswith("tls.mode") and value not in _MESH_TLS_MODES:
                    raise ManifestError(
                        m.source, f"the local mesh does not implement tls mode {value} yet (it "
                        f"implements {' and '.join(_MESH_TLS_MODES)}); run this lab with "
                        "--mesh kube", resource=m.describe(), path=path, line=m.line)
        if m.kind == "ServiceEntry":
            spec = m.model.spec
            if (spec.resolution or "NONE") not in _RESOLUTIONS:
                raise ManifestError(
                    m.source, f"the local mesh does not implement resolution "
                    f"{spec.resolution or 'NONE'} (it implements DNS and STATIC; NONE sends to "
                    "the connection's original destination, which needs iptables); run this "
                    "lab with --mesh kube", resource=m.describe(), path="spec.resolution",
                    line=m.line)
            for i, port in enumerate(spec.ports):
                if (port.protocol or "").upper() not in pilot.HTTP_PROTOCOLS:
                    raise ManifestError(
                        m.source, f"the local mesh does not implement ServiceEntry ports with "
                        f"protocol {port.protocol or '(sniffed)'} yet (it implements HTTP); run "
                        "this lab with --mesh kube", resource=m.describe(),
                        path=f"spec.ports[{i}].protocol", line=m.line)
        if m.kind == "Gateway":
            for i, server in enumerate(m.model.spec.servers):
                protocol = (server.port.protocol or "").upper()
                if protocol not in _GATEWAY_PROTOCOLS:
                    raise ManifestError(
                        m.source, f"the local mesh does not implement Gateway servers with "
                        f"protocol {protocol} yet (it implements "
                        f"{', '.join(sorted(_GATEWAY_PROTOCOLS))}); run this lab with --mesh kube",
                        resource=m.describe(), path=f"spec.servers[{i}].port.protocol",
                        line=m.line)
                self._check_server_tls(m, i, protocol, server.tls)
        elif m.kind == "VirtualService" and m.model.spec.tls:
            gateways = m.model.spec.gateways
            if not gateways or "mesh" in gateways:
                raise ManifestError(
                    m.source, "the local mesh implements tls routes at gateways only (PASSTHROUGH "
                    "servers), not in sidecars; bind the VirtualService to a Gateway without "
                    "'mesh', or run this lab with --mesh kube", resource=m.describe(),
                    path="spec.tls", line=m.line)
        elif m.kind == "Secret":
            namespaces = sorted({p.namespace for p in self.registry.pods if p.gateway})
            if (m.namespace or self.namespace) not in namespaces:
                raise ManifestError(
                    m.source, f"the local mesh keeps Secrets for its gateways only, and a gateway "
                    f"reads credentials from its own namespace ({', '.join(namespaces) or 'none runs'}"
                    f"); istiod would never serve a Secret of namespace "
                    f"{m.namespace or self.namespace} to a gateway: create it with -n "
                    f"{ISTIO_NAMESPACE}", resource=m.describe(), path="metadata.namespace",
                    line=m.line)

    def _check_tracing_providers(self, m: Manifest) -> None:
        """A Telemetry's tracing may name only providers whose kind the control plane
        translates (a name meshConfig does not define traces nothing, as with istiod)."""
        for i, entry in enumerate(m.model.spec.tracing):
            for j, ref in enumerate(entry.providers):
                provider = pilot.meshconfig.extension_provider(self._mesh_config, ref.name)
                kind = pilot.meshconfig.provider_kind(provider) if provider else ""
                if not kind or kind in pilot.tracing.TRANSLATED_PROVIDER_KINDS:
                    continue
                if kind in pilot.tracing.TRACING_PROVIDER_KINDS:
                    why = (f"the local mesh does not implement {kind} tracing providers yet "
                           f"(meshConfig extensionProviders {ref.name!r} is one; it implements "
                           f"{', '.join(pilot.tracing.TRANSLATED_PROVIDER_KINDS)}): name a "
                           "zipkin provider, or run this lab with --mesh kube")
                else:
                    why = (f"meshConfig extensionProviders {ref.name!r} is a {kind} provider, "
                           "which does not trace (istiod configures no tracing with it): name "
                           "a zipkin provider")
                raise ManifestError(m.source, why, resource=m.describe(),
                                    path=f"spec.tracing[{i}].providers[{j}].name", line=m.line)

    @staticmethod
    def _check_server_tls(m: Manifest, index: int, protocol: str, tls) -> None:
        """ManifestError for a TLS setting the gateway translation does not implement."""
        modes = _GATEWAY_TLS_MODES.get(protocol)
        if tls is None or modes is None:
            return  # plain HTTP (tls only for httpsRedirect, as validation makes sure)
        path = f"spec.servers[{index}].tls"
        if tls.effective_mode not in modes:
            raise ManifestError(
                m.source, f"the local mesh does not implement {protocol} servers with TLS mode "
                f"{tls.effective_mode} yet (it implements {', '.join(modes)}); run this lab with "
                "--mesh kube", resource=m.describe(), path=f"{path}.mode", line=m.line)
        name = tls.credential_name or ""
        if "://" in name and not name.startswith(pilot.gateways.CREDENTIAL_SCHEME):
            raise ManifestError(
                m.source, f"the local mesh reads credentials from Kubernetes Secrets only "
                f"({pilot.gateways.CREDENTIAL_SCHEME}<name> or a bare name), not {name}",
                resource=m.describe(), path=f"{path}.credentialName", line=m.line)

    def warnings_for(self, manifests: list[Manifest]) -> list[str]:
        """What ``istioctl analyze`` reports for these manifests (see analysis.py)."""
        return analyze(manifests, self.registry, self.store, self.mesh_view(), self.namespace,
                       tuple(s.view for s in list(self._sidecars.values())))

    def delete(self, keys: Iterable[ResourceKey]) -> None:
        keys = list(keys)
        # Only this tool writes to the local store, so a key that is not ours is one that
        # is already gone: not an error, as on a cluster with --ignore-not-found.
        self.store.delete([k for k in keys if k in self._owned])
        self._owned.difference_update(keys)
        self._push()

    def owned_resources(self) -> set[ResourceKey]:
        return self.store.keys() & self._owned

    # -- traffic ---------------------------------------------------------------------
    def client(self) -> str:
        return self.istio.client

    def _pod(self, workload: str) -> Pod:
        """``workload`` in the labs' namespace (else istio-system's gateways), or
        ``<namespace>/<workload>``."""
        namespace, _, name = workload.rpartition("/")
        if namespace:
            pods = self.registry.workload_pods(name, namespace)
        else:
            pods = self.registry.workload_pods(workload, self.namespace) or \
                self.registry.workload_pods(workload, ISTIO_NAMESPACE)  # the gateways
        if not pods:
            raise MeshError(f"no workload {workload!r} in namespace {self.namespace}; deploy it "
                            "first (Given the <sample> sample is running)")
        return pods[0]

    def send(self, client: str, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        pod = self._pod(client)
        return curlbatch.run_here(request, count, self._workdir / pod.name,
                                  extra=self.curl_capture(pod, request.resolve))

    def curl_capture_for(self, workload: str) -> list[str]:
        """The curl options that put a learner's own curl inside ``workload`` (the workshop's
        ``bookinfo-labs curl --from``): what ``send`` gives the labs' curl."""
        return self.curl_capture(self._pod(workload))

    def pod_ip(self, workload: str) -> str:
        return self._pod(workload).ip

    def pod_ips(self, workload: str) -> list[str]:
        namespace, _, name = workload.rpartition("/")
        return [p.ip for p in self.registry.workload_pods(name, namespace or self.namespace)]

    def send_from_host(self, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        return curlbatch.run_here(request, count, self._workdir / "host")

    def curl_capture(self, pod: Pod, resolve: Sequence[str] = ()) -> list[str]:
        """curl options that put a curl inside ``pod``: cluster DNS plus iptables capture.
        Every Service name and port the pod can resolve connects to its sidecar's outbound
        listener for that port, and so does a name the request resolves itself (curl's
        ``--resolve host:port:address``: iptables captures whatever the address); other
        names do not resolve, as in a pod. The pod's own address is the source."""
        capture = ["--noproxy", "*", "--interface", pod.ip]
        if not pod.injected:
            return capture + self._kube_proxy(pod)
        targets = [(name, port.port) for service in list(self.registry.services.values())
                   for name in service.dns_names(pod.namespace) for port in service.ports]
        targets += [(host, int(port)) for host, port, _ in (r.split(":", 2) for r in resolve)]
        for name, port in targets:
            capture += ["--connect-to",
                        f"{name}:{port}:{pod.outbound_ip}:{pilot.listen_port(port)}"]
        return capture

    def _kube_proxy(self, pod: Pod) -> list[str]:
        """What a pod without a sidecar gets from cluster DNS and kube-proxy: a Service's
        name and port lead straight to the targetPort of a pod behind it (its sidecar's
        inbound listener, or the app itself where it has none), in plain text."""
        out = []
        for service in list(self.registry.services.values()):
            backends = self.registry.endpoints(service)
            if not backends:
                continue
            for port in service.ports:
                for name in service.dns_names(pod.namespace):
                    out += ["--connect-to", f"{name}:{port.port}:{backends[0].ip}:"
                                            f"{pilot.listen_port(port.target_port)}"]
        return out

    @staticmethod
    def _proxy_of(pod: Pod) -> "Sidecar":
        if pod.sidecar is None:
            raise MeshError(f"pod {pod.name} has no sidecar: {pod.injection}")
        return pod.sidecar

    def ingress_address(self, port_name: str = "http2") -> tuple[str, int]:
        """127.0.0.1 and the machine's port the ingress gateway's ``port_name`` is bound on
        (8080 for http2 unless something else had it)."""
        service = self.registry.service(INGRESS_SERVICE, ISTIO_NAMESPACE)
        pods = self.registry.workload_pods(INGRESS_SERVICE, ISTIO_NAMESPACE)
        if service is None or not pods:
            raise MeshError(f"no ingress gateway ({INGRESS_SERVICE} in {ISTIO_NAMESPACE}) runs "
                            "in this mesh: it starts with LocalMesh.start()")
        port = next((p for p in service.ports if p.name == port_name), None)
        if port is None:
            names = ", ".join(p.name for p in service.ports)
            raise MeshError(f"the ingress gateway has no port named {port_name} (it has {names})")
        return "127.0.0.1", pods[0].host_ports[port.target_port]

    def pod_named(self, name: str) -> Pod | None:
        return next((p for p in self.registry.pods if p.name == name), None)

    def run(self, coro, timeout_s: float = 600):
        """Run a coroutine on the mesh's loop (benchmarks and tests drive the engine so)."""
        return self._loop.run(coro, timeout_s=timeout_s)

    def load(self, client: str, url: str, *, connections: int, requests: int,
             qps: float = 0.0) -> LoadResult:
        pod = self._pod(client)
        target, host = captured(pod, url)
        return self._loop.run(run_load(target, host, connections=connections, requests=requests,
                                       qps=qps, source_ip=pod.ip), timeout_s=600)

    # -- observation -----------------------------------------------------------------
    def traces(self, service: str, limit: int = 20) -> list[Trace]:
        """From the tracing addon's Zipkin API, as ``curl http://zipkin.istio-system:9411/
        api/v2/traces?serviceName=<service>&limit=<n>`` from inside the mesh."""
        pods = self.registry.workload_pods(TRACING_ADDON, ISTIO_NAMESPACE)
        if not pods or ZIPKIN_PORT not in pods[0].ports:
            raise MeshError(f"no tracing backend ({TRACING_ADDON} in {ISTIO_NAMESPACE}) runs in "
                            "this mesh: it starts with LocalMesh.start()")
        pod = pods[0]
        url = (f"http://{pod.ip}:{pod.ports[ZIPKIN_PORT]}/api/v2/traces?"
               f"{urlencode({'serviceName': service, 'limit': limit})}")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return from_zipkin(json.loads(response.read()))
        except (OSError, ValueError) as exc:
            raise MeshError(f"the tracing backend did not answer {url}: {exc}") from None

    def logs(self, workload: str, since_s: float | None = None,
             container: str | None = None) -> list[str]:
        pod = self._pod(workload)
        if container == "istio-proxy" or pod.gateway:  # a gateway's log is its Envoy's
            return self._proxy_of(pod).access_log(since_s)
        if container not in (None, pod.container):
            raise MeshError(f"{pod.name} has no container {container!r}; its containers are "
                            f"{pod.container} and istio-proxy")
        return pod.log.lines(since_s)

    def proxy_stats(self, workload: str) -> dict[str, int]:
        """The sidecar's own stats: only those Istio's bootstrap (and the pod's
        proxyStatsMatcher) let it keep."""
        return self._proxy_of(self._pod(workload)).process.stats()

    def proxy_config(self, workload: str, section: str) -> dict:
        """The sidecar's config dump for routes, clusters, listeners, endpoints or secrets."""
        if section not in SECTIONS:
            raise MeshError(f"proxy-config {section}: choose one of {', '.join(SECTIONS)}")
        process = self._proxy_of(self._pod(workload)).process
        if section == "endpoints":
            return process.config_dump(include_eds=True)
        return process.config_dump(SECTIONS[section])

    def proxy_status(self) -> list:
        return self._xds.status()

    def proxies(self) -> list[str]:
        """The connected ADS nodes; a node id is ``<kind>~<ip>~<pod>.<ns>~<ns>.svc...``."""
        return [s.node_id.split("~")[2] for s in self._xds.status() if s.connected]


