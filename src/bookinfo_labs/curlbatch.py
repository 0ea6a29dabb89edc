"""A batch of identical requests as ONE curl process, and the parser for its output.

Both meshes run the same thing: locally a real curl on this machine whose connections are
captured by the client's emulated sidecar; on kube the same curl inside the client pod, in
one exec. curl is given every URL through ``--config -`` and writes, after each transfer,
the response (``-i``: headers and body) followed by a marker line carrying ``%{json}``
(status, timing, exit code, error message for that transfer).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from pathlib import Path

from .mesh import HttpRequest, HttpResponse


def new_marker() -> str:
    return f"@@bookinfo-labs-{secrets.token_hex(6)}@@"


def curl_argv(request: HttpRequest, marker: str, jar_dir: str | None,
              extra: list[str] | None = None, config: str = "-") -> list[str]:
    """curl's argv for the batch; the URLs come from ``config`` (stdin by default)."""
    argv = ["curl", *request.curl_args(), "-w", f"\\n{marker}%{{json}}\\n"]
    if request.cookie_jar:
        if jar_dir is None:
            raise ValueError("a cookie jar needs a directory to keep it in")
        jar = f"{jar_dir.rstrip('/')}/{request.cookie_jar}.cookies"
        argv += ["-b", jar, "-c", jar]
    return argv + list(extra or []) + ["--config", config]


def curl_config(request: HttpRequest, count: int) -> str:
    """The ``--config`` text naming the URL once per request of the batch."""
    if count < 1:
        raise ValueError("a batch needs at least one request")
    quoted = request.url.replace("\\", "\\\\").replace('"', '\\"')
    return f'url = "{quoted}"\n' * count


def shares(count: int, parallel: int) -> list[int]:
    """How a batch of ``count`` splits over ``parallel`` concurrent curl processes."""
    parallel = max(1, min(parallel, count))
    return [count // parallel + (1 if i < count % parallel else 0) for i in range(parallel)]


def parse_output(stdout: bytes, marker: str, count: int) -> list[HttpResponse]:
    """Split curl's stdout into one HttpResponse per transfer."""
    sep = ("\n" + marker).encode()
    chunks = stdout.split(sep)
    if len(chunks) != count + 1:
        raise ValueError(
            f"expected {count} curl records, found {len(chunks) - 1}; output starts: "
            f"{stdout[:200]!r}"
        )
    responses = []
    payload = chunks[0]
    for chunk in chunks[1:]:
        record_line, _, rest = chunk.partition(b"\n")
        record = json.loads(record_line)
        responses.append(_response(payload, record))
        payload = rest
    return responses


_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)


def _response(payload: bytes, record: dict) -> HttpResponse:
    headers, body = _split_head(payload)
    return HttpResponse(
        status=int(record.get("http_code") or 0),
        headers=headers,
        body=body.decode("utf-8", errors="replace"),
        elapsed_s=float(record.get("time_total") or 0.0),
        exit_code=int(record.get("exitcode") or 0),
        error=record.get("errormsg") or "",
        certificates=tuple(_PEM.findall(record.get("certs") or "")),
    )


def _split_head(payload: bytes) -> tuple[dict[str, str], bytes]:
    """Take the final header block off ``-i`` output (skipping 1xx interim responses)."""
    headers: dict[str, str] = {}
    rest = payload
    while rest.startswith(b"HTTP/"):
        head, found, body = rest.partition(b"\r\n\r\n")
        if not found:
            head, found, body = rest.partition(b"\n\n")
        lines = head.decode("latin-1").splitlines()
        status = lines[0].split()
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        rest = body
        if not (len(status) > 1 and status[1].startswith("1")):
            break
    return headers, rest


def run_here(request: HttpRequest, count: int, work_dir: Path,
             extra: list[str] | None = None) -> list[HttpResponse]:
    """Send the batch with the real curl of this machine (cookie jars in ``work_dir``).

    One curl process per share, all running at once (one share unless parallel > 1); each
    reads its URLs from its own config file, so none waits for another's input.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    marker = new_marker()
    limit = (request.max_time_s or 60) * count + 30
    processes = []
    for i, n in enumerate(shares(count, request.parallel)):
        config = work_dir / f"batch-{marker.strip('@')}-{i}.curlrc"
        config.write_text(curl_config(request, n))
        argv = curl_argv(request, marker, str(work_dir), config=str(config), extra=extra)
        processes.append((subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE), n, config))
    responses = []
    try:
        for process, n, _ in processes:
            stdout, _ = process.communicate(timeout=limit)
            responses += parse_output(stdout, marker, n)
    finally:
        for process, _, config in processes:
            if process.poll() is None:
                process.kill()
            config.unlink(missing_ok=True)
    return responses
