"""``fortio load`` in an emulated fortio container: the local mesh's load client, with
fortio's command line and its ``-json -`` output.

Flags read: ``-c`` (connections), ``-qps`` (0: as fast as possible), ``-n`` (exact number
of calls, so no warm-up), ``-loglevel`` and ``-json`` (only ``-`` is supported: the JSON
goes to stdout, the text summary to stderr). The pod's addresses come from the wrapper's
environment: requests leave from the pod's IP for its sidecar's outbound listener, and a
host that is not a Service the pod can resolve fails as fortio does, with exit code 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from urllib.parse import urlsplit

from bookinfo_labs.local.fortio import run_load
from bookinfo_labs.local.pilot import listen_port

USAGE = "usage: fortio load [-c N] [-qps Q] [-n N] [-loglevel L] [-json -] URL"


def _parse(argv: list[str]) -> dict:
    if not argv or argv[0] != "load":
        raise SystemExit(f"this fortio only runs `load`\n{USAGE}")
    options = {"c": "4", "qps": "8", "n": "0", "loglevel": "Info", "json": ""}
    rest = argv[1:]
    url = None
    while rest:
        arg = rest.pop(0)
        name = arg.lstrip("-")
        if arg.startswith("-") and name in options:
            if not rest:
                raise SystemExit(f"flag needs an argument: {arg}\n{USAGE}")
            options[name] = rest.pop(0)
        elif arg.startswith("-"):
            raise SystemExit(f"flag provided but not supported here: {arg}\n{USAGE}")
        elif url is None:
            url = arg
        else:
            raise SystemExit(f"only one URL, got {url} and {arg}")
    if url is None:
        raise SystemExit(f"missing URL\n{USAGE}")
    if options["json"] not in ("", "-"):
        raise SystemExit("this fortio writes JSON only to stdout (-json -)")
    if int(options["n"]) < 1:
        raise SystemExit("this fortio needs -n (an exact number of calls)")
    return {**options, "url": url}


def _histogram(result) -> dict:
    percentiles = [{"Percentile": p, "Value": v} for p, v in
                   ((50.0, result.p50), (90.0, result.p90), (99.0, result.p99)) if v is not None]
    return {"Count": result.requests, "Percentiles": percentiles}


def main(argv: list[str]) -> int:
    options = _parse(argv)
    url = urlsplit(options["url"] if "://" in options["url"] else f"http://{options['url']}")
    port = url.port or 80
    names = set(filter(None, os.environ.get("EMULATED_NAMES", "").split(",")))
    if f"{url.hostname}:{port}" not in names:
        print(f"Aborting because of lookup {url.hostname}: no such host", file=sys.stderr)
        print(json.dumps({"Error": True, "Message": f"lookup {url.hostname}: no such host"}))
        return 1
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    target = f"http://{os.environ['EMULATED_OUTBOUND_IP']}:{listen_port(port)}{path}"
    started = time.time()
    result = asyncio.run(run_load(target, url.netloc, connections=int(options["c"]),
                                  requests=int(options["n"]), qps=float(options["qps"]),
                                  source_ip=os.environ["EMULATED_POD_IP"]))
    for line in result.code_lines():
        print(line, file=sys.stderr)
    print(json.dumps({
        "RunType": "HTTP", "StartTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "RequestedQPS": options["qps"], "ActualQPS": result.qps,
        "ActualDuration": int(result.duration_s * 1e9), "NumThreads": int(options["c"]),
        "Exactly": int(options["n"]), "URL": options["url"],
        "DurationHistogram": _histogram(result),
        "RetCodes": {str(code): count for code, count in result.codes.items()},
        "SocketCount": result.sockets,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
