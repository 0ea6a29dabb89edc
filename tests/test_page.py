"""parse_product_page on pages rendered by the local productpage, both UI flavours.

The pages come from the real local apps wired together in-process (productpage -> details,
reviews -> ratings); a failing backend is a reply or exception injected at the outbound.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bookinfo_labs.checks.page import ProductPage, parse_product_page, version_from_pod_name
from bookinfo_labs.local.apps.base import AppContext, UpstreamResponse
from bookinfo_labs.local.apps.bookinfo import IMAGES, session_serializer
from bookinfo_labs.versions import get_version

TAILWIND = get_version("1.26")
TAILWIND_NO_SVG_ID = get_version("1.23")  # image 1.20.1: filled stars without the id
BOOTSTRAP = get_version("1.22")

PODS = {
    "v1": "reviews-v1-569db879f5-44qtz",
    "v2": "reviews-v2-65c4dc6fdc-xpb2d",
    "v3": "reviews-v3-7d8f9c6b5d-x2k4p",
}


class InProcessOutbound:
    """Reaches the other apps by host name; ``faults[host]`` replaces their answer."""

    def __init__(self, clients: dict[str, TestClient], faults: dict[str, Any]):
        self.clients = clients
        self.faults = faults

    async def request(self, method, url, *, headers=(), body=None, timeout_s=None):
        rest = url.split("://", 1)[1]
        host = rest.split("/", 1)[0].split(":")[0]
        if host in self.faults:
            fault = self.faults[host]
            if isinstance(fault, BaseException):
                raise fault
            return fault
        async with self.clients[host].request(
            method, "/" + rest.split("/", 1)[1], headers=list(headers), data=body
        ) as resp:
            return UpstreamResponse(resp.status, dict(resp.headers), await resp.read())


def render(
    version: str = "v1",
    *,
    istio=TAILWIND,
    user: str | None = None,
    faults: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """The /productpage HTML with reviews ``version`` behind it."""
    faults = dict(faults or {})

    async def main() -> str:
        clients: dict[str, TestClient] = {}
        outbound = InProcessOutbound(clients, faults)
        apps = {
            "details": ("examples-bookinfo-details-v1", "details-v1-6d8f9c6b5d-abcde"),
            "ratings": ("examples-bookinfo-ratings-v1", "ratings-v1-6d8f9c6b5d-abcde"),
            "reviews": (f"examples-bookinfo-reviews-{version}", PODS[version]),
            "productpage": ("examples-bookinfo-productpage-v1", "productpage-v1-6d8f9c6b5d-abcde"),
        }
        try:
            for host, (image, pod) in apps.items():
                factory, options = IMAGES[image]
                ctx = AppContext(
                    pod_name=pod,
                    labels={},
                    env=dict(env or {}),
                    outbound=outbound,
                    istio=istio,
                    log=lambda line: None,
                    options=options,
                )
                clients[host] = TestClient(TestServer(factory(ctx)))
                await clients[host].start_server()
            headers = {}
            if user is not None:
                headers["Cookie"] = f"session={session_serializer().dumps({'user': user})}"
            async with clients["productpage"].get("/productpage", headers=headers) as resp:
                assert resp.status == 200
                return await resp.text()
        finally:
            for client in clients.values():
                await client.close()

    return asyncio.run(main())


def parse(version: str = "v1", **kwargs) -> tuple[ProductPage, str]:
    html = render(version, **kwargs)
    return parse_product_page(html), html


FLAVOURS = pytest.mark.parametrize(
    "istio",
    [TAILWIND, TAILWIND_NO_SVG_ID, BOOTSTRAP],
    ids=["tailwind", "tailwind-1.20.1", "bootstrap"],
)


@FLAVOURS
def test_v1_has_no_stars(istio):
    page, _ = parse("v1", istio=istio)
    assert page.title == "Simple Bookstore App"
    assert [r.reviewer for r in page.reviews] == ["Reviewer1", "Reviewer2"]
    assert page.reviews[0].text.startswith("An extremely entertaining play")
    assert [r.stars for r in page.reviews] == [0, 0]
    assert page.total_stars == 0 and page.star_colors == set()
    assert page.served_by == PODS["v1"] and page.reviews_version == "v1"
    assert not (page.details_error or page.reviews_error)
    assert page.signed_in_user is None


@FLAVOURS
@pytest.mark.parametrize("version,color", [("v2", "black"), ("v3", "red")])
def test_rated_reviews_count_filled_stars_and_their_colour(istio, version, color):
    page, _ = parse(version, istio=istio)
    assert [(r.stars, r.color, r.rating_error) for r in page.reviews] == [
        (5, color, False),
        (4, color, False),
    ]
    assert page.total_stars == 9 and page.star_colors == {color}
    assert page.reviews_version == version


def test_tailwind_markup_matches_the_reference_counts():
    _, html = parse("v2", istio=TAILWIND)
    assert html.count("glyphicon glyphicon-star") == 9
    assert html.count("text-black-500") == 2
    _, html = parse("v2", istio=TAILWIND_NO_SVG_ID)
    assert html.count("glyphicon glyphicon-star") == 0


def test_bootstrap_empty_stars_are_not_filled():
    page, html = parse("v2", istio=BOOTSTRAP)
    assert html.count("glyphicon glyphicon-star") == 10  # the substring also hits star-empty
    assert html.count("glyphicon-star-empty") == 1
    assert page.total_stars == 9


@FLAVOURS
def test_rating_error_is_not_red_stars(istio):
    page, html = parse("v3", istio=istio, faults={"ratings": asyncio.TimeoutError()})
    if istio.productpage_ui == "tailwind":
        assert "text-red-500" in html  # the trap: the error text carries the red class
    assert [(r.stars, r.color, r.rating_error) for r in page.reviews] == [
        (0, None, True),
        (0, None, True),
    ]
    assert page.star_colors == set() and page.total_stars == 0
    assert not page.reviews_error


@FLAVOURS
def test_reviews_error(istio):
    page, _ = parse("v2", istio=istio, faults={"reviews": UpstreamResponse(503, {}, b"")})
    assert page.reviews_error and not page.details_error
    assert page.reviews == [] and page.served_by is None and page.reviews_version is None


@FLAVOURS
def test_details_error(istio):
    page, _ = parse("v1", istio=istio, faults={"details": UpstreamResponse(555, {}, b"")})
    assert page.details_error and not page.reviews_error
    assert page.reviews_version == "v1"


@FLAVOURS
def test_signed_in_user(istio):
    page, html = parse("v2", istio=istio, user="jason")
    assert page.signed_in_user == "jason"
    assert "sign out" in html.lower()
    assert page.total_stars == 9


def test_user_names_are_escaped_and_read_back():
    page, html = parse("v1", user="<b>j&son</b>")
    assert "<b>j&son</b>" not in html
    assert page.signed_in_user == "<b>j&son</b>"


def test_empty_user_name_is_not_signed_in():
    page, _ = parse("v1", user="")
    assert page.signed_in_user is None


@pytest.mark.parametrize("istio", [TAILWIND, BOOTSTRAP], ids=["tailwind", "bootstrap"])
def test_cluster_name_does_not_disturb_the_pod_marker(istio):
    page, html = parse("v3", istio=istio, env={"CLUSTER_NAME": "cluster1"})
    assert "on cluster" in html
    assert page.served_by == PODS["v3"] and page.reviews_version == "v3"


@pytest.mark.parametrize(
    "pod,version",
    [
        ("reviews-v2-7d8f9c6b5d-x2k4p", "v2"),
        ("reviews-v1-569db879f5-44qtz", "v1"),
        ("my-app-canary-6d8f9c6b5d-abcde", "canary"),
        ("reviews-v3", "v3"),
        ("something", None),
    ],
)
def test_version_from_pod_name(pod, version):
    assert version_from_pod_name(pod) == version


def test_parser_tolerates_fragments():
    page = parse_product_page("<p>no page here</p></div></section>")
    assert page.title == "" and page.reviews == [] and page.served_by is None


def test_error_strings_per_flavour():
    down = {"details": UpstreamResponse(503, {}, b""), "reviews": UpstreamResponse(503, {}, b"")}
    html = render("v1", istio=TAILWIND, faults=down)
    assert '<p class="text-2xl text-red-500">Error fetching product reviews</p>' in html
    assert '<p class="text-2xl text-red-500">Error fetching product details</p>' in html
    assert "Error fetching product reviews!" not in html
    html = render("v1", istio=BOOTSTRAP, faults=down)
    assert '<h4 class="text-center text-primary">Error fetching product reviews!</h4>' in html
    assert '<h4 class="text-center text-primary">Error fetching product details!</h4>' in html
    assert "<p>Sorry, product reviews are currently unavailable for this book.</p>" in html
