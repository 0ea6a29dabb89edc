"""EmulatedCluster: a Kubernetes API backed by a running local mesh, provisioned like the
kind cluster ``make kind-up`` makes (one node, Istio's istiod, the default namespace
labelled for injection, the sample apps deployed through the kube backend's own code).

Nothing here decides how a request is routed: the API stores objects with Kubernetes'
semantics, the controllers (controllers.py) hand them to the local control plane, real
Envoy does the rest.
"""

from __future__ import annotations

import logging
import shutil

import yaml
from fakeapi import FakeApiServer

from bookinfo_labs.kube.api import KubeApi, load_api_client
from bookinfo_labs.kube.apply import Applier
from bookinfo_labs.kube.context import EMULATED_CONTEXT, EMULATED_PROVIDER
from bookinfo_labs.kube.samples import Samples
from bookinfo_labs.local import LocalMesh
from bookinfo_labs.local.mesh import GATEWAYS_FILE
from bookinfo_labs.local.pilot import meshconfig
from bookinfo_labs.rundir import make_run_dir
from bookinfo_labs.versions import IstioVersion

from .containers import Containers
from .controllers import INJECTION_LABEL, MESH_CONFIG, NODE_NAME, Istiod, Workloads

log = logging.getLogger(__name__)


class EmulatedCluster:
    def __init__(self, istio: IstioVersion, *, envoy: str | None = None,
                 namespace: str = "default", samples: tuple[str, ...] | None = None):
        self.istio = istio
        self.envoy = envoy
        self.namespace = namespace
        self.samples = samples if samples is not None else (
            "bookinfo", istio.client, "fortio", "httpbin")  # what `make kind-up` deploys
        self.workdir = make_run_dir()
        self.kubeconfig = str(self.workdir / "kubeconfig")
        self.mesh: LocalMesh | None = None
        self.api: FakeApiServer | None = None
        self.containers: Containers | None = None
        self.istiod: Istiod | None = None
        self.workloads: Workloads | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> "EmulatedCluster":
        try:
            # the gateways are the kubelet's to start, from the objects the install makes
            self.mesh = LocalMesh.start(self.istio, self.namespace, self.envoy, gateways=False)
            self.containers = Containers(self.mesh)
            self.istiod = Istiod(None, self.mesh, self.istio)
            self.api = FakeApiServer(
                validator=self.istiod.unknown_fields, admission=self.istiod.admission,
                exec_handler=self._exec, log_handler=self._logs,
                delete_lag=1, lag_kinds={"Pod"}, auto_rollout=False)
            self.istiod.api = self.api
            self.workloads = Workloads(self.api, self.mesh, self.istio)
            self.api.watch(self.istiod.on_event)
            self.api.watch(self.workloads.on_event)
            self.istiod.start()
            self.workloads.start()
            self.api.start()
            self.api.write_kubeconfig(self.kubeconfig, EMULATED_CONTEXT)
            self._seed()
            self._deploy_samples()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """API first (nothing new comes in), then the controllers, the commands, the Envoys."""
        stops = [part.stop for part in (self.api, self.istiod, self.workloads) if part is not None]
        stops += [part.close for part in (self.containers, self.mesh) if part is not None]
        for stop in stops:
            try:
                stop()
            except Exception:  # noqa: BLE001 - close the rest whatever one did
                log.exception("closing the emulated cluster: %r", stop)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- what `make kind-up` would have made -----------------------------------------
    def _seed(self) -> None:
        api = self.api
        api.create({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME}},
                    "spec": {"providerID": f"{EMULATED_PROVIDER}{NODE_NAME}"}})
        api.mutate("", "namespaces", "", self.namespace,
                   lambda ns: ns["metadata"].setdefault("labels", {}).update(
                       {INJECTION_LABEL: "enabled"}))
        api.create({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "istiod", "namespace": "istio-system",
                                 "labels": {"app": "istiod"}},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "istiod"}},
                             "template": {"metadata": {"labels": {"app": "istiod"}},
                                          "spec": {"containers": [{
                                              "name": "discovery",
                                              "image": f"docker.io/istio/pilot:{self.istio.patch}"}]}}},
                    "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                               "updatedReplicas": 1, "availableReplicas": 1}})
        for obj in yaml.safe_load_all(GATEWAYS_FILE.read_text()):  # the demo profile's gateways
            api.create(obj)
        api.create({"apiVersion": "v1", "kind": "ConfigMap",  # the mesh config istiod reads
                    "metadata": {"name": MESH_CONFIG[1], "namespace": MESH_CONFIG[0]},
                    "data": {"mesh": yaml.safe_dump(meshconfig.DEMO_PROFILE)}})

    def _deploy_samples(self) -> None:
        """The sample apps, deployed by the kube backend's own Samples code, as the
        provisioning script does on kind."""
        client = load_api_client(EMULATED_CONTEXT, self.kubeconfig)
        try:
            api = KubeApi(client)
            deployer = Samples(api, Applier(api, self.namespace), self.namespace, self.istio,
                               timeout_s=120, poll_s=0.1)
            for name in self.samples:
                deployer.deploy(name, lambda msg: log.info("%s", msg))
        finally:
            client.close()

    # -- the kubelet's side of exec and logs -----------------------------------------
    def _container(self, namespace: str, pod_name: str, container: str):
        obj = self.api.get_object("", "pods", namespace, pod_name) or {}
        image = next((c.get("image", "") for c in (obj.get("spec") or {}).get("containers") or []
                      if c.get("name") == container), "")
        return self.mesh.pod_named(pod_name), image

    def _exec(self, namespace: str, pod_name: str, container: str,
              command: list[str]) -> tuple[bytes, bytes, int]:
        pod, image = self._container(namespace, pod_name, container)
        if pod is None:
            return b"", f"pod {pod_name} has no running containers\n".encode(), 1
        return self.containers.exec(pod, container, image, command)

    def _logs(self, namespace: str, pod_name: str, container: str, since_s: int | None) -> str:
        pod, _ = self._container(namespace, pod_name, container)
        return "" if pod is None else self.containers.logs(pod, container, since_s)
