"""The emulated Envoy sidecar of one pod.

Outbound: every connection the pod makes is captured (curl through ``--connect-to``, the
apps through ``AppOutbound``, the fortio load client directly) and handled as the client
side of Istio does it: route selection (VirtualService), the fault filter, mirroring, the
route timeout, then tries through the cluster's connection pool with outlier detection
and the retry policy. Inbound: one listener per container port in front of the app,
where server-side policy lives.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from ..versions import IstioVersion
from . import envoy, routing
from .apps.base import UpstreamResponse
from .registry import Pod, PodLog, Service, ServiceRegistry, fqdn
from .clusters import ClusterState, Clusters
from .config import ConfigStore
from .retries import CONNECT_FAILURE, PER_TRY_TIMEOUT, RESET, RetryPolicy
from .upstream import Overflow, UpstreamConnectError, UpstreamReply, UpstreamReset

# Hop-by-hop headers are never forwarded; content-length is recomputed.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection",
               "te", "trailer", "content-length", "host"}
# Response headers each proxy hop sets itself rather than passing on.
_REPLACED_RESPONSE_HEADERS = _HOP_BY_HOP | {"server", "date", "x-envoy-upstream-service-time"}
# Request headers Envoy consumes from in-mesh clients.
_CONSUMED = {"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms"}


def split_authority(authority: str, default_port: int = 80) -> tuple[str, int]:
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.lower(), int(port)
    return authority.lower(), default_port


def shadow_authority(authority: str) -> str:
    """Envoy's mirror Host: ``-shadow`` appended to the host part, the port kept."""
    host, sep, port = authority.rpartition(":")
    if sep and port.isdigit():
        return f"{host}-shadow:{port}"
    return f"{authority}-shadow"


@dataclass
class Outcome:
    """A response on its way back, with what the access log says about it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    flags: list[str]
    details: str = "via_upstream"
    upstream_host: str = "-"

    @classmethod
    def local(cls, reply: envoy.LocalReply, flags: Sequence[str] = ()) -> "Outcome":
        headers = list(reply.headers)
        if reply.body:
            headers.append(("content-type", "text/plain"))
        return cls(reply.status, headers, reply.body.encode(), [*flags, reply.flag],
                   reply.details)


class Sidecar:
    def __init__(self, pod: Pod, registry: ServiceRegistry, store: ConfigStore,
                 istio: IstioVersion):
        self.pod = pod
        self.registry = registry
        self.store = store
        self.istio = istio
        self.stats = envoy.Stats(delimited=istio.stat_delimiter)
        self.clusters = Clusters(store, self.stats, track_remaining=istio.track_remaining_cb)
        self.access_log = PodLog()  # the istio-proxy container's log: inbound and outbound
        self.outbound_port = 0
        self.inbound_ports: dict[int, int] = {}  # container port -> inbound listener port
        self._runners: list[web.AppRunner] = []
        self._session: aiohttp.ClientSession | None = None
        self._mirrors: set[asyncio.Task] = set()
        self.rng = random.Random()

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
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
        # Envoy resets the upstream side when the downstream goes away (a caller's timeout):
        # cancelling the handler passes that reset on, down to the app.
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[0][1]

    async def stop(self) -> None:
        for task in list(self._mirrors):
            task.cancel()
        for runner in self._runners:
            await runner.cleanup()
        self.clusters.close()
        if self._session:
            await self._session.close()

    # -- outbound --------------------------------------------------------------------
    async def _outbound(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        lower = {k.lower(): v for k, v in headers}
        if "x-request-id" not in lower:
            lower["x-request-id"] = str(uuid.uuid4())
            headers.append(("x-request-id", lower["x-request-id"]))
        log = envoy.AccessLogEntry(
            method=request.method, path=request.path_qs, status=0, authority=request.host,
            user_agent=lower.get("user-agent", "-"), request_id=lower["x-request-id"],
            bytes_received=len(body))
        outcome = await self._handle(request, headers, lower, body, log)
        log.status, log.details = outcome.status, outcome.details
        log.flags = ",".join(outcome.flags) or "-"
        log.upstream_host = outcome.upstream_host
        log.bytes_sent = len(outcome.body)
        log.duration_ms = int((time.monotonic() - started) * 1000)
        self.access_log.append(log.format())
        out = [(k, v) for k, v in outcome.headers if k.lower() not in _REPLACED_RESPONSE_HEADERS]
        if outcome.details == "via_upstream":
            out.append(("x-envoy-upstream-service-time", log.upstream_service_time))
        out.append(("server", "envoy"))
        return web.Response(status=outcome.status, body=outcome.body, headers=CIMultiDict(out))

    async def _handle(self, request, headers, lower, body, log) -> Outcome:
        authority = request.host
        host, port = split_authority(authority)
        service = self.registry.resolve(host, self.pod.namespace)
        if service is None or service.port(port) is None:
            log.upstream_cluster = "PassthroughCluster"
            return Outcome.local(envoy.PASSTHROUGH_FAILURE)
        view = routing.RequestView(
            method=request.method, path=request.path_qs, headers=lower, authority=authority,
            port=port, source_labels=self.pod.labels, source_namespace=self.pod.namespace)
        vs = routing.virtual_service_for(self.store, service.fqdn)
        if vs is None:  # Istio's default route: the Service itself, default retries
            return await self._route(None, service, port, "", request.method, request.path_qs,
                                     headers, lower, body, log, authority, namespace=None)
        rule = routing.select_route(vs, view)
        if rule is None or not rule.route:
            return Outcome.local(envoy.NO_ROUTE)
        log.route_name = rule.name or "-"
        flags: list[str] = []
        fault = rule.fault
        stat_prefix = self.stats.http(f"outbound_0.0.0.0_{port}") + "fault."
        if fault and fault.delay and self._roll(fault.delay.effective_percentage):
            self.stats.inc(stat_prefix + "delays_injected")
            flags.append("DI")
            # The fault filter holds the request before the router: the route timeout
            # starts only afterwards (docs/facts.md#fault-injection).
            await asyncio.sleep(fault.delay.fixed_delay.seconds)
        if fault and fault.abort and self._roll(fault.abort.effective_percentage):
            self.stats.inc(stat_prefix + "aborts_injected")
            return Outcome.local(envoy.fault_abort(fault.abort.http_status), flags)
        chosen = routing.pick_destination(rule.route, self.rng).destination
        host = fqdn(chosen.host, vs.key.namespace)
        target = self.registry.service_by_fqdn(host)
        target_port = routing.destination_port(target, chosen, port) or port
        ref = routing.ClusterRef(target_port, chosen.subset or "", host)
        labels = self._cluster_selector(target, ref)
        if labels is None:
            # istiod built no such cluster: Envoy's router answers 503 NC before it mirrors
            log.upstream_cluster = str(ref)
            return Outcome.local(envoy.CLUSTER_NOT_FOUND, flags)
        self._mirror(rule, vs.key.namespace, port, request.method, request.path_qs, headers,
                     authority, body)
        outcome = await self._route(rule, target, target_port, chosen.subset or "",
                                    request.method, request.path_qs, headers, lower, body, log,
                                    authority, namespace=vs.key.namespace)
        outcome.flags[:0] = flags
        return outcome

    def _cluster_selector(self, target: Service | None, ref: routing.ClusterRef):
        """The label selector of cluster ``ref``'s endpoints ({} for a whole Service), or None
        when istiod would not have built the cluster: its host is not a Service (a route
        may name any host) or no DestinationRule of the host defines its subset."""
        if target is None:
            return None
        if not ref.subset:
            return {}
        return routing.subset_labels(self.store, ref.host, ref.subset)

    def _roll(self, percentage: float) -> bool:
        return percentage > 0 and self.rng.random() * 100 < percentage

    async def _route(self, rule, target: Service, port: int, subset: str, method, path,
                     headers, lower, body, log, authority, namespace) -> Outcome:
        """The router: the route timeout around every try of the retry policy."""
        ref = routing.ClusterRef(port, subset, target.fqdn)
        log.upstream_cluster = str(ref)
        labels = self._cluster_selector(target, ref)
        if labels is None:
            return Outcome.local(envoy.CLUSTER_NOT_FOUND)
        timeout_s = rule.timeout.seconds if rule is not None and rule.timeout else None
        if "x-envoy-upstream-rq-timeout-ms" in lower:
            timeout_s = int(lower["x-envoy-upstream-rq-timeout-ms"]) / 1000 or None
        policy = RetryPolicy.for_route(rule.retries if rule is not None else None, timeout_s,
                                       self.istio)
        sent = [(k, v) for k, v in headers if k.lower() not in _CONSUMED]
        sent += [("host", authority), ("x-forwarded-proto", "http")]
        if timeout_s is not None:
            sent.append(("x-envoy-expected-rq-timeout-ms", str(int(timeout_s * 1000))))
        state = self.clusters.get(ref)
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                outcome = await self._tries(state, target, port, labels, policy, method, path,
                                            sent, body)
        except TimeoutError:
            self.stats.inc(self.stats.cluster(ref) + "upstream_rq_timeout")
            outcome = Outcome.local(envoy.TIMEOUT)
        log.upstream_service_time = str(int((time.monotonic() - started) * 1000))
        return outcome

    async def _tries(self, state: ClusterState, target: Service, port: int, labels,
                     policy: RetryPolicy, method, path, headers, body) -> Outcome:
        service_port = target.port(port)
        endpoints = {p.name: p for p in self.registry.endpoints(target, labels)
                     if p.sidecar and service_port and service_port.target_port in p.sidecar.inbound_ports}
        tried: list[str] = []
        retried = False
        attempt = 0
        while True:
            attempt += 1
            healthy = list(endpoints)
            if state.outlier is not None:
                healthy = state.outlier.healthy(healthy)
            if not healthy:
                self.stats.inc(self.stats.cluster(state.name) + "upstream_cx_none_healthy")
                return Outcome.local(envoy.NO_HEALTHY_UPSTREAM, ["URX"] if retried else [])
            fresh = [h for h in healthy if h not in tried] or healthy  # previous_hosts
            host = state.pick(fresh, self.rng)
            tried.append(host)
            pod = endpoints[host]
            address = ("127.0.0.1", pod.sidecar.inbound_ports[service_port.target_port])
            attempt_headers = [*headers, ("x-envoy-attempt-count", str(attempt))]
            failure, reply = None, None
            state.active[host] = state.active.get(host, 0) + 1
            try:
                async with asyncio.timeout(policy.per_try_timeout_s):
                    reply = await state.pool.request(address, method, path, attempt_headers, body)
            except Overflow:
                return Outcome.local(envoy.OVERFLOW)
            except UpstreamConnectError:
                failure = CONNECT_FAILURE
            except UpstreamReset:
                failure = RESET
            except TimeoutError:
                self.stats.inc(self.stats.cluster(state.name) + "upstream_rq_per_try_timeout")
                failure = PER_TRY_TIMEOUT
            finally:
                state.active[host] -= 1
                if retried:
                    state.pool.end_retry()
            if state.outlier is not None:
                state.outlier.record(host, reply.status if reply else None, list(endpoints))
            if reply is not None:
                self.stats.upstream_response(state.name, reply.status)
                retry = policy.retries_status(reply.status)
            else:
                retry = policy.retries_failure(failure)
            if retry and attempt <= policy.attempts and state.pool.try_begin_retry():
                self.stats.inc(self.stats.cluster(state.name) + "upstream_rq_retry")
                retried = True
                await asyncio.sleep(policy.backoff_s(attempt, self.rng))
                continue
            if retry and attempt > policy.attempts:
                self.stats.inc(self.stats.cluster(state.name) + "upstream_rq_retry_limit_exceeded")
            return self._final(reply, failure, retried, pod, service_port.target_port, state)

    def _final(self, reply: UpstreamReply | None, failure, retried, pod, port, state) -> Outcome:
        flags = ["URX"] if retried and (reply is None or reply.status >= 500) else []
        if reply is not None:
            if retried and reply.status < 500:
                self.stats.inc(self.stats.cluster(state.name) + "upstream_rq_retry_success")
            return Outcome(reply.status, reply.headers, reply.body, flags,
                           upstream_host=f"{pod.name}:{port}")
        if failure == CONNECT_FAILURE:
            outcome = Outcome.local(envoy.connect_failure(retried))
            outcome.flags = ["UF", "URX"] if retried else ["UF"]
            return outcome
        if failure == PER_TRY_TIMEOUT:
            return Outcome.local(envoy.TIMEOUT, flags)
        return Outcome.local(envoy.CONNECTION_RESET, flags)

    # -- mirroring -------------------------------------------------------------------
    def _mirror(self, rule, namespace: str, port: int, method, path, headers, authority, body):
        """Fire-and-forget copies to the mirror clusters; their responses are discarded."""
        targets = []
        if rule.mirror is not None:
            targets.append((rule.mirror, rule.effective_mirror_percentage))
        for policy in rule.mirrors:
            targets.append((policy.destination,
                            policy.percentage.value if policy.percentage is not None else 100.0))
        for destination, percentage in targets:
            if not self._roll(percentage):
                continue
            target = self.registry.service_by_fqdn(fqdn(destination.host, namespace))
            if target is None:
                continue
            mirrored_authority = (shadow_authority(authority) if self.istio.mirror_shadow_suffix
                                  else authority)
            sent = [(k, v) for k, v in headers if k.lower() not in _CONSUMED]
            sent += [("host", mirrored_authority), ("x-forwarded-proto", "http")]
            task = asyncio.get_running_loop().create_task(self._shadow(
                target, routing.destination_port(target, destination, port) or port,
                destination.subset or "", method, path, sent, body))
            self._mirrors.add(task)
            task.add_done_callback(self._mirrors.discard)

    async def _shadow(self, target: Service, port: int, subset: str, method, path, headers, body):
        ref = routing.ClusterRef(port, subset, target.fqdn)
        labels = routing.subset_labels(self.store, target.fqdn, subset) if subset else None
        if subset and labels is None:
            return
        no_retries = RetryPolicy(attempts=0, retry_on=frozenset(), retriable_status_codes=frozenset())
        await self._tries(self.clusters.get(ref), target, port, labels, no_retries, method,
                          path, headers, body)

    # -- inbound ---------------------------------------------------------------------
    def _inbound_handler(self, container_port: int):
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.monotonic()
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
                reply = envoy.connect_failure(retried=False)
                return web.Response(status=reply.status, body=reply.body.encode(),
                                    headers=CIMultiDict([("server", "istio-envoy"),
                                                         ("content-type", "text/plain")]))
            self.stats.upstream_response(cluster, status)
            service_time = str(int((time.monotonic() - start) * 1000))
            self.access_log.append(envoy.AccessLogEntry(
                method=request.method, path=request.path_qs, status=status,
                bytes_received=len(body), bytes_sent=len(resp_body),
                duration_ms=int((time.monotonic() - started) * 1000),
                upstream_service_time=service_time,
                user_agent=request.headers.get("user-agent", "-"),
                request_id=request.headers.get("x-request-id", "-"), authority=request.host,
                upstream_host=f"127.0.0.1:{container_port}", upstream_cluster=cluster).format())
            out = [(k, v) for k, v in resp_headers if k.lower() not in _REPLACED_RESPONSE_HEADERS]
            out += [("x-envoy-upstream-service-time", service_time), ("server", "istio-envoy")]
            return web.Response(status=status, body=resp_body, headers=CIMultiDict(out))
        return handle


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
