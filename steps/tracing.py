"""Tracing steps (workshop lab 9.4, survey L27): the mesh's tracing provider, a product-page
request that starts a trace, and that trace as the tracing backend shows it."""

import re
import time

import yaml
from pytest_bdd import given, parsers, then, when

from bookinfo_labs.checks import eventually
from bookinfo_labs.checks.consistently import consistently
from bookinfo_labs.mesh import HttpRequest
from bookinfo_labs.scenario import PRODUCTPAGE
from bookinfo_labs.tracing import mesh_config_commands, trace_query_command

#: Envoy's Zipkin tracer flushes its buffered spans every 5 s (tracing.zipkin.flush_interval_ms,
#: or sooner once min_flush_spans, 5, are buffered); a span it recorded has reached the
#: collector one flush later, plus the collector's answer (well under 1 s).
SPAN_FLUSH_S = 5.0 + 1.0
#: "productpage calling reviews v3": a caller and a callee, each an app and maybe a version
_CALL = re.compile(r"(?P<caller>[a-z][\w-]*)(?: (?P<caller_version>v\d+))? calling "
                   r"(?P<callee>[a-z][\w-]*)(?: (?P<callee_version>v\d+))?")


@given("the mesh config defines the extension providers:")
def extension_providers(lab, docstring):
    providers = yaml.safe_load(docstring)
    assert isinstance(providers, list) and all(
        isinstance(p, dict) and p.get("name") for p in providers), (
        f"extensionProviders must be a YAML list of providers with a name, got {providers!r}")
    lab.explain(mesh_config_commands, {"extensionProviders": providers})
    lab.set_mesh_config({"extensionProviders": providers})


@when("a user opens the product page with a new trace id")
def opens_product_page_traced(lab):
    lab.send_traced(HttpRequest(url=f"{PRODUCTPAGE}/productpage"))


def _trace(lab):
    """The request's trace as the backend has it now, or None."""
    assert lab.trace_id, (f"no traced request was sent (trace id {lab.trace_id!r}): a When "
                          "step must open the page first")
    return next((t for t in lab.mesh.traces("productpage.default", limit=50)
                 if t.trace_id == lab.trace_id), None)


def _calls(text: str) -> list[tuple[str, str | None, str, str | None]]:
    items = re.split(r", | and ", text)
    calls = [_CALL.fullmatch(item) for item in items]
    assert all(calls), f"say each call as '<app> [version] calling <app> [version]': {text!r}"
    return [(m["caller"], m["caller_version"], m["callee"], m["callee_version"]) for m in calls]


@then(parsers.re(r"the request's trace shows (?P<text>.+ calling .+)"))
def trace_shows(lab, text):
    """Each call as both sidecars reported it: the caller's client span and, as its child,
    the callee's server span (the version is the reporting pod's canonical revision).

    A request is given until its spans are flushed; if they are not all there by then, a
    new traced request is sent: right after a tracing change, a request may ride a
    connection a sidecar accepted under the old config (Envoy drains those, but the request
    on it still runs with the old connection manager)."""
    wanted = _calls(text)
    lab.explain(trace_query_command, lab.mesh.name, lab.client, lab.trace_id)

    def complete(trace):
        assert trace is not None, f"no trace {lab.trace_id} yet"
        seen = [(c.app, c.version, s.app, s.version) for c, s in trace.calls()]
        missing = [w for w in wanted if not any(
            w[0] == a and w[2] == b and w[1] in (None, av) and w[3] in (None, bv)
            for a, av, b, bv in seen)]
        assert not missing, (f"calls missing: {missing}; the trace has "
                             f"{[f'{a} {av} -> {b} {bv}' for a, av, b, bv in seen]}")

    def check(traffic):
        assert [r.status for r in traffic.responses] == [200], (
            f"the product page answered {[r.status for r in traffic.responses]}")
        eventually(lambda: _trace(lab), complete, expected=f"trace {lab.trace_id} shows {text}",
                   times=1, timeout_s=max(0.0, traffic.finished_at + SPAN_FLUSH_S - time.monotonic()),
                   interval_s=0.2)

    # the mesh's own allowance, then room for two more traced requests, each given a flush
    lab.expect(f"a product page request's trace shows {text}", check, times=1,
               timeout_s=lab.policy.timeout_s + 2 * SPAN_FLUSH_S)


@then(parsers.re(r"the request's trace has no span from (?P<app>[a-z][\w-]*)"))
def no_span_from(lab, app):
    """Checked once the other spans are in (the step before waits for them) and again a
    flush later, when the sidecar's own spans would have arrived."""
    lab.explain(trace_query_command, lab.mesh.name, lab.client, lab.trace_id)

    def check(trace):
        assert trace is not None, f"no trace {lab.trace_id}"
        spans = [s.describe() for s in trace.spans if s.app == app]
        assert not spans, f"spans from {app}: {spans}"

    consistently(lambda: _trace(lab), check, expected=f"no span from {app}",
                 until=lab.traffic.finished_at + SPAN_FLUSH_S, interval_s=0.5)


@then("no trace of the request is recorded")
def no_trace(lab):
    """Watched until every sidecar has flushed what it recorded at least once."""
    lab.explain(trace_query_command, lab.mesh.name, lab.client, lab.trace_id)

    assert [r.status for r in lab.traffic.responses] == [200], (
        f"the product page answered {[r.status for r in lab.traffic.responses]}")

    def check(trace):
        assert trace is None, f"the request was traced: {trace.describe()}"

    consistently(lambda: _trace(lab), check, expected=f"no trace {lab.trace_id}",
                 until=lab.traffic.finished_at + SPAN_FLUSH_S, interval_s=0.5)
