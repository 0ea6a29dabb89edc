"""What changes between Istio releases, in one table.

Expectations that differ by release read from here; the local mesh emulates the selected
release; the kube provisioning installs it. Facts: docs/facts.md#version-table and
docs/facts.md#defaults-by-release.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VERSION = "1.26"


@dataclass(frozen=True)
class IstioVersion:
    version: str  # "1.26"
    patch: str  # the istioctl release installed on kind, "1.26.0"
    kind_node_image: str  # kindest/node image within the release's supported k8s range
    bookinfo_tag: str  # examples-bookinfo-* image tag
    sample_registry: str  # docker.io/istio or registry.istio.io/release
    productpage_ui: str  # "tailwind" (images >= 1.20.1) or "bootstrap" (legacy)
    star_svg_id: bool  # filled-star <svg id="glyphicon glyphicon-star"> (image >= 1.20.2)
    # samples/httpbin/httpbin.yaml: "go" (mccutchen/go-httpbin v2.15.0, from 1.24.0 and
    # backported to 1.23.4) or "python" (kong/httpbin run by pipenv + gunicorn on 8080);
    # both listen on 8080 behind Service port 8000
    httpbin: str
    default_retry_503: bool  # default retry policy retries an upstream 503 (<= 1.23)
    default_tracing: bool  # Zipkin tracer on by default, B3 headers added (<= 1.21)
    mirror_shadow_suffix: bool  # mirrored Host gets "-shadow" (<= 1.27)
    track_remaining_cb: bool  # circuit_breakers.*.remaining_* gauges emitted (<= 1.28)
    stat_delimiter: bool  # alt_stat_name / stat_prefix end in ";" (>= 1.23)
    # the JSON access log's upstream_cluster is %UPSTREAM_CLUSTER_RAW% (>= 1.25; TEXT's is
    # from 1.23, with stat_delimiter), %UPSTREAM_CLUSTER% (the alt_stat_name) before
    json_log_cluster_raw: bool
    client: str  # the in-mesh curl client sample: "sleep" (older docs) or "curl"

    @property
    def minor(self) -> int:
        return int(self.version.split(".")[1])


def _v(version, patch, node, tag, registry="docker.io/istio", **flags) -> IstioVersion:
    minor = int(version.split(".")[1])
    defaults = dict(
        productpage_ui="tailwind" if minor >= 23 else "bootstrap",
        star_svg_id=minor >= 24,
        httpbin="go" if minor >= 23 else "python",
        default_retry_503=minor <= 23,
        default_tracing=minor <= 21,
        mirror_shadow_suffix=minor <= 27,
        track_remaining_cb=minor <= 28,
        stat_delimiter=minor >= 23,
        json_log_cluster_raw=minor >= 25,
        client="curl" if minor >= 24 else "sleep",
    )
    defaults.update(flags)
    return IstioVersion(version, patch, node, tag, registry, **defaults)


# kind node images are chosen inside each release's supported Kubernetes range.
VERSIONS: dict[str, IstioVersion] = {
    v.version: v
    for v in [
        _v("1.22", "1.22.8", "kindest/node:v1.30.13", "1.19.1"),
        _v("1.23", "1.23.6", "kindest/node:v1.30.13", "1.20.1"),
        _v("1.24", "1.24.6", "kindest/node:v1.31.9", "1.20.2"),
        _v("1.25", "1.25.5", "kindest/node:v1.32.5", "1.20.2"),
        _v("1.26", "1.26.0", "kindest/node:v1.32.5", "1.20.3"),
        _v("1.27", "1.27.3", "kindest/node:v1.33.1", "1.20.3"),
        _v("1.28", "1.28.1", "kindest/node:v1.33.1", "1.20.3"),
    ]
}


def get_version(version: str | None) -> IstioVersion:
    """Look up a supported release by "1.26" or "1.26.0"."""
    key = ".".join((version or DEFAULT_VERSION).split(".")[:2])
    try:
        return VERSIONS[key]
    except KeyError:
        supported = ", ".join(VERSIONS)
        raise ValueError(
            f"Istio {version} is not in the version table; supported: {supported}"
        ) from None
