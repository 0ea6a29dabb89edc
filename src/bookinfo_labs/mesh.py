"""The Mesh interface: every step talks to one of these, never to a backend directly.

Two implementations: ``bookinfo_labs.local.LocalMesh`` (the embedded emulator, the default)
and ``bookinfo_labs.kube.KubeMesh`` (a real cluster). Each verb has an obvious meaning on
both; see docs/architecture.md#what-each-verb-does-on-each-mesh.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, NamedTuple

from .loadgen import LoadResult
from .manifests import Manifest
from .versions import IstioVersion

if TYPE_CHECKING:
    from .tracing import Trace
    from .samples import Placement


class ResourceKey(NamedTuple):
    """Identity of one applied object, as kubectl would name it."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} (namespace {self.namespace})"


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request as a client pod would send it with curl.

    ``cookie_jar`` names a jar kept inside the client (``curl -b jar -c jar``), so a login
    followed by page views behaves like a browser session. For TLS, ``resolve`` pins names
    to addresses (``curl --resolve host:port:address``: the name is the SNI and the Host),
    ``cacert`` is the CA file that verifies the server, ``cert`` and ``key`` the client's
    certificate and key files.
    """

    url: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    data: str | None = None
    cookie_jar: str | None = None
    max_time_s: float | None = None
    parallel: int = 1
    #: curl's ``--resolve host:port:address`` entries: names cluster DNS does not know
    resolve: tuple[str, ...] = ()
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None

    def target(self) -> tuple[str, int, str]:
        """Where curl connects for the URL: (address, port, name), the address being the
        one ``resolve`` pins the name and port to, else the name itself."""
        scheme, _, rest = self.url.partition("://")
        authority = rest.split("/", 1)[0]
        name, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
        number = int(port) if port else (443 if scheme == "https" else 80)
        for entry in self.resolve:  # host:port:address
            pinned, pinned_port, address = entry.split(":", 2)
            if pinned == name and int(pinned_port) == number:
                return address, number, name
        return name, number, name

    def curl_args(self) -> list[str]:
        """The curl arguments (without the URL) both backends pass to a real curl."""
        args = ["-sS", "-i"]
        for entry in self.resolve:
            args += ["--resolve", entry]
        if self.method != "GET" or self.data is not None:
            args += ["-X", self.method]
        for name, value in self.headers:
            args += ["-H", f"{name}: {value}"]
        if self.data is not None:
            args += ["--data", self.data]
        if self.max_time_s is not None:
            args += ["--max-time", f"{self.max_time_s:g}"]
        for option, value in (("--cacert", self.cacert), ("--cert", self.cert),
                              ("--key", self.key)):
            if value is not None:
                args += [option, value]
        return args


@dataclass
class HttpResponse:
    """What curl saw for one request.

    ``status`` is 0 when no HTTP response arrived (curl prints ``000``); ``exit_code`` is
    curl's exit code for that transfer and ``error`` its message. Over TLS,
    ``certificates`` is the chain the server presented, PEM, leaf first (curl's
    ``%{certs}``, from 7.88; empty over plain HTTP, with an older curl, or when the
    handshake failed).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    elapsed_s: float = 0.0
    exit_code: int = 0
    error: str = ""
    certificates: tuple[str, ...] = ()

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


def section(title: str, produce: Callable[[], str]) -> str:
    """One titled block of diagnostics; a failure to gather it is reported in place, never
    raised (diagnostics must never hide the scenario's own failure)."""
    try:
        body = produce().rstrip()
    except Exception as exc:  # noqa: BLE001
        body = f"(could not get this: {type(exc).__name__}: {exc})"
    return f"===== {title} =====\n{body or '(none)'}\n"


class MeshError(Exception):
    """A mesh cannot do what was asked: the message says why and what to do."""


class Mesh(abc.ABC):
    """A service mesh the labs run against."""

    #: "local" or "kube"
    name: str
    #: the Istio release whose behaviour is expected (and, locally, emulated)
    istio: IstioVersion
    #: the namespace the labs run in
    namespace: str = "default"

    # -- lifecycle -------------------------------------------------------------------
    @abc.abstractmethod
    def deploy(self, sample: str, placement: "Placement | None" = None) -> None:
        """Make a sample app (``bookinfo``, ``sleep``/``curl``, ``httpbin``...) ready to serve,
        in the labs' namespace or where ``placement`` says (another namespace, with or
        without sidecar injection).

        Idempotent: a sample that is already running is left as it is.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything this object started. Safe to call twice."""

    # -- configuration ---------------------------------------------------------------
    @abc.abstractmethod
    def apply(self, manifests: list[Manifest]) -> list[ResourceKey]:
        """Apply validated manifests, all or nothing; return the keys of what was applied."""

    @abc.abstractmethod
    def delete(self, keys: Iterable[ResourceKey]) -> None:
        """Delete objects this tool applied; an already missing one is not an error."""

    @abc.abstractmethod
    def owned_resources(self) -> set[ResourceKey]:
        """Every Istio config object this tool applied and that still exists."""

    def warnings_for(self, manifests: list[Manifest]) -> list[str]:
        """Analysis findings (like ``istioctl analyze``) for manifests just applied."""
        return []

    def diagnostics(self, manifests: list[Manifest], since_s: float | None = None,
                    client: str | None = None) -> str:
        """What to attach to a failed scenario, trimmed to what bears on the failure: the
        objects it applied (one line each: the YAML is in the files and the feature) and the
        sending sidecar's access log for the last requests (``since_s`` seconds back, at
        most five lines; ``client``: the workload that sent them, else the client pod).
        Backends add their own view (analysis, proxy config). Never raises.
        """
        client = client or self.client()
        return "\n".join([
            section("applied in this scenario", lambda: "\n".join(
                f"{m.kind}/{m.name}  ({m.source}:{m.line})" for m in manifests)),
            section(f"the {client} sidecar's access log, last requests",
                    lambda: "\n".join(self.logs(client, since_s=since_s,
                                                container="istio-proxy")[-5:])),
        ])

    # -- traffic ---------------------------------------------------------------------
    @abc.abstractmethod
    def client(self) -> str:
        """The name of the in-mesh client workload (``sleep`` or ``curl``, per Istio version)."""

    @abc.abstractmethod
    def send(self, client: str, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        """Send ``request`` ``count`` times, in order, from inside ``client``: one batch, one exec."""

    def pod_ip(self, workload: str) -> str:
        """The IP address of ``workload``'s (first) pod: ``kubectl get pod -l app=<workload>
        -o jsonpath='{.items[0].status.podIP}'``, what a peer's sidecar sees as the source."""
        raise MeshError(f"the {self.name} mesh cannot tell pod addresses")

    @abc.abstractmethod
    def set_mesh_config(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Set top-level fields of istiod's mesh config (``accessLogEncoding``,
        ``outboundTrafficPolicy``...; None unsets one) and return what they were (None where
        unset), so the same call with that puts them back. The change has reached every
        proxy whose config it changes when this returns, as after an apply."""

    def set_outbound_traffic_policy(self, mode: str) -> str:
        """Set the mesh-wide ``meshConfig.outboundTrafficPolicy.mode`` (``ALLOW_ANY`` or
        ``REGISTRY_ONLY``); return the mode it replaced."""
        if mode not in ("ALLOW_ANY", "REGISTRY_ONLY"):
            raise MeshError(f"outboundTrafficPolicy.mode {mode!r}: choose ALLOW_ANY or "
                            "REGISTRY_ONLY")
        previous = self.set_mesh_config({"outboundTrafficPolicy": {"mode": mode}})
        return (previous.get("outboundTrafficPolicy") or {}).get("mode") or "ALLOW_ANY"

    @abc.abstractmethod
    def send_from_host(self, request: HttpRequest, count: int = 1) -> list[HttpResponse]:
        """Send ``request`` ``count`` times with this machine's curl, from outside the mesh:
        a learner's shell reaching the ingress gateway at ``ingress_address``."""

    @abc.abstractmethod
    def ingress_address(self, port_name: str = "http2") -> tuple[str, int]:
        """Where this machine reaches the ingress gateway's Service port ``port_name``
        (``http2``, ``https``, ``tcp``): the handout's INGRESS_HOST and INGRESS_PORT."""

    @abc.abstractmethod
    def load(self, client: str, url: str, *, connections: int, requests: int,
             qps: float = 0.0) -> "LoadResult":
        """A fortio load from ``client``: ``connections`` connections, ``requests`` calls in all."""

    # -- observation -----------------------------------------------------------------
    #: how long consecutive observations of the eventually primitive are spaced; the local
    #: mesh applies config synchronously, a cluster propagates it through istiod
    poll_interval_s: float = 0.0
    #: by when a request's access-log line is in its proxy's log after the request ended:
    #: Envoy flushes its log files every second in a pod (pilot-agent's
    #: --file-flush-interval-msec 1000), plus reading it back through the API server
    access_log_flush_s: float = 1.5

    @abc.abstractmethod
    def logs(self, workload: str, since_s: float | None = None,
             container: str | None = None) -> list[str]:
        """Log lines of a workload's container: the app's (default) or ``istio-proxy``'s."""

    @abc.abstractmethod
    def proxy_stats(self, workload: str) -> dict[str, int]:
        """The workload's sidecar statistics, Envoy stat name to value."""

    #: how often Prometheus scrapes the proxies' metrics (the addon's 15 s on a cluster)
    prometheus_scrape_interval_s: float = 15.0

    def prometheus_api(self, path: str, params: Mapping[str, str] | None = None) -> dict:
        """GET ``/api/v1/<path>`` of the mesh's Prometheus (``query``, ``targets``): the
        API's JSON answer. Raises MeshError when the mesh has none."""
        raise MeshError(f"the {self.name} mesh has no Prometheus")

    def prometheus_query(self, promql: str,
                         at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """An instant PromQL query (now, or at ``at`` seconds since the epoch): each series'
        labels and value."""
        from . import promql as api

        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        return api.vector(self.prometheus_api("query", params), promql)

    def traces(self, service: str, limit: int = 20) -> list[Trace]:
        """The newest ``limit`` traces with a span of ``service`` (``productpage.default``,
        as Envoy names a proxy's service), newest first, from the mesh's tracing backend:
        Jaeger's query API on a cluster, the local collector's Zipkin API locally."""
        raise MeshError(f"the {self.name} mesh has no tracing backend")

    def proxy_config(self, workload: str, section: str) -> dict:
        """The sidecar's own config, as ``istioctl proxy-config <section> -o json`` shows it:
        its Envoy config dump for ``routes``, ``clusters``, ``listeners``, ``endpoints`` or
        ``secrets``."""
        raise MeshError(f"the {self.name} mesh cannot read proxy config")
