"""Services and DestinationRules -> Clusters and ClusterLoadAssignments; the inbound side.

Per Service port: ``outbound|9080||<fqdn>`` and one cluster per subset the applicable
DestinationRules define (``outbound|9080|v1|<fqdn>``), all EDS. Their traffic policy is
the rule's ``trafficPolicy``, replaced per port by ``portLevelSettings``, then overridden
field by field by the subset's (cluster_traffic_policy.go, MergeTrafficPolicy). Inbound:
``inbound|<port>||``, a static cluster to the app. Sources: pilot/pkg/networking/core/
cluster*.go (docs/facts.md#circuit-breaking, docs/facts.md#outlier-detection).
"""

from __future__ import annotations

from typing import Any

from . import mtls
from .model import ConfigView, MeshView, ProxyView, ServiceView, WorkloadView
from .names import (BLACKHOLE_CLUSTER, MAX_UINT32, PASSTHROUGH_CLUSTER, delimited, duration,
                    inbound_cluster, listen_port, outbound_cluster)
from .routes import fqdn
from .scope import visible_services

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_POLICY_FIELDS = ("load_balancer", "connection_pool", "outlier_detection", "tls")
_H2_PROTOCOLS = {"HTTP2", "GRPC", "GRPC-WEB"}
_LB = {"LEAST_REQUEST": "LEAST_REQUEST", "LEAST_CONN": "LEAST_REQUEST",
       "ROUND_ROBIN": "ROUND_ROBIN", "RANDOM": "RANDOM"}
ADS = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}


def destination_rules_for(mesh: MeshView, host: str) -> list[ConfigView]:
    """The DestinationRules of a host, oldest first: their subsets merge, the first
    ``trafficPolicy`` wins (push_context.go mergeDestinationRule)."""
    return [dr for dr in mesh.of_kind("DestinationRule") if fqdn(dr.spec.host, dr.namespace) == host]


def subset_labels(mesh: MeshView, host: str, subset: str) -> dict[str, str] | None:
    for dr in destination_rules_for(mesh, host):
        for candidate in dr.spec.subsets:
            if candidate.name == subset:
                return dict(candidate.labels)
    return None


def clusters(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for service in visible_services(mesh, proxy):
        rules = destination_rules_for(mesh, service.fqdn)
        subsets: dict[str, Any] = {}
        for dr in rules:
            for subset in dr.spec.subsets:
                subsets.setdefault(subset.name, (subset, dr))
        for port in service.ports:
            out.update(_outbound(mesh, service, port.port, None, rules))
            for name, (subset, dr) in subsets.items():
                out.update(_outbound(mesh, service, port.port, subset, rules, dr))
    out.update(_special(mesh, proxy))
    for port in proxy.inbound_ports:
        name = inbound_cluster(port)
        out[name] = {
            "name": name, "alt_stat_name": delimited(name, mesh.istio), "type": "STATIC",
            "connect_timeout": "10s", "lb_policy": "ROUND_ROBIN",
            "circuit_breakers": _thresholds(None, mesh),
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                _endpoint(proxy.app_ip, listen_port(port))]}]},
        }
    return dict(sorted(out.items()))


def _port_policy(policy, port: int):
    if policy is None:
        return None
    return next((p for p in policy.port_level_settings if p.port and p.port.number == port), None)


def _overlay(merged: dict, policy) -> None:
    if policy is not None:
        for field in _POLICY_FIELDS:
            value = getattr(policy, field)
            if value is not None:
                merged[field] = value


def traffic_policy(rules: list[ConfigView], port: int, subset=None) -> dict[str, Any]:
    """The effective load balancer, connection pool and outlier detection of a cluster."""
    merged: dict[str, Any] = {}
    top = next((dr.spec.traffic_policy for dr in rules if dr.spec.traffic_policy), None)
    port_level = _port_policy(top, port)
    _overlay(merged, port_level if port_level is not None else top)
    if subset is not None:
        _overlay(merged, subset.traffic_policy)
        _overlay(merged, _port_policy(subset.traffic_policy, port))
    return merged


def _outbound(mesh: MeshView, service: ServiceView, port: int, subset, rules: list[ConfigView],
              dr: ConfigView | None = None) -> dict[str, dict]:
    name = outbound_cluster(port, subset.name if subset is not None else None, service.fqdn)
    policy = traffic_policy(rules, port, subset)
    pool = policy.get("connection_pool")
    tcp = pool.tcp if pool is not None else None
    http = pool.http if pool is not None else None
    cluster: dict[str, Any] = {
        "name": name, "alt_stat_name": delimited(name, mesh.istio),
        **_discovery(mesh, service, port, name),
        "connect_timeout": duration(tcp.connect_timeout.seconds)
        if tcp is not None and tcp.connect_timeout is not None else "10s",
        "lb_policy": _lb_policy(policy.get("load_balancer")),
        "circuit_breakers": _thresholds(pool, mesh),
        "common_lb_config": {},
    }
    options = _http_options(http, tcp)
    if options:
        cluster["typed_extension_protocol_options"] = {HTTP_OPTIONS: options}
    outlier = policy.get("outlier_detection")
    if outlier is not None:
        cluster["outlier_detection"] = _outlier(outlier)
        # any outlierDetection disables Envoy's panic routing unless minHealthPercent says
        cluster["common_lb_config"] = {"healthy_panic_threshold": {
            "value": float(outlier.min_health_percent or 0)}}
    istio: dict[str, Any] = {"services": [{"host": service.fqdn, "name": service.name,
                                           "namespace": service.namespace}]}
    source = dr or (rules[0] if rules and policy else None)
    if source is not None:
        istio["config"] = source.config_ref
    if subset is not None:
        istio["subset"] = subset.name
    cluster["metadata"] = {"filter_metadata": {"istio": istio}}
    cluster.update(_upstream_tls(mesh, service, port, subset, policy.get("tls")))
    return {name: cluster}


def _upstream_tls(mesh: MeshView, service: ServiceView, port: int, subset, tls) -> dict:
    """The cluster's TLS (cluster_tls.go): the DestinationRule's ``tls`` mode when it has
    one (ISTIO_MUTUAL always, DISABLE never), else auto mTLS for a Service of the mesh that
    its namespace or the mesh does not DISABLE: mTLS to the endpoints labelled
    ``tlsMode: istio``, plain text to the others."""
    mode = tls.mode if tls is not None else None
    if mode == "DISABLE" or (mode is None and (
            service.from_service_entry or mtls.service_mode(mesh, service) == "DISABLE")):
        return {}
    service_port = next(p for p in service.ports if p.port == port)
    subset_name = subset.name if subset is not None else ""
    accounts = sorted({mtls.spiffe_id(w.namespace, w.service_account)
                       for w in _selected(mesh.workloads, service.namespace, dict(service.selector))
                       if service.selector})
    context = mtls.upstream_context(f"outbound_.{port}_.{subset_name}_.{service.fqdn}", accounts,
                                    h2=service_port.selected_protocol in _H2_PROTOCOLS)
    if mode == "ISTIO_MUTUAL":
        return {"transport_socket": context}
    return {"transport_socket_matches": mtls.auto_mtls_matches(context)}


def _discovery(mesh: MeshView, service: ServiceView, port: int, name: str) -> dict:
    """How the cluster finds its endpoints (cluster.go convertResolution): a Service's and
    a STATIC ServiceEntry's over EDS; a DNS ServiceEntry's by resolving each endpoint's
    address (or the host itself) at the endpoint's port for this port's name."""
    if service.resolution != "DNS":
        return {"type": "EDS", "eds_cluster_config": {"service_name": name, "eds_config": ADS}}
    service_port = next(p for p in service.ports if p.port == port)
    targets = [(e.address, e.ports.get(service_port.name, service_port.target_port))
               for e in service.endpoints] or [(service.fqdn, service_port.target_port)]
    out = {"type": "STRICT_DNS", "dns_lookup_family": "V4_ONLY", "dns_refresh_rate": "60s",
           "respect_dns_ttl": True,
           "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
               _endpoint(address, listen_port(target)) for address, target in targets]}]}}
    resolver = _mesh_resolver(mesh)
    if resolver is not None:
        out["typed_dns_resolver_config"] = resolver
    return out


def _special(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    """BlackHoleCluster on every proxy; PassthroughCluster on sidecars (cluster_builder.go).
    Istio's PassthroughCluster sends to the connection's original destination, which
    iptables kept; the local mesh has no iptables, so its PassthroughCluster resolves the
    request's Host with the mesh's DNS and connects there (a dynamic forward proxy, as
    Istio 1.31's ALLOW_ANY_DYNAMIC_DNS does), docs/facts.md#outbound-traffic-policy."""
    out = {BLACKHOLE_CLUSTER: {"name": BLACKHOLE_CLUSTER, "type": "STATIC",
                               "alt_stat_name": delimited(BLACKHOLE_CLUSTER, mesh.istio),
                               "connect_timeout": "10s", "lb_policy": "ROUND_ROBIN"}}
    if not proxy.is_gateway:
        out[PASSTHROUGH_CLUSTER] = {
            "name": PASSTHROUGH_CLUSTER, "alt_stat_name": delimited(PASSTHROUGH_CLUSTER, mesh.istio),
            "connect_timeout": "10s", "lb_policy": "CLUSTER_PROVIDED",
            "cluster_type": {"name": "envoy.clusters.dynamic_forward_proxy", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy."
                         "v3.ClusterConfig", "dns_cache_config": dns_cache(mesh)}}}
    return out


def dns_cache(mesh: MeshView) -> dict:
    """The passthrough's DNS cache: the mesh's DNS server when it has one."""
    cache: dict[str, Any] = {"name": "passthrough_dns_cache", "dns_lookup_family": "V4_ONLY"}
    resolver = _mesh_resolver(mesh)
    if resolver is not None:
        cache["typed_dns_resolver_config"] = resolver
    return cache


def _mesh_resolver(mesh: MeshView) -> dict | None:
    """Envoy's DNS resolver asking the mesh's DNS server (a pod's resolv.conf on a
    cluster); None when the mesh has none (golden files: the machine's resolver)."""
    if mesh.dns_server is None:
        return None
    address, port = mesh.dns_server
    return {"name": "envoy.network.dns_resolver.cares", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3."
                 "CaresDnsResolverConfig",
        "resolvers": [{"socket_address": {"address": address, "port_value": port}}],
        "use_resolvers_as_fallback": False}}


def _lb_policy(lb) -> str:
    if lb is None or lb.simple is None:
        return "LEAST_REQUEST"
    try:
        return _LB[lb.simple]
    except KeyError:
        raise ValueError(f"loadBalancer.simple {lb.simple} is not translated") from None


def _thresholds(pool, mesh: MeshView) -> dict:
    """connectionPool -> circuit breakers: unset or 0 stays "no limit", not Envoy's 1024."""
    tcp = pool.tcp if pool is not None else None
    http = pool.http if pool is not None else None

    def limit(settings, field: str) -> int:
        value = getattr(settings, field) if settings is not None else None
        return value or MAX_UINT32

    return {"thresholds": [{
        "max_connections": limit(tcp, "max_connections"),
        "max_pending_requests": limit(http, "http1_max_pending_requests"),
        "max_requests": limit(http, "http2_max_requests"),
        "max_retries": limit(http, "max_retries"),
        "track_remaining": mesh.istio.track_remaining_cb,
    }]}


def _http_options(http, tcp) -> dict | None:
    common: dict[str, Any] = {}
    if http is not None and http.max_requests_per_connection:
        common["max_requests_per_connection"] = http.max_requests_per_connection
    idle = (http.idle_timeout if http is not None and http.idle_timeout is not None
            else tcp.idle_timeout if tcp is not None else None)
    if idle is not None:
        common["idle_timeout"] = duration(idle.seconds)
    if tcp is not None and tcp.max_connection_duration is not None:
        common["max_connection_duration"] = duration(tcp.max_connection_duration.seconds)
    if not common:
        return None
    return {"@type": f"type.googleapis.com/{HTTP_OPTIONS}", "common_http_protocol_options": common,
            "explicit_http_config": {"http_protocol_options": {}}}


def _outlier(od) -> dict:
    """OutlierDetection -> Envoy's (applyOutlierDetection): only what is set, success rate
    off; the deprecated consecutiveErrors is not read."""
    out: dict[str, Any] = {"enforcing_success_rate": 0}
    if od.consecutive_5xx_errors is not None:
        out["consecutive_5xx"] = od.consecutive_5xx_errors
        out["enforcing_consecutive_5xx"] = 100 if od.consecutive_5xx_errors else 0
    if od.consecutive_gateway_errors is not None:
        out["consecutive_gateway_failure"] = od.consecutive_gateway_errors
        out["enforcing_consecutive_gateway_failure"] = 100 if od.consecutive_gateway_errors else 0
    if od.interval is not None:
        out["interval"] = duration(od.interval.seconds)
    if od.base_ejection_time is not None:
        out["base_ejection_time"] = duration(od.base_ejection_time.seconds)
    if od.max_ejection_percent:
        out["max_ejection_percent"] = od.max_ejection_percent
    return out


def _endpoint(ip: str, port: int, istio_tls: bool = False) -> dict:
    """An endpoint; ``istio_tls``: it has a sidecar that takes mTLS (the label auto mTLS
    matches on, endpoint_builder.go)."""
    out: dict[str, Any] = {"endpoint": {"address": {"socket_address": {
        "address": ip, "port_value": port}}}}
    if istio_tls:
        out["metadata"] = {"filter_metadata": {"envoy.transport_socket_match": {
            "tlsMode": "istio"}}}
    return out


def load_assignments(mesh: MeshView, names: list[str]) -> dict[str, dict]:
    """The endpoints of each EDS cluster: the pods its Service selects (and its subset's
    labels narrow), at their address and the target port."""
    out = {}
    for name in names:
        _, port, subset, host = name.split("|")
        service = next((s for s in mesh.all_services if s.fqdn == host), None)
        endpoints = []
        if service is not None and service.from_service_entry:  # STATIC
            service_port = next(p for p in service.ports if p.port == int(port))
            endpoints = [_endpoint(e.address, listen_port(e.ports.get(
                service_port.name, service_port.target_port))) for e in service.endpoints]
        elif service is not None:
            target = next(p.target_port for p in service.ports if p.port == int(port))
            labels = dict(service.selector)
            if subset:
                labels.update(subset_labels(mesh, host, subset) or {})
            endpoints = [_endpoint(w.ip, listen_port(target), mtls.endpoint_mtls(mesh, w, target))
                         for w in _selected(mesh.workloads, service.namespace, labels)]
        out[name] = {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]}
    return out


def _selected(workloads, namespace: str, labels: dict[str, str]) -> list[WorkloadView]:
    return sorted((w for w in workloads if w.namespace == namespace
                   and all(w.labels.get(k) == v for k, v in labels.items())),
                  key=lambda w: w.ip)
