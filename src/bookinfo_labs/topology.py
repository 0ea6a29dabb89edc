"""The service graph Kiali draws (its ``versionedApp`` graph), computed from Istio's
standard metrics the way Kiali computes it: from ``istio_requests_total`` by source and
destination workload, destination version and response code.

A node is an app at a version (its canonical service and revision); an edge goes from the
calling app version to the called app version, with the requests counted on it, their
rate over the observed window and the share answered 5xx (or not answered: code 0).
Requests are counted where the client reports them (``reporter="source"``): what the
caller saw, aborts injected in its sidecar included; requests from callers without a
sidecar are only reported by the destination, and are taken from there.
Facts: docs/facts.md#service-graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .promql import Sample

UNKNOWN = "unknown"
#: what the graph sums istio_requests_total by
GROUPING = ("reporter", "source_workload", "source_canonical_service",
            "source_canonical_revision", "destination_workload", "destination_canonical_service",
            "destination_service_name", "destination_version", "response_code")
QUERY = f"sum by ({', '.join(GROUPING)}) (istio_requests_total)"


@dataclass(frozen=True)
class Edge:
    source: str  # the calling app (canonical service)
    source_version: str
    destination: str  # the called app, else the service asked for
    version: str
    requests: int
    errors: int
    rate: float  # requests per second over the window

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def figure(self) -> dict:
        return {"source": self.source, "source_version": self.source_version,
                "destination": self.destination, "version": self.version,
                "requests": self.requests, "rate": round(self.rate, 3),
                "error_share": round(self.error_share, 4)}

    def __str__(self) -> str:
        return (f"{self.source} {self.source_version} -> {self.destination} {self.version}: "
                f"{self.requests} requests, {self.error_share:.0%} errors")


def _is_error(code: str) -> bool:
    return code == "0" or code.startswith("5")


class ServiceGraph:
    """Edges between app versions, from the requests counted over a window."""

    def __init__(self, edges: Iterable[Edge]):
        self.edges = sorted(edges, key=lambda e: (e.source, e.source_version, e.destination,
                                                  e.version))

    @classmethod
    def from_requests(cls, samples: list[Sample], window_s: float) -> "ServiceGraph":
        """``samples``: the increase of :data:`QUERY`'s series over ``window_s`` seconds."""
        counts: dict[tuple[str, str, str, str], list[float]] = {}
        for labels, value in samples:
            reporter = labels.get("reporter")
            unseen_source = labels.get("source_workload", UNKNOWN) == UNKNOWN
            # the client's report; the server's only where no client sidecar reported
            if reporter != ("destination" if unseen_source else "source"):
                continue
            destination = labels.get("destination_canonical_service", UNKNOWN)
            if destination == UNKNOWN:
                destination = labels.get("destination_service_name", UNKNOWN)
            edge = (labels.get("source_canonical_service", UNKNOWN),
                    labels.get("source_canonical_revision", UNKNOWN), destination,
                    labels.get("destination_version", UNKNOWN))
            total = counts.setdefault(edge, [0.0, 0.0])
            total[0] += value
            if _is_error(labels.get("response_code", "")):
                total[1] += value
        return cls(Edge(*edge, requests=round(n), errors=round(errors),
                        rate=n / window_s if window_s > 0 else 0.0)
                   for edge, (n, errors) in counts.items() if round(n) > 0)

    def calls(self, source: str, destination: str, *, source_version: str | None = None,
              version: str | None = None) -> list[Edge]:
        """The edges from ``source`` (at ``source_version``) to ``destination`` (at
        ``version``); None matches any version."""
        return [e for e in self.edges if e.source == source and e.destination == destination
                and source_version in (None, e.source_version) and version in (None, e.version)]

    def callers(self, destination: str, version: str | None = None) -> list[Edge]:
        return [e for e in self.edges if e.destination == destination
                and version in (None, e.version)]

    def figure(self) -> list[dict]:
        return [e.figure() for e in self.edges]

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.edges) or "(no edges)"


#: one claim of a graph description: "productpage calls reviews v2", "reviews v2 calls
#: ratings", "nothing calls reviews v1"
_CLAIM = re.compile(r"^(?:(?P<nothing>nothing)|(?P<source>[\w-]+)(?: (?P<source_version>v\d+))?)"
                    r" calls (?P<destination>[\w-]+)(?: (?P<version>v\d+))?$")


@dataclass(frozen=True)
class Claim:
    source: str | None  # None: "nothing calls ..."
    source_version: str | None
    destination: str
    version: str | None

    def holds(self, graph: ServiceGraph) -> str | None:
        """None when the graph shows it, else what the graph shows instead."""
        if self.source is None:
            found = graph.callers(self.destination, self.version)
            return (f"{self} is false: " + "; ".join(map(str, found))) if found else None
        found = graph.calls(self.source, self.destination, source_version=self.source_version,
                            version=self.version)
        if found:
            return None
        near = graph.calls(self.source, self.destination)
        return f"{self} is false" + (f"; seen: {'; '.join(map(str, near))}" if near else
                                     " (no such edge)")

    def __str__(self) -> str:
        source = "nothing" if self.source is None else " ".join(
            filter(None, (self.source, self.source_version)))
        return f"{source} calls {' '.join(filter(None, (self.destination, self.version)))}"


def parse_claims(text: str) -> list[Claim]:
    """``productpage calls reviews v2, reviews v2 calls ratings, nothing calls reviews v1``."""
    claims = []
    for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", text.strip()):
        match = _CLAIM.match(part.strip())
        if match is None:
            raise ValueError(f"cannot read {part!r} as a graph claim: write "
                             "'<app> [vN] calls <app> [vN]' or 'nothing calls <app> [vN]'")
        claims.append(Claim(None if match["nothing"] else match["source"],
                            match["source_version"], match["destination"], match["version"]))
    return claims
