"""The local mesh's Prometheus: Debian's ``prometheus`` server scraping every pod's agent.

What Istio's addon (samples/addons/prometheus.yaml) does on a cluster: its
``kubernetes-pods`` job scrapes each pod's ``:15020/stats/prometheus`` with
``honor_labels: true`` and adds the pod's labels, ``namespace`` and ``pod``. Locally the
pods come from a file_sd file the mesh rewrites whenever pods come or go (Prometheus
watches it), the storage lives in the mesh's work dir, and the server listens on a free
port of 127.0.0.1. The process is forked like the Envoys (killed with us, also on SIGKILL).
Facts: docs/facts.md#prometheus.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import requests
import yaml

from .. import promql
from ..mesh import MeshError
from .envoyproc import _SPAWNER, _pdeathsig_preexec  # the same never-outlive-us guard

#: Istio's addon scrapes every 15 s; the local mesh every 2 s, so a lab's check waits a few
#: seconds, not half a minute, for its traffic to show (its agents are in-process and cheap
#: to scrape). Checks derive their deadlines from it (promql.settle_s).
SCRAPE_INTERVAL_S = 2.0
JOB = promql.PODS_JOB
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def binary() -> str | None:
    return shutil.which("prometheus")


def missing_reason() -> str:
    return ("the metrics labs query a real Prometheus, and no `prometheus` binary is on PATH: "
            "run `make deps` (it installs Debian's prometheus package) or "
            "apt-get install prometheus")


def config(targets_file: Path) -> dict[str, Any]:
    """prometheus.yml: the addon's kubernetes-pods job, its pods from ``targets_file``."""
    interval = f"{SCRAPE_INTERVAL_S:g}s"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval,
                   "evaluation_interval": "1m"},
        "scrape_configs": [{
            "job_name": JOB,
            "honor_labels": True,  # the addon's: the metrics' own labels win over the target's
            "metrics_path": "/stats/prometheus",
            "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}],
        }],
    }


def target_group(address: str, namespace: str, pod: str,
                 labels: Mapping[str, str]) -> dict[str, Any]:
    """One pod as the addon's relabelling leaves it: its labels (names sanitised as
    ``labelmap`` does), ``namespace`` and ``pod``."""
    out = {_LABEL_NAME.sub("_", k): str(v) for k, v in labels.items()}
    out.update({"namespace": namespace, "pod": pod})
    return {"targets": [address], "labels": out}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalPrometheus:
    """One Prometheus server with its files under ``work_dir``."""

    def __init__(self, work_dir: Path, executable: str) -> None:
        self.work_dir = work_dir
        self.executable = executable
        self.targets_file = work_dir / "targets.json"
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, targets: Sequence[dict], timeout_s: float = 30.0) -> "LocalPrometheus":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.set_targets(targets)
        config_file = self.work_dir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config(self.targets_file)))
        self.port = _free_port()
        argv = [self.executable, f"--config.file={config_file}",
                f"--storage.tsdb.path={self.work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        log = self.work_dir / "prometheus.log"

        def spawn() -> subprocess.Popen:
            with open(log, "wb") as out:
                return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, cwd=self.work_dir,
                                        close_fds=True, start_new_session=True,
                                        preexec_fn=_pdeathsig_preexec())

        self._proc = _SPAWNER.run(spawn)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-10:]
                self._proc = None
                raise MeshError(f"prometheus exited while starting: {' | '.join(tail)}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise MeshError(f"prometheus did not get ready within {timeout_s:g} s "
                                f"(its log: {log})")
            time.sleep(0.1)

    def set_targets(self, targets: Sequence[dict]) -> None:
        """Replace the scraped pods (written then renamed: Prometheus never reads half)."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(list(targets), indent=1))
        os.replace(tmp, self.targets_file)

    def api(self, path: str, params: Mapping[str, str] | None = None) -> dict:
        """GET ``/api/v1/<path>``: the parsed JSON answer."""
        try:
            answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        except requests.RequestException as exc:
            raise MeshError(f"the local Prometheus at {self.url} did not answer: {exc}") from None
        try:
            return answer.json()
        except ValueError:
            raise MeshError(f"the local Prometheus answered {answer.status_code} with no JSON: "
                            f"{answer.text[:200]}") from None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
