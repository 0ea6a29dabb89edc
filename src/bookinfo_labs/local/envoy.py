"""What an Envoy sidecar says by itself: local replies, response flags, stats, access log.

Strings and names from docs/facts.md#envoy-local-replies (proxy-generated replies),
docs/facts.md#envoy-stats (stat names) and docs/facts.md#access-log-format (Istio's TEXT
access-log format).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LocalReply:
    status: int
    body: str
    flag: str  # Envoy response flag, e.g. "NR"
    details: str  # %RESPONSE_CODE_DETAILS%
    headers: tuple[tuple[str, str], ...] = ()


NO_ROUTE = LocalReply(404, "", "NR", "route_not_found")
CLUSTER_NOT_FOUND = LocalReply(503, "", "NC", "cluster_not_found")
NO_HEALTHY_UPSTREAM = LocalReply(503, "no healthy upstream", "UH", "no_healthy_upstream")
CONNECT_FAILURE = LocalReply(
    503,
    "upstream connect error or disconnect/reset before headers. retried and the latest "
    "reset reason: remote connection failure, transport failure reason: delayed connect "
    "error: Connection refused",
    "UF,URX",
    "upstream_reset_before_response_started{remote_connection_failure}",
)
OVERFLOW = LocalReply(
    503,
    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
    "UO",
    "upstream_reset_before_response_started{overflow}",
    (("x-envoy-overloaded", "true"),),
)
TIMEOUT = LocalReply(504, "upstream request timeout", "UT", "response_timeout")
CONNECTION_RESET = LocalReply(
    503,
    "upstream connect error or disconnect/reset before headers. reset reason: connection "
    "termination",
    "UC",
    "upstream_reset_before_response_started{connection_termination}",
)


def fault_abort(status: int) -> LocalReply:
    return LocalReply(status, "fault filter abort", "FI", "fault_filter_abort")


def connect_failure(retried: bool) -> LocalReply:
    """The reply after the last connect failure; "retried and" when retries were made."""
    if retried:
        return CONNECT_FAILURE
    return LocalReply(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: remote "
        "connection failure, transport failure reason: delayed connect error: Connection "
        "refused",
        "UF",
        "upstream_reset_before_response_started{remote_connection_failure}",
    )


# A Host that no Service, ServiceEntry or passthrough destination answers for.
PASSTHROUGH_FAILURE = LocalReply(
    503,
    "upstream connect error or disconnect/reset before headers. reset reason: connection "
    "failure",
    "UF",
    "upstream_reset_before_response_started{connection_failure}",
)


class Stats:
    """Envoy counters of one proxy, keyed by Envoy's stat names."""

    def __init__(self, delimited: bool = True) -> None:
        self._counters: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Istio ends alt_stat_name and stat_prefix in ";" from 1.23 on:
        # cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_retry
        self._end = ";." if delimited else "."

    def cluster(self, name: str) -> str:
        """The prefix of a cluster's stats, ``cluster.<name>;.``."""
        return f"cluster.{name}{self._end}"

    def http(self, stat_prefix: str) -> str:
        """The prefix of an HTTP connection manager's stats, ``http.<stat_prefix>;.``."""
        return f"http.{stat_prefix}{self._end}"

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def set(self, name: str, value: int) -> None:
        """A gauge: its current value."""
        with self._lock:
            self._counters[name] = value

    def upstream_response(self, cluster: str, status: int) -> None:
        prefix = self.cluster(cluster)
        for suffix in ("upstream_rq_total", "upstream_rq_completed", f"upstream_rq_{status}",
                       f"upstream_rq_{status // 100}xx"):
            self.inc(prefix + suffix)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counters.items()))


@dataclass
class AccessLogEntry:
    """One line of Istio's default TEXT access log."""

    method: str
    path: str
    status: int
    flags: str = "-"
    details: str = "via_upstream"
    bytes_received: int = 0
    bytes_sent: int = 0
    duration_ms: int = 0
    upstream_service_time: str = "-"
    forwarded_for: str = "-"
    user_agent: str = "-"
    request_id: str = "-"
    authority: str = "-"
    upstream_host: str = "-"
    upstream_cluster: str = "-"
    route_name: str = "-"
    started: float = field(default_factory=time.time)

    def format(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.started))
        millis = int((self.started % 1) * 1000)
        return (
            f'[{stamp}.{millis:03d}Z] "{self.method} {self.path} HTTP/1.1" {self.status} '
            f'{self.flags} {self.details} - "-" {self.bytes_received} {self.bytes_sent} '
            f'{self.duration_ms} {self.upstream_service_time} "{self.forwarded_for}" '
            f'"{self.user_agent}" "{self.request_id}" "{self.authority}" '
            f'"{self.upstream_host}" {self.upstream_cluster} - - - - {self.route_name}'
        )
