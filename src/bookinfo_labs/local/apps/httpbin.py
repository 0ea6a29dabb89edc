"""Local httpbin: both implementations Istio's samples ship (docs/facts.md#httpbin-flavours).

* ``go_httpbin``: ``mccutchen/go-httpbin:v2.15.0``, the sample since Istio 1.24 (port 8080).
* ``python_httpbin``: the Python/Flask httpbin (``kennethreitz/httpbin``, ``kong/httpbin``) of
  Istio <= 1.23 and of the istio.io mirroring task, run under gunicorn with
  ``--access-logfile -`` (Flask 1.0.2, werkzeug 0.14, gunicorn 19.9.0 as the image pins them).

Only the endpoints the labs use are implemented: ``/get``, ``/headers``, ``/ip``,
``/anything[/...]``, ``/status/<codes>``, ``/delay/<n>``; any other path gets the flavour's
own 404. Each flavour reproduces its own wire formats: JSON layout, header casing, values as
arrays (Go) or strings (Python), error bodies, CORS headers, and one access-log line per
request through ``ctx.log`` in the form the real server writes it (what
``kubectl logs deploy/httpbin-v1 -c httpbin`` shows; the mirroring lab greps it).

Test hooks (keyword-only, so ``make(ctx)`` still satisfies the factory contract):
``sleep`` replaces the awaitable the delay endpoint sleeps with (default ``asyncio.sleep``,
cancellable) and ``rng`` the ``random.Random`` behind weighted ``/status`` picks.
"""

from __future__ import annotations

import asyncio
import base64
import email.policy
import json
import random
import re
import time
from datetime import datetime, timezone
from decimal import Decimal
from email import message_from_bytes
from fractions import Fraction
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

from aiohttp import web

from .base import AppContext, AppFactory

Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------


def _peer(request: web.Request) -> tuple[str, int]:
    """The TCP peer (ip, port)."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return (str(peer[0]), int(peer[1])) if peer else (request.remote or "", 0)


def _weighted_pick(choices: list[tuple[int, float]], point: float) -> int | None:
    """The first choice whose cumulative weight exceeds ``point`` (both implementations)."""
    cumulative = 0.0
    for code, weight in choices:
        cumulative += weight
        if point < cumulative:
            return code
    return None


def _multipart(body: bytes, content_type: str) -> list[tuple[str, str | None, str, bytes]]:
    """(field name, filename, part content type, payload) of a multipart/form-data body."""
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    msg = message_from_bytes(head + body, policy=email.policy.HTTP)
    if not msg.is_multipart():
        raise ValueError("no multipart boundary")
    parts = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        parts.append((str(name), part.get_filename(), part.get_content_type(), payload))
    return parts


class _Response(web.Response):
    """A response that can drop headers aiohttp would otherwise always send."""

    drop_headers: tuple[str, ...] = ()


async def _strip_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs after aiohttp added its default ``Server`` and (for a
    non-empty body) ``Content-Type`` headers, before they are written."""
    for name in getattr(response, "drop_headers", ()):
        response.headers.popall(name, None)


# ---------------------------------------------------------------------------------------
# go-httpbin v2.15.0
# ---------------------------------------------------------------------------------------

GO_JSON = "application/json; charset=utf-8"
GO_TEXT = "text/plain; charset=utf-8"
GO_MAX_DURATION_NS = 10 * 10**9  # httpbin.DefaultMaxDuration; env MAX_DURATION overrides

# net/http StatusText where it differs from Python's phrases (Go has no text for 499).
_GO_STATUS_TEXT = {
    413: "Request Entity Too Large", 418: "I'm a teapot", 422: "Unprocessable Entity", 499: "",
}

_GO_REDIRECT = {"headers": {"Location": "/redirect/1"}}
_GO_SPECIAL_STATUS: dict[int, dict[str, Any]] = {
    300: {
        "body": (
            "<!doctype html>\n<head>\n<title>Multiple Choices</title>\n</head>\n<body>\n<ul>\n"
            '<li><a href="/image/jpeg">/image/jpeg</a></li>\n'
            '<li><a href="/image/png">/image/png</a></li>\n'
            '<li><a href="/image/svg">/image/svg</a></li>\n</body>\n</html>'
        ),
        "headers": {"Location": "/image/jpeg"},
    },
    301: _GO_REDIRECT,
    302: _GO_REDIRECT,
    303: _GO_REDIRECT,
    305: _GO_REDIRECT,
    307: _GO_REDIRECT,
    308: {
        "body": (
            "<!doctype html>\n<head>\n<title>Permanent Redirect</title>\n</head>\n"
            '<body>Permanently redirected to <a href="/image/jpeg">/image/jpeg</a>\n'
            "</body>\n</html>"
        ),
        "headers": {"Location": "/image/jpeg"},
    },
    401: {"headers": {"WWW-Authenticate": 'Basic realm="Fake Realm"'}},
    402: {"body": "Fuck you, pay me!", "headers": {"X-More-Info": "http://vimeo.com/22053820"}},
    406: {
        "body": (
            '{\n  "message": "Client did not request a supported media type",\n  "accept": [\n'
            '    "image/webp",\n    "image/svg+xml",\n    "image/jpeg",\n    "image/png",\n'
            '    "image/"\n  ]\n}\n'
        ),
        "headers": {"Content-Type": GO_JSON},
    },
    407: {"headers": {"Proxy-Authenticate": 'Basic realm="Fake Realm"'}},
    418: {"body": "I'm a teapot!",
          "headers": {"X-More-Info": "http://tools.ietf.org/html/rfc2324"}},
}

_GO_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _go_canonical_header(name: str) -> str:
    """textproto.CanonicalMIMEHeaderKey: ``x-request-id`` -> ``X-Request-Id``.

    A name with a byte that is not a token character is returned unchanged, as Go does.
    """
    if not _GO_TOKEN.match(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _go_json(value: Any) -> bytes:
    """encoding/json Encoder with SetIndent("", "  ") and SetEscapeHTML(false)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    # Go always escapes the two JavaScript line terminators, even without HTML escaping.
    return (text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n").encode()


def _go_response(status: int, body: bytes | str = b"", content_type: str | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    resp = _Response(status=status, body=data, headers=dict(headers or {}))
    if content_type is not None:
        resp.headers["Content-Type"] = content_type
    resp.drop_headers = ("Server",)  # net/http sends no Server header
    if "Content-Type" not in resp.headers:
        resp.drop_headers += ("Content-Type",)  # set by handlers or not sent (no sniffing here)
    return resp


def _go_status_text(status: int) -> str:
    """net/http StatusText."""
    if status in _GO_STATUS_TEXT:
        return _GO_STATUS_TEXT[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _go_error(status: int, detail: str = "") -> web.Response:
    """writeError: ``{"status_code": N, "error": "<StatusText>", "detail": "..."}``."""
    body: dict[str, Any] = {"status_code": status, "error": _go_status_text(status)}
    if detail:  # `json:"detail,omitempty"`
        body["detail"] = detail
    return _go_response(status, _go_json(body), GO_JSON)


def _go_quote(text: str) -> str:
    """strconv.Quote for the characters a request line can carry."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _slog_value(text: str) -> str:
    """slog TextHandler: quote empty values and any with a space, '=', '"' or a control char."""
    if text == "" or any(c in ' ="' or ord(c) < 0x20 or ord(c) == 0x7F
                         or (ord(c) > 0x7F and (c.isspace() or not c.isprintable()))
                         for c in text):
        return _go_quote(text)
    return text


def _go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as slog prints Float64 attributes."""
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    exp = len(digits) + int(exponent) - 1  # decimal exponent of the first digit
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:  # shortest formatting switches to %e at 6 digits
        frac = "." + mantissa[1:] if len(mantissa) > 1 else ""
        return f"{prefix}{mantissa[0]}{frac}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{prefix}0.{'0' * (-exp - 1)}{mantissa}"
    whole, frac = mantissa[: exp + 1].ljust(exp + 1, "0"), mantissa[exp + 1:]
    return f"{prefix}{whole}{'.' + frac if frac else ''}"


def _go_frac(value: int, precision: int) -> tuple[str, int]:
    """time.fmtFrac: the fraction digits of ``value`` (trailing zeros dropped) and the rest."""
    digits, printed = "", False
    for _ in range(precision):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits = str(digit) + digits
        value //= 10
    return ("." + digits if printed else ""), value


def _go_duration(ns: int) -> str:
    """time.Duration.String: ``11s``, ``1m30s``, ``10.5s``, ``500ms``, ``0s``."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 10**9:
        prec, unit = (0, "ns") if u < 10**3 else (3, "µs") if u < 10**6 else (6, "ms")
        frac, whole = _go_frac(u, prec)
        return f"{sign}{whole}{frac}{unit}"
    frac, secs = _go_frac(u, 9)
    text = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


_GO_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
             "m": 60 * 10**9, "h": 3600 * 10**9}
_GO_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)", re.ASCII)
_GO_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)


def _parse_go_duration(text: str) -> int | None:
    """time.ParseDuration in nanoseconds (``1.5s``, ``300ms``, ``1m30s``); None if invalid."""
    s, sign = text, 1
    if s[:1] in ("+", "-"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total, pos = Fraction(0), 0
    while pos < len(s):
        m = _GO_DURATION_PART.match(s, pos)
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac or unit not in _GO_UNITS:
            return None
        value = Fraction(int(whole or "0"))
        if frac:
            value += Fraction(int(frac), 10 ** len(frac))
        total += value * _GO_UNITS[unit]
        pos = m.end()
    return sign * int(total)  # Go truncates fractions of a nanosecond


def _parse_go_delay(text: str) -> tuple[int | None, str]:
    """go-httpbin parseDuration: a Go duration, else float seconds (to whole milliseconds).

    Returns (nanoseconds, "") or (None, the Go error text).
    """
    ns = _parse_go_duration(text)
    if ns is not None:
        return ns, ""
    if not _GO_FLOAT.match(text):
        return None, f'strconv.ParseFloat: parsing {_go_quote(text)}: invalid syntax'
    return int(float(text) * 1000) * 10**6, ""  # time.Duration(n*1000) * time.Millisecond


def _go_atoi(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None


def _go_float_or_none(text: str) -> float | None:
    return float(text) if _GO_FLOAT.match(text) else None


class _GoHttpbin:
    """go-httpbin's handlers and middleware (httpbin/{handlers,helpers,middleware}.go)."""

    def __init__(self, ctx: AppContext, sleep: Sleep | None, rng: random.Random | None):
        self.ctx = ctx
        self.sleep = sleep
        self.rng = rng or random.Random()
        max_duration = ctx.env.get("MAX_DURATION")  # cmd.go reads it with time.ParseDuration
        parsed = _parse_go_duration(max_duration) if max_duration else None
        self.max_duration_ns = parsed if parsed is not None else GO_MAX_DURATION_NS

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.observe])
        app.router.add_route("*", "/{path:.*}", self.route)
        app.on_response_prepare.append(_strip_headers)
        return app

    # -- request helpers ------------------------------------------------------------------
    @staticmethod
    def client_ip(request: web.Request) -> str:
        """getClientIP: first X-Forwarded-For entry, else r.RemoteAddr (``ip:port`` until v2.16)."""
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",", 1)[0].strip()
        host, port = _peer(request)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @staticmethod
    def request_headers(request: web.Request) -> dict[str, list[str]]:
        """getRequestHeaders: every header, canonical keys, values as arrays, Host included."""
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            key = _go_canonical_header(name)
            if key != "Host":  # net/http keeps Host out of r.Header; getRequestHeaders re-adds it
                headers.setdefault(key, []).append(value)
        headers["Host"] = [request.headers.get("Host", "")]
        return dict(sorted(headers.items()))

    @staticmethod
    def url(request: web.Request) -> str:
        h = request.headers
        scheme = (h.get("X-Forwarded-Proto") or h.get("X-Forwarded-Protocol")
                  or ("https" if h.get("X-Forwarded-Ssl") == "on" else "")
                  or request.scheme)
        return f"{scheme}://{h.get('Host', '')}{request.raw_path}"

    @staticmethod
    def args(request: web.Request) -> dict[str, list[str]]:
        args: dict[str, list[str]] = {}
        for key, value in request.query.items():
            args.setdefault(key, []).append(value)
        return dict(sorted(args.items()))

    def no_body_response(self, request: web.Request) -> dict[str, Any]:
        return {
            "args": self.args(request),
            "headers": self.request_headers(request),
            "method": request.method,
            "origin": self.client_ip(request),
            "url": self.url(request),
        }

    async def body_response(self, request: web.Request) -> dict[str, Any] | web.Response:
        """RequestWithBody: the no-body fields plus data/files/form/json from parseBody."""
        resp = {**self.no_body_response(request), "data": "", "files": {}, "form": {}, "json": None}
        body = await request.read()
        if not body:
            return resp
        resp["data"] = body.decode("utf-8", errors="replace")
        # strings.Cut(Content-Type, ";"): the media type exactly as sent
        content_type = request.headers.get("Content-Type", "").split(";", 1)[0]
        try:
            if content_type in ("text/html", "text/plain"):
                pass
            elif content_type == "application/x-www-form-urlencoded":
                resp["form"] = self._values(parse_qsl(resp["data"], keep_blank_values=True))
            elif content_type == "multipart/form-data":
                parts = _multipart(body, request.headers["Content-Type"])
                resp["form"] = self._values((n, p.decode("utf-8", "replace"))
                                            for n, f, _, p in parts if f is None)
                resp["files"] = self._values((n, p.decode("utf-8", "replace"))
                                             for n, f, _, p in parts if f is not None)
            elif content_type == "application/json":
                resp["json"] = json.loads(body)
            else:  # unknown types come back as a URL-safe base64 data URL
                encoded = base64.urlsafe_b64encode(body).decode()
                resp["data"] = f"data:{content_type or 'application/octet-stream'};base64,{encoded}"
        except ValueError as exc:
            return _go_error(400, f"error parsing request body: {exc}")
        return resp

    @staticmethod
    def _values(pairs) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        return dict(sorted(values.items()))

    # -- routing --------------------------------------------------------------------------
    async def route(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/get":
            if request.method not in ("GET", "HEAD"):
                return _go_error(405)
            return self.reply(self.no_body_response(request))
        if path == "/headers":
            return self.reply({"headers": self.request_headers(request)})
        if path == "/ip":
            return self.reply({"origin": self.client_ip(request)})
        if path == "/anything" or path.startswith("/anything/"):
            if request.method == "HEAD":
                return self.reply(self.no_body_response(request))
            return self.reply(await self.body_response(request))
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "status":
            return self.status(parts[2])
        if len(parts) == 3 and parts[1] == "delay":
            return await self.delay(request, parts[2])
        return _go_error(404)

    @staticmethod
    def reply(value: dict[str, Any] | web.Response, status: int = 200,
              headers: dict[str, str] | None = None) -> web.Response:
        """writeJSON, or an error response the body parser already rendered."""
        if isinstance(value, web.Response):
            return value
        return _go_response(status, _go_json(value), GO_JSON, headers)

    # -- endpoints ------------------------------------------------------------------------
    def status(self, raw: str) -> web.Response:
        """/status/<code> or /status/<code[:weight]>,... (weighted random pick)."""
        if "," not in raw:
            code = _go_atoi(raw)
            if code is None:
                return _go_error(400, f"invalid status code: {_go_quote(raw)}: strconv.Atoi: "
                                      f"parsing {_go_quote(raw)}: invalid syntax")
            if not 100 <= code <= 599:
                return _go_error(400, f"invalid status code: {code} not in range [100, 599]")
            return self.do_status(code)
        choices: list[tuple[int, float]] = []
        for pair in raw.split(","):
            raw_choice, found, raw_weight = pair.partition(":")
            weight = _go_float_or_none(raw_weight) if found else 1.0
            if weight is None:
                return _go_error(400, f"invalid weight value: {_go_quote(raw_weight)}")
            choice = _go_atoi(raw_choice)
            if choice is None or not 100 <= choice <= 999:  # WriteHeader panics outside 1xx-9xx
                return _go_error(400, f"invalid choice value: {_go_quote(raw_choice)}")
            choices.append((choice, weight))
        total = sum(weight for _, weight in choices)
        picked = _weighted_pick(choices, self.rng.random() * total)
        if picked is None:  # all weights zero: go-httpbin panics
            raise RuntimeError("failed to select a weighted random choice")
        return self.do_status(picked)

    @staticmethod
    def do_status(code: int) -> web.Response:
        special = _GO_SPECIAL_STATUS.get(code, {})
        headers = {"Content-Type": GO_TEXT, **special.get("headers", {})}
        return _go_response(code, special.get("body", b""), headers=headers)

    async def delay(self, request: web.Request, raw: str) -> web.Response:
        """Sleep (at most MaxDuration, else 400), then answer like /anything."""
        ns, error = _parse_go_delay(raw)
        if ns is not None and ns > self.max_duration_ns:
            error = f"duration {_go_duration(ns)} longer than {_go_duration(self.max_duration_ns)}"
        elif ns is not None and ns < 0:
            error = f"duration {_go_duration(ns)} shorter than 0s"
        if error:
            return _go_error(400, f"invalid duration: {error}")
        await (self.sleep or asyncio.sleep)(ns / 1e9)  # cancelled if the client goes away
        timing = f'initial_delay;dur={ns / 1e6:0.2f};desc="initial delay"'
        return self.reply(await self.body_response(request), headers={"Server-Timing": timing})

    # -- middleware -----------------------------------------------------------------------
    @web.middleware
    async def observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """preflight (CORS) + autohead + observe (one slog line per request)."""
        start = time.perf_counter()
        client_ip = self.client_ip(request)  # now: the transport is gone once a client leaves
        try:
            if request.method == "OPTIONS":
                resp = self.preflight(request)
            else:
                resp = await handler(request)
        except asyncio.CancelledError:
            # r.Context().Done(): Delay answers 499 to a client that is gone, and it is logged
            self.log(request, client_ip, 499, 0, start)
            raise
        except web.HTTPException as exc:
            self.log(request, client_ip, exc.status, 0, start)
            raise
        resp.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
        resp.headers["Access-Control-Allow-Credentials"] = "true"
        size = 0 if request.method == "HEAD" else len(resp.body or b"")
        self.log(request, client_ip, resp.status, size, start)
        return resp

    @staticmethod
    def preflight(request: web.Request) -> web.Response:
        headers = {
            "Access-Control-Allow-Methods": "GET, POST, HEAD, PUT, DELETE, PATCH, OPTIONS",
            "Access-Control-Max-Age": "3600",
        }
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return _go_response(200, headers=headers)

    def log(self, request: web.Request, client_ip: str, status: int, size: int,
            start: float) -> None:
        """StdLogObserver through slog's TextHandler (go-httpbin v2.15.0 fields)."""
        ns = int((time.perf_counter() - start) * 1e9)  # a time.Duration is whole nanoseconds
        duration_ms = (ns // 10**9 + (ns % 10**9) / 1e9) * 1e3  # Duration.Seconds() * 1e3
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
        uri = request.raw_path
        msg = f"{status} {request.method} {uri} {duration_ms:.1f}ms"
        attrs = [
            ("status", str(status)),
            ("method", _slog_value(request.method)),
            ("uri", _slog_value(uri)),
            ("size_bytes", str(size)),
            ("duration_ms", _go_float(duration_ms)),
            ("user_agent", _slog_value(request.headers.get("User-Agent", ""))),
            ("client_ip", _slog_value(client_ip)),
        ]
        line = f"time={stamp} level={level} msg={_slog_value(msg)} "
        self.ctx.log(line + " ".join(f"{k}={v}" for k, v in attrs))


def go_httpbin(ctx: AppContext, *, sleep: Sleep | None = None,
               rng: random.Random | None = None) -> web.Application:
    """``mccutchen/go-httpbin:v2.15.0`` (samples/httpbin for Istio >= 1.24)."""
    return _GoHttpbin(ctx, sleep, rng).app()


# ---------------------------------------------------------------------------------------
# Python httpbin (Flask 1.0.2 under gunicorn 19.9.0)
# ---------------------------------------------------------------------------------------

PY_SERVER = "gunicorn/19.9.0"
# Methods the Python routes declare (Flask adds HEAD and OPTIONS to every GET route).
_PY_ANY = ("GET", "POST", "PUT", "DELETE", "PATCH", "TRACE")

# helpers.ASCII_ART, the /status/418 body
TEAPOT = (
    "\n"
    "    -=[ teapot ]=-\n"
    "\n"
    "       _...._\n"
    "     .'  _ _ `.\n"
    '    | ."` ^ `". _,\n'
    '    \\_;`"---"`|//\n'
    "      |       ;/\n"
    "      \\_     _/\n"
    '        `"""`\n'
)

# helpers.ENV_HEADERS: hidden from every headers dict unless the query has show_env
PY_ENV_HEADERS = frozenset({
    "X-Varnish", "X-Request-Start", "X-Heroku-Queue-Depth", "X-Real-Ip", "X-Forwarded-Proto",
    "X-Forwarded-Protocol", "X-Forwarded-Ssl", "X-Heroku-Queue-Wait-Time", "X-Forwarded-For",
    "X-Heroku-Dynos-In-Use", "X-Forwarded-Port", "X-Request-Id", "Via", "Total-Route-Time",
    "Connect-Time",
})

_PY_REDIRECT = {"headers": {"location": "/redirect/1"}}
# helpers.status_code: a special case's "headers" REPLACE the response headers (so no
# Content-Type is sent with them); "data" sets the body.
_PY_SPECIAL_STATUS: dict[int, dict[str, Any]] = {
    301: _PY_REDIRECT,
    302: _PY_REDIRECT,
    303: _PY_REDIRECT,
    304: {"data": ""},
    305: _PY_REDIRECT,
    307: _PY_REDIRECT,
    401: {"headers": {"WWW-Authenticate": 'Basic realm="Fake Realm"'}},
    402: {"data": "Fuck you, pay me!", "headers": {"x-more-info": "http://vimeo.com/22053820"}},
    406: {
        "data": json.dumps({
            "message": "Client did not request a supported media type.",
            "accept": ["image/webp", "image/svg+xml", "image/jpeg", "image/png", "image/*"],
        }),
        "headers": {"Content-Type": "application/json"},
    },
    407: {"headers": {"Proxy-Authenticate": 'Basic realm="Fake Realm"'}},
    418: {"data": TEAPOT, "headers": {"x-more-info": "http://tools.ietf.org/html/rfc2324"}},
}

_PY_ERRORS = {  # werkzeug 0.14 exception names and descriptions
    404: ("Not Found", "The requested URL was not found on the server.  If you entered the "
                       "URL manually please check your spelling and try again."),
    405: ("Method Not Allowed", "The method is not allowed for the requested URL."),
    500: ("Internal Server Error", "The server encountered an internal error and was unable "
                                   "to complete your request.  Either the server is overloaded "
                                   "or there is an error in the application."),
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _py_json(value: Any) -> bytes:
    """Flask 1.0 jsonify with JSONIFY_PRETTYPRINT_REGULAR: indent 2, ", " separators (so
    lines end in ", "), sorted keys, ASCII escapes, trailing newline."""
    return (json.dumps(value, indent=2, separators=(", ", ": "), sort_keys=True) + "\n").encode()


def _py_response(status: int, body: bytes | str = b"", headers: dict[str, str] | None = None,
                 content_type: str | None = "text/html; charset=utf-8") -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    resp = _Response(status=status, body=data, headers=dict(headers or {}))
    if content_type is not None:
        resp.headers["Content-Type"] = content_type
    resp.headers["Server"] = PY_SERVER
    if "Content-Type" not in resp.headers:
        resp.drop_headers = ("Content-Type",)
    return resp


def _py_error(status: int, headers: dict[str, str] | None = None) -> web.Response:
    """werkzeug's HTML error page."""
    name, description = _PY_ERRORS[status]
    body = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
            f"<title>{status} {name}</title>\n<h1>{name}</h1>\n<p>{description}</p>\n")
    return _py_response(status, body, headers, content_type="text/html")


def _json_safe(data: bytes, content_type: str = "application/octet-stream") -> str:
    """helpers.json_safe: UTF-8 text as is, anything else as a base64 data URL."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def _semiflatten(pairs) -> dict[str, Any]:
    """helpers.semiflatten: one value -> the value, several -> a list."""
    grouped: dict[str, list[Any]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


class _PythonHttpbin:
    """httpbin/core.py + helpers.py under gunicorn (sync/gevent worker)."""

    def __init__(self, ctx: AppContext, sleep: Sleep | None, rng: random.Random | None):
        self.ctx = ctx
        self.sleep = sleep
        self.rng = rng or random.Random()
        # (path pattern, the methods the Flask route declares, view)
        self.routes: list[tuple[re.Pattern[str], tuple[str, ...], Callable]] = [
            (re.compile(r"/get"), ("GET",), self.view_get),
            (re.compile(r"/headers"), ("GET",), self.view_headers),
            (re.compile(r"/ip"), ("GET",), self.view_ip),
            (re.compile(r"/anything(?:/.+)?"), _PY_ANY, self.view_anything),
            (re.compile(r"/status/(?P<codes>[^/]+)"), _PY_ANY, self.view_status),
            (re.compile(r"/delay/(?P<delay>[^/]+)"), _PY_ANY, self.view_delay),
        ]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.access_log])
        app.router.add_route("*", "/{path:.*}", self.route)
        app.on_response_prepare.append(_strip_headers)
        return app

    # -- request helpers (helpers.get_dict) -----------------------------------------------
    @staticmethod
    def wsgi_headers(request: web.Request) -> dict[str, str]:
        """Headers as werkzeug sees gunicorn's environ: HTTP_X_REQUEST_ID -> ``X-Request-Id``,
        repeated headers joined with ","."""
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.upper().replace("_", "-").title()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        return headers

    def get_headers(self, request: web.Request) -> dict[str, str]:
        headers = self.wsgi_headers(request)
        if "show_env" in request.query:
            return headers
        return {k: v for k, v in headers.items() if k not in PY_ENV_HEADERS}

    def origin(self, request: web.Request) -> str:
        """The whole X-Forwarded-For value, else REMOTE_ADDR (the peer IP)."""
        forwarded = self.wsgi_headers(request).get("X-Forwarded-For")
        return forwarded if forwarded is not None else _peer(request)[0]

    @staticmethod
    def url(request: web.Request) -> str:
        """helpers.get_url: request.url with the scheme from X-Forwarded-Proto & co."""
        h = request.headers
        scheme = h.get("X-Forwarded-Proto") or h.get("X-Forwarded-Protocol")
        if scheme is None and h.get("X-Forwarded-Ssl") == "on":
            scheme = "https"
        target = request.raw_path
        if target.endswith("?"):  # an empty QUERY_STRING adds no "?"
            target = target[:-1]
        return f"{scheme or request.scheme}://{h.get('Host', '')}{target}"

    async def get_dict(self, request: web.Request, *keys: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "url": lambda: self.url(request),
            "args": lambda: _semiflatten(request.query.items()),
            "origin": lambda: self.origin(request),
            "headers": lambda: self.get_headers(request),
            "method": lambda: request.method,
        }
        out = {key: fields[key]() for key in keys if key in fields}
        body_keys = {"form", "data", "files", "json"} & set(keys)
        if body_keys:
            body = await self.body_fields(request)
            out.update({key: body[key] for key in body_keys})
        return out

    @staticmethod
    async def body_fields(request: web.Request) -> dict[str, Any]:
        """werkzeug: form bodies fill form/files and leave data empty; others fill data."""
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        mimetype = content_type.split(";", 1)[0].strip().lower()
        data, form, files = b"", {}, {}
        if mimetype == "application/x-www-form-urlencoded":
            form = _semiflatten(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        elif mimetype == "multipart/form-data":
            try:
                parts = _multipart(body, content_type)
            except ValueError:
                parts = []
            form = _semiflatten((n, _json_safe(p)) for n, f, _, p in parts if f is None)
            files = _semiflatten((n, _json_safe(p, t)) for n, f, t, p in parts if f is not None)
        else:
            data = body
        try:
            parsed_json = json.loads(data.decode("utf-8"))
        except ValueError:
            parsed_json = None
        return {"data": _json_safe(data), "form": form, "files": files, "json": parsed_json}

    # -- routing (Flask/werkzeug) ---------------------------------------------------------
    async def route(self, request: web.Request) -> web.Response:
        for pattern, methods, view in self.routes:
            match = pattern.fullmatch(request.path)
            if not match:
                continue
            allowed = set(methods) | {"HEAD", "OPTIONS"}
            if request.method == "OPTIONS":  # Flask's automatic OPTIONS response
                return _py_response(200, headers={"Allow": ", ".join(sorted(allowed))})
            if request.method not in allowed:
                return _py_error(405, {"Allow": ", ".join(sorted(allowed))})
            return await view(request, **match.groupdict())
        return _py_error(404)

    @staticmethod
    def jsonify(value: Any) -> web.Response:
        return _py_response(200, _py_json(value), content_type="application/json")

    # -- views ----------------------------------------------------------------------------
    async def view_get(self, request: web.Request) -> web.Response:
        return self.jsonify(await self.get_dict(request, "url", "args", "headers", "origin"))

    async def view_headers(self, request: web.Request) -> web.Response:
        return self.jsonify(await self.get_dict(request, "headers"))

    async def view_ip(self, request: web.Request) -> web.Response:
        return self.jsonify({"origin": self.origin(request)})

    async def view_anything(self, request: web.Request) -> web.Response:
        return self.jsonify(await self.get_dict(
            request, "url", "args", "headers", "origin", "method", "form", "data", "files", "json"))

    async def view_status(self, request: web.Request, codes: str) -> web.Response:
        """/status/<code> or a weighted random pick from ``200:0.8,503:0.2``."""
        if "," not in codes:
            try:
                return self.status_code(int(codes))
            except ValueError:
                return _py_response(400, "Invalid status code")
        choices: list[tuple[int, float]] = []
        for choice in codes.split(","):
            if ":" not in choice:
                code, weight = choice, "1"
            else:
                try:
                    code, weight = choice.split(":")
                except ValueError:  # "200:1:2": the unpacking error escapes the view
                    return _py_error(500)
            try:
                choices.append((int(code), float(weight)))
            except ValueError:
                return _py_response(400, "Invalid status code")
        total = sum(weight for _, weight in choices)
        picked = _weighted_pick(choices, self.rng.uniform(0, total))  # utils.weighted_choice
        return _py_error(500) if picked is None else self.status_code(picked)

    @staticmethod
    def status_code(code: int) -> web.Response:
        if not 100 <= code <= 999:  # gunicorn cannot send it; the app errors
            return _py_error(500)
        special = _PY_SPECIAL_STATUS.get(code, {})
        if "headers" in special:
            return _py_response(code, special.get("data", ""), special["headers"],
                                content_type=None)
        return _py_response(code, special.get("data", ""))

    async def view_delay(self, request: web.Request, delay: str) -> web.Response:
        """Sleeps min(float(delay), 10) seconds; a bad value is an uncaught error (500)."""
        try:
            seconds = min(float(delay), 10)
        except ValueError:
            return _py_error(500)
        if not seconds >= 0:  # time.sleep rejects negatives and NaN
            return _py_error(500)
        await (self.sleep or asyncio.sleep)(seconds)
        return self.jsonify(await self.get_dict(
            request, "url", "args", "form", "data", "origin", "headers", "files"))

    # -- middleware -----------------------------------------------------------------------
    @web.middleware
    async def access_log(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A gunicorn worker does not notice a client that went away: it finishes the request
        (a /delay sleeps on) and logs it. Shielded, so a cancelled handler still completes."""
        work = asyncio.ensure_future(self._serve_and_log(request, handler))
        return await asyncio.shield(work)

    async def _serve_and_log(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """after_request CORS headers, then gunicorn's access-log line."""
        remote_addr = _peer(request)[0]
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            self.log(request, remote_addr, exc.status, 0)
            raise
        resp.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        resp.headers["Access-Control-Allow-Credentials"] = "true"
        if request.method == "OPTIONS":
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, PATCH, OPTIONS"
            resp.headers["Access-Control-Max-Age"] = "3600"
            requested = request.headers.get("Access-Control-Request-Headers")
            if requested is not None:
                resp.headers["Access-Control-Allow-Headers"] = requested
        size = 0 if request.method == "HEAD" else len(resp.body or b"")
        self.log(request, remote_addr, resp.status, size)
        return resp

    def log(self, request: web.Request, remote_addr: str, status: int, size: int) -> None:
        """gunicorn's default access_log_format: ``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s
        "%(f)s" "%(a)s"`` (container clock in UTC), written only when the command line asks
        for it: gunicorn logs no requests without ``--access-logfile -``, and neither the
        image's own CMD nor Istio's 1.22 sample passes it (the mirroring task does)."""
        if not _access_log_to_stdout(self.ctx.command):
            return
        now = datetime.now(timezone.utc)
        stamp = f"[{now:%d}/{_MONTHS[now.month - 1]}/{now:%Y:%H:%M:%S} +0000]"
        v = request.version
        line = f"{request.method} {request.raw_path} HTTP/{v.major}.{v.minor}"
        referer = request.headers.get("Referer", "-")
        agent = request.headers.get("User-Agent", "-")
        self.ctx.log(f'{remote_addr} - {self.basic_user(request)} {stamp} "{line}" '
                     f'{status} {size} "{referer}" "{agent}"')

    @staticmethod
    def basic_user(request: web.Request) -> str:
        """%(u)s: the user of a Basic Authorization header, else "-"."""
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                return base64.b64decode(auth[6:].strip()).decode("utf-8").split(":", 1)[0] or "-"
            except (ValueError, UnicodeDecodeError):
                return "-"
        return "-"


def _access_log_to_stdout(command: Sequence[str]) -> bool:
    args = list(command)
    for i, arg in enumerate(args):
        if arg == "--access-logfile" and i + 1 < len(args):
            return args[i + 1] == "-"
        if arg == "--access-logfile=-":
            return True
    return False


def python_httpbin(ctx: AppContext, *, sleep: Sleep | None = None,
                   rng: random.Random | None = None) -> web.Application:
    """The Python httpbin (kennethreitz/httpbin, kong/httpbin; Istio <= 1.23, mirroring task)."""
    return _PythonHttpbin(ctx, sleep, rng).app()


IMAGES: dict[str, tuple[AppFactory, dict[str, str]]] = {
    "go-httpbin": (go_httpbin, {}),
    "httpbin": (python_httpbin, {}),
}
