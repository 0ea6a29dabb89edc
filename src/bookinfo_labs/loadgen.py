"""The result of a fortio-style load run, shared by both meshes.

On kube the numbers come from ``fortio load ... -json -`` run in the fortio pod
(``parse_fortio_json``); the local mesh's asyncio load client fills the same type. Steps
and reports only ever see a ``LoadResult``, and ``code_lines()`` prints the ``Code 200 :
17 (85.0 %)`` lines exactly as fortio does, so the lab handout's output can be shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: fortio's status "code" for a request that got no HTTP response (socket error)
CONNECTION_ERROR = -1


@dataclass
class LoadResult:
    """What a load run saw.

    ``codes`` maps an HTTP status to how many requests got it; ``-1`` counts requests
    that failed at the socket level (fortio's convention). Latency percentiles are in
    seconds (``None`` when the run did not report that percentile).
    """

    requests: int
    duration_s: float
    qps: float
    codes: dict[int, int] = field(default_factory=dict)
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    connections: int | None = None  # client connections (fortio's -c / NumThreads)
    sockets: int | None = None  # sockets opened, when the runner reports it

    def count(self, code: int) -> int:
        return self.codes.get(code, 0)

    def fraction(self, code: int) -> float:
        return self.count(code) / self.requests if self.requests else 0.0

    def code_lines(self) -> list[str]:
        """fortio's per-code summary lines: ``Code %3d : %d (%.1f %%)``, codes ascending."""
        total = self.requests or sum(self.codes.values())
        return [
            f"Code {code:3d} : {count} ({100.0 * count / total if total else 0.0:.1f} %)"
            for code, count in sorted(self.codes.items())
        ]

    def summary(self) -> str:
        """A short human line plus the code lines, for step output and reports."""
        head = f"{self.requests} calls in {self.duration_s:.3f} s, {self.qps:.1f} qps"
        if self.p50 is not None:
            head += f", p50 {self.p50 * 1000:.1f} ms"
        if self.p99 is not None:
            head += f", p99 {self.p99 * 1000:.1f} ms"
        return "\n".join([head, *self.code_lines()])


def parse_fortio_json(text: str | bytes) -> LoadResult:
    """Read fortio's ``-json -`` output (``fhttp.HTTPRunnerResults``) into a LoadResult.

    Keys used: ``RetCodes`` (status as a string key), ``DurationHistogram`` (``Count`` and
    ``Percentiles`` [{Percentile, Value}] in seconds), ``ActualQPS``, ``ActualDuration``
    (integer nanoseconds), ``NumThreads``, ``SocketCount``. Raises ValueError with the
    reason when the text is not a finished fortio run.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        start = text.strip()[:200]
        raise ValueError(f"fortio did not print JSON ({exc.msg}); output starts: {start!r}") from None
    if not isinstance(data, dict):
        raise ValueError(f"fortio JSON is a {type(data).__name__}, not an object")
    if "RetCodes" not in data:
        # a run that failed to start prints a jrpc.ServerReply-like object instead
        reason = data.get("Message") or data.get("Error") or "no RetCodes in the result"
        raise ValueError(f"fortio run did not complete: {reason}")

    codes: dict[int, int] = {}
    for key, value in (data.get("RetCodes") or {}).items():
        codes[int(key)] = codes.get(int(key), 0) + int(value)

    histogram: dict[str, Any] = data.get("DurationHistogram") or {}
    requests = int(histogram.get("Count") or sum(codes.values()))
    percentiles = {
        float(p["Percentile"]): float(p["Value"])
        for p in histogram.get("Percentiles") or []
        if "Percentile" in p and "Value" in p
    }
    duration_ns = data.get("ActualDuration") or 0
    sockets = data.get("SocketCount")
    if sockets is None and isinstance(data.get("Sockets"), list):
        sockets = sum(int(s) for s in data["Sockets"])
    return LoadResult(
        requests=requests,
        duration_s=float(duration_ns) / 1e9,
        qps=float(data.get("ActualQPS") or 0.0),
        codes=codes,
        p50=percentiles.get(50.0),
        p90=percentiles.get(90.0),
        p99=percentiles.get(99.0),
        connections=int(data["NumThreads"]) if data.get("NumThreads") else None,
        sockets=int(sockets) if sockets is not None else None,
    )
