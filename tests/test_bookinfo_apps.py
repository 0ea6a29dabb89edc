"""The local Bookinfo apps against the facts (docs/facts.md#bookinfo-apps).

Backends are faked at the outbound (the sidecar): calls are recorded, answered with canned
responses, or fail at once with the exceptions the sidecar raises. No timers, no sleeps.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bookinfo_labs.local.apps.base import AppContext, UpstreamResponse
from bookinfo_labs.local.apps.bookinfo import (
    IMAGES,
    RATINGS_FAULTS,
    b3_forward,
    details,
    productpage,
    ratings,
    reviews,
    session_serializer,
)
from bookinfo_labs.versions import get_version

TAILWIND = get_version("1.26")
BOOTSTRAP = get_version("1.22")

REVIEWER1 = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
REVIEWER2 = (
    "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
    "plays by Shakespeare."
)
DETAILS_BODY = (
    b'{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,'
    b'"publisher":"PublisherA","language":"English","ISBN-10":"1234567890",'
    b'"ISBN-13":"123-1234567890"}'
)
JASON_PAYLOAD = "eyJ1c2VyIjoiamFzb24ifQ"


# ---------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    url: str
    headers: list[tuple[str, str]]
    timeout_s: float | None

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)


Reply = UpstreamResponse | BaseException


class FakeOutbound:
    """Records calls; answers from ``routes`` (URL prefix -> reply, or a list consumed in
    order, or a callable taking the Call). Exceptions are raised immediately."""

    def __init__(self, routes: dict[str, Any] | None = None):
        self.routes = dict(routes or {})
        self.calls: list[Call] = []

    async def request(self, method, url, *, headers=(), body=None, timeout_s=None):
        call = Call(method, url, list(headers), timeout_s)
        self.calls.append(call)
        for prefix, reply in self.routes.items():
            if url.startswith(prefix):
                if isinstance(reply, list):
                    reply = reply.pop(0)
                if callable(reply) and not isinstance(reply, BaseException):
                    reply = await reply(call)
                if isinstance(reply, BaseException):
                    raise reply
                return reply
        raise ConnectionError(f"no route to {url}")

    def to(self, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.url.startswith(prefix)]


def ok(body: bytes | str, status: int = 200) -> UpstreamResponse:
    data = body.encode() if isinstance(body, str) else body
    return UpstreamResponse(status, {"content-type": "application/json"}, data)


def make_ctx(outbound=None, *, pod="test-pod", options=None, env=None, istio=TAILWIND):
    log: list[str] = []
    ctx = AppContext(
        pod_name=pod,
        labels={},
        env=dict(env or {}),
        outbound=outbound or FakeOutbound(),
        istio=istio,
        log=log.append,
        options=dict(options or {}),
    )
    return ctx, log


def image_ctx(image: str, outbound=None, *, pod="test-pod", env=None, istio=TAILWIND):
    factory, options = IMAGES[image]
    ctx, log = make_ctx(outbound, pod=pod, options=options, env=env, istio=istio)
    return factory, ctx, log


def serve(factory, ctx, scenario: Callable[[TestClient], Any]):
    """Run ``scenario(client)`` against the app on a loopback test server."""

    async def main():
        app = factory(ctx)
        if asyncio.iscoroutine(app):
            app = await app
        async with TestClient(TestServer(app)) as client:
            return await scenario(client)

    return asyncio.run(main())


def get(factory, ctx, path: str, **kwargs):
    """GET one path; returns (status, headers, body bytes)."""

    async def scenario(client):
        async with client.get(path, allow_redirects=False, **kwargs) as resp:
            return resp.status, resp.headers, await resp.read()

    return serve(factory, ctx, scenario)


def reviews_body(version: str, pod: str, ratings_reply: Reply | None = None) -> str:
    """The reviews JSON a given reviews image returns (ratings answered by ``ratings_reply``)."""
    outbound = FakeOutbound({"http://ratings:9080": ratings_reply or ok(RATINGS_BODY)})
    factory, ctx, _ = image_ctx(f"examples-bookinfo-reviews-{version}", outbound, pod=pod)
    status, _, body = get(factory, ctx, "/reviews/0")
    assert status == 200
    return body.decode()


RATINGS_BODY = '{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}'


# ---------------------------------------------------------------------------------------
# details
# ---------------------------------------------------------------------------------------


def test_details_body_is_byte_exact():
    factory, ctx, log = image_ctx("examples-bookinfo-details-v1")
    status, headers, body = get(factory, ctx, "/details/0")
    assert (status, body) == (200, DETAILS_BODY)
    assert headers["Content-Type"] == "application/json"
    assert len(log) == 1 and '"GET /details/0 HTTP/1.1" 200' in log[0]


@pytest.mark.parametrize("path", ["/details/abc", "/details", "/details/0/x"])
def test_details_rejects_non_numeric_ids(path):
    factory, ctx, _ = image_ctx("examples-bookinfo-details-v1")
    status, _, body = get(factory, ctx, path)
    assert (status, body) == (400, b'{"error":"please provide numeric product id"}')


def test_details_health_and_unknown_path():
    factory, ctx, log = image_ctx("examples-bookinfo-details-v1")
    assert get(factory, ctx, "/health")[::2] == (200, b'{"status":"Details is healthy"}')
    status, _, body = get(factory, ctx, "/nope")
    assert status == 404 and b"Not Found" in body
    assert any('"GET /nope HTTP/1.1" 404' in line for line in log)


def test_details_v2_asks_the_books_api_and_fails_with_400():
    outbound = FakeOutbound({"https://www.googleapis.com": ConnectionError("reset by peer")})
    factory, ctx, _ = image_ctx("examples-bookinfo-details-v2", outbound)
    status, _, body = get(factory, ctx, "/details/0", headers={"end-user": "jason"})
    assert status == 400 and "error" in json.loads(body)
    [call] = outbound.calls
    assert call.url == "https://www.googleapis.com/books/v1/volumes?q=isbn:0486424618"
    assert call.timeout_s == 5.0 and call.header("end-user") == "jason"


# ---------------------------------------------------------------------------------------
# ratings
# ---------------------------------------------------------------------------------------


def test_ratings_body_is_byte_exact():
    factory, ctx, log = image_ctx("examples-bookinfo-ratings-v1")
    status, headers, body = get(factory, ctx, "/ratings/0")
    assert (status, body.decode()) == (200, RATINGS_BODY)
    assert headers["Content-Type"] == "application/json"
    assert log == ["GET /ratings/0 200"]


def test_ratings_errors_and_health():
    factory, ctx, _ = image_ctx("examples-bookinfo-ratings-v1")
    assert get(factory, ctx, "/ratings/abc")[::2] == (
        400,
        b'{"error":"please provide numeric product ID"}',
    )
    assert get(factory, ctx, "/health")[::2] == (200, b'{"status":"Ratings is healthy"}')
    assert get(factory, ctx, "/unknown")[::2] == (404, b"")


def test_ratings_post_stores_in_memory():
    factory, ctx, _ = image_ctx("examples-bookinfo-ratings-v1")

    async def scenario(client):
        async with client.post("/ratings/7", data='{"Reviewer1":1,"Reviewer2":2}') as r:
            posted = (r.status, await r.read())
        async with client.get("/ratings/7") as r:
            return posted, await r.read()

    posted, fetched = serve(factory, ctx, scenario)
    assert posted == (200, b'{"id":7,"ratings":{"Reviewer1":1,"Reviewer2":2}}')
    assert fetched == posted[1]


def test_ratings_faulty_mode_returns_503_when_the_coin_says_so():
    factory, ctx, _ = image_ctx("examples-bookinfo-ratings-v-faulty")

    def app_with(coin):
        def build(c):
            app = factory(c)
            app[RATINGS_FAULTS].random = lambda: coin
            return app

        return build

    assert get(app_with(0.2), ctx, "/ratings/0")[::2] == (503, b'{"error":"Service unavailable"}')
    assert get(app_with(0.9), ctx, "/ratings/0")[0] == 200


def test_ratings_unavailable_mode_toggles_every_60_seconds():
    factory, ctx, _ = image_ctx("examples-bookinfo-ratings-v-unavailable")

    def at(elapsed):
        def build(c):
            app = factory(c)
            faults = app[RATINGS_FAULTS]
            faults.clock = lambda: faults.started + elapsed
            return app

        return build

    assert get(at(10), ctx, "/ratings/0")[0] == 200
    assert get(at(70), ctx, "/ratings/0")[0] == 503
    assert get(at(130), ctx, "/ratings/0")[0] == 200


# ---------------------------------------------------------------------------------------
# reviews
# ---------------------------------------------------------------------------------------


def _expected_reviews(pod: str, r1: str = "", r2: str = "") -> str:
    return (
        f'{{"id": "0","podname": "{pod}","clustername": "null","reviews": '
        f'[{{  "reviewer": "Reviewer1",  "text": "{REVIEWER1}"{r1}}},'
        f'{{  "reviewer": "Reviewer2",  "text": "{REVIEWER2}"{r2}}}]}}'
    )


def test_reviews_v1_is_byte_exact_and_never_calls_ratings():
    outbound = FakeOutbound()
    factory, ctx, _ = image_ctx("examples-bookinfo-reviews-v1", outbound, pod="reviews-v1-abc")
    status, headers, body = get(factory, ctx, "/reviews/0")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body.decode() == _expected_reviews("reviews-v1-abc")
    assert outbound.calls == []


@pytest.mark.parametrize(
    "version,color,timeout", [("v2", "black", 10.0), ("v3", "red", 2.5)]
)
def test_reviews_with_ratings_is_byte_exact_and_passes_its_timeout(version, color, timeout):
    outbound = FakeOutbound({"http://ratings:9080": ok(RATINGS_BODY)})
    pod = f"reviews-{version}-abc"
    factory, ctx, _ = image_ctx(f"examples-bookinfo-reviews-{version}", outbound, pod=pod)
    status, _, body = get(factory, ctx, "/reviews/0")
    assert status == 200
    assert body.decode() == _expected_reviews(
        pod,
        f', "rating": {{"stars": 5, "color": "{color}"}}',
        f', "rating": {{"stars": 4, "color": "{color}"}}',
    )
    [call] = outbound.calls
    assert (call.method, call.url) == ("GET", "http://ratings:9080/ratings/0")
    assert call.timeout_s == timeout
    assert call.header("accept") == "application/json"


UNABLE = "Error: unable to contact http://ratings:9080/ratings got"


@pytest.mark.parametrize(
    "reply,log_line",
    [
        (ok('{"error":"x"}', 503), f"{UNABLE} status of 503"),
        (asyncio.TimeoutError(), f"{UNABLE} exception"),
        (ConnectionError("refused"), f"{UNABLE} exception"),
        (ok('{"error":"could not connect to ratings database"}'), None),  # 200, no "ratings"
    ],
)
def test_reviews_ratings_failure_is_the_error_rating(reply, log_line):
    outbound = FakeOutbound({"http://ratings:9080": reply})
    factory, ctx, log = image_ctx("examples-bookinfo-reviews-v3", outbound, pod="reviews-v3-abc")
    status, _, body = get(factory, ctx, "/reviews/0")
    error = ', "rating": {"error": "Ratings service is currently unavailable"}'
    assert status == 200
    assert body.decode() == _expected_reviews("reviews-v3-abc", error, error)
    if log_line:
        assert log[0].startswith(log_line)
    assert '"GET /reviews/0 HTTP/1.1" 200' in log[-1]


def test_reviews_propagates_headers_and_cluster_name():
    outbound = FakeOutbound({"http://ratings:9080": ok(RATINGS_BODY)})
    factory, ctx, _ = image_ctx(
        "examples-bookinfo-reviews-v2", outbound, env={"CLUSTER_NAME": "east"}
    )
    sent = {
        "end-user": "jason",
        "x-request-id": "rid",
        "x-b3-parentspanid": "00000000000000aa",
        "user-agent": "curl/8.16.0",
        "cookie": "session=abc",
        "x-unrelated": "no",
    }
    _, _, body = get(factory, ctx, "/reviews/0", headers=sent)
    assert json.loads(body)["clustername"] == "east"
    [call] = outbound.calls
    for name in ("end-user", "x-request-id", "x-b3-parentspanid", "user-agent", "cookie"):
        assert call.header(name) == sent[name]
    assert call.header("x-unrelated") is None


def test_reviews_health_and_non_int_id():
    factory, ctx, _ = image_ctx("examples-bookinfo-reviews-v1")
    assert get(factory, ctx, "/health")[::2] == (200, b'{"status": "Reviews is healthy"}')
    assert get(factory, ctx, "/reviews/abc")[0] == 404


# ---------------------------------------------------------------------------------------
# productpage
# ---------------------------------------------------------------------------------------


def backends(reviews_reply: Any = None, details_reply: Any = None, **more) -> FakeOutbound:
    return FakeOutbound(
        {
            "http://details:9080/": ok(DETAILS_BODY) if details_reply is None else details_reply,
            "http://reviews:9080/": ok(reviews_body("v1", "reviews-v1-7d8f9c6b5d-x2k4p"))
            if reviews_reply is None
            else reviews_reply,
            **more,
        }
    )


def page(outbound, path="/productpage", istio=TAILWIND, **kwargs):
    ctx, log = make_ctx(outbound, pod="productpage-v1-abc", istio=istio)
    status, headers, body = get(productpage, ctx, path, **kwargs)
    return status, headers, body.decode(), log


def test_productpage_calls_details_once_then_reviews_with_3s_timeouts():
    outbound = backends()
    status, headers, body, log = page(outbound)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>Simple Bookstore App</title>" in body
    assert [c.url for c in outbound.calls] == [
        "http://details:9080/details/0",
        "http://reviews:9080/reviews/0",
    ]
    assert all(c.timeout_s == 3.0 for c in outbound.calls)
    assert len(log) == 1 and '"GET /productpage HTTP/1.1" 200' in log[0]


@pytest.mark.parametrize(
    "first,second",
    [(asyncio.TimeoutError(), asyncio.TimeoutError()), (ok("", 503), ConnectionError())],
)
def test_productpage_tries_reviews_twice_then_shows_the_error(first, second):
    outbound = backends(reviews_reply=[first, second])
    status, _, body, _ = page(outbound)
    assert status == 200
    assert len(outbound.to("http://reviews:9080/")) == 2
    assert all(c.timeout_s == 3.0 for c in outbound.calls)
    assert "Error fetching product reviews" in body
    assert "Sorry, product reviews are currently unavailable for this book." in body


def test_productpage_stops_retrying_reviews_at_the_first_200():
    good = ok(reviews_body("v1", "reviews-v1-7d8f9c6b5d-x2k4p"))
    outbound = backends(reviews_reply=[ok("", 504), good])
    _, _, body, _ = page(outbound)
    assert len(outbound.to("http://reviews:9080/")) == 2
    assert "Book Reviews" in body and "Error fetching product reviews" not in body


def test_productpage_details_failure_is_one_attempt():
    outbound = backends(details_reply=[asyncio.TimeoutError()])
    status, _, body, _ = page(outbound)
    assert status == 200 and len(outbound.to("http://details:9080/")) == 1
    assert "Error fetching product details" in body
    assert "Sorry, product details are currently unavailable for this book." in body


def test_api_status_mirrors_the_backend():
    outbound = backends(details_reply=ok("fault filter abort", 555))
    status, _, body, _ = page(outbound, "/api/v1/products/0")
    assert (status, body) == (
        555,
        '{"error": "Sorry, product details are currently unavailable for this book."}',
    )
    status, _, body, _ = page(backends(details_reply=[ConnectionError()]), "/api/v1/products/0")
    assert status == 500


def test_api_outputs_are_exact():
    _, _, body, _ = page(backends(), "/api/v1/products/0")
    assert body == (
        '{"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", '
        '"pages": 200, "publisher": "PublisherA", "language": "English", '
        '"ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}'
    )
    _, _, body, _ = page(backends(), "/api/v1/products")
    assert body.startswith(
        '[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\\"'
    )
    outbound = backends(**{"http://ratings:9080/": ok(RATINGS_BODY)})
    status, _, body, _ = page(outbound, "/api/v1/products/0/ratings")
    assert (status, body) == (200, '{"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}')
    status, _, body, _ = page(backends(), "/api/v1/products/0/reviews")
    assert status == 200 and json.loads(body)["podname"] == "reviews-v1-7d8f9c6b5d-x2k4p"


def test_productpage_other_routes():
    assert page(backends(), "/health")[::2] == (200, "Product page is healthy")
    status, _, body, _ = page(backends(), "/")
    assert status == 200 and "/productpage?u=normal" in body and "/productpage?u=test" in body
    status, _, body, _ = page(backends(), "/nothing-here")
    assert status == 404 and "<title>404 Not Found</title>" in body
    assert page(backends(), "/login")[0] == 405


def test_forwarded_headers_and_b3():
    outbound = backends()
    sent = {
        "x-request-id": "rid-1",
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-parentspanid": "0020000000000001",
        "x-b3-sampled": "1",
        "x-b3-flags": "1",
        "user-agent": "curl/8.16.0",
        "authorization": "Bearer t",
        "x-unrelated": "dropped",
    }
    page(outbound, headers=sent)
    for call in outbound.calls:
        got = dict((n.lower(), v) for n, v in call.headers)
        assert got["x-request-id"] == "rid-1"
        assert got["x-b3-traceid"] == "0000000000000000463ac35c9f6413ad"
        assert got["x-b3-spanid"] == "a2fb4a1d1a96d312"
        assert got["x-b3-sampled"] == "1"
        assert got["user-agent"] == "curl/8.16.0" and got["authorization"] == "Bearer t"
        for absent in ("x-b3-parentspanid", "x-b3-flags", "x-unrelated", "end-user"):
            assert absent not in got


def test_b3_is_not_invented():
    assert b3_forward({}) == []
    assert b3_forward({"x-b3-traceid": "463ac35c9f6413ad"}) == []
    assert b3_forward({"x-b3-traceid": "zz", "x-b3-spanid": "a2fb4a1d1a96d312"}) == []


def test_end_user_comes_only_from_the_session():
    # A client-sent end-user header is not forwarded...
    outbound = backends()
    page(outbound, headers={"end-user": "jason"})
    assert all(c.header("end-user") is None for c in outbound.calls)
    # ...the session cookie is, and so is the cookie itself.
    cookie = session_serializer().dumps({"user": "jason"})
    outbound = backends()
    page(outbound, headers={"Cookie": f"session={cookie}", "end-user": "mallory"})
    for call in outbound.calls:
        assert call.header("end-user") == "jason"
        assert call.header("cookie") == f"session={cookie}"
    # A cookie signed with another key is an empty session.
    forged = session_serializer(b"not the key").dumps({"user": "jason"})
    outbound = backends()
    page(outbound, headers={"Cookie": f"session={forged}"})
    assert all(c.header("end-user") is None for c in outbound.calls)


def test_login_sets_a_flask_session_cookie_and_logout_clears_it():
    ctx, _ = make_ctx(backends())

    async def scenario(client):
        async with client.post(
            "/login",
            data={"username": "jason", "passwd": "password"},
            headers={"Referer": "http://bookinfo/productpage"},
            allow_redirects=False,
        ) as r:
            login = r.status, r.headers["Location"], r.headers.getall("Set-Cookie")
        async with client.get(
            "/logout", headers={"Referer": "http://bookinfo/productpage"}, allow_redirects=False
        ) as r:
            logout = r.status, r.headers["Location"], r.headers.getall("Set-Cookie")
        async with client.post("/login", data={"username": "x"}, allow_redirects=False) as r:
            no_referer = r.headers["Location"]
        return login, logout, no_referer

    login, logout, no_referer = serve(productpage, ctx, scenario)
    status, location, [cookie] = login
    assert (status, location) == (302, "http://bookinfo/productpage")
    assert cookie.startswith(f"session={JASON_PAYLOAD}.") and cookie.endswith("; HttpOnly; Path=/")
    value = cookie.split(";")[0].split("=", 1)[1]
    assert session_serializer().loads(value) == {"user": "jason"}
    assert logout == (
        302,
        "http://bookinfo/productpage",
        ["session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/"],
    )
    assert no_referer == "None"


def test_sessions_are_compatible_with_the_real_flask_app():
    # A cookie the real productpage issued (reference A.2) verifies with our serializer.
    real = "eyJ1c2VyIjoiamFzb24ifQ.awHrVg.QmslgCicFdTQEI-TPEOeFGQNzuQ"
    assert session_serializer().loads(real) == {"user": "jason"}
    assert session_serializer().dumps({"user": "jason"}).startswith(JASON_PAYLOAD + ".")


def test_login_without_a_username_sends_no_end_user():
    outbound = backends()
    ctx, _ = make_ctx(outbound)

    async def scenario(client):
        await client.post("/login", data={"passwd": "x"}, allow_redirects=False)
        async with client.get("/productpage") as r:
            return await r.text()

    body = serve(productpage, ctx, scenario)
    assert "Sign out" not in body
    assert all(c.header("end-user") is None for c in outbound.calls)


def test_login_then_page_shows_the_user_and_sends_end_user():
    outbound = backends()
    ctx, _ = make_ctx(outbound)

    async def scenario(client):
        await client.post(
            "/login", data={"username": "jason"}, headers={"Referer": "/productpage"},
            allow_redirects=False,
        )
        async with client.get("/productpage") as r:
            return await r.text()

    body = serve(productpage, ctx, scenario)
    assert "jason" in body and "Sign out" in body
    assert all(c.header("end-user") == "jason" for c in outbound.calls)


def test_flooding_image_makes_extra_reviews_calls_before_the_real_one():
    factory, options = IMAGES["examples-bookinfo-productpage-v-flooding"]
    outbound = backends()
    ctx, _ = make_ctx(outbound, options={**options, "flood_factor": "3"})
    get(factory, ctx, "/productpage")
    assert [c.url.split("/")[3] for c in outbound.calls] == ["details"] + ["reviews"] * 4


def test_service_urls_follow_the_env_overrides():
    outbound = FakeOutbound(
        {
            "http://d.bookinfo.svc:9081/": ok(DETAILS_BODY),
            "http://reviews.bookinfo.svc:9080/": ok(reviews_body("v1", "reviews-v1-a-b")),
        }
    )
    ctx, _ = make_ctx(
        outbound,
        env={
            "DETAILS_HOSTNAME": "d",
            "DETAILS_SERVICE_PORT": "9081",
            "SERVICES_DOMAIN": "bookinfo.svc",
        },
    )
    assert get(productpage, ctx, "/productpage")[0] == 200
    assert [c.url for c in outbound.calls] == [
        "http://d.bookinfo.svc:9081/details/0",
        "http://reviews.bookinfo.svc:9080/reviews/0",
    ]


def test_images_cover_the_bookinfo_deployments():
    for name in [
        "examples-bookinfo-productpage-v1",
        "examples-bookinfo-details-v1",
        "examples-bookinfo-reviews-v1",
        "examples-bookinfo-reviews-v2",
        "examples-bookinfo-reviews-v3",
        "examples-bookinfo-ratings-v1",
    ]:
        assert name in IMAGES
    assert IMAGES["examples-bookinfo-reviews-v2"] == (
        reviews,
        {"service_version": "v2", "enable_ratings": "true", "star_color": "black"},
    )
    assert IMAGES["examples-bookinfo-details-v1"][0] is details
    assert IMAGES["examples-bookinfo-ratings-v1"][0] is ratings


def test_the_two_ratings_texts_are_two_messages_of_two_services():
    """reviews v2/v3 put REVIEW_RATING_ERROR in a review's rating when ratings fails, and
    productpage shows it in place of that review's stars (the page check looks for the same
    text); productpage's own RATINGS_UNAVAILABLE_FOR_BOOK is only the error body of its
    /api/v1/products/<id>/ratings route (docs/facts.md#productpage,
    docs/facts.md#bookinfo-reviews)."""
    from bookinfo_labs.checks import page as page_check
    from bookinfo_labs.local.apps import bookinfo

    assert bookinfo.REVIEW_RATING_ERROR == page_check.REVIEW_RATING_ERROR == (
        "Ratings service is currently unavailable")
    assert bookinfo.RATINGS_UNAVAILABLE_FOR_BOOK == (
        "Sorry, product ratings are currently unavailable for this book.")
    outbound = backends(**{"http://ratings:9080/": ok("", 503)})
    status, _, body, _ = page(outbound, "/api/v1/products/0/ratings")
    assert (status, body) == (503, '{"error": "%s"}' % bookinfo.RATINGS_UNAVAILABLE_FOR_BOOK)
