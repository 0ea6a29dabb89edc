"""Metrics and topology steps: PromQL over Prometheus' HTTP API, as the handouts ask it.

Counters only grow and every scenario of a run shares the mesh, so a check looks at what
its own traffic added: "Prometheus has scraped every proxy" notes a moment at which every
proxy's counts up to now are in Prometheus, and the checks compare the same query at that
moment and now. They poll until the counts are complete (the traffic's own count says how
many), within promql.settle_s of the scrape interval. They compare with every batch the
scenario sent since that moment (``lab.history``), re-sends and a split test's further
batches included, so they may come after the client-side checks.
"""

import shlex
import time
from collections import Counter

import pytest
from pytest_bdd import given, parsers, then

from bookinfo_labs import promql
from bookinfo_labs.checks import eventually
from bookinfo_labs.checks.backends import reviews_version
from bookinfo_labs.kube.addons import PROMETHEUS_URL
from bookinfo_labs.local.metrics import HTTP_LABELS
from bookinfo_labs.topology import QUERY as GRAPH_QUERY, ServiceGraph, parse_claims

#: Prometheus discovers a new target within 5 s (its discovery manager's update throttle)
#: and scrapes it within one interval; the local server also needs a few seconds to start
STARTUP_S = 15.0


def query_command(client: str, query: str, namespace: str = "default") -> str:
    """The handouts' query of the Prometheus addon's HTTP API, from the client pod."""
    return (f"kubectl exec -n {namespace} deploy/{client} -- curl -sG "
            f"{PROMETHEUS_URL}/api/v1/query --data-urlencode {shlex.quote('query=' + query)}")


def targets_command(client: str, namespace: str = "default") -> str:
    """Prometheus' scrape targets and when each was last scraped."""
    return (f"kubectl exec -n {namespace} deploy/{client} -- curl -s "
            f"{PROMETHEUS_URL}/api/v1/targets")


@pytest.fixture
def prometheus_window():
    """The moment the scenario's counts start from (Prometheus' clock), and what a check
    found for the next one."""
    return {}


def _since(lab, window) -> float:
    if "since" not in window:
        raise AssertionError('a metrics check needs "Given Prometheus has scraped every proxy" '
                             "before the traffic")
    return window["since"]


def _increase(lab, window, query: str) -> list[promql.Sample]:
    return promql.increase(lab.mesh.prometheus_query(query, at=_since(lab, window)),
                           lab.mesh.prometheus_query(query))


def _await(lab, expected: str, observe, check):
    """Poll ``observe`` until ``check`` holds, within the time counts take to show."""
    timeout = promql.settle_s(lab.mesh.prometheus_scrape_interval_s)
    return eventually(observe, check, expected=expected, times=1, timeout_s=timeout,
                      interval_s=lab.mesh.prometheus_scrape_interval_s / 2)


@given("Prometheus has scraped every proxy")
def prometheus_scraped(lab, prometheus_window):
    lab.explain(targets_command, lab.client)
    # records Envoy still holds are flushed by then, so a scrape after it has them
    moment = time.time() + promql.RECORD_FLUSH_S
    answer = eventually(lambda: lab.mesh.prometheus_api("targets"),
                        lambda a: promql.scraped_after(a, moment),
                        expected="every proxy scraped by Prometheus since the last traffic",
                        times=1, timeout_s=STARTUP_S + promql.settle_s(
                            lab.mesh.prometheus_scrape_interval_s))
    prometheus_window["since"] = promql.scraped_after(answer, moment)
    prometheus_window["batches"] = len(lab.history)  # what the scenario sends from here on


def _sent_since(lab, window) -> list:
    """Every response of the batches sent since "Prometheus has scraped every proxy"."""
    _since(lab, window)
    return [r for t in lab.history[window["batches"]:] for r in t.responses]


@then(parsers.re(r"the query '(?P<query>.+)' grows by (?P<count>\d+) for each reporter"),
      converters={"count": int})
def query_grows(lab, prometheus_window, query, count):
    lab.explain(query_command, lab.client, query)
    by_reporter = f"sum by (reporter) ({query})"

    def check(samples):
        grown = {labels.get("reporter"): value for labels, value in samples}
        print(f"{query} grew by {grown}")
        assert grown == {"source": count, "destination": count}, (
            f"grew by {grown}, expected {count} reported by the source and {count} by the "
            "destination")

    _await(lab, f"{query} up by {count} per reporter",
           lambda: _increase(lab, prometheus_window, by_reporter), check)
    prometheus_window["query"] = query


@then("its series carry Istio's standard labels")
def standard_labels(lab, prometheus_window):
    query = prometheus_window["query"]
    lab.explain(query_command, lab.client, query)
    grown = _increase(lab, prometheus_window, query)
    assert grown, f"no series of {query} grew"
    for labels, _ in grown:
        # Prometheus keeps no label whose value is empty: grpc_response_status outside gRPC
        missing = [name for name in HTTP_LABELS if name not in labels
                   and not (name == "grpc_response_status" and labels.get("request_protocol") != "grpc")]
        assert not missing, f"a series lacks {missing}: {labels}"
        assert labels["source_workload"] != "unknown" != labels["destination_workload"], labels
    print(f"{len(grown)} series, e.g. {grown[0][0]}")


def _counts_equal(lab, window, query: str, label: str, seen: Counter, who: str) -> None:
    """Poll until Prometheus' increase of ``query`` by ``label`` equals ``seen``."""
    def check(samples):
        counted = {labels.get(label): round(value) for labels, value in samples}
        print(f"Prometheus: {counted}; {who}: {dict(seen)}")
        assert counted == dict(seen), f"Prometheus counted {counted}, {who} {dict(seen)}"

    _await(lab, f"counts by {label} {dict(seen)}", lambda: _increase(lab, window, query), check)


@then("Prometheus counts as many requests per reviews version as the pages showed")
def counts_per_version(lab, prometheus_window):
    """Every page the scenario opened since the moment names the reviews pod that served it;
    the servers' sidecars (reporter destination) must have counted the same per version."""
    query = ('sum by (destination_version) (istio_requests_total{reporter="destination", '
             'destination_service=~"reviews.*"})')
    lab.explain(query_command, lab.client, query)
    seen = Counter(v for v in map(reviews_version, _sent_since(lab, prometheus_window)) if v)
    _counts_equal(lab, prometheus_window, query, "destination_version", seen, "the pages showed")


@then(parsers.re(r"Prometheus counts as many requests to (?P<service>[\w-]+) per response code "
                 r"as the client saw"))
def counts_per_code(lab, prometheus_window, service):
    """The client's sidecar (reporter source) counted each status the client got: an abort
    is the client sidecar's own answer and never reaches the server."""
    query = (f'sum by (response_code) (istio_requests_total{{reporter="source", '
             f'destination_service=~"{service}.*"}})')
    lab.explain(query_command, lab.client, query)
    seen = Counter(str(r.status) for r in _sent_since(lab, prometheus_window))
    _counts_equal(lab, prometheus_window, query, "response_code", seen, "the client saw")


@then(parsers.re(r"the service graph shows (?P<claims>.+ calls .+)"))
def graph_shows(lab, prometheus_window, claims):
    """Kiali's versionedApp graph, from the requests counted since the scenario's moment;
    complete once the client's own requests are all in and a scrape later it has not
    changed."""
    lab.explain(query_command, lab.client, GRAPH_QUERY)
    wanted = parse_claims(claims)
    since = _since(lab, prometheus_window)
    previous: list = []

    def observe() -> ServiceGraph:
        return ServiceGraph.from_requests(_increase(lab, prometheus_window, GRAPH_QUERY),
                                          time.time() - since)

    def check(graph: ServiceGraph) -> None:
        print(graph)
        # the last batch at least (a login before it counts too)
        sent = sum(e.requests for e in graph.edges if e.source == lab.sender)
        assert sent >= lab.traffic.count, (
            f"{sent} of the {lab.sender}'s {lab.traffic.count} requests counted so far")
        counts = [(e.source, e.source_version, e.destination, e.version, e.requests)
                  for e in graph.edges]
        before, previous[:] = list(previous), counts
        assert counts == before, f"the graph changed since the last look: {before} -> {counts}"
        problems = [p for p in (c.holds(graph) for c in wanted) if p]
        assert not problems, "; ".join(problems)

    graph = _await(lab, claims, observe, check)
    prometheus_window["graph"] = graph
    lab.record_figure("graph", edges=graph.figure())


@then("no edge of the service graph has errors")
def graph_without_errors(lab, prometheus_window):
    lab.explain(query_command, lab.client, GRAPH_QUERY)
    graph = prometheus_window.get("graph")
    assert graph is not None, (f"no service graph yet (this scenario has "
                               f"{sorted(prometheus_window)}): \"Then the service graph shows ...\" first")
    failing = [str(e) for e in graph.edges if e.errors]
    assert not failing, f"edges with errors: {failing}"


@then(parsers.re(r"the service graph shows every call from (?P<source>[\w-]+) (?P<version>v\d+) "
                 r"to (?P<destination>[\w-]+) failing"))
def graph_edge_failing(lab, prometheus_window, source, version, destination):
    lab.explain(query_command, lab.client, GRAPH_QUERY)
    graph = prometheus_window.get("graph")
    assert graph is not None, (f"no service graph yet (this scenario has "
                               f"{sorted(prometheus_window)}): \"Then the service graph shows ...\" first")
    edges = graph.calls(source, destination, source_version=version)
    assert edges, f"no edge from {source} {version} to {destination}: {graph}"
    assert all(e.error_share == 1.0 for e in edges), f"not every call failed: {graph}"
