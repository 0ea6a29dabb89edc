"""Generic HTTP steps: send requests from inside the mesh and check what answered."""

import json
from collections import Counter
from urllib.parse import urlsplit

from pytest_bdd import parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.checks import parse_shares
from bookinfo_labs.checks.sequential import BATCH
from bookinfo_labs.checks.splits import expect_split
from bookinfo_labs.checks.backends import reviews_version
from bookinfo_labs.mesh import HttpRequest


def _header(text: str) -> tuple[str, str]:
    name, _, value = text.partition(":")
    return name.strip(), value.strip()


# A quoted value is [^"]+, so "I send ... to "<url>"" cannot swallow the with-header text.
@when(parsers.re(r'I send (?P<count>\d+) requests to "(?P<url>[^"]+)"'), converters={"count": int})
def send_requests(lab, count, url):
    lab.send(HttpRequest(url=url), count)


@when(parsers.re(r'I keep sending requests to "(?P<url>[^"]+)"'))
def keep_sending_requests(lab, url):
    """As many as the split check that follows needs: a first batch here, more from the
    check until it decides (checks/sequential.py)."""
    lab.send(HttpRequest(url=url), BATCH)


@when(parsers.re(r'I send (?P<count>\d+) requests to "(?P<url>[^"]+)" with header "(?P<header>[^"]+)"'),
      converters={"count": int})
def send_requests_with_header(lab, count, url, header):
    lab.send(HttpRequest(url=url, headers=(_header(header),)), count)


@when(parsers.re(r'I send (?P<count>\d+) (?P<method>POST|PUT|DELETE|PATCH) requests to '
                 r'"(?P<url>[^"]+)"'), converters={"count": int})
def send_requests_with_method(lab, count, method, url):
    lab.send(HttpRequest(url=url, method=method), count)


@then(parsers.parse("every response has status {status:d}"))
def every_status(lab, status):
    lab.explain(explain.statuses_command, lab.sender, lab.traffic)
    def check(traffic):
        seen = Counter(r.status for r in traffic.responses)
        assert set(seen) == {status}, f"statuses seen: {dict(seen)}"

    lab.expect(f"every response has status {status}", check)


@then(parsers.parse("every response has status {status:d} and an empty body"))
def every_status_empty(lab, status):
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)
    def check(traffic):
        seen = Counter((r.status, r.body) for r in traffic.responses)
        assert set(seen) == {(status, "")}, f"(status, body) seen: {dict(seen)}"

    lab.expect(f"every response is {status} with an empty body", check)


@then(parsers.re(r"every response is served by reviews (?P<version>v\d+)"))
def every_response_from(lab, version):
    lab.explain(explain.versions_command, lab.sender, lab.traffic)
    def check(traffic):
        seen = Counter(reviews_version(r) for r in traffic.responses)
        assert set(seen) == {version}, f"reviews versions seen: {dict(seen)}"

    lab.expect(f"all {lab.traffic.count} responses served by reviews {version}", check)


@then(parsers.re(r"the reviews versions are split (?P<spec>v\d+ \d+% (?:and v\d+ \d+%)+)"))
def versions_split(lab, spec):
    """Weighted routing, checked by a sequential split test (checks/sequential.py)."""
    lab.explain(explain.versions_command, lab.sender, lab.traffic)
    expect_split(lab, f"reviews versions split {spec}",
                 lambda traffic: Counter(reviews_version(r) or "unknown" for r in traffic.responses),
                 parse_shares(spec))


# -- headers: in the answers, and in what httpbin saw (its echo) --------------------------

@then(parsers.re(r'every response has header "(?P<header>[^"]+)"'))
def every_response_header(lab, header):
    name, value = _header(header)
    lab.explain(explain.replies_command, lab.client, lab.traffic, name)
    def check(traffic):
        seen = Counter(r.header(name) for r in traffic.responses)
        assert set(seen) == {value}, f"{name} values seen (None: absent): {dict(seen)}"

    lab.expect(f"every response has {name}: {value}", check)


@then(parsers.re(r'no response has header "(?P<name>[^":]+)"'))
def no_response_header(lab, name):
    lab.explain(explain.replies_command, lab.client, lab.traffic, name)
    def check(traffic):
        seen = Counter(r.header(name) for r in traffic.responses if r.header(name) is not None)
        assert not seen, f"{name} values seen: {dict(seen)}"

    lab.expect(f"no response has {name}", check)


def _echo(response) -> dict:
    """What httpbin's /headers or /anything says it received (an empty dict otherwise)."""
    try:
        echo = json.loads(response.body)
    except ValueError:
        return {}
    return echo if isinstance(echo, dict) else {}


def _echoed_header(response, name: str) -> str | None:
    """A request header as httpbin echoed it, its values joined with ", " (go-httpbin lists
    a repeated header's values, the Python httpbin joins them with ",")."""
    for key, value in (_echo(response).get("headers") or {}).items():
        if key.lower() == name.lower():
            values = value if isinstance(value, list) else value.split(",")
            return ", ".join(v.strip() for v in values)
    return None


@then(parsers.re(r'httpbin saw every request with header "(?P<header>[^"]+)"'))
def echoed_header(lab, header):
    name, value = _header(header)
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)
    def check(traffic):
        seen = Counter(_echoed_header(r, name) for r in traffic.responses)
        assert set(seen) == {value}, f"httpbin saw {name} (None: absent): {dict(seen)}"

    lab.expect(f"httpbin saw {name}: {value} in every request", check)


@then(parsers.re(r'httpbin saw no request with header "(?P<name>[^":]+)"'))
def echoed_no_header(lab, name):
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)
    def check(traffic):
        seen = Counter(_echoed_header(r, name) for r in traffic.responses)
        assert set(seen) == {None} and all(_echo(r) for r in traffic.responses), (
            f"httpbin saw {name} (None: absent, or no echo): {dict(seen)}")

    lab.expect(f"httpbin saw no {name} header", check)


@then(parsers.re(r'httpbin saw every request at path "(?P<path>[^"]+)"'))
def echoed_path(lab, path):
    """The path of the URL /anything echoes: the one the request arrived with."""
    lab.explain(explain.bodies_command, lab.sender, lab.traffic)
    def check(traffic):
        seen = Counter(urlsplit(_echo(r).get("url", "")).path or None for r in traffic.responses)
        assert set(seen) == {path}, f"paths httpbin saw (None: no echo): {dict(seen)}"

    lab.expect(f"httpbin saw every request at {path}", check)
