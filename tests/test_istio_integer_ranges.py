"""Integer fields hold what Istio's (and Kubernetes') integer types hold (issue #8, point 7).

The CRDs give each integer field its proto type (``manifests/charts/base/files/
crd-all.gen.yaml`` at 1.26.0): ``format: int32`` for an int32 (``weight``, ``attempts``,
the connection pool limits...), ``minimum: 0, maximum: 4294967295`` for a uint32 or
UInt32Value (``consecutive5xxErrors``, endpoint ``weight``...), ``minimum: 0`` alone for a
uint64 (``maglev.tableSize``, ``minimumRingSize``). Istio's webhook decodes the spec into
those proto types (``pilot/pkg/config/kube/crd/conversion.go`` ``ConvertObject``, 1.26.0),
so a value outside the type's range is refused.
"""

from __future__ import annotations

import textwrap
import types
import typing

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from bookinfo_labs.istio import FieldError, parse_resource
from bookinfo_labs.istio.registry import KINDS

import yaml

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def parse(text: str):
    return parse_resource(yaml.safe_load(textwrap.dedent(text)))


def error(text: str) -> FieldError:
    with pytest.raises(FieldError) as info:
        parse(text)
    return info.value


VS_HTTP_WEIGHT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: WEIGHT
"""


def test_a_weight_beyond_int32_is_refused_naming_the_range():
    err = error(VS_HTTP_WEIGHT.replace("WEIGHT", "99999999999999999999"))
    assert err.path == "spec.http[0].route[1].weight"
    assert err.message == ("must be between 0 and 2147483647 (an int32), "
                           "got 99999999999999999999")


def test_the_largest_int32_weight_is_accepted():
    vs = parse(VS_HTTP_WEIGHT.replace("WEIGHT", str(INT32_MAX)))
    assert vs.spec.http[0].route[1].weight == INT32_MAX


def _vs(body: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
            "spec:\n  hosts: [reviews]\n" + textwrap.indent(textwrap.dedent(body), "  "))


def _dr(policy: str) -> str:
    return ("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\n"
            "spec:\n  host: reviews\n  trafficPolicy:\n"
            + textwrap.indent(textwrap.dedent(policy), "    "))


_SE = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [ext.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.0.0.1, weight: <N>}]
"""
_WE = """\
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm}
spec: {address: 10.0.0.2, weight: <N>}
"""
_EF = """\
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: f}
spec:
  priority: <N>
  configPatches:
  - applyTo: CLUSTER
    match: {cluster: {portNumber: 9080}}
    patch: {operation: MERGE, value: {}}
"""
_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  replicas: <N>
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: d, image: d}]}
"""

#: (document with <N> where the value goes, the field's path, smallest, largest): the ranges
#: of the 1.26.0 CRD's types (Kubernetes' apps/v1 for replicas)
CASES = [
    # int32 fields whose negative values Istio's webhook refuses (validation.go, 1.26.0:
    # validateWeight, validateHTTPRetry, validateConnectionPool)
    (_vs("http:\n- route: [{destination: {host: reviews}, weight: <N>}]\n"),
     "spec.http[0].route[0].weight", 0, INT32_MAX),
    (_vs("tcp:\n- route: [{destination: {host: reviews}, weight: <N>}]\n"),
     "spec.tcp[0].route[0].weight", 0, INT32_MAX),
    (_vs("tls:\n- match: [{sniHosts: [reviews]}]\n  route: [{destination: {host: reviews}, weight: <N>}]\n"),
     "spec.tls[0].route[0].weight", 0, INT32_MAX),
    (_vs("http:\n- route: [{destination: {host: reviews}}]\n  retries: {attempts: <N>}\n"),
     "spec.http[0].retries.attempts", 0, INT32_MAX),
    (_dr("connectionPool: {tcp: {maxConnections: <N>}}\n"),
     "spec.trafficPolicy.connectionPool.tcp.maxConnections", 0, INT32_MAX),
    (_dr("connectionPool: {http: {http1MaxPendingRequests: <N>}}\n"),
     "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests", 0, INT32_MAX),
    (_dr("connectionPool: {http: {http2MaxRequests: <N>}}\n"),
     "spec.trafficPolicy.connectionPool.http.http2MaxRequests", 0, INT32_MAX),
    (_dr("connectionPool: {http: {maxRequestsPerConnection: <N>}}\n"),
     "spec.trafficPolicy.connectionPool.http.maxRequestsPerConnection", 0, INT32_MAX),
    (_dr("connectionPool: {http: {maxRetries: <N>}}\n"),
     "spec.trafficPolicy.connectionPool.http.maxRetries", 0, INT32_MAX),
    (_dr("connectionPool: {http: {maxConcurrentStreams: <N>}}\n"),
     "spec.trafficPolicy.connectionPool.http.maxConcurrentStreams", 0, INT32_MAX),
    (_dr("outlierDetection: {consecutiveErrors: <N>}\n"),
     "spec.trafficPolicy.outlierDetection.consecutiveErrors", 0, INT32_MAX),
    # uint32 / UInt32Value: minimum 0, maximum 4294967295
    (_dr("outlierDetection: {consecutive5xxErrors: <N>}\n"),
     "spec.trafficPolicy.outlierDetection.consecutive5xxErrors", 0, UINT32_MAX),
    (_dr("outlierDetection: {consecutiveGatewayErrors: <N>}\n"),
     "spec.trafficPolicy.outlierDetection.consecutiveGatewayErrors", 0, UINT32_MAX),
    (_dr("connectionPool: {tcp: {tcpKeepalive: {probes: <N>}}}\n"),
     "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.probes", 0, UINT32_MAX),
    (_dr("loadBalancer:\n  localityLbSetting:\n    distribute: [{from: a/b/*, to: {a/c/*: <N>}}]\n"),
     'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to["a/c/*"]', 0, UINT32_MAX),
    (_dr("retryBudget: {minRetryConcurrency: <N>}\n"),
     "spec.trafficPolicy.retryBudget.minRetryConcurrency", 0, UINT32_MAX),
    (_SE, "spec.endpoints[0].weight", 0, UINT32_MAX),
    (_WE, "spec.weight", 0, UINT32_MAX),
    # uint64: minimum 0 and no maximum in the CRD; the proto type bounds it
    (_dr("loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: <N>}}}\n"),
     "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize", 0, UINT64_MAX),
    (_dr("loadBalancer: {consistentHash: {httpHeaderName: x, ringHash: {minimumRingSize: <N>}}}\n"),
     "spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize", 0, UINT64_MAX),
    # a signed int32: EnvoyFilter priority may be negative
    (_EF, "spec.priority", -(2**31), INT32_MAX),
    # Kubernetes: Deployment replicas is an int32 (apps/v1 DeploymentSpec)
    (_DEPLOYMENT, "spec.replicas", 0, INT32_MAX),
]


@pytest.mark.parametrize("text, path, smallest, largest", CASES, ids=[c[1] for c in CASES])
def test_integer_fields_take_their_types_range(text, path, smallest, largest):
    parse(text.replace(": <N>", f": {smallest}"))
    parse(text.replace(": <N>", f": {largest}"))
    err = error(text.replace(": <N>", f": {largest + 1}"))
    assert err.path == path
    assert f"{largest} (a" in err.message and err.message.endswith(f"got {largest + 1}")
    err = error(text.replace(": <N>", f": {smallest - 1}"))
    assert err.path == path and err.message.endswith(f"got {smallest - 1}")


# --------------------------------------------------------------------------- every integer


def _integer_spots(model: type[BaseModel], seen: set) -> typing.Iterator[tuple[str, object]]:
    """Each place a model (and the models below it) holds an integer: (where, annotation)."""
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if field.metadata:
            annotation = typing.Annotated[(annotation, *field.metadata)]
        yield from _walk(annotation, f"{model.__name__}.{name}", seen)


def _walk(annotation, where, seen):
    origin = typing.get_origin(annotation)
    if annotation is int:
        yield where, annotation
    elif origin is typing.Annotated:
        base = typing.get_args(annotation)[0]
        if base is int or int in typing.get_args(base):
            yield where, annotation
        else:
            yield from _walk(base, where, seen)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _integer_spots(annotation, seen)
    elif origin in (typing.Union, types.UnionType, list, dict, tuple, set, frozenset):
        for arg in typing.get_args(annotation):
            yield from _walk(arg, where, seen)


def test_no_integer_field_of_any_kind_is_unbounded():
    """Every integer the models hold has an upper bound: none takes a number beyond uint64,
    which no field of Istio's or Kubernetes' APIs can hold."""
    seen: set = set()
    spots = [spot for model, _ in KINDS.values() for spot in _integer_spots(model, seen)]
    assert len(spots) > 30  # the walk reaches the nested messages
    unbounded = []
    for where, annotation in spots:
        try:
            TypeAdapter(annotation).validate_python(UINT64_MAX + 1)
        except ValidationError:
            continue
        unbounded.append(where)
    assert unbounded == []
