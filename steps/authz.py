"""Authentication and authorization steps: the scenario's own JWT issuer, tokens in
requests, policies naming a pod's address, connections a TCP policy closes."""

import shlex
from collections import Counter

import pytest
import yaml
from pytest_bdd import given, parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.mesh import HttpRequest
from bookinfo_labs.tokens import Issuer, claims_of, forged


@pytest.fixture
def issuer():
    """The scenario's JWT issuer (testing@secure.istio.io): its key signs the tokens, its
    key set goes inline into the RequestAuthentication."""
    return Issuer()


@given("I apply, with the scenario's key set in place of jwksUri:")
@when("I apply, with the scenario's key set in place of jwksUri:")
def apply_with_inline_jwks(lab, issuer, docstring):
    """The handout's RequestAuthentication names a JWKS on GitHub that istiod downloads;
    offline, its jwtRules carry the scenario's key set inline (``jwks``) instead."""
    documents = [d for d in yaml.safe_load_all(docstring) if d]
    for document in documents:
        for rule in (document.get("spec") or {}).get("jwtRules") or []:
            if document.get("kind") == "RequestAuthentication" and "jwksUri" in rule:
                lab.explain(_inlined, rule.pop("jwksUri"))
                rule["jwks"] = issuer.jwks
    lab.apply_text(yaml.safe_dump_all(documents, sort_keys=False))


def _inlined(uri: str, namespace: str) -> list[str]:
    return [f"# jwksUri {uri} replaced by jwks: the key set of this scenario's signing key "
            "(istiod would fetch the URI; these labs run offline)"]


_TOKENS = {"a valid token": {}, "an expired token": {"expired": True}}


@when(parsers.re(r'(?:I send|(?P<sender>[\w-]+) in (?P<namespace>[\w-]+) sends) '
                 r'(?P<count>\d+) requests to "(?P<url>[^"]+)" with '
                 r'(?P<which>a valid token|an expired token|a token in group "(?P<group>[^"]+)"'
                 r"|a token signed by another key)"), converters={"count": int})
def send_with_token(lab, issuer, sender, namespace, count, url, which, group):
    """``curl -H "Authorization: Bearer $TOKEN"`` from the client pod (or ``sleep in foo``),
    the token signed here: valid for an hour, expired an hour ago, with a ``groups`` claim,
    or signed by a key the mesh never saw."""
    if group is not None:
        token = issuer.token(groups=[group])
    elif which == "a token signed by another key":
        token = forged(issuer).token()
    else:
        token = issuer.token(**_TOKENS[which])
    lab.explain(_token_command, token)
    lab.send(HttpRequest(url=url, headers=(("Authorization", f"Bearer {token}"),)), count,
             sender=f"{namespace}/{sender}" if sender else None)


def _token_command(token: str, namespace: str) -> list[str]:
    return [f"TOKEN={shlex.quote(token)}", f"# its claims: {claims_of(token)}"]


@given(parsers.re(r"I apply, with (?P<variable>[A-Z_]+) the IP address of the "
                  r"(?P<workload>client|[a-z][\w-]*) pod:"))
def apply_with_pod_ip(lab, variable, workload, docstring):
    """A policy on a pod's address (ipBlocks): the handout's ``<sleep pod IP>``, read from
    the running pod."""
    workload = lab.client if workload == "client" else workload
    address = lab.mesh.pod_ip(workload)
    lab.explain(_pod_ip_command, variable, workload)
    lab.apply_text(docstring.replace(variable, address))


def _pod_ip_command(variable: str, workload: str, namespace: str) -> str:
    flag = f" -n {namespace}" if namespace != "default" else ""
    return (f"{variable}=$(kubectl get pod{flag} -l app={workload} "
            "-o jsonpath='{.items[0].status.podIP}')")


@then("every connection is closed without a reply")
def closed_without_reply(lab):
    """A TCP chain's RBAC filter denies by closing the connection: no line comes back."""
    lab.explain(explain.tcp_replies_command, lab.traffic)

    def check(traffic):
        seen = Counter(r.first_word or f"({r.error})" for r in traffic.responses)
        assert set(seen) == {"(closed without a reply)"}, f"what the connections got: {dict(seen)}"

    lab.expect("every connection is closed without a reply", check)
