"""What ``istioctl analyze`` would report about config just applied to the local mesh.

Pure functions of the manifests, the registry and the config store; each finding names
the file, the object and the field, says what happens to traffic, and quotes the
analyzer's own message (``IST0101 Referenced gateway not found: "..."``) so a check can
accept the local wording and a cluster's alike (docs/facts.md#istioctl-analyze).
"""

from __future__ import annotations

from ..manifests import Manifest
from ..mesh import ResourceKey
from .config import ConfigStore
from .pilot import MeshView, ProxyView, envoyfilter, translate
from .pilot.clusters import subset_labels
from .pilot.routes import MESH_GATEWAY, gateway_key
from .registry import ServiceRegistry, fqdn


def analyze(manifests: list[Manifest], registry: ServiceRegistry, store: ConfigStore,
            view: MeshView, namespace: str, proxies: tuple[ProxyView, ...] = ()) -> list[str]:
    found: list[str] = []
    for m in manifests:
        where = f"{m.source}: {m.describe()}"
        ns = m.namespace or namespace
        if m.kind == "VirtualService":
            found += _destinations(m, where, ns, registry, view)
            found += _gateways_of(m, where, ns, store)
            found += _mesh_host_conflicts(m, ns, store)
        elif m.kind == "Gateway":
            found += _selector(m, where, registry)
            found += _credentials(m, where, registry, store)
        elif m.kind == "EnvoyFilter":
            found += _envoy_filter_matches(m, where, ns, view, proxies)
        elif m.kind == "ServiceEntry" and not m.model.spec.ports:
            hosts = ", ".join(m.model.spec.hosts)
            found.append(f"{where}: spec.ports: no ports, so no sidecar or gateway gets a "
                         f"listener, route or cluster for {hosts}; add the ports the host "
                         "serves (number, name, protocol)")
    return found


def _is_service(registry: ServiceRegistry, host: str, namespace: str) -> bool:
    return registry.service_by_fqdn(fqdn(host, namespace)) is not None


def _destinations(m: Manifest, where: str, namespace: str, registry: ServiceRegistry,
                  view: MeshView) -> list[str]:
    """IST0101: a host that is not a Service, a subset no DestinationRule defines (both
    get 503 NC), a mirror host that is not a Service."""
    found = []
    for i, rule in enumerate(m.model.spec.http or []):
        for j, dest in enumerate(rule.route or []):
            host = dest.destination.host
            if not _is_service(registry, host, namespace):
                found.append(
                    f"{where}: spec.http[{i}].route[{j}].destination.host: host {host!r} "
                    "is not a Service in the mesh (istioctl analyze: IST0101 Referenced "
                    f"host not found: \"{host}\"); requests routed there get 503 (NC, "
                    "cluster_not_found)")
            subset = dest.destination.subset
            if subset and subset_labels(view, fqdn(host, namespace), subset) is None:
                found.append(
                    f"{where}: spec.http[{i}].route[{j}].destination: "
                    f"subset {subset!r} of host {host!r} is not defined "
                    "by any DestinationRule; requests routed there get 503 (NC, "
                    "cluster_not_found) until one is applied")
        mirrors = [(f"spec.http[{i}].mirror.host", rule.mirror.host)] if rule.mirror else []
        mirrors += [(f"spec.http[{i}].mirrors[{j}].destination.host", p.destination.host)
                    for j, p in enumerate(rule.mirrors)]
        found += [f"{where}: {path}: host {host!r} is not a Service in the mesh "
                  f"(istioctl analyze: IST0101 Referenced mirror host not found: "
                  f"\"{host}\"); nothing is mirrored there"
                  for path, host in mirrors if not _is_service(registry, host, namespace)]
    return found


def _gateways_of(m: Manifest, where: str, namespace: str, store: ConfigStore) -> list[str]:
    """IST0101: a VirtualService bound to a Gateway that does not exist (no traffic
    reaches its routes)."""
    found = []
    for i, name in enumerate(m.model.spec.gateways or []):
        key = gateway_key(name, namespace)
        if key == MESH_GATEWAY:
            continue
        gw_namespace, _, gw_name = key.partition("/")
        if store.get(ResourceKey("Gateway", gw_namespace, gw_name)) is None:
            found.append(
                f"{where}: spec.gateways[{i}]: there is no Gateway {key} (istioctl analyze: "
                f"IST0101 Referenced gateway not found: \"{name}\"); no gateway serves these "
                "routes until it is applied")
    return found


def _mesh_host_conflicts(m: Manifest, namespace: str, store: ConfigStore) -> list[str]:
    """IST0109: several VirtualServices bound to the mesh name one host; sidecars take the
    oldest and ignore the others (they are merged on gateways only)."""
    mine = m.model.spec
    if MESH_GATEWAY not in {gateway_key(g, namespace) for g in mine.gateways or [MESH_GATEWAY]}:
        return []
    found = []
    for host in sorted({fqdn(h, namespace) for h in mine.hosts or []}):
        names = set()
        for entry in store.of_kind("VirtualService"):
            spec = entry.spec
            bound = {gateway_key(g, entry.key.namespace) for g in spec.gateways or [MESH_GATEWAY]}
            if MESH_GATEWAY in bound and host in {fqdn(h, entry.key.namespace)
                                                  for h in spec.hosts or []}:
                names.add(f"{entry.key.namespace}/{entry.key.name}")
        if len(names) > 1:
            found.append(
                f"{m.source}: {m.describe()}: IST0109 The VirtualServices "
                f"{','.join(sorted(names))} associated with mesh gateway define the same host "
                f"*/{host} which can lead to undefined behavior. This can be fixed by merging "
                "the conflicting VirtualServices into a single resource. (The sidecars use the "
                "oldest one only.)")
    return found


def _selector(m: Manifest, where: str, registry: ServiceRegistry) -> list[str]:
    """IST0101: a Gateway whose selector matches no pod opens no port anywhere."""
    selector = dict(m.model.spec.selector or {})
    if any(pod.matches(selector) for pod in registry.pods):
        return []
    text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return [f"{where}: spec.selector: no pod has the labels {text} (istioctl analyze: IST0101 "
            f"Referenced selector not found: \"{text}\"); the Gateway opens no port"]


def _credentials(m: Manifest, where: str, registry: ServiceRegistry,
                 store: ConfigStore) -> list[str]:
    """IST0101 (analyzers/gateway/secret.go): a credentialName with no Secret in the
    namespace of the gateway pods the Gateway selects: no TLS on that server."""
    selector = dict(m.model.spec.selector or {})
    pods = [pod for pod in registry.pods if pod.gateway and pod.matches(selector)]
    if not pods:
        return []  # reported by _selector
    namespace = pods[0].namespace
    found = []
    for i, server in enumerate(m.model.spec.servers):
        name = server.tls.credential_name if server.tls is not None else None
        if name and store.get(ResourceKey("Secret", namespace, name)) is None:
            found.append(
                f"{where}: spec.servers[{i}].tls.credentialName: no Secret {name!r} in "
                f"namespace {namespace}, where the gateway runs (istioctl analyze: IST0101 "
                f"Referenced credentialName not found: \"{name}\"); the gateway has no "
                f"certificate for {', '.join(server.hosts)}: TLS handshakes fail until it is "
                "created")
    return found


def _envoy_filter_matches(m: Manifest, where: str, namespace: str, view: MeshView,
                          proxies: tuple[ProxyView, ...]) -> list[str]:
    """Not istioctl's: istiod applies no patch whose match finds nothing, silently, and
    istioctl analyze has no check for it; the local mesh knows every proxy's config, so it
    says which patches changed nothing (docs/facts.md#envoyfilter)."""
    name = f"{namespace}/{m.name}"
    selected = [p for p in proxies
                if any(f"{c.namespace}/{c.name}" == name for c in envoyfilter.selected(view, p))]
    ours = "(a warning of the local mesh, not of istioctl analyze)"
    if not selected:
        return [f"{where}: spec.workloadSelector: selects no running proxy, so it changes "
                f"nothing {ours}"]
    used = set().union(*(envoyfilter.trace(view, p, translate(view, p)).used for p in selected))
    pods = ", ".join(sorted(p.pod for p in selected))
    return [f"{where}: spec.configPatches[{i}]: matches nothing in the config of the proxies "
            f"it selects ({pods}), so it changes nothing {ours}"
            for i in range(len(m.model.spec.config_patches)) if (name, i) not in used]
