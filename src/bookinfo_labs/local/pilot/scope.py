"""What a sidecar sees of the mesh: the Sidecar resource's egress hosts and outbound policy.

Without a Sidecar every Service and ServiceEntry host is in every sidecar's config. A
Sidecar in the proxy's namespace (the one whose workloadSelector matches the pod, else the
one without a selector; else one without a selector in the root namespace, istio-system)
narrows that to the hosts its egress listeners name, ``<namespace>/<dns name>`` (``.`` the
Sidecar's own namespace, ``*`` any; a dns name ``*`` or ``*.suffix``), and may override
the mesh's outbound traffic policy. Gateways are not scoped. Sources:
pilot/pkg/model/sidecar.go (docs/facts.md#sidecar-scope).
"""

from __future__ import annotations

from .model import ConfigView, MeshView, ProxyView, ServiceView
from .names import ROOT_NAMESPACE



def applicable_telemetries(mesh: MeshView, proxy: ProxyView) -> list[ConfigView]:
    """The Telemetry resources that apply to ``proxy``, broadest first, a later one
    overriding an earlier (applicableTelemetries): the root namespace's namespace-wide
    one, the proxy's namespace's, then those of its namespace whose selector matches its
    labels. A namespace-wide Telemetry is the oldest one without a selector."""
    telemetries = mesh.of_kind("Telemetry")

    def selector(telemetry: ConfigView) -> dict[str, str]:
        wanted = telemetry.spec.selector
        return dict(wanted.match_labels or {}) if wanted is not None else {}

    def namespace_wide(namespace: str) -> ConfigView | None:
        return next((t for t in telemetries if t.namespace == namespace and not selector(t)),
                    None)

    chosen = [namespace_wide(ROOT_NAMESPACE)]
    if proxy.namespace != ROOT_NAMESPACE:
        chosen.append(namespace_wide(proxy.namespace))
    chosen += [t for t in telemetries if t.namespace == proxy.namespace and selector(t)
               and all(proxy.labels.get(k) == v for k, v in selector(t).items())]
    return [t for t in chosen if t is not None]


def sidecar_for(mesh: MeshView, proxy: ProxyView) -> ConfigView | None:
    if proxy.is_gateway:
        return None
    candidates = mesh.of_kind("Sidecar")
    for sidecar in candidates:
        selector = sidecar.spec.workload_selector
        if sidecar.namespace == proxy.namespace and selector is not None and all(
                proxy.labels.get(k) == v for k, v in (selector.labels or {}).items()):
            return sidecar
    for namespace in (proxy.namespace, ROOT_NAMESPACE):
        for sidecar in candidates:
            if sidecar.namespace == namespace and sidecar.spec.workload_selector is None:
                return sidecar
    return None


def visible_services(mesh: MeshView, proxy: ProxyView) -> list[ServiceView]:
    """The Services and ServiceEntry hosts in the proxy's config."""
    sidecar = sidecar_for(mesh, proxy)
    if sidecar is None or not sidecar.spec.egress:
        return list(mesh.all_services)
    hosts = [h for listener in sidecar.spec.egress for h in listener.hosts]
    return [s for s in mesh.all_services if any(_selects(h, s, sidecar.namespace) for h in hosts)]


def _selects(entry: str, service: ServiceView, own_namespace: str) -> bool:
    namespace, _, name = entry.partition("/")
    if namespace == ".":
        namespace = own_namespace
    if namespace not in ("*", service.namespace):
        return False
    host = service.fqdn
    if name == "*":
        return True
    if name.startswith("*."):
        return host.endswith(name[1:])
    return host == name.lower()


def outbound_policy(mesh: MeshView, proxy: ProxyView) -> str:
    """ALLOW_ANY or REGISTRY_ONLY: the Sidecar's, else the mesh's."""
    sidecar = sidecar_for(mesh, proxy)
    policy = sidecar.spec.outbound_traffic_policy if sidecar is not None else None
    return (policy.mode if policy is not None and policy.mode else None) or mesh.outbound_policy
