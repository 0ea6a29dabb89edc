"""The embedded local mesh: Istio semantics on loopback."""

from .mesh import LocalMesh

__all__ = ["LocalMesh"]
