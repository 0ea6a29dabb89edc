"""Istio's standard metrics without the ``istio.stats`` filter (which upstream Envoy lacks):
the loggers whose records the local mesh turns into ``istio_requests_total`` and its
siblings."""

from __future__ import annotations

from .model import MeshView, ProxyView


def loggers(mesh: MeshView, proxy: ProxyView, direction: str, *, http: bool) -> list[dict]:
    """The access loggers that feed the standard metrics (none yet)."""
    del mesh, proxy, direction, http
    return []
