"""Local helloworld: Istio's ``samples/helloworld`` images (``examples-helloworld-v1``/``-v2``).

The image is a Flask app under ``gunicorn -b [::]:5000 app:app -k gevent`` (samples/
helloworld/src). ``GET /hello`` answers ``Hello version: <SERVICE_VERSION>, instance:
<HOSTNAME>`` and a newline as ``text/html; charset=utf-8`` (the real app first spends CPU
on a loop of square roots; only its answer is imitated); ``/health`` answers ``Helloworld
is healthy``; any other path gets Flask's 404 page. ``SERVICE_VERSION`` is baked into each
image (v1, v2) and a container env var overrides it. gunicorn runs without an access log.
"""

from __future__ import annotations

from aiohttp import web

from .base import AppContext, AppFactory

HTML = "text/html; charset=utf-8"
#: werkzeug 3's NotFound page (Flask 3.0.3, the image's requirements.txt)
NOT_FOUND = ('<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n'
             '<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you '
             'entered the URL manually please check your spelling and try again.</p>\n')


def helloworld(ctx: AppContext) -> web.Application:
    version = ctx.env.get("SERVICE_VERSION", ctx.options.get("service_version", "v1"))
    instance = ctx.env.get("HOSTNAME", ctx.pod_name)

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/hello":
            return _text(f"Hello version: {version}, instance: {instance}\n")
        if request.path == "/health":
            return _text("Helloworld is healthy")
        return _text(NOT_FOUND, 404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(body=body.encode(), status=status, headers={"Content-Type": HTML})


IMAGES: dict[str, tuple[AppFactory, dict[str, str]]] = {
    "examples-helloworld-v1": (helloworld, {"service_version": "v1"}),
    "examples-helloworld-v2": (helloworld, {"service_version": "v2"}),
}
