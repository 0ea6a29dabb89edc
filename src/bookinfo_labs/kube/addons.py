"""Istio's observability addons as a release ships them (``samples/addons/``), fetched from
the release's tag once and kept under ``.tools/``: what ``kubectl apply -f
samples/addons/prometheus.yaml`` from the unpacked release does in the handouts."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..mesh import MeshError
from .tools import TOOLS_DIR, Fetch, fetch_url, install

ADDON_URL = "https://raw.githubusercontent.com/istio/istio/{patch}/samples/addons/{name}.yaml"
#: the addon's Service, in istio-system, that the labs query (the handouts' port-forward
#: target; from a pod, http://prometheus.istio-system:9090)
PROMETHEUS_URL = "http://prometheus.istio-system:9090"
PROMETHEUS_DEPLOYMENT = "prometheus"
#: the tracing addon's Deployment (jaegertracing/all-in-one; its query API at
#: http://tracing.istio-system:80/jaeger, its Zipkin collector at zipkin.istio-system:9411)
JAEGER_DEPLOYMENT = "jaeger"


def addon_path(patch: str, name: str, tools_dir: Path = TOOLS_DIR) -> Path:
    return tools_dir / "addons" / patch / f"{name}.yaml"


def addon_objects(patch: str, name: str, *, tools_dir: Path = TOOLS_DIR,
                  fetch: Fetch = fetch_url) -> tuple[Path, list[dict]]:
    """The objects of ``samples/addons/<name>.yaml`` at tag ``patch`` (downloaded when not
    kept yet; a tag's file never changes, so no checksum is published or needed)."""
    path = addon_path(patch, name, tools_dir)
    if not path.is_file():
        data = fetch(ADDON_URL.format(patch=patch, name=name))
        try:
            list(yaml.safe_load_all(data.decode()))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise MeshError(f"samples/addons/{name}.yaml of Istio {patch} is not YAML: {exc}") \
                from None
        install(path, data)
        path.chmod(0o644)
    objects = [o for o in yaml.safe_load_all(path.read_text()) if o]
    if not objects:
        raise MeshError(f"{path} holds no objects; delete it and run `make kind-up` again")
    return path, objects
