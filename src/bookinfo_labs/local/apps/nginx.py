"""Local nginx: the official ``nginx`` image as the labs use it, a web server that terminates
TLS itself (istio.io's "Ingress Gateway without TLS Termination": ``my-nginx`` serves its
own certificate, which the gateway passes through).

It reads the ``nginx.conf`` its ConfigMap volume mounts at ``/etc/nginx/nginx.conf``: in
each ``server`` block, ``listen <port> [ssl]`` and, with ``ssl``, the ``ssl_certificate``
and ``ssl_certificate_key`` files (those its Secret volume mounts). Without a mounted
``nginx.conf`` it is the image's default server: port 80, plain HTTP. Every server answers
``/`` and ``/index.html`` with the image's welcome page, anything else with nginx's 404
page, offers ``http/1.1`` in ALPN (no ``http2`` directive is read) and logs each request in
nginx's ``combined`` format; other directives are not read.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from .base import TLS_CONTEXTS, AppContext, AppFactory

CONFIG = "/etc/nginx/nginx.conf"
#: /usr/share/nginx/html/index.html of the image
WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""
NOT_FOUND = ("<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
             "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n"
             "</body>\r\n</html>\r\n")
_DIRECTIVE = re.compile(r"^\s*(listen|ssl_certificate|ssl_certificate_key)\s+([^;]+);", re.M)


def servers(config: str) -> list[dict[str, str]]:
    """Each ``server { ... }`` block's listen port, ``ssl`` flag and certificate files."""
    out = []
    for block in re.split(r"\bserver\s*\{", config)[1:]:
        found: dict[str, str] = {}
        for name, value in _DIRECTIVE.findall(block):
            found.setdefault(name, value.strip())
        listen = found.get("listen", "80").split()
        found["port"] = listen[0].rsplit(":", 1)[-1]
        found["ssl"] = "ssl" if "ssl" in listen[1:] else ""
        out.append(found)
    return out


def _tls_context(files, cert_path: str, key_path: str) -> ssl.SSLContext:
    missing = [p for p in (cert_path, key_path) if p not in files]
    if missing:
        raise RuntimeError(f"nginx: [emerg] cannot load certificate {missing[0]}: no such file "
                           "(is the Secret mounted there?)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.set_alpn_protocols(["http/1.1"])
    with tempfile.TemporaryDirectory() as scratch:  # the ssl module loads from files only
        cert, key = Path(scratch) / "tls.crt", Path(scratch) / "tls.key"
        cert.write_bytes(files[cert_path])
        key.write_bytes(files[key_path])
        context.load_cert_chain(cert, key)
    return context


def nginx(ctx: AppContext) -> web.Application:
    config = ctx.files.get(CONFIG)
    blocks = servers(config.decode()) if config is not None else [{"port": "80", "ssl": ""}]

    async def handle(request: web.Request) -> web.Response:
        if request.path in ("/", "/index.html"):
            response = web.Response(body=WELCOME.encode(), headers={"Content-Type": "text/html"})
        else:
            response = web.Response(body=NOT_FOUND.encode(), status=404,
                                    headers={"Content-Type": "text/html"})
        response.headers["Server"] = "nginx"
        stamp = datetime.now(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
        v = request.version
        ctx.log(f'{request.remote or "-"} - - [{stamp}] "{request.method} {request.path_qs} '
                f'HTTP/{v.major}.{v.minor}" {response.status} {len(response.body)} '
                f'"{request.headers.get("Referer", "-")}" "{request.headers.get("User-Agent", "-")}"')
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    app[TLS_CONTEXTS] = {int(b["port"]): _tls_context(ctx.files, b.get("ssl_certificate", ""),
                                                      b.get("ssl_certificate_key", ""))
                         for b in blocks if b["ssl"]}
    return app


IMAGES: dict[str, tuple[AppFactory, dict[str, str]]] = {"nginx": (nginx, {})}
