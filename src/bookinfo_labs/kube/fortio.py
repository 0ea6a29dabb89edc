"""fortio in the fortio pod: the load command and its JSON result.

``-json -`` sends the result as JSON to stdout while fortio's text report goes to
stderr, so the two never mix. With ``-n`` (an exact number of calls) fortio sends no
warm-up request, so a 100 % fault does not abort the run.
"""

from __future__ import annotations

from ..loadgen import LoadResult, parse_fortio_json
from ..mesh import MeshError
from .exec import ExecResult


def load_argv(url: str, *, connections: int, requests: int, qps: float = 0) -> list[str]:
    if connections < 1 or requests < 1:
        raise ValueError("fortio needs at least one connection and one request")
    return ["fortio", "load", "-c", str(int(connections)), "-qps", f"{qps:g}",
            "-n", str(int(requests)), "-loglevel", "Warning", "-json", "-", url]


def result_of(run: ExecResult, pod: str) -> LoadResult:
    """The LoadResult of a finished exec, or a MeshError quoting fortio's own complaint."""
    try:
        return parse_fortio_json(run.stdout)
    except ValueError as exc:
        raise MeshError(
            f"fortio in pod {pod} exited {run.exit_code}: {exc}; stderr: {run.stderr_tail()}"
        ) from None
