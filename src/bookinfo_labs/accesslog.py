"""Istio's default TEXT access log (meshConfig.accessLogFile), one line parsed into fields.

The format (docs/facts.md#access-log-format, pilot/pkg/model/telemetry_logging.go) is the
same in a real istio-proxy and in the local mesh's sidecars, so one parser serves both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(
    r'^\[(?P<start>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]+)" '
    r"(?P<status>\d+) (?P<flags>\S+) (?P<details>\S+) (?P<termination>\S+) "
    r'"(?P<transport_failure>[^"]*)" (?P<bytes_received>\d+) (?P<bytes_sent>\d+) '
    r"(?P<duration_ms>\d+) (?P<upstream_service_time>\S+) "
    r'"(?P<forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" '
    r'"(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" (?P<upstream_cluster>\S+) '
    r"(?P<upstream_local>\S+) (?P<downstream_local>\S+) (?P<downstream_remote>\S+) "
    r"(?P<server_name>\S+) (?P<route_name>\S+)\s*$"
)


@dataclass(frozen=True)
class AccessLogEntry:
    start: str
    method: str
    path: str
    protocol: str
    status: int
    flags: str
    details: str
    authority: str
    request_id: str
    user_agent: str
    upstream_host: str
    upstream_cluster: str
    duration_ms: int


def parse_line(line: str) -> AccessLogEntry | None:
    """One access-log line, or None for a line in another format (startup messages...)."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    g = match.groupdict()
    return AccessLogEntry(
        start=g["start"], method=g["method"], path=g["path"], protocol=g["protocol"],
        status=int(g["status"]), flags=g["flags"], details=g["details"],
        authority=g["authority"], request_id=g["request_id"], user_agent=g["user_agent"],
        upstream_host=g["upstream_host"], upstream_cluster=g["upstream_cluster"],
        duration_ms=int(g["duration_ms"]))
