"""What the Telemetry API and meshConfig put on a proxy's connection managers and
tcp_proxy filters: access loggers, the loggers the standard metrics are derived from, and
the tracer.

``direction`` is where the filter sits: ``"inbound"`` (a sidecar's inbound listener, Istio's
reporter ``destination``), ``"outbound"`` (a sidecar's outbound listener, reporter
``source``) or ``"gateway"`` (a gateway's listener, reporter ``source``).
"""

from __future__ import annotations

from typing import Any

from . import accesslog, metrics, tracing
from .model import MeshView, ProxyView

DIRECTIONS = ("inbound", "outbound", "gateway")


def http_fields(mesh: MeshView, proxy: ProxyView, direction: str) -> dict[str, Any]:
    """Fields to set on an HTTP connection manager: ``access_log`` and ``tracing``."""
    out: dict[str, Any] = {}
    loggers = (accesslog.loggers(mesh, proxy, direction, http=True)
               + metrics.loggers(mesh, proxy, direction, http=True))
    if loggers:
        out["access_log"] = loggers
    trace = tracing.connection_manager_tracing(mesh, proxy, direction)
    if trace is not None:
        out["tracing"] = trace
    return out


def tcp_fields(mesh: MeshView, proxy: ProxyView, direction: str) -> dict[str, Any]:
    """Fields to set on a tcp_proxy: ``access_log``."""
    loggers = (accesslog.loggers(mesh, proxy, direction, http=False)
               + metrics.loggers(mesh, proxy, direction, http=False))
    return {"access_log": loggers} if loggers else {}


def listener_fields(mesh: MeshView, proxy: ProxyView, direction: str) -> dict[str, Any]:
    """Fields to set on a listener itself: ``access_log`` for the connections no filter
    chain took (inbound and gateway listeners, as istiod's setListenerAccessLog)."""
    loggers = accesslog.listener_loggers(mesh, proxy, direction)
    return {"access_log": loggers} if loggers else {}
