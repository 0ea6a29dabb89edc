"""pytest plugin: with ``--emulated-cluster``, start the emulated cluster before the kube
backend connects, point KUBECONFIG at it, and stop it when the session ends.

Load it with ``-p emulated.plugin`` and ``tests`` on PYTHONPATH (``make kube-emulated``).
"""

from __future__ import annotations

import os

import pytest

from bookinfo_labs.versions import get_version


#: why a marked scenario cannot run against the emulated cluster
CANNOT_RUN = {
    "needs-prometheus": "the emulated cluster runs no addon images, so no Prometheus (Istio's "
                        "samples/addons/prometheus.yaml) answers the metrics queries",
    "needs-istioctl": "istioctl analyze is a Go binary that make kind-up downloads; this "
                      "machine has no download, and the emulation does not imitate it",
    "needs-tracing-addon": "the Jaeger addon (samples/addons/jaeger.yaml) is an image the "
                           "emulated cluster does not run; its query API is what the "
                           "tracing scenarios read",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--emulated-cluster"):
        return
    for item in items:
        for marker, reason in CANNOT_RUN.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=f"not on the emulated cluster: {reason}"))


@pytest.hookimpl(tryfirst=True)  # before bookinfo_labs.plugin connects to the cluster
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if not config.getoption("--emulated-cluster") or config.getoption("--mesh") != "kube":
        return
    from .cluster import EmulatedCluster

    istio = get_version(config.getoption("--istio-version"))
    try:
        cluster = EmulatedCluster(istio, envoy=config.getoption("--envoy")).start()
    except Exception as exc:  # noqa: BLE001 - one message instead of a traceback
        raise pytest.UsageError(f"the emulated cluster did not start: {exc}") from exc
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = cluster.kubeconfig

    def stop() -> None:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        cluster.close()

    config.add_cleanup(stop)
