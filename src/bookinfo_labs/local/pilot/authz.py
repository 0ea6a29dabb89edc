"""AuthorizationPolicy -> Envoy's RBAC filters, on inbound listeners and gateways
(Istio: pilot/pkg/security/authz)."""

from __future__ import annotations

from .model import MeshView, ProxyView


def http_filters(mesh: MeshView, proxy: ProxyView) -> list[dict]:
    """The ``envoy.filters.http.rbac`` filters of the policies selecting ``proxy``, in
    Istio's order (DENY, then ALLOW); none yet."""
    return []
