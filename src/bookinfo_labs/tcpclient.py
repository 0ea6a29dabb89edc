"""Plain TCP from this machine: what ``(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT``
does in the TCP traffic shifting task, in Python sockets.

Each exchange is its own TCP connection (a weighted tcp_proxy picks its cluster per
connection): connect, send one line, read one line back, close. Both meshes use it, as
both reach the ingress gateway from this machine at ``ingress_address("tcp")``.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

#: how long one connection may take to connect and answer its line
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TcpRequest:
    """``count`` connections to ``host:port``, each sending ``line`` and a newline."""

    host: str
    port: int
    line: str
    timeout_s: float = TIMEOUT_S

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass
class TcpReply:
    """What came back on one connection: the line (without its newline), or why none did
    (``connection refused``, ``closed without a reply``, ``timed out``...)."""

    line: str = ""
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def first_word(self) -> str:
        return self.line.split(" ", 1)[0] if self.line else ""


def exchange(request: TcpRequest) -> TcpReply:
    """One connection: send the line, read up to the first newline or the server's close."""
    started = time.monotonic()
    received = b""
    try:
        with socket.create_connection((request.host, request.port),
                                      timeout=request.timeout_s) as sock:
            sock.sendall(request.line.encode() + b"\n")
            while not received.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
    except ConnectionRefusedError:
        return TcpReply(error="connection refused", elapsed_s=time.monotonic() - started)
    except TimeoutError:
        return TcpReply(received.decode(errors="replace").rstrip("\n"), "timed out",
                        time.monotonic() - started)
    except OSError as exc:  # a reset, an unreachable host
        return TcpReply(received.decode(errors="replace").rstrip("\n"),
                        exc.strerror or type(exc).__name__, time.monotonic() - started)
    elapsed = time.monotonic() - started
    if not received:
        return TcpReply(error="closed without a reply", elapsed_s=elapsed)
    return TcpReply(received.decode(errors="replace").rstrip("\n"), elapsed_s=elapsed)


def send_lines(request: TcpRequest, count: int) -> list[TcpReply]:
    """``count`` exchanges, one after the other, each on a new connection."""
    return [exchange(request) for _ in range(count)]
