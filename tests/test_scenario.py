"""The scenario contract's traffic: re-sends, nonces, stats baselines and timing marks.

A recording mesh stands in for a cluster: every request it is sent is logged by the
upstream with its URL (as httpbin logs a nonce) and counted in the client sidecar's
stats, so a test can see exactly what re-sending does to what later steps count.
"""

from __future__ import annotations

import pytest

from bookinfo_labs import scenario as scenario_module
from bookinfo_labs.checks import EventuallyPolicy
from bookinfo_labs.manifests import ManifestError, parse_text
from bookinfo_labs.mesh import HttpRequest, HttpResponse, Mesh
from bookinfo_labs.proxystats import StatsChange, is_cluster_stat
from bookinfo_labs.scenario import Lab
from bookinfo_labs.versions import get_version

RETRY_STAT = "cluster.outbound|8000|v1|httpbin.default.svc.cluster.local;.upstream_rq_retry"


class RecordingMesh(Mesh):
    """Each request: one upstream log line with its URL, one retry counted by the sidecar."""

    name = "recording"

    def __init__(self, clock=None, istio="1.26"):
        self.istio = get_version(istio)
        self.applied: list = []
        self.upstream_log: list[str] = []
        self.retries = 0
        self.clock = clock
        self.stats_reads = 0

    def deploy(self, sample): pass
    def close(self): pass
    def apply(self, manifests):
        self.applied += manifests
        return []
    def delete(self, keys): pass
    def owned_resources(self): return set()
    def client(self): return "curl"
    def load(self, client, url, **kwargs): raise NotImplementedError
    def set_mesh_config(self, changes): raise NotImplementedError

    def send(self, client, request, count=1):
        self.upstream_log += [f'"GET {request.url}" 503'] * count
        self.retries += count
        if self.clock:
            self.clock.now += 0.5  # the batch takes half a second
        return [HttpResponse(status=503)] * count

    def send_from_host(self, request, count=1):
        self.sent_from_host = request
        return self.send("host", request, count)

    def ingress_address(self, port_name="http2"):
        return "192.0.2.7", {"http2": 30080, "https": 30443}[port_name]

    def logs(self, workload, since_s=None, container=None):
        return list(self.upstream_log)

    def proxy_stats(self, workload):
        self.stats_reads += 1
        if self.clock:
            self.clock.now += 2.0  # an exec in the sidecar is slow on a cluster
        return {RETRY_STAT: self.retries, "server.live": 1}


def _all_503(traffic):
    assert all(r.status == 503 for r in traffic.responses)


@pytest.mark.parametrize("times", [1, 3])
def test_re_sending_a_tagged_batch_never_inflates_what_is_counted(times):
    """With 3 consecutive passes the status check sends the batch twice more; the log
    count and the stats change must still be about one batch of 5 (not 15)."""
    mesh = RecordingMesh()
    lab = Lab(mesh, policy=EventuallyPolicy(times=times, timeout_s=5))
    lab.send_tagged(HttpRequest(url="http://httpbin:8000/status/503"), 5)
    lab.expect("every response 503", _all_503)
    assert len(mesh.upstream_log) == 5 * times  # the re-sends did happen
    assert len(lab.tagged_in_log("httpbin-v1")) == 5
    assert lab.stats_change.cluster_delta("httpbin", "upstream_rq_retry") == 5


def test_re_sending_a_plain_batch_sends_the_same_request_again():
    mesh = RecordingMesh()
    lab = Lab(mesh, policy=EventuallyPolicy(times=3, timeout_s=5))
    lab.send(HttpRequest(url="http://httpbin:8000/get"), 2)
    lab.expect("every response 503", _all_503)
    assert mesh.upstream_log == ['"GET http://httpbin:8000/get" 503'] * 6
    assert mesh.stats_reads == 0  # a plain batch reads no stats


def test_the_timing_mark_is_the_arrival_of_the_answer_not_the_stats_read_after_it(monkeypatch):
    class Clock:
        now = 100.0

    clock = Clock()
    monkeypatch.setattr(scenario_module.time, "monotonic", lambda: clock.now)
    lab = Lab(RecordingMesh(clock), policy=EventuallyPolicy(times=1, timeout_s=5))
    traffic = lab.send_counting_stats(HttpRequest(url="http://httpbin:8000/status/500"))
    # stats read (2 s), batch (0.5 s), stats read (2 s)
    assert traffic.finished_at == 102.5 and clock.now == 104.5


def test_a_stat_the_sidecar_does_not_expose_is_an_error_not_zero():
    change = StatsChange("curl", before={"server.live": 1}, after={"server.live": 1})
    with pytest.raises(AssertionError, match=r"curl sidecar does not expose upstream_rq_retry "
                                             r"for httpbin.*proxyStatsMatcher"):
        change.cluster_delta("httpbin", "upstream_rq_retry")
    exposed = StatsChange("curl", before={RETRY_STAT: 2}, after={RETRY_STAT: 2})
    assert exposed.cluster_delta("httpbin", "upstream_rq_retry") == 0  # a real 0


@pytest.mark.parametrize("name, host, stat, expected", [
    (RETRY_STAT, "httpbin", "upstream_rq_retry", True),
    ("cluster.outbound|8000||httpbin.default.svc.cluster.local;.upstream_rq_pending_overflow",
     "httpbin", "upstream_rq_pending_overflow", True),
    ("cluster.outbound|8000||httpbin.default.svc.cluster.local.upstream_rq_retry",  # <= 1.22
     "httpbin", "upstream_rq_retry", True),
    (RETRY_STAT, "httpbin", "upstream_rq_retry_overflow", False),
    ("cluster.outbound|8000||httpbin-v2.default.svc.cluster.local;.upstream_rq_retry",
     "httpbin", "upstream_rq_retry", False),
    ("cluster.outbound|8000||httpbin.default.svc.cluster.local;.outlier_detection."
     "ejections_enforced_consecutive_5xx", "httpbin",
     "outlier_detection.ejections_enforced_consecutive_5xx", True),
])
def test_cluster_stat_names_as_istio_writes_them(name, host, stat, expected):
    assert is_cluster_stat(name, host, stat) is expected


BACKOFF = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin}
    retries: {attempts: 3, backoff: 100ms}
"""


def test_a_field_the_selected_release_lacks_is_refused_before_the_mesh_sees_it():
    """retries.backoff arrived in Istio 1.26: a 1.25 cluster's CRD would reject it."""
    old = RecordingMesh(istio="1.25")
    with pytest.raises(ManifestError, match=r"spec\.http\[0\]\.retries\.backoff: .*1\.26"):
        Lab(old).apply_text(BACKOFF)
    assert old.applied == []
    current = RecordingMesh(istio="1.26")
    Lab(current).apply_text(BACKOFF)
    assert len(current.applied) == 1


DEPRECATED_OUTLIER = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    outlierDetection: {consecutiveErrors: 1, interval: 1s, baseEjectionTime: 3m}
"""


def test_the_webhooks_deprecation_warning_is_shown_and_the_field_has_no_effect():
    """Istio warns about consecutiveErrors and then ignores it: Envoy ejects after its
    default of 5 consecutive 5xx, not after 1 gateway error."""
    from bookinfo_labs.local.pilot.clusters import _outlier

    lab = Lab(RecordingMesh())
    lab.apply_text(DEPRECATED_OUTLIER)
    [warning] = lab.warnings
    assert ("spec.trafficPolicy.outlierDetection.consecutiveErrors: outlier detection "
            "consecutive errors is deprecated") in warning
    od = lab.manifests[0].model.spec.traffic_policy.outlier_detection
    # the control plane gives Envoy neither threshold: Envoy's own default (5 x 5xx) applies
    assert _outlier(od) == {"enforcing_success_rate": 0, "interval": "1s",
                            "base_ejection_time": "180s"}


class InterruptedApplyMesh(RecordingMesh):
    """A cluster's apply that has written its objects when Ctrl-C arrives (while it waits
    for the config to reach the sidecars)."""

    def __init__(self):
        super().__init__()
        self.stored: set = set()
        self.deleted: list = []

    def apply(self, manifests):
        from bookinfo_labs.mesh import ResourceKey
        self.stored |= {ResourceKey(m.kind, m.namespace or "default", m.name) for m in manifests}
        raise KeyboardInterrupt

    def owned_resources(self):
        return set(self.stored)

    def delete(self, keys):
        self.deleted += keys
        self.stored -= set(keys)


def test_an_apply_interrupted_after_it_wrote_is_still_cleaned_up():
    mesh = InterruptedApplyMesh()
    lab = Lab(mesh, say=lambda _: None, policy=EventuallyPolicy(times=1, timeout_s=1))
    with pytest.raises(KeyboardInterrupt):
        lab.apply_text("apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
                       "metadata: {name: reviews}\nspec: {host: reviews}\n")
    lab.cleanup()
    assert [str(k) for k in mesh.deleted] == ["DestinationRule/reviews (namespace default)"]
    assert lab.leaks() == set()


def test_a_request_through_the_ingress_names_its_host_and_pins_it_to_the_gateway():
    """The handout's ``curl --resolve "<host>:$SECURE_INGRESS_PORT:$INGRESS_HOST"
    https://<host>:$SECURE_INGRESS_PORT<path>``: the name is the SNI and the Host."""
    mesh = RecordingMesh()
    said: list[str] = []
    lab = Lab(mesh, say=said.append, explain=True)
    lab.send_through_ingress(HttpRequest(url="/status/418", cacert="/ca.crt"), 2,
                             port_name="https", host="httpbin.example.com", scheme="https")
    sent = mesh.sent_from_host
    assert sent.url == "https://httpbin.example.com:30443/status/418"
    assert sent.resolve == ("httpbin.example.com:30443:192.0.2.7",) and sent.cacert == "/ca.crt"
    assert said[1] == "export INGRESS_HOST=192.0.2.7 SECURE_INGRESS_PORT=30443"
    lab.send_through_ingress(HttpRequest(url="/productpage"))
    assert mesh.sent_from_host.url == "http://192.0.2.7:30080/productpage"
    assert mesh.sent_from_host.resolve == ()


def test_an_apply_the_step_explained_itself_shows_no_kubectl_apply():
    said: list[str] = []
    lab = Lab(RecordingMesh(), say=said.append, explain=True)
    lab.apply(parse_text(DEPRECATED_OUTLIER), explained=True)
    assert not any(line.startswith("kubectl apply") for line in said)
    lab.apply(parse_text(DEPRECATED_OUTLIER))
    assert any(line.startswith("kubectl apply") for line in said)


def test_explain_shows_a_batch_once_however_often_the_check_re_sends_it():
    """--explain for a lab reads as the handout's commands: a check's re-sends are its own
    doing and are not shown again; --workshop's pause comes once the command is shown."""
    said: list[str] = []
    shown_before_acting: list[int] = []
    mesh = RecordingMesh()
    lab = Lab(mesh, say=said.append, explain=True,
              policy=EventuallyPolicy(times=3, timeout_s=5.0, interval_s=0.0))
    lab.before_acting = lambda: shown_before_acting.append(len(mesh.upstream_log))
    lab.send(HttpRequest(url="http://httpbin:8000/status/503"), 2)
    assert shown_before_acting == [0]  # shown, then paused, then sent
    lab.expect("503 every time", lambda traffic: None)
    assert len(mesh.upstream_log) == 6  # the batch and two re-sends
    assert sum("curl" in line for line in said) == 1, said
