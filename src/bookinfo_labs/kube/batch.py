"""The shell script one exec runs in the client pod: a whole batch of curls.

curl reads the URLs from ``--config -``. The config text (``curlbatch.curl_config``:
one ``url = "..."`` line per request) is produced by a small ``while`` loop in the pod
rather than pasted in, so the exec's command line stays the same size for 1 or 10,000
requests. The cookie jar lives in the pod (``/tmp/<jar>.cookies``), so a login and the
page views after it share a session, as in a browser.
"""

from __future__ import annotations

import shlex

from .. import curlbatch
from ..mesh import HttpRequest

JAR_DIR = "/tmp"


def config_line(request: HttpRequest) -> str:
    """One line of the curl config: exactly what ``curl_config`` repeats per request."""
    return curlbatch.curl_config(request, 1).rstrip("\n")


def batch_script(request: HttpRequest, count: int, marker: str, jar_dir: str = JAR_DIR) -> str:
    """``sh -c`` text: print the config ``count`` times and pipe it into one curl."""
    if count < 1:
        raise ValueError("a batch needs at least one request")
    argv = curlbatch.curl_argv(request, marker, jar_dir=jar_dir)
    line = shlex.quote(config_line(request))

    def one_curl(n: int) -> str:
        return (f"i=0; while [ \"$i\" -lt {int(n)} ]; do printf '%s\\n' {line}; i=$((i+1)); done"
                f" | {shlex.join(argv)}")

    parts = curlbatch.shares(count, request.parallel)
    if len(parts) == 1:
        return one_curl(count)
    # Concurrent curls write to their own files (shared stdout would interleave), then
    # the files are printed in order: still one exec, one parse.
    out = f"{jar_dir.rstrip('/')}/{marker.strip('@')}"
    started = " ".join(f"( {one_curl(n)} ) > {out}.{i} &" for i, n in enumerate(parts))
    files = " ".join(f"{out}.{i}" for i in range(len(parts)))
    return f"{started} wait; cat {files}; rm -f {files}"


def batch_command(request: HttpRequest, count: int, marker: str, jar_dir: str = JAR_DIR) -> list[str]:
    """The exec's argv."""
    return ["sh", "-c", batch_script(request, count, marker, jar_dir)]
