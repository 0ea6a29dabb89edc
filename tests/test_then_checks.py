"""Then steps that could pass wrongly: a late mirror copy, a split batch sent while the
config was still propagating, a re-send that inflates a count, a failure that hides what
was observed.

A scripted mesh stands in for a cluster: each batch it is sent is answered by the next
entry of a script, and the mirror's log gets the copies that entry says were made.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from bookinfo_labs.checks import EventuallyPolicy
from bookinfo_labs.checks.consistently import MIRROR_LAG_S
from bookinfo_labs.checks.sequential import BATCH
from bookinfo_labs.mesh import HttpRequest, HttpResponse, Mesh
from bookinfo_labs.scenario import Lab
from bookinfo_labs.versions import get_version
from steps import resilience, traffic

STEPS = Path(__file__).resolve().parents[1] / "steps"


def _review(version: str) -> HttpResponse:
    body = json.dumps({"podname": f"reviews-{version}-7d8f9c6b5d-x2k4p", "reviews": []})
    return HttpResponse(status=200, headers={"content-type": "application/json"}, body=body)


class ScriptedMesh(Mesh):
    """Batch i is answered by ``script[i]`` (the last entry repeats): a list of responses,
    or (responses, which requests were mirrored to httpbin-v2)."""

    name = "scripted"

    def __init__(self, script, late_mirror_lines=None):
        self.istio = get_version("1.26")
        self.script = list(script)
        self.batches = 0
        self.logs_by_workload: dict[str, list[str]] = {"httpbin-v1": [], "httpbin-v2": []}
        self.late = late_mirror_lines  # lines (from the mesh) that show up at the 2nd log read
        self.log_reads: list[float] = []

    def deploy(self, sample): pass
    def close(self): pass
    def apply(self, manifests): return []
    def delete(self, keys): pass
    def owned_resources(self): return set()
    def client(self): return "curl"
    def load(self, client, url, **kwargs): raise NotImplementedError
    def proxy_stats(self, workload): return {}
    def send_from_host(self, request, count=1): raise NotImplementedError
    def ingress_address(self, port_name="http2"): raise NotImplementedError
    def set_mesh_config(self, changes): raise NotImplementedError

    def send(self, client, request, count=1):
        entry = self.script[min(self.batches, len(self.script) - 1)]
        self.batches += 1
        responses, mirrored = entry if isinstance(entry, tuple) else (entry, lambda i: False)
        assert len(responses) == count, "the script answers the batch the step sent"
        for i in range(count):
            self.logs_by_workload["httpbin-v1"].append(f'"GET {request.url}" 200')
            if mirrored(i):
                self.logs_by_workload["httpbin-v2"].append(f'"GET {request.url}" 200')
        return responses

    def logs(self, workload, since_s=None, container=None):
        self.log_reads.append(time.monotonic())
        if len(self.log_reads) == 2 and self.late:
            self.logs_by_workload[workload] += self.late(self)
        return list(self.logs_by_workload[workload])


def _lab(mesh, times=1, timeout_s=2.0):
    return Lab(mesh, policy=EventuallyPolicy(times=times, timeout_s=timeout_s))


# -- splits go through eventually: a test run during propagation is run again -----------
# Each look of a sequential test is a batch of BATCH; the first is the one the When step sent.

def test_a_version_split_runs_a_new_test_after_one_on_the_old_weights(capsys):
    old = [_review("v1")] * BATCH  # the old route, still in the proxy
    new = [_review("v1"), _review("v3")] * (BATCH // 2)
    # all-v1 looks: the log-likelihood ratio for 60 % v1 grows ln(1.2) a request and
    # crosses the fail threshold (~15.6) within 100 requests: two looks, then new weights
    mesh = ScriptedMesh([old, old, new])
    lab = _lab(mesh)
    lab.send(HttpRequest(url="http://reviews:9080/reviews/0"), BATCH)
    traffic.versions_split(lab, "v1 50% and v3 50%")
    assert mesh.batches >= 3
    table = capsys.readouterr().out
    assert "(50.0%)" in table and "FAIL" not in table, table  # the passing test's table


def test_a_status_split_runs_a_new_test_after_one_without_the_fault(capsys):
    ok, fault = HttpResponse(status=200), HttpResponse(status=503)
    # no-fault looks: the ratio for 10 % grows ln(0.9 / 0.8) a request and crosses the fail
    # threshold (~15.6) within 150 requests: three looks, then a test on the fault
    mesh = ScriptedMesh([[ok] * BATCH] * 3 + [[fault, ok, ok, ok, ok] * (BATCH // 5)])
    lab = _lab(mesh)
    lab.send(HttpRequest(url="http://ratings:9080/ratings/0"), BATCH)
    resilience.statuses_split(lab, "503 20% and 200 80%")
    out = capsys.readouterr().out
    assert mesh.batches > 3 and "(20.0%)" in out and "FAIL" not in out, out


def test_a_failed_split_carries_the_table_of_the_last_test():
    wrong = [_review("v1")] * 35 + [_review("v3")] * 15  # 70/30 where 50/50 is expected
    mesh = ScriptedMesh([wrong])
    lab = _lab(mesh, timeout_s=0.3)
    lab.send(HttpRequest(url="http://reviews:9080/reviews/0"), BATCH)
    with pytest.raises(AssertionError) as failure:
        traffic.versions_split(lab, "v1 50% and v3 50%")
    message = str(failure.value)
    assert "traffic split outside what the test accepts" in message
    assert "passes at this n" in message and "FAIL" in message, message


def test_a_mirror_share_counts_each_batch_by_its_own_nonce(capsys):
    """The first look mirrors every request (an old 100 % rule): wrong for 50 %. A new test
    follows on the new rule; copies are counted per batch, never summed over nonces."""
    ok = [HttpResponse(status=200)] * BATCH
    mesh = ScriptedMesh([(ok, lambda i: True), (ok, lambda i: i % 2 == 0)])
    lab = _lab(mesh)
    lab.send_tagged(HttpRequest(url="http://httpbin:8000/headers"), BATCH)
    resilience.logged_share(lab, "httpbin-v2", "50")
    out = capsys.readouterr().out
    assert mesh.batches >= 2 and "FAIL" not in out, out
    n = int(next(line for line in out.splitlines() if " requests in " in line).split()[0])
    mirrored = next(line for line in out.splitlines() if line.startswith("mirrored "))
    assert f"| {BATCH + (n - BATCH) // 2} (" in mirrored, out  # 50 copies, then half of each


# -- "logged none" watches the whole window a mirror copy can take ----------------------

def test_logged_none_catches_a_mirror_copy_that_lands_after_the_first_look():
    mesh = ScriptedMesh([[HttpResponse(status=200, elapsed_s=0.01)] * 3],
                        late_mirror_lines=lambda m: list(m.logs_by_workload["httpbin-v1"]))
    lab = _lab(mesh)
    lab.send_tagged(HttpRequest(url="http://httpbin:8000/headers"), 3)
    with pytest.raises(AssertionError) as failure:
        resilience.logged_none(lab, "httpbin-v2")
    assert lab.nonce in str(failure.value)  # the line it found is in the message
    assert len(mesh.log_reads) == 2  # failed as soon as the line showed


def test_logged_none_watches_until_every_copy_could_have_landed():
    mesh = ScriptedMesh([[HttpResponse(status=200, elapsed_s=0.2)] * 3])
    lab = _lab(mesh)
    sent = lab.send_tagged(HttpRequest(url="http://httpbin:8000/headers"), 3)
    resilience.logged_none(lab, "httpbin-v2")
    assert mesh.log_reads[-1] >= sent.finished_at + 0.2 + MIRROR_LAG_S


# -- every failure message shows what was observed --------------------------------------

def test_the_details_error_check_says_what_the_pages_showed():
    page = HttpResponse(status=200, headers={"content-type": "text/html"},
                        body="<html><title>Simple Bookstore App</title></html>")
    lab = _lab(ScriptedMesh([[page] * 2]), timeout_s=0.0)
    lab.send(HttpRequest(url="http://productpage:9080/productpage"), 2)
    with pytest.raises(AssertionError) as failure:
        resilience.details_error(lab)
    assert "details error on 0 of 2 pages" in str(failure.value), str(failure.value)


def _asserts_without_observed_values(path: Path) -> list[str]:
    """Asserts with no message, or a message that is a constant (no observed value in it)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Assert) and (
                node.msg is None or isinstance(node.msg, ast.Constant)):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def test_every_assert_in_the_steps_has_a_message_with_what_was_observed():
    found = [line for path in sorted(STEPS.glob("*.py"))
             for line in _asserts_without_observed_values(path)]
    assert not found, "asserts whose failure would not say what was seen:\n" + "\n".join(found)


def test_the_assert_scan_finds_a_bare_assert(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f(x):\n    assert x\n    assert x, 'constant'\n    assert x, f'{x}'\n")
    assert len(_asserts_without_observed_values(sample)) == 2
