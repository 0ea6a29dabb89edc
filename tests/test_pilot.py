"""The control plane's translation, without processes: golden files and one test per field.

Golden files (tests/golden/pilot/*.json) pin what a proxy gets for representative labs;
regenerate them with ``UPDATE_GOLDEN=1 pytest tests/test_pilot.py`` and read the diff. The
field tests say, one Istio field at a time, what istiod makes of it (docs/facts.md).
Every resource is also parsed into its Envoy protobuf message, so a misspelt field fails
here rather than in Envoy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from google.protobuf import json_format

from bookinfo_labs.local.pilot import (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, ConfigView,
                                       MeshView, ProxyView, ServicePortView, ServiceView,
                                       WorkloadView, generate)
from bookinfo_labs.local.mesh import GATEWAYS_FILE
from bookinfo_labs.manifests import load_file, parse_text
from bookinfo_labs.samples import sample_manifests
from bookinfo_labs.versions import get_version

GOLDEN = Path(__file__).parent / "golden" / "pilot"
CLIENT = ProxyView(pod="curl-5d8f7c9b6d-x2k4p", namespace="default", labels={"app": "curl"},
                   ip="127.10.0.100", outbound_ip="127.11.0.100", app_ip="127.12.0.100",
                   access_log_path="/tmp/curl/istio-proxy.log")
INGRESS = ProxyView(pod="istio-ingressgateway-5d8f7c9b6d-x2k4p", namespace="istio-system",
                    labels={"app": "istio-ingressgateway", "istio": "ingressgateway"},
                    ip="127.10.0.101", outbound_ip="127.11.0.101", app_ip="127.12.0.101",
                    access_log_path="/tmp/ingress/istio-proxy.log", kind="router",
                    host_ports={8080: 8080, 8443: 8443})
EGRESS = ProxyView(pod="istio-egressgateway-5d8f7c9b6d-x2k4p", namespace="istio-system",
                   labels={"app": "istio-egressgateway", "istio": "egressgateway"},
                   ip="127.10.0.102", outbound_ip="127.11.0.102", app_ip="127.12.0.102",
                   access_log_path="/tmp/egress/istio-proxy.log", kind="router")

#: a server: httpbin's pod, its port 8080 behind its sidecar's inbound listener
HTTPBIN = ProxyView(pod="httpbin-5d8f7c9b6d-x2k4p", namespace="default",
                    labels={"app": "httpbin", "version": "v1"}, ip="127.10.0.50",
                    outbound_ip="127.11.0.50", app_ip="127.12.0.50", inbound_ports=(8080,),
                    service_account="httpbin", access_log_path="/tmp/httpbin/istio-proxy.log")


def mesh_of(*files_or_yaml: str, version: str = "1.26",
            samples: tuple[str, ...] = ("bookinfo", "httpbin", "curl"),
            gateways: bool = False, edge: bool = False, **mesh_config) -> MeshView:
    """Bookinfo, httpbin and the curl client (or ``samples``) as the samples deploy them,
    with the demo profile's gateways if asked (``edge``: and the external stand-in), plus
    lab config, as istiod sees it."""
    istio = get_version(version)
    services, workloads = [], []
    objects = [m for sample in samples for m in sample_manifests(sample, istio)]
    if gateways or edge:
        objects += load_file(GATEWAYS_FILE)
    if edge:
        objects += sample_manifests("external", istio)
    for m in objects:
        spec = m.raw.get("spec") or {}
        namespace = m.namespace or "default"
        if m.kind == "Service":
            services.append(ServiceView(m.name, namespace, tuple(
                ServicePortView(p.get("name", ""), p["port"], int(p.get("targetPort", p["port"])),
                                p.get("appProtocol", ""))
                for p in spec["ports"]), dict(spec.get("selector") or {})))
        elif m.kind == "Deployment":
            workloads.append(WorkloadView(f"{m.name}-5d8f7c9b6d-x2k4p", namespace,
                                          f"127.10.0.{len(workloads) + 1}",
                                          dict(spec["template"]["metadata"]["labels"])))
    manifests = [m for item in files_or_yaml
                 for m in (parse_text(item) if "\n" in item else load_file(item))]
    configs: dict[tuple, ConfigView] = {}
    for i, m in enumerate(manifests):  # a re-applied name replaces the object, keeps its age
        key = (m.kind, m.namespace or "default", m.name)
        created = configs[key].created if key in configs else i
        configs[key] = ConfigView(m.kind, key[1], m.name, m.model.spec, m.raw["apiVersion"], created)
    return MeshView(istio, tuple(services), tuple(workloads), tuple(configs.values()),
                    **mesh_config)


def _parse_all(resources: dict) -> None:
    # the messages typed configs name must be in the descriptor pool
    from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
    from envoy.extensions.clusters.dynamic_forward_proxy.v3 import cluster_pb2 as _  # noqa: F401
    from envoy.extensions.filters.http.dynamic_forward_proxy.v3 import (  # noqa: F401
        dynamic_forward_proxy_pb2)
    from envoy.extensions.network.dns_resolver.cares.v3 import cares_dns_resolver_pb2  # noqa: F401
    from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: F401
    from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
    from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
    from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
    from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
        http_connection_manager_pb2)
    from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
    from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2  # noqa: F401
    from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
    from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.endpoint.v3 import endpoint_pb2
    from envoy.config.listener.v3 import listener_pb2
    from envoy.config.route.v3 import route_pb2
    kinds = {LISTENER: listener_pb2.Listener, ROUTE: route_pb2.RouteConfiguration,
             CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
             SECRET: secret_pb2.Secret}
    for type_url, by_name in resources.items():
        for name, resource in by_name.items():
            try:
                json_format.ParseDict(resource, kinds[type_url]())
            except json_format.ParseError as exc:
                raise AssertionError(f"{type_url} {name}: {exc}") from None


#: a VirtualService of each action, and a delegate (inline: no sample ships them)
ACTIONS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static}}, {uri: {prefix: /api/v1/products}}]
    route: [{destination: {host: productpage}}]
  - match: [{uri: {prefix: /old-products}}]
    redirect: {uri: /api/v1/products, redirectCode: 302}
  - directResponse: {status: 404, body: {string: path not allowed}}
    headers: {response: {set: {x-block-reason: path-not-allowed}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - match: [{uri: {prefix: /echo}}]
    rewrite: {uri: /anything, authority: echo.example.com}
    headers:
      request: {set: {x-lab: rewrite}, add: {x-trace: a}, remove: [user-agent]}
      response: {set: {x-served-by: mesh}, remove: [access-control-allow-credentials]}
    corsPolicy: {allowOrigins: [{exact: 'https://example.com'}], allowMethods: [GET], maxAge: 1h}
    route: [{destination: {host: httpbin}, headers: {request: {set: {x-destination: httpbin}}}}]
  - route: [{destination: {host: httpbin}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: reviews
    match: [{uri: {prefix: /reviews}}]
    headers: {response: {set: {x-routed-by: root}}}
    delegate: {name: reviews-by-product}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-by-product}
spec:
  http:
  - name: zero
    match: [{uri: {exact: /reviews/0}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: others
    route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 50, headers: {response: {set: {x-version: v2}}}}
"""

#: two Gateways sharing the ingress gateway's 8080, one for a host (workshop 3.3 and 3.5)
EDGE = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: test-gateway}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: test-gateway}
spec:
  hosts: ["*"]
  gateways: [test-gateway]
  http:
  - match: [{uri: {prefix: /details}}, {uri: {exact: /health}}]
    route: [{destination: {host: details, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: httpbin-gateway}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [httpbin.example.com, "*.example.org"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin.example.com, a.example.org, b.example.org]
  gateways: [httpbin-gateway]
  http:
  - match: [{uri: {prefix: /status}}, {uri: {prefix: /delay}}]
    route: [{destination: {host: httpbin, port: {number: 8000}}}]
"""

#: an external host through the egress gateway (the egress gateway task, hermetic)
EGRESS_CONFIG = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [ext.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DNS
  endpoints: [{address: httpbin.external.svc.cluster.local, ports: {http: 8000}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static}
spec:
  hosts: [static.example.com]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.10.0.200}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: istio-egressgateway}
spec:
  selector: {istio: egressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [ext.example.com]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: egressgateway-for-ext}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{name: ext}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct-ext-through-egress-gateway}
spec:
  hosts: [ext.example.com]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{gateways: [mesh], port: 80}]
    route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: ext, port: {number: 80}}}]
  - match: [{gateways: [istio-egressgateway], port: 80}]
    route: [{destination: {host: ext.example.com, port: {number: 80}}}]
"""

#: the client's sidecar scoped to its namespace and istio-system, REGISTRY_ONLY (L14)
SCOPE = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress: [{hosts: ["./*", "istio-system/*"]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""

PEER_AUTHENTICATION = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  portLevelMtls:
    8080: {mode: PERMISSIVE}
"""

#: case -> (proxy, the mesh's config files or YAML, MeshView options)
EDGE_CASES = {
    "ingress-bookinfo": (INGRESS, ("destination-rule-all.yaml", "bookinfo-gateway.yaml"), {}),
    "ingress-shared-port": (INGRESS, ("bookinfo-gateway.yaml", EDGE), {}),
    "egress-gateway": (EGRESS, (EGRESS_CONFIG,), {}),
    "egress-sidecar": (CLIENT, (EGRESS_CONFIG,), {"dns_server": ("127.10.255.253", 15053)}),
    "registry-only": (CLIENT, (), {"outbound_policy": "REGISTRY_ONLY"}),
    "sidecar-scope": (CLIENT, (SCOPE,), {}),
    "peer-authentication-server": (HTTPBIN, (PEER_AUTHENTICATION,), {}),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_golden_edge(case):
    """Gateways, ServiceEntries and Sidecar scoping, with Istio's gateways in the mesh."""
    proxy, files, options = EDGE_CASES[case]
    _check_golden(case, generate(mesh_of(*files, edge=True, **options), proxy))


CASES = {
    "no-config": (),
    "request-routing": ("destination-rule-all.yaml", "virtual-service-all-v1.yaml",
                        "virtual-service-reviews-test-v2.yaml"),
    "traffic-shifting": ("destination-rule-all.yaml", "virtual-service-reviews-50-v3.yaml"),
    "fault-delay": ("destination-rule-all.yaml", "virtual-service-all-v1.yaml",
                    "virtual-service-ratings-test-delay.yaml"),
    "circuit-breaking": ("circuitbreaking.yaml",),
    "mirroring": ("httpbinvs.yaml", "mirror.yaml"),
    "virtual-service-actions": ("destination-rule-all.yaml", ACTIONS),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    _check_golden(case, generate(mesh_of(*CASES[case]), CLIENT))


def _check_golden(case: str, resources: dict) -> None:
    _parse_all(resources)
    _compare(GOLDEN / f"{case}.json", resources)


def _compare(path: Path, resources: dict) -> None:
    text = json.dumps(resources, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: UPDATE_GOLDEN=1 writes it"
    assert text == path.read_text(), f"{path} differs: UPDATE_GOLDEN=1 regenerates it"


#: the TCP traffic shifting task's proxies: the ingress gateway, a tcp-echo pod, the client
INGRESS = ProxyView(pod="istio-ingressgateway-5d8f7c9b6d-x2k4p", namespace="istio-system",
                    labels={"app": "istio-ingressgateway", "istio": "ingressgateway"},
                    ip="127.10.0.200", outbound_ip="127.11.0.200", app_ip="127.12.0.200",
                    access_log_path="/tmp/istio-ingressgateway/istio-proxy.log", kind="router",
                    host_ports={8080: 8080, 31400: 31400})
TCP_ECHO = ProxyView(pod="tcp-echo-v1-5d8f7c9b6d-x2k4p", namespace="default",
                     labels={"app": "tcp-echo", "version": "v1"}, ip="127.10.0.1",
                     outbound_ip="127.11.0.1", app_ip="127.12.0.1", inbound_ports=(9000, 9001),
                     access_log_path="/tmp/tcp-echo-v1/istio-proxy.log")


def test_golden_tcp_traffic_shifting():
    """tcp-echo, the client and the demo gateways with the task's 80/20 split: the
    gateway's TCP listener, the TCP listeners of a sidecar and of a tcp-echo pod."""
    mesh = mesh_of("tcp-echo-all-v1.yaml", "tcp-echo-20-v2.yaml", samples=("tcp-echo", "curl"),
                   gateways=True)
    resources = {name: generate(mesh, proxy)
                 for name, proxy in (("client", CLIENT), ("ingressgateway", INGRESS),
                                     ("tcp-echo-v1", TCP_ECHO))}
    for by_type in resources.values():
        _parse_all(by_type)
    _compare(GOLDEN / "tcp-traffic-shifting.json", resources)
