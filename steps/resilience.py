"""Resilience steps: faults, timeouts and latency bands, status splits, load, logs, stats."""

from collections import Counter

from pytest_bdd import parsers, then, when

from bookinfo_labs.checks import check_split
from bookinfo_labs.checks.backends import page

REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."


def _band(center: float, tolerance: float):
    low, high = center - tolerance, center + tolerance

    def check(traffic):
        times = [round(r.elapsed_s, 2) for r in traffic.responses]
        assert all(low <= t <= high for t in times), (
            f"times {times} s, expected each within {center:g} s ± {tolerance:g} s")

    return check


@then(parsers.parse("every page shows the reviews error"))
def reviews_error(lab):
    def check(traffic):
        pages = [page(r) for r in traffic.responses]
        assert all(p.reviews_error for p in pages) and all(
            REVIEWS_ERROR in r.body for r in traffic.responses), (
            f"reviews error on {sum(p.reviews_error for p in pages)} of {len(pages)} pages")

    lab.expect("the reviews error on every page", check)


@then(parsers.parse("every page shows the details error"))
def details_error(lab):
    def check(traffic):
        assert all(page(r).details_error and DETAILS_ERROR in r.body for r in traffic.responses)

    lab.expect("the details error on every page", check)


@then(parsers.parse('every review on every page shows "Ratings service is currently unavailable"'))
def ratings_unavailable(lab):
    def check(traffic):
        reviews = [review for r in traffic.responses for review in page(r).reviews]
        assert reviews and all(review.rating_error and not review.stars for review in reviews), (
            f"{sum(rv.rating_error for rv in reviews)} of {len(reviews)} reviews show the ratings error")

    lab.expect("the ratings error under every review", check)


@then(parsers.re(r"every (?:page|response) arrived after (?P<center>[\d.]+) ± (?P<tol>[\d.]+) seconds?"))
def arrived_within(lab, center, tol):
    lab.expect(f"every response after {center} s ± {tol} s", _band(float(center), float(tol)))


@then(parsers.re(r"every (?:page|response) arrived in under (?P<limit>[\d.]+) seconds?"))
def arrived_under(lab, limit):
    def check(traffic):
        times = [round(r.elapsed_s, 2) for r in traffic.responses]
        assert all(t < float(limit) for t in times), f"times {times} s, expected each under {limit} s"

    lab.expect(f"every response in under {limit} s", check)


@then(parsers.parse('every response has status {status:d} and body "{body}"'))
def status_and_body(lab, status, body):
    def check(traffic):
        seen = Counter((r.status, r.body) for r in traffic.responses)
        assert set(seen) == {(status, body)}, f"(status, body) seen: {dict(seen)}"

    lab.expect(f"every response {status} {body!r}", check)


@then(parsers.re(r"the statuses are split (?P<spec>\d+ \d+(?:\.\d+)?% (?:and \d+ \d+(?:\.\d+)?%)+)"))
def statuses_split(lab, spec):
    """Fault percentages, checked with an exact binomial band (false failure <= 1e-6)."""
    expected = {}
    for part in spec.split(" and "):
        status, percent = part.split()
        expected[status] = float(percent.rstrip("%"))
    observed = Counter(str(r.status) for r in lab.traffic.responses)
    result = check_split(observed, expected)
    print(result.table())
    result.assert_ok()
