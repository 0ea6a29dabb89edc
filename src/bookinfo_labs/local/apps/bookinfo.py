"""Local implementations of the Bookinfo apps: productpage, details, reviews, ratings.

Each factory builds the aiohttp app the emulated pod runs (contract in ``base.py``). They
reproduce what the real apps do on the wire (docs/facts.md#bookinfo-apps):
routes, status codes, byte-exact bodies, the headers they propagate, and the timeouts they
pass to their HTTP clients. Timeouts are enforced by the sidecar (``ctx.outbound``), never
by timers here; the apps only react to ``asyncio.TimeoutError``/``ConnectionError``.

Build options (``ctx.options``, from ``IMAGES``) stand for the settings baked into each
image; a container env var of the same name (upper case) overrides them, as on Kubernetes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from aiohttp import web
from itsdangerous import BadSignature, URLSafeTimedSerializer

from . import productpage_html as html
from .base import AppContext, AppFactory, UpstreamResponse

Headers = list[tuple[str, str]]

# Exceptions an HTTP client library surfaces for "no usable response" (the contract's
# TimeoutError/ConnectionError; OSError covers socket-level failures too).
_CALL_ERRORS = (asyncio.TimeoutError, ConnectionError, OSError)


def _setting(ctx: AppContext, name: str, default: str | None = None) -> str | None:
    """An image setting: container env first, then the image's build option, then default."""
    if name in ctx.env:
        return ctx.env[name]
    return ctx.options.get(name.lower(), default)


def _clf_time(fmt: str) -> str:
    return datetime.now(timezone.utc).strftime(fmt)


def _response_size(resp: web.StreamResponse) -> int:
    body = getattr(resp, "body", None)
    return len(body) if isinstance(body, (bytes, bytearray)) else 0


LogLine = Callable[[web.Request, web.StreamResponse], str]


def _access_log(
    ctx: AppContext,
    line: LogLine,
    *,
    not_found: Callable[[web.Request], web.StreamResponse],
    method_not_allowed: Callable[[web.Request], web.StreamResponse] | None = None,
    server_error: Callable[[web.Request], web.StreamResponse] | None = None,
):
    """Middleware: serve the app's own stock error pages and log one line per request."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        try:
            resp = await handler(request)
        except web.HTTPNotFound:
            resp = not_found(request)
        except web.HTTPMethodNotAllowed:
            resp = (method_not_allowed or not_found)(request)
        except web.HTTPException as exc:  # any other aiohttp-level answer: log it too
            ctx.log(line(request, exc))  # type: ignore[arg-type]
            raise
        except Exception:  # an uncaught app error is the framework's 500 page
            if server_error is None:
                raise
            resp = server_error(request)
        ctx.log(line(request, resp))
        return resp

    return middleware


def _common_log(time_fmt: str) -> LogLine:
    """NCSA common log format (WEBrick, Liberty)."""

    def line(request: web.Request, resp: web.StreamResponse) -> str:
        v = request.version
        return (
            f'{request.remote or "-"} - - [{_clf_time(time_fmt)}] '
            f'"{request.method} {request.path_qs} HTTP/{v.major}.{v.minor}" '
            f"{resp.status} {_response_size(resp) or '-'}"
        )

    return line


def _json_response(body: bytes | str, status: int = 200, content_type="application/json"):
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, status=status, headers={"Content-Type": content_type})


def _service_base(ctx: AppContext, service: str) -> str:
    """``http://<host><.domain>:<port>`` from the apps' env overrides (productpage, reviews)."""
    upper = service.upper()
    host = ctx.env.get(f"{upper}_HOSTNAME", service)
    port = ctx.env.get(f"{upper}_SERVICE_PORT", "9080")
    domain = ctx.env.get("SERVICES_DOMAIN")
    suffix = "" if domain is None else f".{domain}"
    return f"http://{host}{suffix}:{port}"


# ---------------------------------------------------------------------------------------
# productpage (Python/Flask under gunicorn)
# ---------------------------------------------------------------------------------------

PRODUCTS = [
    {
        "id": 0,
        "title": "The Comedy of Errors",
        "descriptionHtml": (
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
            "shortest and one of his most farcical comedies, with a major part of the humour "
            "coming from slapstick and mistaken identity, in addition to puns and word play."
        ),
    }
]

# productpage's error for a failed call to details, reviews or ratings: the body of its
# /api/v1/products/... route, and on the page under "Error fetching product details" /
# "... reviews" (ratings: the API route only; on the page a failed rating is the reviews
# service's REVIEW_RATING_ERROR, in place of each review's stars).
DETAILS_UNAVAILABLE_FOR_BOOK = "Sorry, product details are currently unavailable for this book."
REVIEWS_UNAVAILABLE_FOR_BOOK = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE_FOR_BOOK = "Sorry, product ratings are currently unavailable for this book."
PRODUCTPAGE_TIMEOUT_S = 3.0  # requests.get(..., timeout=3.0) on every backend call

# Flask's session: the app's secret key, and SecureCookieSessionInterface's settings.
FLASK_SECRET_KEY = b'_5#y2L"F4Q8z\n\xec]/'
_SESSION_MAX_AGE_S = 31 * 24 * 3600  # Flask's default permanent_session_lifetime

# Copied verbatim when present (productpage's getForwardHeaders list, without the B3 ones,
# which go through the OpenTelemetry B3 propagator).
PRODUCTPAGE_PROPAGATED = (
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "sw8",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
)

# Placeholders for the static assets the real image serves, so /static/... routes exist.
_PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5f7d6f40000000049454e44ae426082"
)
_STATIC = {
    "/static/tailwind/tailwind.css": (b"/* tailwind (local emulator placeholder) */\n", "text/css"),
    "/static/img/izzy.png": (_PNG_1X1, "image/png"),
    "/static/bootstrap/css/bootstrap.min.css": (b"/* bootstrap placeholder */\n", "text/css"),
    "/static/bootstrap/css/bootstrap-theme.min.css": (b"/* placeholder */\n", "text/css"),
    "/static/bootstrap/js/bootstrap.min.js": (b"/* placeholder */\n", "text/javascript"),
    "/static/jquery.min.js": (b"/* placeholder */\n", "text/javascript"),
}


class _CompactJSON:
    """Flask's session serializer for plain JSON values: compact, sorted, ASCII."""

    @staticmethod
    def dumps(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"), sort_keys=True)

    @staticmethod
    def loads(data: str | bytes) -> Any:
        return json.loads(data)


def session_serializer(secret_key: bytes = FLASK_SECRET_KEY) -> URLSafeTimedSerializer:
    """A serializer whose cookies Flask's session interface accepts and vice versa."""
    return URLSafeTimedSerializer(
        secret_key,
        salt="cookie-session",
        serializer=_CompactJSON,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )


_B3_TRACE = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")
_B3_SPAN = re.compile(r"[0-9a-fA-F]{16}")


def b3_forward(headers: Mapping[str, str]) -> Headers:
    """What OpenTelemetry's B3MultiFormat re-injects after extracting the incoming context.

    Only traceid (as 32 hex digits), the same spanid and sampled ("1"/"0") go out;
    parentspanid and flags are dropped; nothing goes out without a valid context.
    """
    trace = headers.get("x-b3-traceid")
    span = headers.get("x-b3-spanid")
    sampled = headers.get("x-b3-sampled")
    flags = headers.get("x-b3-flags")
    single = headers.get("b3")
    if single:  # the single-header form wins when present
        parts = single.split("-")
        if len(parts) < 2:
            return []
        trace, span = parts[0], parts[1]
        sampled = parts[2] if len(parts) > 2 else None
        flags = None
    if not trace or not span:
        return []
    if not (_B3_TRACE.fullmatch(trace) and _B3_SPAN.fullmatch(span)):
        return []
    trace_id, span_id = int(trace, 16), int(span, 16)
    if trace_id == 0 or span_id == 0:
        return []
    is_sampled = sampled in ("1", "true", "d") or flags == "1"
    return [
        ("x-b3-traceid", f"{trace_id:032x}"),
        ("x-b3-spanid", f"{span_id:016x}"),
        ("x-b3-sampled", "1" if is_sampled else "0"),
    ]


def _gunicorn_line(request: web.Request, resp: web.StreamResponse) -> str:
    v = request.version
    return (
        f'{request.remote or "-"} - - [{_clf_time("%d/%b/%Y:%H:%M:%S +0000")}] '
        f'"{request.method} {request.path_qs} HTTP/{v.major}.{v.minor}" '
        f"{resp.status} {_response_size(resp) or '-'} "
        f'"{request.headers.get("Referer", "-")}" "{request.headers.get("User-Agent", "-")}"'
    )


def _html_response(text: str, status: int = 200, **headers: str) -> web.Response:
    resp = web.Response(
        body=text.encode(), status=status, headers={"Content-Type": "text/html; charset=utf-8"}
    )
    for name, value in headers.items():
        resp.headers[name.replace("_", "-")] = value
    return resp


class _ProductPage:
    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.details_url = _service_base(ctx, "details")
        self.reviews_url = _service_base(ctx, "reviews")
        self.ratings_url = _service_base(ctx, "ratings")
        self.flood_factor = int(_setting(ctx, "FLOOD_FACTOR", "0") or "0")
        self.serializer = session_serializer()
        self.results: Counter[tuple[str, int]] = Counter()  # /metrics request_result

    # -- session and headers -------------------------------------------------------------

    def session(self, request: web.Request) -> dict[str, Any]:
        cookie = request.cookies.get("session")
        if not cookie:
            return {}
        try:
            data = self.serializer.loads(cookie, max_age=_SESSION_MAX_AGE_S)
        except (BadSignature, ValueError):
            return {}  # Flask silently starts a fresh session
        return data if isinstance(data, dict) else {}

    def forward_headers(self, request: web.Request, session: Mapping[str, Any]) -> Headers:
        out = b3_forward(request.headers)
        # end-user comes only from the session; requests drops a None value.
        if "user" in session and session["user"] is not None:
            out.append(("end-user", str(session["user"])))
        for name in PRODUCTPAGE_PROPAGATED:
            value = request.headers.get(name)
            if value is not None:
                out.append((name, value))
        return out

    def session_cookie(self, session: Mapping[str, Any]) -> str:
        return f"session={self.serializer.dumps(dict(session))}; HttpOnly; Path=/"

    # -- backend calls -------------------------------------------------------------------

    async def _get(self, app: str, url: str, headers: Headers) -> UpstreamResponse | None:
        try:
            res = await self.ctx.outbound.request(
                "GET", url, headers=headers, timeout_s=PRODUCTPAGE_TIMEOUT_S
            )
        except _CALL_ERRORS:
            return None
        self.results[(app, res.status)] += 1
        return res

    @staticmethod
    def _outcome(res: UpstreamResponse | None, error: str) -> tuple[int, Any]:
        if res is not None and res.status == 200:
            # Outside the app's try: a 200 that is not JSON becomes Flask's 500 page.
            return 200, json.loads(res.body)
        status = res.status if res is not None and res.status else 500
        return status, {"error": error}

    async def details(self, product_id: Any, headers: Headers) -> tuple[int, Any]:
        res = await self._get("details", f"{self.details_url}/details/{product_id}", headers)
        return self._outcome(res, DETAILS_UNAVAILABLE_FOR_BOOK)

    async def reviews(self, product_id: Any, headers: Headers) -> tuple[int, Any]:
        # "Bug introduced explicitly for illustration in fault injection task": 2 attempts.
        res = None
        for _ in range(2):
            res = await self._get("reviews", f"{self.reviews_url}/reviews/{product_id}", headers)
            if res is not None and res.status == 200:
                break
        return self._outcome(res, REVIEWS_UNAVAILABLE_FOR_BOOK)

    async def ratings(self, product_id: Any, headers: Headers) -> tuple[int, Any]:
        res = await self._get("ratings", f"{self.ratings_url}/ratings/{product_id}", headers)
        return self._outcome(res, RATINGS_UNAVAILABLE_FOR_BOOK)

    # -- routes --------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        details = {"name": self.details_url, "endpoint": "details", "children": []}
        ratings = {"name": self.ratings_url, "endpoint": "ratings", "children": []}
        reviews = {"name": self.reviews_url, "endpoint": "reviews", "children": [ratings]}
        # The real tree names details' URL for productpage itself; kept as is.
        tree = {"name": self.details_url, "endpoint": "details", "children": [details, reviews]}
        return _html_response(html.index_page(tree))

    async def health(self, request: web.Request) -> web.Response:
        return _html_response("Product page is healthy")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        # request.values: query args first, then the form.
        user = request.query.get("username", form.get("username"))
        session = self.session(request)
        session["user"] = user if user is None else str(user)
        location = request.headers.get("Referer", "None")  # redirect(None) says "None"
        resp = _html_response(html.redirect_page(location), 302, Location=location, Vary="Cookie")
        resp.headers.add("Set-Cookie", self.session_cookie(session))
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        session = self.session(request)
        session.pop("user", None)
        location = request.headers.get("Referer", "None")
        resp = _html_response(html.redirect_page(location), 302, Location=location, Vary="Cookie")
        if session:
            resp.headers.add("Set-Cookie", self.session_cookie(session))
        else:  # an emptied session deletes the cookie
            resp.headers.add(
                "Set-Cookie",
                "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/",
            )
        return resp

    async def product_page(self, request: web.Request) -> web.Response:
        product_id = 0  # hard-coded in the real app; ?u= is ignored
        session = self.session(request)
        headers = self.forward_headers(request, session)
        user = session.get("user", "")
        details_status, details = await self.details(product_id, headers)
        # The real flood helper calls the blocking reviews loop from coroutines that never
        # yield, so the extra calls run one after another, before the real one.
        for _ in range(self.flood_factor):
            await self.reviews(product_id, headers)
        reviews_status, reviews = await self.reviews(product_id, headers)
        page = html.product_page(
            self.ctx.istio.productpage_ui,
            star_svg_id=self.ctx.istio.star_svg_id,
            user=user,
            product=PRODUCTS[product_id],
            details_status=details_status,
            details=details,
            reviews_status=reviews_status,
            reviews=reviews,
        )
        return _html_response(page, Vary="Cookie")

    async def products(self, request: web.Request) -> web.Response:
        return _json_response(json.dumps(PRODUCTS))

    async def _api(self, request: web.Request, call) -> web.Response:
        session = self.session(request)
        headers = self.forward_headers(request, session)
        status, body = await call(request.match_info["product_id"], headers)
        return _json_response(json.dumps(body), status)

    async def product(self, request: web.Request) -> web.Response:
        return await self._api(request, self.details)

    async def product_reviews(self, request: web.Request) -> web.Response:
        return await self._api(request, self.reviews)

    async def product_ratings(self, request: web.Request) -> web.Response:
        return await self._api(request, self.ratings)

    async def metrics(self, request: web.Request) -> web.Response:
        lines = [
            "# HELP request_result_total Results of requests",
            "# TYPE request_result_total counter",
        ]
        for (app, code), n in sorted(self.results.items()):
            lines.append(
                f'request_result_total{{destination_app="{app}",response_code="{code}"}} {float(n)}'
            )
        return web.Response(
            text="\n".join(lines) + "\n",
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def static(self, request: web.Request) -> web.Response:
        asset = _STATIC.get(request.path)
        if asset is None:
            raise web.HTTPNotFound()
        body, content_type = asset
        return web.Response(body=body, headers={"Content-Type": content_type})


def _flask_route(app: web.Application, path: str, methods: Mapping[str, Callable]) -> None:
    """Register a Flask-style route: HEAD follows GET, OPTIONS answers Allow, else 405."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set()) | {"OPTIONS"}
    allow = ", ".join(sorted(allowed))

    async def dispatch(request: web.Request) -> web.StreamResponse:
        method = "GET" if request.method == "HEAD" else request.method
        if method in methods:
            return await methods[method](request)
        if request.method == "OPTIONS":
            return _html_response("", 200, Allow=allow)
        return _html_response(html.METHOD_NOT_ALLOWED, 405, Allow=allow)

    app.router.add_route("*", path, dispatch)


def productpage(ctx: AppContext) -> web.Application:
    """The Flask productpage: UI, login session, and the API proxying details/reviews/ratings."""
    pp = _ProductPage(ctx)
    app = web.Application(
        middlewares=[
            _access_log(
                ctx,
                _gunicorn_line,
                not_found=lambda r: _html_response(html.NOT_FOUND, 404),
                method_not_allowed=lambda r: _html_response(html.METHOD_NOT_ALLOWED, 405),
                server_error=lambda r: _html_response(html.INTERNAL_SERVER_ERROR, 500),
            )
        ]
    )
    _flask_route(app, "/", {"GET": pp.index})
    _flask_route(app, "/index.html", {"GET": pp.index})
    _flask_route(app, "/health", {"GET": pp.health})
    _flask_route(app, "/login", {"POST": pp.login})
    _flask_route(app, "/logout", {"GET": pp.logout})
    _flask_route(app, "/productpage", {"GET": pp.product_page})
    _flask_route(app, "/metrics", {"GET": pp.metrics})
    _flask_route(app, "/api/v1/products", {"GET": pp.products})
    _flask_route(app, "/api/v1/products/{product_id}", {"GET": pp.product})
    _flask_route(app, "/api/v1/products/{product_id}/reviews", {"GET": pp.product_reviews})
    _flask_route(app, "/api/v1/products/{product_id}/ratings", {"GET": pp.product_ratings})
    _flask_route(app, "/static/{asset:.+}", {"GET": pp.static})
    return app


# ---------------------------------------------------------------------------------------
# details (Ruby WEBrick)
# ---------------------------------------------------------------------------------------

# details-v2 forwards productpage's list plus the B3 headers and end-user.
DETAILS_PROPAGATED = PRODUCTPAGE_PROPAGATED + (
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "end-user",
)
EXTERNAL_BOOK_ISBN = "0486424618"
EXTERNAL_BOOK_TIMEOUT_S = 5.0  # Net::HTTP read_timeout

_RUBY_INTEGER = re.compile(
    r"\s*([+-]?)(0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[bB][01]+(?:_[01]+)*"
    r"|0[oO]?[0-7]+(?:_[0-7]+)*|0[dD]\d+(?:_\d+)*|\d+(?:_\d+)*)\s*"
)


def ruby_integer(text: str) -> int | None:
    """Ruby's ``Integer(str)`` (prefixes 0x/0b/0o/0, underscores), or None where it raises."""
    m = _RUBY_INTEGER.fullmatch(text)
    if not m:
        return None
    sign, digits = m.group(1), m.group(2).replace("_", "").lower()
    if digits.startswith("0x"):
        value = int(digits[2:], 16)
    elif digits.startswith("0b"):
        value = int(digits[2:], 2)
    elif digits.startswith("0d"):
        value = int(digits[2:], 10)
    elif digits.startswith("0o"):
        value = int(digits[2:], 8)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    return -value if sign == "-" else value


def _ruby_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _mounted(path: str, mount: str) -> bool:
    """WEBrick mount matching: the mount point, or anything below it."""
    return path == mount or path.startswith(mount + "/")


def details(ctx: AppContext) -> web.Application:
    """The WEBrick details service (v1 static book; v2 asks the Google Books API)."""
    external = _setting(ctx, "ENABLE_EXTERNAL_BOOK_SERVICE") == "true"
    plain_http = _setting(ctx, "DO_NOT_ENCRYPT") == "true"

    async def book_details(book_id: int, headers: Headers) -> dict[str, Any]:
        if not external:
            return {
                "id": book_id,
                "author": "William Shakespeare",
                "year": 1595,
                "type": "paperback",
                "pages": 200,
                "publisher": "PublisherA",
                "language": "English",
                "ISBN-10": "1234567890",
                "ISBN-13": "123-1234567890",
            }
        scheme = "http" if plain_http else "https"
        url = f"{scheme}://www.googleapis.com/books/v1/volumes?q=isbn:{EXTERNAL_BOOK_ISBN}"
        try:
            res = await ctx.outbound.request(
                "GET", url, headers=headers, timeout_s=EXTERNAL_BOOK_TIMEOUT_S
            )
        except asyncio.TimeoutError:
            raise RuntimeError("Net::ReadTimeout") from None
        except _CALL_ERRORS as e:
            port = 80 if plain_http else 443
            raise RuntimeError(
                f"Failed to open TCP connection to www.googleapis.com:{port} ({e})"
            ) from None
        try:
            book = json.loads(res.body)["items"][0]["volumeInfo"]

            def isbn(kind: str) -> Any:
                ids = [i for i in book["industryIdentifiers"] if i.get("type") == kind]
                return ids[0]["identifier"]

            return {
                "id": book_id,
                "author": book["authors"][0],
                "year": book["publishedDate"],
                "type": "paperback" if book.get("printType") == "BOOK" else "unknown",
                "pages": book.get("pageCount"),
                "publisher": book.get("publisher"),
                "language": "English" if book.get("language") == "en" else "unknown",
                "ISBN-10": isbn("ISBN_10"),
                "ISBN-13": isbn("ISBN_13"),
            }
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise RuntimeError(f"{type(e).__name__}: {e}") from None

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if _mounted(path, "/health"):
            return _json_response(_ruby_json({"status": "Details is healthy"}))
        if not _mounted(path, "/details"):
            raise web.HTTPNotFound()
        parts = [p for p in path.split("/") if p != ""] or [""]
        headers = [(n, request.headers[n]) for n in DETAILS_PROPAGATED if n in request.headers]
        book_id = ruby_integer(parts[-1])
        try:
            if book_id is None:
                raise RuntimeError("please provide numeric product id")
            return _json_response(_ruby_json(await book_details(book_id, headers)))
        except RuntimeError as error:
            return _json_response(_ruby_json({"error": str(error)}), 400)

    def not_found(request: web.Request) -> web.Response:
        host = request.headers.get("Host", "details:9080")
        return web.Response(
            body=html.webrick_not_found(request.path, host).encode("latin-1", "replace"),
            status=404,
            headers={"Content-Type": "text/html; charset=ISO-8859-1"},
        )

    app = web.Application(
        middlewares=[_access_log(ctx, _common_log("%d/%b/%Y:%H:%M:%S UTC"), not_found=not_found)]
    )
    app.router.add_route("*", "/{path:.*}", handle)
    return app


# ---------------------------------------------------------------------------------------
# reviews (Java, Open Liberty)
# ---------------------------------------------------------------------------------------

REVIEWS_PROPAGATED = (
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
)
#: the rating reviews v2/v3 give a review when ratings fails (the same text as
#: checks.page.REVIEW_RATING_ERROR, which finds it on the page)
REVIEW_RATING_ERROR = "Ratings service is currently unavailable"
_REVIEW_TEXTS = (
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
        "plays by Shakespeare.",
    ),
)
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def reviews_json(
    product_id: int,
    podname: str,
    clustername: str,
    ratings_enabled: bool,
    star_color: str,
    stars: Sequence[int],
) -> str:
    """The reviews body, concatenated like the Java app does (spacing is byte-exact).

    ``stars`` holds one value per reviewer; -1 means "no rating" (the error rating).
    """
    items = []
    for (reviewer, text), n in zip(_REVIEW_TEXTS, stars):
        item = f'{{  "reviewer": "{reviewer}",  "text": "{text}"'
        if ratings_enabled:
            if n != -1:
                item += f', "rating": {{"stars": {n}, "color": "{star_color}"}}'
            else:
                item += f', "rating": {{"error": "{REVIEW_RATING_ERROR}"}}'
        items.append(item + "}")
    return (
        f'{{"id": "{product_id}","podname": "{podname}","clustername": "{clustername}",'
        f'"reviews": [{",".join(items)}]}}'
    )


def reviews(ctx: AppContext) -> web.Application:
    """The Liberty reviews service; v2/v3 ask ratings, v1 never does."""
    ratings_enabled = (_setting(ctx, "ENABLE_RATINGS") or "").lower() == "true"  # Boolean.valueOf
    star_color = _setting(ctx, "STAR_COLOR") or "black"
    # Connect and receive timeout of the JAX-RS client.
    timeout_s = 10.0 if star_color == "black" else 2.5
    domain = ctx.env.get("SERVICES_DOMAIN")
    ratings_service = "http://{}{}:{}/ratings".format(
        ctx.env.get("RATINGS_HOSTNAME", "ratings"),
        "" if domain is None else f".{domain}",
        ctx.env.get("RATINGS_SERVICE_PORT", "9080"),
    )
    clustername = ctx.env.get("CLUSTER_NAME", "null")  # Java prints a null String as "null"

    async def get_ratings(product_id: int, request: web.Request) -> dict | None:
        url = f"{ratings_service}/{product_id}"
        headers: Headers = [("accept", "application/json")]
        headers += [(n, request.headers[n]) for n in REVIEWS_PROPAGATED if n in request.headers]
        try:
            res = await ctx.outbound.request("GET", url, headers=headers, timeout_s=timeout_s)
        except asyncio.TimeoutError:
            ctx.log(
                f"Error: unable to contact {ratings_service} got exception "
                "javax.ws.rs.ProcessingException: java.net.SocketTimeoutException: "
                f"SocketTimeoutException invoking {url}: Read timed out"
            )
            return None
        except _CALL_ERRORS as e:
            ctx.log(
                f"Error: unable to contact {ratings_service} got exception "
                "javax.ws.rs.ProcessingException: java.net.ConnectException: "
                f"ConnectException invoking {url}: {e or 'Connection refused'}"
            )
            return None
        if res.status != 200:
            ctx.log(f"Error: unable to contact {ratings_service} got status of {res.status}")
            return None
        data = json.loads(res.body)  # a malformed 200 body fails the request (500)
        return data if isinstance(data, dict) else None

    async def health(request: web.Request) -> web.Response:
        return _json_response('{"status": "Reviews is healthy"}')

    async def book_reviews(request: web.Request) -> web.Response:
        raw = request.match_info["product_id"]
        # @PathParam int: anything that is not a Java int is "no such resource".
        if not _JAVA_INT.fullmatch(raw) or not -(2**31) <= int(raw) < 2**31:
            raise web.HTTPNotFound()
        product_id = int(raw)
        stars = [-1, -1]
        if ratings_enabled:
            data = await get_ratings(product_id, request)
            ratings = data.get("ratings") if data else None
            if isinstance(ratings, dict):
                for i, (reviewer, _) in enumerate(_REVIEW_TEXTS):
                    if reviewer in ratings:
                        stars[i] = int(ratings[reviewer])
        body = reviews_json(
            product_id, ctx.pod_name, clustername, ratings_enabled, star_color, stars
        )
        return _json_response(body)

    app = web.Application(
        middlewares=[
            _access_log(
                ctx,
                _common_log("%d/%b/%Y:%H:%M:%S +0000"),
                not_found=lambda r: web.Response(status=404),
                server_error=lambda r: web.Response(status=500),
            )
        ]
    )
    app.router.add_get("/health", health)
    app.router.add_get("/reviews/{product_id}", book_reviews)
    return app


# ---------------------------------------------------------------------------------------
# ratings (Node.js, httpdispatcher)
# ---------------------------------------------------------------------------------------

RATINGS_TOGGLE_S = {"v-unavailable": 60.0, "v-unhealthy": 900.0}
RATINGS_DELAY_S = 7.0  # v-delayed
_JS_INT = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|\d+)")


@dataclass
class RatingsFaults:
    """Where ratings' fault modes get their coin flips and time from."""

    random: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic
    started: float = field(default_factory=time.monotonic)


RATINGS_FAULTS = web.AppKey("ratings_faults", RatingsFaults)


def js_parse_int(text: str) -> int | None:
    """JavaScript ``parseInt(text)``; None stands for NaN."""
    m = _JS_INT.match(text)
    if not m:
        return None
    digits = m.group(2)
    value = int(digits, 16) if digits[:2].lower() == "0x" else int(digits)
    return -value if m.group(1) == "-" else value


def _node_json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ratings(ctx: AppContext) -> web.Application:
    """The Node ratings service, with the v-faulty/v-delayed/v-unavailable/v-unhealthy modes.

    ``app[RATINGS_FAULTS]`` holds the randomness and clock of the fault modes (replaceable).
    """
    version = _setting(ctx, "SERVICE_VERSION", "v1") or "v1"
    db_type = _setting(ctx, "DB_TYPE")
    user_ratings: dict[int, dict[str, Any]] = {}
    app: web.Application

    def unavailable() -> bool:
        period = RATINGS_TOGGLE_S.get(version)
        if period is None:
            return False
        faults = app[RATINGS_FAULTS]
        elapsed = faults.clock() - faults.started
        return int(elapsed // period) % 2 == 1  # starts available, flips every period

    def reply(obj: Any, status: int = 200) -> web.Response:
        return _json_response(_node_json(obj), status, content_type="application/json")

    def local_reviews(product_id: int) -> dict[str, Any]:
        return user_ratings.get(
            product_id, {"id": product_id, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
        )

    async def get_ratings(request: web.Request, product_id: int) -> web.Response:
        if version == "v2":
            # The database-backed version; no database is emulated, so it cannot connect.
            if db_type == "mysql":
                return reply({"error": "could not connect to ratings database"}, 200)
            return reply({"error": "could not connect to ratings database"}, 500)
        if version == "v-faulty" and app[RATINGS_FAULTS].random() <= 0.5:
            return reply({"error": "Service unavailable"}, 503)
        if version in RATINGS_TOGGLE_S and unavailable():
            return reply({"error": "Service unavailable"}, 503)
        if version == "v-delayed" and app[RATINGS_FAULTS].random() <= 0.5:
            await asyncio.sleep(RATINGS_DELAY_S)  # the app's own setTimeout(7000)
        return reply(local_reviews(product_id))

    async def post_ratings(request: web.Request, product_id: int) -> web.Response:
        try:
            posted = json.loads(await request.text())
        except ValueError:
            return reply({"error": "please provide valid ratings JSON"}, 400)
        if version == "v2":
            return reply({"error": "Post not implemented for database backed ratings"}, 501)
        user_ratings[product_id] = {"id": product_id, "ratings": posted}
        return reply(local_reviews(product_id))

    async def dispatch(request: web.Request) -> web.Response:
        path = request.path
        if request.method == "GET" and path == "/health":
            if version == "v-unhealthy" and unavailable():
                return reply({"status": "Ratings is not healthy"}, 500)
            return reply({"status": "Ratings is healthy"})
        if request.method in ("GET", "POST") and re.match(r"/ratings/[0-9]*", path):
            # The id is parseInt of the last segment of the raw URL (query included).
            product_id = js_parse_int(request.raw_path.split("/")[-1])
            if product_id is None:
                return reply({"error": "please provide numeric product ID"}, 400)
            if request.method == "POST":
                return await post_ratings(request, product_id)
            return await get_ratings(request, product_id)
        return web.Response(status=404)  # httpdispatcher's default: empty 404

    def node_line(request: web.Request, resp: web.StreamResponse) -> str:
        return f"{request.method} {request.raw_path} {resp.status}"

    app = web.Application(
        middlewares=[_access_log(ctx, node_line, not_found=lambda r: web.Response(status=404))]
    )
    app[RATINGS_FAULTS] = RatingsFaults()
    app.router.add_route("*", "/{path:.*}", dispatch)
    return app


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------

IMAGES: dict[str, tuple[AppFactory, dict[str, str]]] = {
    "examples-bookinfo-productpage-v1": (productpage, {}),
    "examples-bookinfo-productpage-v-flooding": (productpage, {"flood_factor": "100"}),
    "examples-bookinfo-details-v1": (details, {"service_version": "v1"}),
    "examples-bookinfo-details-v2": (
        details,
        {"service_version": "v2", "enable_external_book_service": "true"},
    ),
    "examples-bookinfo-reviews-v1": (
        reviews,
        {"service_version": "v1", "enable_ratings": "false"},
    ),
    "examples-bookinfo-reviews-v2": (
        reviews,
        {"service_version": "v2", "enable_ratings": "true", "star_color": "black"},
    ),
    "examples-bookinfo-reviews-v3": (
        reviews,
        {"service_version": "v3", "enable_ratings": "true", "star_color": "red"},
    ),
    "examples-bookinfo-ratings-v1": (ratings, {"service_version": "v1"}),
    "examples-bookinfo-ratings-v2": (ratings, {"service_version": "v2"}),
    "examples-bookinfo-ratings-v-faulty": (ratings, {"service_version": "v-faulty"}),
    "examples-bookinfo-ratings-v-delayed": (ratings, {"service_version": "v-delayed"}),
    "examples-bookinfo-ratings-v-unavailable": (ratings, {"service_version": "v-unavailable"}),
    "examples-bookinfo-ratings-v-unhealthy": (ratings, {"service_version": "v-unhealthy"}),
}

__all__ = [
    "IMAGES",
    "productpage",
    "details",
    "reviews",
    "ratings",
    "RATINGS_FAULTS",
    "RatingsFaults",
    "reviews_json",
    "b3_forward",
    "session_serializer",
]
