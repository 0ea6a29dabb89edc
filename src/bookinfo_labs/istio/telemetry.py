"""telemetry.istio.io: Telemetry (tracing, metrics, access logging).

The apiVersions v1 and v1alpha1 share these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import (
    AtLeast1msDuration,
    Enum,
    IstioModel,
    PercentValue,
    PolicySelector,
    PolicyTargetReference,
    Resource,
    fail,
)

WorkloadMode = Enum("CLIENT_AND_SERVER", "CLIENT", "SERVER")
ISTIO_METRICS = ("ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE",
                 "RESPONSE_SIZE", "TCP_OPENED_CONNECTIONS", "TCP_CLOSED_CONNECTIONS",
                 "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES", "GRPC_REQUEST_MESSAGES",
                 "GRPC_RESPONSE_MESSAGES")


class ProviderRef(IstioModel):
    name: str


class TracingSelector(IstioModel):
    mode: WorkloadMode | None = None


class LiteralTag(IstioModel):
    value: str


class EnvironmentTag(IstioModel):
    name: str
    default_value: str | None = None


class RequestHeaderTag(IstioModel):
    name: str
    default_value: str | None = None


class CustomTag(IstioModel):
    literal: LiteralTag | None = None
    environment: EnvironmentTag | None = None
    header: RequestHeaderTag | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CustomTag:
        present = [n for n in ("literal", "environment", "header") if getattr(self, n) is not None]
        if len(present) != 1:
            fail("set exactly one of literal, environment or header in a custom tag")
        return self


class Tracing(IstioModel):
    match: TracingSelector | None = None
    providers: list[ProviderRef] = Field(default_factory=list)
    random_sampling_percentage: PercentValue | None = None
    disable_span_reporting: bool | None = None
    custom_tags: dict[str, CustomTag] = Field(default_factory=dict)
    use_request_id_for_trace_sampling: bool | None = None
    enable_istio_tags: bool | None = None


class MetricSelector(IstioModel):
    metric: Enum(*ISTIO_METRICS) | None = None
    custom_metric: str | None = None
    mode: WorkloadMode | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> MetricSelector:
        if self.metric is not None and self.custom_metric is not None:
            fail("set only one of metric or customMetric")
        return self


class TagOverride(IstioModel):
    operation: Enum("UPSERT", "REMOVE") | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _value(self) -> TagOverride:
        if (self.operation or "UPSERT") == "UPSERT" and not self.value:
            fail("value must be set when operation is UPSERT")
        if self.operation == "REMOVE" and self.value is not None:
            fail("value must not be set when operation is REMOVE")
        return self


class MetricsOverrides(IstioModel):
    match: MetricSelector | None = None
    disabled: bool | None = None
    tag_overrides: dict[str, TagOverride] = Field(default_factory=dict)


class Metrics(IstioModel):
    providers: list[ProviderRef] = Field(default_factory=list)
    overrides: list[MetricsOverrides] = Field(default_factory=list)
    reporting_interval: AtLeast1msDuration | None = None


class LogSelector(IstioModel):
    mode: WorkloadMode | None = None


class AccessLogFilter(IstioModel):
    expression: str


class AccessLogging(IstioModel):
    match: LogSelector | None = None
    providers: list[ProviderRef] = Field(default_factory=list)
    disabled: bool | None = None
    filter: AccessLogFilter | None = None


class TelemetrySpec(IstioModel):
    selector: PolicySelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] = Field(default_factory=list)
    tracing: list[Tracing] = Field(default_factory=list)
    metrics: list[Metrics] = Field(default_factory=list)
    access_logging: list[AccessLogging] = Field(default_factory=list)

    @model_validator(mode="after")
    def _checks(self) -> TelemetrySpec:
        chosen = [n for n, v in (("selector", self.selector), ("targetRef", self.target_ref),
                                 ("targetRefs", self.target_refs)) if v]
        if len(chosen) > 1:
            fail(f"only one of selector, targetRef or targetRefs can be set (found "
                 f"{' and '.join(chosen)})")
        return self


class Telemetry(Resource):
    kind: Literal["Telemetry"]
    spec: TelemetrySpec = Field(default_factory=TelemetrySpec)
