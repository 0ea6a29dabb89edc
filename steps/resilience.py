"""Resilience steps: faults, timeouts and latency bands, status splits, load, logs, stats."""

from collections import Counter

from pytest_bdd import parsers, then, when

from bookinfo_labs import explain
from bookinfo_labs.accesslog import parse_line
from bookinfo_labs.checks import eventually, parse_shares
from bookinfo_labs.checks.consistently import consistently, mirror_copies_landed_by
from bookinfo_labs.checks.sequential import BATCH
from bookinfo_labs.checks.splits import expect_split
from bookinfo_labs.checks.backends import page
from bookinfo_labs.mesh import HttpRequest

REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
RATINGS_ERROR = "Ratings service is currently unavailable"


def _expect_took(lab, expected: str, low: float, high: float) -> None:
    """Each answer's time in [low, high] (the features derive both from the mechanism); the
    batch checked last goes to the lab report's latency histogram, passed or failed."""
    checked: list[list[float]] = []

    def check(traffic):
        times = [round(r.elapsed_s, 3) for r in traffic.responses]
        checked.append(times)
        print(f"times {times} s (expected {low:g} to {high:g} s)")
        assert all(low <= t <= high for t in times), (
            f"times {times} s, expected each {low:g} to {high:g} s")

    try:
        lab.expect(expected, check)
    finally:
        if checked:
            lab.record_figure("latency", title=expected, samples_s=checked[-1],
                              band_s=[low, high])


@then("every page shows the reviews error")
def reviews_error(lab):
    lab.explain(explain.page_text_command, lab.client, lab.traffic, REVIEWS_ERROR)
    def check(traffic):
        shown = [page(r).reviews_error and REVIEWS_ERROR in r.body for r in traffic.responses]
        statuses = Counter(r.status for r in traffic.responses)
        assert all(shown), (f"reviews error on {sum(shown)} of {len(shown)} pages; "
                            f"statuses: {dict(statuses)}")

    lab.expect("the reviews error on every page", check)


@then("every page shows the details error")
def details_error(lab):
    lab.explain(explain.page_text_command, lab.client, lab.traffic, DETAILS_ERROR)
    def check(traffic):
        shown = [page(r).details_error and DETAILS_ERROR in r.body for r in traffic.responses]
        statuses = Counter(r.status for r in traffic.responses)
        assert all(shown), (f"details error on {sum(shown)} of {len(shown)} pages; "
                            f"statuses: {dict(statuses)}")

    lab.expect("the details error on every page", check)


@then('every review on every page shows "Ratings service is currently unavailable"')
def ratings_unavailable(lab):
    lab.explain(explain.page_text_command, lab.client, lab.traffic, RATINGS_ERROR)
    def check(traffic):
        reviews = [review for r in traffic.responses for review in page(r).reviews]
        assert reviews and all(review.rating_error and not review.stars for review in reviews), (
            f"{sum(rv.rating_error for rv in reviews)} of {len(reviews)} reviews show the ratings error")

    lab.expect("the ratings error under every review", check)


@then(parsers.re(r"every (?:page|response) took (?P<low>[\d.]+) to (?P<high>[\d.]+) seconds"),
      converters={"low": float, "high": float})
def took_between(lab, low, high):
    lab.explain(explain.latencies_command, lab.client, lab.traffic)
    _expect_took(lab, f"every response in {low:g} to {high:g} s", low, high)


@then(parsers.re(r"every (?:page|response) took under (?P<limit>[\d.]+) seconds?"),
      converters={"limit": float})
def took_under(lab, limit):
    lab.explain(explain.latencies_command, lab.client, lab.traffic)
    _expect_took(lab, f"every response in under {limit:g} s", 0.0, limit)


@then(parsers.re(r'every response has status (?P<status>\d+) and body "(?P<body>[^"]*)"'),
      converters={"status": int})
def status_and_body(lab, status, body):
    lab.explain(explain.bodies_command, lab.client, lab.traffic)
    def check(traffic):
        seen = Counter((r.status, r.body) for r in traffic.responses)
        assert set(seen) == {(status, body)}, f"(status, body) seen: {dict(seen)}"

    lab.expect(f"every response {status} {body!r}", check)


@then(parsers.re(r"the statuses are split (?P<spec>\d+ \d+(?:\.\d+)?% (?:and \d+ \d+(?:\.\d+)?%)+)"))
def statuses_split(lab, spec):
    """Fault percentages, checked by a sequential split test (checks/sequential.py)."""
    lab.explain(explain.statuses_command, lab.client, lab.traffic)
    expect_split(lab, f"statuses split {spec}",
                 lambda traffic: Counter(str(r.status) for r in traffic.responses), parse_shares(spec))


# -- load and the circuit breaker -------------------------------------------------------

@when(parsers.re(r'fortio sends (?P<requests>\d+) requests over (?P<connections>\d+) '
                 r'connections? to "(?P<url>[^"]+)"'), target_fixture="fortio_run")
def fortio_load(lab, requests, connections, url):
    """The run's parameters are the ``fortio_run`` fixture: the Then steps show them again."""
    lab.load(url, connections=int(connections), requests=int(requests))
    return {"url": url, "connections": int(connections), "requests": int(requests)}


@then(parsers.parse("fortio got only {status:d}s"))
def fortio_only(lab, status, fortio_run):
    lab.explain(explain.fortio_codes_command, "fortio", istio=lab.mesh.istio, **fortio_run)
    codes = lab.load_result.codes
    assert set(codes) == {status}, f"fortio codes: {lab.load_result.code_lines()}"


@then(parsers.re(r"fortio got only (?P<first>\d+)s and (?P<second>\d+)s"),
      converters={"first": int, "second": int})
def fortio_only_these(lab, first, second, fortio_run):
    lab.explain(explain.fortio_codes_command, "fortio", istio=lab.mesh.istio, **fortio_run)
    codes = lab.load_result.codes
    assert set(codes) <= {first, second}, f"fortio codes: {lab.load_result.code_lines()}"


@then(parsers.parse("fortio got at least one {first:d} and one {second:d}"))
def fortio_both(lab, first, second, fortio_run):
    lab.explain(explain.fortio_codes_command, "fortio", istio=lab.mesh.istio, **fortio_run)
    codes = lab.load_result.codes
    assert codes.get(first, 0) >= 1 and codes.get(second, 0) >= 1, (
        f"fortio codes: {lab.load_result.code_lines()}")


@then(parsers.re(r"the (?P<stat>[\w.]+) of httpbin in the client's sidecar grew by the number of "
                 r"(?P<status>\d+)s"), converters={"status": int})
def stat_grew_by_code_count(lab, stat, status):
    lab.explain(explain.stat_command, lab.stats_change.workload, "httpbin", stat, lab.mesh.istio)
    expected = lab.load_result.count(status)
    grown = lab.stats_change.cluster_delta("httpbin", stat)
    print(f"{stat} grew by {grown}; fortio got {expected} x {status}")
    assert grown == expected, f"{stat} grew by {grown}, fortio saw {expected} x {status}"


@then(parsers.re(r"the (?P<stat>[\w.]+) of httpbin in the client's sidecar grew by (?P<amount>\d+)"),
      converters={"amount": int})
def stat_grew_by(lab, stat, amount):
    lab.explain(explain.stat_command, lab.stats_change.workload, "httpbin", stat, lab.mesh.istio)
    grown = lab.stats_change.cluster_delta("httpbin", stat)
    assert grown == amount, f"{stat} grew by {grown}, expected {amount}"


@then("the fortio sidecar reports the pending statistics of httpbin")
def pending_stats(lab):
    """What the lab greps: ``pilot-agent request GET stats | grep httpbin | grep pending``."""
    lab.explain(explain.stat_command, "fortio", "httpbin", "pending", lab.mesh.istio, growth=False)
    stats = lab.mesh.proxy_stats("fortio")
    lines = sorted(f"{k}: {v}" for k, v in stats.items() if "httpbin" in k and "pending" in k)
    print("\n".join(lines))
    expected = ["circuit_breakers.default.rq_pending_open", "circuit_breakers.high.rq_pending_open",
                "upstream_rq_pending_active", "upstream_rq_pending_failure_eject",
                "upstream_rq_pending_overflow", "upstream_rq_pending_total"]
    if lab.mesh.istio.track_remaining_cb:  # not emitted from Istio 1.29 on
        expected.append("circuit_breakers.default.remaining_pending")
    missing = [name for name in expected if not any(line.split(":")[0].endswith("." + name)
                                                    for line in lines)]
    assert not missing, f"missing pending stats {missing}; found:\n" + "\n".join(lines)


@when(parsers.re(r'I send (?P<count>\d+) requests to "(?P<url>[^"]+)" over (?P<parallel>\d+) '
                 r"parallel connections"), converters={"count": int, "parallel": int})
def send_parallel(lab, count, url, parallel):
    lab.send(HttpRequest(url=url, parallel=parallel), count)


@then(parsers.parse("some responses have status {status:d}"))
def some_status(lab, status):
    """Some, not all: re-sent while a batch has none (a breaker trips only when the batch's
    connections overlap, which a loaded machine may not give every batch)."""
    lab.explain(explain.statuses_command, lab.client, lab.traffic)

    def check(traffic):
        seen = Counter(r.status for r in traffic.responses)
        assert seen[status] >= 1, f"statuses: {dict(seen)}"

    lab.expect(f"some responses have status {status}", check)


@then(parsers.re(r'some responses have status (?P<status>\d+), body "(?P<body>[^"]*)" and header '
                 r'"(?P<header>[^"]+)"'), converters={"status": int})
def some_status_body_header(lab, status, body, header):
    name, _, value = header.partition(":")
    lab.explain(explain.replies_command, lab.client, lab.traffic, name.strip(), body)

    def check(traffic):
        matching = [r for r in traffic.responses if r.status == status]
        assert matching, f"no {status}: statuses {dict(Counter(r.status for r in traffic.responses))}"
        for response in matching:
            assert response.body == body, f"a {status} had body {response.body!r}, expected {body!r}"
            assert response.header(name.strip()) == value.strip(), (
                f"a {status} had headers {response.headers}, expected {name.strip()}: "
                f"{value.strip()}")

    lab.expect(f"some responses are {status} {body!r} with {header}", check)


# -- tagged requests: where did each request go, and how many times --------------------

@when(parsers.re(r'I send (?P<count>\d+) requests tagged with a nonce to "(?P<url>[^"]+)"'),
      converters={"count": int})
def send_tagged(lab, count, url):
    lab.send_tagged(HttpRequest(url=url), count)


@when(parsers.re(r'I keep sending requests tagged with a nonce to "(?P<url>[^"]+)"'))
def keep_sending_tagged(lab, url):
    """As many as the mirror-share check that follows needs: a first batch here, more
    from the check until it decides, each batch with its own nonce."""
    lab.send_tagged(HttpRequest(url=url), BATCH)


def _logged(lab, workload: str) -> int:
    return len(lab.tagged_in_log(workload))


@then(parsers.re(r"(?P<workload>[\w/-]+) logged the tagged requests (?P<total>\d+) times"),
      converters={"total": int})
def logged_times(lab, workload, total):
    lab.explain(explain.log_grep_command, workload, lab.nonce)
    eventually(lambda: _logged(lab, workload), _equals(total),
               expected=f"{workload} logs {total} lines with the nonce", policy=lab.policy)


@then(parsers.re(r"(?P<workload>[\w/-]+) logged none of the tagged requests"))
def logged_none(lab, workload):
    """Watched until a mirrored copy of the batch would have landed, not just once."""
    lab.explain(explain.log_grep_command, workload, lab.nonce)
    def check(lines):
        assert not lines, f"{len(lines)} line(s) with the nonce: {lines[:3]}"

    consistently(lambda: lab.tagged_in_log(workload), check,
                 expected=f"{workload} logs no line with the nonce",
                 until=mirror_copies_landed_by(lab.traffic), interval_s=max(lab.policy.interval_s, 0.1))


@then(parsers.re(r"(?P<workload>[\w/-]+) logged each tagged request once"))
def logged_each_once(lab, workload):
    logged_times(lab, workload, lab.traffic.count)


@then(parsers.re(r"(?P<workload>[\w-]+) logged each tagged request once, or three times on "
                 r"Istio 1\.23 and older"))
def logged_default_retries(lab, workload):
    """Istio's default retry policy retried an upstream 503 twice up to 1.23, not since."""
    per_request = 3 if lab.mesh.istio.default_retry_503 else 1
    logged_times(lab, workload, per_request * lab.traffic.count)


@then(parsers.re(r"(?P<workload>[\w-]+) logged about (?P<percent>[\d.]+)% of the tagged requests"))
def logged_share(lab, workload, percent):
    """Mirroring percentages, by a sequential split test counting each batch's copies once
    they have settled; every batch has its own nonce (``send_tagged``)."""
    lab.explain(explain.log_grep_command, workload, lab.nonce)
    def counts(traffic):
        seen = _settled(lambda: _logged(lab, workload))
        return {"mirrored": seen, "not mirrored": traffic.count - seen}

    expect_split(lab, f"{workload} logs about {percent}% of the tagged requests", counts,
                 {"mirrored": float(percent), "not mirrored": 100 - float(percent)})


@then(parsers.re(r"the (?P<workload>[\w-]+) sidecar saw the tagged requests with the host the Istio "
                 r"version uses"))
def mirrored_host(lab, workload):
    """Envoy appends -shadow to a mirrored Host up to Istio 1.27 (not from 1.28 on)."""
    lab.explain(explain.log_grep_command, workload, lab.nonce, "istio-proxy", count=False)
    host, port = lab.traffic.request.url.split("/")[2].partition(":")[::2]
    expected = f"{host}-shadow:{port}" if lab.mesh.istio.mirror_shadow_suffix else f"{host}:{port}"
    lines = eventually(lambda: lab.tagged_in_log(workload, container="istio-proxy"),
                       lambda found: _equals(lab.traffic.count)(len(found)),
                       expected=f"{workload}'s sidecar logs every tagged request", policy=lab.policy)
    hosts = Counter(parse_line(line).authority for line in lines)
    assert set(hosts) == {expected}, f"authorities seen: {dict(hosts)}, expected {expected}"


def _equals(expected: int):
    def check(value):
        assert value == expected, f"found {value}, expected {expected}"

    return check


def _settled(observe):
    """Observe until two readings 0.3 s apart agree: fire-and-forget copies have landed."""
    readings = []

    def check(value):
        readings.append(value)
        assert len(readings) > 1 and readings[-2] == value, f"still changing: {readings[-3:]}"

    return eventually(observe, check, expected="a settled count", times=1, interval_s=0.3,
                      max_backoff_s=0.3, timeout_s=10)


# -- outlier detection ------------------------------------------------------------------

@when(parsers.re(r'(?:a request|(?P<count>\d+) requests) to "(?P<url>[^"]+)" fails? '
                 r"with (?P<status>\d+)"))
def failing_requests(lab, count, url, status):
    """Requests meant to fail (to make hosts eject): checked once, as sent. A check that
    re-sent them would change the very state the scenario goes on to look at."""
    traffic = lab.send_counting_stats(HttpRequest(url=url), int(count or 1))
    lab.mark("failure", at=traffic.finished_at)  # the answer's arrival, not the stats read after it
    seen = Counter(r.status for r in traffic.responses)
    assert set(seen) == {int(status)}, f"expected every response {status}, got {dict(seen)}"


@when(parsers.re(r'requests to "(?P<url>[^"]+)" fail with (?P<status>\d+) until every host is '
                 r"ejected"), converters={"status": int})
def failing_until_ejected(lab, url, status):
    """One request at a time until the sidecar has no healthy host left for ``url``.

    Envoy ejects on its main thread and then updates the worker that routes, so a request
    sent at once may reach a host already ejected and leave another one in: a fixed number
    of failing requests ejects every host only when the update won the race."""
    seen: Counter = Counter()

    def check(traffic):
        response = traffic.responses[0]
        seen[response.status] += 1
        assert response.status in (status, 503), (
            f"{url} answered {response.status}, expected {status} until every host is ejected")
        assert response.status == 503, f"{url} still answers {status}"

    answered = eventually(lambda: lab.send(HttpRequest(url=url)), check,
                          expected=f"no healthy host left for {url}", times=1, interval_s=0.05,
                          max_backoff_s=0.05, timeout_s=lab.policy.timeout_s)
    body = answered.responses[0].body
    print(f"{dict(seen)} until every host was ejected; the last answer: {body!r}")
    assert set(seen) - {status, 503} == set(), f"statuses {dict(seen)}"
    assert seen[status] >= 1, f"no request failed with {status} first: {dict(seen)}"
    assert body == "no healthy upstream", f"the 503 had body {body!r}, not 'no healthy upstream'"


@then(parsers.re(r'"(?P<url>[^"]+)" answers 200 again (?P<low>[\d.]+) to (?P<high>[\d.]+) '
                 r"seconds after that failure"), converters={"low": float, "high": float})
def answers_again(lab, url, low, high):
    lab.explain(explain.answers_again_command, lab.client, url)

    def status_is(status: int):
        def check(traffic):
            got = traffic.responses[0].status
            assert got == status, f"{url} answered {got}, waiting for {status}"
        return check

    def probe():
        return lab.send(HttpRequest(url=url))

    # Envoy ejects on its main thread and then updates the worker that routes, so a probe
    # sent at once may still reach the host: first see it ejected (503, no healthy
    # upstream), then probe every 50 ms; the host was back by the time the first answered
    # probe was sent, so that moment (not its answer's) is measured from the failing answer.
    eventually(probe, status_is(503), expected=f"{url} ejected (503)", times=1,
               timeout_s=1.0, interval_s=0.01, max_backoff_s=0.01)
    answered = eventually(probe, status_is(200), expected=f"{url} answers 200", times=1,
                          timeout_s=high + 5, interval_s=0.05, max_backoff_s=0.05)
    back_after = answered.started_at - lab.marks["failure"]
    print(f"back after {back_after:.3f} s (expected {low:g} to {high:g} s)")
    assert low <= back_after <= high, f"back after {back_after:.2f} s, expected {low:g} to {high:g} s"
