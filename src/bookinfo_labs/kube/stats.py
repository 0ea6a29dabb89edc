"""Envoy's ``/stats`` text format, as ``pilot-agent request GET stats`` prints it.

One ``name: value`` per line, sorted by name::

    cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_pending_overflow: 21

Counters and gauges have integer values; histograms print quantiles
(``P0(nan,0) P25(...) ...``) or ``No recorded values`` and are left out. Names may
contain ``:`` themselves (listener addresses), so a line is split at its last ``": "``.
"""

from __future__ import annotations

#: the command run in the ``istio-proxy`` container (istio.io circuit-breaking task)
STATS_COMMAND = ["pilot-agent", "request", "GET", "stats"]


def parse_stats(text: str | bytes) -> dict[str, int]:
    """Counter and gauge values by Envoy stat name; histogram lines are skipped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.rstrip().rpartition(": ")
        if not sep:
            # "name:" with an empty value is not a number either
            continue
        value = value.strip()
        if value.lstrip("-").isdigit():
            stats[name.strip()] = int(value)
    return stats


def matching(stats: dict[str, int], *fragments: str) -> dict[str, int]:
    """The stats whose name contains every fragment (``grep httpbin | grep pending``)."""
    return {k: v for k, v in stats.items() if all(f in k for f in fragments)}
