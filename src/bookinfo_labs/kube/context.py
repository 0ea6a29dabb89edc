"""Which cluster the kube mesh may touch.

By default only the kind cluster our scripts create (``kind-bookinfo-labs``); any context
whose name does not start with ``kind-`` is refused unless the user says
``--allow-any-context``: the labs create and delete Istio config, and a mistyped context
should never reach a shared cluster.
"""

from __future__ import annotations

from ..mesh import MeshError

#: the kind cluster's name (scripts/kind-config.yaml says the same; a test checks it)
KIND_CLUSTER_NAME = "bookinfo-labs"
DEFAULT_CONTEXT = f"kind-{KIND_CLUSTER_NAME}"


def is_kind_context(context: str) -> bool:
    return context.startswith("kind-")


def resolve_context(context: str | None, allow_any_context: bool) -> str:
    """The context to use, or MeshError when the guard refuses it."""
    chosen = context or DEFAULT_CONTEXT
    if not is_kind_context(chosen) and not allow_any_context:
        raise MeshError(
            f"refusing kube context {chosen!r}: without --allow-any-context only kind-* "
            "contexts are used (the labs create and delete Istio config in the cluster)"
        )
    return chosen


def fix_hint(context: str) -> str:
    """What to run when the cluster, Istio or a sample is missing at that context."""
    if context == DEFAULT_CONTEXT:
        return "run `make kind-up` (needs Docker and kind)"
    if is_kind_context(context):
        return (f"run `make kind-up` (needs Docker and kind) and use the default context "
                f"{DEFAULT_CONTEXT}, or provision this one with "
                f"`python scripts/cluster.py up --context {context}`")
    return (f"run `make kind-up` (needs Docker and kind) for the lab's own cluster, or "
            f"provision this one with `python scripts/cluster.py up --context {context} "
            f"--allow-any-context`")
