"""Prometheus' HTTP API as the labs use it on both meshes: instant queries and the targets
list, parsed from the API's JSON (https://prometheus.io/docs/prometheus/latest/querying/api/).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Mapping

from .mesh import MeshError

#: Envoy flushes the local mesh's metrics records every 250 ms (envoyproc's
#: --file-flush-interval-msec); on a cluster istio.stats counts at once
RECORD_FLUSH_S = 0.25

Sample = tuple[dict[str, str], float]


def _data(answer: Mapping[str, Any], what: str) -> Any:
    if answer.get("status") != "success":
        raise MeshError(f"Prometheus refused {what}: {answer.get('errorType', 'error')}: "
                        f"{answer.get('error', answer)}")
    return answer.get("data") or {}


def vector(answer: Mapping[str, Any], query: str = "the query") -> list[Sample]:
    """An instant query's result as (labels, value) pairs; a scalar is one pair with no
    labels."""
    data = _data(answer, query)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        return [(dict(item.get("metric") or {}), float(item["value"][1])) for item in result]
    if kind == "scalar":
        return [({}, float(result[1]))]
    raise MeshError(f"{query}: Prometheus answered a {kind}, not an instant vector")


#: the addon's job that scrapes the pods' :15020/stats/prometheus (the local mesh's too)
PODS_JOB = "kubernetes-pods"


def last_scrapes(answer: Mapping[str, Any],
                 pool: str | None = PODS_JOB) -> dict[str, tuple[str, float]]:
    """``/api/v1/targets``: each active target of scrape pool ``pool`` (None: all), by
    scrape URL -> (health, time of its last scrape in seconds since the epoch; 0 before the
    first)."""
    out = {}
    for target in _data(answer, "the targets list").get("activeTargets") or []:
        if pool is not None and target.get("scrapePool") != pool:
            continue
        stamp = target.get("lastScrape") or ""
        out[target.get("scrapeUrl", "?")] = (target.get("health", "unknown"), _epoch(stamp))
    return out


def _epoch(stamp: str) -> float:
    """RFC 3339 with nanoseconds (Go's), as seconds; 0 for Go's zero time or garbage."""
    if not stamp or stamp.startswith("0001-"):
        return 0.0
    head, rest = stamp[:19], stamp[19:]  # 2026-11-27T04:00:05, then .123456789Z or +00:00
    fraction = rest[1:].split("Z")[0].split("+")[0].split("-")[0] if rest.startswith(".") else ""
    zone = rest[1 + len(fraction):] if fraction else rest
    try:
        whole = datetime.fromisoformat(head + (zone.replace("Z", "+00:00") or "+00:00"))
    except ValueError:
        return 0.0
    return whole.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def settle_s(scrape_interval_s: float) -> float:
    """How long after traffic its counts may take to show in a query: the records' flush,
    then up to two scrape intervals (one may have just started before the records landed),
    and the same again as slack for a loaded machine."""
    return 2 * (RECORD_FLUSH_S + 2 * scrape_interval_s)


def total(samples: list[Sample]) -> float:
    return math.fsum(value for _, value in samples)


def key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def increase(before: list[Sample], after: list[Sample]) -> list[Sample]:
    """Each series' growth from ``before`` to ``after`` (a series absent before started at
    0; counters only grow, so a series gone since is left out)."""
    start = {key(labels): value for labels, value in before}
    return [(labels, value - start.get(key(labels), 0.0)) for labels, value in after
            if value - start.get(key(labels), 0.0) > 0]


def scraped_after(answer: Mapping[str, Any], moment: float) -> float:
    """From ``/api/v1/targets``: the time of the newest scrape once every pod target was
    scraped at or after ``moment`` (so an instant query at that time sees everything the
    proxies recorded before ``moment``); raises AssertionError saying which lag otherwise.
    A target whose scrape failed counts as scraped: a pod going away must not stall every
    check (its series then miss, and the count checks say so)."""
    scrapes = last_scrapes(answer)
    assert scrapes, (f"Prometheus has no {PODS_JOB} targets yet (its service discovery "
                     "hands new ones over every 5 s)")
    assert any(health == "up" for health, _ in scrapes.values()), "no pod target is up"
    late = sorted(url for url, (_, at) in scrapes.items() if at < moment)
    assert not late, f"{len(late)} of {len(scrapes)} targets not scraped since: {late[:3]}"
    return max(at for _, at in scrapes.values())
