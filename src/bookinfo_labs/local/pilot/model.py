"""What the control plane reads: the mesh's config and registry, and the proxy it serves.

Plain, frozen data, filled by the local mesh from its config store and service registry;
the translation (``generate``) is a pure function of it, so its output can be pinned by
golden files and read without any process running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...versions import IstioVersion


#: protocols a port carries as HTTP (Istio's protocol selection)
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
#: Istio's protocols by port name prefix or appProtocol (protocol.Parse)
_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "grpc": "GRPC", "grpc-web": "GRPC-WEB", "http": "HTTP",
              "http_proxy": "HTTP_PROXY", "http2": "HTTP2", "https": "HTTPS", "tls": "TLS",
              "mongo": "MONGO", "redis": "REDIS", "mysql": "MYSQL"}
#: Kubernetes' standard appProtocol names
_KUBERNETES_APP_PROTOCOLS = {"kubernetes.io/h2c": "HTTP2", "kubernetes.io/ws": "HTTP",
                             "kubernetes.io/wss": "HTTPS"}
#: ports Istio takes for TCP when nothing names their protocol (SMTP, DNS, MySQL, MongoDB)
_WELL_KNOWN_TCP = {25, 53, 3306, 27017}


@dataclass(frozen=True)
class ServicePortView:
    name: str
    port: int
    target_port: int
    protocol: str = ""  # a ServiceEntry port's, a Service port's appProtocol; else the name

    @property
    def selected_protocol(self) -> str:
        """Istio's protocol of the port (kube/conversion.go ConvertProtocol): the explicit
        one, else the name's prefix before ``-`` (``tcp-other`` is TCP); "" when neither
        says (Istio sniffs it), except on a well-known TCP port."""
        if self.protocol in _KUBERNETES_APP_PROTOCOLS:
            return _KUBERNETES_APP_PROTOCOLS[self.protocol]
        name = (self.protocol or self.name).lower()
        found = _PROTOCOLS.get("grpc-web" if name.startswith("grpc-web") else name.split("-")[0],
                               "")
        return found or ("TCP" if self.port in _WELL_KNOWN_TCP else "")

    @property
    def is_http(self) -> bool:
        """HTTP by its protocol; a sniffed port is taken for HTTP by the local mesh."""
        return self.selected_protocol in HTTP_PROTOCOLS | {""}


@dataclass(frozen=True)
class EndpointView:
    """A ServiceEntry endpoint: an address (IP or DNS name) and per-port-name ports."""

    address: str
    ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceView:
    """A Kubernetes Service as istiod's registry holds it, or one host of a ServiceEntry
    (``hostname`` set: its name is the host, its ``resolution`` and ``endpoints`` say
    where traffic goes)."""

    name: str
    namespace: str
    ports: tuple[ServicePortView, ...]
    selector: Mapping[str, str]
    hostname: str = ""
    resolution: str = ""  # a ServiceEntry's: DNS or STATIC
    endpoints: tuple[EndpointView, ...] = ()
    config: "ConfigView | None" = None  # the ServiceEntry it comes from

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return namespace == self.namespace and bool(self.selector) and all(
            labels.get(k) == v for k, v in self.selector.items())

    @property
    def fqdn(self) -> str:
        return self.hostname or f"{self.name}.{self.namespace}.svc.cluster.local"

    @property
    def from_service_entry(self) -> bool:
        return bool(self.hostname)


@dataclass(frozen=True)
class WorkloadView:
    """A pod: its address and labels (endpoints are pods a Service selects)."""

    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str]
    service_account: str = "default"
    #: injected: its pod carries the injector's ``security.istio.io/tlsMode: istio`` label,
    #: so clients speak mTLS to it (gateways' pods have no such label: plain text)
    sidecar: bool = True


@dataclass(frozen=True)
class SecretView:
    """A Kubernetes Secret: its data, decoded (what istiod's credentials controller reads)."""

    namespace: str
    name: str
    data: Mapping[str, bytes]


@dataclass(frozen=True)
class ConfigView:
    """One Istio config object, with its creation order (Istio: the oldest wins)."""

    kind: str
    namespace: str
    name: str
    spec: Any  # the typed model's spec
    api_version: str = "networking.istio.io/v1"
    created: int = 0

    @property
    def config_ref(self) -> str:
        """``/apis/networking.istio.io/v1/namespaces/<ns>/virtual-service/<name>``: the
        metadata istiod puts on what it generated from this object."""
        slug = {"VirtualService": "virtual-service", "DestinationRule": "destination-rule",
                "Gateway": "gateway", "ServiceEntry": "service-entry",
                "Sidecar": "sidecar", "EnvoyFilter": "envoy-filter",
                "PeerAuthentication": "peer-authentication",
                "AuthorizationPolicy": "authorization-policy",
                "RequestAuthentication": "request-authentication"}[self.kind]
        return f"/apis/{self.api_version}/namespaces/{self.namespace}/{slug}/{self.name}"


@dataclass(frozen=True)
class MeshView:
    """Everything istiod knows that a sidecar's config depends on."""

    istio: IstioVersion
    services: tuple[ServiceView, ...] = ()
    workloads: tuple[WorkloadView, ...] = ()
    configs: tuple[ConfigView, ...] = ()  # Istio config objects, any order
    #: istiod's meshConfig (the ``mesh`` key of the ``istio`` ConfigMap) as a dict, in
    #: Istio's camelCase: ``accessLogFile``, ``accessLogEncoding``, ``enableTracing``,
    #: ``extensionProviders``, ``defaultProviders``... (``demo_mesh_config`` is the
    #: demo profile's). Only outboundTrafficPolicy has its own field below.
    mesh_config: Mapping[str, Any] = field(default_factory=lambda: {
        "accessLogFile": "/dev/stdout"})
    #: meshConfig.outboundTrafficPolicy.mode: ALLOW_ANY (Istio's default) or REGISTRY_ONLY
    outbound_policy: str = "ALLOW_ANY"
    #: the mesh's DNS server (address, port): what a pod's resolv.conf names on a cluster
    dns_server: tuple[str, int] | None = None
    secrets: tuple[SecretView, ...] = ()  # what gateways' credentialName may name

    def secret(self, namespace: str, name: str) -> SecretView | None:
        return next((s for s in self.secrets if s.namespace == namespace and s.name == name),
                    None)

    def of_kind(self, kind: str) -> list[ConfigView]:
        return sorted((c for c in self.configs if c.kind == kind), key=lambda c: c.created)

    @property
    def all_services(self) -> tuple[ServiceView, ...]:
        """The Kubernetes Services, then one entry per ServiceEntry host (oldest first; a
        host a Service or an older ServiceEntry already has is left out)."""
        out = list(self.services)
        seen = {s.fqdn for s in out}
        for se in self.of_kind("ServiceEntry"):
            spec = se.spec
            ports = tuple(ServicePortView(p.name, p.number, p.target_port or p.number,
                                          p.protocol or "") for p in spec.ports)
            endpoints = tuple(EndpointView(e.address, dict(e.ports or {}))
                              for e in spec.endpoints if e.address)
            for host in spec.hosts:
                if host.lower() in seen:
                    continue
                seen.add(host.lower())
                out.append(ServiceView(host.lower(), se.namespace, ports, {}, hostname=host.lower(),
                                       resolution=spec.resolution or "NONE", endpoints=endpoints,
                                       config=se))
        return tuple(out)


@dataclass(frozen=True)
class ProxyView:
    """One proxy: a sidecar, or a gateway (``router``); its pod, and where it may listen.

    Without iptables a sidecar binds real sockets (Istio's INTERCEPTION_MODE=NONE): its
    outbound listeners on ``outbound_ip`` (the name a pod's apps resolve every Service to),
    its inbound listeners on the pod's ``ip`` (what endpoints name), and the app itself on
    ``app_ip`` (the pod's own loopback). A gateway's listeners bind its pod's ``ip``, and
    also 127.0.0.1 on the machine's port that ``host_ports`` maps their port to (what a
    NodePort or kind's port mapping does on a cluster).
    """

    pod: str
    namespace: str
    labels: Mapping[str, str]
    ip: str
    outbound_ip: str
    app_ip: str
    inbound_ports: tuple[int, ...] = ()  # the container ports a Service targets
    service_account: str = "default"
    access_log_path: str = "/dev/stdout"
    #: where the loggers feeding the standard metrics write ("": no metrics; pilot/metrics.py)
    metrics_log_path: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    kind: str = "sidecar"  # or "router": a gateway
    host_ports: Mapping[int, int] = field(default_factory=dict)  # container port -> machine's

    @property
    def is_gateway(self) -> bool:
        return self.kind == "router"

    @property
    def node_id(self) -> str:
        return f"{self.kind}~{self.ip}~{self.pod}.{self.namespace}~{self.namespace}.svc.cluster.local"

    @property
    def node_cluster(self) -> str:
        """``<app>.<ns>``, else ``istio-proxy`` (pkg/bootstrap's service cluster)."""
        app = self.labels.get("app")
        return f"{app}.{self.namespace}" if app else "istio-proxy"
