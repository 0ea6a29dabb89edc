"""VirtualServices -> RouteConfigurations, as istiod builds them for a sidecar.

One RouteConfiguration per Service port (``9080``), one virtual host per Service on that
port (``reviews.default.svc.cluster.local:9080``). A Service's virtual host takes its
routes from the oldest VirtualService bound to the mesh that names it; without one (or
when none of its rules applies to this proxy) it has Istio's single ``default`` route.
Sources: pilot/pkg/networking/core/route/route.go, route/retry/retry.go, httproute.go
(docs/facts.md#routing).
"""

from __future__ import annotations

from typing import Any

from ...versions import IstioVersion
from .delegate import http_rules
from .model import ConfigView, MeshView, ProxyView, ServiceView
from .names import (ALLOW_ANY, BLOCK_ALL, MAX_DIRECT_RESPONSE_BODY, PASSTHROUGH_CLUSTER, duration,
                    outbound_cluster)
from .scope import outbound_policy, visible_services

MESH_GATEWAY = "mesh"
FAULT_FILTER = "envoy.filters.http.fault"
HTTP_FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
PREVIOUS_HOSTS = {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
             "PreviousHostsPredicate"}}
#: Istio's default retry_on (retry.go DefaultPolicy)
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
#: headers Istio matches through dedicated fields, ignored as keys of ``headers``
_PSEUDO = {"uri", "scheme", "method", "authority"}


def fqdn(host: str, namespace: str) -> str:
    host = host.lower().rstrip(".")
    return host if "." in host or host == "*" else f"{host}.{namespace}.svc.cluster.local"


def route_configurations(mesh: MeshView, proxy: ProxyView) -> dict[str, dict]:
    """``{"9080": RouteConfiguration, ...}``: one per HTTP port of what the sidecar sees."""
    services = visible_services(mesh, proxy)
    ports = sorted({p.port for s in services for p in s.ports if p.is_http})
    return {str(port): _route_configuration(mesh, proxy, services, port) for port in ports}


def _route_configuration(mesh: MeshView, proxy: ProxyView, services: list[ServiceView],
                         port: int) -> dict:
    hosts = [_virtual_host(mesh, proxy, service, port)
             for service in services if any(p.port == port and p.is_http for p in service.ports)]
    hosts = sorted(hosts, key=lambda h: h["name"]) + [catch_all_host(outbound_policy(mesh, proxy))]
    return {"name": str(port), "virtual_hosts": hosts,
            "validate_clusters": False, "ignore_port_in_host_matching": True,
            "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BODY}


def catch_all_host(policy: str) -> dict:
    """The last virtual host of a sidecar's port, for a Host no Service or ServiceEntry
    has (httproute.go buildCatchAllVirtualHost): ALLOW_ANY passes it through, to wherever
    the name leads; REGISTRY_ONLY answers 502 itself."""
    if policy == "REGISTRY_ONLY":
        route: dict[str, Any] = {"name": BLOCK_ALL, "match": {"prefix": "/"},
                                 "direct_response": {"status": 502}}
        name = BLOCK_ALL
    else:
        route = {"name": ALLOW_ANY, "match": {"prefix": "/"},
                 "route": {"cluster": PASSTHROUGH_CLUSTER, "timeout": "0s",
                           "max_grpc_timeout": "0s"}}
        name = ALLOW_ANY
    return {"name": name, "domains": ["*"], "routes": [route], "include_request_attempt_count": True}


def domains(service: ServiceView, proxy: ProxyView, istio: IstioVersion) -> list[str]:
    """The names a Host header may carry for this Service (httproute.go
    generateVirtualHostDomains; no VIP locally). The short name only resolves in the
    Service's own namespace; from 1.27 the absolute FQDN with its trailing dot is added."""
    names = [service.fqdn]
    if istio.minor >= 27:
        names.append(service.fqdn + ".")
    if service.from_service_entry:
        return names
    if proxy.namespace == service.namespace:
        names.append(service.name)
    names += [f"{service.name}.{service.namespace}.svc", f"{service.name}.{service.namespace}"]
    return names


def _virtual_host(mesh: MeshView, proxy: ProxyView, service: ServiceView, port: int) -> dict:
    vs = virtual_service_for(mesh, service.fqdn)
    routes = vs_routes(mesh, proxy, vs, port) if vs is not None else []
    if not routes:  # a VirtualService that yields no route leaves the default in place
        routes = [default_route(mesh.istio, service, port)]
    return {"name": f"{service.fqdn}:{port}", "domains": domains(service, proxy, mesh.istio),
            "routes": routes, "include_request_attempt_count": True}


def gateway_key(name: str, namespace: str) -> str:
    """A VirtualService's gateway reference as istiod resolves it: ``mesh``, else
    ``<namespace>/<name>``, a short name being in the VirtualService's namespace."""
    return name if name == MESH_GATEWAY or "/" in name else f"{namespace}/{name}"


def bound_gateways(vs: ConfigView) -> set[str]:
    """Where a VirtualService applies: its ``gateways``, else the mesh only."""
    return {gateway_key(g, vs.namespace) for g in vs.spec.gateways or [MESH_GATEWAY]}


def virtual_service_for(mesh: MeshView, host: str) -> ConfigView | None:
    """The VirtualService bound to the mesh that owns ``host``: sidecars do not merge two
    for one host, the oldest wins; an exact host beats a wildcard."""
    exact = wildcard = None
    for vs in mesh.of_kind("VirtualService"):
        if MESH_GATEWAY not in bound_gateways(vs):
            continue
        for pattern in vs.spec.hosts:
            expanded = fqdn(pattern, vs.namespace)
            if expanded == host:
                exact = exact or vs
            elif expanded.startswith("*") and (expanded == "*" or host.endswith(expanded[1:])):
                wildcard = wildcard or vs
    return exact or wildcard


def default_route(istio: IstioVersion, service: ServiceView, port: int) -> dict:
    route = {"cluster": outbound_cluster(port, None, service.fqdn), "timeout": "0s",
             "max_grpc_timeout": "0s", "retry_policy": retry_policy(None, istio)}
    return {"name": "default", "match": {"prefix": "/", "case_sensitive": True},
            "decorator": {"operation": f"{service.fqdn}:{port}/*"}, "route": route}


# -- a VirtualService's rules ----------------------------------------------------------

def vs_routes(mesh: MeshView, proxy: ProxyView, vs: ConfigView, port: int,
              gateway: str = MESH_GATEWAY) -> list[dict]:
    """A VirtualService's routes for one listener port, on the mesh's sidecars or on the
    gateway ``<ns>/<name>`` (route.go BuildHTTPRoutesForVirtualService)."""
    out: list[dict] = []
    for rule, owner in http_rules(mesh, vs):
        matches = [m for m in rule.match if _applies(m, proxy, port, gateway, vs.namespace)] \
            if rule.match else [None]
        if rule.match and not matches:
            continue  # every match block is for another port, proxy or gateway
        for match in matches:
            envoy_match = _match(match)
            route = {"match": envoy_match,
                     "metadata": {"filter_metadata": {"istio": {"config": owner.config_ref}}},
                     **_action(mesh, owner, rule, port)}
            route["decorator"] = {"operation": route_operation(route, vs.name, port)}
            name = ".".join(n for n in (rule.name, match.name if match else None) if n)
            if name:
                route = {"name": name, **route}
            out.append(route)
            if is_catch_all(envoy_match):
                return out  # istiod stops after the first route that matches everything
    return out


def route_operation(route: dict, vs_name: str, port: int) -> str:
    """The route's ``decorator.operation`` (route.go GetRouteOperation): the destination's
    ``host:port`` when the route has one cluster, else ``<vs name>:<listener port>``; then
    the path."""
    match = route["match"]
    if "prefix" in match:
        path = match["prefix"] + "*"
    elif "path" in match:
        path = match["path"]
    elif "safe_regex" in match:
        path = match["safe_regex"]["regex"]
    else:
        path = "/*"
    cluster = route.get("route", {}).get("cluster", "")
    parts = cluster.split("|")
    if len(parts) == 4 and parts[0] in ("outbound", "inbound") and parts[1].isdigit():
        return f"{parts[3]}:{parts[1]}{path}"
    return f"{vs_name}:{port}{path}"


def _applies(match, proxy: ProxyView, port: int, gateway: str, namespace: str) -> bool:
    """Conditions istiod decides per proxy and port (Envoy never sees them): a match that
    names gateways applies on those only; otherwise its source labels and namespace must
    be the proxy's (route.go sourceMatchHTTP)."""
    if match.port and match.port != port:
        return False
    if match.gateways:
        return gateway in {gateway_key(g, namespace) for g in match.gateways}
    if any(proxy.labels.get(k) != v for k, v in (match.source_labels or {}).items()):
        return False
    return not match.source_namespace or match.source_namespace == proxy.namespace


def _string_match(match) -> dict:
    kind = match.match_type
    if kind is None:
        raise ValueError("a presence match has no string matcher")
    return {"safe_regex": {"regex": match.regex}} if kind == "regex" else {kind: match.match_value}


def _header(name: str, match, *, invert: bool = False) -> dict:
    header: dict[str, Any] = {"name": name}
    if match.match_type is None or (invert and match.regex == "*"):
        header["present_match"] = True
    else:
        header["string_match"] = _string_match(match)
        if invert:
            header["treat_missing_header_as_empty"] = True
    if invert:
        header["invert_match"] = True
    return header


def _match(match) -> dict:
    """HTTPMatchRequest -> RouteMatch (route.go TranslateRouteMatch)."""
    if match is None:
        return {"prefix": "/", "case_sensitive": True}
    out: dict[str, Any] = {}
    uri = match.uri
    if uri is None:
        out["prefix"] = "/"
    elif uri.match_type == "exact":
        out["path"] = uri.exact
    elif uri.match_type == "prefix":
        out["prefix"] = uri.prefix
    else:
        out["safe_regex"] = {"regex": uri.regex}
    out["case_sensitive"] = not match.ignore_uri_case
    headers = [_header(name.lower(), m) for name, m in sorted((match.headers or {}).items())
               if name.lower() not in _PSEUDO]
    headers += [_header(name.lower(), m, invert=True)
                for name, m in sorted((match.without_headers or {}).items())]
    for field, pseudo in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        value = getattr(match, field)
        if value is not None:
            headers.append({"name": pseudo, "string_match": _string_match(value)})
    if headers:
        out["headers"] = headers
    query = []
    for name, m in sorted((match.query_params or {}).items()):
        query.append({"name": name, "present_match": True} if m.match_type is None
                     else {"name": name, "string_match": _string_match(m)})
    if query:
        out["query_parameters"] = query
    return out


def is_catch_all(match: dict) -> bool:
    return (match.get("prefix") == "/" or match.get("safe_regex", {}).get("regex") == ".*") \
        and not match.get("headers") and not match.get("query_parameters")


# -- the action -----------------------------------------------------------------------

def _destination_port(mesh: MeshView, destination, host: str, port: int) -> int:
    """The explicit port, else the Service's only one, else the listener's
    (route.go GetDestinationCluster)."""
    if destination.port and destination.port.number:
        return destination.port.number
    service = next((s for s in mesh.all_services if s.fqdn == host), None)
    if service is not None and len(service.ports) == 1:
        return service.ports[0].port
    return port


def _cluster_of(mesh: MeshView, vs: ConfigView, destination, port: int) -> str:
    host = fqdn(destination.host, vs.namespace)
    return outbound_cluster(_destination_port(mesh, destination, host, port),
                            destination.subset, host)


CORS_FILTER = "envoy.filters.http.cors"
CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
#: Istio's redirectCode -> Envoy's RedirectResponseCode (route.go ApplyRedirect); 0 is unset
REDIRECT_CODES = {0: "MOVED_PERMANENTLY", 301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER",
                  307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT"}
#: a route's (and a weighted cluster's) header lists, as Envoy names them
HEADER_LISTS = ("request_headers_to_add", "request_headers_to_remove",
                "response_headers_to_add", "response_headers_to_remove")
OVERWRITE = "OVERWRITE_IF_EXISTS_OR_ADD"  # headers.*.set
APPEND = "APPEND_IF_EXISTS_OR_ADD"  # headers.*.add


def _action(mesh: MeshView, vs: ConfigView, rule, port: int) -> dict:
    """What a rule does once matched (route.go TranslateRoute): a redirect, else a direct
    response, else its destinations; the rule's headers, fault and CORS policy go with any
    of them (docs/facts.md#route-actions)."""
    headers, authority = header_operations(rule.headers)
    out: dict[str, Any] = {}
    if rule.redirect is not None:
        redirect = redirect_action(rule.redirect, port)
        if redirect is not None:  # istiod leaves the route without an action: Envoy refuses it
            out["redirect"] = redirect
    elif rule.direct_response is not None:
        out["direct_response"] = direct_response(rule.direct_response)
    else:
        out["route"] = _route_action(mesh, vs, rule, port, headers, authority)
    out.update((key, values) for key, values in headers.items() if values)
    per_filter = {}
    if rule.fault is not None:
        per_filter[FAULT_FILTER] = fault_config(rule.fault)
    if rule.cors_policy is not None:
        per_filter[CORS_FILTER] = cors_policy(rule.cors_policy, mesh.istio)
    if per_filter:
        out["typed_per_filter_config"] = per_filter
    return out


def _route_action(mesh: MeshView, vs: ConfigView, rule, port: int, headers: dict[str, list],
                  authority: str | None) -> dict:
    """RouteAction (route.go applyHTTPRouteDestination). One destination's headers join the
    route's (``headers`` grows); several destinations each carry their own."""
    targets = [d for d in rule.route if len(rule.route) == 1 or (d.weight or 0) > 0]
    if len(targets) == 1:
        action: dict[str, Any] = {"cluster": _cluster_of(mesh, vs, targets[0].destination, port)}
        own, own_authority = header_operations(targets[0].headers)
        for key, values in own.items():
            headers[key] = headers[key] + values
    else:
        action = {"weighted_clusters": {"clusters": [
            _cluster_weight(mesh, vs, d, port) for d in targets]}}
        own_authority = None
    timeout = duration(rule.timeout.seconds) if rule.timeout is not None else "0s"
    action["timeout"] = timeout
    action["max_grpc_timeout"] = timeout
    if rule.rewrite is not None:
        action.update(_uri_rewrite(rule.rewrite))
        authority = rule.rewrite.authority or authority
    authority = authority or own_authority  # the rule's authority beats its destination's
    if authority:
        action["host_rewrite_literal"] = authority
    policy = retry_policy(rule.retries, mesh.istio)
    if policy is not None:
        action["retry_policy"] = policy
    mirrors = mirror_policies(mesh, vs, rule, port)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    return action


def _cluster_weight(mesh: MeshView, vs: ConfigView, target, port: int) -> dict:
    """One of several destinations (route.go processWeightedDestination)."""
    out: dict[str, Any] = {"name": _cluster_of(mesh, vs, target.destination, port),
                           "weight": target.weight}
    headers, authority = header_operations(target.headers)
    out.update((key, values) for key, values in headers.items() if values)
    if authority:
        out["host_rewrite_literal"] = authority
    return out


def _uri_rewrite(rewrite) -> dict:
    """``rewrite.uriRegexRewrite`` -> regex_rewrite, else ``rewrite.uri`` -> prefix_rewrite
    (the matched prefix, or the whole path of an exact match, is replaced)."""
    if rewrite.uri_regex_rewrite is not None:
        return {"regex_rewrite": {"pattern": {"regex": rewrite.uri_regex_rewrite.match},
                                  "substitution": rewrite.uri_regex_rewrite.rewrite}}
    return {"prefix_rewrite": rewrite.uri} if rewrite.uri else {}


def _is_internal(name: str) -> bool:
    """A pseudo-header or Host: Envoy cannot add or remove them (route.go isInternalHeader)."""
    return name.startswith(":") or name.lower() == "host"


def _headers_to_add(values: dict[str, str], action: str) -> list[dict]:
    return [{"header": {"key": key, "value": value}, "append_action": action}
            for key, value in sorted(values.items()) if not _is_internal(key)]


def header_operations(headers) -> tuple[dict[str, list], str | None]:
    """Headers -> Envoy's four header lists and the authority a request ``set``/``add`` of
    ``:authority`` or ``host`` asks for, ``set`` winning (route.go TranslateHeadersOperations).
    ``set`` overwrites and ``add`` appends; each is sorted by name, ``set`` first; the
    pseudo-headers and Host are left out of every list."""
    out: dict[str, list] = {key: [] for key in HEADER_LISTS}
    authority = None
    for side, operations in (("request", headers and headers.request),
                             ("response", headers and headers.response)):
        if operations is None:
            continue
        out[f"{side}_headers_to_add"] = (_headers_to_add(operations.set, OVERWRITE)
                                         + _headers_to_add(operations.add, APPEND))
        out[f"{side}_headers_to_remove"] = [n for n in operations.remove if not _is_internal(n)]
        if side == "request":
            authority = next((v for source in (operations.set, operations.add)
                              for k, v in source.items() if k.lower() in (":authority", "host")),
                             None)
    return out, authority


def redirect_action(redirect, port: int) -> dict | None:
    """HTTPRedirect -> RedirectAction (route.go ApplyRedirect), None for a ``redirectCode``
    Envoy has no name for. A sidecar's listener is plain HTTP: a port that is the scheme's
    default (80 for http, 443 for https) is left out of the Location; ``FROM_REQUEST_PORT``
    is the listener's port."""
    code = REDIRECT_CODES.get(redirect.redirect_code or 0)
    if code is None:
        return None
    out: dict[str, Any] = {}
    if redirect.authority:
        out["host_redirect"] = redirect.authority
    if redirect.uri:
        out["path_redirect"] = redirect.uri
    if redirect.scheme:
        out["scheme_redirect"] = redirect.scheme
    number = redirect.port or (port if redirect.derive_port == "FROM_REQUEST_PORT" else 0)
    if number and number != {"http": 80, "https": 443}[redirect.scheme or "http"]:
        out["port_redirect"] = number
    out["response_code"] = code
    return out


def direct_response(response) -> dict:
    """HTTPDirectResponse -> DirectResponseAction (route.go ApplyDirectResponse); ``bytes``
    stays base64, as both APIs write it."""
    out: dict[str, Any] = {"status": response.status}
    body = response.body
    if body is not None and body.string is not None:
        out["body"] = {"inline_string": body.string}
    elif body is not None and body.bytes is not None:
        out["body"] = {"inline_bytes": body.bytes}
    return out


def cors_policy(policy, istio: IstioVersion) -> dict:
    """CorsPolicy -> the CORS filter's per-route CorsPolicy (route.go TranslateCORSPolicy):
    always enabled; from 1.23 a preflight that matches no origin goes on to the upstream
    unless ``unmatchedPreflights: IGNORE``; lists are joined with commas, ``maxAge`` is
    whole seconds."""
    out: dict[str, Any] = {"@type": CORS_POLICY}
    if istio.minor >= 23:
        out["forward_not_matching_preflights"] = policy.unmatched_preflights != "IGNORE"
    if policy.allow_origins:
        out["allow_origin_string_match"] = [_string_match(m) for m in policy.allow_origins]
    elif policy.allow_origin:  # the deprecated exact origins
        out["allow_origin_string_match"] = [{"exact": origin} for origin in policy.allow_origin]
    out["filter_enabled"] = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    if policy.allow_credentials is not None:
        out["allow_credentials"] = policy.allow_credentials
    for key, values in (("allow_headers", policy.allow_headers),
                        ("allow_methods", policy.allow_methods),
                        ("expose_headers", policy.expose_headers)):
        if values:
            out[key] = ",".join(values)
    if policy.max_age is not None:
        out["max_age"] = str(int(policy.max_age.seconds))
    return out


def retry_policy(retries, istio: IstioVersion) -> dict | None:
    """HTTPRetry -> RetryPolicy (retry.go ConvertPolicy). No ``retries``: Istio's default
    (2 retries; an upstream 503 among the retried codes up to 1.23). ``attempts: 0``: none."""
    policy: dict[str, Any] = {
        "retry_on": DEFAULT_RETRY_ON, "num_retries": 2,
        "retry_host_predicate": [PREVIOUS_HOSTS], "host_selection_retry_max_attempts": 5}
    if istio.default_retry_503:
        policy["retriable_status_codes"] = [503]
    if retries is None:
        return policy
    if not retries.attempts:
        return None
    policy["num_retries"] = retries.attempts
    if retries.retry_on:
        tokens = [t.strip() for t in retries.retry_on.split(",") if t.strip()]
        codes = [int(t) for t in tokens if t.isdigit()]
        on = [t for t in tokens if not t.isdigit()]
        if codes:
            on.append("retriable-status-codes")
        policy["retry_on"] = ",".join(on)
        policy.pop("retriable_status_codes", None)
        if codes:
            policy["retriable_status_codes"] = codes
    if retries.per_try_timeout is not None:
        policy["per_try_timeout"] = duration(retries.per_try_timeout.seconds)
    if retries.backoff is not None:
        policy["retry_back_off"] = {"base_interval": duration(retries.backoff.seconds)}
    if retries.retry_ignore_previous_hosts is False:
        del policy["retry_host_predicate"]
    return policy


def _fraction(percent: float) -> dict:
    """A percentage as Envoy's FractionalPercent per MILLION (4 decimals kept)."""
    return {"numerator": round(percent * 10000), "denominator": "MILLION"}


def fault_config(fault) -> dict:
    """HTTPFaultInjection -> HTTPFault (route.go TranslateFault). A fault without a
    percentage is Envoy's 0 %: it never fires."""
    out: dict[str, Any] = {"@type": HTTP_FAULT}
    delay = fault.delay
    if delay is not None and delay.fixed_delay is not None:
        if delay.percentage is not None:
            share = _fraction(delay.percentage.value)
        else:  # the deprecated integer percent
            share = {"numerator": delay.percent or 0, "denominator": "HUNDRED"}
        out["delay"] = {"fixed_delay": duration(delay.fixed_delay.seconds), "percentage": share}
    abort = fault.abort
    if abort is not None and abort.http_status is not None:
        out["abort"] = {"http_status": abort.http_status,
                        "percentage": _fraction(abort.effective_percentage)}
    return out


def mirror_policies(mesh: MeshView, vs: ConfigView, rule, port: int) -> list[dict]:
    """``mirror`` / ``mirrors`` -> request_mirror_policies (route.go MirrorPercent): no
    percentage is 100 %, 0 % is no mirror; from 1.28 the copy keeps its Host."""
    pairs = []
    if rule.mirror is not None:
        if rule.mirror_percentage is not None:
            share = _fraction(rule.mirror_percentage.value)
        elif rule.mirror_percent is not None:
            share = {"numerator": rule.mirror_percent, "denominator": "HUNDRED"}
        else:
            share = {"numerator": 100, "denominator": "HUNDRED"}
        pairs.append((rule.mirror, share))
    for policy in rule.mirrors:
        share = (_fraction(policy.percentage.value) if policy.percentage is not None
                 else {"numerator": 100, "denominator": "HUNDRED"})
        pairs.append((policy.destination, share))
    out = []
    for destination, share in pairs:
        if not share["numerator"]:
            continue
        policy = {"cluster": _cluster_of(mesh, vs, destination, port),
                  "runtime_fraction": {"default_value": share}, "trace_sampled": False}
        if not mesh.istio.mirror_shadow_suffix:
            policy["disable_shadow_host_suffix_append"] = True
        out.append(policy)
    return out
