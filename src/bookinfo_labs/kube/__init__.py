"""The kube backend: the same Mesh verbs against a real cluster."""

from .mesh import KubeMesh

__all__ = ["KubeMesh"]
