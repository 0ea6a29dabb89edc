"""LocalMesh: the Mesh verbs on the embedded emulator."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from typing import Iterable

from aiohttp import web

from .. import curlbatch
from ..istio import iter_set_fields
from ..manifests import Manifest, ManifestError
from ..mesh import HttpRequest, HttpResponse, Mesh, MeshError, ResourceKey
from ..rundir import make_run_dir
from ..samples import sample_manifests
from ..versions import IstioVersion
from .apps import find_app
from .apps.base import AppContext
from ..loadgen import LoadResult
from .fortio import run_load
from .bootstrap import StatsMatcher
from .registry import Pod, Service, ServicePort, ServiceRegistry, fqdn, pod_name
from .config import ConfigStore
from .routing import subset_labels
from .runtime import LoopThread
from .sidecar import AppOutbound, Sidecar

# The Istio config fields this emulator implements, per kind. A field outside these is a
# clear error rather than silently ignored (docs/architecture.md#refuse-never-ignore).
# "[]" stands for any list index; a listed path covers everything below it.
_TRAFFIC_POLICY = (
    "loadBalancer.simple",
    "connectionPool.tcp.maxConnections", "connectionPool.tcp.connectTimeout",
    "connectionPool.http.http1MaxPendingRequests", "connectionPool.http.http2MaxRequests",
    "connectionPool.http.maxRequestsPerConnection", "connectionPool.http.maxRetries",
    "outlierDetection.consecutive5xxErrors", "outlierDetection.consecutiveGatewayErrors",
    "outlierDetection.consecutiveErrors", "outlierDetection.interval",
    "outlierDetection.baseEjectionTime", "outlierDetection.maxEjectionPercent",
)
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
        "spec.http[].fault.delay", "spec.http[].fault.abort.httpStatus",
        "spec.http[].fault.abort.percentage",
        "spec.http[].mirror", "spec.http[].mirrorPercentage", "spec.http[].mirrorPercent",
        "spec.http[].mirrors",
    ),
    "DestinationRule": (
        "spec.host", "spec.subsets[].name", "spec.subsets[].labels",
        "spec.trafficPolicy.portLevelSettings[].port",
        "spec.subsets[].trafficPolicy.portLevelSettings[].port",
        *(f"{place}.{field}" for place in _POLICY_PLACES for field in _TRAFFIC_POLICY),
    ),
}
_INDEX = re.compile(r"\[\d+\]")


class LocalMesh(Mesh):
    name = "local"
    poll_interval_s = 0.0

    def __init__(self, istio: IstioVersion, namespace: str = "default"):
        self.istio = istio
        self.namespace = namespace
        self.registry = ServiceRegistry()
        self.store = ConfigStore()
        self._owned: set[ResourceKey] = set()
        self._deployed: set[str] = set()
        self._runners: list[web.AppRunner] = []
        self._outbounds: list[AppOutbound] = []
        self._exposed_stats: dict[str, StatsMatcher] = {}  # pod name -> its bootstrap's matcher
        self._workdir = make_run_dir()  # removes those of killed runs first
        self._loop = LoopThread()
        self._closed = False

    @classmethod
    def start(cls, istio: IstioVersion, namespace: str = "default") -> "LocalMesh":
        if shutil.which("curl") is None:
            raise MeshError("the local mesh sends traffic with the real curl, which is not "
                            "installed: run `make deps` (or apt-get install curl)")
        return cls(istio, namespace)

    # -- lifecycle -------------------------------------------------------------------
    def deploy(self, sample: str) -> None:
        if sample in self._deployed:
            return
        self._loop.run(self._deploy(sample_manifests(sample, self.istio)))
        self._deployed.add(sample)

    async def _deploy(self, manifests: list[Manifest]) -> None:
        for m in manifests:
            if m.kind == "Service":
                self.registry.add_service(self._service(m))
        for m in manifests:
            if m.kind == "Deployment":
                for _ in range(m.raw["spec"].get("replicas", 1)):
                    await self._start_pod(m)

    def _service(self, m: Manifest) -> Service:
        spec = m.raw["spec"]
        ports = [ServicePort(p.get("name", ""), p["port"], int(p.get("targetPort", p["port"])),
                             p.get("protocol", "TCP")) for p in spec.get("ports", [])]
        return Service(m.name, m.namespace or self.namespace, ports,
                       dict(spec.get("selector") or {}), dict(m.raw["metadata"].get("labels") or {}))

    async def _start_pod(self, m: Manifest) -> None:
        template = m.raw["spec"]["template"]
        container = template["spec"]["containers"][0]
        image = container["image"]
        try:
            app = find_app(image)
        except KeyError:
            raise MeshError(f"{m.source}: {m.describe()} runs image {image}, which has no "
                            "local implementation; run this sample with --mesh kube") from None
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
        pod = Pod(
            name=pod_name(m.name), namespace=m.namespace or self.namespace, deployment=m.name,
            labels=dict(template["metadata"].get("labels") or {}),
            annotations=dict(template["metadata"].get("annotations") or {}),
            service_account=template["spec"].get("serviceAccountName", "default"),
            image=image, env=env, container=container.get("name", m.name))
        self._exposed_stats[pod.name] = StatsMatcher.for_pod(pod.name, pod.annotations)
        sidecar = Sidecar(pod, self.registry, self.store, self.istio)
        if app is not None:
            factory, options = app
            outbound = AppOutbound(sidecar)
            self._outbounds.append(outbound)
            ctx = AppContext(pod_name=pod.name, labels=pod.labels, env={**env, "HOSTNAME": pod.name},
                             outbound=outbound, istio=self.istio, log=pod.log.append,
                             options=options,
                             command=[*container.get("command", ()), *container.get("args", ())])
            application = factory(ctx)
            if inspect.isawaitable(application):
                application = await application
            # A reset from the sidecar (a timeout upstream) reaches the app as a disconnect.
            runner = web.AppRunner(application, access_log=None, handle_signals=False,
                                   handler_cancellation=True)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self._runners.append(runner)
            local_port = runner.addresses[0][1]
            for port in container.get("ports") or []:
                pod.ports[int(port["containerPort"])] = local_port
        await sidecar.start()
        pod.sidecar = sidecar
        self.registry.pods.append(pod)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def _stop() -> None:
            for pod in self.registry.pods:
                if pod.sidecar:
                    await pod.sidecar.stop()
            for outbound in self._outbounds:
                await outbound.close()
            for runner in self._runners:
                await runner.cleanup()

        try:
            self._loop.run(_stop(), timeout_s=10)
        finally:
            self._loop.stop()
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- configuration ---------------------------------------------------------------
    def apply(self, manifests: list[Manifest]) -> list[ResourceKey]:
        items = []
        for m in manifests:  # check everything first: all or nothing
            self._check_supported(m)
            items.append((ResourceKey(m.kind, m.namespace or self.namespace, m.name), m))
        self.store.apply(items)
        keys = [key for key, _ in items]
        self._owned.update(keys)
        return keys

    def _check_supported(self, m: Manifest) -> None:
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

    def warnings_for(self, manifests: list[Manifest]) -> list[str]:
        """What ``istioctl analyze`` reports for these VirtualServices (IST0101).

        Istio applies a route to a host that is not a Service (nor a ServiceEntry, which the
        local mesh does not implement), and analyze reports it: "Referenced host not
        found", or "Referenced mirror host not found" for a mirror (1.26.0
        pkg/config/analysis/analyzers/virtualservice/destinationhosts.go). A subset no
        DestinationRule defines is reported too (destinationrules.go there). A
        DestinationRule whose host is not a Service has no analyzer and no effect.
        """
        found = []
        for m in manifests:
            if m.kind != "VirtualService":
                continue
            namespace = m.namespace or self.namespace
            where = f"{m.source}: {m.describe()}"
            for i, rule in enumerate(m.model.spec.http or []):
                for j, dest in enumerate(rule.route or []):
                    host = dest.destination.host
                    if not self._is_service(host, namespace):
                        found.append(
                            f"{where}: spec.http[{i}].route[{j}].destination.host: host {host!r} "
                            "is not a Service in the mesh (istioctl analyze: IST0101 Referenced "
                            f"host not found: \"{host}\"); {self._services_hint()}requests "
                            "routed there get 503 (NC, cluster_not_found)")
                    subset = dest.destination.subset
                    if subset and subset_labels(self.store, fqdn(host, namespace), subset) is None:
                        found.append(
                            f"{where}: spec.http[{i}].route[{j}].destination: "
                            f"subset {subset!r} of host {host!r} is not defined "
                            "by any DestinationRule; requests routed there get 503 (NC, "
                            "cluster_not_found) until one is applied")
                mirrors = [(f"spec.http[{i}].mirror.host", rule.mirror.host)] if rule.mirror else []
                mirrors += [(f"spec.http[{i}].mirrors[{j}].destination.host", p.destination.host)
                            for j, p in enumerate(rule.mirrors)]
                found += [f"{where}: {path}: host {host!r} is not a Service in the mesh "
                          f"(istioctl analyze: IST0101 Referenced mirror host not found: "
                          f"\"{host}\"); {self._services_hint()}nothing is mirrored there"
                          for path, host in mirrors if not self._is_service(host, namespace)]
        return found

    def _is_service(self, host: str, namespace: str) -> bool:
        return self.registry.service_by_fqdn(fqdn(host, namespace)) is not None

    def _services_hint(self) -> str:
        services = ", ".join(sorted(s.name for s in self.registry.services.values()))
        return f"known Services: {services}; " if services else "no sample is deployed; "

    def delete(self, keys: Iterable[ResourceKey]) -> None:
        keys = list(keys)
        # Only this tool writes to the local store, so a key that is not ours is one that
        # is already gone: not an error, as on a cluster with --ignore-not-found.
        self.store.delete([k for k in keys if k in self._owned])
        self._owned.difference_update(keys)

    def owned_resources(self) -> set[ResourceKey]:
        return self.store.keys() & self._owned

    # -- traffic ---------------------------------------------------------------------
    def client(self) -> str:
        return self.istio.client

    def _pod(self, workload: str) -> Pod:
        pods = self.registry.workload_pods(workload, self.namespace)
        if not pods:
            raise MeshError(f"no workload {workload!r} in namespace {self.namespace}; deploy it "
                            "first (Given the <sample> sample is running)")
        return pods[0]

    def send(self, client: str, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        pod = self._pod(client)
        jar_dir = self._workdir / pod.name
        jar_dir.mkdir(exist_ok=True)
        marker = curlbatch.new_marker()
        # Cluster DNS plus iptables capture: every name the pod can resolve connects to its
        # sidecar's outbound listener; other names fail to resolve as they would in a pod.
        capture = []
        for name in self.registry.dns_names(pod.namespace):
            capture += ["--connect-to", f"{name}::127.0.0.1:{pod.sidecar.outbound_port}"]
        limit = (request.max_time_s or 60) * count + 30
        # One curl process per share, all running at once (one share unless parallel > 1);
        # each reads its URLs from its own config file, so none waits for another's input.
        processes = []
        for i, n in enumerate(curlbatch.shares(count, request.parallel)):
            config = jar_dir / f"batch-{marker.strip('@')}-{i}.curlrc"
            config.write_text(curlbatch.curl_config(request, n))
            argv = curlbatch.curl_argv(request, marker, str(jar_dir), config=str(config),
                                       extra=["--noproxy", "*", *capture])
            processes.append((subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE),
                              n, config))
        responses = []
        try:
            for process, n, _ in processes:
                stdout, _ = process.communicate(timeout=limit)
                responses += curlbatch.parse_output(stdout, marker, n)
        finally:
            for process, _, config in processes:
                if process.poll() is None:
                    process.kill()
                config.unlink(missing_ok=True)
        return responses

    def run(self, coro, timeout_s: float = 600):
        """Run a coroutine on the mesh's loop (benchmarks and tests drive the engine so)."""
        return self._loop.run(coro, timeout_s=timeout_s)

    def load(self, client: str, url: str, *, connections: int, requests: int,
             qps: float = 0.0) -> LoadResult:
        pod = self._pod(client)
        return self._loop.run(run_load(pod.sidecar.outbound_port, url, connections=connections,
                                       requests=requests, qps=qps), timeout_s=600)

    # -- observation -----------------------------------------------------------------
    def logs(self, workload: str, since_s: float | None = None,
             container: str | None = None) -> list[str]:
        pod = self._pod(workload)
        if container == "istio-proxy":
            return pod.sidecar.access_log.lines(since_s)
        if container not in (None, pod.container):
            raise MeshError(f"{pod.name} has no container {container!r}; its containers are "
                            f"{pod.container} and istio-proxy")
        return pod.log.lines(since_s)

    def proxy_stats(self, workload: str) -> dict[str, int]:
        """The stats Istio's bootstrap (and the pod's proxyStatsMatcher) lets Envoy keep."""
        pod = self._pod(workload)
        exposed = self._exposed_stats[pod.name]
        return {name: value for name, value in pod.sidecar.stats.snapshot().items()
                if exposed(name)}

    def proxy_access_log(self, workload: str) -> list[str]:
        return self._pod(workload).sidecar.access_log.lines()
