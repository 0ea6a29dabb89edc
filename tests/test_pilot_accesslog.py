"""Access loggers, without processes: the meshConfig settings and the Telemetry API's
accessLogging as istiod translates them (pilot/pkg/networking/core/accesslog.go,
pilot/pkg/model/telemetry{,_logging}.go; docs/facts.md#access-logs-and-the-telemetry-api).

``tests/golden/pilot/access-logs.json`` pins, per case, the loggers of a client's outbound
listener, a server's inbound listener and the ingress gateway's listener (the listener's
own, and its filters'); regenerate it with ``UPDATE_GOLDEN=1`` and read the diff.
"""

from __future__ import annotations

import json
import os

import pytest

from bookinfo_labs.local import LocalMesh
from bookinfo_labs.local.pilot import LISTENER, accesslog, generate, meshconfig
from bookinfo_labs.manifests import ManifestError, parse_text
from bookinfo_labs.mesh import MeshError
from bookinfo_labs.versions import get_version

from test_pilot import CLIENT, GOLDEN, HTTPBIN, INGRESS, _parse_all, mesh_of

#: the listener of each proxy the golden file shows
WATCHED = ((CLIENT, "0.0.0.0_8000"), (HTTPBIN, "127.10.0.50_8080"), (INGRESS, "0.0.0.0_8080"))
DEMO = meshconfig.demo_mesh_config(get_version("1.26"))
OFF = {**DEMO, "accessLogFile": ""}


def telemetry(name: str, namespace: str, access_logging: str, selector: str = "") -> str:
    return (f"apiVersion: telemetry.istio.io/v1\nkind: Telemetry\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\n"
            f"spec:\n{selector}  accessLogging: {access_logging}\n")


MESH_ENVOY = telemetry("mesh-default", "istio-system", "[{providers: [{name: envoy}]}]")
SERVER_ONLY = telemetry("mesh-default", "istio-system",
                        "[{providers: [{name: envoy}], match: {mode: SERVER}}]")
HTTPBIN_OFF = telemetry("httpbin-quiet", "default", "[{disabled: true}]",
                        "  selector: {matchLabels: {app: httpbin}}\n")
FAILED_ONLY = telemetry("mesh-default", "istio-system",
                        "[{providers: [{name: envoy}], filter: {expression: 'response.code >= 400'}}]")
NAMESPACE_CLIENT_ONLY = telemetry("default", "default",
                                  "[{providers: [{name: envoy}], match: {mode: CLIENT}}]")

CASES = {
    "demo-text-1.26": ((), "1.26", DEMO),
    "demo-text-1.22": ((), "1.22", DEMO),
    "json-1.26": ((), "1.26", {**DEMO, "accessLogEncoding": "JSON"}),
    "json-1.24": ((), "1.24", {**DEMO, "accessLogEncoding": "JSON"}),
    "custom-text-format": ((), "1.26", {**DEMO, "accessLogFormat": "%REQ_WITHOUT_QUERY(:PATH)% %RESPONSE_CODE%"}),
    "off": ((), "1.26", OFF),
    "telemetry-envoy-without-file": ((MESH_ENVOY,), "1.26", OFF),
    "telemetry-server-only": ((SERVER_ONLY,), "1.26", OFF),
    "telemetry-workload-disabled": ((MESH_ENVOY, HTTPBIN_OFF), "1.26", DEMO),
    "telemetry-filter": ((FAILED_ONLY,), "1.26", DEMO),
}


def loggers_of(resources: dict) -> dict:
    """Per watched listener: its own access loggers and those of its filters (the ones
    writing the proxy's log, not the metrics records of pilot/metrics.py)."""
    out = {}
    for proxy, name in WATCHED:
        built = resources[proxy.pod][LISTENER][name]

        def logs(loggers, path=proxy.access_log_path):
            mine = [lg for lg in loggers or [] if lg["typed_config"].get("path") == path]
            return mine or None

        filters = [logs(f["typed_config"].get("access_log")) for chain in built["filter_chains"]
                   for f in chain["filters"]]
        out[f"{proxy.pod} {name}"] = {"listener": logs(built.get("access_log")),
                                      "filters": [f for f in filters if f is not None]}
    return out


#: a Gateway, so the ingress gateway has a listener
GATEWAY = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: web}\n"
           "spec:\n  selector: {istio: ingressgateway}\n"
           "  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\n")


def generated(configs: tuple[str, ...], version: str, mesh_config: dict) -> dict:
    mesh = mesh_of(GATEWAY, *configs, version=version, samples=("httpbin", "curl"), gateways=True,
                   mesh_config=mesh_config)
    return {proxy.pod: generate(mesh, proxy) for proxy, _ in WATCHED}


def test_golden_access_logs():
    from envoy.extensions.access_loggers.filters.cel.v3 import cel_pb2  # noqa: F401
    from envoy.extensions.formatter.req_without_query.v3 import req_without_query_pb2  # noqa: F401

    got = {}
    for case, (configs, version, mesh_config) in CASES.items():
        resources = generated(configs, version, mesh_config)
        for by_type in resources.values():
            _parse_all({LISTENER: by_type[LISTENER]})
        got[case] = loggers_of(resources)
    text = json.dumps(got, indent=1, sort_keys=True) + "\n"
    path = GOLDEN / "access-logs.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs: UPDATE_GOLDEN=1 regenerates it"


def _logs(case: str) -> dict:
    configs, version, mesh_config = CASES[case]
    return loggers_of(generated(configs, version, mesh_config))


def test_the_demo_profile_logs_text_on_every_connection_manager_and_nr_on_listeners():
    logs = _logs("demo-text-1.26")
    client, server, gateway = logs.values()
    assert client["listener"] is None  # an outbound listener has no logger of its own
    for place in (server, gateway):
        assert place["listener"][0]["filter"] == {"response_flag_filter": {"flags": ["NR"]}}
    for place in (client, server, gateway):
        [logger] = place["filters"][0]
        fmt = logger["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        assert fmt == accesslog.text_format(get_version("1.26")) and "filter" not in logger


def test_json_names_the_cluster_raw_from_1_25_and_text_from_1_23():
    assert accesslog.json_format(get_version("1.25"))["upstream_cluster"] == "%UPSTREAM_CLUSTER_RAW%"
    assert accesslog.json_format(get_version("1.24"))["upstream_cluster"] == "%UPSTREAM_CLUSTER%"
    assert "%UPSTREAM_CLUSTER_RAW%" in accesslog.text_format(get_version("1.23"))
    assert "%UPSTREAM_CLUSTER% " in accesslog.text_format(get_version("1.22"))
    keys = list(accesslog.json_format(get_version("1.26")))
    assert keys[:3] == ["start_time", "route_name", "method"]
    assert keys[-1] == "upstream_transport_failure_reason" and len(keys) == 24


def test_off_leaves_no_logger_anywhere():
    assert all(not place["listener"] and not place["filters"] for place in _logs("off").values())


def test_a_telemetry_with_the_envoy_provider_logs_without_the_mesh_config_file():
    for place in _logs("telemetry-envoy-without-file").values():
        [logger] = place["filters"][0]
        assert logger["typed_config"]["path"].endswith("istio-proxy.log")


def test_server_mode_logs_inbound_only_and_the_client_falls_back_to_the_mesh_config():
    """A mode no entry matches leaves istiod's list empty: the mesh config decides there
    (setHTTPAccessLog), off in this case; with the demo profile's file it logs anyway."""
    client, server, gateway = _logs("telemetry-server-only").values()
    assert client["filters"] == [] and gateway["filters"] == []
    assert len(server["filters"][0]) == 1
    client, _, _ = loggers_of(generated((SERVER_ONLY,), "1.26", DEMO)).values()
    assert len(client["filters"][0]) == 1


def test_a_workload_telemetry_disables_its_own_logs_only():
    client, server, gateway = _logs("telemetry-workload-disabled").values()
    assert server["filters"] == [] and server["listener"] is None
    assert len(client["filters"][0]) == 1 and len(gateway["filters"][0]) == 1


def test_a_filter_expression_is_envoys_cel_filter_and_listeners_and_it_with_nr():
    client, server, _ = _logs("telemetry-filter").values()
    [logger] = client["filters"][0]
    assert logger["filter"] == {"extension_filter": {
        "name": "envoy.access_loggers.extension_filters.cel", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3."
                     "ExpressionFilter", "expression": "response.code >= 400"}}}
    [listener_logger] = server["listener"]
    assert listener_logger["filter"]["and_filter"]["filters"] == [
        {"response_flag_filter": {"flags": ["NR"]}}, logger["filter"]]


@pytest.mark.parametrize("levels, mode, expected", [
    # the root's provider, a workload that disables it (no providers: its parent's)
    ([[{"providers": ["envoy"]}], [{"disabled": True}]], "SERVER", {"envoy": (True, None)}),
    # a namespace's CLIENT-only entry leaves the server side out
    ([[{"providers": ["envoy"], "mode": "CLIENT"}]], "SERVER", {}),
    ([[{"providers": ["envoy"], "mode": "CLIENT_AND_SERVER", "filter": "x"}]], "CLIENT",
     {"envoy": (False, "x")}),
    # a lower level naming another provider takes the first out of scope
    ([[{"providers": ["envoy"]}], [{"providers": ["file2"]}]], "CLIENT",
     {"file2": (False, None)}),
])
def test_merge_logs_follows_istiod(levels, mode, expected):
    def entry(spec):
        text = telemetry("t", "default", json.dumps([{
            **({"providers": [{"name": n} for n in spec["providers"]]} if "providers" in spec
               else {}),
            **({"disabled": spec["disabled"]} if "disabled" in spec else {}),
            **({"match": {"mode": spec["mode"]}} if "mode" in spec else {}),
            **({"filter": {"expression": spec["filter"]}} if "filter" in spec else {}),
        }]))
        return parse_text(text)[0].model.spec.access_logging[0]

    merged = accesslog.merge_logs([[entry(e) for e in level] for level in levels], [], mode)
    assert {k: (v.disabled, v.expression) for k, v in merged.items()} == expected


def test_an_extension_provider_of_the_mesh_config_replaces_the_built_in_by_name():
    config = {"extensionProviders": [{"name": "envoy", "envoyFileAccessLog": {
        "path": "/dev/stdout", "logFormat": {"labels": {"code": "%RESPONSE_CODE%"}}}}]}
    assert meshconfig.extension_provider(config, "ENVOY")["envoyFileAccessLog"]["logFormat"]
    assert "prometheus" in meshconfig.extension_provider(config, "prometheus")
    assert meshconfig.extension_provider(config, "otel") is None


@pytest.mark.parametrize("config, message", [
    ({"accessLogEncoding": "YAML"}, "use TEXT or JSON"),
    ({"accessLogFile": "/var/log/envoy.log"}, "istio-proxy log only"),
])
def test_mesh_config_the_local_mesh_cannot_honour_is_refused(config, message):
    with pytest.raises(ValueError, match=message):
        accesslog.check_mesh_config({**DEMO, **config})


@pytest.fixture(scope="module")
def local():
    mesh = LocalMesh.start(get_version("1.26"), gateways=False)
    try:
        yield mesh
    finally:
        mesh.close()


def test_a_bad_access_log_file_changes_nothing(local):
    before = local.mesh_view().mesh_config
    with pytest.raises(MeshError, match="istio-proxy log only"):
        local.set_mesh_config({"accessLogFile": "/tmp/x.log"})
    assert local.mesh_view().mesh_config == before


@pytest.mark.parametrize("access_logging, path, message", [
    ("[{providers: [{name: prometheus}]}]", "spec.accessLogging[0].providers[0].name",
     "'prometheus' is a prometheus provider"),
    ("[{providers: [{name: envoy}]}]\n  targetRefs: [{kind: Service, group: '', name: a}]",
     "spec.targetRefs", "does not implement this field"),
])
def test_what_the_local_mesh_does_not_log_is_refused(local, access_logging, path, message):
    with pytest.raises(ManifestError) as err:
        local.apply(parse_text(telemetry("t", "default", access_logging)))
    assert err.value.path.startswith(path) and message in str(err.value)
