"""The containers of an emulated pod: what ``kubectl exec`` runs and ``kubectl logs`` reads.

A container here is a process environment on this machine, shaped like the image's:

- PATH holds only the tools the image ships (``curlimages/curl``: a shell and curl;
  ``fortio/fortio``: fortio alone, no shell; ``istio/proxyv2``: a shell and pilot-agent).
  Each tool is a small wrapper that puts the process inside the pod: curl gets the pod's
  source address and cluster-DNS-plus-iptables capture (``LocalMesh.curl_capture``), fortio
  sends from the pod to its sidecar's outbound listener, ``pilot-agent request`` asks the
  sidecar's Envoy admin, as in a real pod.
- ``/tmp`` is the container's own directory: a command's ``/tmp/...`` paths are rewritten
  to it (a mount namespace would be the real thing; this needs no privileges).
- Logs: the app container's are the app's lines, ``istio-proxy``'s the sidecar's access log
  (Envoy writes it to stdout in a pod), both cut by ``sinceSeconds``.

Every command runs in its own process group, started with PR_SET_PDEATHSIG (the kernel
kills it if the run dies) and killed with its group at ``close()``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from bookinfo_labs.local import LocalMesh
from bookinfo_labs.rundir import make_run_dir
from bookinfo_labs.local.envoyproc import _pdeathsig_preexec
from bookinfo_labs.local.registry import Pod

#: image name fragment -> the tools on that image's PATH
IMAGE_TOOLS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("curlimages/curl", ("sh", "curl")),
    ("fortio/fortio", ("fortio",)),
    ("istio/proxyv2", ("sh", "pilot-agent")),
)
#: the machine's curl, which the pods' wrappers call
REAL_CURL = shutil.which("curl", path="/usr/local/bin:/usr/bin:/bin") or "curl"
#: a command that runs longer than this is killed (the client gave up long before)
EXEC_LIMIT_S = 900.0
TESTS_DIR = Path(__file__).resolve().parent.parent
#: curl's ``--resolve host:port:address`` in an exec's command text (quoted or not)
_RESOLVE = re.compile(r"--resolve[= ]'?([^\s':]+:\d+:[^\s']+)")


def tools_of(image: str) -> tuple[str, ...]:
    for fragment, tools in IMAGE_TOOLS:
        if fragment in image:
            return tools
    return ()


class Containers:
    """exec and logs for the pods of one LocalMesh."""

    def __init__(self, mesh: LocalMesh):
        self.mesh = mesh
        self.root = make_run_dir()  # a killed run's is removed by the next
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:  # the command and whatever it started (curl under sh)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    # -- exec ------------------------------------------------------------------------
    def exec(self, pod: Pod, container: str, image: str, command: list[str]) -> tuple[bytes, bytes, int]:
        """Run ``command`` in the container; stdout, stderr and the exit code."""
        if not command:
            return b"", b"you must specify at least one command for the container\n", 1
        tools = tools_of(image)
        home = self.root / pod.name / container
        bin_dir = home / "bin"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        self._write_tools(pod, tools, bin_dir, command)
        # Images with a shell have its usual helpers (cat, rm, printf) too.
        path = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin" if "sh" in tools else str(bin_dir)
        argv = [_in_tmp(arg, home / "tmp") for arg in command]
        program = shutil.which(argv[0], path=path) if "/" not in argv[0] else argv[0]
        if program is None:
            # what the container runtime answers (kubectl shows it, exit code 126/127)
            return (b"", f'OCI runtime exec failed: exec failed: unable to start container '
                    f'process: exec: "{command[0]}": executable file not found in $PATH: '
                    f'unknown\n'.encode(), 127)
        env = {"PATH": path, "HOME": str(home), "HOSTNAME": pod.name,
               "LANG": "C.UTF-8", "TMPDIR": str(home / "tmp")}
        try:
            process = subprocess.Popen([program, *argv[1:]], cwd=home, env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, preexec_fn=_pdeathsig_preexec(),
                                       start_new_session=True)
        except OSError as exc:
            return b"", f"exec failed: {exc}\n".encode(), 126
        with self._lock:
            if self._closed:
                process.kill()
            self._running.add(process)
        try:
            stdout, stderr = process.communicate(timeout=EXEC_LIMIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        finally:
            with self._lock:
                self._running.discard(process)
        return stdout, stderr, process.returncode if process.returncode >= 0 else 137

    def _write_tools(self, pod: Pod, tools: tuple[str, ...], bin_dir: Path,
                     command: list[str]) -> None:
        """The image's tools, as wrappers bound to this pod (written at each exec: the
        Services a pod can resolve change as samples are deployed; the names a curl of
        this exec resolves itself with --resolve are captured as well)."""
        bin_dir.mkdir(parents=True, exist_ok=True)
        scripts = {}
        if "curl" in tools:
            resolve = _RESOLVE.findall(" ".join(command))
            capture = self.mesh.curl_capture(pod, resolve)
            scripts["curl"] = f"exec {shlex.quote(REAL_CURL)} {shlex.join(capture)} \"$@\""
        if "fortio" in tools:
            names = ",".join(f"{name}:{port.port}" for s in self.mesh.registry.services.values()
                             for name in s.dns_names(pod.namespace) for port in s.ports)
            scripts["fortio"] = (
                f"PYTHONPATH={shlex.quote(str(TESTS_DIR))} EMULATED_POD_IP={pod.ip} "
                f"EMULATED_OUTBOUND_IP={pod.outbound_ip} EMULATED_NAMES={shlex.quote(names)} "
                f"exec {shlex.quote(sys.executable)} -m emulated.fortio \"$@\"")
        if "pilot-agent" in tools:
            # `pilot-agent request <METHOD> <path>` asks Envoy's admin, as in a real pod
            host, port = pod.sidecar.process.admin_address
            scripts["pilot-agent"] = (
                'if [ "$#" -ne 3 ] || [ "$1" != request ]; then\n'
                '  echo "usage: pilot-agent request <METHOD> <PATH>" >&2; exit 2\nfi\n'
                f'exec {shlex.quote(REAL_CURL)} -sS --noproxy "*" --fail-with-body -X "$2" '
                f'"http://{host}:{port}/${{3#/}}"')
        if "sh" in tools:
            scripts["sh"] = 'exec /bin/sh "$@"'
        for name, body in scripts.items():
            target = bin_dir / name
            temporary = bin_dir / f".{name}.new"
            temporary.write_text(f"#!/bin/sh\n{body}\n")
            temporary.chmod(0o755)
            os.replace(temporary, target)

    # -- logs ------------------------------------------------------------------------
    @staticmethod
    def logs(pod: Pod, container: str, since_s: int | None) -> str:
        if container == "istio-proxy":
            lines = pod.sidecar.access_log(since_s)
        else:
            lines = pod.log.lines(since_s)
        return "".join(f"{line}\n" for line in lines)


def _in_tmp(arg: str, tmp: Path) -> str:
    """``/tmp`` in a command names the container's own /tmp."""
    return arg.replace("/tmp/", f"{tmp}/") if "/tmp/" in arg else (str(tmp) if arg == "/tmp" else arg)
