"""The one-curl-process batch format both meshes use, against a real curl and server."""

import http.server
import shutil
import subprocess
import threading

import pytest

from bookinfo_labs import curlbatch
from bookinfo_labs.mesh import HttpRequest

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            return
        body = f"hello {self.headers.get('X-Who', 'nobody')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=abc; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def run(request, count, jar_dir=None):
    marker = curlbatch.new_marker()
    argv = curlbatch.curl_argv(request, marker, jar_dir, extra=["--noproxy", "*"])
    done = subprocess.run(argv, input=curlbatch.curl_config(request, count).encode(),
                          capture_output=True, timeout=30)
    return curlbatch.parse_output(done.stdout, marker, count)


def test_a_batch_gives_one_record_per_request(server):
    responses = run(HttpRequest(url=f"{server}/", headers=(("X-Who", "jason"),)), 5)
    assert [r.status for r in responses] == [200] * 5
    assert all(r.body == "hello jason\n" for r in responses)
    assert responses[0].header("content-type") == "text/plain"
    assert all(r.exit_code == 0 and r.elapsed_s > 0 for r in responses)


def test_status_without_body_and_connection_failure(server):
    assert run(HttpRequest(url=f"{server}/missing"), 2)[1].status == 404
    refused = run(HttpRequest(url="http://127.0.0.1:1/"), 1)[0]
    assert (refused.status, refused.exit_code) == (0, 7)
    assert "Failed to connect" in refused.error


def test_cookie_jar_is_kept_between_batches(server, tmp_path):
    run(HttpRequest(url=f"{server}/", cookie_jar="jason"), 1, str(tmp_path))
    assert "session\tabc" in (tmp_path / "jason.cookies").read_text()


def test_a_body_that_contains_http_lines_is_not_mistaken_for_headers():
    marker = "@@m@@"
    out = (b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nHTTP/1.1 fake\n" + b"\n" + marker.encode()
           + b'{"http_code":200,"time_total":0.1,"exitcode":0}\n')
    [response] = curlbatch.parse_output(out, marker, 1)
    assert response.body == "HTTP/1.1 fake\n" and response.headers == {"a": "1"}


def test_a_short_output_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 2 curl records, found 0"):
        curlbatch.parse_output(b"garbage", "@@m@@", 2)
