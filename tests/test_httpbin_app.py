"""The local httpbin apps against the facts (docs/facts.md#httpbin-flavours,
docs/facts.md#mirroring, docs/facts.md#request-headers).

Both flavours run on a loopback aiohttp test server. Delays use an injected fake sleep
(the test asserts on the requested duration), weighted /status picks an injected scripted
``random.Random``. No timers, no sleeps, no timing assertions.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bookinfo_labs.local.apps import image_name
from bookinfo_labs.local.apps.base import AppContext
from bookinfo_labs.local.apps.httpbin import (
    IMAGES,
    TEAPOT,
    go_httpbin,
    python_httpbin,
)
from bookinfo_labs.versions import get_version

CURL = "curl/8.16.0"
MESH_HEADERS = {  # what a client sidecar adds (docs/facts.md#request-headers)
    "Host": "httpbin:8000",
    "User-Agent": CURL,
    "Accept": "*/*",
    "X-Request-Id": "6f1c1d47-1b8e-4bb0-9a6e-3f5b9c6b1a01",
    "X-Forwarded-Proto": "http",
    "X-Envoy-Attempt-Count": "1",
}
# aiohttp's client would add these on its own; curl does not send them
NO_AUTO = ("Accept-Encoding", "Content-Type")


# ---------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes
    log: list[str]

    def json(self) -> Any:
        return json.loads(self.body)


class FakeSleep:
    """Records the requested durations and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class BlockingSleep:
    """A sleep that never ends by itself: it signals entry and records its cancellation."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.finished = asyncio.Event()
        self.cancelled = False

    async def __call__(self, seconds: float) -> None:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            self.finished.set()
            raise


class ReleasableSleep:
    """A sleep that ends when the test releases it (a sleep that outlives its client)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False

    async def __call__(self, seconds: float) -> None:
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class ScriptedRandom(random.Random):
    """random() returns the given values in order (uniform() is built on it)."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


@dataclass
class Log:
    lines: list[str] = field(default_factory=list)
    changed: asyncio.Event | None = None

    def append(self, line: str) -> None:
        self.lines.append(line)
        if self.changed is not None:
            self.changed.set()


#: how the samples run the Python httpbin (samples.py): gunicorn logging requests to stdout
GUNICORN_LOGGING = ("pipenv", "run", "gunicorn", "-b", "0.0.0.0:8080", "httpbin:app",
                    "-k", "gevent", "--access-logfile", "-")


def make_ctx(log: Log, env: dict[str, str] | None = None,
             command: tuple[str, ...] = GUNICORN_LOGGING) -> AppContext:
    return AppContext(
        pod_name="httpbin-v1-7d9c5b8f6d-x2k4p",
        labels={"app": "httpbin", "version": "v1"},
        env=dict(env or {}),
        outbound=None,  # type: ignore[arg-type]  # httpbin never calls out
        istio=get_version("1.26"),
        log=log.append,
        command=command,
    )


def serve(factory: Callable, scenario: Callable[[TestClient, Log], Any], *,
          env: dict[str, str] | None = None, command: tuple[str, ...] = GUNICORN_LOGGING,
          **hooks: Any) -> Any:
    """Run ``scenario(client, log)`` against ``factory`` on a loopback test server."""

    async def main():
        log = Log(changed=asyncio.Event())
        app = factory(make_ctx(log, env, command), **hooks)
        async with TestClient(TestServer(app)) as client:
            return await scenario(client, log)

    return asyncio.run(main())


def call(factory: Callable, path: str, *, method: str = "GET",
         headers: dict[str, str] | None = None, data: bytes | None = None,
         **hooks: Any) -> Reply:
    """One request; the reply and the app's log."""

    async def scenario(client: TestClient, log: Log) -> Reply:
        async with client.request(method, path, headers=headers or {}, data=data,
                                  skip_auto_headers=NO_AUTO, allow_redirects=False) as resp:
            return Reply(resp.status, resp.headers, await resp.read(), log.lines)

    return serve(factory, scenario, **hooks)


FLAVOURS = [pytest.param(go_httpbin, id="go"), pytest.param(python_httpbin, id="python")]

GO_LOG = re.compile(
    r"^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(?P<level>INFO|WARN|ERROR) "
    r'msg="(?P<status>\d{3}) (?P<method>[A-Z]+) (?P<uri>\S+) \d+\.\dms" '
    r"status=(?P=status) method=(?P=method) uri=(?P<uri2>\S+) size_bytes=(?P<size>\d+) "
    r'duration_ms=[0-9.e+-]+ user_agent=(?P<ua>"(?:[^"\\]|\\.)*"|\S+) client_ip=(?P<ip>\S+)$'
)
GUNICORN_LOG = re.compile(
    r"^(?P<ip>[0-9.]+) - (?P<user>\S+) \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
    r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/1\.1" (?P<status>\d{3}) (?P<size>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$'
)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("image, factory", [
    ("docker.io/mccutchen/go-httpbin:v2.15.0", go_httpbin),
    ("docker.io/kong/httpbin", python_httpbin),
    ("docker.io/kennethreitz/httpbin", python_httpbin),
])
def test_images_map_repository_names_to_flavours(image, factory):
    assert IMAGES[image_name(image)] == (factory, {})


# ---------------------------------------------------------------------------------------
# go-httpbin v2.15.0
# ---------------------------------------------------------------------------------------


def test_go_headers_body_is_byte_exact():
    reply = call(go_httpbin, "/headers", headers=MESH_HEADERS)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.body.decode() == (
        '{\n'
        '  "headers": {\n'
        '    "Accept": [\n      "*/*"\n    ],\n'
        '    "Host": [\n      "httpbin:8000"\n    ],\n'
        '    "User-Agent": [\n      "curl/8.16.0"\n    ],\n'
        '    "X-Envoy-Attempt-Count": [\n      "1"\n    ],\n'
        '    "X-Forwarded-Proto": [\n      "http"\n    ],\n'
        '    "X-Request-Id": [\n      "6f1c1d47-1b8e-4bb0-9a6e-3f5b9c6b1a01"\n    ]\n'
        '  }\n'
        '}\n'
    )


def test_go_headers_canonicalises_keys_and_keeps_repeats_as_arrays():
    async def scenario(client, log):
        headers = [("x-b3-traceid", "abc"), ("X-ENVOY-ATTEMPT-COUNT", "2"),
                   ("x-multi", "one"), ("x-multi", "two"), ("host", "httpbin-shadow:8000")]
        async with client.get("/headers", headers=headers, skip_auto_headers=NO_AUTO) as resp:
            return await resp.json()

    headers = serve(go_httpbin, scenario)["headers"]
    assert headers["X-B3-Traceid"] == ["abc"]
    assert headers["X-Envoy-Attempt-Count"] == ["2"]
    assert headers["X-Multi"] == ["one", "two"]
    assert headers["Host"] == ["httpbin-shadow:8000"]  # a mirrored request's Host, as sent
    assert list(headers) == sorted(headers)


def test_go_get_fields_url_args_and_forwarded_origin():
    headers = {**MESH_HEADERS, "Host": "httpbin-shadow:8000",
               "X-Forwarded-For": "10.244.0.7, 10.244.0.1"}
    reply = call(go_httpbin, "/get?nonce=n-42&a=1&a=2", headers=headers)
    body = reply.json()
    assert list(body) == ["args", "headers", "method", "origin", "url"]
    assert body["args"] == {"a": ["1", "2"], "nonce": ["n-42"]}
    assert body["method"] == "GET"
    assert body["origin"] == "10.244.0.7"  # first X-Forwarded-For entry
    assert body["url"] == "http://httpbin-shadow:8000/get?nonce=n-42&a=1&a=2"
    assert body["headers"]["X-Forwarded-For"] == ["10.244.0.7, 10.244.0.1"]


def test_go_url_scheme_follows_x_forwarded_proto():
    reply = call(go_httpbin, "/get", headers={**MESH_HEADERS, "X-Forwarded-Proto": "https"})
    assert reply.json()["url"] == "https://httpbin:8000/get"


def test_go_ip_is_the_peer_address_with_port_without_forwarded_for():
    reply = call(go_httpbin, "/ip", headers=MESH_HEADERS)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", reply.json()["origin"])
    assert reply.body.decode().startswith('{\n  "origin": "127.0.0.1:')


def test_go_ip_takes_the_first_forwarded_for_entry():
    reply = call(go_httpbin, "/ip", headers={"X-Forwarded-For": " 192.0.2.9 , 10.0.0.1"})
    assert reply.body == b'{\n  "origin": "192.0.2.9"\n}\n'


def test_go_status_418_is_the_teapot_text():
    reply = call(go_httpbin, "/status/418")
    assert (reply.status, reply.body) == (418, b"I'm a teapot!")
    assert reply.headers["X-More-Info"] == "http://tools.ietf.org/html/rfc2324"
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("code", [200, 500, 503])
def test_go_status_plain_codes_have_an_empty_text_body(code):
    reply = call(go_httpbin, f"/status/{code}")
    assert (reply.status, reply.body) == (code, b"")
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "Server" not in reply.headers  # net/http sends none


def test_go_status_redirect_special_case():
    reply = call(go_httpbin, "/status/302")
    assert (reply.status, reply.headers["Location"]) == (302, "/redirect/1")


@pytest.mark.parametrize("path, detail", [
    ("/status/abc", 'invalid status code: "abc": strconv.Atoi: parsing "abc": invalid syntax'),
    ("/status/600", "invalid status code: 600 not in range [100, 599]"),
    ("/status/200:x,503", 'invalid weight value: "x"'),
    ("/status/200,5x3", 'invalid choice value: "5x3"'),
])
def test_go_status_errors_are_the_json_error_shape(path, detail):
    reply = call(go_httpbin, path)
    assert reply.status == 400
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.body.decode() == (
        '{\n  "status_code": 400,\n  "error": "Bad Request",\n'
        f'  "detail": {json.dumps(detail)}\n}}\n'
    )


@pytest.mark.parametrize("path, point, expected", [
    ("/status/200:0.8,503:0.2", 0.79, 200),
    ("/status/200:0.8,503:0.2", 0.81, 503),
    ("/status/200,500", 0.49, 200),   # unweighted: weight 1 each, 0.49 * 2 < 1
    ("/status/200,500", 0.5, 500),    # 0.5 * 2 == 1 is not < 1: the second code
    ("/status/200:0,503", 0.0, 503),  # weight 0 is never picked
])
def test_go_status_weighted_pick_uses_the_injected_rng(path, point, expected):
    assert call(go_httpbin, path, rng=ScriptedRandom(point)).status == expected


@pytest.mark.parametrize("factory", FLAVOURS)
def test_weighted_picks_are_reproducible_with_a_seeded_rng(factory):
    async def scenario(client, log):
        codes = []
        for _ in range(20):
            async with client.get("/status/200,503") as resp:
                codes.append(resp.status)
        return codes

    first = serve(factory, scenario, rng=random.Random(7))
    assert first == serve(factory, scenario, rng=random.Random(7))
    assert set(first) == {200, 503}


@pytest.mark.parametrize("path, seconds", [
    ("/delay/2", 2.0),
    ("/delay/0.5", 0.5),
    ("/delay/1500ms", 1.5),   # a Go duration
    ("/delay/10", 10.0),      # the maximum itself is allowed
    ("/delay/0.0004", 0.0),   # float seconds are truncated to whole milliseconds
])
def test_go_delay_sleeps_the_requested_duration(path, seconds):
    sleep = FakeSleep()
    reply = call(go_httpbin, path, headers=MESH_HEADERS, sleep=sleep)
    assert reply.status == 200 and sleep.calls == [seconds]
    assert reply.headers["Server-Timing"] == (
        f'initial_delay;dur={seconds * 1000:0.2f};desc="initial delay"')
    body = reply.json()
    assert list(body) == [
        "args", "headers", "method", "origin", "url", "data", "files", "form", "json"]
    assert (body["data"], body["files"], body["form"], body["json"]) == ("", {}, {}, None)


def test_go_delay_over_ten_seconds_is_a_400_without_sleeping():
    sleep = FakeSleep()
    reply = call(go_httpbin, "/delay/11", sleep=sleep)
    assert reply.status == 400 and sleep.calls == []
    assert json.loads(reply.body) == {
        "status_code": 400, "error": "Bad Request",
        "detail": "invalid duration: duration 11s longer than 10s",
    }


@pytest.mark.parametrize("path, detail", [
    ("/delay/1m", "invalid duration: duration 1m0s longer than 10s"),
    ("/delay/-1", "invalid duration: duration -1s shorter than 0s"),
    ("/delay/abc", 'invalid duration: strconv.ParseFloat: parsing "abc": invalid syntax'),
])
def test_go_delay_rejects_bad_durations(path, detail):
    reply = call(go_httpbin, path, sleep=FakeSleep())
    assert (reply.status, reply.json()["detail"]) == (400, detail)


def test_go_delay_max_duration_follows_the_env():
    sleep = FakeSleep()
    reply = call(go_httpbin, "/delay/15", sleep=sleep, env={"MAX_DURATION": "20s"})
    assert reply.status == 200 and sleep.calls == [15.0]


def test_go_anything_echoes_method_path_and_json_body():
    reply = call(go_httpbin, "/anything/deep/path?x=1", method="POST",
                 headers={**MESH_HEADERS, "Content-Type": "application/json"},
                 data=b'{"nonce": "n-7"}')
    body = reply.json()
    assert (body["method"], body["url"]) == ("POST", "http://httpbin:8000/anything/deep/path?x=1")
    assert body["data"] == '{"nonce": "n-7"}'
    assert (body["json"], body["args"]) == ({"nonce": "n-7"}, {"x": ["1"]})


def test_go_anything_form_and_binary_bodies():
    form = call(go_httpbin, "/anything", method="PUT", data=b"a=1&a=2&b=",
                headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
    assert form["form"] == {"a": ["1", "2"], "b": [""]} and form["data"] == "a=1&a=2&b="
    binary = call(go_httpbin, "/anything", method="POST", data=b"\xff\xfe",
                  headers={"Content-Type": "application/octet-stream"}).json()
    assert binary["data"] == "data:application/octet-stream;base64,__4="


MULTIPART = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="nonce"\r\n\r\n'
    b"n-5\r\n"
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="upload"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\n"
    b"hello\r\n"
    b"--XyZ--\r\n"
)


@pytest.mark.parametrize("factory, form, files", [
    pytest.param(go_httpbin, {"nonce": ["n-5"]}, {"upload": ["hello"]}, id="go"),
    pytest.param(python_httpbin, {"nonce": "n-5"}, {"upload": "hello"}, id="python"),
])
def test_anything_multipart_form_and_files(factory, form, files):
    body = call(factory, "/anything", method="POST", data=MULTIPART,
                headers={"Content-Type": "multipart/form-data; boundary=XyZ"}).json()
    assert (body["form"], body["files"]) == (form, files)


def test_go_head_has_no_body_and_logs_zero_bytes():
    reply = call(go_httpbin, "/get", method="HEAD")
    assert (reply.status, reply.body) == (200, b"")
    assert GO_LOG.match(reply.log[0])["size"] == "0"


def test_go_get_rejects_other_methods_and_unknown_paths_are_json_404():
    reply = call(go_httpbin, "/get", method="POST")
    assert reply.status == 405
    assert reply.json() == {"status_code": 405, "error": "Method Not Allowed"}
    reply = call(go_httpbin, "/nope")
    assert reply.status == 404
    assert reply.body == b'{\n  "status_code": 404,\n  "error": "Not Found"\n}\n'


@pytest.mark.parametrize("factory", FLAVOURS)
@pytest.mark.parametrize("path", ["/get", "/status/503", "/nope"])
def test_cors_headers_on_every_response(factory, path):
    reply = call(factory, path)
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    echoed = call(factory, path, headers={"Origin": "http://example.com"})
    assert echoed.headers["Access-Control-Allow-Origin"] == "http://example.com"


def test_go_preflight():
    reply = call(go_httpbin, "/anything", method="OPTIONS",
                 headers={"Access-Control-Request-Headers": "x-nonce"})
    assert (reply.status, reply.body) == (200, b"")
    assert reply.headers["Access-Control-Allow-Methods"] == (
        "GET, POST, HEAD, PUT, DELETE, PATCH, OPTIONS")
    assert reply.headers["Access-Control-Max-Age"] == "3600"
    assert reply.headers["Access-Control-Allow-Headers"] == "x-nonce"


@pytest.mark.parametrize("path, status, level", [
    ("/headers", 200, "INFO"),
    ("/status/404", 404, "WARN"),
    ("/status/503", 503, "ERROR"),
])
def test_go_access_log_is_one_slog_line_per_request(path, status, level):
    reply = call(go_httpbin, path, headers={**MESH_HEADERS, "X-Forwarded-For": "10.1.2.3"})
    [line] = reply.log
    m = GO_LOG.match(line)
    assert m, line
    assert (m["level"], m["status"], m["method"], m["uri"], m["uri2"]) == (
        level, str(status), "GET", path, path)
    assert (int(m["size"]), m["ua"], m["ip"]) == (len(reply.body), CURL, "10.1.2.3")
    assert "Host" not in line and "httpbin:8000" not in line  # the real log has no Host


def test_go_access_log_quotes_values_as_slog_does():
    reply = call(go_httpbin, "/get?a=1", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    [line] = reply.log
    assert ' uri="/get?a=1" ' in line
    assert ' user_agent="Mozilla/5.0 (X11)" ' in line
    assert re.search(r" client_ip=127\.0\.0\.1:\d+$", line)
    empty = call(go_httpbin, "/get", headers={"User-Agent": ""}).log[0]
    assert ' user_agent="" ' in empty


def test_go_delay_is_cancelled_with_the_client_and_logged_as_499():
    sleep = BlockingSleep()

    async def scenario(client, log):
        request = asyncio.ensure_future(client.get("/delay/5", headers=MESH_HEADERS))
        await asyncio.wait_for(sleep.entered.wait(), 5)
        request.cancel()  # the client (a sidecar's per-try timeout) gives up
        while not log.lines:
            log.changed.clear()
            await asyncio.wait_for(log.changed.wait(), 5)
        return log.lines

    [line] = serve(go_httpbin, scenario, sleep=sleep)
    assert sleep.cancelled
    m = GO_LOG.match(line)
    assert m and (m["level"], m["status"], m["size"]) == ("WARN", "499", "0"), line


# ---------------------------------------------------------------------------------------
# Python httpbin (Flask 1.0 + gunicorn)
# ---------------------------------------------------------------------------------------


def test_python_headers_body_is_byte_exact_and_hides_env_headers():
    reply = call(python_httpbin, "/headers",
                 headers={**MESH_HEADERS, "X-Forwarded-For": "10.1.2.3", "X-B3-Sampled": "1"})
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    # Flask's pretty printer: ", " separators leave a space at the end of every inner line
    assert reply.body.decode() == (
        '{\n'
        '  "headers": {\n'
        '    "Accept": "*/*", \n'
        '    "Host": "httpbin:8000", \n'
        '    "User-Agent": "curl/8.16.0", \n'
        '    "X-B3-Sampled": "1", \n'
        '    "X-Envoy-Attempt-Count": "1"\n'
        '  }\n'
        '}\n'
    )


def test_python_show_env_reveals_the_env_headers():
    reply = call(python_httpbin, "/headers?show_env=1",
                 headers={**MESH_HEADERS, "X-Forwarded-For": "10.1.2.3"})
    headers = reply.json()["headers"]
    assert headers["X-Request-Id"] == MESH_HEADERS["X-Request-Id"]
    assert (headers["X-Forwarded-Proto"], headers["X-Forwarded-For"]) == ("http", "10.1.2.3")


def test_python_headers_title_case_and_join_repeats():
    async def scenario(client, log):
        headers = [("x-b3-traceid", "abc"), ("x-multi", "one"), ("x-multi", "two"),
                   ("host", "httpbin-shadow:8000")]
        async with client.get("/headers", headers=headers, skip_auto_headers=NO_AUTO) as resp:
            return await resp.json()

    headers = serve(python_httpbin, scenario)["headers"]
    assert headers["X-B3-Traceid"] == "abc"
    assert headers["X-Multi"] == "one,two"
    assert headers["Host"] == "httpbin-shadow:8000"


def test_python_get_fields_url_args_and_origin():
    headers = {**MESH_HEADERS, "Host": "httpbin-shadow:8000",
               "X-Forwarded-For": "10.244.0.7, 10.244.0.1"}
    body = call(python_httpbin, "/get?nonce=n-42&a=1&a=2", headers=headers).json()
    assert list(body) == ["args", "headers", "origin", "url"]  # no "method"
    assert body["args"] == {"a": ["1", "2"], "nonce": "n-42"}  # single values are strings
    assert body["origin"] == "10.244.0.7, 10.244.0.1"  # the whole X-Forwarded-For value
    assert body["url"] == "http://httpbin-shadow:8000/get?nonce=n-42&a=1&a=2"


def test_python_ip_is_the_peer_address_without_port():
    assert call(python_httpbin, "/ip").body == b'{\n  "origin": "127.0.0.1"\n}\n'


def test_python_status_418_is_the_ascii_teapot():
    reply = call(python_httpbin, "/status/418")
    assert (reply.status, reply.body.decode()) == (418, TEAPOT)
    assert TEAPOT.startswith("\n    -=[ teapot ]=-\n\n       _...._\n")
    assert TEAPOT.endswith('      \\_     _/\n        `"""`\n')
    assert reply.headers["x-more-info"] == "http://tools.ietf.org/html/rfc2324"
    assert "Content-Type" not in reply.headers  # the special case replaces the headers
    assert reply.headers["Server"] == "gunicorn/19.9.0"


def test_python_status_plain_and_invalid():
    reply = call(python_httpbin, "/status/503")
    assert (reply.status, reply.body, reply.headers["Content-Type"]) == (
        503, b"", "text/html; charset=utf-8")
    reply = call(python_httpbin, "/status/abc")
    assert (reply.status, reply.body) == (400, b"Invalid status code")


@pytest.mark.parametrize("path, point, expected", [
    ("/status/200:0.8,503:0.2", 0.79, 200),
    ("/status/200:0.8,503:0.2", 0.81, 503),
    ("/status/200,500", 0.49, 200),
    ("/status/200,500", 0.5, 500),
])
def test_python_status_weighted_pick_uses_the_injected_rng(path, point, expected):
    assert call(python_httpbin, path, rng=ScriptedRandom(point)).status == expected


@pytest.mark.parametrize("path, seconds", [
    ("/delay/3", 3.0),
    ("/delay/0.5", 0.5),
    ("/delay/30", 10.0),  # clamped to 10 s, never an error
])
def test_python_delay_clamps_to_ten_seconds(path, seconds):
    sleep = FakeSleep()
    reply = call(python_httpbin, path, headers=MESH_HEADERS, sleep=sleep)
    assert reply.status == 200 and sleep.calls == [seconds]
    body = reply.json()
    assert list(body) == ["args", "data", "files", "form", "headers", "origin", "url"]
    assert (body["data"], body["files"], body["form"]) == ("", {}, {})


@pytest.mark.parametrize("path", ["/delay/abc", "/delay/-1"])
def test_python_delay_bad_values_are_an_internal_error(path):
    sleep = FakeSleep()
    reply = call(python_httpbin, path, sleep=sleep)
    assert reply.status == 500 and sleep.calls == []
    assert b"<title>500 Internal Server Error</title>" in reply.body


def test_python_delay_outlives_a_client_that_went_away():
    """A gunicorn worker finishes the sleep and logs 200 although the caller gave up."""
    sleep = ReleasableSleep()

    async def scenario(client, log):
        request = asyncio.ensure_future(client.get("/delay/5"))
        await asyncio.wait_for(sleep.entered.wait(), 5)
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)
        sleep.release.set()
        for _ in range(100):  # let the shielded request finish on the loop
            if log.lines:
                break
            await asyncio.sleep(0)
        return log.lines

    [line] = serve(python_httpbin, scenario, sleep=sleep)
    assert '"GET /delay/5 HTTP/1.1" 200' in line and not sleep.cancelled


def test_python_anything_fields_and_form_body():
    reply = call(python_httpbin, "/anything/x", method="POST", data=b"a=1&a=2&b=3",
                 headers={**MESH_HEADERS, "Content-Type": "application/x-www-form-urlencoded"})
    body = reply.json()
    assert list(body) == [
        "args", "data", "files", "form", "headers", "json", "method", "origin", "url"]
    assert (body["method"], body["data"], body["json"]) == ("POST", "", None)
    assert body["form"] == {"a": ["1", "2"], "b": "3"}
    assert body["url"] == "http://httpbin:8000/anything/x"


def test_python_anything_json_body():
    body = call(python_httpbin, "/anything", method="PUT", data=b'{"k": [1]}',
                headers={"Content-Type": "application/json"}).json()
    assert (body["data"], body["json"]) == ('{"k": [1]}', {"k": [1]})


def test_python_404_and_405_are_werkzeug_pages():
    reply = call(python_httpbin, "/nope")
    assert reply.status == 404
    assert reply.body.decode() == (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n'
        "<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
        "<p>The requested URL was not found on the server.  If you entered the URL manually "
        "please check your spelling and try again.</p>\n"
    )
    reply = call(python_httpbin, "/get", method="POST")
    assert reply.status == 405 and reply.headers["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path, status", [("/headers", 200), ("/status/503", 503), ("/nope", 404)])
def test_python_access_log_is_gunicorns_line(path, status):
    reply = call(python_httpbin, path, headers=MESH_HEADERS)
    [line] = reply.log
    m = GUNICORN_LOG.match(line)
    assert m, line
    assert (m["ip"], m["user"], m["method"], m["uri"], m["status"]) == (
        "127.0.0.1", "-", "GET", path, str(status))
    assert (int(m["size"]), m["referer"], m["ua"]) == (len(reply.body), "-", CURL)


@pytest.mark.parametrize("command", [
    (),  # the image's CMD: gunicorn -b 0.0.0.0:80 httpbin:app -k gevent
    ("pipenv", "run", "gunicorn", "-b", "0.0.0.0:8080", "httpbin:app", "-k", "gevent"),  # 1.22
    ("gunicorn", "--access-logfile", "/tmp/access.log", "httpbin:app"),
])
def test_python_httpbin_logs_no_requests_without_access_logfile_stdout(command):
    """gunicorn writes its access log only where --access-logfile says; without it, a
    log-counting step on a cluster would see 0 lines, so the local mesh sees 0 too."""
    reply = call(python_httpbin, "/get", command=command)
    assert reply.status == 200 and reply.log == []
    assert len(call(python_httpbin, "/get", command=("gunicorn", "--access-logfile=-")).log) == 1


def test_python_access_log_keeps_the_query_and_basic_auth_user():
    headers = {"Authorization": "Basic amFzb246cGFzcw==", "Referer": "http://productpage/"}
    [line] = call(python_httpbin, "/get?nonce=n-9", headers=headers).log
    m = GUNICORN_LOG.match(line)
    assert m, line
    assert (m["user"], m["uri"], m["referer"]) == ("jason", "/get?nonce=n-9", "http://productpage/")


def test_python_head_logs_no_body_bytes():
    reply = call(python_httpbin, "/get", method="HEAD")
    assert reply.status == 200 and reply.body == b""
    assert GUNICORN_LOG.match(reply.log[0])["size"] == "0"
