"""istioctl: a pinned release in a project-local folder, downloaded and checksum-verified.

``.tools/istio-<patch>/istioctl`` holds the istioctl of each Istio release the version
table names; ``ensure_istioctl`` downloads the release's ``istioctl-<patch>-<os>-<arch>
.tar.gz`` and its published ``.sha256`` and refuses a file whose digest differs. Commands
run through ``sh`` with no TTY (istioctl draws spinners on a TTY) and a timeout.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import tarfile
from pathlib import Path

import sh

from ..manifests import MANIFESTS_ROOT
from ..mesh import MeshError
from .tools import TOOLS_DIR, Fetch, download_verified, fetch_url, install, machine_arch

OPERATOR_FILE = MANIFESTS_ROOT / "istio" / "istio-operator.yaml"
DOWNLOAD_BASE = "https://github.com/istio/istio/releases/download"


def istioctl_path(patch: str, tools_dir: Path = TOOLS_DIR) -> Path:
    return tools_dir / f"istio-{patch}" / "istioctl"


def find_istioctl(patch: str, tools_dir: Path = TOOLS_DIR) -> str | None:
    """The project's istioctl for that release, else one on PATH, else None."""
    local = istioctl_path(patch, tools_dir)
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("istioctl")


def release_asset(patch: str, system: str | None = None, machine: str | None = None) -> str:
    """The release file name: ``istioctl-1.26.0-linux-amd64.tar.gz``, ``-osx-arm64``..."""
    system = (system or platform.system()).lower()
    arch = machine_arch(machine)
    if system == "linux":
        return f"istioctl-{patch}-linux-{arch}.tar.gz"
    if system == "darwin":
        return f"istioctl-{patch}-osx.tar.gz" if arch == "amd64" else f"istioctl-{patch}-osx-arm64.tar.gz"
    raise MeshError(f"no istioctl release for {system}: install istioctl {patch} yourself")


def ensure_istioctl(patch: str, *, tools_dir: Path = TOOLS_DIR, base_url: str | None = None,
                    fetch: Fetch = fetch_url, system: str | None = None,
                    machine: str | None = None) -> Path:
    """The project-local istioctl of a release, downloaded (and verified) when missing."""
    target = istioctl_path(patch, tools_dir)
    if target.is_file():
        return target
    asset = release_asset(patch, system, machine)
    base = (base_url or os.environ.get("ISTIO_DOWNLOAD_URL") or DOWNLOAD_BASE).rstrip("/")
    url = f"{base}/{patch}/{asset}"
    archive = download_verified(f"istioctl {patch}", url, url + ".sha256", fetch)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = next((m for m in tar.getmembers()
                       if m.isfile() and Path(m.name).name == "istioctl"), None)
        if member is None:
            raise MeshError(f"{asset} has no istioctl binary in it")
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    return install(target, data)


def install_args(operator_file: Path = OPERATOR_FILE,
                 overrides: dict[str, str] | None = None) -> list[str]:
    """``istioctl install`` from the one IstioOperator file, plus ``--set`` overrides.

    Always the whole file: an install with only ``--set`` flags would reinstall the
    default profile and drop the egress gateway and our ingress ports.
    """
    args = ["install", "-y", "-f", str(operator_file)]
    for key, value in (overrides or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


class Istioctl:
    """Run istioctl against one context; output as text, never through a TTY."""

    def __init__(self, path: str, context: str):
        self.path = path
        self.context = context

    def run(self, *args: str, timeout_s: float = 60, ok_codes: tuple[int, ...] = (0,)) -> str:
        command = sh.Command(self.path)
        try:
            result = command(*args, "--context", self.context, _tty_out=False,
                             _timeout=timeout_s, _ok_code=list(ok_codes), _return_cmd=True,
                             _err_to_out=True)
        except sh.TimeoutException:
            raise MeshError(f"istioctl {' '.join(args)} did not finish within {timeout_s:.0f} s") from None
        except sh.ErrorReturnCode as exc:
            out = exc.stdout.decode("utf-8", errors="replace").strip()[-2000:]
            raise MeshError(f"istioctl {' '.join(args)} failed (exit {exc.exit_code}): {out}") from None
        return result.stdout.decode("utf-8", errors="replace")

    def analyze(self, namespace: str) -> str:
        # analyze exits non-zero when it finds errors: that is a finding, not a failure
        return self.run("analyze", "-n", namespace, timeout_s=60, ok_codes=tuple(range(256)))

    def proxy_config(self, what: str, workload: str, namespace: str) -> str:
        return self.run("proxy-config", what, f"deploy/{workload}", "-n", namespace, timeout_s=30)
