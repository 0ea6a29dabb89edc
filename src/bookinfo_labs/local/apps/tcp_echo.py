"""Local tcp-echo-server: Istio's ``samples/tcp-echo`` server (docs/facts.md#tcp-echo).

Run as ``<ports> <prefix>`` (the Deployment's args, e.g. ``["9000,9001,9002", "one"]``): it
listens on every listed port, reads each connection line by line and answers each line
with ``<prefix> <line>``, newline included, until the client closes; a last line without
its newline gets no answer. Its log is the real server's: ``listening on [::]:9000,
prefix: one``, then ``request: ...`` and ``response: ...`` per line.
"""

from __future__ import annotations

import asyncio

from .base import AppContext, AppFactory, TcpApp

USAGE = ("you should run it like: 'main [PORTS...] prefix' , please notice PORTS are "
         "comma-delineated , like  port 1[,port 2]  ")


def tcp_echo(ctx: AppContext) -> TcpApp:
    if len(ctx.command) != 2:
        raise ValueError(f"tcp-echo-server: {USAGE}")
    ports = [int(p) for p in ctx.command[0].split(",")]
    prefix = ctx.command[1]
    for port in ports:
        ctx.log(f"listening on [::]:{port}, prefix: {prefix}")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):  # EOF, with or without a partial line
                    return
                reply = prefix.encode() + b" " + line  # the bytes as they came
                ctx.log(f"request: {_shown(line)}")
                ctx.log(f"response: {_shown(reply)}")
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    return TcpApp(handle, ports)


def _shown(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\n")


IMAGES: dict[str, tuple[AppFactory, dict[str, str]]] = {
    "tcp-echo-server": (tcp_echo, {}),
}
