"""``--explain``: the kubectl/curl command a learner would type for each step.

Both meshes show the same commands: the local mesh mimics a cluster, so what it does is
what these commands do on a real one. Every string here is meant to be copied into a
shell as it is (bash or zsh, with kubectl pointed at the lab cluster).
"""

from __future__ import annotations

import math
import shlex
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import yaml

from .manifests import MANIFESTS_ROOT, Manifest
from .mesh import HttpRequest, ResourceKey

PROJECT_ROOT = MANIFESTS_ROOT.parent
HEREDOC = "EOF"
#: characters that keep their meaning inside "double quotes" in sh
_DQUOTE_SPECIAL = set('"$`\\!')


def _ns_flag(namespace: str | None) -> list[str]:
    return ["-n", namespace] if namespace and namespace != "default" else []


def _source_path(source: str) -> Path | None:
    if not source or source.startswith("<"):
        return None
    path = Path(source)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    return path if path.is_file() else None


def _document_count(path: Path) -> int:
    try:
        return sum(1 for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    except (OSError, yaml.YAMLError):
        return -1


def _inline_block(verb: list[str], manifests: list[Manifest]) -> str:
    body = yaml.safe_dump_all([m.raw for m in manifests], sort_keys=False).rstrip("\n")
    return f"{shlex.join(verb)} -f - <<'{HEREDOC}'\n{body}\n{HEREDOC}"


def _by_source(manifests: Iterable[Manifest]) -> "OrderedDict[str, list[Manifest]]":
    groups: OrderedDict[str, list[Manifest]] = OrderedDict()
    for m in manifests:
        groups.setdefault(m.source, []).append(m)
    return groups


def apply_commands(manifests: Iterable[Manifest], namespace: str = "default") -> list[str]:
    """``kubectl apply -f <file>`` per file; a heredoc for inline YAML or part of a file."""
    commands = []
    for source, group in _by_source(manifests).items():
        verb = ["kubectl", "apply", *_ns_flag(namespace)]
        path = _source_path(source)
        if path is not None and _document_count(path) == len(group):
            commands.append(shlex.join([*verb, "-f", source]))
        else:
            commands.append(_inline_block(verb, group))
    return commands


def delete_commands(items: Iterable[Manifest | ResourceKey], namespace: str = "default") -> list[str]:
    """``kubectl delete -f <file>`` for manifests, ``kubectl delete <kind> <names>`` for keys."""
    items = list(items)
    manifests = [i for i in items if isinstance(i, Manifest)]
    keys = [i for i in items if isinstance(i, ResourceKey)]
    commands = []
    for source, group in _by_source(manifests).items():
        path = _source_path(source)
        if path is not None and _document_count(path) == len(group):
            commands.append(shlex.join(["kubectl", "delete", *_ns_flag(namespace),
                                        "--ignore-not-found", "-f", source]))
        else:
            keys.extend(ResourceKey(m.kind, m.namespace or namespace, m.name) for m in group)
    by_kind: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
    for key in keys:
        by_kind.setdefault((key.kind, key.namespace), []).append(key.name)
    for (kind, ns), names in by_kind.items():
        commands.append(shlex.join(["kubectl", "delete", *_ns_flag(ns or None),
                                    "--ignore-not-found", kind.lower(), *names]))
    return commands


def _curl_words(request: HttpRequest, jar_dir: str = "/tmp") -> list[str]:
    words = ["curl", *request.curl_args()]
    if request.cookie_jar:
        jar = f"{jar_dir.rstrip('/')}/{request.cookie_jar}.cookies"
        words += ["-b", jar, "-c", jar]
    return [*words, request.url]


def _exec_prefix(workload: str, container: str, namespace: str | None) -> list[str]:
    return ["kubectl", "exec", *_ns_flag(namespace), f"deploy/{workload}", "-c", container, "--"]


def send_command(client: str, request: HttpRequest, count: int = 1,
                 namespace: str = "default") -> str:
    """The curl a learner runs from the client pod; a ``for`` loop for a batch."""
    prefix = shlex.join(_exec_prefix(client, client, namespace))
    curl = shlex.join(_curl_words(request))
    if count == 1:
        return f"{prefix} {curl}"
    loop = f"for i in $(seq {count}); do {curl}; echo; done"
    if not _DQUOTE_SPECIAL.intersection(curl):
        # readable: the single-quoted words stay as they are inside double quotes
        return f'{prefix} sh -c "{loop.replace("$(", chr(92) + "$(")}"'
    return f"{prefix} sh -c {shlex.quote(loop)}"


def load_command(client: str, url: str, *, connections: int, requests: int,
                 qps: float = 0, namespace: str = "default", container: str = "fortio") -> str:
    """The lab's fortio run: ``kubectl exec deploy/fortio-deploy -c fortio -- fortio load ...``."""
    words = ["fortio", "load", "-c", str(connections), "-qps", f"{qps:g}", "-n", str(requests),
             "-loglevel", "Warning", url]
    return shlex.join([*_exec_prefix(client, container, namespace), *words])


def logs_command(workload: str, container: str | None = None, since: float | None = None,
                 namespace: str = "default") -> str:
    """``kubectl logs deploy/<workload> -c <container> --since=<n>s``."""
    words = ["kubectl", "logs", *_ns_flag(namespace), f"deploy/{workload}"]
    if container:
        words += ["-c", container]
    if since is not None:
        words.append(f"--since={max(1, math.ceil(since))}s")
    return shlex.join(words)


def stats_command(workload: str, namespace: str = "default", grep: str | None = None) -> str:
    """The sidecar's Envoy stats, as in the circuit-breaking lab."""
    command = shlex.join([*_exec_prefix(workload, "istio-proxy", namespace),
                          "pilot-agent", "request", "GET", "stats"])
    return f"{command} | grep {shlex.quote(grep)}" if grep else command
