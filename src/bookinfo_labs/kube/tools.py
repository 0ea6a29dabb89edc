"""The command-line tools provisioning runs, pinned and kept in the project's ``.tools/``.

Each is a release file downloaded next to its published SHA-256 and refused when the
digests differ (istioctl: ``istioctl.py``; kind: here). kind is pinned to the version the
nightly workflow installs (``helm/kind-action`` ``version:``; a test keeps them equal), so
``make kind-up`` on a laptop builds the cluster CI builds.
"""

from __future__ import annotations

import hashlib
import platform
import urllib.request
from pathlib import Path
from typing import Callable

from ..manifests import MANIFESTS_ROOT
from ..mesh import MeshError

TOOLS_DIR = MANIFESTS_ROOT.parent / ".tools"
KIND_VERSION = "v0.29.0"
KIND_DOWNLOAD_BASE = "https://github.com/kubernetes-sigs/kind/releases/download"

Fetch = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (https URL)
        return response.read()


def download_verified(what: str, url: str, checksum_url: str, fetch: Fetch) -> bytes:
    """The file at ``url``, checked against the digest published at ``checksum_url``
    (``<sha256>  <name>``, as ``sha256sum`` prints it)."""
    try:
        data = fetch(url)
        published = fetch(checksum_url).decode("ascii", errors="replace").split()
    except OSError as exc:
        raise MeshError(f"cannot download {what} from {url}: {exc}") from None
    if not published:
        raise MeshError(f"{checksum_url} is empty: cannot verify the download of {what}")
    digest = hashlib.sha256(data).hexdigest()
    if digest.lower() != published[0].lower():
        raise MeshError(f"checksum mismatch for {url.rsplit('/', 1)[-1]}: downloaded {digest}, "
                        f"published {published[0]}; the file was not installed")
    return data


def install(target: Path, data: bytes) -> Path:
    """Write an executable atomically: a half-written tool is never found."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(target)
    return target


def machine_arch(machine: str | None = None) -> str:
    machine = (machine or platform.machine()).lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None:
        raise MeshError(f"no release of the cluster tools for the {machine} architecture")
    return arch


def kind_path(version: str = KIND_VERSION, tools_dir: Path = TOOLS_DIR) -> Path:
    return tools_dir / f"kind-{version}" / "kind"


def ensure_kind(version: str = KIND_VERSION, *, tools_dir: Path = TOOLS_DIR,
                fetch: Fetch = fetch_url, system: str | None = None,
                machine: str | None = None) -> Path:
    """The project-local kind of the pinned release (``kind-linux-amd64`` and its
    ``.sha256sum``), downloaded and verified when missing."""
    target = kind_path(version, tools_dir)
    if target.is_file():
        return target
    system = (system or platform.system()).lower()
    if system not in ("linux", "darwin"):
        raise MeshError(f"no kind release for {system}: install kind {version} yourself")
    url = f"{KIND_DOWNLOAD_BASE}/{version}/kind-{system}-{machine_arch(machine)}"
    return install(target, download_verified(f"kind {version}", url, url + ".sha256sum", fetch))
