"""Tracing: meshConfig ``enableTracing`` / ``defaultConfig.tracing`` and the Telemetry API's
``tracing`` (pilot/pkg/networking/core/tracing.go)."""

from __future__ import annotations

from .model import MeshView, ProxyView


def connection_manager_tracing(mesh: MeshView, proxy: ProxyView, direction: str) -> dict | None:
    """The connection manager's ``tracing`` field, or None for no tracer (none yet)."""
    del mesh, proxy, direction
    return None
