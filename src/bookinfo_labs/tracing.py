"""Traces as both meshes' tracing backends return them, in one model.

The local mesh's collector speaks Zipkin's v2 API (``/api/v2/traces``: lists of spans);
a cluster's Jaeger addon its query API (``/jaeger/api/traces``: ``{"data": [...]}`` with
``processes``). Envoy's Zipkin tracer names a span's service after the proxy's node
cluster (``productpage.default``) and tags it with ``upstream_cluster``, ``node_id``,
``http.status_code`` and Istio's ``istio.canonical_service`` / ``istio.canonical_revision``
(docs/facts.md#tracing).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlencode

import yaml


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str  # "CLIENT" (an outbound call), "SERVER" (an inbound one), or ""
    service: str  # the reporting proxy's service name, ``productpage.default``
    start_us: int = 0
    duration_us: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def app(self) -> str:
        """The reporting workload's app: its canonical service tag, else the service
        name before the namespace."""
        return self.tags.get("istio.canonical_service") or self.service.split(".")[0]

    @property
    def version(self) -> str:
        """The reporting workload's version (its canonical revision)."""
        return self.tags.get("istio.canonical_revision", "")

    def describe(self) -> str:
        return (f"{self.kind or 'span'} {self.name} by {self.service}"
                f"{' ' + self.version if self.version else ''}"
                f" ({self.tags.get('upstream_cluster', '-')})")


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]

    def children(self, span: Span) -> list[Span]:
        return [s for s in self.spans if s.parent_id == span.span_id]

    def calls(self) -> list[tuple[Span, Span]]:
        """(client span, server span) of every call that both sides reported: a client span
        whose child is the callee's server span (Envoy's Zipkin tracer, shared span context
        off, gives each side its own span)."""
        return [(client, server) for client in self.spans if client.kind == "CLIENT"
                for server in self.children(client) if server.kind == "SERVER"]

    def edges(self) -> list[tuple[str, str, str]]:
        """(caller app, callee app, callee version) per call, in start order."""
        pairs = sorted(self.calls(), key=lambda p: p[0].start_us)
        return [(c.app, s.app, s.version) for c, s in pairs]

    def describe(self) -> str:
        return f"trace {self.trace_id}: " + "; ".join(
            s.describe() for s in sorted(self.spans, key=lambda s: s.start_us))


def normalized_id(trace_id: str) -> str:
    """A trace id as both backends compare them: lower-case, 32 hex digits."""
    return trace_id.lower().rjust(32, "0")


def from_zipkin(traces: list[list[dict[str, Any]]]) -> list[Trace]:
    """Zipkin v2 JSON (``GET /api/v2/traces``) as Traces."""
    out = []
    for spans in traces:
        if not spans:
            continue
        out.append(Trace(normalized_id(spans[0]["traceId"]), tuple(
            Span(trace_id=normalized_id(s["traceId"]), span_id=s["id"].lower(),
                 parent_id=(s.get("parentId") or "").lower() or None, name=s.get("name", ""),
                 kind=s.get("kind", ""),
                 service=(s.get("localEndpoint") or {}).get("serviceName", ""),
                 start_us=int(s.get("timestamp") or 0), duration_us=int(s.get("duration") or 0),
                 tags=dict(s.get("tags") or {}))
            for s in spans)))
    return out


def from_jaeger(body: Mapping[str, Any]) -> list[Trace]:
    """Jaeger's query API (``GET /api/traces``: ``{"data": [...]}``) as Traces. A span's
    kind and tags are Jaeger tags (``span.kind`` server/client), its parent a CHILD_OF
    reference, its service the process's."""
    out = []
    for trace in body.get("data") or []:
        processes = trace.get("processes") or {}
        spans = []
        for s in trace.get("spans") or []:
            tags = {t["key"]: str(t.get("value", "")) for t in s.get("tags") or []}
            parent = next((r["spanID"] for r in s.get("references") or []
                           if r.get("refType") == "CHILD_OF"), None)
            spans.append(Span(
                trace_id=normalized_id(s["traceID"]), span_id=s["spanID"].lower().rjust(16, "0"),
                parent_id=parent.lower().rjust(16, "0") if parent else None,
                name=s.get("operationName", ""), kind=tags.pop("span.kind", "").upper(),
                service=(processes.get(s.get("processID"), {}) or {}).get("serviceName", ""),
                start_us=int(s.get("startTime") or 0), duration_us=int(s.get("duration") or 0),
                tags=tags))
        out.append(Trace(normalized_id(trace["traceID"]), tuple(spans)))
    return out


#: where a cluster's Jaeger addon answers queries (Service tracing, QUERY_BASE_PATH /jaeger)
JAEGER_QUERY = "http://tracing.istio-system:80/jaeger/api/traces"
#: where the local mesh's Zipkin stand-in answers them (Service zipkin)
ZIPKIN_QUERY = "http://zipkin.istio-system:9411/api/v2/traces"


def jaeger_query_url(service: str, limit: int) -> str:
    return f"{JAEGER_QUERY}?{urlencode({'service': service, 'limit': limit})}"


def zipkin_query_url(service: str, limit: int) -> str:
    return f"{ZIPKIN_QUERY}?{urlencode({'serviceName': service, 'limit': limit})}"


def trace_query_command(mesh: str, client: str, trace_id: str,
                        namespace: str = "default") -> str:
    """How a learner finds one trace by its id: Jaeger's query API on a cluster (its UI's
    search does the same), the Zipkin API of the local mesh's collector."""
    url = (f"{JAEGER_QUERY}/{trace_id}" if mesh == "kube"
           else f"{ZIPKIN_QUERY.removesuffix('/traces')}/trace/{trace_id}")
    return shlex.join(["kubectl", "exec", "-n", namespace, f"deploy/{client}", "--",
                       "curl", "-s", url])


def mesh_config_commands(fields: Mapping[str, Any], namespace: str = "default") -> list[str]:
    """meshConfig fields as the tracing handout (L27) sets them: an IstioOperator overlay on
    the install's own file."""
    del namespace
    overlay = yaml.safe_dump({"apiVersion": "install.istio.io/v1alpha1", "kind": "IstioOperator",
                              "spec": {"meshConfig": dict(fields)}}, sort_keys=False)
    return ["cat <<EOF > mesh-config.yaml", *overlay.splitlines(), "EOF",
            "istioctl install -y -f manifests/istio/istio-operator.yaml -f mesh-config.yaml"]
