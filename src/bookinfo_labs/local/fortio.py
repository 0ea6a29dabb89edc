"""A fortio-style load client for the local mesh.

``fortio load -c C -n N -qps Q URL`` in the fortio pod: C client connections ("threads"),
each sending its share of the N calls one after another on one keep-alive connection, at
Q calls per second in total (0: as fast as possible). Its connections are captured by the
pod's sidecar like every other outbound connection. The result has the shape the kube
backend parses from ``fortio load -json -``.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from ..loadgen import CONNECTION_ERROR, LoadResult


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


async def run_load(target: str, host: str, *, connections: int, requests: int,
                   qps: float = 0.0, source_ip: str | None = None) -> LoadResult:
    """``target``: the URL of the pod's outbound listener for the port; ``host``: the name
    fortio was given, sent as Host (the sidecar routes by it)."""
    if connections < 1 or requests < 1:
        raise ValueError("a load needs at least one connection and one request")
    headers = {"Host": host, "User-Agent": "fortio.org/fortio-1.69.3"}
    local = (source_ip, 0) if source_ip else None
    shares = [requests // connections + (1 if i < requests % connections else 0)
              for i in range(connections)]
    codes: dict[int, int] = {}
    latencies: list[float] = []
    per_thread_interval = connections / qps if qps > 0 else 0.0
    started = time.monotonic()

    async def thread(calls: int) -> None:
        connector = aiohttp.TCPConnector(limit=1, local_addr=local)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                         skip_auto_headers=("User-Agent",)) as session:
            for call in range(calls):
                if per_thread_interval:
                    # Rate control of the load generator itself, as fortio's -qps does.
                    due = started + call * per_thread_interval
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                sent = time.monotonic()
                try:
                    async with session.get(target, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = CONNECTION_ERROR
                latencies.append(time.monotonic() - sent)
                codes[status] = codes.get(status, 0) + 1

    await asyncio.gather(*(thread(calls) for calls in shares if calls))
    duration = time.monotonic() - started
    return LoadResult(requests=requests, duration_s=duration, qps=requests / duration,
                      codes=dict(sorted(codes.items())), p50=_quantile(latencies, 0.5),
                      p90=_quantile(latencies, 0.9), p99=_quantile(latencies, 0.99),
                      connections=connections, sockets=connections)
