"""RequestAuthentication -> Envoy's ``jwt_authn`` filter, on inbound listeners and
gateways gateways (Istio: pilot/pkg/security/authn)."""

from __future__ import annotations

from .model import MeshView, ProxyView


def http_filters(mesh: MeshView, proxy: ProxyView) -> list[dict]:
    """The ``envoy.filters.http.jwt_authn`` filter of the RequestAuthentications selecting
    ``proxy``; none yet."""
    return []
