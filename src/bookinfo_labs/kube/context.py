"""Which cluster the kube mesh may touch.

By default only the kind cluster our scripts create (``kind-bookinfo-labs``). Without
``--allow-any-context`` a context must be named ``kind-*`` AND be a kind cluster: its API
server on a loopback address (where kind publishes it), or, for kind's internal
kubeconfig (server ``https://<cluster>-control-plane:6443``), nodes whose ``providerID``
starts with ``kind://``. A name alone proves nothing (a context ``kind-prod`` may point
at production), and the labs create and delete Istio config: a mistyped or misnamed
context must never reach a shared cluster. The server check needs no connection.

``--emulated-cluster`` (the test suite's Kubernetes API backed by the local mesh, see
tests/emulated) accepts only ``emulated-*`` contexts whose server is on a loopback address
and whose nodes the emulation made (``providerID: emulated://...``); it never relaxes
the guard for anything else.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ..mesh import MeshError

#: the kind cluster's name (scripts/kind-config.yaml says the same; a test checks it)
KIND_CLUSTER_NAME = "bookinfo-labs"
DEFAULT_CONTEXT = f"kind-{KIND_CLUSTER_NAME}"
#: the emulated cluster's context and the providerID prefix of its nodes
EMULATED_CONTEXT = f"emulated-{KIND_CLUSTER_NAME}"
EMULATED_PROVIDER = "emulated://"


def is_kind_context(context: str) -> bool:
    return context.startswith("kind-")


def is_emulated_context(context: str) -> bool:
    return context.startswith("emulated-")


def resolve_context(context: str | None, allow_any_context: bool, emulated: bool = False) -> str:
    """The context to use, or MeshError when the guard refuses it."""
    if emulated:
        chosen = context or EMULATED_CONTEXT
        if not is_emulated_context(chosen):
            raise MeshError(f"refusing kube context {chosen!r} with --emulated-cluster: that "
                            "option only takes an emulated-* context (the test suite's emulated "
                            "cluster); leave it out to use a real cluster")
        return chosen
    chosen = context or DEFAULT_CONTEXT
    if not is_kind_context(chosen) and not allow_any_context:
        raise MeshError(
            f"refusing kube context {chosen!r}: without --allow-any-context only kind-* "
            "contexts are used (the labs create and delete Istio config in the cluster)"
        )
    return chosen


def check_kind_server(context: str, server: str, allow_any_context: bool,
                      emulated: bool = False) -> bool:
    """Refuse a server that cannot be a kind cluster's; True when its nodes must be checked.

    Called before any connection. A loopback server is accepted as it is; a kind node's
    own name (``*-control-plane``) is accepted once ``check_kind_nodes`` has seen the nodes.
    An emulated cluster must be on loopback, and its nodes are always checked.
    """
    if emulated:
        host = (urlsplit(server).hostname or "").lower()
        if not _is_loopback(host):
            raise MeshError(f"refusing kube context {context!r} with --emulated-cluster: its "
                            f"API server {server} is not on this machine, so it is not the "
                            "emulated cluster")
        return True
    if allow_any_context:
        return False
    host = (urlsplit(server).hostname or "").lower()
    if _is_loopback(host):
        return False
    if host.endswith("-control-plane"):
        return True
    raise MeshError(
        f"refusing kube context {context!r}: its API server {server} is not on this machine, "
        "so it is not a kind cluster (kind serves its API on 127.0.0.1). Without "
        "--allow-any-context the labs only run where they may create and delete Istio config"
    )


def check_kind_nodes(context: str, nodes: list[dict], emulated: bool = False) -> None:
    """Refuse a cluster whose nodes kind did not make (``providerID: kind://...``), or with
    ``emulated``, whose nodes the emulated cluster did not make (``emulated://...``)."""
    ids = [((node.get("spec") or {}).get("providerID") or "") for node in nodes]
    prefix = EMULATED_PROVIDER if emulated else "kind://"
    if ids and all(i.startswith(prefix) for i in ids):
        return
    shown = ", ".join(sorted({i or "(none)" for i in ids})) or "no nodes"
    if emulated:
        raise MeshError(f"refusing kube context {context!r} with --emulated-cluster: its "
                        f"nodes are not the emulated cluster's (providerID {shown})")
    raise MeshError(
        f"refusing kube context {context!r}: its nodes are not kind nodes (providerID "
        f"{shown}); pass --allow-any-context to use it anyway"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def fix_hint(context: str) -> str:
    """What to run when the cluster, Istio or a sample is missing at that context."""
    if is_emulated_context(context):
        return ("the emulated cluster lives only inside a test run: use `make kube-emulated` "
                "(it starts it, see tests/emulated)")
    if context == DEFAULT_CONTEXT:
        return "run `make kind-up` (needs Docker and kind)"
    if is_kind_context(context):
        return (f"run `make kind-up` (needs Docker and kind) and use the default context "
                f"{DEFAULT_CONTEXT}, or provision this one with "
                f"`python scripts/cluster.py up --context {context}`")
    return (f"run `make kind-up` (needs Docker and kind) for the lab's own cluster, or "
            f"provision this one with `python scripts/cluster.py up --context {context} "
            f"--allow-any-context`")
