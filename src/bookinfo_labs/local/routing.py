"""VirtualService and DestinationRule semantics, as pure functions over a request.

What Envoy does with the route configuration istiod generates (docs/facts.md#routing):
the first HTTP rule whose match succeeds wins; entries inside one match block are
AND'ed, match blocks are OR'ed; weights pick a destination per request; a subset is a label
selector found through DestinationRules.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qsl, urlsplit

from .registry import Service, fqdn
from .config import ConfigStore, Entry

MESH_GATEWAY = "mesh"


@dataclass(frozen=True)
class RequestView:
    """The parts of a request route matching looks at."""

    method: str
    path: str  # with the query string, as sent
    headers: Mapping[str, str]  # lower-case names
    authority: str
    port: int
    scheme: str = "http"
    source_labels: Mapping[str, str] = field(default_factory=dict)
    source_namespace: str = "default"

    @property
    def path_only(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.path).query, keep_blank_values=True)


@dataclass(frozen=True)
class ClusterRef:
    """An Envoy cluster: ``outbound|<port>|<subset>|<fqdn>``."""

    port: int
    subset: str
    host: str

    def __str__(self) -> str:
        return f"outbound|{self.port}|{self.subset}|{self.host}"


# -- VirtualService selection ------------------------------------------------------------

def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def _vs_gateways(entry: Entry) -> list[str]:
    gateways = entry.spec.gateways or [MESH_GATEWAY]
    return [g if g == MESH_GATEWAY or "/" in g else f"{entry.key.namespace}/{g}" for g in gateways]


def _qualify_gateway(gateway: str, namespace: str) -> str:
    return gateway if gateway == MESH_GATEWAY or "/" in gateway else f"{namespace}/{gateway}"


def virtual_service_for(store: ConfigStore, host: str, gateway: str = MESH_GATEWAY) -> Entry | None:
    """The VirtualService that owns ``host`` for proxies of ``gateway``.

    Sidecars do not merge VirtualServices for one host: the oldest one wins (Istio's
    conflict rule), which ``of_kind``'s creation order gives.
    """
    exact = None
    wildcard = None
    for entry in store.of_kind("VirtualService"):
        if gateway not in _vs_gateways(entry):
            continue
        for pattern in entry.spec.hosts:
            expanded = fqdn(pattern, entry.key.namespace)
            if expanded == host and exact is None:
                exact = entry
            elif expanded != host and _host_matches(expanded, host) and wildcard is None:
                wildcard = entry
    return exact or wildcard


# -- HTTP match -----------------------------------------------------------------------

def string_match(match, value: str | None, *, ignore_case: bool = False) -> bool:
    """Istio StringMatch; an empty match ``{}`` means "present"."""
    if value is None:
        return False
    exact, prefix, regex = match.exact, match.prefix, match.regex
    if exact is None and prefix is None and regex is None:
        return True
    if ignore_case and regex is None:
        value = value.lower()
        exact = exact.lower() if exact is not None else None
        prefix = prefix.lower() if prefix is not None else None
    if exact is not None:
        return value == exact
    if prefix is not None:
        return value.startswith(prefix)
    return re.fullmatch(regex, value) is not None


def _is_presence(match) -> bool:
    return match.exact is None and match.prefix is None and match.regex is None


def match_request(match, request: RequestView, gateway: str, namespace: str) -> bool:
    """One HTTPMatchRequest: every condition it sets must hold."""
    if match.gateways and gateway not in [_qualify_gateway(g, namespace) for g in match.gateways]:
        return False
    if match.source_labels and not all(
        request.source_labels.get(k) == v for k, v in match.source_labels.items()
    ):
        return False
    if match.source_namespace and match.source_namespace != request.source_namespace:
        return False
    if match.port and match.port != request.port:
        return False
    if match.uri and not string_match(match.uri, request.path_only,
                                      ignore_case=bool(match.ignore_uri_case)):
        return False
    for name, value in (("method", request.method), ("authority", request.authority),
                        ("scheme", request.scheme)):
        condition = getattr(match, name)
        if condition and not string_match(condition, value):
            return False
    for name, condition in (match.headers or {}).items():
        if name.lower() in {"uri", "scheme", "method", "authority"}:
            continue  # Istio ignores these keys inside headers; the dedicated fields apply
        if not string_match(condition, request.headers.get(name.lower())):
            return False
    for name, condition in (match.without_headers or {}).items():
        value = request.headers.get(name.lower())
        if value is None and not _is_presence(condition):
            value = ""  # a missing header counts as empty unless it is a presence match
        if string_match(condition, value):
            return False
    if match.query_params:
        query = dict(request.query)
        for name, condition in match.query_params.items():
            if not string_match(condition, query.get(name)):
                return False
    return True


def select_route(vs: Entry, request: RequestView, gateway: str = MESH_GATEWAY):
    """The first HTTP rule of ``vs`` whose match succeeds, or None (Envoy: 404, NR)."""
    for rule in vs.spec.http or []:
        if not rule.match:
            return rule
        if any(match_request(m, request, gateway, vs.key.namespace) for m in rule.match):
            return rule
    return None


def pick_destination(route_destinations, rng: random.Random = random):  # type: ignore[assignment]
    """Envoy weighted_clusters: drop weight 0, pick with probability weight/sum per request."""
    if len(route_destinations) == 1:
        return route_destinations[0]
    weighted = [(d, d.weight or 0) for d in route_destinations if (d.weight or 0) > 0]
    if not weighted:
        return route_destinations[0]
    point = rng.randrange(sum(w for _, w in weighted))
    for destination, weight in weighted:
        if point < weight:
            return destination
        point -= weight
    raise AssertionError("unreachable: the point lies inside the total weight")


# -- DestinationRule ------------------------------------------------------------------

def destination_rules_for(store: ConfigStore, host: str) -> list[Entry]:
    """DestinationRules whose host is ``host`` (oldest first: the first defines a subset)."""
    return [e for e in store.of_kind("DestinationRule")
            if _host_matches(fqdn(e.spec.host, e.key.namespace), host)]


def subset_labels(store: ConfigStore, host: str, subset: str) -> dict[str, str] | None:
    """The label selector of ``subset`` for ``host``, or None when no rule defines it."""
    for entry in destination_rules_for(store, host):
        for candidate in entry.spec.subsets or []:
            if candidate.name == subset:
                return dict(candidate.labels or {})
    return None


def destination_port(service: Service | None, destination, request_port: int) -> int | None:
    """The Service port a route destination targets (explicit, the only one, or the request's).

    For a host that is not a Service (``service`` None): the explicit port or the request's.
    """
    if destination.port and destination.port.number:
        return destination.port.number
    if service is None:
        return request_port
    if len(service.ports) == 1:
        return service.ports[0].port
    return request_port if service.port(request_port) else None
