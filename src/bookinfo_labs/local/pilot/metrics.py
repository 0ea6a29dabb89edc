"""Istio's standard metrics without the ``istio.stats`` filter (which upstream Envoy lacks):
the loggers whose records the local mesh's per-pod agent (``local/metrics.py``) turns into
``istio_requests_total`` and its siblings.

Where istiod puts ``istio.stats`` (pilot/pkg/model/telemetry.go ``telemetryFilters``: when
``defaultProviders.metrics`` names the ``prometheus`` provider, on every HTTP connection
manager and every tcp_proxy), this puts a
file access logger writing one JSON record per request or connection to the proxy's
``metrics_log_path``. A record carries what the labels are derived from: the reporter
(from where the filter sits), the response, duration and sizes, the upstream cluster and
host, the downstream addresses and the peers' URI SANs (the principals). The static labels
(workload, app, version, canonical service) and the cluster -> service mapping are the
agent's, from the registry, as istio.stats reads them from node and cluster metadata.
Facts: docs/facts.md#istio-standard-metrics.
"""

from __future__ import annotations

from typing import Any, Mapping

from .accesslog import FILE_LOG
from .model import MeshView, ProxyView

#: the provider name meshConfig.defaultProviders.metrics selects istio.stats by (the chart
#: installs it; a meshConfig without it has no standard metrics)
PROMETHEUS_PROVIDER = "prometheus"

#: Istio's reporter label by where the filter sits (stats.PluginConfig.reporter)
REPORTERS = {"inbound": "destination", "outbound": "source", "gateway": "source"}


def enabled(mesh_config: Mapping[str, Any]) -> bool:
    """Whether the prometheus metrics provider is on (``defaultProviders.metrics``)."""
    providers = (mesh_config.get("defaultProviders") or {}).get("metrics") or []
    return PROMETHEUS_PROVIDER in providers


def record_format(direction: str, *, http: bool) -> dict[str, Any]:
    """The JSON record one request (HTTP) or one connection (TCP) leaves. Envoy's
    substitution operators; ``%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`` is the peer's own
    socket address (the plain one may come from x-forwarded-for)."""
    record: dict[str, Any] = {
        "reporter": REPORTERS[direction],
        "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
        "upstream_host": "%UPSTREAM_HOST%",
        "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
        "downstream_remote_address": "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%",
        "downstream_peer_uri_san": "%DOWNSTREAM_PEER_URI_SAN%",
        "downstream_local_uri_san": "%DOWNSTREAM_LOCAL_URI_SAN%",
        "upstream_peer_uri_san": "%UPSTREAM_PEER_URI_SAN%",
        "response_flags": "%RESPONSE_FLAGS%",
        "bytes_received": "%BYTES_RECEIVED%",
        "bytes_sent": "%BYTES_SENT%",
        "duration": "%DURATION%",
    }
    if http:
        record.update({
            "protocol": "http",
            "authority": "%REQ(:AUTHORITY)%",
            "content_type": "%REQ(CONTENT-TYPE)%",
            "response_code": "%RESPONSE_CODE%",
            "grpc_status": "%GRPC_STATUS_NUMBER%",
        })
    else:
        record["protocol"] = "tcp"
    return record


def loggers(mesh: MeshView, proxy: ProxyView, direction: str, *, http: bool) -> list[dict]:
    """The access logger that feeds the standard metrics: present when the prometheus
    provider is on and the proxy has a metrics log (the local mesh gives each one)."""
    if not enabled(mesh.mesh_config) or not proxy.metrics_log_path:
        return []
    return [{"name": "envoy.access_loggers.file", "typed_config": {
        "@type": FILE_LOG,
        "path": proxy.metrics_log_path,
        "log_format": {"json_format": record_format(direction, http=http)},
    }}]
