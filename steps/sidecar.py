"""The sidecar itself (survey L03-L05): which pods the injector gives one, what proves a
request crossed it, the endpoints it holds, and (on a cluster) the iptables capture."""

import json
import time

import pytest
from pytest_bdd import given, parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.accesslog import parse_line
from bookinfo_labs.checks import eventually
from bookinfo_labs.proxyconfig import walk
from bookinfo_labs.samples import Placement

#: the header the client sidecar's router adds to every request it forwards (Istio turns on
#: include_request_attempt_count on outbound virtual hosts only): httpbin echoes it
ATTEMPT_COUNT = "X-Envoy-Attempt-Count"
#: the counts the features spell out
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


@pytest.fixture
def namespace_labels():
    """namespace -> the labels a Given step put on it, for the samples deployed there."""
    return {}


def _labels(text: str) -> dict[str, str]:
    """``a=b`` or ``a=b and c=d``."""
    return dict(part.strip().split("=", 1) for part in text.split(" and "))


@given(parsers.re(r"namespace (?P<namespace>[\w-]+) is labelled (?P<labels>\S+=\S+(?: and \S+=\S+)*)"))
def namespace_is_labelled(namespace_labels, namespace, labels):
    namespace_labels[namespace] = _labels(labels)


@given(parsers.re(r"namespace (?P<namespace>[\w-]+) has no injection label"))
def namespace_unlabelled(namespace_labels, namespace):
    namespace_labels[namespace] = {}


@when(parsers.re(r"I deploy the (?P<sample>[\w-]+) sample in namespace (?P<namespace>[\w-]+)"
                 r"(?: with the pod label (?P<pod_label>\S+=\S+))?$"))
def deploy_labelled(lab, namespace_labels, sample, namespace, pod_label):
    """The namespace's labels (none unless a Given step set them), and the handout's
    ``kubectl patch deployment ... sidecar.istio.io/inject`` as a pod template label; the
    injector decides whether the pods get a sidecar."""
    labels = namespace_labels.get(namespace, {})
    pod = tuple(_labels(pod_label).items()) if pod_label else ()
    lab.deploy(sample, Placement(namespace, namespace_labels=tuple(sorted(labels.items())),
                                 pod_labels=pod))


@then(parsers.re(r"the (?P<workload>[\w-]+) pod in (?P<namespace>[\w-]+) has (?:a|(?P<no>no)) sidecar$"))
def pod_has_sidecar(lab, workload, namespace, no):
    """``istio-proxy`` among the containers, or a native sidecar (an init container with
    restartPolicy Always, Istio >= 1.27 on a recent Kubernetes); READY 2/2, or 1/1."""
    lab.explain(explain.pod_containers_command, f"{namespace}/{workload}")
    pod = lab.mesh.pod_summary(f"{namespace}/{workload}")
    shown = (f"pod {pod.name}: containers {list(pod.containers)}, init containers "
             f"{list(pod.init_containers)}, READY {pod.ready}")
    if no:
        assert not pod.has_sidecar() and pod.ready == "1/1", shown
    else:
        assert pod.has_sidecar() and pod.ready == "2/2", shown


@then(parsers.re(r"the proxy list (?P<verb>has|lacks) the (?P<workload>[\w-]+) pod in "
                 r"(?P<namespace>[\w-]+)"))
def proxy_list(lab, verb, workload, namespace):
    """``istioctl proxy-status``: a pod with a sidecar is connected to istiod, one without
    is not (its NAME is ``<pod>.<namespace>``)."""
    lab.explain(explain.proxy_status_command)
    pod = lab.mesh.pod_summary(f"{namespace}/{workload}").name
    listed = lab.mesh.proxies()
    if verb == "has":
        assert f"{pod}.{namespace}" in listed, f"{pod}.{namespace} not among {sorted(listed)}"
    else:
        assert f"{pod}.{namespace}" not in listed, f"{pod}.{namespace} is listed"


def _echoed_headers(response) -> dict[str, str]:
    try:
        return {k.lower(): v for k, v in json.loads(response.body)["headers"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AssertionError(f"no httpbin /headers echo: status {response.status}, "
                             f"body {response.body[:200]!r}") from None


@then(parsers.re(r"httpbin saw the (?P<header>[\w-]+) header(?P<none> of no sidecar)?"))
def httpbin_saw_header(lab, header, none):
    """What httpbin's /headers echoes: a header the client's sidecar adds is there on every
    request, or (``of no sidecar``) on none."""
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)

    def check(traffic):
        seen = [header.lower() in _echoed_headers(r) for r in traffic.responses]
        assert (not any(seen)) if none else all(seen), (
            f"{header} echoed in {sum(seen)} of {len(seen)} responses")

    lab.expect(f"httpbin saw {header} " + ("on none" if none else "on every request"), check)


def _client_log(lab, since_s: float) -> list:
    lines = lab.mesh.logs(lab.sender, since_s=since_s, container="istio-proxy")
    return [e for e in map(parse_line, lines) if e is not None and
            e.upstream_cluster.startswith("outbound|")]


@then(parsers.re(r"the sender's sidecar logged the requests, each to a pod address of "
                 r"(?P<workload>[\w-]+)"))
def client_log_pod_addresses(lab, workload):
    """The client sidecar's access log (survey L05): one outbound line per request, its
    upstream_host a pod's address and port, not the Service's: the sidecar picked the
    endpoint itself, bypassing kube-proxy."""
    lab.explain(explain.logs_command, lab.sender, "istio-proxy", 30)

    def check(traffic):
        since = time.monotonic() - traffic.started_at + 1
        entries = _client_log(lab, since)
        pods = set(lab.mesh.pod_ips(workload))
        hosts = [e.upstream_host.rsplit(":", 1)[0] for e in entries]
        assert len(hosts) >= len(traffic.responses) and set(hosts) <= pods, (
            f"upstream hosts logged {sorted(set(hosts))} ({len(hosts)} lines for "
            f"{len(traffic.responses)} requests); the {workload} pods are {sorted(pods)}")

    lab.expect(f"the sender's sidecar logged each request to a {workload} pod", check)


def _endpoints(dump: dict, service: str, port: int, namespace: str) -> set[str]:
    """The addresses of the EDS cluster ``outbound|<port>||<service fqdn>``."""
    name = f"outbound|{port}||{service}.{namespace}.svc.cluster.local"
    found = set()
    for node in walk(dump):
        if node.get("cluster_name") == name:
            for group in node.get("endpoints") or []:
                for lb in group.get("lb_endpoints") or []:
                    address = ((lb.get("endpoint") or {}).get("address") or {}).get(
                        "socket_address") or {}
                    found.add(address.get("address"))
    return found


@then(parsers.re(r"the client sidecar's endpoints for (?P<service>[\w-]+) port "
                 r"(?P<port>\d+) are the (?P<count>\w+) (?P=service) pod addresses"),
      converters={"port": int})
def sidecar_endpoints(lab, service, port, count):
    """``istioctl proxy-config endpoints <client> --cluster "outbound|9080||reviews..."``:
    the sidecar holds the pods' own addresses (from istiod, not kube-proxy's Endpoints),
    as many as run; after a scale, eventually."""
    client = lab.client
    lab.explain(explain.proxy_config_command, client, "endpoints")
    wanted = NUMBERS.get(count) or int(count)

    def observe():
        return (_endpoints(lab.mesh.proxy_config(client, "endpoints"), service, port,
                           lab.mesh.namespace), set(lab.mesh.pod_ips(service)))

    def check(seen):
        endpoints, pods = seen
        assert len(pods) == wanted and endpoints == pods, (
            f"endpoints {sorted(endpoints)}; {len(pods)} {service} pods {sorted(pods)}")

    eventually(observe, check, expected=f"{wanted} {service} pod addresses", policy=lab.policy)


@when(parsers.re(r"I scale (?P<workload>[\w-]+) to (?P<replicas>\d+) replicas?"),
      converters={"replicas": int})
def scale(lab, workload, replicas):
    lab.explain(explain.scale_command, workload, replicas)
    lab.scale(workload, replicas)


@then(parsers.re(r"the istio-init log of (?P<workload>[\w-]+) redirects outbound TCP to "
                 r"(?P<outbound>\d+) and inbound to (?P<inbound>\d+)"))
def istio_init_redirects(lab, workload, outbound, inbound):
    """istio-init prints the iptables-restore input it applied (tools/istio-iptables):
    ISTIO_REDIRECT to the outbound port, ISTIO_IN_REDIRECT to the inbound one. With Istio
    CNI there is no istio-init: the node agent writes the rules, so this check does not
    apply."""
    lab.explain(explain.istio_init_log_command, workload)
    pod = lab.mesh.pod_summary(workload)
    if "istio-init" not in pod.init_containers:
        pytest.skip(f"pod {pod.name} has no istio-init (Istio CNI writes the rules)")
    text = "\n".join(lab.mesh.logs(workload, container="istio-init"))
    for chain, port in (("ISTIO_REDIRECT", outbound), ("ISTIO_IN_REDIRECT", inbound)):
        rule = f"-A {chain} -p tcp -j REDIRECT --to-ports {port}"
        assert rule in text, f"istio-init's log has no {rule!r}:\n{text[-2000:]}"


@then(parsers.re(r"the (?P<workload>[\w-]+) sidecar has the virtual listeners (?P<outbound>\d+) "
                 r"and (?P<inbound>\d+)"), converters={"outbound": int, "inbound": int})
def virtual_listeners(lab, workload, outbound, inbound):
    """``istioctl proxy-config listeners --port 15001`` / ``--port 15006``: virtualOutbound
    and virtualInbound, where iptables sends what it captures."""
    lab.explain(explain.proxy_config_command, workload, "listeners")
    dump = lab.mesh.proxy_config(workload, "listeners")
    ports = {node.get("name"): (node.get("address") or {}).get("socket_address", {}).get(
        "port_value") for node in walk(dump) if "filter_chains" in node}
    assert ports.get("virtualOutbound") == outbound and ports.get("virtualInbound") == inbound, (
        f"listeners and ports: {ports}")
