"""Access-log steps in the handout's words: the mesh config's log settings, and the
istio-proxy log lines of the requests a scenario sent (found by their nonce, and the calls
they caused by their x-request-id)."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from pytest_bdd import given, parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.accesslog import AccessLogEntry, parse_line
from bookinfo_labs.checks import eventually
from bookinfo_labs.checks.consistently import consistently
from bookinfo_labs.mesh import HttpRequest

#: flags with which Envoy answers without sending the request to any host: no healthy
#: upstream, no route, overflow, an injected abort (Envoy's access-log docs)
_NO_UPSTREAM = {"UH", "NR", "UO", "FI"}
_FIELDS = (r'(?P<method>[A-Z]+) (?P<path>/\S*), (?P<status>\d+), flags "(?P<flags>[^"]+)", '
           r'upstream cluster "(?P<cluster>[^"]*)"')
_WHO = r"(?P<workload>the client|[\w-]+)'s sidecar"


@given(parsers.re(r"the mesh's access log encoding is (?P<encoding>TEXT|JSON)"))
@when(parsers.re(r"the mesh's access log encoding is (?P<encoding>TEXT|JSON)"))
def access_log_encoding(lab, encoding):
    lab.set_mesh_config({"accessLogEncoding": encoding})


@given(parsers.re(r'the mesh\'s access log file is "(?P<path>[^"]*)"'))
@when(parsers.re(r'the mesh\'s access log file is "(?P<path>[^"]*)"'))
def access_log_file(lab, path):
    """``""`` turns the mesh config's access log off (Istio's default; the demo profile sets
    /dev/stdout)."""
    lab.set_mesh_config({"accessLogFile": path})


@given(parsers.re(r'I apply (?P<names>"[^"]+"(?: and "[^"]+")+)'))
def apply_several(lab, names):
    for name in re.findall(r'"([^"]+)"', names):
        lab.apply_file(name)


@when(parsers.re(r'I send (?P<count>\d+) requests tagged with a nonce to "(?P<url>[^"]+)" over '
                 r"(?P<parallel>\d+) parallel connections"),
      converters={"count": int, "parallel": int})
def send_tagged_parallel(lab, count, url, parallel):
    lab.send_tagged(HttpRequest(url=url, parallel=parallel), count)


@then(parsers.re(_WHO + r" logged the tagged request(?: as (?P<encoding>TEXT|JSON))?: " + _FIELDS),
      converters={"status": int})
def logged_tagged(lab, workload, encoding, method, path, status, flags, cluster):
    workload = _workload(lab, workload)
    lab.explain(explain.log_grep_command, workload, lab.nonce, "istio-proxy", count=False)

    def check(traffic):
        for entry in _whole_batch(lab, workload, traffic):
            _check_entry(lab, traffic, entry, encoding, method, path, status, flags, cluster)

    lab.expect(f"{workload}'s sidecar logs each tagged request: {method} {path} {status} "
               f"{flags} {cluster}", check)


@then(parsers.re(_WHO + r" logged its call to (?P<service>[\w-]+) under the same request id"
                 r"(?: as (?P<encoding>TEXT|JSON))?: " + _FIELDS), converters={"status": int})
def logged_call(lab, workload, service, encoding, method, path, status, flags, cluster):
    """The calls a tagged request caused carry its x-request-id (the apps pass it on), not
    its nonce: found by the request id of the tagged request's own line."""
    workload = _workload(lab, workload)
    lab.explain(explain.log_grep_command, workload, lab.nonce, "istio-proxy", count=False)

    def check(traffic):
        tagged = _whole_batch(lab, workload, traffic)
        ids = {entry.request_id for entry in tagged}
        since = lab.seconds_since_start() + 1
        calls = [e for e in map(parse_line, lab.mesh.logs(workload, since_s=since,
                                                           container="istio-proxy"))
                 if e is not None and e.request_id in ids
                 and e.authority.split(":")[0] == service]
        assert len(calls) >= len(ids), (
            f"{len(calls)} calls to {service} with the request ids {sorted(ids)} in {workload}'s "
            "istio-proxy log")
        for entry in calls:
            _check_entry(lab, traffic, entry, encoding, method, path, status, flags, cluster)

    lab.expect(f"{workload}'s sidecar logs the call to {service}: {method} {path} {status} "
               f"{flags} {cluster}", check)


@then(parsers.re(_WHO + r' logged some tagged requests: ' + _FIELDS), converters={"status": int})
def logged_some(lab, workload, method, path, status, flags, cluster):
    """Some, not all: a breaker trips only when the batch's connections overlap (re-sent
    while a batch has none)."""
    workload = _workload(lab, workload)
    lab.explain(explain.log_grep_command, workload, lab.nonce, "istio-proxy", count=False)

    def check(traffic):
        entries = _batch(lab, workload, traffic)
        matching = [e for e in entries if e.status == status]
        assert matching, f"no {status} among {[(e.status, e.flags) for e in entries]}"
        for entry in matching:
            _check_entry(lab, traffic, entry, None, method, path, status, flags, cluster)

    lab.expect(f"{workload}'s sidecar logs some tagged requests with {status} {flags}", check)


@then(parsers.re(_WHO + r" logged none of the tagged requests"))
def logged_none(lab, workload):
    """Re-sent until batches in a row leave no line: a config change that turns logging
    off reaches a cluster's proxies a moment after the apply."""
    workload = _workload(lab, workload)
    lab.explain(explain.log_grep_command, workload, lab.nonce, "istio-proxy")

    def check(traffic):
        def none(lines):
            assert not lines, f"{len(lines)} line(s) with the nonce: {lines[:2]}"

        consistently(lambda: lab.tagged_in_log(workload, container="istio-proxy"), none,
                     expected=f"{workload}'s istio-proxy log has no line with the nonce",
                     until=traffic.finished_at + lab.mesh.access_log_flush_s, interval_s=0.1)

    lab.expect(f"{workload}'s sidecar logs none of the tagged requests", check)


def _workload(lab, who: str) -> str:
    return lab.client if who == "the client" else who


def _whole_batch(lab, workload: str, traffic) -> list[AccessLogEntry]:
    """``_batch``, which must hold a line for every request of the batch."""
    entries = _batch(lab, workload, traffic)
    assert len(entries) == traffic.count, (
        f"{len(entries)} of {traffic.count} tagged requests in {workload}'s istio-proxy log")
    return entries


def _batch(lab, workload: str, traffic) -> list[AccessLogEntry]:
    """The istio-proxy log entries of the tagged batch: once every request of it shows, or
    what shows when the flush window has passed (Envoy writes a request's line when it
    ends; a line not there ``access_log_flush_s`` after the batch's last answer is not
    coming)."""
    flush_s = lab.mesh.access_log_flush_s
    deadline = traffic.finished_at + flush_s

    def observe() -> list[AccessLogEntry]:
        return [e for e in map(parse_line, lab.tagged_in_log(workload, container="istio-proxy"))
                if e is not None]

    def check(found: list[AccessLogEntry]) -> None:
        assert len(found) >= traffic.count or time.monotonic() >= deadline, (
            f"{len(found)} of {traffic.count} lines so far")

    return eventually(observe, check, expected=f"the batch's lines in {workload}'s log",
                      times=1, timeout_s=flush_s + 10, interval_s=0.1, max_backoff_s=0.3)


def _check_entry(lab, traffic, entry: AccessLogEntry, encoding: str | None, method: str,
                 path: str, status: int, flags: str, cluster: str) -> None:
    seen = (f"{entry.method} {entry.path} {entry.status} {entry.flags} {entry.upstream_cluster} "
            f"host {entry.upstream_host} {entry.duration_ms} ms ({entry.encoding})")
    assert encoding in (None, entry.encoding), f"logged as {entry.encoding}: {seen}"
    assert (entry.method, urlsplit(entry.path).path, entry.status) == (method, path, status), seen
    wanted = set() if flags == "-" else set(flags.split(","))
    assert entry.flag_set == wanted, f"flags {entry.flags}, expected {flags}: {seen}"
    assert entry.upstream_cluster == _logged_cluster(lab, entry.encoding, cluster), seen
    if wanted & _NO_UPSTREAM:
        assert entry.upstream_host == "-", f"an upstream host for {flags}: {seen}"
    else:  # the host it was sent to: an address on the cluster's port
        port = cluster.split("|")[1] if cluster.count("|") == 3 else None
        assert re.fullmatch(r"\S+:\d+", entry.upstream_host), seen
        assert port is None or entry.upstream_host.endswith(f":{port}"), seen
    # a proxy logs a request it handled within the client's own wait for the answer
    slowest_ms = max(r.elapsed_s for r in traffic.responses) * 1000
    assert 0 <= entry.duration_ms <= slowest_ms + 1, (
        f"{entry.duration_ms} ms logged, the client waited at most {slowest_ms:.0f} ms: {seen}")


def _logged_cluster(lab, encoding: str, cluster: str) -> str:
    """How the log names ``cluster``: Istio 1.23 and 1.24 logged JSON's upstream_cluster as
    %UPSTREAM_CLUSTER%, the cluster's alt_stat_name, which ends in ";" from 1.23 on."""
    istio = lab.mesh.istio
    if (encoding == "JSON" and cluster != "-" and istio.stat_delimiter
            and not istio.json_log_cluster_raw):
        return cluster + ";"
    return cluster


@then(parsers.re(_WHO + r" logged the connection from (?P<sender>[\w-]+) in (?P<namespace>[\w-]+) "
                 r'with flags "(?P<flags>[^"]+)" and details "(?P<details>[^"]+)"'))
def logged_connection(lab, workload, sender, namespace, flags, details):
    """A connection no filter chain takes never reaches a connection manager: the
    listener's own logger writes it (``"- - -" 0 NR filter_chain_not_found``), known by
    the sender's address. Read once the batch's lines are flushed, its lines are the last
    ones from that address (earlier batches', answered before the config reached the
    server, come before them)."""
    workload = _workload(lab, workload)
    source = lab.mesh.pod_ip(f"{namespace}/{sender}")
    lab.explain(explain.logs_command, workload, "istio-proxy")

    def check(traffic):
        since = lab.seconds_since_start() + 1

        def observe() -> list[AccessLogEntry]:
            return [e for e in map(parse_line, lab.mesh.logs(workload, since_s=since,
                                                             container="istio-proxy"))
                    if e is not None and e.downstream_remote.rpartition(":")[0] == source]

        # the read at the window's end is the one checked below; none holds meanwhile
        found = consistently(observe, lambda _found: None, expected=f"lines from {source}",
                             until=traffic.finished_at + lab.mesh.access_log_flush_s,
                             interval_s=0.5)
        assert len(found) >= traffic.count, (
            f"{len(found)} lines from {source} in {workload}'s istio-proxy log, expected "
            f"{traffic.count} or more")
        for entry in found[-traffic.count:]:
            seen = f"{entry.method} {entry.status} {entry.flags} {entry.details} from {source}"
            assert entry.flags == flags and entry.details == details, seen
            assert entry.upstream_host == "-" and entry.upstream_cluster == "-", seen

    lab.expect(f"{workload}'s sidecar logs the connections from {source}: {flags} {details}",
               check)
