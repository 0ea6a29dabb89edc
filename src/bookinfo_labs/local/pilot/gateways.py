"""Gateways and the VirtualServices bound to them -> a gateway proxy's listeners and routes.

A Gateway selects gateway pods by label (in any namespace). Each of its servers opens the
gateway's listener for the server's port resolved through the gateway's own Service
(server 80 -> the ``istio-ingressgateway`` Service's targetPort 8080 -> ``0.0.0.0_8080``;
a port no Service names is used as it is), with route config ``http.8080``. Its virtual
hosts come from the VirtualServices whose ``gateways`` name the Gateway: one per host in
both the server's and the VirtualService's hosts, the routes of every such VirtualService
for that host appended oldest first, catch-all routes moved last. With no virtual host,
the port answers 404 from ``blackhole:<port>``. A TCP server opens a listener whose
tcp_proxy follows the first ``tcp`` rule of those VirtualServices for its port (tcp.py);
without one there is no listener. Sources: pilot/pkg/networking/core/
gateway.go (buildGatewayListeners, buildGatewayHTTPRouteConfig, collapseDuplicateRoutes),
pilot/pkg/model/gateway.go (resolvePorts) (docs/facts.md#gateways).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from .listeners import connection_manager, listener
from .model import ConfigView, MeshView, ProxyView
from .names import MAX_DIRECT_RESPONSE_BODY
from .routes import bound_gateways, gateway_key, is_catch_all, vs_routes
from .tcp import route_filter

_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


@dataclass(frozen=True)
class GatewayServer:
    """One server of a Gateway that selects this proxy, with the port it listens on."""

    gateway: ConfigView
    server: Any  # the typed model's Server
    target_port: int

    @property
    def key(self) -> str:
        return f"{self.gateway.namespace}/{self.gateway.name}"

    @property
    def protocol(self) -> str:
        return (self.server.port.protocol or "").upper()

    @property
    def route_name(self) -> str:
        return f"http.{self.target_port}"


def selects(gateway: ConfigView, proxy: ProxyView) -> bool:
    selector = gateway.spec.selector or {}
    return all(proxy.labels.get(k) == v for k, v in selector.items())


def servers(mesh: MeshView, proxy: ProxyView) -> list[GatewayServer]:
    """The servers of every Gateway that selects ``proxy``, oldest Gateway first."""
    if not proxy.is_gateway:
        return []
    return [GatewayServer(gw, server, target_port(mesh, proxy, server.port.number))
            for gw in mesh.of_kind("Gateway") if selects(gw, proxy) for server in gw.spec.servers]


def target_port(mesh: MeshView, proxy: ProxyView, number: int) -> int:
    """A server port as the gateway listens on it: the targetPort of that port of a Service
    selecting the gateway pod, else the number itself (gateway.go resolvePorts)."""
    for service in mesh.services:  # the gateway's own Service, a Kubernetes one
        if service.selects(proxy.namespace, proxy.labels):
            for port in service.ports:
                if port.port == number:
                    return port.target_port
    return number


def server_hosts(entry: GatewayServer, namespace: str) -> list[str]:
    """A server's hosts that VirtualServices in ``namespace`` may use, without their
    namespace part (``ns/host``; ``./host`` is the Gateway's namespace; ``*/host`` or a bare
    host any namespace) (host.NamesForNamespace)."""
    out = []
    for item in entry.server.hosts:
        scope, _, name = item.rpartition("/")
        if scope == ".":
            scope = entry.gateway.namespace
        if scope in ("", "*", namespace):
            out.append(name.lower())
    return out


def _matches(pattern: str, host: str) -> bool:
    """Does the (wildcard) ``pattern`` cover ``host``?"""
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return host.endswith(pattern[1:]) or host == pattern
    return pattern == host


def intersect(server_hosts_: list[str], vs_hosts: list[str]) -> list[str]:
    """The hosts both sides accept, each as its more specific spelling (host.Names
    Intersection): server ``*`` and VirtualService ``a.example.com`` give
    ``a.example.com``."""
    out: list[str] = []
    for vs_host in (h.lower() for h in vs_hosts):
        for server_host in server_hosts_:
            if _matches(server_host, vs_host):
                candidate = vs_host
            elif _matches(vs_host, server_host):
                candidate = server_host
            else:
                continue
            if candidate not in out:
                out.append(candidate)
    return out


def bound_virtual_services(mesh: MeshView, gateway_key: str) -> Iterator[ConfigView]:
    for vs in mesh.of_kind("VirtualService"):
        if gateway_key in bound_gateways(vs):
            yield vs


def listeners(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    """One listener per port the gateway's servers resolve to, bound on the pod's address
    and on the machine's port mapped to it (buildGatewayListeners)."""
    out = {}
    for port in sorted({e.target_port for e in servers(mesh, proxy)
                        if e.protocol in _HTTP_PROTOCOLS}):
        name = f"0.0.0.0_{port}"
        manager = connection_manager(
            mesh, proxy, f"outbound_0.0.0.0_{port}", rds=f"http.{port}", server_name="istio-envoy",
            gateway=True)
        out[name] = listener(name, proxy.ip, port, "OUTBOUND", manager,
                             host_port=proxy.host_ports.get(port))
    out.update(_tcp_listeners(mesh, proxy, out))
    return out


def route_configurations(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    by_route: dict[str, list[GatewayServer]] = {}
    for entry in servers(mesh, proxy):
        if entry.protocol in _HTTP_PROTOCOLS:
            by_route.setdefault(entry.route_name, []).append(entry)
    return {name: _route_configuration(mesh, proxy, name, entries)
            for name, entries in sorted(by_route.items())}


def _route_configuration(mesh: MeshView, proxy: ProxyView, name: str,
                         entries: list[GatewayServer]) -> dict:
    vhosts: dict[str, dict] = {}
    sources: dict[str, list[tuple[str, str]]] = {}  # host -> the (gateway, VS) routes it has
    built: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        port = entry.server.port.number
        for vs in bound_virtual_services(mesh, entry.key):
            hosts = intersect(server_hosts(entry, vs.namespace), vs.spec.hosts)
            if not hosts:
                continue
            key = (entry.key, f"{vs.namespace}/{vs.name}")
            if key not in built:
                built[key] = vs_routes(mesh, proxy, vs, port, gateway=entry.key)
            if not built[key]:
                continue  # "no routes matched": istiod omits the VirtualService here
            for host in hosts:
                if host in vhosts:
                    vhosts[host]["routes"] += built[key]
                    sources[host].append(key)
                else:
                    vhosts[host] = {"name": f"{host}:{port}", "domains": [host],
                                    "routes": list(built[key]),
                                    "include_request_attempt_count": True}
                    sources[host] = [key]
    if not vhosts:
        port = entries[0].server.port.number
        virtual_hosts = [{"name": f"blackhole:{port}", "domains": ["*"], "routes": []}]
    else:
        virtual_hosts = _collapse(vhosts, sources)
        for vhost in virtual_hosts:
            vhost["routes"] = [r for r in vhost["routes"] if not is_catch_all(r["match"])] + \
                [r for r in vhost["routes"] if is_catch_all(r["match"])]
        virtual_hosts.sort(key=lambda v: v["name"])
    return {"name": name, "virtual_hosts": virtual_hosts, "validate_clusters": False,
            "ignore_port_in_host_matching": True,
            "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY}


def _collapse(vhosts: dict[str, dict], sources: dict[str, list]) -> list[dict]:
    """Hosts whose routes are the very same list become one virtual host with several
    domains, the alphabetically first host naming it (collapseDuplicateRoutes)."""
    out: dict[tuple, dict] = {}
    for host in sorted(vhosts):
        key = tuple(sources[host])
        if key in out:
            out[key]["domains"] += vhosts[host]["domains"]
        else:
            out[key] = vhosts[host]
    return list(out.values())


# -- TCP servers ------------------------------------------------------------------------

def _tcp_listeners(mesh: MeshView, proxy: ProxyView, built: dict[str, dict]) -> dict[str, dict]:
    """A listener with a tcp_proxy for each port whose first server (oldest Gateway first)
    is TCP. istiod keeps one plain TCP server per port and skips any later server there
    (model/gateway.go mergeGateways), so an HTTP listener ``built`` for such a port goes;
    without a tcp route the port gets no listener at all."""
    first: dict[int, GatewayServer] = {}
    for entry in servers(mesh, proxy):
        first.setdefault(entry.target_port, entry)
    out = {}
    for port, entry in sorted(first.items()):
        if entry.protocol != "TCP":
            continue
        name = f"0.0.0.0_{port}"
        built.pop(name, None)
        proxy_filter = _tcp_filter(mesh, proxy, entry)
        if proxy_filter is not None:
            out[name] = listener(name, proxy.ip, port, "OUTBOUND", proxy_filter,
                                 host_port=proxy.host_ports.get(port))
    return out


def _tcp_filter(mesh: MeshView, proxy: ProxyView, entry: GatewayServer) -> dict | None:
    """A TCP server's tcp_proxy: the first ``tcp`` rule, among the VirtualServices bound to
    its Gateway with a host the server has (oldest first), with no match or a match of the
    server's port and Gateway (source labels play no part at a gateway); None without one
    (gateway.go buildGatewayNetworkFiltersFromTCPRoutes, l4MultiMatch)."""
    number = entry.server.port.number
    for vs in bound_virtual_services(mesh, entry.key):
        if not intersect(server_hosts(entry, vs.namespace), vs.spec.hosts):
            continue
        for rule in vs.spec.tcp:
            if not rule.match or any(
                    (not m.port or m.port == number)
                    and (not m.gateways or entry.key in {gateway_key(g, vs.namespace)
                                                         for g in m.gateways})
                    for m in rule.match):
                return route_filter(mesh, proxy, vs, rule.route, number)
    return None
