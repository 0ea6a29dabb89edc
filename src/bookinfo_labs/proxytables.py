"""A sidecar's config dump as ``istioctl proxy-config <section>`` prints it: one table per
section, same columns (istioctl's ``pkg/writer/envoy/configdump``), read from Envoy's own
``config_dump`` (``Mesh.proxy_config``)."""

from __future__ import annotations

from typing import Iterable

from .proxyconfig import walk

#: where istiod records the Istio config an Envoy resource was made from
_ISTIO_META = ("metadata", "filter_metadata", "istio", "config")


def _config_name(resource: dict) -> str:
    """``reviews.default`` from ``/apis/networking.istio.io/v1/namespaces/default/
    virtual-service/reviews``; ``-`` when istiod recorded none."""
    node = resource
    for key in _ISTIO_META:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str):
        return "-"
    parts = node.strip("/").split("/")
    return f"{parts[-1]}.{parts[-3]}" if len(parts) >= 3 else node


def table(rows: Iterable[list[str]], header: list[str]) -> str:
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w + 2) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def clusters(dump: dict) -> str:
    rows = []
    for node in walk(dump):
        cluster = node.get("cluster")
        if not isinstance(cluster, dict) or "name" not in cluster:
            continue
        name = cluster["name"]
        kind = cluster.get("type") or ("EDS" if "eds_cluster_config" in cluster else
                                       "ORIGINAL_DST" if "cluster_type" in cluster else "-")
        parts = name.split("|")
        if len(parts) == 4:
            direction, port, subset, fqdn = parts
            rows.append([fqdn, port, subset or "-", direction, kind, _config_name(cluster)])
        else:
            rows.append([name, "-", "-", "-", kind, "-"])
    return table(rows, ["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE",
                        "DESTINATION RULE"])


def _domains(domains: list[str]) -> str:
    """istioctl's DOMAINS cell: the names without a port, a name dropped where its shorter
    form (without ``.svc.cluster.local`` or ``.svc``) is there too, two shown."""
    if len(domains) <= 1:
        return "".join(domains)
    names = [d for d in domains if ":" not in d]
    present = set(names)
    names = [d for d in names
             if not any(d != short and short in present
                        for short in (d.removesuffix(".svc.cluster.local"), d.removesuffix(".svc")))]
    if len(names) > 2:
        return f"{', '.join(names[:2])} + {len(names) - 2} more..."
    return ", ".join(names)


def _match(route: dict) -> str:
    match = route.get("match") or {}
    if "prefix" in match:
        return match["prefix"] + "*"
    if "path" in match:
        return match["path"]
    if "safe_regex" in match:
        return match["safe_regex"].get("regex", "")
    return "-"


def routes(dump: dict) -> str:
    rows = []
    for node in walk(dump):
        config = node.get("route_config")
        if not isinstance(config, dict):
            continue
        for vhost in config.get("virtual_hosts") or []:
            for route in vhost.get("routes") or [{}]:
                rows.append([config.get("name", "-"), vhost.get("name", "-"),
                             _domains(vhost.get("domains") or []), _match(route),
                             _config_name(route)])
    return table(rows, ["NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE"])


def _chain_match(chain: dict) -> str:
    match = chain.get("filter_chain_match") or {}
    words = []
    if match.get("server_names"):
        words.append("SNI: " + ",".join(match["server_names"]))
    if match.get("transport_protocol"):
        words.append(f"Trans: {match['transport_protocol']}")
    if match.get("application_protocols"):
        words.append("App: " + ",".join(match["application_protocols"]))
    if match.get("destination_port"):
        words.append(f"Port: {match['destination_port']}")
    return "; ".join(words) or "ALL"


def _destination(chain: dict) -> str:
    for f in chain.get("filters") or []:
        config = f.get("typed_config") or {}
        if "rds" in config:
            return f"Route: {config['rds'].get('route_config_name', '-')}"
        if "route_config" in config:
            return "Inline Route: " + (config["route_config"].get("name") or "-")
        if "cluster" in config:
            return f"Cluster: {config['cluster']}"
        if "weighted_clusters" in config:
            return "Cluster: " + ",".join(c.get("name", "") for c in
                                          config["weighted_clusters"].get("clusters") or [])
    return "-"


def listeners(dump: dict) -> str:
    rows = []
    for node in walk(dump):
        listener = (node.get("active_state") or {}).get("listener")
        if not isinstance(listener, dict):
            continue
        socket = (listener.get("address") or {}).get("socket_address") or {}
        for chain in listener.get("filter_chains") or []:
            rows.append([socket.get("address", "-"), str(socket.get("port_value", "-")),
                         _chain_match(chain), _destination(chain)])
    return table(rows, ["ADDRESSES", "PORT", "MATCH", "DESTINATION"])


def endpoints(dump: dict) -> str:
    rows = []
    for node in walk(dump):
        config = node.get("endpoint_config")
        if not isinstance(config, dict):
            continue
        for locality in config.get("endpoints") or []:
            for lb in locality.get("lb_endpoints") or []:
                socket = ((lb.get("endpoint") or {}).get("address") or {}).get(
                    "socket_address") or {}
                address = f"{socket.get('address', '-')}:{socket.get('port_value', '-')}"
                rows.append([address, lb.get("health_status", "HEALTHY"), "OK",
                             config.get("cluster_name", "-")])
    return table(rows, ["ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER"])


SECTIONS = {"clusters": clusters, "routes": routes, "listeners": listeners,
            "endpoints": endpoints}
