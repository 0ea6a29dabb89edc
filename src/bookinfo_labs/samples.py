"""The sample apps the labs deploy, and the manifests that define them.

Both meshes deploy from the same YAML: the kube backend applies it, the local mesh reads
its Services and Deployments and starts a local implementation of each container image.
"""

from __future__ import annotations

from .manifests import Manifest, load_file

SAMPLES: dict[str, str] = {
    "bookinfo": "bookinfo/platform/bookinfo.yaml",
    "curl": "clients/curl.yaml",
    "sleep": "clients/sleep.yaml",
    "httpbin": "httpbin/httpbin.yaml",
    "fortio": "clients/fortio.yaml",
}


def sample_manifests(sample: str) -> list[Manifest]:
    try:
        path = SAMPLES[sample]
    except KeyError:
        known = ", ".join(sorted(SAMPLES))
        raise ValueError(f"unknown sample app {sample!r}; known samples: {known}") from None
    return load_file(path)
