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

TLS (docs/facts.md#tls-at-the-gateway). A port's first server decides whether it is plain
text (HTTP servers share ``http.<port>``) or TLS: then each HTTPS server that terminates TLS
(``SIMPLE``, ``MUTUAL``) is a filter chain matched by SNI on its hosts, with a
DownstreamTlsContext whose certificate (and, for MUTUAL, the CA that client certificates must
chain to) comes over SDS from the Secret ``credentialName`` names in the gateway's own
namespace, and its own route configuration ``https.<port>.<portName>.<gw>.<ns>``; a
``PASSTHROUGH`` server is one chain per ``tls`` match of a bound VirtualService, matched on
its ``sniHosts``, a TCP proxy to the destination. ``tls_inspector`` reads the SNI. An HTTP
server with ``tls.httpsRedirect`` makes its virtual hosts ``require_tls: ALL``. Sources:
pilot/pkg/model/gateway.go (mergeGateways, gatewayRDSRouteName), networking/core/
gateway.go (buildGatewayTCPBasedFilterChains, buildGatewayNetworkFiltersFromTLSRoutes),
listener.go (BuildListenerTLSContext, buildGatewayListener), security/model/
authentication.go, credentials/kube/secrets.go and xds/sds.go (the secrets served).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterator

from . import telemetry
from .listeners import connection_manager, listener
from .model import ConfigView, MeshView, ProxyView
from .names import MAX_DIRECT_RESPONSE_BODY
from .routes import bound_gateways, gateway_key, is_catch_all, vs_routes
from .tcp import route_filter

_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}
_PASSTHROUGH = {"PASSTHROUGH", "AUTO_PASSTHROUGH"}
TLS_CONTEXT = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
TLS_INSPECTOR = {"name": "envoy.filters.listener.tls_inspector", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "initial_read_buffer_size": 512}}
#: istiod's SDS source for credentialName: ADS, Envoy's default initial fetch timeout (15 s),
#: so a Secret that does not exist does not hold the listener back for ever
SDS_ADS = {"ads": {}, "resource_api_version": "V3"}
#: what a TLS server offers in ALPN (util.ALPNHttp)
ALPN_HTTP = ["h2", "http/1.1"]
CREDENTIAL_SCHEME = "kubernetes://"
#: the SDS name of a credential's CA: ``<credential>-cacert``
CA_SUFFIX = "-cacert"
#: a slow TLS handshake is cut after this (listener.go defaultGatewayTransportSocketConnectTimeout)
HANDSHAKE_TIMEOUT = "15s"


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
    def mode(self) -> str | None:
        """The TLS mode (unset is PASSTHROUGH, as in the API), None without ``tls``."""
        return None if self.server.tls is None else self.server.tls.effective_mode

    @property
    def is_http(self) -> bool:
        """A plain-text HTTP server (maybe with ``tls.httpsRedirect``)."""
        return self.protocol in _HTTP_PROTOCOLS

    @property
    def terminates_tls(self) -> bool:
        """An HTTPS server whose TLS the gateway terminates (IsHTTPSServerWithTLSTermination)."""
        return self.protocol == "HTTPS" and self.mode is not None and self.mode not in _PASSTHROUGH

    @property
    def passthrough(self) -> bool:
        return self.mode in _PASSTHROUGH

    @property
    def route_name(self) -> str:
        """``http.<targetPort>``; ``https.<port>.<portName>.<gw>.<ns>`` for a TLS-terminating
        HTTPS server; none for passthrough (gatewayRDSRouteName)."""
        if self.terminates_tls:
            port = self.server.port
            return (f"https.{port.number}.{port.name}.{self.gateway.name}."
                    f"{self.gateway.namespace}")
        return f"http.{self.target_port}" if self.is_http else ""

    @property
    def sni_hosts(self) -> list[str]:
        """The server's hosts without their namespace part, sorted (GetSNIHostsForServer)."""
        return sorted({h.rpartition("/")[2] for h in self.server.hosts})

    @property
    def sds_names(self) -> list[str]:
        """The SDS resources of a TLS-terminating server: its certificate, and for MUTUAL
        the CA of client certificates (ApplyCredentialSDSToServerCommonTLSContext)."""
        if not self.terminates_tls:
            return []
        name = self.server.tls.credential_name
        names = [credential_resource(name)]
        if self.mode in ("MUTUAL", "OPTIONAL_MUTUAL"):
            names.append(credential_resource(name + CA_SUFFIX))
        return names


def credential_resource(credential_name: str) -> str:
    """The SDS resource name of a ``credentialName`` (credentials.ToResourceName)."""
    if credential_name.startswith(CREDENTIAL_SCHEME):
        return credential_name
    return CREDENTIAL_SCHEME + credential_name


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


def merged(mesh: MeshView, proxy: ProxyView) -> dict[int, list[GatewayServer]]:
    """The servers each port keeps, in order (mergeGateways): a TLS server repeating a host
    another TLS server has on that port is skipped; on a plain-text port HTTP servers merge
    with HTTP servers only (a TCP server keeps its port, see _tcp_listeners); on a TLS port
    a second HTTPS server with the same route name is skipped."""
    ports: dict[int, list[GatewayServer]] = {}
    tls_hosts: dict[int, set[str]] = {}
    plain_text: dict[int, bool] = {}
    for entry in servers(mesh, proxy):
        port = entry.target_port
        if entry.server.tls is not None:
            known = tls_hosts.setdefault(port, set())
            if known & set(entry.server.hosts):
                continue  # "duplicate host names": istiod skips the server
            known.update(entry.server.hosts)
        if port not in ports:
            ports[port] = [entry]
            plain_text[port] = entry.server.tls is None or entry.is_http  # not IsTLSServer
        elif plain_text[port]:
            if entry.is_http and ports[port][0].is_http:  # canMergeProtocols
                ports[port].append(entry)
        elif not (entry.terminates_tls and
                  entry.route_name in {e.route_name for e in ports[port]}):
            ports[port].append(entry)
    return ports


def listeners(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    """One listener per port the gateway's servers resolve to, bound on the pod's address
    and on the machine's port mapped to it (buildGatewayListeners)."""
    out = {}
    for port, entries in sorted(merged(mesh, proxy).items()):
        name = f"0.0.0.0_{port}"
        if entries[0].protocol == "TCP":
            continue  # a TCP port: _tcp_listeners
        if entries[0].is_http:  # plain text: one connection manager for every server
            manager = connection_manager(
                mesh, proxy, f"outbound_{name}", rds=f"http.{port}", server_name="istio-envoy",
                gateway=True)
            out[name] = listener(name, proxy.ip, port, "OUTBOUND", manager,
                                 host_port=proxy.host_ports.get(port))
            continue
        chains = _tls_chains(mesh, proxy, name, entries)
        if not chains:
            continue  # istiod omits a listener without filter chains
        built = listener(name, proxy.ip, port, "OUTBOUND", {}, host_port=proxy.host_ports.get(port))
        built["filter_chains"] = chains
        if any("filter_chain_match" in c or "transport_socket" in c for c in chains):
            built["listener_filters"] = [TLS_INSPECTOR]
        out[name] = built
    out.update(_tcp_listeners(mesh, proxy, out))
    for built in out.values():  # what no filter chain takes (an unknown SNI) is logged too
        built.update(telemetry.listener_fields(mesh, proxy, "gateway"))
    return out


def _tls_chains(mesh: MeshView, proxy: ProxyView, name: str,
                entries: list[GatewayServer]) -> list[dict]:
    """A TLS port's filter chains, server by server (buildGatewayTCPBasedFilterChains)."""
    chains: list[dict] = []
    sni_taken: set[str] = set()  # one chain per SNI name (CheckDuplicates)
    for entry in entries:
        if entry.terminates_tls:
            prefix = entry.server.name or f"outbound_{name}"
            manager = connection_manager(mesh, proxy, prefix, rds=entry.route_name,
                                         server_name="istio-envoy", gateway=True,
                                         delimit=not entry.server.name)
            chains.append({**_sni_match(entry.sni_hosts), "filters": [manager],
                           "transport_socket": {"name": "envoy.transport_sockets.tls",
                                                "typed_config": tls_context(entry)},
                           "transport_socket_connect_timeout": HANDSHAKE_TIMEOUT})
        elif entry.passthrough:
            chains += _passthrough_chains(mesh, proxy, entry, sni_taken)
        elif entry.is_http:  # a plain HTTP server after a TLS one: a chain matching anything
            chains.append({"filters": [connection_manager(
                mesh, proxy, f"outbound_{name}", rds=entry.route_name, server_name="istio-envoy",
                gateway=True)], "transport_socket_connect_timeout": HANDSHAKE_TIMEOUT})
    return chains


def _sni_match(hosts: list[str]) -> dict:
    """A filter chain match on these SNI names; none when a host is ``*``."""
    if not hosts or "*" in hosts:
        return {}
    return {"filter_chain_match": {"server_names": sorted(hosts)}}


def tls_context(entry: GatewayServer) -> dict:
    """The DownstreamTlsContext of a TLS-terminating server: HTTP ALPNs, its certificate
    over SDS, and for MUTUAL a required client certificate checked against the CA
    (BuildListenerTLSContext)."""
    mutual = entry.mode == "MUTUAL"
    certificate, *ca = entry.sds_names
    common: dict[str, Any] = {
        "alpn_protocols": list(ALPN_HTTP),
        "tls_certificate_sds_secret_configs": [{"name": certificate, "sds_config": SDS_ADS}]}
    if ca:
        common["combined_validation_context"] = {
            "default_validation_context": {},
            "validation_context_sds_secret_config": {"name": ca[0], "sds_config": SDS_ADS}}
    return {"@type": TLS_CONTEXT, "common_tls_context": common,
            "require_client_certificate": mutual}


def _passthrough_chains(mesh: MeshView, proxy: ProxyView, entry: GatewayServer,
                        sni_taken: set[str]) -> list[dict]:
    """One chain per ``tls[].match`` of the VirtualServices bound to the server's Gateway
    whose hosts meet the server's, matched on its ``sniHosts``, a TCP proxy to the route's
    destination (buildGatewayNetworkFiltersFromTLSRoutes)."""
    chains = []
    for vs in bound_virtual_services(mesh, entry.key):
        if not intersect(server_hosts(entry, vs.namespace), vs.spec.hosts):
            continue
        for rule in vs.spec.tls:
            for match in rule.match:
                if match.port and match.port != entry.server.port.number:
                    continue
                if match.gateways and entry.key not in {gateway_key(g, vs.namespace)
                                                        for g in match.gateways}:
                    continue
                if sni_taken & set(match.sni_hosts):
                    continue  # "duplicate SNI host names": istiod skips the rule
                sni_taken.update(match.sni_hosts)
                chains.append({**_sni_match(list(match.sni_hosts)),
                               "filters": [route_filter(mesh, proxy, vs, rule.route,
                                                        entry.server.port.number)],
                               "transport_socket_connect_timeout": HANDSHAKE_TIMEOUT})
    return chains


def route_configurations(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    by_route: dict[str, list[GatewayServer]] = {}
    for entries in merged(mesh, proxy).values():
        for entry in entries:
            if entry.route_name:
                by_route.setdefault(entry.route_name, []).append(entry)
    return {name: _route_configuration(mesh, proxy, name, entries)
            for name, entries in sorted(by_route.items())}


def secrets(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    """The SDS resources the gateway's listeners name that exist: only Secrets of the
    gateway's own namespace (sds.go filterAuthorizedResources). A name without its Secret
    is left out: Envoy keeps waiting for it, and the handshakes on that chain fail."""
    out = {}
    for entries in merged(mesh, proxy).values():
        for entry in entries:
            for name in entry.sds_names:
                resource = _secret_resource(mesh, proxy.namespace, name)
                if resource is not None:
                    out[name] = resource
    return dict(sorted(out.items()))


def _pem(data: bytes) -> dict:
    return {"inline_bytes": base64.b64encode(data).decode()}


def _secret_resource(mesh: MeshView, namespace: str, resource: str) -> dict | None:
    """What istiod's SecretGen makes of an SDS name: the key pair of Secret ``<name>``
    (``cert``/``key``, else ``tls.crt``/``tls.key``), or for ``<name>-cacert`` the CA of
    Secret ``<name>-cacert``, else of ``<name>`` (``cacert``, else ``ca.crt``)."""
    scope, _, name = resource[len(CREDENTIAL_SCHEME):].rpartition("/")
    if scope not in ("", namespace):
        return None  # another namespace's: denied
    if name.endswith(CA_SUFFIX):
        secret = mesh.secret(namespace, name) or mesh.secret(namespace, name[:-len(CA_SUFFIX)])
        pair = _first_pair(secret, ("cacert", "crl"), ("ca.crt", "ca.crl"))
        if pair is None:
            return None
        context: dict[str, Any] = {"trusted_ca": _pem(pair[0])}
        if pair[1]:
            context["crl"] = _pem(pair[1])
        return {"name": resource, "validation_context": context}
    pair = _first_pair(mesh.secret(namespace, name), ("cert", "key"), ("tls.crt", "tls.key"),
                       both=True)
    if pair is None:
        return None
    return {"name": resource, "tls_certificate": {"certificate_chain": _pem(pair[0]),
                                                  "private_key": _pem(pair[1])}}


def _first_pair(secret, *keys: tuple[str, str], both: bool = False) -> tuple[bytes, bytes] | None:
    """The values of the first key pair that has a value (both values with ``both``):
    ExtractCertInfo and ExtractRoot read the generic keys before the kubernetes.io/tls ones."""
    if secret is None:
        return None
    for first, second in keys:
        if secret.data.get(first) and (secret.data.get(second) or not both):
            return secret.data[first], secret.data.get(second, b"")
    return None


def _route_configuration(mesh: MeshView, proxy: ProxyView, name: str,
                         entries: list[GatewayServer]) -> dict:
    vhosts: dict[str, dict] = {}
    sources: dict[str, list[tuple[str, str]]] = {}  # host -> the (gateway, VS) routes it has
    built: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        port = entry.server.port.number
        redirect = entry.server.tls is not None and bool(entry.server.tls.https_redirect)
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
                if redirect:
                    vhosts[host]["require_tls"] = "ALL"
        if redirect:  # tls.httpsRedirect: every host of the server answers 301 to https
            for host in (h.lower() for h in entry.server.hosts):
                vhosts.setdefault(host, {"name": f"{host}:{port}", "domains": [host], "routes": [],
                                         "include_request_attempt_count": True})
                vhosts[host]["require_tls"] = "ALL"
                sources.setdefault(host, [])
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
        key = (tuple(sources[host]), vhosts[host].get("require_tls"))
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
