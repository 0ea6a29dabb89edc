"""Running a command in a pod's container: stdout, stderr and exit code kept apart.

``kubernetes.stream.stream`` swaps ``call_api`` on the ApiClient it is given for the
duration of the call, so exec gets its own ApiClient (and a lock), never the one the
normal API calls use. No TTY (a TTY merges stderr into stdout and turns newlines into
CRLF), ``_preload_content=False`` so the channels stay separate, and binary frames so
multi-byte characters split across frames survive.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from websocket import WebSocketException

from ..mesh import MeshError

STDOUT, STDERR, ERROR = 1, 2, 3


@dataclass
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    def stderr_tail(self, limit: int = 600) -> str:
        text = self.stderr.decode("utf-8", errors="replace").strip()
        return text[-limit:]


def exit_code_from_status(raw: bytes | str) -> int:
    """The exit code from the exec error channel (a Status object).

    ``Success`` → 0; ``NonZeroExitCode`` → the ``ExitCode`` cause's number. Any other
    failure (no such container, exec not permitted) raises MeshError with its message.
    """
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not raw.strip():
        raise MeshError("the exec ended without a status (connection lost?)")
    try:
        status = json.loads(raw)
    except ValueError:
        status = yaml.safe_load(raw)
    if not isinstance(status, dict):
        raise MeshError(f"unreadable exec status: {raw[:200]!r}")
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                break
    raise MeshError(f"exec failed: {status.get('message') or status.get('reason') or raw[:200]}")


class PodExec:
    """Exec in pods through a dedicated ApiClient."""

    def __init__(self, api_client: client.ApiClient):
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self._lock = threading.Lock()

    def run(self, namespace: str, pod: str, container: str, command: list[str],
            timeout_s: float = 120.0) -> ExecResult:
        with self._lock:
            try:
                ws = stream(
                    self.core.connect_get_namespaced_pod_exec, pod, namespace,
                    command=command, container=container,
                    stdin=False, stdout=True, stderr=True, tty=False,
                    _preload_content=False, binary=True,
                )
            except (ApiException, WebSocketException) as exc:
                raise MeshError(
                    f"cannot exec in pod {pod} container {container} (namespace {namespace}): "
                    f"{getattr(exc, 'reason', None) or exc}"
                ) from None
            try:
                ws.run_forever(timeout=timeout_s)
                if ws.is_open():
                    raise MeshError(
                        f"`{' '.join(command[:3])} ...` in pod {pod} did not finish within "
                        f"{timeout_s:.0f} s"
                    )
                stdout = ws.read_channel(STDOUT)
                stderr = ws.read_channel(STDERR)
                status = ws.read_channel(ERROR)
            except WebSocketException as exc:
                # The API server or the kubelet dropped the stream (pod restarted, node
                # gone, idle timeout): what the command did is unknown.
                raise MeshError(
                    f"the exec connection to pod {pod} container {container} was lost before "
                    f"`{' '.join(command[:3])} ...` finished ({type(exc).__name__}: {exc})"
                ) from None
            finally:
                ws.close()
        return ExecResult(_bytes(stdout), _bytes(stderr), exit_code_from_status(_bytes(status)))


def _bytes(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8")
