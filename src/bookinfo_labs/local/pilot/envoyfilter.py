"""EnvoyFilter: patches applied to a proxy's generated config after translation, as
istiod applies them (docs/facts.md#envoyfilter).

Which filters: those of the root namespace (istio-system), then those of the proxy's
namespace, whose ``workloadSelector`` labels the proxy has; sorted by ``priority``, root
namespace first, oldest first, then ``name.namespace`` (push_context.go EnvoyFilters).
Each patch applies where its ``match.context`` fits: a sidecar's inbound listeners and
their inline route configs and ``inbound|`` clusters are SIDECAR_INBOUND, the rest of a
sidecar SIDECAR_OUTBOUND, all of a gateway GATEWAY.

Values are Envoy's proto JSON; they merge as istiod's proto merge does (pkg/proto/merge):
messages field by field, lists appended, maps per key, an ``Any`` (a ``typed_config``)
replaced whole, setting one member of a oneof clears the others. MERGE of a filter whose
``typed_config`` has the same type (``@type``, or a ``udpa.type.v1.TypedStruct``'s
``type_url``) merges the configs (util.MergeAnyWithAny). Sources: pilot/pkg/networking/
core/envoyfilter/{listener_patch,rc_patch,cluster_patch}.go, pilot/pkg/model/envoyfilter.go.

``apply`` is pure; ``trace`` says which EnvoyFilter changed which resource and which
patches matched nothing, for the analysis and for naming the filter behind a NACK.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .model import ConfigView, MeshView, ProxyView
from .names import CLUSTER, LISTENER, ROOT_NAMESPACE, ROUTE

HCM_NAME = "envoy.filters.network.http_connection_manager"
TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct"
#: legacy filter names a match may use, as Envoy's canonical names (pkg/config/xds/deprecated.go)
_DEPRECATED = {
    "envoy.buffer": "envoy.filters.http.buffer", "envoy.cors": "envoy.filters.http.cors",
    "envoy.csrf": "envoy.filters.http.csrf", "envoy.fault": "envoy.filters.http.fault",
    "envoy.ext_authz": "envoy.filters.http.ext_authz", "envoy.gzip": "envoy.filters.http.gzip",
    "envoy.health_check": "envoy.filters.http.health_check", "envoy.lua": "envoy.filters.http.lua",
    "envoy.rate_limit": "envoy.filters.http.ratelimit", "envoy.router": "envoy.filters.http.router",
    "envoy.grpc_web": "envoy.filters.http.grpc_web",
    "envoy.listener.http_inspector": "envoy.filters.listener.http_inspector",
    "envoy.listener.original_dst": "envoy.filters.listener.original_dst",
    "envoy.listener.tls_inspector": "envoy.filters.listener.tls_inspector",
    "envoy.listener.proxy_protocol": "envoy.filters.listener.proxy_protocol",
    "envoy.http_connection_manager": HCM_NAME, "envoy.tcp_proxy": "envoy.filters.network.tcp_proxy",
    "envoy.ratelimit": "envoy.filters.network.ratelimit",
    "envoy.mongo_proxy": "envoy.filters.network.mongo_proxy",
    "envoy.redis_proxy": "envoy.filters.network.redis_proxy",
}
#: proto map fields in what we generate or users patch: merged per key, each value replaced
_MAPS = frozenset({"typed_per_filter_config", "typed_extension_protocol_options",
                   "filter_metadata", "typed_filter_metadata"})
#: oneofs of the objects patched: setting one member clears the others
_ONEOFS = (
    frozenset({"route", "redirect", "direct_response", "filter_action", "non_forwarding_action"}),
    frozenset({"typed_config", "config_discovery"}),
    frozenset({"rds", "route_config", "scoped_routes"}),
    frozenset({"type", "cluster_type"}),
    frozenset({"cluster", "cluster_header", "weighted_clusters", "cluster_specifier_plugin"}),
)
#: below these keys are users' own names (Struct keys), kept as written
_OPAQUE = frozenset({"filter_metadata", "typed_filter_metadata"})
#: INSERT_* on these is ADD (model/envoyfilter.go convertToEnvoyFilterWrapper)
_ORDERED = frozenset({"HTTP_FILTER", "NETWORK_FILTER", "HTTP_ROUTE", "LISTENER_FILTER"})


@dataclass(frozen=True)
class Patch:
    """One ``configPatches`` entry of one EnvoyFilter, its value in snake_case proto JSON."""

    source: ConfigView
    index: int
    apply_to: str
    context: str
    match: Any  # the typed EnvoyConfigObjectMatch, or None
    operation: str
    value: dict | None

    @property
    def filter_name(self) -> str:
        return f"{self.source.namespace}/{self.source.name}"


@dataclass
class Trace:
    """What applying the EnvoyFilters did: which filters changed which resource (by type
    URL, then name) and which patches (filter, index) changed something."""

    touched: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    used: set[tuple[str, int]] = field(default_factory=set)

    def mark(self, patch: Patch, type_url: str, name: str) -> None:
        self.touched.setdefault((type_url, name), set()).add(patch.filter_name)
        self.used.add((patch.filter_name, patch.index))


def apply(mesh: MeshView, proxy: ProxyView,
          resources: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """``resources`` (by type URL, then name) with the EnvoyFilters that select ``proxy``
    applied; the input is left as it was."""
    return _apply(mesh, proxy, resources, Trace())


def trace(mesh: MeshView, proxy: ProxyView, resources: dict[str, dict[str, dict]]) -> Trace:
    """What ``apply`` does to ``resources``: see :class:`Trace`."""
    found = Trace()
    _apply(mesh, proxy, resources, found)
    return found


def selected(mesh: MeshView, proxy: ProxyView) -> list[ConfigView]:
    """The EnvoyFilters that apply to ``proxy``, in the order istiod applies them."""
    namespaces = [ROOT_NAMESPACE] + ([proxy.namespace] if proxy.namespace != ROOT_NAMESPACE else [])
    chosen = [c for c in mesh.of_kind("EnvoyFilter") if c.namespace in namespaces
              and _selects(c.spec.workload_selector, proxy)]
    return sorted(chosen, key=lambda c: (c.spec.priority or 0, c.namespace != ROOT_NAMESPACE,
                                         c.created, f"{c.name}.{c.namespace}"))


def _selects(selector, proxy: ProxyView) -> bool:
    return selector is None or all(proxy.labels.get(k) == v for k, v in selector.labels.items())


def patches(mesh: MeshView, proxy: ProxyView) -> list[Patch]:
    out = []
    for config in selected(mesh, proxy):
        for i, cp in enumerate(config.spec.config_patches):
            if not _proxy_matches(cp.match, mesh):
                continue
            operation = cp.patch.operation
            if operation in ("INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST") and \
                    cp.apply_to not in _ORDERED:
                operation = "ADD"
            value = snake_case(cp.patch.value) if cp.patch.value is not None else None
            context = (cp.match.context if cp.match is not None else None) or "ANY"
            out.append(Patch(config, i, cp.apply_to, context, cp.match, operation, value))
    return out


def _proxy_matches(match, mesh: MeshView) -> bool:
    """``match.proxy.proxyVersion``: a regex on the proxy's Istio version."""
    wanted = match.proxy.proxy_version if match is not None and match.proxy else None
    return not wanted or re.search(wanted, mesh.istio.patch) is not None


def _snake(key: str) -> str:
    return key if key.startswith("@") else re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def snake_case(value: Any) -> Any:
    """Proto JSON accepts ``typedConfig`` and ``typed_config`` alike; the generated config
    uses the latter, so a patch must too for merges to meet the same field."""
    if isinstance(value, list):
        return [snake_case(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {_snake(k): (copy.deepcopy(v) if _snake(k) in _OPAQUE else snake_case(v))
            for k, v in value.items()}


# --------------------------------------------------------------------------- proto merge


def merge(dst: dict, src: dict) -> None:
    """Merge ``src`` into ``dst`` as protobuf merges messages (pkg/proto/merge)."""
    for key, value in src.items():
        for group in _ONEOFS:
            if key in group:
                for other in group - {key}:
                    dst.pop(other, None)
        if key in _MAPS and isinstance(value, dict):
            dst.setdefault(key, {}).update(copy.deepcopy(value))
        elif isinstance(value, dict) and "@type" not in value and isinstance(dst.get(key), dict) \
                and "@type" not in dst[key]:
            merge(dst[key], value)
        elif isinstance(value, list) and isinstance(dst.get(key), list):
            dst[key] = dst[key] + copy.deepcopy(value)
        else:  # a scalar, an Any, or a field not set yet
            dst[key] = copy.deepcopy(value)


def _type_of(typed: dict) -> str:
    if typed.get("@type") == TYPED_STRUCT:
        return typed.get("type_url", "")
    return typed.get("@type", "")


def _merge_typed(dst: dict, src: dict) -> dict:
    """util.MergeAnyWithAny: two configs of one type merge field by field (in whichever
    form, a typed message or a TypedStruct, the current one has); of different types the
    current one stays."""
    if _type_of(dst) != _type_of(src):
        return dst
    fields = src.get("value", {}) if src.get("@type") == TYPED_STRUCT else \
        {k: v for k, v in src.items() if k != "@type"}
    out = copy.deepcopy(dst)
    merge(out.setdefault("value", {}) if out.get("@type") == TYPED_STRUCT else out, fields)
    return out


def _merge_filter(current: dict, value: dict) -> None:
    """MERGE of a network or HTTP filter: the name if given, the typed configs merged."""
    if "typed_config" not in current:
        return
    if value.get("name"):
        current["name"] = value["name"]
    if isinstance(value.get("typed_config"), dict):
        current["typed_config"] = _merge_typed(current["typed_config"], value["typed_config"])


# --------------------------------------------------------------------------- matching


def _canonical(name: str | None) -> str | None:
    return _DEPRECATED.get(name, name) if name else name


def _context_fits(patch: Patch, context: str) -> bool:
    return patch.context in (context, "ANY")


def _istio_port(listener: dict) -> int | None:
    """The Istio port a listener is for: its name's ``_<port>`` (the local mesh binds some
    ports shifted, see names.listen_port), else the port it binds."""
    tail = listener.get("name", "").rpartition("_")[2]
    if tail.isdigit():
        return int(tail)
    return listener.get("address", {}).get("socket_address", {}).get("port_value")


def _listener_match(listener: dict, patch: Patch) -> bool:
    match = patch.match.listener if patch.match is not None else None
    if match is None:
        return True
    if match.name and match.name != listener.get("name"):
        return False
    return not match.port_number or match.port_number == _istio_port(listener)


def _chain_match(chain: dict, patch: Patch) -> bool:
    listener = patch.match.listener if patch.match is not None else None
    match = listener.filter_chain if listener is not None else None
    if match is None:
        return True
    fcm = chain.get("filter_chain_match") or {}
    if match.name and match.name != chain.get("name"):
        return False
    if match.sni and match.sni not in (fcm.get("server_names") or []):
        return False
    if match.transport_protocol and match.transport_protocol != fcm.get("transport_protocol"):
        return False
    if match.application_protocols and not all(
            p in (fcm.get("application_protocols") or [])
            for p in match.application_protocols.split(",")):
        return False
    return not match.destination_port or match.destination_port == fcm.get("destination_port")


def _filter_match_spec(patch: Patch):
    listener = patch.match.listener if patch.match is not None else None
    chain = listener.filter_chain if listener is not None else None
    return chain.filter if chain is not None else None


def _network_filter_match(f: dict, patch: Patch) -> bool:
    spec = _filter_match_spec(patch)
    return spec is None or _canonical(spec.name) == f.get("name")


def _sub_filter(patch: Patch):
    spec = _filter_match_spec(patch)
    return spec.sub_filter if spec is not None else None


def _http_filter_match(f: dict, patch: Patch) -> bool:
    sub = _sub_filter(patch)
    return sub is None or _canonical(sub.name) == f.get("name")


def _listener_filter_spec(patch: Patch) -> str | None:
    listener = patch.match.listener if patch.match is not None else None
    return _canonical(listener.listener_filter) if listener is not None else None


# --------------------------------------------------------------------------- lists


def _patch_list(items: list[dict], patch: Patch, has_match: bool,
                matches: Callable[[dict], bool]) -> tuple[list[dict], bool]:
    """The ordered-list operations shared by listener, network and HTTP filters and
    routes; returns the new list and whether it changed."""
    value = copy.deepcopy(patch.value)
    op = patch.operation
    if op == "ADD":
        return items + [value], True
    if op == "INSERT_FIRST":
        return [value] + items, True
    if op in ("INSERT_BEFORE", "INSERT_AFTER") and not has_match:
        return ([value] + items, True) if op == "INSERT_BEFORE" else (items + [value], True)
    if not has_match:
        return items, False  # REPLACE and REMOVE need a match
    found = next((i for i, item in enumerate(items) if matches(item)), None)
    if op == "REMOVE":
        kept = [item for item in items if not matches(item)]
        return kept, len(kept) != len(items)
    if found is None:
        return items, False
    if op == "INSERT_BEFORE":
        return items[:found] + [value] + items[found:], True
    if op == "INSERT_AFTER":
        return items[:found + 1] + [value] + items[found + 1:], True
    if op == "REPLACE":
        return items[:found] + [value] + items[found + 1:], True
    return items, False


# --------------------------------------------------------------------------- listeners


def _patch_listeners(listeners: dict[str, dict], found: list[Patch], contexts: dict[str, str],
                     passes: Iterable[str], mesh_ports: dict[int, set[int]], record) -> dict:
    out = {}
    for name, lis in listeners.items():
        context = contexts[name]
        # istiod patches inline route configs as it builds them, before listener patches
        for chain in lis.get("filter_chains", []):
            for f in chain.get("filters", []):
                hcm = f.get("typed_config", {})
                if f.get("name") == HCM_NAME and isinstance(hcm.get("route_config"), dict):
                    _patch_route_configuration(hcm["route_config"], found, context,
                                                         mesh_ports, lambda p: record(p, name))
        if _patch_listener(lis, found, context, lambda p: record(p, name)):
            out[name] = lis
    for context in passes:
        for patch in found:
            if patch.apply_to != "LISTENER" or patch.operation != "ADD":
                continue
            if patch.context == "ANY" and context not in ("SIDECAR_OUTBOUND", "GATEWAY"):
                continue
            if _context_fits(patch, context):
                value = copy.deepcopy(patch.value)
                out[value.get("name", "")] = value
                record(patch, value.get("name", ""))
    return out


def _patch_listener(lis: dict, found: list[Patch], context: str, record) -> bool:
    """Patches one listener in place; False when a patch removed it."""
    for patch in found:
        if patch.apply_to != "LISTENER" or not _context_fits(patch, context) or \
                not _listener_match(lis, patch):
            continue
        if patch.operation == "REMOVE":
            record(patch)
            return False
        if patch.operation == "MERGE":
            merge(lis, patch.value)
            record(patch)
    for patch in found:
        if patch.apply_to == "LISTENER_FILTER" and _context_fits(patch, context) and \
                _listener_match(lis, patch):
            spec = _listener_filter_spec(patch)
            items, changed = _patch_list(lis.get("listener_filters", []), patch, bool(spec),
                                         lambda f, s=spec: f.get("name") == s)
            if changed:
                lis["listener_filters"] = items
                record(patch)
    chains = []
    for chain in lis.get("filter_chains", []):
        if _patch_chain(lis, chain, found, context, record):
            chains.append(chain)
    for patch in found:
        if patch.apply_to == "FILTER_CHAIN" and patch.operation == "ADD" and \
                _context_fits(patch, context) and _listener_match(lis, patch):
            chains.append(copy.deepcopy(patch.value))
            record(patch)
    lis["filter_chains"] = chains
    return True


def _patch_chain(lis: dict, chain: dict, found: list[Patch], context: str, record) -> bool:
    """Patches one filter chain in place; False when a patch removed it."""
    def fits(patch: Patch, apply_to: str) -> bool:
        return patch.apply_to == apply_to and _context_fits(patch, context) and \
            _listener_match(lis, patch) and _chain_match(chain, patch)

    for patch in found:
        if not fits(patch, "FILTER_CHAIN"):
            continue
        if patch.operation == "REMOVE":
            record(patch)
            return False
        if patch.operation == "MERGE":
            merge(chain, patch.value)
            record(patch)
    for patch in found:
        if fits(patch, "NETWORK_FILTER") and patch.operation != "MERGE":
            items, changed = _patch_list(chain.get("filters", []), patch,
                                         _filter_match_spec(patch) is not None,
                                         lambda f, p=patch: _network_filter_match(f, p))
            if changed:
                chain["filters"] = items
                record(patch)
    for f in chain.get("filters", []):
        for patch in found:
            if fits(patch, "NETWORK_FILTER") and patch.operation == "MERGE" and \
                    _network_filter_match(f, patch) and "typed_config" in f:
                _merge_filter(f, patch.value)
                record(patch)
        if f.get("name") == HCM_NAME:
            _patch_http_filters(f, [p for p in found if fits(p, "HTTP_FILTER")
                                    and _network_filter_match(f, p)], record)
    return bool(chain.get("filters"))


def _patch_http_filters(hcm: dict, found: list[Patch], record) -> None:
    config = hcm.get("typed_config", {})
    filters = config.get("http_filters", [])
    for patch in found:
        if patch.operation == "MERGE":
            continue
        filters, changed = _patch_list(filters, patch, _sub_filter(patch) is not None,
                                       lambda f, p=patch: _http_filter_match(f, p))
        if changed:
            record(patch)
    for f in filters:
        for patch in found:
            if patch.operation == "MERGE" and _http_filter_match(f, patch) and "typed_config" in f:
                _merge_filter(f, patch.value)
                record(patch)
    config["http_filters"] = filters


# --------------------------------------------------------------------------- routes


def _route_port(name: str, context: str) -> int | None:
    """The port a route configuration is for: ``9080``, ``inbound|9080||``, ``http.8080``,
    ``https.443.<portName>.<gw>.<ns>`` (rc_patch.go getListenerPortFromName,
    model.ParseGatewayRDSRouteName)."""
    if context == "GATEWAY":
        parts = name.split(".")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    if name.startswith("inbound|"):
        port = name.split("|")[1]
        return int(port) if port.isdigit() else None
    return int(name) if name.isdigit() else None


def _route_configuration_match(rc: dict, patch: Patch, context: str,
                               port_map: dict[int, set[int]]) -> bool:
    match = patch.match.route_configuration if patch.match is not None else None
    if match is None:
        return True
    name = rc.get("name", "")
    if match.name and match.name != name:
        return False
    if context == "GATEWAY":
        parts = name.split(".")
        if match.port_name and (len(parts) < 5 or parts[2] != match.port_name):
            return False
        if match.gateway and (len(parts) < 5 or f"{parts[4]}/{parts[3]}" != match.gateway):
            return False
        port = _route_port(name, context)
        # a gateway's port matches by the Service ports targeting it (rc_patch.go anyPortMatches)
        return not match.port_number or (match.port_number in port_map[port]
                                         if port in port_map else port == match.port_number)
    return not match.port_number or match.port_number == _route_port(name, context)


def _vhost_match(vhost: dict, patch: Patch) -> bool:
    rc = patch.match.route_configuration if patch.match is not None else None
    match = rc.vhost if rc is not None else None
    if match is None:
        return True
    return (not match.name or match.name == vhost.get("name")) and \
        (not match.domain_name or match.domain_name in (vhost.get("domains") or []))


def _route_spec(patch: Patch):
    rc = patch.match.route_configuration if patch.match is not None else None
    return rc.vhost.route if rc is not None and rc.vhost is not None else None


_ACTIONS = {"ROUTE": "route", "REDIRECT": "redirect", "DIRECT_RESPONSE": "direct_response"}


def _route_match(route: dict, patch: Patch) -> bool:
    match = _route_spec(patch)
    if match is None:
        return True
    if match.name and match.name != route.get("name"):
        return False
    action = match.action or "ANY"
    return action == "ANY" or _ACTIONS[action] in route


def _patch_route_configuration(rc: dict, found: list[Patch], context: str,
                               port_map: dict[int, set[int]], record) -> None:
    def fits(patch: Patch, apply_to: str) -> bool:
        return patch.apply_to == apply_to and _context_fits(patch, context) and \
            _route_configuration_match(rc, patch, context, port_map)

    for patch in found:
        if fits(patch, "ROUTE_CONFIGURATION") and patch.operation == "MERGE":
            merge(rc, patch.value)
            record(patch)
    vhosts = []
    for vhost in rc.get("virtual_hosts", []):
        removed = False
        for patch in found:
            if not fits(patch, "VIRTUAL_HOST") or not _vhost_match(vhost, patch):
                continue
            if patch.operation == "REMOVE":
                removed = True
            elif patch.operation == "MERGE":
                merge(vhost, patch.value)
            elif patch.operation == "REPLACE":
                vhost.clear()
                vhost.update(copy.deepcopy(patch.value))
            else:
                continue
            record(patch)
        _patch_routes(vhost, [p for p in found if fits(p, "HTTP_ROUTE")
                              and _vhost_match(vhost, p)], record)
        if not removed:
            vhosts.append(vhost)
    for patch in found:
        if fits(patch, "VIRTUAL_HOST") and patch.operation == "ADD":
            vhosts.append(copy.deepcopy(patch.value))
            record(patch)
    rc["virtual_hosts"] = vhosts


def _patch_routes(vhost: dict, found: list[Patch], record) -> None:
    routes = vhost.get("routes", [])
    kept = []
    for route in routes:
        removed = False
        for patch in found:
            if not _route_match(route, patch):
                continue
            if patch.operation == "REMOVE":
                removed = True
                record(patch)
                break
            if patch.operation == "MERGE":
                merge(route, patch.value)
                record(patch)
        if not removed:
            kept.append(route)
    for patch in found:
        if patch.operation in ("MERGE", "REMOVE", "REPLACE"):
            continue  # REPLACE of a route is not an operation istiod has
        has_match = _route_spec(patch) is not None
        if patch.operation == "INSERT_FIRST" and has_match:
            if any(_route_match(r, patch) for r in kept):
                kept = [copy.deepcopy(patch.value)] + kept
                record(patch)
            continue
        kept, changed = _patch_list(kept, patch, has_match, lambda r, p=patch: _route_match(r, p))
        if changed:
            record(patch)
    vhost["routes"] = kept


# --------------------------------------------------------------------------- clusters


def _cluster_match(cluster: dict, patch: Patch) -> bool:
    match = patch.match.cluster if patch.match is not None else None
    if match is None:
        return True
    name = cluster.get("name", "")
    if match.name:
        return match.name == name
    parts = name.split("|")
    direction, port, subset, host = (parts + ["", "", "", ""])[:4] if len(parts) == 4 else \
        ("", "", "", "")
    if match.subset and match.subset != subset:
        return False
    if match.service and match.service != host:
        return False
    return not match.port_number or str(match.port_number) == port and bool(direction)


def _patch_clusters(clusters: dict[str, dict], found: list[Patch], is_gateway: bool,
                    record) -> dict:
    out = {}
    for name, cluster in clusters.items():
        context = "GATEWAY" if is_gateway else \
            "SIDECAR_INBOUND" if name.startswith("inbound|") else "SIDECAR_OUTBOUND"
        fits = [p for p in found if p.apply_to == "CLUSTER" and _context_fits(p, context)
                and _cluster_match(cluster, p)]
        if any(p.operation == "REMOVE" for p in fits):
            for p in fits:
                if p.operation == "REMOVE":
                    record(p, name)
            continue
        for patch in fits:
            if patch.operation == "MERGE":
                merge(cluster, patch.value)
                record(patch, name)
        out[name] = cluster
    context = "GATEWAY" if is_gateway else "SIDECAR_OUTBOUND"
    for patch in found:
        if patch.apply_to == "CLUSTER" and patch.operation == "ADD" and \
                _context_fits(patch, context):
            value = copy.deepcopy(patch.value)
            out[value.get("name", "")] = value
            record(patch, value.get("name", ""))
    return out


# --------------------------------------------------------------------------- the whole


def gateway_port_map(mesh: MeshView, proxy: ProxyView) -> dict[int, set[int]]:
    """targetPort -> the ports of the gateway's Services that target it."""
    out: dict[int, set[int]] = {}
    for service in mesh.services:
        if service.selects(proxy.namespace, proxy.labels):
            for port in service.ports:
                out.setdefault(port.target_port, set()).add(port.port)
    return out


def _unshared(resources: dict[str, dict]) -> dict[str, dict]:
    """A copy in which no two places share an object (the translation may put one
    connection manager in several filter chains; a patch must change each once)."""
    return json.loads(json.dumps(resources))


def _apply(mesh: MeshView, proxy: ProxyView, resources: dict[str, dict[str, dict]],
           found_trace: Trace) -> dict[str, dict[str, dict]]:
    found = patches(mesh, proxy)
    if not found:
        return resources
    out = dict(resources)
    port_map = gateway_port_map(mesh, proxy) if proxy.is_gateway else {}

    def recorder(type_url: str):
        def record(patch: Patch, name: str) -> None:
            found_trace.mark(patch, type_url, name)
        return record

    if LISTENER in resources:
        listeners = _unshared(resources[LISTENER])
        contexts = {name: "GATEWAY" if proxy.is_gateway else
                    "SIDECAR_INBOUND" if lis.get("traffic_direction") == "INBOUND" else
                    "SIDECAR_OUTBOUND" for name, lis in listeners.items()}
        passes = ("GATEWAY",) if proxy.is_gateway else ("SIDECAR_OUTBOUND", "SIDECAR_INBOUND")
        out[LISTENER] = _patch_listeners(listeners, found, contexts, passes, port_map,
                                         recorder(LISTENER))
    if ROUTE in resources:
        routes = _unshared(resources[ROUTE])
        context = "GATEWAY" if proxy.is_gateway else "SIDECAR_OUTBOUND"
        for name, rc in routes.items():
            _patch_route_configuration(rc, found, context, port_map,
                                       lambda p, n=name: recorder(ROUTE)(p, n))
        out[ROUTE] = routes
    if CLUSTER in resources:
        out[CLUSTER] = _patch_clusters(_unshared(resources[CLUSTER]), found,
                                       proxy.is_gateway, recorder(CLUSTER))
    return out
