"""Whether Istio's sidecar injector gives a pod a sidecar, decided as a cluster decides it.

Two stages, as on a cluster: the API server calls one of the injector's webhooks only when
its ``namespaceSelector`` matches the namespace's labels and its ``objectSelector`` the
pod's (the istio-discovery chart's mutatingwebhook.yaml, default revision); the injector
then runs ``injectRequired`` (pkg/kube/inject/inject.go) on the pod. docs/facts.md#sidecar-injection
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

#: the namespace label that asks for (enabled) or refuses (disabled) injection
INJECTION_LABEL = "istio-injection"
#: the namespace (or pod) label that names a control-plane revision
REVISION_LABEL = "istio.io/rev"
#: the pod label (the newer API) or annotation that asks for or refuses a sidecar
POD_INJECT = "sidecar.istio.io/inject"
#: the revision the labs install (istiod without --revision answers to "default")
DEFAULT_REVISION = "default"
#: namespaces the injector never injects (pkg/kube/inject/initializer.go IgnoredNamespaces)
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease",
                                "local-path-storage"})
#: values of the pod label/annotation injectRequired reads as yes (YAML 1.1 booleans)
_YES = frozenset({"y", "yes", "true", "on"})


@dataclass(frozen=True)
class Injection:
    """The decision and the webhook (or rule) that made it, for messages."""

    injected: bool
    reason: str

    def __bool__(self) -> bool:
        return self.injected


def _webhook(ns: Mapping[str, str], pod: Mapping[str, str],
             revision: str) -> str | None:
    """The name of the first of the injector's four webhooks whose selectors match, or None
    (no webhook is called: the pod is created as it is)."""
    not_false = pod.get(POD_INJECT) != "false"
    if ns.get(REVISION_LABEL) == revision and INJECTION_LABEL not in ns and not_false:
        return "rev.namespace.sidecar-injector.istio.io"
    if REVISION_LABEL not in ns and INJECTION_LABEL not in ns and not_false \
            and pod.get(REVISION_LABEL) == revision:
        return "rev.object.sidecar-injector.istio.io"
    if ns.get(INJECTION_LABEL) == "enabled" and not_false:
        return "namespace.sidecar-injector.istio.io"
    if INJECTION_LABEL not in ns and REVISION_LABEL not in ns \
            and pod.get(POD_INJECT) == "true" and REVISION_LABEL not in pod:
        return "object.sidecar-injector.istio.io"
    return None


def decide(namespace: str, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str],
           pod_annotations: Mapping[str, str] | None = None,
           revision: str = DEFAULT_REVISION) -> Injection:
    """Whether a pod created in ``namespace`` gets a sidecar (Istio's default policy,
    ``enabled``; no hostNetwork pods in the labs)."""
    webhook = _webhook(namespace_labels, pod_labels, revision)
    if webhook is None:
        return Injection(False, _why_no_webhook(namespace_labels, pod_labels))
    if namespace in IGNORED_NAMESPACES:
        return Injection(False, f"the injector never injects in namespace {namespace}")
    # injectRequired: the label is the newer API and wins over the annotation
    asked = (pod_annotations or {}).get(POD_INJECT, "")
    asked = pod_labels.get(POD_INJECT, asked)
    if asked == "":
        return Injection(True, f"webhook {webhook} matched; policy enabled")
    if asked.lower() in _YES:
        return Injection(True, f"webhook {webhook} matched; the pod asks {POD_INJECT}={asked}")
    return Injection(False, f"the pod refuses with {POD_INJECT}={asked}")


def _why_no_webhook(ns: Mapping[str, str], pod: Mapping[str, str]) -> str:
    if ns.get(INJECTION_LABEL) not in (None, "enabled"):
        return (f"namespace label {INJECTION_LABEL}={ns[INJECTION_LABEL]}: no webhook matches, "
                "whatever the pod's labels")
    if pod.get(POD_INJECT) == "false":
        return f"the pod label {POD_INJECT}=false excludes it from every webhook"
    if REVISION_LABEL in ns:
        return f"namespace label {REVISION_LABEL}={ns[REVISION_LABEL]} names no installed revision"
    return (f"neither the namespace ({INJECTION_LABEL}, {REVISION_LABEL}) nor the pod "
            f"({POD_INJECT}=true) asks for a sidecar")
