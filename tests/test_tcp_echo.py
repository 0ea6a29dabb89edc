"""The local tcp-echo-server, reached with the labs' TCP client (docs/facts.md#tcp-echo)."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from bookinfo_labs.checks import EventuallyPolicy
from bookinfo_labs.local.apps import find_app
from bookinfo_labs.local.apps.base import AppContext, TcpApp
from bookinfo_labs.local.apps.tcp_echo import tcp_echo
from bookinfo_labs.local.runtime import LoopThread
from bookinfo_labs.scenario import Lab
from bookinfo_labs.tcpclient import TcpRequest, exchange, send_lines
from bookinfo_labs.versions import get_version

from test_scenario import RecordingMesh


def _context(command, log):
    return AppContext(pod_name="tcp-echo-v1-5d8f7c9b6d-x2k4p", labels={}, env={}, outbound=None,
                      istio=get_version("1.26"), log=log.append, command=command)


@pytest.fixture
def server():
    """tcp-echo-server "9000" "one" on a free loopback port, on the local mesh's kind of loop."""
    log: list[str] = []
    app = tcp_echo(_context(["9000", "one"], log))
    loop = LoopThread("tcp-echo-test")
    listening = loop.run(asyncio.start_server(app.handle, "127.0.0.1", 0))
    yield listening.sockets[0].getsockname()[1], log

    async def close() -> None:
        listening.close()

    # Closed on its own loop: asyncio's Server is not thread-safe, and a close from this
    # thread racing a handler's exit on the loop wakes the waiters twice (TypeError).
    loop.run(close())
    loop.stop()  # cancels the handlers of connections still open


def test_the_image_is_found_and_listens_on_its_args_ports():
    factory, _ = find_app("docker.io/istio/tcp-echo-server:1.3")
    log: list[str] = []
    app = factory(_context(["9000,9001,9002", "two"], log))
    assert isinstance(app, TcpApp) and list(app.ports) == [9000, 9001, 9002]
    assert log[0] == "listening on [::]:9000, prefix: two"
    with pytest.raises(ValueError, match="comma-delineated"):
        factory(_context(["9000"], log))


def test_each_line_comes_back_with_the_prefix(server):
    port, log = server
    reply = exchange(TcpRequest("127.0.0.1", port, "Mon Nov 12 23:24:57 UTC 2022"))
    assert (reply.line, reply.error, reply.first_word) == (
        "one Mon Nov 12 23:24:57 UTC 2022", "", "one")
    assert log[-2:] == ["request: Mon Nov 12 23:24:57 UTC 2022",
                        "response: one Mon Nov 12 23:24:57 UTC 2022"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"a\nb\n")  # one connection, several lines
        received = b""
        while received.count(b"\n") < 2:
            received += sock.recv(100)
    assert received == b"one a\none b\n"


def test_a_last_line_without_its_newline_gets_no_answer(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"no newline")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""


def test_a_port_nobody_listens_on_is_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    replies = send_lines(TcpRequest("127.0.0.1", port, "x"), 2)
    assert [(r.line, r.error) for r in replies] == [("", "connection refused")] * 2


def test_a_lab_sends_the_date_and_a_resend_opens_new_connections(server):
    """``send_lines_through_ingress``: the date on a new connection each time, to the
    address the mesh names for the gateway's tcp port; ``expect`` re-sends the batch."""
    port, log = server

    class TcpMesh(RecordingMesh):
        def ingress_address(self, port_name="http2"):
            assert port_name == "tcp"
            return "127.0.0.1", port

    lab = Lab(TcpMesh(), policy=EventuallyPolicy(times=3, timeout_s=5))
    traffic = lab.send_lines_through_ingress(4)
    assert repr(traffic) == f"<4 TCP connections to tcp://127.0.0.1:{port}: replies {{'one': 4}}>"
    assert re.fullmatch(r"one \w{3} \w{3} \d\d \d\d:\d\d:\d\d UTC \d{4}", traffic.responses[0].line)
    lab.expect("every reply starts with one",
               lambda t: all(r.first_word == "one" for r in t.responses))
    assert sum(line.startswith("request: ") for line in log) == 12  # 3 batches of 4
