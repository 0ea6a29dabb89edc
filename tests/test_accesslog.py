"""Istio's TEXT access log: a real line from the workshop transcript (the local mesh's own
Envoys write the same format: tests/test_local_mesh.py)."""

from bookinfo_labs.accesslog import parse_line

# the workshop's lab 4.1 (docs/facts.md#workshop-labs):
# `kubectl logs ratings-v1-xxxxx -c istio-proxy` on Istio 1.26
REAL = ('[2024-03-21T08:53:38.675Z] "GET /ratings/0 HTTP/1.1" 200 - via_upstream - "-" 0 48 1 0 '
        '"-" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:107.0) Gecko/20100101 Firefox/107.0" '
        '"7b7596ea-aa34-98f9-9d7a-e17fbd58cdf3" "ratings:9080" "10.244.135.9:9080" inbound|9080|| '
        "127.0.0.6:35157 10.244.135.9:9080 10.244.135.10:50698 "
        "outbound_.9080_.v1_.ratings.default.svc.cluster.local default")


def test_a_real_istio_proxy_line():
    entry = parse_line(REAL)
    assert (entry.method, entry.path, entry.status, entry.authority) == (
        "GET", "/ratings/0", 200, "ratings:9080")
    assert entry.request_id == "7b7596ea-aa34-98f9-9d7a-e17fbd58cdf3"
    assert entry.upstream_cluster == "inbound|9080||" and entry.flags == "-"
    assert entry.user_agent.startswith("Mozilla/5.0 (Windows")


def test_other_lines_are_not_entries():
    assert parse_line("2024-03-21T08:53:00 info Envoy proxy is ready") is None
