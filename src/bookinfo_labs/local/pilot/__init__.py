"""The local mesh's control plane: Istio config and the service registry in, per-proxy
Envoy resources out, as plain dicts in protobuf-JSON form.

``generate`` is a pure function (no sockets, no processes): the xDS server delivers its
output, golden files pin it, and a learner can read it like ``istioctl proxy-config``.
A field it does not translate is refused before it gets here (LocalMesh's supported
fields), never silently dropped.
"""

from __future__ import annotations

from . import accesslog, envoyfilter, gateways, meshconfig, tracing
from .clusters import clusters, load_assignments
from .listeners import listeners
from .model import (HTTP_PROTOCOLS, ConfigView, EndpointView, MeshView, ProxyView, SecretView,
                    ServicePortView, ServiceView, WorkloadView)
from .names import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, TYPES, listen_port
from .routes import route_configurations

__all__ = ["CLUSTER", "ENDPOINT", "HTTP_PROTOCOLS", "LISTENER", "ROUTE", "SECRET", "TYPES",
           "ConfigView", "EndpointView", "MeshView", "ProxyView", "SecretView",
           "ServicePortView", "ServiceView", "WorkloadView", "accesslog", "envoyfilter",
           "generate", "listen_port", "meshconfig", "tracing",
           "translate"]


def generate(mesh: MeshView, proxy: ProxyView) -> dict[str, dict[str, dict]]:
    """Every resource one proxy (a sidecar or a gateway) needs, by type URL then name,
    with the EnvoyFilters that select it applied last, as istiod does."""
    return envoyfilter.apply(mesh, proxy, translate(mesh, proxy))


def translate(mesh: MeshView, proxy: ProxyView) -> dict[str, dict[str, dict]]:
    """What istiod generates before EnvoyFilters patch it."""
    cluster_map = clusters(mesh, proxy)
    eds = [name for name, c in cluster_map.items() if c.get("type") == "EDS"]
    if proxy.is_gateway:
        out = {CLUSTER: cluster_map, ENDPOINT: load_assignments(mesh, eds),
               LISTENER: gateways.listeners(mesh, proxy),
               ROUTE: gateways.route_configurations(mesh, proxy)}
        secrets = gateways.secrets(mesh, proxy)  # SDS: what TLS servers' credentials name
        return {**out, SECRET: secrets} if secrets else out
    return {
        CLUSTER: cluster_map,
        ENDPOINT: load_assignments(mesh, eds),
        LISTENER: listeners(mesh, proxy),
        ROUTE: route_configurations(mesh, proxy),
    }
