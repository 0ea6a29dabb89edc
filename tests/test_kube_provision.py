"""Provisioning (make kind-up / kind-down) below the cluster.

kind, docker and istioctl are replaced by a recording runner that acts on the in-process
fake API server the way the real tools act on a cluster; the istioctl download is served
from memory. What runs for real: the command lines, the idempotency checks, the checksum
check, the namespace label, the sample deployment and rollout waits, the ingress lookup.
"""

import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from bookinfo_labs.kube import istioctl as istioctl_mod
from bookinfo_labs.kube.apply import SAMPLE_LABEL
from bookinfo_labs.kube.context import DEFAULT_CONTEXT, KIND_CLUSTER_NAME
from fakeapi import FakeApiServer
from bookinfo_labs.kube.provision import KIND_CONFIG, Provisioner, RichReporter
from bookinfo_labs.kube.tools import KIND_VERSION, ensure_kind, machine_arch
from bookinfo_labs.samples import for_version, sample_objects
from bookinfo_labs.mesh import MeshError
from bookinfo_labs.versions import VERSIONS, get_version

ISTIO = get_version("1.26")
ARCH = machine_arch()
ROOT = Path(__file__).resolve().parents[1]
OPERATOR = ROOT / "manifests" / "istio" / "istio-operator.yaml"


#: the shape of samples/addons/prometheus.yaml: objects in istio-system, one cluster-wide
PROMETHEUS_ADDON = yaml.safe_dump_all([
    {"apiVersion": "v1", "kind": "ServiceAccount",
     "metadata": {"name": "prometheus", "namespace": "istio-system"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "prometheus"}, "rules": []},
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "prometheus", "namespace": "istio-system"},
     "spec": {"selector": {"app.kubernetes.io/name": "prometheus"},
              "ports": [{"name": "http", "port": 9090, "targetPort": 9090}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "prometheus", "namespace": "istio-system"},
     "spec": {"replicas": 1,
              "selector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
              "template": {"metadata": {"labels": {"app.kubernetes.io/name": "prometheus"}},
                           "spec": {"containers": [{"name": "prometheus-server",
                                                    "image": "prom/prometheus:v3.2.1"}]}}}},
]).encode()


def istioctl_tarball(patch):
    data = b"#!/bin/sh\necho istioctl " + patch.encode() + b"\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("istioctl")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()

#: the shape of samples/addons/jaeger.yaml: its pod opts out of injection; the query API on
#: Service tracing, the Zipkin collector on Service zipkin
JAEGER_ADDON = yaml.safe_dump_all([
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "jaeger", "namespace": "istio-system", "labels": {"app": "jaeger"}},
     "spec": {"selector": {"matchLabels": {"app": "jaeger"}},
              "template": {"metadata": {"labels": {"app": "jaeger",
                                                   "sidecar.istio.io/inject": "false"}},
                           "spec": {"containers": [{
                               "name": "jaeger",
                               "image": "docker.io/jaegertracing/all-in-one:1.67.0"}]}}}},
    *({"apiVersion": "v1", "kind": "Service",
       "metadata": {"name": name, "namespace": "istio-system"},
       "spec": {"selector": {"app": "jaeger"}, "ports": [{"name": port_name, "port": port}]}}
      for name, port_name, port in (("tracing", "http-query", 80),
                                    ("zipkin", "http-query", 9411))),
]).encode()


class Tools:
    """kind, docker and istioctl, acting on the fake API server."""

    def __init__(self, fake, kubeconfig):
        self.fake, self.kubeconfig = fake, kubeconfig
        self.commands = []
        self.argv0 = {}  # tool -> the path it was run from
        self.clusters = []
        self.fetched = []
        self.tarball = istioctl_tarball(ISTIO.patch)
        self.kind = b"#!/bin/sh\necho kind\n"

    def which(self, name):
        return f"/usr/bin/{name}" if name in ("kind", "docker") else None

    def fetch(self, url):
        self.fetched.append(url)
        if url.endswith("/samples/addons/prometheus.yaml"):
            return PROMETHEUS_ADDON
        if url.endswith("/samples/addons/jaeger.yaml"):
            return JAEGER_ADDON
        data = self.kind if "/kind-" in url.rsplit("/", 1)[-1] else self.tarball
        if url.endswith((".sha256", ".sha256sum")):
            name = url.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            return f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()
        return data

    def __call__(self, argv, *, timeout_s, on_line=None):
        tool, args = Path(argv[0]).name, argv[1:]
        self.commands.append([tool, *args])
        self.argv0[tool] = argv[0]
        if on_line:
            on_line(f"running {tool}")
        if tool == "docker":
            return "27.3.1"
        if tool == "kind" and args[:2] == ["get", "clusters"]:
            return "\n".join(self.clusters) or "No kind clusters found."
        if tool == "kind" and args[:2] == ["create", "cluster"]:
            self.clusters.append(args[args.index("--name") + 1])
            self.fake.write_kubeconfig(self.kubeconfig)
            return ""
        if tool == "kind" and args[:2] == ["delete", "cluster"]:
            self.clusters.remove(args[args.index("--name") + 1])
            return ""
        if tool == "istioctl" and args[0] == "install":
            for name in ("istiod", "istio-ingressgateway", "istio-egressgateway"):
                self.fake.add_deployment(name, namespace="istio-system",
                                         labels={"app": name, "istio": name.removeprefix("istio-")},
                                         containers=["discovery" if name == "istiod" else "istio-proxy"],
                                         image_tag=ISTIO.patch, sidecar=False)
            self.fake.put({"apiVersion": "v1", "kind": "Service",
                           "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system"},
                           "spec": {"type": "NodePort",
                                    "ports": [{"name": "http2", "port": 80, "nodePort": 30080}]}})
            return "✔ Installation complete"
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def fake():
    server = FakeApiServer(delete_lag=0).start()
    yield server
    server.stop()


@pytest.fixture
def setup(fake, tmp_path):
    kubeconfig = str(tmp_path / "kubeconfig")
    tools = Tools(fake, kubeconfig)
    out = io.StringIO()

    def provisioner(**kw):
        kw.setdefault("context", None)
        return Provisioner(ISTIO, kubeconfig=kubeconfig, run=tools, which=tools.which,
                           reporter=RichReporter(Console(file=out, width=200)),
                           tools_dir=tmp_path / "tools", fetch=tools.fetch,
                           poll_s=0.01, rollout_timeout_s=5, **kw)

    return provisioner, tools, fake, out


def test_up_from_nothing_then_again_changes_nothing(setup):
    provisioner, tools, fake, out = setup
    assert provisioner().up() == ("127.0.0.1", 30080)
    create = next(c for c in tools.commands if c[:3] == ["kind", "create", "cluster"])
    assert create == ["kind", "create", "cluster", "--name", "bookinfo-labs", "--config",
                      str(KIND_CONFIG), "--image", ISTIO.kind_node_image, "--wait", "180s"]
    install = next(c for c in tools.commands if c[0] == "istioctl")
    assert install == ["istioctl", "install", "-y", "-f", str(OPERATOR), "--context", DEFAULT_CONTEXT]
    kind = f"https://github.com/kubernetes-sigs/kind/releases/download/{KIND_VERSION}/kind-linux-"
    assert tools.fetched == [
        kind + ARCH, kind + ARCH + ".sha256sum",  # kind pinned as CI pins it, verified
        f"https://github.com/istio/istio/releases/download/{ISTIO.patch}/"
        f"istioctl-{ISTIO.patch}-linux-{ARCH}.tar.gz",
        f"https://github.com/istio/istio/releases/download/{ISTIO.patch}/"
        f"istioctl-{ISTIO.patch}-linux-{ARCH}.tar.gz.sha256",
        # the release's Prometheus addon, as the handouts apply it
        f"https://raw.githubusercontent.com/istio/istio/{ISTIO.patch}/samples/addons/prometheus.yaml",
        # and its Jaeger addon, which the tracing lab queries
        f"https://raw.githubusercontent.com/istio/istio/{ISTIO.patch}/samples/addons/jaeger.yaml",
    ]
    prometheus = fake.get_object("apps", "deployments", "istio-system", "prometheus")
    assert prometheus["status"]["availableReplicas"] == 1
    assert fake.get_object("rbac.authorization.k8s.io", "clusterroles", "", "prometheus")
    assert tools.argv0["kind"].endswith(f"/tools/kind-{KIND_VERSION}/kind")
    ns = fake.get_object("", "namespaces", "", "default")
    assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
    patch = fake.requests_to("PATCH", "/api/v1/namespaces/default")[0]
    assert patch.body == {"metadata": {"labels": {"istio-injection": "enabled"}}}
    for name in ("productpage-v1", "reviews-v3", "curl", "fortio-deploy", "httpbin-v1", "httpbin-v2"):
        dep = fake.get_object("apps", "deployments", "default", name)
        assert dep["status"]["availableReplicas"] == 1, name
        assert dep["metadata"]["labels"][SAMPLE_LABEL]
    jaeger = fake.get_object("apps", "deployments", "istio-system", "jaeger")
    assert jaeger["status"]["availableReplicas"] == 1
    assert jaeger["metadata"]["labels"][SAMPLE_LABEL] == "jaeger"
    assert fake.get_object("", "services", "istio-system", "tracing")
    first = out.getvalue()
    assert "created with kindest/node" in first and "downloaded and verified" in first

    # second run: everything is there
    commands, patches = len(tools.commands), len(fake.requests_to("PATCH"))
    assert provisioner().up() == ("127.0.0.1", 30080)
    again = [c for c in tools.commands[commands:]]
    assert all(c[:2] in (["docker", "info"], ["kind", "get"]) for c in again), again
    assert len(fake.requests_to("PATCH")) == patches
    second = out.getvalue()[len(first):]
    assert "already there" in second and "already installed (1.26.0)" in second
    assert "Prometheus addon" in second and "Jaeger addon" in second
    assert second.count("already installed") == 3
    assert second.count("already running") == 4


def test_down_deletes_only_the_labs_cluster(setup):
    provisioner, tools, fake, out = setup
    assert provisioner().down() is False
    tools.clusters.append(KIND_CLUSTER_NAME)
    assert provisioner().down() is True
    assert ["kind", "delete", "cluster", "--name", "bookinfo-labs"] in tools.commands
    with pytest.raises(MeshError, match="only deletes the labs' own kind cluster"):
        provisioner(context="kind-other").down()


def test_a_foreign_context_needs_allow_any_context_and_is_never_created(setup):
    provisioner, tools, fake, out = setup
    with pytest.raises(MeshError, match="--allow-any-context"):
        provisioner(context="prod")
    prod = provisioner(context="prod", allow_any_context=True)
    assert prod.owns_cluster is False
    with pytest.raises(MeshError, match="no cluster reachable at context prod"):
        prod.up()
    assert not [c for c in tools.commands if c[0] == "kind"]


def test_docker_not_running_is_a_clear_error(setup):
    provisioner, tools, fake, out = setup

    def no_daemon(argv, *, timeout_s, on_line=None):
        raise MeshError("`docker info` failed (exit 1):\nCannot connect to the Docker daemon")

    p = provisioner()
    p.run = no_daemon
    with pytest.raises(MeshError, match=r"Docker is not running .*`make kind-up`"):
        p.up()
    assert tools.fetched == []  # no download before Docker is known to run


def test_another_istio_installed_is_not_overwritten(setup):
    provisioner, tools, fake, out = setup
    fake.add_deployment("istiod", namespace="istio-system", containers=["discovery"],
                        image_tag="1.25.5", sidecar=False)
    tools.clusters.append(KIND_CLUSTER_NAME)
    fake.write_kubeconfig(tools.kubeconfig)
    with pytest.raises(MeshError, match=r"Istio 1\.25\.5 is installed .*ISTIO_VERSION=1\.26"):
        provisioner().up()
    assert not [c for c in tools.commands if c[0] == "istioctl"]


# --- istioctl download -------------------------------------------------------------------

def test_istioctl_download_is_verified_and_kept(tmp_path):
    tarball = istioctl_tarball("1.26.0")
    good = hashlib.sha256(tarball).hexdigest()
    served = {}

    def fetch(url):
        served[url] = True
        return tarball if url.endswith(".gz") else f"{good}  x.tar.gz\n".encode()

    path = istioctl_mod.ensure_istioctl("1.26.0", tools_dir=tmp_path, fetch=fetch,
                                        base_url="http://127.0.0.1:1/dl", system="Darwin",
                                        machine="arm64")
    assert path == tmp_path / "istio-1.26.0" / "istioctl"
    assert path.read_bytes().startswith(b"#!/bin/sh") and path.stat().st_mode & 0o111
    assert list(served) == ["http://127.0.0.1:1/dl/1.26.0/istioctl-1.26.0-osx-arm64.tar.gz",
                            "http://127.0.0.1:1/dl/1.26.0/istioctl-1.26.0-osx-arm64.tar.gz.sha256"]
    served.clear()
    assert istioctl_mod.ensure_istioctl("1.26.0", tools_dir=tmp_path, fetch=fetch) == path
    assert not served  # already there: no download
    assert istioctl_mod.find_istioctl("1.26.0", tmp_path) == str(path)


def test_istioctl_checksum_mismatch_installs_nothing(tmp_path):
    def fetch(url):
        return istioctl_tarball("1.26.0") if url.endswith(".gz") else b"0" * 64 + b"  f\n"

    with pytest.raises(MeshError, match="checksum mismatch .* was not installed"):
        istioctl_mod.ensure_istioctl("1.26.0", tools_dir=tmp_path, fetch=fetch)
    assert not (tmp_path / "istio-1.26.0" / "istioctl").exists()


def test_kind_is_the_pinned_release_verified_and_kept(tmp_path):
    binary = b"\x7fELF kind"
    served = []

    def fetch(url):
        served.append(url)
        if url.endswith(".sha256sum"):
            return f"{hashlib.sha256(binary).hexdigest()}  kind-darwin-arm64\n".encode()
        return binary

    path = ensure_kind("v0.29.0", tools_dir=tmp_path, fetch=fetch, system="Darwin", machine="arm64")
    assert path == tmp_path / "kind-v0.29.0" / "kind" and path.read_bytes() == binary
    assert path.stat().st_mode & 0o111
    base = "https://github.com/kubernetes-sigs/kind/releases/download/v0.29.0/kind-darwin-arm64"
    assert served == [base, base + ".sha256sum"]
    assert ensure_kind("v0.29.0", tools_dir=tmp_path, fetch=fetch) == path and len(served) == 2
    with pytest.raises(MeshError, match="checksum mismatch for kind-linux-amd64"):
        ensure_kind("v0.30.0", tools_dir=tmp_path, system="Linux", machine="x86_64",
                    fetch=lambda url: b"0" * 64 if url.endswith("sum") else binary)
    assert not (tmp_path / "kind-v0.30.0" / "kind").exists()


def test_release_assets():
    assert istioctl_mod.release_asset("1.26.0", "Linux", "x86_64") == "istioctl-1.26.0-linux-amd64.tar.gz"
    assert istioctl_mod.release_asset("1.26.0", "Linux", "aarch64") == "istioctl-1.26.0-linux-arm64.tar.gz"
    assert istioctl_mod.release_asset("1.26.0", "Darwin", "x86_64") == "istioctl-1.26.0-osx.tar.gz"
    with pytest.raises(MeshError):
        istioctl_mod.release_asset("1.26.0", "Windows", "x86_64")


# --- the files in the repo agree with each other --------------------------------------------

def test_kind_config_maps_the_operators_node_ports_to_loopback():
    kind = yaml.safe_load(KIND_CONFIG.read_text())
    assert kind["kind"] == "Cluster" and kind["name"] == KIND_CLUSTER_NAME
    assert DEFAULT_CONTEXT == f"kind-{kind['name']}"
    (node,) = kind["nodes"]
    mappings = {m["containerPort"]: m for m in node["extraPortMappings"]}
    operator = yaml.safe_load(OPERATOR.read_text())
    (gateway,) = operator["spec"]["components"]["ingressGateways"]
    ports = {p["name"]: p for p in gateway["k8s"]["service"]["ports"]}
    assert gateway["k8s"]["service"]["type"] == "NodePort"
    for name, port in (("http2", 80), ("https", 443), ("tcp", 31400)):
        assert ports[name]["port"] == port
        mapping = mappings[ports[name]["nodePort"]]
        assert mapping["hostPort"] == mapping["containerPort"]
        assert mapping["listenAddress"] == "127.0.0.1"
    assert ports["status-port"]["port"] == 15021
    patches = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
    assert patches[0]["apiVersion"] == "kubeadm.k8s.io/v1beta3"  # versioned: safe on newer kind
    assert patches[0]["etcd"]["local"]["dataDir"].startswith("/tmp/")


def test_the_operator_file_keeps_the_demo_profile_settings():
    spec = yaml.safe_load(OPERATOR.read_text())["spec"]
    assert spec["profile"] == "demo"
    assert spec["meshConfig"]["accessLogFile"] == "/dev/stdout"
    assert spec["components"]["egressGateways"][0]["enabled"] is True
    args = istioctl_mod.install_args(OPERATOR, {"meshConfig.outboundTrafficPolicy.mode": "REGISTRY_ONLY"})
    assert args == ["install", "-y", "-f", str(OPERATOR),
                    "--set", "meshConfig.outboundTrafficPolicy.mode=REGISTRY_ONLY"]


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_every_table_version_has_node_image_and_sample_images(version):
    istio = get_version(version)
    assert istio.kind_node_image.startswith("kindest/node:v1.")
    images = [c["image"] for _, obj in sample_objects("bookinfo", istio)
              for c in ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers", [])]
    assert images and all(i.endswith(f":{istio.bookinfo_tag}") for i in images)
    assert all(i.startswith(f"{istio.sample_registry}/examples-bookinfo-") for i in images)
    httpbin = {obj["kind"]: obj for _, obj in sample_objects("httpbin", istio)}
    assert httpbin["Service"]["spec"]["ports"][0]["targetPort"] == 8080  # both flavours
    assert istio.client in ("curl", "sleep")
    sample_objects(istio.client, istio)  # the client's manifest exists


def test_httpbin_flavour_follows_the_releases_sample():
    """go-httpbin from 1.24.0 and 1.23.4 (the pinned 1.23.6 ships it); 1.22.8 runs kong/httpbin
    with pipenv + gunicorn on 8080, to which we add --access-logfile - so requests are logged."""
    def container(version):
        dep = next(obj for _, obj in sample_objects("httpbin", get_version(version))
                   if obj["kind"] == "Deployment")
        return dep["spec"]["template"]["spec"]["containers"][0]

    assert container("1.23")["image"] == "docker.io/mccutchen/go-httpbin:v2.15.0"
    assert "command" not in container("1.23")
    old = container("1.22")
    assert old["image"] == "docker.io/kong/httpbin"
    assert old["command"][:5] == ["pipenv", "run", "gunicorn", "-b", "0.0.0.0:8080"]
    assert old["command"][-2:] == ["--access-logfile", "-"]
    assert old["ports"] == [{"containerPort": 8080}]
    assert {"name": "WORKON_HOME", "value": "/tmp"} in old["env"]
    untouched = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
        {"name": "x", "image": "docker.io/library/nginx:1.27"}]}}}}
    assert for_version(untouched, get_version("1.22")) == untouched


def test_a_new_namespace_is_created_labelled_for_injection(setup):
    provisioner, tools, fake, out = setup
    p = provisioner(namespace="labs")
    fake.write_kubeconfig(tools.kubeconfig)
    p.ensure_injection(p._api())
    ns = fake.get_object("", "namespaces", "", "labs")
    assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
    assert ns["metadata"]["labels"][SAMPLE_LABEL] == "namespace"  # never scenario config
    assert "labelled istio-injection=enabled" in out.getvalue()
