"""A stand-in for the Zipkin server of Istio's tracing addon (samples/addons/extras/
zipkin.yaml, image openzipkin/zipkin-slim): the part of Zipkin's v2 HTTP API the labs use,
spans kept in memory.

Envoy's Zipkin tracer POSTs JSON v2 spans to ``/api/v2/spans``; the labs read them back
with ``GET /api/v2/services``, ``/api/v2/traces?serviceName=&limit=`` and
``/api/v2/trace/{traceId}``, as they would from a real Zipkin. It checks what it is sent
and keeps it; it draws no conclusions (no dependency graph, no UI).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict

from aiohttp import web

from .apps.base import AppContext

#: how many traces it keeps (the oldest go first), as Zipkin's in-memory storage's
#: MEM_MAX_SPANS bounds its memory
MAX_TRACES = 5000
_HEX_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")


def normalized_trace_id(trace_id: str) -> str:
    """Zipkin's key for a trace: lower-case hex, without leading zero padding to 32."""
    trace_id = trace_id.lower()
    return trace_id[16:] if len(trace_id) == 32 and trace_id.startswith("0" * 16) else trace_id


class SpanStore:
    """Spans by trace, in arrival order of their traces."""

    def __init__(self, max_traces: int = MAX_TRACES) -> None:
        self.traces: OrderedDict[str, list[dict]] = OrderedDict()
        self.max_traces = max_traces

    def accept(self, spans: object) -> None:
        """Keep a POSTed list of v2 spans; ValueError (and nothing kept) when one is not a
        span."""
        if not isinstance(spans, list):
            raise ValueError("expected a JSON list of v2 spans")
        for i, span in enumerate(spans):
            if not isinstance(span, dict):
                raise ValueError(f"span {i} is not a JSON object")
            for key in ("traceId", "id"):
                if not _HEX_ID.fullmatch(str(span.get(key, "")).lower()):
                    raise ValueError(f"span {i}: {key} {span.get(key)!r} is not 16 or 32 hex digits")
        for span in spans:
            key = normalized_trace_id(span["traceId"])
            self.traces.setdefault(key, []).append(span)
            self.traces.move_to_end(key)
        while len(self.traces) > self.max_traces:
            self.traces.popitem(last=False)

    def services(self) -> list[str]:
        return sorted({s.get("localEndpoint", {}).get("serviceName", "")
                       for spans in self.traces.values() for s in spans} - {""})

    def find(self, service: str | None, limit: int) -> list[list[dict]]:
        """The newest ``limit`` traces with a span of ``service`` (any when None), newest
        first."""
        out = []
        for spans in reversed(self.traces.values()):
            if service is None or any(
                    s.get("localEndpoint", {}).get("serviceName") == service for s in spans):
                out.append(spans)
                if len(out) == limit:
                    break
        return out


def zipkin(ctx: AppContext) -> web.Application:
    """The collector's HTTP app (what the local mesh runs for the zipkin-slim image)."""
    del ctx
    store = SpanStore()
    app = web.Application(client_max_size=16 * 1024 * 1024)

    async def post_spans(request: web.Request) -> web.Response:
        try:
            store.accept(json.loads(await request.read()))
        except ValueError as exc:  # json.JSONDecodeError is one
            return web.Response(status=400, text=f"{exc}\n")
        return web.Response(status=202)

    async def services(request: web.Request) -> web.Response:
        return web.json_response(store.services())

    async def traces(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            return web.Response(status=400, text="limit must be an integer\n")
        return web.json_response(store.find(request.query.get("serviceName"), limit))

    async def trace(request: web.Request) -> web.Response:
        spans = store.traces.get(normalized_trace_id(request.match_info["trace_id"]))
        if spans is None:
            return web.Response(status=404, text=f"{request.match_info['trace_id']} not found\n")
        return web.json_response(spans)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "UP", "zipkin": {"status": "UP"}})

    app.router.add_post("/api/v2/spans", post_spans)
    app.router.add_get("/api/v2/services", services)
    app.router.add_get("/api/v2/traces", traces)
    app.router.add_get("/api/v2/trace/{trace_id}", trace)
    app.router.add_get("/health", health)
    return app


IMAGES = {"zipkin-slim": (zipkin, {})}
