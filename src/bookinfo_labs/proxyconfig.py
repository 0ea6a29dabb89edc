"""A sidecar's own config, read as a learner reads ``istioctl proxy-config``.

Both meshes return Envoy's ``config_dump`` (the local Envoy's admin, or ``pilot-agent
request GET config_dump`` in a pod's ``istio-proxy``); these functions pull out what the
labs teach: the weighted clusters a route sends a host to, and the circuit breakers of a
cluster. Names are Istio's: virtual host ``<fqdn>:<port>``, cluster
``outbound|<port>|<subset>|<fqdn>``.
"""

from __future__ import annotations

from typing import Any, Iterator

#: Mesh.proxy_config sections and the config_dump resource each one reads
SECTIONS = {"routes": "dynamic_route_configs", "clusters": "dynamic_active_clusters",
            "listeners": "dynamic_listeners", "secrets": "dynamic_active_secrets",
            "endpoints": None}


def walk(node: Any) -> Iterator[dict]:
    """Every mapping inside a config dump, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def _short(fqdn: str) -> str:
    """A Service's name (``reviews.default.svc.cluster.local`` -> ``reviews``); any other
    host (a ServiceEntry's) as it is."""
    host = fqdn.rsplit(":", 1)[0] if fqdn.rsplit(":", 1)[-1].isdigit() else fqdn
    return host.split(".")[0] if host.endswith(".svc.cluster.local") else host


def route_shares(dump: dict, host: str) -> dict[str, int]:
    """Subset -> weight of the first route of ``host``'s virtual host (``{"v1": 50,
    "v3": 50}``; one cluster is ``{subset: 100}``; no subset is ``""``)."""
    for node in walk(dump):
        config = node.get("route_config")
        if not isinstance(config, dict):
            continue
        for vhost in config.get("virtual_hosts") or []:
            if _short(vhost.get("name", "")) != host:
                continue
            for route in vhost.get("routes") or []:
                action = route.get("route") or {}
                if "cluster" in action:
                    return {action["cluster"].split("|")[2]: 100}
                weighted = (action.get("weighted_clusters") or {}).get("clusters") or []
                if weighted:
                    return {c["name"].split("|")[2]: int(c.get("weight", 0)) for c in weighted}
    raise AssertionError(f"the sidecar has no route for {host}; it routes "
                         f"{sorted(_hosts(dump)) or 'nothing'}")


def _hosts(dump: dict) -> set[str]:
    return {_short(v.get("name", "")) for node in walk(dump)
            for v in ((node.get("route_config") or {}).get("virtual_hosts") or [])}


def cluster_limits(dump: dict, host: str, subset: str = "") -> dict[str, int]:
    """The circuit-breaker thresholds of ``outbound|<port>|<subset>|<host>...`` (the first
    port), Envoy's names: max_connections, max_pending_requests, max_requests, max_retries."""
    for node in walk(dump):
        cluster = node.get("cluster")
        if not isinstance(cluster, dict):
            continue
        parts = cluster.get("name", "").split("|")
        if len(parts) == 4 and parts[0] == "outbound" and parts[2] == subset \
                and _short(parts[3]) == host:
            thresholds = ((cluster.get("circuit_breakers") or {}).get("thresholds") or [{}])[0]
            return {k: int(thresholds[k]) for k in ("max_connections", "max_pending_requests",
                                                     "max_requests", "max_retries")
                    if k in thresholds}
    raise AssertionError(f"the sidecar has no cluster for {host}"
                         + (f" subset {subset}" if subset else ""))


def http_filters(dump: dict, direction: str, port: int) -> list[list[str]]:
    """The HTTP filter names of each connection manager serving ``port`` in the
    ``direction`` (``INBOUND``/``OUTBOUND``) active listeners of a listeners dump: a
    listener named ``<address>_<port>``, or a chain of a virtual listener matching that
    destination port. A listener a change replaced is left out: it drains its
    connections for a while (its ``draining_state``), serving no new ones."""
    found = []
    for node in walk(dump):
        listener = (node.get("active_state") or {}).get("listener")
        if not isinstance(listener, dict) or "filter_chains" not in listener:
            continue
        if listener.get("traffic_direction", "UNSPECIFIED") not in (direction, "UNSPECIFIED"):
            continue
        named = listener.get("name", "").rpartition("_")[2] == str(port)
        for chain in listener.get("filter_chains") or []:
            destination = (chain.get("filter_chain_match") or {}).get("destination_port")
            if not named and destination != port:
                continue
            for f in chain.get("filters") or []:
                config = f.get("typed_config") or {}
                if "http_filters" in config:
                    found.append([h.get("name", "") for h in config["http_filters"]])
    return found
