"""The emulated Envoy sidecar of one pod.

Outbound: every connection the pod makes is captured (curl through ``--connect-to``, the
apps through ``AppOutbound``) and routed by the client side: VirtualService, weighted
destinations, DestinationRule subsets, endpoints, the default retry policy. Inbound: one
listener per container port in front of the app, where server-side policy will live.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Sequence

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from ..versions import IstioVersion
from . import envoy, routing
from .apps.base import UpstreamResponse
from .cluster import Cluster, Pod, Service, fqdn
from .config import ConfigStore

# Hop-by-hop headers are never forwarded; content-length is recomputed.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection",
               "te", "trailer", "content-length", "host"}
# Response headers each proxy hop sets itself rather than passing on.
_REPLACED_RESPONSE_HEADERS = _HOP_BY_HOP | {"server", "date", "x-envoy-upstream-service-time"}


@dataclass(frozen=True)
class RetryPolicy:
    """Envoy's retry policy for a route (Istio's default when the VirtualService sets none)."""

    attempts: int  # retries on top of the first try
    retry_on_connect_failure: bool
    retriable_status_codes: frozenset[int]

    @classmethod
    def istio_default(cls, istio: IstioVersion) -> "RetryPolicy":
        # connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes; the
        # 503 in retriable_status_codes was dropped in Istio 1.24 (§B.3).
        codes = frozenset({503}) if istio.default_retry_503 else frozenset()
        return cls(attempts=2, retry_on_connect_failure=True, retriable_status_codes=codes)


def split_authority(authority: str, default_port: int = 80) -> tuple[str, int]:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.lower(), int(port)
    return authority.lower(), default_port


class Sidecar:
    def __init__(self, pod: Pod, cluster: Cluster, store: ConfigStore, istio: IstioVersion):
        self.pod = pod
        self.cluster = cluster
        self.store = store
        self.istio = istio
        self.stats = envoy.Stats()
        self.access_log: list[str] = []
        self.outbound_port = 0
        self.inbound_ports: dict[int, int] = {}  # container port -> inbound listener port
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        self._rng = random.Random()

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        self.outbound_port = await self._listen(self._outbound)
        for container_port in self.pod.ports:
            self.inbound_ports[container_port] = await self._listen(
                self._inbound_handler(container_port))

    async def _listen(self, handler) -> int:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[0][1]

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self._session:
            await self._session.close()

    # -- outbound --------------------------------------------------------------------
    async def _outbound(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        lower = {k.lower(): v for k, v in headers}
        if "x-request-id" not in lower:
            request_id = str(uuid.uuid4())
            headers.append(("x-request-id", request_id))
            lower["x-request-id"] = request_id
        authority = request.host
        host, port = split_authority(authority)
        log = envoy.AccessLogEntry(
            method=request.method, path=request.path_qs, status=0, authority=authority,
            user_agent=lower.get("user-agent", "-"), request_id=lower["x-request-id"],
            bytes_received=len(body))
        try:
            response = await self._route(request, host, port, authority, headers, lower, body, log)
        finally:
            log.duration_ms = int((time.monotonic() - started) * 1000)
        log.bytes_sent = len(response.body or b"")
        self.access_log.append(log.format())
        return response

    async def _route(self, request, host, port, authority, headers, lower, body, log):
        service = self.cluster.resolve(host, self.pod.namespace)
        if service is None or service.port(port) is None:
            return self._local_reply(envoy.PASSTHROUGH_FAILURE, log, "PassthroughCluster")
        view = routing.RequestView(
            method=request.method, path=request.path_qs, headers=lower, authority=authority,
            port=port, source_labels=self.pod.labels, source_namespace=self.pod.namespace)
        vs = routing.virtual_service_for(self.store, service.fqdn)
        target, subset = service, ""
        if vs is not None:
            rule = routing.select_route(vs, view)
            if rule is None or not rule.route:
                return self._local_reply(envoy.NO_ROUTE, log, "-")
            log.route_name = rule.name or "-"
            chosen = routing.pick_destination(rule.route, self._rng).destination
            target = self.cluster.service_by_fqdn(fqdn(chosen.host, vs.key.namespace))
            subset = chosen.subset or ""
            if target is None:  # validated at apply time; a Service may be gone since
                return self._local_reply(envoy.CLUSTER_NOT_FOUND, log, "-")
            target_port = routing.destination_port(target, chosen, port)
        else:
            target_port = port
        cluster_ref = routing.ClusterRef(target_port or port, subset, target.fqdn)
        log.upstream_cluster = str(cluster_ref)
        labels: dict[str, str] | None = None
        if subset:
            labels = routing.subset_labels(self.store, target.fqdn, subset)
            if labels is None:
                return self._local_reply(envoy.CLUSTER_NOT_FOUND, log, str(cluster_ref))
        service_port = target.port(cluster_ref.port)
        endpoints = [p for p in self.cluster.endpoints(target, labels)
                     if p.sidecar and service_port and service_port.target_port in p.sidecar.inbound_ports]
        if not endpoints:
            self.stats.inc(f"cluster.{cluster_ref}.upstream_cx_none_healthy")
            return self._local_reply(envoy.NO_HEALTHY_UPSTREAM, log, str(cluster_ref))
        headers = headers + [("host", authority), ("x-forwarded-proto", "http")]
        return await self._forward(cluster_ref, target, service_port.target_port, endpoints,
                                   request.method, request.path_qs, headers, body, log)

    async def _forward(self, cluster_ref, service: Service, target_port: int,
                       endpoints: list[Pod], method, path, headers, body, log):
        policy = RetryPolicy.istio_default(self.istio)
        tried: list[Pod] = []
        upstream = None
        for attempt in range(1, policy.attempts + 2):
            # previous_hosts retry predicate: prefer an endpoint not tried yet
            fresh = [p for p in endpoints if p not in tried] or endpoints
            pod = self._rng.choice(fresh)
            tried.append(pod)
            sent = headers + [("x-envoy-attempt-count", str(attempt))]
            url = f"http://127.0.0.1:{pod.sidecar.inbound_ports[target_port]}{path}"
            start = time.monotonic()
            try:
                async with self._session.request(method, url, headers=sent, data=body or None,
                                                 allow_redirects=False) as resp:
                    upstream = (resp.status, list(resp.headers.items()), await resp.read())
            except aiohttp.ClientConnectionError:
                self.stats.inc(f"cluster.{cluster_ref}.upstream_cx_connect_fail")
                upstream = None
                if policy.retry_on_connect_failure and attempt <= policy.attempts:
                    self.stats.inc(f"cluster.{cluster_ref}.upstream_rq_retry")
                    continue
                return self._local_reply(envoy.CONNECT_FAILURE, log, str(cluster_ref))
            status = upstream[0]
            self.stats.upstream_response(str(cluster_ref), status)
            if status in policy.retriable_status_codes and attempt <= policy.attempts:
                self.stats.inc(f"cluster.{cluster_ref}.upstream_rq_retry")
                continue
            break
        status, resp_headers, resp_body = upstream
        service_time = str(int((time.monotonic() - start) * 1000))
        log.status, log.upstream_host = status, f"{pod.name}:{target_port}"
        log.upstream_service_time = service_time
        out = [(k, v) for k, v in resp_headers if k.lower() not in _REPLACED_RESPONSE_HEADERS]
        out += [("x-envoy-upstream-service-time", service_time), ("server", "envoy")]
        return web.Response(status=status, body=resp_body, headers=_multidict(out))

    def _local_reply(self, reply: envoy.LocalReply, log: envoy.AccessLogEntry, cluster: str,
                     server: str = "envoy") -> web.Response:
        log.status, log.flags, log.details, log.upstream_cluster = (
            reply.status, reply.flag, reply.details, cluster)
        headers = [("server", server), *reply.headers]
        if reply.body:
            headers.append(("content-type", "text/plain"))
        return web.Response(status=reply.status, body=reply.body.encode(),
                            headers=_multidict(headers))

    # -- inbound ---------------------------------------------------------------------
    def _inbound_handler(self, container_port: int):
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = [(k, v) for k, v in request.headers.items()
                       if k.lower() not in _HOP_BY_HOP] + [("host", request.host)]
            cluster = f"inbound|{container_port}||"
            url = f"http://127.0.0.1:{self.pod.ports[container_port]}{request.path_qs}"
            start = time.monotonic()
            try:
                async with self._session.request(request.method, url, headers=headers,
                                                 data=body or None, allow_redirects=False) as resp:
                    status, resp_headers, resp_body = resp.status, list(resp.headers.items()), await resp.read()
            except aiohttp.ClientConnectionError:
                return self._local_reply(envoy.CONNECT_FAILURE, envoy.AccessLogEntry(
                    request.method, request.path_qs, 0), cluster, server="istio-envoy")
            self.stats.upstream_response(cluster, status)
            out = [(k, v) for k, v in resp_headers if k.lower() not in _REPLACED_RESPONSE_HEADERS]
            out += [("x-envoy-upstream-service-time", str(int((time.monotonic() - start) * 1000))),
                    ("server", "istio-envoy")]
            return web.Response(status=status, body=resp_body, headers=_multidict(out))
        return handle


def _multidict(pairs) -> CIMultiDict:
    return CIMultiDict(pairs)


class AppOutbound:
    """An app's HTTP client whose connections the pod's sidecar captures.

    The app names ``http://reviews:9080/...``; the request goes to the sidecar's outbound
    listener with that authority as Host, as iptables would redirect it.
    """

    def __init__(self, sidecar: Sidecar):
        self.sidecar = sidecar
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, url: str, *, headers: Sequence[tuple[str, str]] = (),
                      body: bytes | None = None, timeout_s: float | None = None) -> UpstreamResponse:
        from urllib.parse import urlsplit

        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False, skip_auto_headers=("User-Agent",),
                timeout=aiohttp.ClientTimeout(total=None))
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        target = f"http://127.0.0.1:{self.sidecar.outbound_port}{path or '/'}"
        sent = [(k, v) for k, v in headers if k.lower() != "host"] + [("host", parts.netloc)]
        try:
            async with asyncio.timeout(timeout_s):
                async with self._session.request(method, target, headers=sent, data=body,
                                                 allow_redirects=False) as resp:
                    return UpstreamResponse(resp.status, dict(resp.headers), await resp.read())
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionError(str(exc)) from exc

    async def close(self) -> None:
        if self._session:
            await self._session.close()
