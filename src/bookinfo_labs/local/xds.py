"""The local mesh's ADS server: our control plane's end of the wire to real Envoys.

The translation from Istio config to Envoy resources (``local/pilot/``) produces plain
dicts in proto-JSON shape; this module turns them into protobuf, keeps one snapshot per
proxy and serves it over gRPC, and tells the caller when each proxy has ACKed a version
or why it NACKed it. It follows go-control-plane's split: a snapshot cache (what each
node should have) apart from the streams (what each node was sent and acknowledged).

State of the world, not delta. Istio's proxies use ``ads_config.api_type: DELTA_GRPC``;
we serve plain SotW ADS (``api_type: GRPC``, ``StreamAggregatedResources``): every
response of a type carries all the resources of that type the proxy asked for, so there
is no per-resource diff to keep. Our proxies hold a few dozen resources, so resending a
type whole on each version costs nothing worth measuring, and Envoy leaves alone what did
not change (measured: ``cluster_modified`` and ``listener_modified`` stay 0 and EDS counts
``update_no_rebuild``, so pools and outlier ejections survive a resend).
``DeltaAggregatedResources`` answers UNIMPLEMENTED.

One version per snapshot: ``set_snapshot`` gives the node's next version ("1", "2", ...)
and every type is (re)sent under it. A stream answers a request of a type when the node's
snapshot version differs from what it last sent of that type, or (RDS, EDS, SDS) when the
proxy asks for other names than it last did; otherwise the request stays open until the
next ``set_snapshot``. Envoy's warming order (CDS, then EDS for its clusters, then LDS,
then RDS for its listeners) needs nothing special: each request is answered as it comes.

What a caller gets: ``wait_acked`` (a version ACKed, for every type the proxy uses, or
``XdsRejected`` with Envoy's reason), ``status()`` (``istioctl proxy-status``), and the
previous snapshot (``previous``) to roll back to after a NACK: rolling back is the
caller's decision.

The server is grpcio's synchronous server: each open stream holds one thread of its pool
(``max_workers``, 64 by default) plus one reader thread of ours.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import pkgutil
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

# Envoys are started with fork + exec while gRPC threads run (envoyproc); the child never
# uses gRPC, so gRPC's fork handlers have nothing to do (and only log "Other threads are
# currently calling into gRPC, skipping fork() handlers"). Read when grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import grpc  # noqa: E402
from google.protobuf import any_pb2, json_format  # noqa: E402

# The resource types and the ADS service.
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from bookinfo_labs.mesh import MeshError

# Extension protos named by "@type" in typed configs. ParseDict resolves "@type" in the
# default descriptor pool, which only knows modules already imported; these are the ones
# the translation uses. Any other "@type" of xds-protos is imported on demand
# (``_import_for_type_url``).
import envoy.extensions.access_loggers.file.v3.file_pb2  # noqa: F401
import envoy.extensions.access_loggers.stream.v3.stream_pb2  # noqa: F401
import envoy.extensions.filters.http.cors.v3.cors_pb2  # noqa: F401
import envoy.extensions.filters.http.fault.v3.fault_pb2  # noqa: F401
import envoy.extensions.filters.http.jwt_authn.v3.config_pb2  # noqa: F401
import envoy.extensions.filters.http.local_ratelimit.v3.local_rate_limit_pb2  # noqa: F401
import envoy.extensions.filters.http.rbac.v3.rbac_pb2  # noqa: F401
import envoy.extensions.filters.http.router.v3.router_pb2  # noqa: F401
import envoy.extensions.filters.listener.http_inspector.v3.http_inspector_pb2  # noqa: F401
import envoy.extensions.filters.listener.original_dst.v3.original_dst_pb2  # noqa: F401
import envoy.extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2  # noqa: F401
import envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2  # noqa: F401,E501
import envoy.extensions.filters.network.rbac.v3.rbac_pb2  # noqa: F401
import envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2  # noqa: F401
import envoy.extensions.retry.host.previous_hosts.v3.previous_hosts_pb2  # noqa: F401
import envoy.extensions.transport_sockets.raw_buffer.v3.raw_buffer_pb2  # noqa: F401
import envoy.extensions.transport_sockets.tls.v3.tls_pb2  # noqa: F401
import envoy.extensions.upstreams.http.v3.http_protocol_options_pb2  # noqa: F401

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "ProxyStatus",
    "ROUTE",
    "SECRET",
    "Snapshot",
    "TYPE_URLS",
    "TypeStatus",
    "XdsRejected",
    "XdsServer",
    "format_status",
]

log = logging.getLogger(__name__)

_PREFIX = "type.googleapis.com/"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"

_MESSAGES = {
    LISTENER: listener_pb2.Listener,
    ROUTE: route_pb2.RouteConfiguration,
    CLUSTER: cluster_pb2.Cluster,
    ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    SECRET: secret_pb2.Secret,
}
#: every type served, in the order a new snapshot is pushed: clusters and their endpoints
#: before the listeners and routes that send traffic to them (Envoy's own warming order)
TYPE_URLS = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
#: the xDS acronym of each type, as istioctl proxy-status heads its columns
SHORT = {CLUSTER: "CDS", ENDPOINT: "EDS", LISTENER: "LDS", ROUTE: "RDS", SECRET: "SDS"}
# Types asked for as a whole (no names); the others are asked for by resource name.
_WILDCARD = frozenset({LISTENER, CLUSTER})

_ALIASES = {url: url for url in TYPE_URLS}
_ALIASES.update({url.rsplit(".", 1)[1]: url for url in TYPE_URLS})  # "Listener", ...
_ALIASES.update({SHORT[url]: url for url in TYPE_URLS})  # "LDS", ...

_UNKNOWN_TYPE = re.compile(r"Can not find message descriptor by type_url: (\S+?)(?: at |\.?$)")


# --- snapshots ---------------------------------------------------------------------------


class XdsRejected(MeshError):
    """A proxy NACKed a version: Envoy's own reason is in ``reason``."""

    def __init__(self, node_id: str, type_url: str, version: str, reason: str) -> None:
        self.node_id = node_id
        self.type_url = type_url
        self.version = version
        self.reason = reason
        super().__init__(f"Envoy {node_id} rejected {SHORT.get(type_url, type_url)} version "
                         f"{version}: {reason}")


def _import_for_type_url(type_url: str) -> bool:
    """Import every ``*_pb2`` module of the proto package a type URL names; True if any."""
    package = type_url.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    try:
        module = importlib.import_module(package)
    except ImportError:
        return False
    found = False
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")
            found = True
    return found


def _resource_name(type_url: str, resource: Mapping) -> str:
    key = "cluster_name" if type_url == ENDPOINT else "name"
    name = _get(resource, key)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{SHORT[type_url]} resource without a {key!r}: "
                         f"{str(dict(resource))[:200]}")
    return name


def _pack(type_url: str, name: str, resource: Mapping) -> any_pb2.Any:
    """One proto-JSON dict as an ``Any``; a ``ValueError`` names the resource and field."""
    tried: set[str] = set()
    while True:
        message = _MESSAGES[type_url]()
        try:
            json_format.ParseDict(resource, message)
        except json_format.ParseError as error:
            text = str(error)
            unknown = _UNKNOWN_TYPE.search(text)
            if unknown and unknown.group(1) not in tried:
                tried.add(unknown.group(1))
                if _import_for_type_url(unknown.group(1)):
                    continue  # the descriptor pool knows it now: parse again
            first_line = text.strip().splitlines()[0]
            raise ValueError(f"{SHORT[type_url]} {name!r}: {first_line}") from None
        packed = any_pb2.Any()
        packed.Pack(message)
        return packed


def _get(data: Mapping, snake: str) -> Any:
    """A field in either proto-JSON spelling (``route_config_name`` / ``routeConfigName``)."""
    if snake in data:
        return data[snake]
    head, *rest = snake.split("_")
    return data.get(head + "".join(part.title() for part in rest))


def _walk(value: Any) -> Iterator[Mapping]:
    if isinstance(value, Mapping):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _references(resources: Mapping[str, Mapping[str, dict]]) -> dict[str, frozenset[str]]:
    """The RDS, EDS and SDS names the snapshot's listeners and clusters will ask for."""
    routes, endpoints, secrets = set(), set(), set()
    for data in _walk(list(resources[LISTENER].values())):
        rds = _get(data, "rds")
        if isinstance(rds, Mapping) and _get(rds, "route_config_name"):
            routes.add(_get(rds, "route_config_name"))
    for name, cluster in resources[CLUSTER].items():
        if _get(cluster, "type") == "EDS":
            eds = _get(cluster, "eds_cluster_config") or {}
            endpoints.add(_get(eds, "service_name") or name)
    for data in _walk([*resources[LISTENER].values(), *resources[CLUSTER].values()]):
        for key in ("sds_secret_config", "validation_context_sds_secret_config"):
            config = _get(data, key)
            if isinstance(config, Mapping):
                _add_ads_secret(config, secrets)
        for key in ("sds_secret_configs", "tls_certificate_sds_secret_configs"):
            for config in _get(data, key) or ():
                if isinstance(config, Mapping):
                    _add_ads_secret(config, secrets)
    return {ROUTE: frozenset(routes), ENDPOINT: frozenset(endpoints),
            SECRET: frozenset(secrets)}


def _add_ads_secret(config: Mapping, into: set[str]) -> None:
    source = _get(config, "sds_config")
    if isinstance(source, Mapping) and "ads" in source and _get(config, "name"):
        into.add(_get(config, "name"))


@dataclass(frozen=True)
class Snapshot:
    """What one node should have: a version and its resources per type URL.

    ``resources`` holds the dicts as given (a list per type URL, every type present), so
    ``set_snapshot(node, snapshot.resources)`` sets it again under a new version.
    """

    version: str
    resources: Mapping[str, list[dict]]
    _packed: Mapping[str, Mapping[str, any_pb2.Any]] = field(repr=False)
    _references: Mapping[str, frozenset[str]] = field(repr=False)

    def names(self, type_url: str) -> frozenset[str]:
        return frozenset(self._packed[type_url])

    def references(self, type_url: str) -> frozenset[str]:
        """Names of an RDS/EDS/SDS type the snapshot's listeners and clusters refer to."""
        return self._references.get(type_url, frozenset())


_Resources = Mapping[str, Iterable[Mapping] | Mapping[str, Mapping]]


def _build(version: str, resources_by_type: _Resources) -> Snapshot:
    by_type: dict[str, dict[str, dict]] = {url: {} for url in TYPE_URLS}
    for key, resources in resources_by_type.items():
        type_url = _ALIASES.get(key)
        if type_url is None:
            raise ValueError(f"unknown resource type {key!r}; one of "
                             + ", ".join(url.rsplit(".", 1)[1] for url in TYPE_URLS))
        if isinstance(resources, Mapping):  # by name, as pilot.generate gives them
            for key_name, resource in resources.items():
                name = _resource_name(type_url, resource)
                if name != key_name:
                    raise ValueError(f"{SHORT[type_url]} {name!r} is filed under {key_name!r}")
            resources = resources.values()
        for resource in resources:
            name = _resource_name(type_url, resource)
            if name in by_type[type_url]:
                raise ValueError(f"{SHORT[type_url]} {name!r} is defined twice")
            by_type[type_url][name] = resource
    packed = {url: {name: _pack(url, name, res) for name, res in by_type[url].items()}
              for url in TYPE_URLS}
    return Snapshot(version=version,
                    resources={url: list(by_type[url].values()) for url in TYPE_URLS},
                    _packed=packed, _references=_references(by_type))


# --- streams -------------------------------------------------------------------------


@dataclass
class _TypeState:
    """One type on one stream: what the proxy asks for, was sent and acknowledged."""

    names: frozenset[str] = frozenset()  # the resource names of its latest request
    pending: bool = False  # a request is open (not answered yet)
    answered_names: frozenset[str] | None = None  # the names of the request last answered
    sent_version: str | None = None
    sent_nonce: str | None = None
    sent_names: frozenset[str] = frozenset()  # the resources in the last response
    acked_version: str | None = None
    acked_names: frozenset[str] = frozenset()
    nack: tuple[str, str] | None = None  # (version, reason) of the last response rejected


_CLOSE = object()


class _Stream:
    def __init__(self, number: int, peer: str) -> None:
        self.number = number
        self.peer = peer
        self.node_id: str | None = None
        self.cluster = ""
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.types: dict[str, _TypeState] = {}
        self.closed = False


class _Node:
    def __init__(self) -> None:
        self.versions = itertools.count(1)
        self.history: deque[Snapshot] = deque(maxlen=10)
        self.stream: _Stream | None = None

    @property
    def snapshot(self) -> Snapshot | None:
        return self.history[-1] if self.history else None


def _as_int(version: str | None) -> int:
    try:
        return int(version or 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class TypeStatus:
    sent: str | None  # version last sent
    acked: str | None  # version last ACKed
    state: str  # SYNCED, STALE or NOT SENT
    error: str | None = None  # Envoy's reason, when the last response was NACKed


@dataclass(frozen=True)
class ProxyStatus:
    """One proxy's line of ``istioctl proxy-status``."""

    node_id: str
    cluster: str
    connected: bool
    version: str | None  # the node's current snapshot version
    types: Mapping[str, TypeStatus]  # by "CDS", "LDS", "EDS", "RDS", "SDS"

    @property
    def synced(self) -> bool:
        """Every type sent is ACKed at the current version."""
        return self.connected and all(
            t.state == "SYNCED" for t in self.types.values() if t.state != "NOT SENT")

    def __str__(self) -> str:
        cells = [f"{self.node_id}", self.cluster or "-"]
        cells += [self.types[SHORT[url]].state for url in TYPE_URLS]
        cells.append(self.version or "-")
        return "  ".join(cells) + ("" if self.connected else "  (disconnected)")


def format_status(statuses: Iterable[ProxyStatus]) -> str:
    """A table like ``istioctl proxy-status``."""
    rows = [["NAME", "CLUSTER", *(SHORT[url] for url in TYPE_URLS), "VERSION"]]
    for status in statuses:
        rows.append([status.node_id + ("" if status.connected else " (disconnected)"),
                     status.cluster or "-",
                     *(status.types[SHORT[url]].state for url in TYPE_URLS),
                     status.version or "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


# --- the server ----------------------------------------------------------------------


class XdsServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """A SotW ADS server on ``127.0.0.1`` (a port the kernel picks) with one snapshot per node."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = 64,
                 identifier: str = "bookinfo-labs") -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.identifier = identifier
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        # One lock for the cache and every stream's state; wait_acked waits on it.
        self._cond = threading.Condition()
        self._nodes: dict[str, _Node] = {}
        self._streams: set[_Stream] = set()
        self._stream_numbers = itertools.count(1)
        self._nonces = itertools.count(1)

    # -- life cycle

    def start(self) -> int:
        """Listen and serve; return the port."""
        server = grpc.server(
            ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="xds"),
            options=[("grpc.so_reuseport", 0)])
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self, server)
        self.port = server.add_insecure_port(f"{self.host}:{self._requested_port}")
        if not self.port:
            raise MeshError(f"the xDS server could not listen on {self.host}:"
                            f"{self._requested_port}")
        server.start()
        self._server = server
        return self.port

    def stop(self, grace_s: float = 1.0) -> None:
        """Close every stream and stop serving. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        with self._cond:
            for stream in self._streams:
                stream.queue.put(_CLOSE)
        server.stop(grace_s).wait()

    def __enter__(self) -> "XdsServer":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        if self.port is None:
            raise MeshError("the xDS server has not been started")
        return f"{self.host}:{self.port}"

    def ads_bootstrap(self, node_id: str, cluster: str, *,
                      metadata: Mapping[str, Any] | None = None,
                      cluster_name: str = "xds-grpc") -> dict:
        """A minimal bootstrap: ``node``, ADS for LDS and CDS, and the static cluster of
        this server (HTTP/2 over TCP to 127.0.0.1). ``admin`` is left to EnvoyProcess."""
        if self.port is None:
            raise MeshError("the xDS server has not been started")
        node: dict[str, Any] = {"id": node_id, "cluster": cluster}
        if metadata:
            node["metadata"] = dict(metadata)
        ads = {"ads": {}, "resource_api_version": "V3"}
        return {
            "node": node,
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "set_node_on_first_message_only": True,
                    "grpc_services": [{"envoy_grpc": {"cluster_name": cluster_name}}],
                },
                "lds_config": dict(ads),
                "cds_config": dict(ads),
            },
            "static_resources": {"clusters": [{
                "name": cluster_name,
                "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": _PREFIX + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    }},
                "load_assignment": {"cluster_name": cluster_name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {
                        "address": self.host, "port_value": self.port}}}}]}]},
            }]},
        }

    # -- the cache

    def set_snapshot(self, node_id: str, resources_by_type: _Resources) -> str:
        """Give ``node_id`` these resources under its next version; return the version.

        Keys are type URLs, their message names (``"Listener"``, ``"RouteConfiguration"``,
        ``"Cluster"``, ``"ClusterLoadAssignment"``, ``"Secret"``) or xDS acronyms
        (``"LDS"``...); values a list of dicts or a mapping of name to dict. A type left
        out has no resources. A dict that does not parse is a ``ValueError`` naming the
        resource and the field, and nothing changes. Open requests of a connected node are
        answered at once, clusters first.
        """
        # Parsing is the slow part: out of the lock, under a placeholder version.
        built = _build("", resources_by_type)
        with self._cond:
            node = self._nodes.setdefault(node_id, _Node())
            snapshot = Snapshot(version=str(next(node.versions)), resources=built.resources,
                                _packed=built._packed, _references=built._references)
            node.history.append(snapshot)
            stream = node.stream
            if stream is not None and not stream.closed:
                for type_url in TYPE_URLS:
                    if type_url in stream.types:
                        self._respond_if_due(node, stream, type_url)
            self._cond.notify_all()
            return snapshot.version

    def snapshot(self, node_id: str) -> Snapshot | None:
        """The node's current snapshot."""
        with self._cond:
            node = self._nodes.get(node_id)
            return None if node is None else node.snapshot

    def previous(self, node_id: str) -> Snapshot | None:
        """The snapshot before the current one: what to set again after a NACK."""
        with self._cond:
            node = self._nodes.get(node_id)
            return node.history[-2] if node is not None and len(node.history) > 1 else None

    def history(self, node_id: str) -> list[Snapshot]:
        """The node's last snapshots (up to 10), oldest first."""
        with self._cond:
            node = self._nodes.get(node_id)
            return [] if node is None else list(node.history)

    # -- waiting and status

    def wait_acked(self, node_id: str, version: str, timeout_s: float = 10.0) -> None:
        """Return once ``node_id`` has ACKed ``version`` (or a later one) of every type it
        subscribes to and the snapshot has, including the RDS, EDS and SDS names its
        listeners and clusters refer to.

        Raises ``XdsRejected`` when the proxy NACKed that version (Envoy's reason), or
        ``TimeoutError`` naming what is still pending.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                pending = self._pending(node_id, version)
                if not pending:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"Envoy {node_id} did not ACK version {version} within "
                                       f"{timeout_s:g} s: " + "; ".join(
                                           pending + self._dangling(node_id)))
                self._cond.wait(remaining)

    def _pending(self, node_id: str, version: str) -> list[str]:
        node = self._nodes.get(node_id)
        snapshot = node.snapshot if node is not None else None
        if snapshot is None or _as_int(version) > _as_int(snapshot.version):
            raise ValueError(f"no version {version} was set for node {node_id!r}")
        stream = node.stream
        if stream is None or stream.closed:
            return ["the proxy is not connected"]
        want = _as_int(version)
        pending = []
        for type_url in TYPE_URLS:
            state = stream.types.get(type_url)
            available = snapshot.names(type_url)
            if type_url in _WILDCARD:
                needed: frozenset[str] = frozenset()
                required = bool(available) or state is not None
            else:
                needed = (snapshot.references(type_url) | (state.names if state else frozenset())
                          ) & available
                required = bool(needed)
            if not required:
                continue
            short = SHORT[type_url]
            if state is None:
                pending.append(f"{short} not requested yet")
                continue
            if _as_int(state.acked_version) >= want and needed <= state.acked_names:
                continue
            if state.nack is not None and _as_int(state.nack[0]) >= want:
                raise XdsRejected(node_id, type_url, state.nack[0], state.nack[1])
            missing = sorted(needed - state.acked_names)
            pending.append(f"{short} sent {state.sent_version or '-'}, ACKed "
                           f"{state.acked_version or '-'}"
                           + (f", waiting for {', '.join(missing)}" if missing else ""))
        return pending

    def _dangling(self, node_id: str) -> list[str]:
        """Names the snapshot refers to but lacks: Envoy waits for them (a cluster warming,
        a listener without its routes) until its initial_fetch_timeout, maybe forever."""
        snapshot = self._nodes[node_id].snapshot
        notes = []
        for type_url in (ENDPOINT, ROUTE, SECRET):
            missing = sorted(snapshot.references(type_url) - snapshot.names(type_url))
            if missing:
                notes.append(f"the snapshot refers to {SHORT[type_url]} {', '.join(missing)} "
                             "but has none by that name")
        return notes

    def status(self) -> list[ProxyStatus]:
        """Each node's sync state per type, like ``istioctl proxy-status``."""
        with self._cond:
            result = []
            for node_id, node in sorted(self._nodes.items()):
                stream = node.stream
                current = node.snapshot.version if node.snapshot else None
                types = {}
                for type_url in TYPE_URLS:
                    state = stream.types.get(type_url) if stream else None
                    if state is None or state.sent_version is None:
                        types[SHORT[type_url]] = TypeStatus(None, None, "NOT SENT")
                        continue
                    synced = (state.acked_version == state.sent_version == current
                              and state.nack is None)
                    types[SHORT[type_url]] = TypeStatus(
                        state.sent_version, state.acked_version,
                        "SYNCED" if synced else "STALE",
                        state.nack[1] if state.nack else None)
                result.append(ProxyStatus(
                    node_id=node_id, cluster=stream.cluster if stream else "",
                    connected=stream is not None and not stream.closed,
                    version=current, types=types))
            return result

    # -- the ADS stream

    def StreamAggregatedResources(self, request_iterator, context):  # noqa: N802 (gRPC's name)
        stream = _Stream(next(self._stream_numbers), context.peer())
        with self._cond:
            self._streams.add(stream)
        # Requests are read on a thread of our own so that this generator can block on the
        # queue, where both request handling and set_snapshot put responses.
        context.add_callback(lambda: stream.queue.put(_CLOSE))
        threading.Thread(target=self._read, args=(stream, request_iterator),
                         name=f"xds-stream-{stream.number}", daemon=True).start()
        try:
            while True:
                item = stream.queue.get()
                if item is _CLOSE:
                    return
                yield item
        finally:
            self._close(stream)

    def _read(self, stream: _Stream, requests: Iterator) -> None:
        try:
            for request in requests:
                with self._cond:
                    self._on_request(stream, request)
                    self._cond.notify_all()
        except grpc.RpcError:
            pass  # the proxy went away
        except Exception:  # a bug here must end the stream, not hang it
            log.exception("xDS stream %s (%s) failed", stream.number, stream.node_id)
        finally:
            stream.queue.put(_CLOSE)
            self._close(stream)

    def _close(self, stream: _Stream) -> None:
        with self._cond:
            stream.closed = True
            self._streams.discard(stream)
            self._cond.notify_all()

    def _on_request(self, stream: _Stream, request: discovery_pb2.DiscoveryRequest) -> None:
        if stream.node_id is None:
            # set_node_on_first_message_only: only the first request names the node.
            stream.node_id = request.node.id
            stream.cluster = request.node.cluster
            node = self._nodes.setdefault(stream.node_id, _Node())
            node.stream = stream  # a reconnecting proxy's new stream replaces the old one
            log.debug("xDS stream %s from %s: node %s", stream.number, stream.peer,
                      stream.node_id)
        node = self._nodes[stream.node_id]
        type_url = request.type_url
        if type_url not in _MESSAGES:
            log.debug("node %s asked for unserved type %s", stream.node_id, type_url)
            return
        state = stream.types.setdefault(type_url, _TypeState())
        if request.response_nonce:
            # A request carrying a nonce answers the response that had it. One that answers
            # an older response than the last we sent is stale: the proxy has not seen our
            # latest response yet and will answer it too, so it is dropped (as
            # go-control-plane does) rather than answered twice.
            if request.response_nonce != state.sent_nonce:
                log.debug("node %s %s: stale nonce %s (last sent %s)", stream.node_id,
                          SHORT[type_url], request.response_nonce, state.sent_nonce)
                return
            if request.HasField("error_detail"):
                # NACK. Its version_info is the last version the proxy accepted, not the one
                # it rejected: the nonce says which response that was.
                state.nack = (state.sent_version or "", request.error_detail.message)
                log.debug("node %s NACKed %s %s: %s", stream.node_id, SHORT[type_url],
                          state.sent_version, request.error_detail.message)
            else:
                state.acked_version = state.sent_version
                state.acked_names = state.sent_names
                state.nack = None
        state.names = frozenset(request.resource_names)
        state.pending = True
        if node.stream is stream:
            self._respond_if_due(node, stream, type_url)

    def _respond_if_due(self, node: _Node, stream: _Stream, type_url: str) -> None:
        """Answer the open request of a type if the proxy lacks the current snapshot's."""
        state = stream.types[type_url]
        snapshot = node.snapshot
        if not state.pending or snapshot is None:
            return
        wildcard = type_url in _WILDCARD and (not state.names or "*" in state.names)
        same_names = wildcard or state.names == state.answered_names
        if state.sent_version == snapshot.version and same_names:
            return  # up to date: the request stays open until the next snapshot
        packed = snapshot._packed[type_url]
        names = sorted(packed) if wildcard else sorted(state.names & packed.keys())
        nonce = str(next(self._nonces))
        response = discovery_pb2.DiscoveryResponse(
            version_info=snapshot.version, type_url=type_url, nonce=nonce,
            resources=[packed[name] for name in names])
        response.control_plane.identifier = self.identifier
        state.pending = False
        state.answered_names = state.names
        state.sent_version = snapshot.version
        state.sent_nonce = nonce
        state.sent_names = frozenset(names)
        stream.queue.put(response)
        log.debug("node %s: sent %s version %s nonce %s: %s", stream.node_id,
                  SHORT[type_url], snapshot.version, nonce, names)
