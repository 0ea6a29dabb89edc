"""Provisioning the labs' cluster: kind, Istio (istioctl, pinned), the sample apps.

``scripts/cluster.py up`` (``make kind-up``) runs ``Provisioner.up``; every step first
looks whether its result is already there and skips it if so, so re-running is cheap
and safe. External tools are only kind, docker (through kind) and istioctl; everything
in the cluster goes through the kubernetes client.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import sh
from rich.console import Console
from rich.markup import escape

from ..manifests import MANIFESTS_ROOT
from ..mesh import MeshError
from ..versions import IstioVersion
from .addons import JAEGER_DEPLOYMENT, PROMETHEUS_DEPLOYMENT, addon_objects
from .api import KubeApi, ResourceType, kube_contexts, load_api_client
from .apply import SAMPLE_LABEL, Applier
from .context import (DEFAULT_CONTEXT, KIND_CLUSTER_NAME, check_kind_nodes, check_kind_server,
                      resolve_context)
from .istioctl import OPERATOR_FILE, ensure_istioctl, install_args, istioctl_path
from .mesh import ISTIO_NAMESPACE, KubeMesh, installed_istio_version
from .samples import DEPLOYMENTS, NODES, Samples, rollout_state
from .tools import KIND_VERSION, TOOLS_DIR, Fetch, ensure_kind, kind_path

PROJECT_ROOT = MANIFESTS_ROOT.parent
KIND_CONFIG = PROJECT_ROOT / "scripts" / "kind-config.yaml"
NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", namespaced=False)
ISTIO_DEPLOYMENTS = ("istiod", "istio-ingressgateway", "istio-egressgateway")
INJECTION_LABEL = "istio-injection"


class Runner(Protocol):
    def __call__(self, argv: list[str], *, timeout_s: float,
                 on_line: Callable[[str], None] | None = None) -> str: ...


def run_command(argv: list[str], *, timeout_s: float,
                on_line: Callable[[str], None] | None = None) -> str:
    """Run a tool without a TTY; stream its lines; MeshError with its output on failure."""
    lines: list[str] = []

    def collect(line: str) -> None:
        lines.append(line.rstrip("\n"))
        if on_line:
            on_line(line.rstrip("\n"))

    try:
        sh.Command(argv[0])(*argv[1:], _tty_out=False, _timeout=timeout_s, _out=collect,
                            _err=collect)
    except sh.CommandNotFound:
        raise MeshError(f"{argv[0]} is not installed") from None
    except sh.TimeoutException:
        raise MeshError(f"`{' '.join(argv[:3])} ...` did not finish within {timeout_s:.0f} s") from None
    except sh.ErrorReturnCode as exc:
        tail = "\n".join(lines[-15:])
        raise MeshError(f"`{' '.join(argv)}` failed (exit {exc.exit_code}):\n{tail}") from None
    return "\n".join(lines)


class Reporter(Protocol):
    def step(self, title: str) -> "Step": ...


class Step(Protocol):
    """One provisioning step: ``update`` shows progress, ``done`` its outcome."""

    def update(self, message: str) -> None: ...
    def done(self, message: str) -> None: ...
    def __enter__(self) -> "Step": ...
    def __exit__(self, *exc) -> None: ...


@dataclass
class RichReporter:
    """Progress on the terminal: a spinner with the step's latest line, then ✓ or ✗."""

    console: Console = field(default_factory=lambda: Console(highlight=False))

    def step(self, title: str) -> "_RichStep":
        return _RichStep(self.console, title)


class _RichStep:
    def __init__(self, console: Console, title: str):
        self.console = console
        self.title = escape(title)
        self.status = console.status(f"[bold]{self.title}[/bold]")

    def __enter__(self) -> "_RichStep":
        self.status.__enter__()
        return self

    def update(self, message: str) -> None:
        self.status.update(f"[bold]{self.title}[/bold]: {escape(message[-100:])}")

    def done(self, message: str) -> None:
        self.console.print(f"[green]✓[/green] {self.title}: {escape(message)}")

    def __exit__(self, exc_type, *rest) -> None:
        self.status.__exit__(exc_type, *rest)
        if exc_type is not None:
            self.console.print(f"[red]✗[/red] {self.title}")


@dataclass
class Provisioner:
    istio: IstioVersion
    context: str | None = None
    allow_any_context: bool = False
    namespace: str = "default"
    kubeconfig: str | None = None
    run: Runner = run_command
    which: Callable[[str], str | None] = shutil.which
    reporter: Reporter = field(default_factory=RichReporter)
    tools_dir: Path = TOOLS_DIR
    kind_config: Path = KIND_CONFIG
    operator_file: Path = OPERATOR_FILE
    fetch: Fetch | None = None  # downloads of kind and istioctl (tests answer them)
    rollout_timeout_s: float = 600.0
    poll_s: float = 2.0

    def __post_init__(self) -> None:
        self.context = resolve_context(self.context, self.allow_any_context)
        self.owns_cluster = self.context == DEFAULT_CONTEXT

    # -- the whole thing ---------------------------------------------------------------
    def up(self, samples: tuple[str, ...] | None = None) -> tuple[str, int]:
        """Cluster, Istio, injection label, samples; returns the ingress address."""
        if self.owns_cluster:
            self.ensure_cluster()
        istioctl = self.ensure_istioctl()
        api = self._api()
        self.ensure_istio(api, istioctl)
        self.ensure_prometheus(api)
        self.ensure_jaeger(api)
        self.ensure_injection(api)
        self.ensure_samples(api, samples)
        return self.ingress()

    def down(self) -> bool:
        """Delete the kind cluster; False when there was none."""
        if not self.owns_cluster:
            raise MeshError(f"`down` only deletes the labs' own kind cluster ({DEFAULT_CONTEXT}), "
                            f"not {self.context}")
        kind = self.ensure_kind()
        with self.reporter.step(f"kind cluster {KIND_CLUSTER_NAME}") as step:
            if KIND_CLUSTER_NAME not in self._kind_clusters(kind):
                step.done("not there, nothing to delete")
                return False
            self.run([kind, "delete", "cluster", "--name", KIND_CLUSTER_NAME], timeout_s=300,
                     on_line=step.update)
            step.done("deleted")
        return True

    # -- steps -------------------------------------------------------------------------
    def _tool(self, name: str, hint: str) -> str:
        path = self.which(name)
        if not path:
            raise MeshError(f"{name} is not installed: {hint}")
        return path

    def _kind_clusters(self, kind: str) -> list[str]:
        out = self.run([kind, "get", "clusters"], timeout_s=60)
        return [line.strip() for line in out.splitlines() if line.strip()
                and not line.startswith("No kind clusters")]

    def ensure_cluster(self) -> None:
        docker = self._tool("docker", "install Docker (kind runs its nodes as containers)")
        try:  # before any download: without a Docker engine nothing else can work
            self.run([docker, "info", "--format", "{{.ServerVersion}}"], timeout_s=30)
        except MeshError as exc:
            detail = str(exc).splitlines()[-1] if str(exc) else ""
            raise MeshError(f"Docker is not running ({detail.strip()}): start it, then run "
                            "`make kind-up` again") from None
        kind = self.ensure_kind()
        with self.reporter.step(f"kind cluster {KIND_CLUSTER_NAME}") as step:
            if KIND_CLUSTER_NAME in self._kind_clusters(kind) and self.context in kube_contexts(self.kubeconfig):
                step.done(f"already there (context {self.context})")
                self._warn_node_version(step)
                return
            self.run([kind, "create", "cluster", "--name", KIND_CLUSTER_NAME,
                      "--config", str(self.kind_config), "--image", self.istio.kind_node_image,
                      "--wait", "180s"], timeout_s=900, on_line=step.update)
            step.done(f"created with {self.istio.kind_node_image}")

    def _warn_node_version(self, step) -> None:
        wanted = self.istio.kind_node_image.split(":")[-1].split("@")[0]
        try:
            nodes = KubeApi(load_api_client(self.context, self.kubeconfig), timeout_s=10).list(NODES)
        except Exception:  # noqa: BLE001 - only a hint, never a reason to stop
            return
        versions = {((n.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") for n in nodes}
        if versions and wanted not in versions:
            step.done(f"note: it runs Kubernetes {', '.join(sorted(filter(None, versions)))}, "
                      f"the version table pins {wanted} for Istio {self.istio.version}; "
                      "`make kind-down kind-up` recreates it")

    def ensure_kind(self) -> str:
        """kind as CI pins it (KIND_VERSION), downloaded into .tools/ once."""
        with self.reporter.step(f"kind {KIND_VERSION}") as step:
            there = kind_path(KIND_VERSION, self.tools_dir).is_file()
            path = ensure_kind(KIND_VERSION, tools_dir=self.tools_dir, **self._fetch())
            step.done(f"{'already in' if there else 'downloaded and verified into'} "
                      f"{path.parent}")
        return str(path)

    def ensure_istioctl(self) -> str:
        with self.reporter.step(f"istioctl {self.istio.patch}") as step:
            there = istioctl_path(self.istio.patch, self.tools_dir).is_file()
            path = ensure_istioctl(self.istio.patch, tools_dir=self.tools_dir, **self._fetch())
            step.done(f"{'already in' if there else 'downloaded and verified into'} "
                      f"{path.parent}")
        return str(path)

    def _fetch(self) -> dict[str, Fetch]:
        return {"fetch": self.fetch} if self.fetch else {}

    def _api(self) -> KubeApi:
        """The cluster's API, once the context guard has seen it is a kind cluster."""
        try:
            api_client = load_api_client(self.context, self.kubeconfig)
        except Exception as exc:  # noqa: BLE001 - ConfigException and friends
            raise MeshError(f"no cluster reachable at context {self.context}: {exc}") from None
        api = KubeApi(api_client, timeout_s=30)
        if check_kind_server(self.context, api_client.configuration.host, self.allow_any_context):
            check_kind_nodes(self.context, api.list(NODES))
        return api

    def ensure_istio(self, api: KubeApi, istioctl: str) -> None:
        with self.reporter.step(f"Istio {self.istio.patch} (demo profile)") as step:
            istiod = api.get(DEPLOYMENTS, ISTIO_NAMESPACE, "istiod")
            found = installed_istio_version(istiod) if istiod else None
            if istiod is not None and found and not found.startswith(self.istio.version + "."):
                raise MeshError(f"Istio {found} is installed at context {self.context}; the labs "
                                f"want {self.istio.patch}: `make kind-down kind-up "
                                f"ISTIO_VERSION={self.istio.version}` recreates the cluster")
            if istiod is None or any(
                    rollout_state(api.get(DEPLOYMENTS, ISTIO_NAMESPACE, d)) == "not created"
                    for d in ISTIO_DEPLOYMENTS):
                self.run([istioctl, *install_args(self.operator_file), "--context", self.context],
                         timeout_s=900, on_line=step.update)
                note = f"installed from {self.operator_file.relative_to(PROJECT_ROOT)}"
            else:
                note = f"already installed ({found or 'version unknown'})"
            self._wait_rollouts(api, ISTIO_NAMESPACE, ISTIO_DEPLOYMENTS, step)
            step.done(note)

    def ensure_prometheus(self, api: KubeApi) -> None:
        """Istio's Prometheus addon of the release (the metrics and topology labs query it)."""
        self.ensure_addon(api, "Prometheus", "prometheus", PROMETHEUS_DEPLOYMENT)

    def ensure_jaeger(self, api: KubeApi) -> None:
        """Istio's Jaeger addon of the release (the tracing lab's collector and query API)."""
        self.ensure_addon(api, "Jaeger", "jaeger", JAEGER_DEPLOYMENT)

    def ensure_addon(self, api: KubeApi, title: str, name: str, deployment: str) -> None:
        """``samples/addons/<name>.yaml`` of the release, applied unless its Deployment
        exists, then rolled out."""
        with self.reporter.step(f"{title} addon (samples/addons of {self.istio.patch})") as step:
            if rollout_state(api.get(DEPLOYMENTS, ISTIO_NAMESPACE, deployment)) == "not created":
                source, objects = addon_objects(self.istio.patch, name,
                                                tools_dir=self.tools_dir, **self._fetch())
                applier = Applier(api, ISTIO_NAMESPACE)
                applier.apply([applier.target(o, str(source), {SAMPLE_LABEL: name})
                               for o in objects], sample=name)
                note = "installed"
            else:
                note = "already installed"
            self._wait_rollouts(api, ISTIO_NAMESPACE, (deployment,), step)
            step.done(note)

    def _wait_rollouts(self, api: KubeApi, namespace: str, names, step) -> None:
        deadline = time.monotonic() + self.rollout_timeout_s
        while True:
            states = {n: rollout_state(api.get(DEPLOYMENTS, namespace, n)) for n in names}
            pending = {n: s for n, s in states.items() if s}
            if not pending:
                return
            step.update("; ".join(f"{n}: {s}" for n, s in pending.items()))
            if time.monotonic() > deadline:
                raise MeshError(f"not rolled out in {namespace} after "
                                f"{self.rollout_timeout_s:.0f} s: " +
                                "; ".join(f"{n}: {s}" for n, s in pending.items()))
            time.sleep(self.poll_s)

    def ensure_injection(self, api: KubeApi) -> None:
        with self.reporter.step(f"sidecar injection in namespace {self.namespace}") as step:
            ns = api.get(NAMESPACES, None, self.namespace)
            labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
            if labels.get(INJECTION_LABEL) == "enabled":
                step.done(f"already labelled {INJECTION_LABEL}=enabled")
                return
            if ns is None:
                body = {"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": self.namespace,
                                     "labels": {INJECTION_LABEL: "enabled"}}}
                applier = Applier(api, self.namespace)
                applier.apply([applier.target(body, "provisioning", {SAMPLE_LABEL: "namespace"})],
                              sample="namespace")
            else:
                api.request("PATCH", NAMESPACES.path(None, self.namespace),
                            body={"metadata": {"labels": {INJECTION_LABEL: "enabled"}}},
                            content_type="application/merge-patch+json")
            step.done(f"labelled {INJECTION_LABEL}=enabled")

    def default_samples(self) -> tuple[str, ...]:
        return ("bookinfo", self.istio.client, "fortio", "httpbin")

    def ensure_samples(self, api: KubeApi, samples: tuple[str, ...] | None = None) -> None:
        deployer = Samples(api, Applier(api, self.namespace), self.namespace, self.istio,
                           timeout_s=self.rollout_timeout_s, poll_s=self.poll_s)
        for name in samples or self.default_samples():
            with self.reporter.step(f"sample {name}") as step:
                changed = deployer.deploy(name, step.update)
                step.done("deployed and rolled out" if changed else "already running")

    def clean_labs(self) -> list:
        """Delete the lab config in the cluster (ours, not a sample's); return its keys."""
        mesh = KubeMesh.connect(context=self.context, allow_any_context=self.allow_any_context,
                                istio=self.istio, namespace=self.namespace,
                                kubeconfig=self.kubeconfig)
        try:
            left = sorted(mesh.owned_resources(), key=str)
            mesh.delete(left)
            return left
        finally:
            mesh.close()

    def ingress(self) -> tuple[str, int]:
        """The ingress gateway's address from this machine (see KubeMesh.ingress_address)."""
        mesh = KubeMesh(context=self.context, istio=self.istio, namespace=self.namespace,
                        api_client=load_api_client(self.context, self.kubeconfig),
                        exec_client=load_api_client(self.context, self.kubeconfig))
        try:
            return mesh.ingress_address()
        finally:
            mesh.close()
