"""What the control plane reads: the mesh's config and registry, and the proxy it serves.

Plain, frozen data, filled by the local mesh from its config store and service registry;
the translation (``generate``) is a pure function of it, so its output can be pinned by
golden files and read without any process running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...versions import IstioVersion


@dataclass(frozen=True)
class ServicePortView:
    name: str
    port: int
    target_port: int
    protocol: str = ""  # explicit: a Service port's appProtocol (else its name says; tcp.py)


@dataclass(frozen=True)
class ServiceView:
    """A Kubernetes Service as istiod's registry holds it."""

    name: str
    namespace: str
    ports: tuple[ServicePortView, ...]
    selector: Mapping[str, str]

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        return namespace == self.namespace and bool(self.selector) and all(
            labels.get(k) == v for k, v in self.selector.items())

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass(frozen=True)
class WorkloadView:
    """A pod: its address and labels (endpoints are pods a Service selects)."""

    name: str
    namespace: str
    ip: str
    labels: Mapping[str, str]
    service_account: str = "default"


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
                "Gateway": "gateway"}[self.kind]
        return f"/apis/{self.api_version}/namespaces/{self.namespace}/{slug}/{self.name}"


@dataclass(frozen=True)
class MeshView:
    """Everything istiod knows that a sidecar's config depends on."""

    istio: IstioVersion
    services: tuple[ServiceView, ...] = ()
    workloads: tuple[WorkloadView, ...] = ()
    configs: tuple[ConfigView, ...] = ()  # Istio config objects, any order
    access_log: bool = True  # meshConfig.accessLogFile set (the demo profile's /dev/stdout)

    def of_kind(self, kind: str) -> list[ConfigView]:
        return sorted((c for c in self.configs if c.kind == kind), key=lambda c: c.created)


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
