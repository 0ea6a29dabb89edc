"""Generic HTTP steps: send requests from inside the mesh and check what answered."""

from collections import Counter

from pytest_bdd import parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.checks import parse_shares
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


@when(parsers.re(r'I send (?P<count>\d+) requests to "(?P<url>[^"]+)" with header "(?P<header>[^"]+)"'),
      converters={"count": int})
def send_requests_with_header(lab, count, url, header):
    lab.send(HttpRequest(url=url, headers=(_header(header),)), count)


@then(parsers.parse("every response has status {status:d}"))
def every_status(lab, status):
    lab.explain(explain.statuses_command, lab.client, lab.traffic)
    def check(traffic):
        seen = Counter(r.status for r in traffic.responses)
        assert set(seen) == {status}, f"statuses seen: {dict(seen)}"

    lab.expect(f"every response has status {status}", check)


@then(parsers.parse("every response has status {status:d} and an empty body"))
def every_status_empty(lab, status):
    lab.explain(explain.bodies_command, lab.client, lab.traffic)
    def check(traffic):
        seen = Counter((r.status, r.body) for r in traffic.responses)
        assert set(seen) == {(status, "")}, f"(status, body) seen: {dict(seen)}"

    lab.expect(f"every response is {status} with an empty body", check)


@then(parsers.re(r"every response is served by reviews (?P<version>v\d+)"))
def every_response_from(lab, version):
    lab.explain(explain.versions_command, lab.client, lab.traffic)
    def check(traffic):
        seen = Counter(reviews_version(r) for r in traffic.responses)
        assert set(seen) == {version}, f"reviews versions seen: {dict(seen)}"

    lab.expect(f"all {lab.traffic.count} responses served by reviews {version}", check)


@then(parsers.re(r"the reviews versions are split (?P<spec>v\d+ \d+% (?:and v\d+ \d+%)+)"))
def versions_split(lab, spec):
    """Weighted routing, checked with an exact binomial band (false failure <= 1e-6)."""
    lab.explain(explain.versions_command, lab.client, lab.traffic)
    expect_split(lab, f"reviews versions split {spec}",
                 lambda traffic: Counter(reviews_version(r) or "unknown" for r in traffic.responses),
                 parse_shares(spec))
