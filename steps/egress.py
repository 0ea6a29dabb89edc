"""Egress steps in the handout's words: external hosts, the outbound policy, the Sidecar."""

from urllib.parse import urlsplit

from pytest_bdd import given, parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.accesslog import parse_line
from bookinfo_labs.checks import eventually
from bookinfo_labs.mesh import HttpRequest

_RESOLVE = r' with curl --resolve "(?P<resolve>[^"]+)"'


@given(parsers.re(r"the mesh's outbound traffic policy is (?P<mode>ALLOW_ANY|REGISTRY_ONLY)"))
def outbound_policy(lab, mode):
    lab.set_outbound_traffic_policy(mode)


@when(parsers.re(r'I send (?P<count>\d+) requests? to "(?P<url>[^"]+)"' + _RESOLVE),
      converters={"count": int})
def send_resolving(lab, count, url, resolve):
    """``curl --resolve host:port:address``: a name cluster DNS does not know, sent to an
    address the sidecar captures whatever it is."""
    lab.send(HttpRequest(url=url, resolve=(resolve,)), count)


@when(parsers.re(r'I send (?P<count>\d+) requests tagged with a nonce to "(?P<url>[^"]+)"'
                 + _RESOLVE), converters={"count": int})
def send_tagged_resolving(lab, count, url, resolve):
    lab.send_tagged(HttpRequest(url=url, resolve=(resolve,)), count)


@then(parsers.re(r"the client's sidecar sent them to (?P<cluster>[\w|.-]+)"))
def sent_to_cluster(lab, cluster):
    """The upstream cluster of the last batch's requests in the client sidecar's access log
    (``PassthroughCluster``: a host the sidecar has no config for, let through)."""
    lab.explain(explain.logs_command, lab.client, "istio-proxy")
    traffic = lab.traffic
    parts = urlsplit(traffic.request.url)
    since = lab.seconds_since_start() + 1

    def entries():
        lines = lab.mesh.logs(lab.client, since_s=since, container="istio-proxy")
        found = [parse_line(line) for line in lines]
        return [e for e in found if e is not None and e.authority == parts.netloc
                and e.path.split("?")[0] == (parts.path or "/")][-traffic.count:]

    def check(found):
        assert len(found) == traffic.count, f"{len(found)} of {traffic.count} requests logged"
        clusters = {e.upstream_cluster for e in found}
        assert clusters == {cluster}, f"upstream clusters logged: {sorted(clusters)}"

    eventually(entries, check, expected=f"the last requests logged with cluster {cluster}",
               policy=lab.policy)
