"""Istio's access log (meshConfig.accessLogFile, or the Telemetry API's ``envoy``
provider), one line parsed into fields, whichever ``accessLogEncoding`` wrote it: TEXT or
JSON.

The formats (docs/facts.md#access-log-format, pilot/pkg/model/telemetry_logging.go) are
the same in a real istio-proxy and in the local mesh's sidecars, so one parser serves
both. A JSON line's values may be strings (Istio 1.5's logs quoted every one) or numbers
and null (Envoy's typed JSON): both read the same; a missing value reads ``-`` as in TEXT.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

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
#: the TEXT fields by the JSON key Istio gives them (EnvoyJSONLogFormatIstio)
_JSON_KEYS = {
    "start": "start_time", "method": "method", "path": "path", "protocol": "protocol",
    "status": "response_code", "flags": "response_flags", "details": "response_code_details",
    "authority": "authority", "request_id": "request_id", "user_agent": "user_agent",
    "upstream_host": "upstream_host", "upstream_cluster": "upstream_cluster",
    "duration_ms": "duration", "route_name": "route_name",
    "downstream_remote": "downstream_remote_address",
}


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
    route_name: str = "-"
    downstream_remote: str = "-"
    encoding: str = "TEXT"  # or "JSON": how the line was written

    @property
    def flag_set(self) -> set[str]:
        """The response flags, one by one (Envoy joins several with ``,``); none is ``-``."""
        return set() if self.flags == "-" else set(self.flags.split(","))


def parse_line(line: str) -> AccessLogEntry | None:
    """One access-log line, TEXT or JSON, or None for a line of another kind (startup
    messages, the app's own log...)."""
    text = line.strip()
    if text.startswith("{"):
        return _parse_json(text)
    match = _LINE.match(text)
    if match is None:
        return None
    g = match.groupdict()
    return AccessLogEntry(
        start=g["start"], method=g["method"], path=g["path"], protocol=g["protocol"],
        status=int(g["status"]), flags=g["flags"], details=g["details"],
        authority=g["authority"], request_id=g["request_id"], user_agent=g["user_agent"],
        upstream_host=g["upstream_host"], upstream_cluster=g["upstream_cluster"],
        duration_ms=int(g["duration_ms"]), route_name=g["route_name"],
        downstream_remote=g["downstream_remote"])


def _parse_json(text: str) -> AccessLogEntry | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not {"response_code", "start_time"} <= set(record):
        return None  # JSON, but not an access-log record
    values = {name: _text(record.get(key)) for name, key in _JSON_KEYS.items()}
    try:
        status, duration = int(values.pop("status")), int(values.pop("duration_ms"))
    except ValueError:
        return None
    return AccessLogEntry(status=status, duration_ms=duration, encoding="JSON", **values)


def _text(value: Any) -> str:
    """A JSON value as TEXT would print it: null (an absent value) is ``-``."""
    if value is None or value == "":
        return "-"
    return str(value)
