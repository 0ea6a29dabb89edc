"""The embedded local mesh: Istio's architecture without Kubernetes. Real Envoy sidecars,
configured over ADS by our own small control plane (``pilot``), in front of local
implementations of the sample apps, each pod on its own loopback addresses."""

from .mesh import LocalMesh

__all__ = ["LocalMesh"]
