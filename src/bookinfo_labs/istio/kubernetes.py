"""The built-in Kubernetes kinds the labs apply: Service, ServiceAccount, Secret,
ConfigMap, Namespace (core ``v1``) and Deployment (``apps/v1``).

Only what the local emulator reads is modelled, and fields that are not modelled are
ignored (see :class:`~bookinfo_labs.istio.base.KubeModel` for why): the labs apply the
stock sample manifests, full of probes, resources and security contexts, and on a real
cluster the API server validates these kinds itself (``fieldValidation=Strict``).
The modelled fields are still type-checked, and ``metadata`` is checked as strictly as
for the Istio kinds.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from .base import (
    DNS1035_LABEL_RULE,
    DNS1123_LABEL_RULE,
    Enum,
    KubeModel,
    PortNumber,
    Resource,
    NonNegativeInt32,
    fail,
    is_dns1035_label,
    is_dns1123_label,
    show,
)


def _int_or_string(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        fail(f"expected a port number or a port name, got {show(value)}")
    if isinstance(value, int) and not 1 <= value <= 65535:
        fail(f"a port number must be between 1 and 65535, got {value}")
    return value


#: Kubernetes IntOrString for ports: a number (1..65535) or a named container port
IntOrString = Annotated[int | str, BeforeValidator(_int_or_string)]


class KubeResource(Resource, KubeModel):
    """A built-in Kubernetes object; unknown fields are ignored."""


# --------------------------------------------------------------------------- Service


class ServicePort(KubeModel):
    name: str | None = None
    port: PortNumber
    target_port: IntOrString | None = None
    protocol: Enum("TCP", "UDP", "SCTP") | None = None
    app_protocol: str | None = None
    node_port: PortNumber | None = None


class ServiceSpec(KubeModel):
    ports: list[ServicePort] = Field(default_factory=list)
    selector: dict[str, str] = Field(default_factory=dict)
    type: Enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName") | None = None
    external_name: str | None = None


class Service(KubeResource):
    kind: Literal["Service"]
    spec: ServiceSpec = Field(default_factory=ServiceSpec)

    @model_validator(mode="after")
    def _name(self) -> Service:
        if not is_dns1035_label(self.metadata.name):
            fail(f"invalid Service name {show(self.metadata.name)}: use {DNS1035_LABEL_RULE}",
                 "metadata", "name")
        return self


# --------------------------------------------------------------------------- ServiceAccount, Namespace


class ServiceAccount(KubeResource):
    kind: Literal["ServiceAccount"]


class Namespace(KubeResource):
    kind: Literal["Namespace"]

    @model_validator(mode="after")
    def _name(self) -> Namespace:
        if not is_dns1123_label(self.metadata.name):
            fail(f"invalid Namespace name {show(self.metadata.name)}: use {DNS1123_LABEL_RULE}",
                 "metadata", "name")
        return self


# --------------------------------------------------------------------------- Secret, ConfigMap


def _base64_values(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                try:
                    base64.b64decode(item, validate=True)
                except (binascii.Error, ValueError):
                    fail(f"illegal base64 data in data[{key}] (use stringData for plain text)", key)
    return value


class Secret(KubeResource):
    kind: Literal["Secret"]
    type: str | None = None
    data: Annotated[dict[str, str], BeforeValidator(_base64_values)] = Field(default_factory=dict)
    string_data: dict[str, str] = Field(default_factory=dict)

    def decoded(self) -> dict[str, bytes]:
        """``data`` decoded and ``stringData`` encoded, merged as the API server does."""
        merged = {key: base64.b64decode(value) for key, value in self.data.items()}
        merged.update({key: value.encode() for key, value in self.string_data.items()})
        return merged


class ConfigMap(KubeResource):
    kind: Literal["ConfigMap"]
    data: dict[str, str] = Field(default_factory=dict)
    binary_data: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------- Deployment


class LabelSelector(KubeModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[Any] = Field(default_factory=list)


class ContainerPort(KubeModel):
    container_port: PortNumber
    name: str | None = None
    protocol: Enum("TCP", "UDP", "SCTP") | None = None


class EnvVar(KubeModel):
    name: str
    value: str | None = None


class Container(KubeModel):
    name: str
    image: str | None = None
    image_pull_policy: Enum("Always", "IfNotPresent", "Never") | None = None
    ports: list[ContainerPort] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)


class PodTemplateMetadata(KubeModel):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodSpec(KubeModel):
    service_account_name: str | None = None
    containers: list[Container] = Field(default_factory=list)


class PodTemplateSpec(KubeModel):
    metadata: PodTemplateMetadata = Field(default_factory=PodTemplateMetadata)
    spec: PodSpec = Field(default_factory=PodSpec)


class DeploymentSpec(KubeModel):
    replicas: NonNegativeInt32 | None = None  # apps/v1 DeploymentSpec: int32
    selector: LabelSelector
    template: PodTemplateSpec


class Deployment(KubeResource):
    kind: Literal["Deployment"]
    spec: DeploymentSpec

    @model_validator(mode="after")
    def _selector_matches(self) -> Deployment:
        labels = self.spec.template.metadata.labels
        for key, value in self.spec.selector.match_labels.items():
            if labels.get(key) != value:
                fail("selector does not match template labels (every selector.matchLabels "
                     "entry must be a label of spec.template.metadata)", "spec", "template",
                     "metadata", "labels")
        return self
