"""An Envoy cluster's HTTP/1.1 connection pool and its circuit breaker.

The pool owns real TCP connections to the cluster's endpoints (HTTP/1.1 framing by h11), so
the circuit breaker counts what Envoy counts (docs/facts.md#circuit-breaking):

- a request that cannot be put on a ready, idle connection at once is *pending* until one
  is ready (also while a new connection is being opened for it);
- if ``pending >= http1MaxPendingRequests`` it overflows at once: 503, flag UO,
  ``upstream_rq_pending_overflow``;
- at most ``tcp.maxConnections`` connections are open or opening; past that a pending
  request waits and ``upstream_cx_overflow`` counts it;
- ``http.maxRequestsPerConnection`` closes a connection after that many requests (1: no
  keep-alive, so each request opens a connection and passes through pending);
- ``http2MaxRequests`` caps active requests (``upstream_rq_overflow``).

With the circuit-breaking lab's rule (1 connection, 1 pending, 1 request per connection)
a client with two connections overflows whenever its next request arrives while the
other one still waits for a fresh connection: the race the lab's fortio runs show.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Sequence

import h11

from .envoy import Stats

UNLIMITED = 2**32 - 1  # Istio's default for every threshold

# Envoy reports a cluster's counters from the start, at 0.
CLUSTER_COUNTERS = (
    "upstream_cx_total", "upstream_cx_connect_fail", "upstream_cx_overflow", "upstream_cx_destroy",
    "upstream_rq_total", "upstream_rq_completed", "upstream_rq_timeout", "upstream_rq_per_try_timeout",
    "upstream_rq_pending_total", "upstream_rq_pending_overflow", "upstream_rq_pending_failure_eject",
    "upstream_rq_overflow", "upstream_rq_retry", "upstream_rq_retry_success",
    "upstream_rq_retry_overflow", "upstream_rq_retry_limit_exceeded",
)


@dataclass(frozen=True)
class PoolLimits:
    max_connections: int = UNLIMITED
    max_pending: int = UNLIMITED
    max_requests: int = UNLIMITED
    max_requests_per_connection: int = 0  # 0: unlimited
    max_retries: int = UNLIMITED
    connect_timeout_s: float = 10.0

    @classmethod
    def from_connection_pool(cls, pool) -> "PoolLimits":
        """From a DestinationRule ``trafficPolicy.connectionPool`` (None: Istio's defaults)."""
        if pool is None:
            return cls()
        tcp, http = pool.tcp, pool.http
        return cls(
            max_connections=_or(tcp and tcp.max_connections, UNLIMITED),
            max_pending=_or(http and http.http1_max_pending_requests, UNLIMITED),
            max_requests=_or(http and http.http2_max_requests, UNLIMITED),
            max_requests_per_connection=_or(http and http.max_requests_per_connection, 0),
            max_retries=_or(http and http.max_retries, UNLIMITED),
            connect_timeout_s=tcp.connect_timeout.seconds if tcp and tcp.connect_timeout else 10.0,
        )


def _or(value, default):
    return default if value is None else value


class Overflow(Exception):
    """The circuit breaker rejected the request (Envoy: local reply, flag UO)."""


class UpstreamConnectError(ConnectionError):
    """The TCP connection to the endpoint could not be opened (Envoy: flag UF)."""


class UpstreamReset(ConnectionError):
    """The connection broke before a complete response (Envoy: flag UC)."""


@dataclass
class UpstreamReply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Connection:
    """One HTTP/1.1 connection to an endpoint."""

    def __init__(self, address: tuple[str, int], reader, writer):
        self.address = address
        self.reader, self.writer = reader, writer
        self.protocol = h11.Connection(h11.CLIENT)
        self.requests = 0

    @classmethod
    async def open(cls, address: tuple[str, int], timeout_s: float) -> "Connection":
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(*address)
        except (OSError, TimeoutError) as exc:
            raise UpstreamConnectError(f"connect to {address[0]}:{address[1]}: {exc}") from exc
        return cls(address, reader, writer)

    async def exchange(self, method: str, target: str, headers: Sequence[tuple[str, str]],
                       body: bytes) -> UpstreamReply:
        self.requests += 1
        sent = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
        sent.append(("content-length", str(len(body))))
        data = self.protocol.send(h11.Request(method=method, target=target, headers=sent))
        if body:
            data += self.protocol.send(h11.Data(data=body))
        data += self.protocol.send(h11.EndOfMessage())
        try:
            self.writer.write(data)
            await self.writer.drain()
            response, chunks = None, []
            while True:
                event = self.protocol.next_event()
                if event is h11.NEED_DATA:
                    received = await self.reader.read(65536)
                    self.protocol.receive_data(received)
                    continue
                if isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise UpstreamReset("upstream closed the connection before the response ended")
        except (OSError, h11.RemoteProtocolError) as exc:
            raise UpstreamReset(str(exc)) from exc
        return UpstreamReply(
            status=response.status_code,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers],
            body=b"".join(chunks))

    @property
    def reusable(self) -> bool:
        if self.protocol.our_state is h11.DONE and self.protocol.their_state is h11.DONE:
            try:
                self.protocol.start_next_cycle()
            except h11.LocalProtocolError:
                return False
        return self.protocol.our_state is h11.IDLE and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class ConnectionPool:
    """The connection pool of one cluster in one client proxy, with its circuit breaker."""

    def __init__(self, name: str, limits: PoolLimits, stats: Stats, *, track_remaining: bool):
        self.name = name
        self.limits = limits
        self.stats = stats
        self.track_remaining = track_remaining
        self.open_connections = 0  # open or opening
        self.active_requests = 0
        self.active_retries = 0
        self.pending: collections.deque[asyncio.Future] = collections.deque()
        self.idle: dict[tuple[str, int], list[Connection]] = collections.defaultdict(list)
        self.connecting: collections.Counter[tuple[str, int]] = collections.Counter()
        for counter in CLUSTER_COUNTERS:
            stats.inc(self._stat(counter), 0)
        self._gauges()

    def _stat(self, suffix: str) -> str:
        return f"{self.stats.cluster(self.name)}{suffix}"

    def _gauges(self) -> None:
        limits, set_ = self.limits, self.stats.set
        set_(self._stat("upstream_rq_pending_active"), len(self.pending))
        set_(self._stat("upstream_rq_active"), self.active_requests)
        set_(self._stat("upstream_cx_active"), self.open_connections)
        for priority in ("default", "high"):
            prefix = f"circuit_breakers.{priority}."
            set_(self._stat(prefix + "cx_open"), int(self.open_connections >= limits.max_connections))
            set_(self._stat(prefix + "cx_pool_open"), 0)
            set_(self._stat(prefix + "rq_pending_open"), int(len(self.pending) >= limits.max_pending))
            set_(self._stat(prefix + "rq_open"), int(self.active_requests >= limits.max_requests))
            set_(self._stat(prefix + "rq_retry_open"), int(self.active_retries >= limits.max_retries))
        if self.track_remaining:
            prefix = "circuit_breakers.default."
            set_(self._stat(prefix + "remaining_cx"), max(0, limits.max_connections - self.open_connections))
            set_(self._stat(prefix + "remaining_pending"), max(0, limits.max_pending - len(self.pending)))
            set_(self._stat(prefix + "remaining_rq"), max(0, limits.max_requests - self.active_requests))
            set_(self._stat(prefix + "remaining_retries"), max(0, limits.max_retries - self.active_retries))

    # -- retries budget (http.maxRetries) --------------------------------------------
    def try_begin_retry(self) -> bool:
        if self.active_retries >= self.limits.max_retries:
            self.stats.inc(self._stat("upstream_rq_retry_overflow"))
            return False
        self.active_retries += 1
        self._gauges()
        return True

    def end_retry(self) -> None:
        self.active_retries -= 1
        self._gauges()

    # -- requests --------------------------------------------------------------------
    async def request(self, address: tuple[str, int], method: str, target: str,
                      headers: Sequence[tuple[str, str]], body: bytes) -> UpstreamReply:
        """Send one request to ``address`` through the pool; raises Overflow, connect/reset errors."""
        if self.active_requests >= self.limits.max_requests:
            self.stats.inc(self._stat("upstream_rq_overflow"))
            raise Overflow()
        connection = await self._acquire(address)
        self.active_requests += 1
        self._gauges()
        try:
            reply = await connection.exchange(method, target, headers, body)
        except BaseException:
            connection.close()
            self._closed()
            raise
        finally:
            self.active_requests -= 1
            self._gauges()
        self._release(connection)
        return reply

    async def _acquire(self, address: tuple[str, int]) -> Connection:
        idle = self.idle[address]
        while idle:
            connection = idle.pop()
            if connection.reusable:
                return connection
            connection.close()
            self._closed()
        if len(self.pending) >= self.limits.max_pending:
            self.stats.inc(self._stat("upstream_rq_pending_overflow"))
            raise Overflow()
        waiter = asyncio.get_running_loop().create_future()
        waiter.address = address  # type: ignore[attr-defined]
        self.pending.append(waiter)
        self.stats.inc(self._stat("upstream_rq_pending_total"))
        self._gauges()
        self._open_if_room()
        try:
            return await waiter
        finally:
            if waiter in self.pending:
                self.pending.remove(waiter)
            self._gauges()

    def _open_if_room(self) -> None:
        """Open connections for pending requests while the circuit breaker allows it."""
        for address in list(dict.fromkeys(w.address for w in self.pending)):
            needed = sum(1 for w in self.pending if w.address == address) - self.connecting[address]
            for _ in range(needed):
                if self.open_connections >= self.limits.max_connections:
                    self.stats.inc(self._stat("upstream_cx_overflow"))
                    self._gauges()
                    return
                self.open_connections += 1
                self.connecting[address] += 1
                self.stats.inc(self._stat("upstream_cx_total"))
                asyncio.get_running_loop().create_task(self._connect(address))
        self._gauges()

    async def _connect(self, address: tuple[str, int]) -> None:
        try:
            connection = await Connection.open(address, self.limits.connect_timeout_s)
        except UpstreamConnectError as exc:
            self.connecting[address] -= 1
            self.stats.inc(self._stat("upstream_cx_connect_fail"))
            waiter = next((w for w in self.pending if w.address == address and not w.done()), None)
            if waiter is not None:
                self.pending.remove(waiter)
                self.stats.inc(self._stat("upstream_rq_pending_failure_eject"))
                waiter.set_exception(exc)
            self._closed()
            return
        self.connecting[address] -= 1
        self._hand_over(connection)

    def _hand_over(self, connection: Connection) -> None:
        """Give a ready connection to the oldest request pending for its endpoint."""
        for waiter in list(self.pending):
            if waiter.address == connection.address and not waiter.done():
                self.pending.remove(waiter)
                waiter.set_result(connection)
                self._gauges()
                return
        self.idle[connection.address].append(connection)

    def _release(self, connection: Connection) -> None:
        per_connection = self.limits.max_requests_per_connection
        if (per_connection and connection.requests >= per_connection) or not connection.reusable:
            connection.close()
            self._closed()
            return
        self._hand_over(connection)

    def _closed(self) -> None:
        self.open_connections -= 1
        self.stats.inc(self._stat("upstream_cx_destroy"))
        self._open_if_room()

    def close(self) -> None:
        for connections in self.idle.values():
            for connection in connections:
                connection.close()
        self.idle.clear()
