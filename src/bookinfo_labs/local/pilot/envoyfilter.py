"""EnvoyFilter: patches applied to a proxy's generated config after translation, as
istiod applies them istiod applies them (Istio: pilot/pkg/networking/core/envoyfilter)."""

from __future__ import annotations

from .model import MeshView, ProxyView


def apply(mesh: MeshView, proxy: ProxyView,
          resources: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict]]:
    """``resources`` (by type URL, then name) with the EnvoyFilters that select ``proxy``
    applied; none yet."""
    return resources
