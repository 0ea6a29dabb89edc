"""A sidecar's listeners: outbound per Service port, inbound per port its pod serves.

Without iptables (INTERCEPTION_MODE=NONE) a sidecar's listeners bind real sockets: the
outbound ones on the pod's outbound address, one per Service port (``0.0.0.0_9080``,
routes from RDS ``9080``); the inbound ones on the pod's address, in front of the app
(route config ``inbound|9080||`` inline). Each connection manager has Istio's stat
prefix, filters and TEXT access log. A port of an opaque TCP protocol gets a tcp_proxy
instead (tcp.py). Sources: pilot/pkg/networking/core/listener*.go
(docs/facts.md#envoy-local-replies).
"""

from __future__ import annotations

from typing import Any

import yaml

from . import authz, jwt, mtls, tcp, telemetry
from .clusters import dns_cache
from .model import MeshView, ProxyView
from .names import delimited, inbound_cluster, listen_port
from .scope import visible_services

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3." \
      "HttpConnectionManager"
_FILTERS = [
    {"name": "envoy.filters.http.fault", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
    {"name": "envoy.filters.http.cors", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
    {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
]
ADS = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}


def listeners(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    out = {}
    for port in sorted({p.port for s in visible_services(mesh, proxy) for p in s.ports
                        if p.is_http}):
        name = f"0.0.0.0_{port}"
        out[name] = listener(name, proxy.outbound_ip, port, "OUTBOUND", connection_manager(
            mesh, proxy, f"outbound_0.0.0.0_{port}", rds=str(port)))
    for port in proxy.inbound_ports:
        name = f"{proxy.ip}_{port}"
        out[name] = inbound_listener(mesh, proxy, port, connection_manager(
            mesh, proxy, f"inbound_0.0.0.0_{port}", route_config=_inbound_routes(mesh, port),
            server_name="istio-envoy"))
    out.update(_tcp_listeners(mesh, proxy))  # TCP ports: a tcp_proxy, not a connection manager
    return out


def listener(name: str, address: str, port: int, direction: str, manager: dict,
             host_port: int | None = None) -> dict:
    """A bound listener; ``host_port`` also binds it on the machine's 127.0.0.1."""
    out = {"name": name, "address": _socket(address, listen_port(port)),
           "traffic_direction": direction,
           "filter_chains": [{"filters": [manager]}]}
    if host_port is not None:  # never shared with another process binding it too
        out["additional_addresses"] = [{"address": _socket("127.0.0.1", host_port)}]
        out["enable_reuse_port"] = False
    return out


def inbound_listener(mesh: MeshView, proxy: ProxyView, port: int, network_filter: dict,
                     tcp: bool = False) -> dict:
    """A pod's listener for one of its ports: its filter chains follow the port's
    PeerAuthentication mode, a TLS inspector telling mTLS from plain text."""
    name = f"{proxy.ip}_{port}"
    out = listener(name, proxy.ip, port, "INBOUND", network_filter)
    mode = mtls.peer_mode(mesh, proxy.namespace, proxy.labels, port)
    out["filter_chains"] = mtls.inbound_chains(
        mode, {"name": f"0.0.0.0_{port}", "filters": [network_filter]}, tcp)
    out["listener_filters"] = [mtls.TLS_INSPECTOR]
    out["listener_filters_timeout"] = "0s"
    out.update(telemetry.listener_fields(mesh, proxy, "inbound"))
    return out


def _socket(address: str, port: int) -> dict:
    return {"socket_address": {"address": address, "port_value": port}}


def connection_manager(mesh: MeshView, proxy: ProxyView, prefix: str, *, rds: str | None = None,
                       route_config: dict | None = None, server_name: str | None = None,
                       gateway: bool = False, delimit: bool = True) -> dict:
    """An HTTP connection manager with Istio's settings; a gateway's trusts no proxy in
    front of it and sets the client certificate header (gateway.go
    buildGatewayConnectionManager). ``delimit=False`` keeps ``prefix`` as given (a
    gateway server's own ``name``)."""
    config: dict[str, Any] = {
        "@type": HCM, "stat_prefix": delimited(prefix, mesh.istio) if delimit else prefix,
        "codec_type": "AUTO",
        "use_remote_address": gateway, "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "upgrade_configs": [{"upgrade_type": "websocket"}], "stream_idle_timeout": "0s",
        "server_header_transformation": "OVERWRITE",
        "http_filters": _FILTERS,
    }
    if route_config is not None or gateway:  # inbound and gateways: authn, then authz
        config["http_filters"] = (jwt.http_filters(mesh, proxy) + authz.http_filters(mesh, proxy)
                                  + config["http_filters"])
    if rds is not None and not gateway:  # the passthrough resolves the Host first
        config["http_filters"] = _FILTERS[:-1] + [{
            "name": "envoy.filters.http.dynamic_forward_proxy", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http."
                         "dynamic_forward_proxy.v3.FilterConfig",
                "dns_cache_config": dns_cache(mesh)}}, _FILTERS[-1]]
    if route_config is not None and not gateway:  # inbound: the peer's identity to the app
        config.update({"forward_client_cert_details": "APPEND_FORWARD",
                       "set_current_client_cert_details": {"subject": True, "dns": True,
                                                           "uri": True}})
    if gateway:
        config.update({"xff_num_trusted_hops": trusted_proxies(proxy),
                       "forward_client_cert_details": "SANITIZE_SET",
                       "set_current_client_cert_details": {
                           "subject": True, "cert": True, "dns": True, "uri": True}})
    if rds is not None:
        config["rds"] = {"route_config_name": rds, "config_source": ADS}
    if route_config is not None:
        config["route_config"] = route_config
    if server_name:
        config["server_name"] = server_name
    direction = "gateway" if gateway else ("inbound" if route_config is not None else "outbound")
    config.update(telemetry.http_fields(mesh, proxy, direction))
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def trusted_proxies(proxy: ProxyView) -> int:
    """A gateway's ``gatewayTopology.numTrustedProxies``, from its pod's annotation
    ``proxy.istio.io/config`` (what the gateway's ProxyConfig is made of): how many proxies
    in front of it append to X-Forwarded-For, so Envoy takes the client address (what
    remoteIpBlocks matches) that many hops from the right (gateway.go
    buildGatewayConnectionManager)."""
    text = proxy.annotations.get("proxy.istio.io/config") or ""
    config = yaml.safe_load(text) if text else None
    topology = (config.get("gatewayTopology") if isinstance(config, dict) else None) or {}
    hops = topology.get("numTrustedProxies") if isinstance(topology, dict) else None
    if hops is not None and (not isinstance(hops, int) or isinstance(hops, bool) or hops < 0):
        raise ValueError(f"pod {proxy.pod}: proxy.istio.io/config gatewayTopology."
                         f"numTrustedProxies must be a whole number, not {hops!r}")
    return hops or 0


def _inbound_routes(mesh: MeshView, port: int) -> dict:
    """One virtual host, one ``default`` route to the app; from 1.24 the inbound route
    retries a reset before the request reached the app (retry.go ConvertInboundPolicy)."""
    route: dict[str, Any] = {"cluster": inbound_cluster(port), "timeout": "0s",
                             "max_grpc_timeout": "0s"}
    if mesh.istio.minor >= 24:
        route["retry_policy"] = {"retry_on": "reset-before-request", "num_retries": 2}
    return {"name": inbound_cluster(port), "validate_clusters": False, "virtual_hosts": [{
        "name": f"inbound|http|{port}", "domains": ["*"], "routes": [{
            "name": "default", "match": {"prefix": "/"},
            "decorator": {"operation": f"{inbound_cluster(port)}/*"}, "route": route}]}]}


def _tcp_listeners(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    """The listeners of opaque TCP ports, a tcp_proxy each (tcp.py): outbound per TCP
    Service port, inbound per TCP port of the pod."""
    out = {}
    for port, service in tcp.tcp_services(mesh, proxy).items():
        name = f"0.0.0.0_{port}"
        proxy_filter, metadata = tcp.outbound_filter(mesh, proxy, service, port)
        out[name] = listener(name, proxy.outbound_ip, port, "OUTBOUND", proxy_filter)
        if metadata:
            out[name]["filter_chains"][0]["metadata"] = metadata
    for port in proxy.inbound_ports:
        if tcp.inbound_is_tcp(mesh, proxy, port):
            name = f"{proxy.ip}_{port}"
            out[name] = inbound_listener(mesh, proxy, port, tcp.inbound_filter(mesh, proxy, port),
                                         tcp=True)
            for chain in out[name]["filter_chains"]:  # AuthorizationPolicy: before tcp_proxy
                chain["filters"] = authz.network_filters(mesh, proxy) + chain["filters"]
    return out
