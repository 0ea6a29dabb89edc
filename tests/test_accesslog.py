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


# the workshop's lab 9.1 after `accessLogEncoding=JSON` (Istio ~1.5: every value a string)
WORKSHOP_JSON = (
    '{"upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local",'
    '"downstream_remote_address":"10.40.0.12:43866","authority":"reviews:9080",'
    '"path":"/reviews/0","protocol":"HTTP/1.1","upstream_service_time":"1786",'
    '"upstream_local_address":"10.40.0.12:36048","duration":"1787",'
    '"upstream_transport_failure_reason":"-","route_name":"default",'
    '"downstream_local_address":"10.98.163.167:9080","user_agent":"curl/7.47.0",'
    '"response_code":"200","response_flags":"-","start_time":"2020-05-15T06:30:26.480Z",'
    '"method":"GET","request_id":"e2de9f03-38ac-924d-ae2b-176d868c56ab",'
    '"upstream_host":"10.40.0.11:9080","x_forwarded_for":"-","requested_server_name":"-",'
    '"bytes_received":"0","istio_policy_status":"-","bytes_sent":"379"}')
# what Envoy 1.36 writes for EnvoyJSONLogFormatIstio: typed values, null when absent
ENVOY_JSON = (
    '{"authority":"ratings:9080","bytes_received":0,"bytes_sent":0,'
    '"connection_termination_details":null,"downstream_local_address":"127.44.0.10:9080",'
    '"downstream_remote_address":"127.43.0.10:46972","duration":2001,"method":"GET",'
    '"path":"/ratings/0?nonce=20c2507cbf79faf6","protocol":"HTTP/1.1",'
    '"request_id":"6cfc156b-a401-4f2b-9697-dd5afd98c39c","requested_server_name":null,'
    '"response_code":504,"response_code_details":"response_timeout",'
    '"response_flags":"UT,DI","route_name":null,"start_time":"2026-11-27T04:00:14.611Z",'
    '"upstream_cluster":"outbound|9080|v1|ratings.default.svc.cluster.local",'
    '"upstream_host":"127.43.0.5:9080","upstream_local_address":null,'
    '"upstream_service_time":null,"upstream_transport_failure_reason":null,'
    '"user_agent":"curl/7.88.1","x_forwarded_for":null}')


def test_a_json_line_reads_like_the_text_one():
    entry = parse_line(WORKSHOP_JSON)
    assert (entry.method, entry.path, entry.status, entry.duration_ms) == (
        "GET", "/reviews/0", 200, 1787)
    assert entry.upstream_cluster == "outbound|9080||reviews.default.svc.cluster.local"
    assert entry.encoding == "JSON" and entry.flags == "-" and entry.flag_set == set()


def test_envoys_typed_json_values_and_nulls():
    entry = parse_line(ENVOY_JSON)
    assert (entry.status, entry.duration_ms, entry.route_name) == (504, 2001, "-")
    assert entry.flag_set == {"UT", "DI"} and entry.upstream_host == "127.43.0.5:9080"


def test_json_that_is_not_an_access_log_record_is_not_an_entry():
    assert parse_line('{"level":"info","msg":"Envoy proxy is ready"}') is None
    assert parse_line("{not json") is None
