"""What Istio's proxy bootstrap decides per pod that the local mesh must decide the same way.

Today: which statistics a sidecar exposes. Istio's bootstrap
(``tools/packaging/common/envoy_bootstrap.json``, ``stats_config.stats_matcher``) keeps
only an inclusion list; every other stat, ``cluster.outbound|...`` among them, does not
exist in ``pilot-agent request GET stats``. A pod adds to the list with the annotation

    proxy.istio.io/config: |
      proxyStatsMatcher:
        inclusionPrefixes: ["cluster.outbound"]

(``inclusionSuffixes`` and ``inclusionRegexps`` too), as upstream's fortio-deploy.yaml
does. A local sidecar that exposed everything would let a scenario pass here and read 0
on a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import yaml

from ..mesh import MeshError

PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"

#: the bootstrap's own inclusion list (Istio 1.22-1.28)
DEFAULT_PREFIXES = ("reporter=", "cluster_manager", "listener_manager", "server",
                    "cluster.xds-grpc", "wasm", "component", "istio")
DEFAULT_SUFFIXES = ("rbac.allowed", "rbac.denied", "shadow_allowed", "shadow_denied")
DEFAULT_REGEXPS = (r"vhost\..*\.route\..*",)


@dataclass(frozen=True)
class StatsMatcher:
    """Envoy's ``stats_matcher.inclusion_list``: a stat exists if any matcher matches it."""

    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES
    regexps: tuple[str, ...] = DEFAULT_REGEXPS

    @classmethod
    def for_pod(cls, pod: str, annotations: Mapping[str, str]) -> "StatsMatcher":
        """The bootstrap's list plus what the pod's ``proxyStatsMatcher`` adds."""
        text = annotations.get(PROXY_CONFIG_ANNOTATION)
        if not text:
            return cls()
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise MeshError(f"pod {pod}: annotation {PROXY_CONFIG_ANNOTATION} is not YAML: "
                            f"{exc}") from None
        matcher = (config.get("proxyStatsMatcher") or {}) if isinstance(config, dict) else {}
        try:
            extra = {key: tuple(str(v) for v in matcher.get(key) or ())
                     for key in ("inclusionPrefixes", "inclusionSuffixes", "inclusionRegexps")}
            for pattern in extra["inclusionRegexps"]:
                re.compile(pattern)
        except (TypeError, AttributeError, re.error) as exc:
            raise MeshError(f"pod {pod}: {PROXY_CONFIG_ANNOTATION} proxyStatsMatcher: {exc}; "
                            "expected lists of strings under inclusionPrefixes, "
                            "inclusionSuffixes and inclusionRegexps") from None
        return cls(DEFAULT_PREFIXES + extra["inclusionPrefixes"],
                   DEFAULT_SUFFIXES + extra["inclusionSuffixes"],
                   DEFAULT_REGEXPS + extra["inclusionRegexps"])

    def __call__(self, name: str) -> bool:
        # An Envoy string matcher's regex must match the whole stat name.
        return (name.startswith(self.prefixes) or name.endswith(self.suffixes)
                or any(re.fullmatch(pattern, name) for pattern in self.regexps))
