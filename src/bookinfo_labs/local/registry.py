"""The service registry of the local mesh: Services, pods, endpoints and cluster DNS.

What Kubernetes holds and istiod reads (not to be confused with the Envoy clusters of a
proxy, ``outbound|<port>|<subset>|<host>``, which are in :mod:`.clusters`).

Built from the same Service/Deployment YAML the kube backend applies, so a Service selects
pods by labels and a DestinationRule subset narrows that by more labels, exactly as on a
cluster.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .mesh import Sidecar

CLUSTER_DOMAIN = "cluster.local"
# Kubernetes draws generated name suffixes from this alphabet (no vowels, no look-alikes).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def fqdn(host: str, namespace: str) -> str:
    """Expand a short host the way Istio expands VirtualService/DestinationRule hosts."""
    host = host.lower().rstrip(".")
    if "." in host or host == "*":
        return host
    return f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}"


def pod_name(deployment: str) -> str:
    """A pod name shaped like a Deployment's: <deployment>-<replicaset hash>-<suffix>."""
    rs = "".join(random.choices(_NAME_ALPHABET, k=10))
    suffix = "".join(random.choices(_NAME_ALPHABET, k=5))
    return f"{deployment}-{rs}-{suffix}"


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    protocol: str = "TCP"  # the transport: TCP, UDP or SCTP
    #: ``appProtocol``; with the name it gives Istio's protocol (pilot ServicePortView.protocol)
    app_protocol: str | None = None


@dataclass
class Service:
    name: str
    namespace: str
    ports: list[ServicePort]
    selector: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    type: str = "ClusterIP"  # NodePort and LoadBalancer ports are reachable from the machine

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.{CLUSTER_DOMAIN}"

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number), None)

    def dns_names(self, client_namespace: str) -> list[str]:
        """The names a pod in ``client_namespace`` can resolve this Service by."""
        names = [f"{self.name}.{self.namespace}", f"{self.name}.{self.namespace}.svc", self.fqdn]
        if client_namespace == self.namespace:
            names.insert(0, self.name)
        return names


class PodLog:
    """A container's log: lines with the time they were written (for ``logs --since``)."""

    def __init__(self) -> None:
        self._lines: list[tuple[float, str]] = []

    def append(self, line: str) -> None:
        self._lines.append((time.time(), line))

    def lines(self, since_s: float | None = None) -> list[str]:
        cutoff = time.time() - since_s if since_s is not None else float("-inf")
        return [line for stamp, line in self._lines if stamp >= cutoff]


@dataclass
class Pod:
    name: str
    namespace: str
    deployment: str
    labels: dict[str, str]
    service_account: str
    image: str
    env: dict[str, str]
    container: str = "app"  # the app container's name in the Deployment
    annotations: dict[str, str] = field(default_factory=dict)
    #: container port -> the loopback port the local app really listens on
    ports: dict[int, int] = field(default_factory=dict)
    sidecar: "Sidecar | None" = None  # its Envoy; a gateway pod is that Envoy alone
    gateway: bool = False
    injected: bool = True  # has a sidecar (the injector's decision, istio/injection.py)
    injection: str = ""  # why it has or has not, for messages
    #: a gateway's container port -> the port of this machine's 127.0.0.1 it is also bound on
    host_ports: dict[int, int] = field(default_factory=dict)
    #: the pod's addresses on the loopback network: its own (endpoints, its sidecar's
    #: inbound listeners, the source of its connections), the one its apps and clients
    #: reach every Service through (the sidecar's outbound listeners), and its "localhost"
    #: (where the app listens, behind the inbound listeners)
    ip: str = "127.0.0.1"
    outbound_ip: str = "127.0.0.1"
    app_ip: str = "127.0.0.1"
    log: PodLog = field(default_factory=PodLog)
    #: what the local mesh runs for it (its app's server and HTTP client), to stop with it
    runtime: list = field(default_factory=list)

    def matches(self, selector: Mapping[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in selector.items())


class ServiceRegistry:
    """The Services and pods of the local mesh, as the Kubernetes API would list them."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, str], Service] = {}
        self.pods: list[Pod] = []

    def add_service(self, service: Service) -> None:
        self.services[(service.namespace, service.name)] = service

    def service(self, name: str, namespace: str) -> Service | None:
        return self.services.get((namespace, name))

    def service_by_fqdn(self, host: str) -> Service | None:
        parts = host.lower().split(".")
        if len(parts) == 5 and parts[2:] == ["svc", *CLUSTER_DOMAIN.split(".")]:
            return self.services.get((parts[1], parts[0]))
        return None

    def resolve(self, host: str, client_namespace: str) -> Service | None:
        """Cluster DNS as seen from a pod: ``reviews``, ``reviews.default``, ``...svc``, FQDN."""
        parts = host.lower().rstrip(".").split(".")
        if len(parts) == 1:
            return self.services.get((client_namespace, parts[0]))
        if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
            return self.services.get((parts[1], parts[0]))
        return self.service_by_fqdn(".".join(parts))

    def endpoints(self, service: Service, subset: Mapping[str, str] | None = None) -> list[Pod]:
        """Pods behind a Service, optionally narrowed by a DestinationRule subset's labels."""
        return [
            pod for pod in self.pods
            if pod.namespace == service.namespace and service.selector
            and pod.matches(service.selector) and pod.matches(subset or {})
        ]

    def dns_names(self, client_namespace: str) -> list[str]:
        return [n for s in self.services.values() for n in s.dns_names(client_namespace)]

    def workload_pods(self, workload: str, namespace: str) -> list[Pod]:
        """Pods of a Deployment (``reviews-v2``) or of an app label (``reviews``)."""
        by_deployment = [p for p in self.pods if p.namespace == namespace and p.deployment == workload]
        return by_deployment or [
            p for p in self.pods if p.namespace == namespace and p.labels.get("app") == workload
        ]
