"""The sample apps the labs deploy, and the manifests that define them.

Both meshes deploy from the same YAML, adjusted to the selected Istio release's samples
(image tags; the Python httpbin of Istio 1.22): the kube backend applies
it, the local mesh reads its Services and Deployments and starts a local implementation
of each container image.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .manifests import MANIFESTS_ROOT, Manifest, manifest_from_object
from .mesh import MeshError
from .versions import IstioVersion

#: sample name -> its manifest files under manifests/
SAMPLE_FILES: dict[str, tuple[str, ...]] = {
    "bookinfo": ("bookinfo/platform/bookinfo.yaml",),
    "curl": ("clients/curl.yaml",),
    "sleep": ("clients/sleep.yaml",),
    "fortio": ("clients/fortio.yaml",),
    "httpbin": ("httpbin/httpbin.yaml",),
    "tcp-echo": ("tcp-echo/tcp-echo-services.yaml",),
    "ratelimit": ("ratelimit/ratelimit-config.yaml", "ratelimit/rate-limit-service.yaml"),
    # Istio's Zipkin addon (samples/addons/extras): the local mesh's tracing backend
    "zipkin": ("addons/zipkin.yaml",),
}

PYTHON_HTTPBIN_IMAGE = "docker.io/kong/httpbin"
#: Istio 1.22's samples/httpbin/httpbin.yaml runs kong/httpbin as "the Dockerfile's CMD on an
#: unprivileged port" (8080, like go-httpbin), plus ``--access-logfile -``: without it
#: gunicorn logs no requests, and the labs count requests in httpbin's log (the istio.io
#: mirroring task passes the same flag)
PYTHON_HTTPBIN_COMMAND = ["pipenv", "run", "gunicorn", "-b", "0.0.0.0:8080", "httpbin:app",
                          "-k", "gevent", "--access-logfile", "-"]
PYTHON_HTTPBIN_ENV = [{"name": "WORKON_HOME", "value": "/tmp"}]  # a writable pipenv home
_BOOKINFO_IMAGE = re.compile(r"^(?:.*/)?(examples-bookinfo-[a-z0-9-]+):[^/]+$")

def sample_paths(name: str, root: Path = MANIFESTS_ROOT) -> list[Path]:
    """The manifest files of a sample: the table, else ``<name>/<name>.yaml`` or
    ``clients/<name>.yaml``."""
    candidates = SAMPLE_FILES.get(name) or next(
        ((p,) for p in (f"{name}/{name}.yaml", f"clients/{name}.yaml",
                        f"{name}/platform/{name}.yaml") if (root / p).is_file()),
        None,
    )
    if not candidates:
        known = ", ".join(sorted(SAMPLE_FILES))
        raise MeshError(f"unknown sample app {name!r}: known samples are {known}")
    paths = [root / c for c in candidates]
    missing = [str(p.relative_to(root.parent)) for p in paths if not p.is_file()]
    if missing:
        raise MeshError(f"sample app {name!r} has no manifest: {', '.join(missing)} is missing")
    return paths


#: the label that asks Istio's injector for a sidecar in every pod of a namespace
INJECTION_LABEL = "istio-injection"


def sample_objects(name: str, istio: IstioVersion, root: Path = MANIFESTS_ROOT,
                   placement: "Placement | None" = None) -> list[tuple[str, dict]]:
    """(source, object) pairs of a sample, images set for the Istio release; with a
    ``placement``, every object without a namespace in its namespace (which the caller
    creates: ``Placement.namespace_object``)."""
    out = []
    for path in sample_paths(name, root):
        source = str(path.relative_to(root.parent))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out.append((source, for_version(doc, istio)))
    if placement is not None:
        out = [(source, placement.place(obj)) for source, obj in out]
    return out


@dataclass(frozen=True)
class Placement:
    """A sample deployed into another namespace than the labs' (the security labs' foo,
    bar and legacy): ``sidecar`` labels the namespace ``istio-injection=enabled``; without
    it the namespace has no label, as ``kubectl create ns legacy`` leaves it."""

    namespace: str
    sidecar: bool = True

    #: the owner the kube backend labels a placement's Namespace with (samples share it)
    OWNER: ClassVar[str] = "namespaces"

    def namespace_object(self) -> dict:
        metadata: dict[str, Any] = {"name": self.namespace}
        if self.sidecar:
            metadata["labels"] = {INJECTION_LABEL: "enabled"}
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}

    def place(self, obj: dict) -> dict:
        if obj.get("kind") == "Namespace" or (obj.get("metadata") or {}).get("namespace"):
            return obj
        return {**obj, "metadata": {**obj["metadata"], "namespace": self.namespace}}


def for_version(obj: dict[str, Any], istio: IstioVersion) -> dict[str, Any]:
    """The object with the images (and the httpbin flavour) of the Istio release's samples."""
    obj = copy.deepcopy(obj)
    python_httpbin = istio.httpbin == "python"
    for container in _containers(obj):
        image = container.get("image", "")
        match = _BOOKINFO_IMAGE.match(image)
        if match:
            container["image"] = f"{istio.sample_registry}/{match.group(1)}:{istio.bookinfo_tag}"
        elif python_httpbin and "go-httpbin" in image:
            container["image"] = PYTHON_HTTPBIN_IMAGE
            container["command"] = list(PYTHON_HTTPBIN_COMMAND)
            container.pop("args", None)
            container["env"] = [*(container.get("env") or []), *PYTHON_HTTPBIN_ENV]
    return obj


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") if obj.get("kind") != "Pod" else spec
    pod_spec = pod_spec or {}
    return [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]




def sample_manifests(name: str, istio: IstioVersion, root: Path = MANIFESTS_ROOT,
                     placement: Placement | None = None) -> list[Manifest]:
    """A sample's objects for the Istio release, validated like any manifest."""
    return [manifest_from_object(obj, source)
            for source, obj in sample_objects(name, istio, root, placement)]
