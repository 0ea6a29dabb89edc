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
    return (
        f"i=0; while [ \"$i\" -lt {int(count)} ]; do printf '%s\\n' {line}; i=$((i+1)); done"
        f" | {shlex.join(argv)}"
    )


def batch_command(request: HttpRequest, count: int, marker: str, jar_dir: str = JAR_DIR) -> list[str]:
    """The exec's argv."""
    return ["sh", "-c", batch_script(request, count, marker, jar_dir)]
