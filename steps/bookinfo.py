"""Bookinfo steps in the handout's words: users, the product page, stars and versions."""

from collections import Counter

from pytest_bdd import parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.checks.backends import page, reviews_version
from bookinfo_labs.checks.sequential import BATCH

# "a user" and "an anonymous user" browse without signing in; any other name is a user
# who may have signed in (their browser session is kept per scenario).
_USER = r"(?P<user>a user|an anonymous user|[a-z][\w.-]*)"


def _user(text: str) -> str | None:
    return None if text in ("a user", "an anonymous user") else text


@when(parsers.re(r"(?P<user>[a-z][\w.-]*) logs in"))
def logs_in(lab, user):
    response = lab.login(user)
    assert response.status == 302 and "session=" in response.header("set-cookie", ""), (
        f"signing in as {user} failed: HTTP {response.status} {response.body[:200]!r}")


@when(parsers.re(r"(?P<user>[a-z][\w.-]*) logs out"))
def logs_out(lab, user):
    response = lab.logout(user)
    assert response.status == 302, (
        f"signing out failed: HTTP {response.status} {response.body[:200]!r}")


@when(parsers.re(_USER + r" opens the product page(?: (?P<count>\d+) times)?"))
def opens_product_page(lab, user, count):
    lab.open_product_page(_user(user), int(count or 1))


@when(parsers.re(_USER + r" keeps opening the product page"))
def keeps_opening_product_page(lab, user):
    """As many times as the split check that follows needs: a first batch here, more from
    the check until it decides (checks/sequential.py)."""
    lab.open_product_page(_user(user), BATCH)


@then(parsers.re(r"every page is served by reviews (?P<version>v\d+)"))
def every_page_from(lab, version):
    lab.explain(explain.versions_command, lab.client, lab.traffic)
    def check(traffic):
        seen = Counter(reviews_version(r) for r in traffic.responses)
        statuses = Counter(r.status for r in traffic.responses)
        assert set(seen) == {version}, f"reviews versions seen: {dict(seen)}; statuses: {dict(statuses)}"

    lab.expect(f"all {lab.traffic.count} pages served by reviews {version}", check)


@then(parsers.re(r"the pages are served by reviews (?P<versions>v\d+(?:, v\d+)* and v\d+)"))
def pages_from_all(lab, versions):
    wanted = set(versions.replace(" and ", ", ").split(", "))
    lab.explain(explain.versions_command, lab.client, lab.traffic)

    def check(traffic):
        seen = Counter(reviews_version(r) for r in traffic.responses)
        assert set(seen) == wanted, f"reviews versions seen: {dict(seen)}, expected each of {sorted(wanted)}"

    lab.expect(f"pages served by each of reviews {', '.join(sorted(wanted))}", check)


@then("no page shows stars")
def no_stars(lab):
    lab.explain(explain.stars_command, lab.client, lab.traffic, lab.mesh.istio)
    def check(traffic):
        stars = [page(r).total_stars for r in traffic.responses]
        assert not any(stars), f"stars per page: {stars}"

    lab.expect("no stars on any page", check)


@then(parsers.re(r"every page shows (?P<color>black|red) stars"))
def every_page_stars(lab, color):
    lab.explain(explain.star_colors_command, lab.client, lab.traffic, lab.mesh.istio)
    def check(traffic):
        seen = Counter(frozenset(page(r).star_colors) for r in traffic.responses)
        assert set(seen) == {frozenset({color})}, f"star colours seen: {dict(seen)}"

    lab.expect(f"{color} stars on every page", check)


@then(parsers.re(r"the pages served by reviews (?P<version>v\d+) show (?P<color>black|red|no) stars"))
def pages_of_version_stars(lab, version, color):
    lab.explain(explain.star_colors_command, lab.client, lab.traffic, lab.mesh.istio, with_version=True)
    pages = [page(r) for r in lab.traffic.responses if reviews_version(r) == version]
    assert pages, (f"no page was served by reviews {version}; versions seen: "
                   f"{dict(Counter(reviews_version(r) for r in lab.traffic.responses))}")
    wanted = frozenset() if color == "no" else frozenset({color})
    seen = Counter(frozenset(p.star_colors) for p in pages)
    assert set(seen) == {wanted}, f"star colours on {version} pages: {dict(seen)}"


@then(parsers.re(r"every page shows (?P<user>[a-z][\w.-]*) signed in"))
def signed_in(lab, user):
    lab.explain(explain.signed_in_command, lab.client, lab.traffic, lab.mesh.istio)
    def check(traffic):
        seen = Counter(page(r).signed_in_user for r in traffic.responses)
        assert set(seen) == {user}, f"signed-in users seen: {dict(seen)}"

    lab.expect(f"{user} signed in on every page", check)


@then("no page shows a signed-in user")
def nobody_signed_in(lab):
    lab.explain(explain.signed_in_command, lab.client, lab.traffic, lab.mesh.istio)
    def check(traffic):
        seen = Counter(page(r).signed_in_user for r in traffic.responses)
        assert set(seen) == {None}, f"signed-in users seen: {dict(seen)}"

    lab.expect("nobody signed in", check)


@then("every request succeeded")
def all_succeeded(lab):
    lab.explain(explain.statuses_command, lab.client, lab.traffic)
    statuses = Counter(r.status for r in lab.traffic.responses)
    assert set(statuses) == {200}, f"statuses: {dict(statuses)}"
