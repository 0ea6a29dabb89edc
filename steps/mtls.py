"""Mutual TLS steps: samples in other namespaces, requests from their clients, what curl
got back, and the identities the sidecars hold and present."""

import base64
import json
from collections import Counter

from pytest_bdd import given, parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.certs import uri_sans
from bookinfo_labs.mesh import HttpRequest
from bookinfo_labs.proxyconfig import walk
from bookinfo_labs.samples import Placement

XFCC = "X-Forwarded-Client-Cert"


@given(parsers.re(r"the (?P<samples>[\w-]+(?: and [\w-]+)*) samples? (?:is|are) running in "
                  r"namespace (?P<namespace>[\w-]+)(?P<bare> without a sidecar)?"))
def samples_in_namespace(lab, samples, namespace, bare):
    for sample in samples.split(" and "):
        lab.deploy(sample, Placement(namespace, sidecar=not bare))


@when(parsers.re(r"I redeploy the (?P<samples>[\w-]+(?: and [\w-]+)*) samples? in namespace "
                 r"(?P<namespace>[\w-]+) with(?P<bare>out)? a sidecar"))
def redeploy_in_namespace(lab, samples, namespace, bare):
    """The handout's re-apply with ``istioctl kube-inject``: new pods, with (or without)
    a sidecar; the Background's deploy puts the namespace back as it wants it."""
    for sample in samples.split(" and "):
        lab.deploy(sample, Placement(namespace, sidecar=not bare))


@given(parsers.re(r'I apply "(?P<name>[^"]+)" in namespace (?P<namespace>[\w-]+)'))
@when(parsers.re(r'I apply "(?P<name>[^"]+)" in namespace (?P<namespace>[\w-]+)'))
def apply_in_namespace(lab, name, namespace):
    lab.apply_file(name, namespace)


@when(parsers.re(r'(?P<sender>[\w-]+) in (?P<namespace>[\w-]+) sends (?P<count>\d+) requests? '
                 r'to "(?P<url>[^"]+)"(?: with header "(?P<header>[^"]+)")?'),
      converters={"count": int})
def send_from_namespace(lab, sender, namespace, count, url, header):
    headers = (tuple(part.strip() for part in header.split(":", 1)),) if header else ()
    lab.send(HttpRequest(url=url, headers=headers), count, sender=f"{namespace}/{sender}")


@then(parsers.re(r"curl prints (?P<code>\d{3}) and exits with (?P<exit_code>\d+)"))
def curl_prints(lab, code, exit_code):
    """The handout's ``-w "%{http_code}"`` and the exit code ``kubectl exec`` reports:
    ``000`` and 56 when the server's sidecar resets a plain-text connection."""
    lab.explain(explain.statuses_command, lab.sender, lab.traffic)
    wanted = (code, int(exit_code))

    def check(traffic):
        seen = Counter((f"{r.status:03d}", r.exit_code) for r in traffic.responses)
        assert set(seen) == {wanted}, f"(http_code, exit code) seen: {dict(seen)}"

    lab.expect(f"curl prints {code} and exits with {exit_code}", check)


def _xfcc(response) -> str | None:
    """The X-Forwarded-Client-Cert httpbin echoed (/headers), joined when repeated."""
    try:
        headers = json.loads(response.body)["headers"]
    except (ValueError, KeyError, TypeError):
        return "(no /headers echo)"
    value = next((v for k, v in headers.items() if k.lower() == XFCC.lower()), None)
    return ",".join(value) if isinstance(value, list) else value


def _elements(xfcc: str) -> list[dict[str, str]]:
    """Envoy's XFCC value: comma-separated elements of ``Key=value`` pairs split by ``;``."""
    out = []
    for element in xfcc.split(","):
        pairs = (part.split("=", 1) for part in element.split(";") if "=" in part)
        out.append({key: value.strip('"') for key, value in pairs})
    return out


@then(parsers.re(r"httpbin saw the client certificate of (?P<client>spiffe://\S+) "
                 r"presented to (?P<server>spiffe://\S+)"))
def saw_client_identity(lab, client, server):
    """The last XFCC element is the one the server's own sidecar set from the TLS
    handshake: ``By`` its certificate's URI SAN, ``URI`` the client certificate's."""
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)

    def check(traffic):
        seen = Counter(_xfcc(r) for r in traffic.responses)
        last = {(e.get("URI"), e.get("By")) for x in seen if x and x[0] != "(" for e in _elements(x)[-1:]}
        assert None not in seen and last == {(client, server)}, (
            f"{XFCC} seen (None: absent): {dict(seen)}")

    lab.expect(f"httpbin saw {client} presented to {server}", check)


@then(parsers.re(r"httpbin saw no client certificate"))
def saw_no_identity(lab):
    """A plain-text connection carries no identity, and the server's sidecar removes any
    XFCC the client wrote itself (Envoy sanitises it when the connection is not mTLS)."""
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)

    def check(traffic):
        seen = Counter(_xfcc(r) for r in traffic.responses)
        assert set(seen) == {None}, f"{XFCC} seen (None: absent): {dict(seen)}"

    lab.expect(f"httpbin saw no {XFCC}", check)


@then(parsers.re(r"the sidecar of (?P<workload>[\w-]+) in (?P<namespace>[\w-]+) holds the "
                 r"certificate of (?P<identity>spiffe://\S+)"))
def holds_certificate(lab, workload, namespace, identity):
    """The workload certificate its Envoy serves in the handshake (``istioctl proxy-config
    secret``): the SPIFFE identity is its certificate's URI SAN."""
    who = f"{namespace}/{workload}"
    lab.explain(explain.proxy_config_command, who, "secret")
    dump = lab.mesh.proxy_config(who, "secrets")
    chains = [node["secret"]["tls_certificate"]["certificate_chain"]["inline_bytes"]
              for node in walk(dump) if node.get("name") == "default"
              and "tls_certificate" in (node.get("secret") or {})]
    assert chains, f"the sidecar of {who} holds no workload certificate (secret 'default')"
    sans = uri_sans(base64.b64decode(chains[0]))
    assert sans == [identity], f"its certificate's URI SANs are {sans}, not [{identity!r}]"
