"""What a local sample app gets from the emulated pod it runs in.

An app is an aiohttp ``web.Application`` built by a factory ``make(ctx: AppContext)``, or
a ``TcpApp`` for a server that speaks plain TCP. It serves on its own loopback port; its
outgoing calls go through ``ctx.outbound``, which hands them to the pod's sidecar exactly
as iptables capture would: the app names ``http://reviews:9080/...`` and never learns
where the sidecar sends it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping, Protocol, Sequence

from aiohttp import web

from ...versions import IstioVersion


@dataclass
class UpstreamResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Outbound(Protocol):
    """The pod's outbound path (its sidecar).

    Raises ``asyncio.TimeoutError`` when no response arrives within ``timeout_s`` and
    ``ConnectionError`` when the connection fails: what an HTTP client library would see.
    """

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        timeout_s: float | None = None,
    ) -> UpstreamResponse: ...


@dataclass
class AppContext:
    pod_name: str  # the HOSTNAME the app reports (e.g. reviews-v2-5d8f7c9b6d-x2k4p)
    labels: Mapping[str, str]
    env: Mapping[str, str]  # the container's env from the Deployment
    outbound: Outbound
    istio: IstioVersion
    log: Callable[[str], None]  # appends one line to the app's log (kubectl logs)
    options: Mapping[str, str] = field(default_factory=dict)  # image build settings
    #: the container's command and args from the Deployment (empty: the image's own)
    command: Sequence[str] = ()
    #: the files its Secret and ConfigMap volumes mount, by absolute path
    files: Mapping[str, bytes] = field(default_factory=dict)


#: an app that serves TLS itself sets ``app[TLS_CONTEXTS] = {container port: SSLContext}``
TLS_CONTEXTS = web.AppKey("tls_contexts", dict)


@dataclass
class TcpApp:
    """A plain TCP server, for an image that speaks no HTTP: ``handle`` serves each
    connection accepted on each of ``ports`` (none: the container's ports)."""

    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ports: Sequence[int] = ()


@dataclass
class GrpcApp:
    """A gRPC server (grpc.aio): ``add_services`` registers its servicers on the server the
    local mesh starts on each of ``ports``."""

    add_services: Callable[[object], None]
    ports: Sequence[int] = ()


App = web.Application | TcpApp | GrpcApp
AppFactory = Callable[[AppContext], App | Awaitable[App]]

