"""The pilot-agent's part of Istio's standard metrics on the local mesh.

On a cluster each proxy's ``istio.stats`` filter keeps ``istio_requests_total`` and its
siblings, and the pilot-agent serves them at ``:15020/stats/prometheus``. Upstream Envoy
has no such filter, so each proxy writes one JSON record per request or connection to a
file (pilot/metrics.py configures the logger) and this per-pod agent reads the new records
whenever it is scraped, derives Istio's labels (the reporter, the peer workloads from their
addresses, the destination service from the upstream cluster, the principals from the
peers' URI SANs) and serves the metrics in Prometheus' text format on the pod's address.

A file rather than gRPC access-log service: Envoy's file logger needs no extra cluster or
server, survives the agent being slow, and Envoy flushes it every 250 ms (envoyproc's
``--file-flush-interval-msec``), well inside a scrape interval.
Facts: docs/facts.md#istio-standard-metrics.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from aiohttp import web

from .pilot.model import MeshView, WorkloadView
from .pilot.names import BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER
from .registry import CLUSTER_DOMAIN

log = logging.getLogger(__name__)

#: where a cluster's pilot-agent serves the merged metrics
AGENT_PORT = 15020
METRICS_PATH = "/stats/prometheus"
#: Istio's default cluster ID (values.global.multiCluster.clusterName: Kubernetes)
CLUSTER_ID = "Kubernetes"
UNKNOWN = "unknown"

#: Istio's labels in istio.stats' emission order (docs/facts.md#istio-standard-metrics)
PEER_LABELS = (
    "reporter",
    "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_cluster",
    "destination_workload", "destination_workload_namespace", "destination_principal",
    "destination_app", "destination_version", "destination_service",
    "destination_canonical_service", "destination_canonical_revision",
    "destination_service_name", "destination_service_namespace", "destination_cluster",
)
HTTP_LABELS = (*PEER_LABELS, "request_protocol", "response_code", "grpc_response_status",
               "response_flags", "connection_security_policy")
TCP_LABELS = (*PEER_LABELS, "request_protocol", "response_flags",
              "connection_security_policy")
#: Envoy's default histogram buckets (Istio sets none), in the metric's unit
BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
           300000, 600000, 1800000, 3600000)


@dataclass(frozen=True)
class Peer:
    """One side's workload labels, as istio.stats reads them from the peer's metadata."""

    workload: str = UNKNOWN
    namespace: str = UNKNOWN
    app: str = UNKNOWN
    version: str = UNKNOWN
    canonical_service: str = UNKNOWN
    canonical_revision: str = UNKNOWN
    cluster: str = UNKNOWN


def workload_name(pod: str) -> str:
    """The Deployment a pod belongs to: ``reviews-v2-<replicaset hash>-<suffix>`` -> ``reviews-v2``
    (what the injector puts in ISTIO_META_WORKLOAD_NAME from the pod's owner)."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else pod


def peer_of(workload: WorkloadView) -> Peer:
    """A pod's labels as Istio's peer metadata: canonical service and revision by
    Istio's label precedence (pkg/model/labels: service.istio.io/canonical-name, then
    app.kubernetes.io/name, then app; revision likewise, else ``latest``)."""
    labels = workload.labels
    name = workload_name(workload.name)
    return Peer(
        workload=name, namespace=workload.namespace,
        app=labels.get("app") or labels.get("app.kubernetes.io/name") or UNKNOWN,
        version=labels.get("version") or labels.get("app.kubernetes.io/version") or UNKNOWN,
        canonical_service=(labels.get("service.istio.io/canonical-name")
                           or labels.get("app.kubernetes.io/name") or labels.get("app") or name),
        canonical_revision=(labels.get("service.istio.io/canonical-revision")
                            or labels.get("app.kubernetes.io/version") or labels.get("version")
                            or "latest"),
        cluster=CLUSTER_ID)


@dataclass(frozen=True)
class Directory:
    """What the agent looks peers up in: the registry's pods by address and services by
    host (a snapshot of the mesh istiod sees)."""

    peers: Mapping[str, Peer] = field(default_factory=dict)  # pod IP -> its labels
    workloads: Mapping[str, WorkloadView] = field(default_factory=dict)  # pod IP -> pod
    #: service host -> (name, namespace), Services and ServiceEntry hosts
    services: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    mesh: MeshView | None = None

    @classmethod
    def of(cls, mesh: MeshView) -> "Directory":
        return cls(peers={w.ip: peer_of(w) for w in mesh.workloads},
                   workloads={w.ip: w for w in mesh.workloads},
                   services={s.fqdn: (s.name, s.namespace) for s in mesh.all_services},
                   mesh=mesh)

    def peer(self, address: str | None) -> Peer:
        """The workload at ``ip:port`` (unknown when no pod has that address)."""
        return self.peers.get(_host(address), Peer())

    def service_host(self, authority: str, namespace: str) -> str:
        """A Host header as the service it names: a short or partial Service name expanded
        in the client's namespace; anything else as it is, without its port."""
        host = authority.rsplit(":", 1)[0].lower() if authority else ""
        if not host:
            return UNKNOWN
        parts = host.split(".")
        for candidate in (f"{host}.{namespace}.svc.{CLUSTER_DOMAIN}" if len(parts) == 1 else "",
                          f"{host}.svc.{CLUSTER_DOMAIN}" if len(parts) == 2 else "",
                          f"{host}.{CLUSTER_DOMAIN}" if len(parts) == 3 and parts[2] == "svc"
                          else ""):
            if candidate in self.services:
                return candidate
        return host

    def inbound_service(self, local_ip: str, cluster: str) -> str:
        """The service an inbound cluster ``inbound|<port>||`` serves: the first Service
        selecting the pod with that target port (Istio's inbound cluster metadata
        ``istio.services``)."""
        workload = self.workloads.get(local_ip)
        if workload is None or self.mesh is None or not cluster.startswith("inbound|"):
            return UNKNOWN
        try:
            port = int(cluster.split("|")[1])
        except (IndexError, ValueError):
            return UNKNOWN
        for service in self.mesh.services:
            if service.selects(workload.namespace, workload.labels) and any(
                    p.target_port == port for p in service.ports):
                return service.fqdn
        return UNKNOWN


def _host(address: str | None) -> str:
    return (address or "").rsplit(":", 1)[0]


def _value(record: Mapping[str, Any], key: str) -> str:
    """A record's field as text: Envoy writes null (or ``-``) for what it does not have."""
    value = record.get(key)
    return "" if value in (None, "-") else str(value)


def destination_service(record: Mapping[str, Any], local: Peer, local_ip: str,
                        directory: Directory) -> str:
    """istio.stats' destination_service: the upstream cluster's service (cluster metadata),
    on the client side else the Host header; BlackHole/Passthrough by their cluster."""
    cluster = _value(record, "upstream_cluster")
    if record.get("reporter") == "destination":
        return directory.inbound_service(local_ip, cluster)
    if cluster in (BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER):
        return cluster
    parts = cluster.split("|")
    if len(parts) == 4 and parts[0] == "outbound" and parts[3]:
        return parts[3]
    return directory.service_host(_value(record, "authority"), local.namespace)


def labels(record: Mapping[str, Any], local: Peer, local_ip: str,
           directory: Directory) -> dict[str, str]:
    """Istio's labels of one record, in emission order (HTTP_LABELS or TCP_LABELS).

    The reporter's own side is this pod; the other side is the peer at the connection's
    address (the downstream's for ``destination``, the upstream host for ``source``).
    """
    reporter = record.get("reporter") or "source"
    if reporter == "destination":
        source = directory.peer(_value(record, "downstream_remote_address"))
        destination = local
        source_principal = _value(record, "downstream_peer_uri_san") or UNKNOWN
        destination_principal = _value(record, "downstream_local_uri_san") or UNKNOWN
        # mTLS when the client presented a certificate; istio.stats says none otherwise
        security = "mutual_tls" if _value(record, "downstream_peer_uri_san") else "none"
    else:
        source = local
        destination = directory.peer(_value(record, "upstream_host"))
        destination_principal = _value(record, "upstream_peer_uri_san") or UNKNOWN
        # the client's own identity when it spoke mTLS (its certificate is the pod's)
        workload = directory.workloads.get(local_ip)
        source_principal = (
            f"spiffe://{CLUSTER_DOMAIN}/ns/{workload.namespace}/sa/{workload.service_account}"
            if destination_principal != UNKNOWN and workload is not None else UNKNOWN)
        security = "unknown"  # istio.stats cannot tell on the client side
    service = destination_service(record, local, local_ip, directory)
    name, namespace = directory.services.get(service, (service, UNKNOWN))
    if service == UNKNOWN:
        name = UNKNOWN
    out = {
        "reporter": reporter,
        "source_workload": source.workload,
        "source_canonical_service": source.canonical_service,
        "source_canonical_revision": source.canonical_revision,
        "source_workload_namespace": source.namespace,
        "source_principal": source_principal,
        "source_app": source.app,
        "source_version": source.version,
        "source_cluster": source.cluster,
        "destination_workload": destination.workload,
        "destination_workload_namespace": destination.namespace,
        "destination_principal": destination_principal,
        "destination_app": destination.app,
        "destination_version": destination.version,
        "destination_service": service,
        "destination_canonical_service": destination.canonical_service,
        "destination_canonical_revision": destination.canonical_revision,
        "destination_service_name": name,
        "destination_service_namespace": namespace,
        "destination_cluster": destination.cluster,
    }
    flags = _value(record, "response_flags") or "-"
    if record.get("protocol") == "tcp":
        out.update({"request_protocol": "tcp", "response_flags": flags,
                    "connection_security_policy": security})
        return out
    grpc = (_value(record, "content_type") or "").startswith("application/grpc")
    out.update({
        "request_protocol": "grpc" if grpc else "http",
        "response_code": _value(record, "response_code") or "0",
        "grpc_response_status": _value(record, "grpc_status") if grpc else "",
        "response_flags": flags,
        "connection_security_policy": security,
    })
    return out


def _labels_text(values: Mapping[str, str], extra: str = "") -> str:
    """``{name="value",...}`` in the given order (Prometheus' text format escapes)."""
    pairs = [f'{k}="{_escape(v)}"' for k, v in values.items()]
    return "{" + ",".join(pairs + ([extra] if extra else [])) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class StandardMetrics:
    """One proxy's istio_* metrics, rendered as Envoy's ``/stats/prometheus`` renders them:
    labels in istio.stats' order (a client library would sort them), histograms with
    Envoy's default buckets."""

    COUNTERS = ("istio_requests_total", "istio_tcp_connections_opened_total",
                "istio_tcp_connections_closed_total", "istio_tcp_sent_bytes_total",
                "istio_tcp_received_bytes_total")
    HISTOGRAMS = ("istio_request_duration_milliseconds", "istio_request_bytes",
                  "istio_response_bytes")

    def __init__(self) -> None:
        #: metric -> label values (in order) -> value
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {
            name: {} for name in self.COUNTERS}
        #: metric -> label values -> [per-bucket counts..., sum, count]
        self.histograms: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = {
            name: {} for name in self.HISTOGRAMS}

    def _add(self, metric: str, key: tuple, amount: float) -> None:
        series = self.counters[metric]
        series[key] = series.get(key, 0.0) + amount

    def _observe(self, metric: str, key: tuple, value: float) -> None:
        series = self.histograms[metric].setdefault(key, [0.0] * (len(BUCKETS) + 2))
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                series[i] += 1
        series[-2] += value
        series[-1] += 1

    def count(self, record: Mapping[str, Any], values: Mapping[str, str]) -> None:
        """Add one record: a request, or a closed TCP connection (its access log is written
        at the end, so it is counted opened and closed at once)."""
        key = tuple(values.items())
        received, sent = _number(record, "bytes_received"), _number(record, "bytes_sent")
        if record.get("protocol") == "tcp":
            self._add("istio_tcp_connections_opened_total", key, 1)
            self._add("istio_tcp_connections_closed_total", key, 1)
            self._add("istio_tcp_sent_bytes_total", key, sent)
            self._add("istio_tcp_received_bytes_total", key, received)
            return
        self._add("istio_requests_total", key, 1)
        self._observe("istio_request_duration_milliseconds", key, _number(record, "duration"))
        self._observe("istio_request_bytes", key, received)
        self._observe("istio_response_bytes", key, sent)

    def text(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of every series seen so far."""
        out: list[str] = []
        for metric, series in self.counters.items():
            if series:
                out.append(f"# TYPE {metric} counter")
                out += [f"{metric}{_labels_text(dict(key))} {_number_text(value)}"
                        for key, value in series.items()]
        for metric, series in self.histograms.items():
            if not series:
                continue
            out.append(f"# TYPE {metric} histogram")
            for key, values in series.items():
                labels = dict(key)
                bounds = [f"{bound:g}" for bound in BUCKETS] + ["+Inf"]
                for bound, n in zip(bounds, [*values[:len(BUCKETS)], values[-1]]):
                    le = f'le="{bound}"'
                    out.append(f"{metric}_bucket{_labels_text(labels, le)} {_number_text(n)}")
                out.append(f"{metric}_sum{_labels_text(labels)} {_number_text(values[-2])}")
                out.append(f"{metric}_count{_labels_text(labels)} {_number_text(values[-1])}")
        return "\n".join(out) + "\n"


def _number(record: Mapping[str, Any], key: str) -> float:
    try:
        return float(record.get(key) or 0)
    except (TypeError, ValueError):
        return 0.0


class MetricsAgent:
    """One pod's agent: tails its proxy's metrics records, serves the metrics."""

    def __init__(self, pod_ip: str, records: Path, directory: Callable[[], Directory]):
        self.pod_ip = pod_ip
        self.records = records
        self.directory = directory
        self.metrics = StandardMetrics()
        self.port = AGENT_PORT
        self._offset = 0

    def collect(self) -> int:
        """Count the records written since the last call; returns how many."""
        try:
            with self.records.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1  # a record Envoy is still writing waits for next time
        self._offset += end
        lines = data[:end].splitlines()
        if not lines:
            return 0
        directory = self.directory()
        local = directory.peer(self.pod_ip)
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                log.warning("%s: not a metrics record: %r", self.records, line[:200])
                continue
            self.metrics.count(record, labels(record, local, self.pod_ip, directory))
        return len(lines)

    async def serve(self) -> web.AppRunner:
        """Serve ``/stats/prometheus`` on the pod's address, port 15020 as on a cluster; a
        free port there when something else on this machine holds 15020 on every address
        (then ``self.port`` says which)."""
        app = web.Application()

        async def scrape(request: web.Request) -> web.Response:
            self.collect()
            return web.Response(body=self.metrics.text().encode(), headers={
                "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

        app.router.add_get(METRICS_PATH, scrape)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.pod_ip, AGENT_PORT)
            await site.start()
        except OSError as exc:
            log.warning("the metrics agent of %s cannot bind %s:%d (%s); it takes a free port",
                        self.pod_ip, self.pod_ip, AGENT_PORT, exc)
            site = web.TCPSite(runner, self.pod_ip, 0)
            await site.start()
            self.port = runner.addresses[-1][1]
        return runner

