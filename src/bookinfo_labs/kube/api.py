"""Talking to the API server: kubeconfig loading, resource types, one generic request.

The kubernetes client's typed APIs cover built-in kinds; Istio's kinds are custom
resources, and server-side apply needs the ``application/apply-patch+yaml`` content type
and query parameters (``fieldValidation=Strict``) that the generic helpers drop. So every
config object goes through ``KubeApi.request``, which uses the client's own request
serialisation, authentication and transport (``ApiClient.param_serialize`` /
``call_api``) on a path built from a ``ResourceType``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterable

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ..mesh import MeshError


class KubeApiError(Exception):
    """A non-2xx answer (or no answer) from the API server, with the server's message."""

    def __init__(self, status: int, reason: str, message: str):
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{status} {reason}: {message}" if status else message)

    @property
    def not_found(self) -> bool:
        return self.status == 404


def api_error(exc: ApiException) -> KubeApiError:
    """The API server's own words from an ApiException (its body is a Status object)."""
    message = exc.reason or ""
    reason = exc.reason or ""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            message = body.strip()[:500]
        else:
            if isinstance(status, dict):
                message = status.get("message") or message
                reason = status.get("reason") or reason
    return KubeApiError(int(exc.status or 0), str(reason), str(message))


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the API: group, version, plural, and whether it is namespaced."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.kind} is namespaced: a namespace is needed")
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    def with_version(self, version: str) -> "ResourceType":
        return ResourceType(self.group, version, self.kind, self.plural, self.namespaced)


def _t(api_version: str, kind: str, plural: str, namespaced: bool = True) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced)


#: Istio's config kinds: what the labs apply and what the leak check lists
ISTIO_TYPES: tuple[ResourceType, ...] = (
    _t("networking.istio.io/v1", "VirtualService", "virtualservices"),
    _t("networking.istio.io/v1", "DestinationRule", "destinationrules"),
    _t("networking.istio.io/v1", "Gateway", "gateways"),
    _t("networking.istio.io/v1", "ServiceEntry", "serviceentries"),
    _t("networking.istio.io/v1", "Sidecar", "sidecars"),
    _t("networking.istio.io/v1", "WorkloadEntry", "workloadentries"),
    _t("networking.istio.io/v1", "WorkloadGroup", "workloadgroups"),
    _t("networking.istio.io/v1alpha3", "EnvoyFilter", "envoyfilters"),
    _t("security.istio.io/v1", "PeerAuthentication", "peerauthentications"),
    _t("security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies"),
    _t("security.istio.io/v1", "RequestAuthentication", "requestauthentications"),
    _t("telemetry.istio.io/v1", "Telemetry", "telemetries"),
)

#: the Kubernetes Gateway API kinds some labs use (listed only where the CRDs exist)
GATEWAY_API_TYPES: tuple[ResourceType, ...] = (
    _t("gateway.networking.k8s.io/v1", "Gateway", "gateways"),
    _t("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
    _t("gateway.networking.k8s.io/v1", "GRPCRoute", "grpcroutes"),
    _t("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "referencegrants"),
)

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("v1", "Namespace", "namespaces", namespaced=False),
    _t("v1", "Service", "services"),
    _t("v1", "ServiceAccount", "serviceaccounts"),
    _t("v1", "ConfigMap", "configmaps"),
    _t("v1", "Secret", "secrets"),
    _t("v1", "Pod", "pods"),
    _t("v1", "Endpoints", "endpoints"),
    _t("v1", "Event", "events"),
    _t("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    _t("apps/v1", "Deployment", "deployments"),
    _t("apps/v1", "StatefulSet", "statefulsets"),
    _t("apps/v1", "DaemonSet", "daemonsets"),
    _t("batch/v1", "Job", "jobs"),
    _t("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    _t("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    _t("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _t("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _t("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings",
       namespaced=False),
    _t("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions",
       namespaced=False),
)

KNOWN_TYPES: dict[tuple[str, str], ResourceType] = {
    (t.group, t.kind): t for t in (*BUILTIN_TYPES, *GATEWAY_API_TYPES, *ISTIO_TYPES)
}
#: a bare kind name resolves to this type (Istio's Gateway wins over the Gateway API's:
#: the labs are Istio labs)
TYPES_BY_KIND: dict[str, ResourceType] = {
    t.kind: t for t in (*GATEWAY_API_TYPES, *BUILTIN_TYPES, *ISTIO_TYPES)
}


def load_api_client(context: str, kubeconfig: str | None = None,
                    retries: int = 1) -> client.ApiClient:
    """An isolated ApiClient for one kubeconfig context (never the global default).

    ``kubeconfig`` defaults to ``$KUBECONFIG`` (read now, not at import) and then
    ``~/.kube/config``. Raises ConfigException when the file or the context is missing.
    """
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    configuration = client.Configuration()
    config.load_kube_config(config_file=path, context=context,
                            client_configuration=configuration, persist_config=False)
    configuration.retries = retries
    return client.ApiClient(configuration)


def kube_contexts(kubeconfig: str | None = None) -> list[str]:
    """The context names in the kubeconfig ([] when there is none); MeshError naming the
    file when it is not a kubeconfig at all."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    where = f"the kubeconfig {path}" + (" (from $KUBECONFIG)" if not kubeconfig and
                                         os.environ.get("KUBECONFIG") else "")
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=path)
        return [c["name"] for c in contexts or []]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MeshError(f"{where} is not valid YAML{at}: {problem}; fix it or point "
                        "KUBECONFIG at another file") from None
    except (TypeError, AttributeError, KeyError) as exc:
        raise MeshError(f"{where} is not a kubeconfig ({type(exc).__name__}: {exc}); fix it "
                        "or point KUBECONFIG at another file") from None
    except (ConfigException, OSError):
        return []


class KubeApi:
    """Generic JSON requests through one ApiClient, plus kind → ResourceType resolution."""

    def __init__(self, api_client: client.ApiClient, timeout_s: float = 30.0):
        self.api_client = api_client
        self.timeout_s = timeout_s
        self._discovered: dict[tuple[str, str], ResourceType] = {}
        self._missing_groups: set[str] = set()

    # -- requests ------------------------------------------------------------------
    def request(self, method: str, path: str, *, query: Iterable[tuple[str, Any]] = (),
                body: Any = None, content_type: str | None = None,
                timeout_s: float | None = None) -> Any:
        """One API call; returns the decoded JSON (or text); raises KubeApiError."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        serialized = self.api_client.param_serialize(
            method=method, resource_path=path, query_params=list(query) or None,
            header_params=headers, body=body, auth_settings=["BearerToken"],
        )
        timeout = timeout_s or self.timeout_s
        try:
            response = self.api_client.call_api(*serialized, _request_timeout=timeout)
            data = response.read()
        except ApiException as exc:
            raise api_error(exc) from None
        except Exception as exc:  # urllib3 connection/timeout errors
            raise KubeApiError(0, type(exc).__name__, f"API server not reachable: {exc}") from None
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        if not 200 <= response.status <= 299:
            raise api_error(ApiException(status=response.status, reason=response.reason,
                                         body=text))
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", rtype.path(namespace, name))
        except KubeApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, rtype: ResourceType, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        """Objects of a type (in a namespace, or everywhere when None) matching a selector."""
        if rtype.namespaced and namespace is None:
            base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
            path = f"{base}/{rtype.plural}"
        else:
            path = rtype.path(namespace)
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self.request("GET", path, query=query)
        return list((result or {}).get("items") or [])

    # -- types ---------------------------------------------------------------------
    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """The ResourceType of an apiVersion/kind: the built-in table, else API discovery."""
        group, _, version = api_version.rpartition("/")
        known = KNOWN_TYPES.get((group, kind))
        if known:
            return known if known.version == version else known.with_version(version)
        key = (api_version, kind)
        if key not in self._discovered:
            self._discovered[key] = self._discover(group, version, kind)
        return self._discovered[key]

    def _discover(self, group: str, version: str, kind: str) -> ResourceType:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        api_version = f"{group}/{version}" if group else version
        try:
            listing = self.request("GET", path)
        except KubeApiError as exc:
            if exc.not_found:
                raise KubeApiError(404, "NotFound",
                                   f"the cluster does not serve {api_version} "
                                   f"(is the CRD for {kind} installed?)") from None
            raise
        for resource in (listing or {}).get("resources") or []:
            if resource.get("kind") == kind and "/" not in resource.get("name", ""):
                return ResourceType(group, version, kind, resource["name"],
                                    bool(resource.get("namespaced", True)))
        raise KubeApiError(404, "NotFound", f"the cluster has no kind {kind} in {api_version}")
