"""Opaque TCP: a Service port of a TCP protocol, a VirtualService's ``tcp`` rules -> tcp_proxy.

A Service port's protocol is its appProtocol, else its name's prefix (Istio's protocol
selection). A sidecar's outbound listener for a TCP port (``tcp``, ``tcp-other``,
appProtocol ``tcp``) has one filter chain: a ``tcp_proxy`` to the route of the first
``tcp`` rule, among the VirtualServices bound to the mesh for the Service's host (oldest
first), whose match applies to this proxy and port; without one, to the Service's own
cluster. Its inbound listener for such a port proxies to ``inbound|<port>||``. One
destination: that cluster, whose name is also the stat prefix (no ``;``); several:
``weighted_clusters`` of those with a weight, stat prefix ``<vs name>.<vs namespace>``,
Envoy picking one per connection. Sources: pilot/pkg/networking/core/networkfilter.go
(buildOutboundNetworkFilters), tls.go (buildSidecarOutboundTCPFilterChainOpts, matchTCP),
listener_inbound.go (buildInboundNetworkFilters), pkg/config/kube/conversion.go
(docs/facts.md#tcp-routing).
"""

from __future__ import annotations

from typing import Any, Iterator

from .model import ConfigView, MeshView, ProxyView, ServicePortView, ServiceView
from . import telemetry
from .names import inbound_cluster, outbound_cluster
from .routes import MESH_GATEWAY, _cluster_of, bound_gateways, fqdn
from .scope import visible_services

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
#: protocols a sidecar proxies as opaque TCP (the Mongo, Redis and MySQL filters are off
#: by default, so those are plain tcp_proxy too)
OPAQUE_TCP = {"TCP", "MONGO", "REDIS", "MYSQL"}
#: what a sidecar's inbound side also carries as bytes: TLS the app terminates itself
#: (listener_inbound.go: an HTTPS or TLS port gets a TCP filter chain)
OPAQUE_INBOUND = OPAQUE_TCP | {"HTTPS", "TLS"}


def protocol(port: ServicePortView) -> str:
    return port.selected_protocol


def is_opaque_tcp(port: ServicePortView) -> bool:
    return protocol(port) in OPAQUE_TCP


def tcp_services(mesh: MeshView, proxy: ProxyView) -> dict[int, ServiceView]:
    """Service ports every Service on which is opaque TCP -> the first such Service.
    Without VIPs a sidecar has one outbound listener per port, and plain TCP carries no
    Host to tell two Services apart: the first keeps the port, as the first of two TCP
    Services on a wildcard listener does in istiod (listener.go, TCPOverTCP)."""
    out: dict[int, ServiceView] = {}
    other: set[int] = set()
    for service in visible_services(mesh, proxy):
        for port in service.ports:
            if not is_opaque_tcp(port):
                other.add(port.port)
            elif port.port not in out:
                out[port.port] = service
    return {port: service for port, service in out.items() if port not in other}


def tcp_proxy(mesh: MeshView, proxy: ProxyView, stat_prefix: str, *, cluster: str | None = None,
              weighted: list[dict] | None = None, inbound: bool = False) -> dict:
    """The ``envoy.filters.network.tcp_proxy`` filter, with the mesh's access loggers."""
    config: dict[str, Any] = {"@type": TCP_PROXY, "stat_prefix": stat_prefix}
    if weighted is not None:
        config["weighted_clusters"] = {"clusters": weighted}
    else:
        config["cluster"] = cluster
    direction = "inbound" if inbound else ("gateway" if proxy.is_gateway else "outbound")
    config.update(telemetry.tcp_fields(mesh, proxy, direction))
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def route_filter(mesh: MeshView, proxy: ProxyView, vs: ConfigView, destinations, port: int) -> dict:
    """A ``tcp`` rule's ``route`` as a tcp_proxy; ``port`` is the listener's (a gateway
    server's number, a sidecar's Service port), used by a destination without a port."""
    if len(destinations) == 1:
        cluster = _cluster_of(mesh, vs, destinations[0].destination, port)
        return tcp_proxy(mesh, proxy, cluster, cluster=cluster)
    weighted = [{"name": _cluster_of(mesh, vs, d.destination, port), "weight": d.weight}
                for d in destinations if (d.weight or 0) > 0]
    return tcp_proxy(mesh, proxy, f"{vs.name}.{vs.namespace}", weighted=weighted)


def _mesh_virtual_services(mesh: MeshView, host: str) -> Iterator[ConfigView]:
    """The VirtualServices bound to the mesh with a host that covers ``host``, oldest first
    (tls.go getConfigsForHost)."""
    for vs in mesh.of_kind("VirtualService"):
        if MESH_GATEWAY not in bound_gateways(vs):
            continue
        patterns = [fqdn(h, vs.namespace) for h in vs.spec.hosts]
        if any(p == host or (p.startswith("*") and host.endswith(p[1:])) for p in patterns):
            yield vs


def _applies(match, proxy: ProxyView, port: int) -> bool:
    """A sidecar's L4 match (tls.go matchTCP): the mesh among its gateways (or none), its
    port, source labels and source namespace."""
    return ((not match.gateways or MESH_GATEWAY in match.gateways)
            and (not match.port or match.port == port)
            and all(proxy.labels.get(k) == v for k, v in match.source_labels.items())
            and (not match.source_namespace or match.source_namespace == proxy.namespace))


def outbound_filter(mesh: MeshView, proxy: ProxyView, service: ServiceView,
                    port: int) -> tuple[dict, dict | None]:
    """A sidecar's tcp_proxy for a TCP Service port, and the filter chain's metadata (the
    VirtualService it came from, if any)."""
    for vs in _mesh_virtual_services(mesh, service.fqdn):
        for rule in vs.spec.tcp:
            if not rule.match or any(_applies(m, proxy, port) for m in rule.match):
                metadata = {"filter_metadata": {"istio": {"config": vs.config_ref}}}
                return route_filter(mesh, proxy, vs, rule.route, port), metadata
    cluster = outbound_cluster(port, None, service.fqdn)
    return tcp_proxy(mesh, proxy, cluster, cluster=cluster), None


def inbound_is_tcp(mesh: MeshView, proxy: ProxyView, port: int) -> bool:
    """Is every Service port that targets this container port of the pod opaque TCP, or
    TLS (``https``, ``tls``) that the app terminates?"""
    targeting = [p for s in mesh.services if s.selects(proxy.namespace, proxy.labels)
                 for p in s.ports if p.target_port == port]
    return bool(targeting) and all(protocol(p) in OPAQUE_INBOUND for p in targeting)


def inbound_filter(mesh: MeshView, proxy: ProxyView, port: int) -> dict:
    """The inbound tcp_proxy to the app: cluster and stat prefix ``inbound|<port>||``."""
    return tcp_proxy(mesh, proxy, inbound_cluster(port), cluster=inbound_cluster(port),
                     inbound=True)
