"""Ingress steps in the handout's words: requests (and TCP connections) from outside the
mesh to the gateway."""

from collections import Counter

from pytest_bdd import parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.checks import parse_shares
from bookinfo_labs.checks.backends import linked_static_paths
from bookinfo_labs.checks.sequential import BATCH
from bookinfo_labs.checks.splits import expect_split
from bookinfo_labs.mesh import HttpRequest

_USER = r"(?P<user>a user|an anonymous user|[a-z][\w.-]*)"
_HOST = r'(?: with Host "(?P<host>[^"]+)")?'


@when(parsers.re(r'I send (?P<count>\d+) requests? to "(?P<path>/[^"]*)" through the ingress '
                 r"gateway" + _HOST), converters={"count": int})
def send_through_ingress(lab, count, path, host):
    lab.send_through_ingress(HttpRequest(url=path, headers=(("Host", host),) if host else ()),
                             count)


@when(parsers.re(_USER + r" opens the product page through the ingress gateway"
                         r"(?: (?P<count>\d+) times)?"))
def opens_product_page_through_ingress(lab, user, count):
    user = None if user in ("a user", "an anonymous user") else user
    lab.send_through_ingress(HttpRequest(url="/productpage", cookie_jar=lab.jar(user)),
                             int(count or 1))


@when(parsers.re(r"(?P<user>[a-z][\w.-]*) logs in through the ingress gateway"))
def logs_in_through_ingress(lab, user):
    response = lab.login(user, through_ingress=True)
    assert response.status == 302 and "session=" in response.header("set-cookie", ""), (
        f"signing in as {user} failed: HTTP {response.status} {response.body[:200]!r}")


@when(parsers.re(r"(?P<user>[a-z][\w.-]*) logs out through the ingress gateway"))
def logs_out_through_ingress(lab, user):
    response = lab.logout(user, through_ingress=True)
    assert response.status == 302, f"signing out failed: HTTP {response.status}"


@then("every static file the page links to is served through the ingress gateway")
def static_files_served(lab):
    lab.explain(explain.statuses_command, lab.client, lab.traffic)
    page = lab.expect("the product page answers 200", _all_status(200)).responses[0]
    paths = linked_static_paths(page.body)
    assert paths, f"the product page links to no /static/ file: {page.body[:300]!r}"
    for path in paths:
        lab.send_through_ingress(HttpRequest(url=path))
        lab.explain(explain.statuses_command, lab.client, lab.traffic)
        lab.expect(f"{path} answers 200 through the gateway", _all_status(200))


def _all_status(status: int):
    def check(traffic):
        seen = Counter(r.status for r in traffic.responses)
        assert set(seen) == {status}, f"statuses seen: {dict(seen)}"

    return check


@then(parsers.re(r'every response shows "(?P<text>[^"]+)"'))
def every_response_shows(lab, text):
    lab.explain(explain.statuses_command, lab.sender, lab.traffic)

    def check(traffic):
        missing = Counter(r.status for r in traffic.responses if text not in r.body)
        assert not missing, f"{sum(missing.values())} of {traffic.count} responses lack " \
                            f"{text!r} (their statuses: {dict(missing)})"

    lab.expect(f"every response shows {text!r}", check)


@then(parsers.re(r'every response has status (?P<status>\d+) from "(?P<server>[^"]+)"'),
      converters={"status": int})
def every_status_from(lab, status, server):
    """The ``server`` header says who answered: ``istio-envoy`` for a gateway's own 404."""
    lab.explain(explain.statuses_command, lab.client, lab.traffic)

    def check(traffic):
        seen = Counter((r.status, r.header("server")) for r in traffic.responses)
        assert set(seen) == {(status, server)}, f"(status, server) seen: {dict(seen)}"

    lab.expect(f"every response is {status} from {server}", check)


@then("the ingress gateway refuses the connection")
def connection_refused(lab):
    """No Gateway opens the port: curl cannot connect (exit 7)."""
    lab.explain(explain.statuses_command, lab.client, lab.traffic)

    def check(traffic):
        seen = Counter((r.status, r.exit_code) for r in traffic.responses)
        assert set(seen) == {(0, 7)}, f"(status, curl exit code) seen: {dict(seen)}"

    lab.expect("curl cannot connect to the ingress gateway (exit 7)", check)


# -- TCP through the ingress gateway (the TCP traffic shifting task) ---------------------

@when(parsers.re(r"I send the date to the ingress gateway's TCP port (?P<count>\d+) times?"),
      converters={"count": int})
def send_date_over_tcp(lab, count):
    """``(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT``, each time a new connection."""
    lab.send_lines_through_ingress(count)


@when("I keep sending the date to the ingress gateway's TCP port")
def keep_sending_date_over_tcp(lab):
    """As often as the split check that follows needs (a first batch here, more from the
    check until it decides)."""
    lab.send_lines_through_ingress(BATCH)


def _first_words(traffic) -> Counter:
    """The first word of each connection's reply (``one``, ``two``); why none came, in
    brackets."""
    return Counter(r.first_word or f"({r.error})" for r in traffic.responses)


@then(parsers.re(r'every reply starts with "(?P<word>[^"]+)"'))
def every_reply_starts_with(lab, word):
    lab.explain(explain.tcp_replies_command, lab.traffic)

    def check(traffic):
        seen = _first_words(traffic)
        assert set(seen) == {word}, f"first words of the replies: {dict(seen)}"

    lab.expect(f"every reply starts with {word!r}", check)


@then(parsers.re(r"the replies are split (?P<spec>\S+ \d+% (?:and \S+ \d+%)+)"))
def replies_split(lab, spec):
    """A weighted tcp_proxy picks per connection: a sequential split test on the replies'
    first words."""
    lab.explain(explain.tcp_replies_command, lab.traffic)
    expect_split(lab, f"replies split {spec}", _first_words, parse_shares(spec))


@then("the ingress gateway's TCP port refuses the connection")
def tcp_port_refuses(lab):
    """No listener on the port: the connection is refused (nc exits 1 at once)."""
    lab.explain(explain.tcp_replies_command, lab.traffic)

    def check(traffic):
        seen = _first_words(traffic)
        assert set(seen) == {"(connection refused)"}, f"what the connections got: {dict(seen)}"

    lab.expect("the ingress gateway refuses the TCP connections", check)
