"""Lab config a killed run left in a cluster: found before anything runs, deleted on request.

A real pytest run of the labs in a subprocess, with --mesh kube against the in-process
fake API server (a loopback kind-like cluster).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bookinfo_labs.kube.apply import MANAGED_BY_LABEL, SAMPLE_LABEL
from fakeapi import FakeApiServer

from test_kube_mesh import seed

ROOT = Path(__file__).resolve().parents[1]
LEFT = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default",
                     "labels": {MANAGED_BY_LABEL: "bookinfo-labs"}},
        "spec": {"hosts": ["reviews"]}}


@pytest.fixture
def cluster(tmp_path):
    fake = FakeApiServer(delete_lag=0).start()
    seed(fake)
    fake.put(LEFT)
    fake.put({**LEFT, "metadata": {"name": "httpbin", "namespace": "default", "labels": {
        MANAGED_BY_LABEL: "bookinfo-labs", SAMPLE_LABEL: "httpbin"}}})  # a sample's: kept
    kubeconfig = fake.write_kubeconfig(str(tmp_path / "kubeconfig"))
    yield fake, kubeconfig
    fake.stop()


def _labs(kubeconfig, *args):
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    return subprocess.run([sys.executable, "-m", "pytest", "features/", "--mesh", "kube",
                           "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_leftovers_stop_the_run_naming_them_and_the_fix(cluster):
    fake, kubeconfig = cluster
    run = _labs(kubeconfig)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert ("the cluster holds lab config an earlier run left behind (killed before it could "
            "clean up?): VirtualService/reviews (namespace default)") in run.stderr
    assert "`make kind-clean-labs`" in run.stderr and "--delete-leftovers" in run.stderr
    assert fake.get_object("networking.istio.io", "virtualservices", "default", "reviews")


def test_delete_leftovers_removes_only_lab_config(cluster):
    fake, kubeconfig = cluster
    run = _labs(kubeconfig, "--delete-leftovers")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "deleted what an earlier run left: VirtualService/reviews" in run.stdout
    assert fake.get_object("networking.istio.io", "virtualservices", "default", "reviews") is None
    assert fake.get_object("networking.istio.io", "virtualservices", "default", "httpbin")
