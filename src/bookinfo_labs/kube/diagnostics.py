"""What a failed scenario's report gets on kube, and the proxy config it is read from.

The client sidecar's configuration is read with ``pilot-agent request GET
config_dump?resource=...`` in its ``istio-proxy`` container (no istioctl needed) and
summarised like ``istioctl proxy-config routes|clusters``. Istio tags every route and
cluster it generated from a VirtualService or DestinationRule with
``metadata.filter_metadata.istio.config`` = ``/apis/<group>/<version>/namespaces/<ns>/
virtual-service/<name>`` (or ``destination-rule``): that is how propagation is checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

import yaml

from ..mesh import section  # noqa: F401 - diagnostics.section, as the backends use it
from ..proxyconfig import walk as _walk

ROUTES_DUMP = ["pilot-agent", "request", "GET", "config_dump?resource=dynamic_route_configs"]
CLUSTERS_DUMP = ["pilot-agent", "request", "GET", "config_dump?resource=dynamic_active_clusters"]

_CONFIG_KIND = {"VirtualService": "virtual-service", "DestinationRule": "destination-rule"}
#: the kinds whose objects a sidecar's routes and clusters name
CONFIG_KINDS = frozenset(_CONFIG_KIND)
#: what changes between two dumps of the same config: push times and versions
_VOLATILE = frozenset({"last_updated", "version_info"})


def _load(dump: str | bytes | dict) -> dict:
    if isinstance(dump, dict):
        return dump
    if isinstance(dump, bytes):
        dump = dump.decode("utf-8", errors="replace")
    return json.loads(dump) if dump.strip() else {}


@dataclass(frozen=True)
class ProxyConfig:
    """A proxy's routes and clusters as the propagation gate compares them."""

    refs: frozenset[str]  # the Istio objects they were generated from
    digest: str  # of the config itself, without push times and versions

    @classmethod
    def of(cls, *dumps: str | bytes | dict) -> "ProxyConfig":
        loaded = [_load(d) for d in dumps]
        text = json.dumps([_stable(d) for d in loaded], sort_keys=True)
        return cls(frozenset(r for d in loaded for r in config_refs(d)),
                   hashlib.sha256(text.encode()).hexdigest())


def _stable(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _stable(v) for k, v in node.items() if k not in _VOLATILE}
    if isinstance(node, list):
        return [_stable(v) for v in node]
    return node


def config_refs(dump: str | bytes | dict) -> set[str]:
    """Every ``istio.config`` reference in a config dump (routes or clusters)."""
    refs = set()
    for node in _walk(_load(dump)):
        istio = ((node.get("filter_metadata") or {}).get("istio") or {}) if "filter_metadata" in node else {}
        ref = istio.get("config") if isinstance(istio, dict) else None
        if isinstance(ref, str):
            refs.add(ref)
    return refs


def config_ref_suffix(kind: str, namespace: str, name: str) -> str | None:
    """The tail of the reference Istio writes for that object (version-independent)."""
    slug = _CONFIG_KIND.get(kind)
    return f"/namespaces/{namespace}/{slug}/{name}" if slug else None


def has_config(refs: Iterable[str], kind: str, namespace: str, name: str) -> bool:
    suffix = config_ref_suffix(kind, namespace, name)
    return suffix is not None and any(r.endswith(suffix) for r in refs)


def route_lines(dump: str | bytes | dict) -> list[str]:
    """``istioctl proxy-config routes``-like lines: route, vhost, domains, match, target, source."""
    lines = []
    for node in _walk(_load(dump)):
        config = node.get("route_config")
        if not isinstance(config, dict):
            continue
        for vhost in config.get("virtual_hosts") or []:
            domains = vhost.get("domains") or []
            shown = ", ".join(domains[:2]) + (f" +{len(domains) - 2} more" if len(domains) > 2 else "")
            for route in vhost.get("routes") or []:
                lines.append("  ".join([
                    config.get("name", "?"), vhost.get("name", "?"), shown,
                    _match_text(route.get("match") or {}), _target_text(route),
                    _source_text(route),
                ]))
    return lines


def _match_text(match: dict) -> str:
    for key in ("path", "prefix", "safe_regex", "path_separated_prefix"):
        if key in match:
            value = match[key]
            value = value.get("regex") if isinstance(value, dict) else value
            text = {"prefix": f"{value}*", "path": value}.get(key, f"{key} {value}")
            break
    else:
        text = "/*"
    for header in match.get("headers") or []:
        matcher = header.get("string_match") or {}
        value = next(iter(matcher.values()), "") if matcher else header.get("exact_match", "")
        text += f" [{header.get('name')}={value}]"
    return text


def _target_text(route: dict) -> str:
    if "route" in route:
        action = route["route"]
        if "cluster" in action:
            return action["cluster"]
        weighted = (action.get("weighted_clusters") or {}).get("clusters") or []
        return ", ".join(f"{c.get('name')}:{c.get('weight')}" for c in weighted) or "?"
    if "direct_response" in route:
        return f"direct {route['direct_response'].get('status')}"
    if "redirect" in route:
        return "redirect"
    return "?"


def _source_text(route: dict) -> str:
    istio = ((route.get("metadata") or {}).get("filter_metadata") or {}).get("istio") or {}
    ref = istio.get("config", "")
    parts = ref.strip("/").split("/")
    return f"{parts[-2]} {parts[-1]}.{parts[-3]}" if len(parts) >= 4 else "-"


def cluster_lines(dump: str | bytes | dict) -> list[str]:
    """``istioctl proxy-config clusters``-like lines: name, type, source config."""
    lines = []
    for node in _walk(_load(dump)):
        cluster = node.get("cluster")
        if not isinstance(cluster, dict) or "name" not in cluster:
            continue
        kind = cluster.get("type") or ("EDS" if "eds_cluster_config" in cluster else "-")
        extras = []
        if cluster.get("circuit_breakers"):
            extras.append("circuit_breakers")
        if cluster.get("outlier_detection"):
            extras.append("outlier_detection")
        lines.append("  ".join([cluster["name"], str(kind), _source_text(cluster),
                                ",".join(extras) or "-"]))
    return sorted(lines)


def yaml_of(objects: Iterable[dict]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


def event_lines(events: Iterable[dict], limit: int = 25) -> list[str]:
    """``kubectl get events``-like lines, most recent last."""
    def when(e: dict) -> str:
        return (e.get("lastTimestamp") or e.get("eventTime")
                or (e.get("metadata") or {}).get("creationTimestamp") or "")

    out = []
    for e in sorted(events, key=when)[-limit:]:
        obj = e.get("involvedObject") or {}
        out.append(f"{when(e)}  {e.get('type', '')}  {e.get('reason', '')}  "
                   f"{obj.get('kind', '')}/{obj.get('name', '')}  {(e.get('message') or '').strip()}")
    return out
