"""``--explain``: the kubectl/curl command a learner would type for each step.

Both meshes show the same commands: the local mesh mimics a cluster, so what it does is
what these commands do on a real one. Every string here is meant to be copied into a
shell as it is (bash or zsh, with kubectl pointed at the lab cluster).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import yaml

from .manifests import MANIFESTS_ROOT, Manifest
from .mesh import HttpRequest, ResourceKey
from .samples import Placement, sample_manifests, sample_paths

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


def placed_sample_commands(sample: str, placement: Placement,
                           namespace: str = "default") -> list[str]:
    """A sample in its own namespace: create and label the namespace, apply the files there
    (the handout's ``kubectl create ns foo`` and ``kubectl apply -n foo``)."""
    commands = [f"kubectl create namespace {placement.namespace}"]
    if placement.sidecar:
        commands.append(f"kubectl label namespace {placement.namespace} istio-injection=enabled")
    root = MANIFESTS_ROOT.parent
    return commands + [shlex.join(["kubectl", "apply", "-n", placement.namespace, "-f",
                                   str(path.relative_to(root))])
                       for path in sample_paths(sample)]


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
    """``kubectl exec`` into a workload; ``<namespace>/<name>`` names one elsewhere."""
    elsewhere, _, name = workload.rpartition("/")
    if elsewhere:
        namespace, workload, container = elsewhere, name, container.rpartition("/")[2]
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


def ingress_commands(mesh: str, port_name: str, request: HttpRequest, count: int = 1,
                     namespace: str = "default", address: tuple[str, int] | None = None
                     ) -> list[str]:
    """How the handout finds the ingress gateway (INGRESS_HOST, and INGRESS_PORT or, for
    the ``https`` port, SECURE_INGRESS_PORT), then the curl from the learner's shell, the
    gateway's address and port spelled as those variables (also in ``--resolve``); a
    ``for`` loop for a batch. ``address`` is the gateway's (host, port) when the URL names
    a host that curl resolves to it."""
    if address is None:
        host, _, port = request.url.split("/")[2].rpartition(":")
        address = (host, int(port))
    variable = "SECURE_INGRESS_PORT" if port_name == "https" else "INGRESS_PORT"
    lines = _ingress_exports(mesh, port_name, f"{address[0]}:{address[1]}", variable)
    host, port = address

    def spelled(word: str) -> str:
        """A word with the gateway's address as the variables, double-quoted if so."""
        if word == request.url:
            scheme, _, rest = word.partition("://")
            authority, slash, path = rest.partition("/")
            name = authority.rpartition(":")[0]
            name = "$INGRESS_HOST" if name == host else name
            return f'"{scheme}://{name}:${variable}{slash}{path}"'
        if word in request.resolve and word.endswith(f":{port}:{host}"):
            return f'"{word[:-len(f"{port}:{host}")]}${variable}:$INGRESS_HOST"'
        return shlex.quote(word)

    curl = " ".join(spelled(w) for w in _curl_words(request))
    return lines + [curl if count == 1 else f"for i in $(seq {count}); do {curl}; echo; done"]


def outbound_policy_command(mode: str, namespace: str = "default") -> list[str]:
    """The mesh-wide outbound policy as the handout sets it (and how to check it)."""
    return [f"istioctl install -y -f manifests/istio/istio-operator.yaml "
            f"--set meshConfig.outboundTrafficPolicy.mode={mode}",
            "kubectl get configmap istio -n istio-system -o jsonpath='{.data.mesh}' "
            "| grep -A1 outboundTrafficPolicy"]


def mesh_config_commands(changes: dict, namespace: str = "default") -> list[str]:
    """Top-level meshConfig fields as the handout sets them (``istioctl install --set
    meshConfig.<field>=<value>``; a field set to None or "" is unset), and how to read the
    ``istio`` ConfigMap's mesh key back."""
    flags = " ".join(f"--set meshConfig.{key}={shlex.quote(_mesh_value(value))}"
                     for key, value in changes.items())
    fields = "\\|".join(changes)
    return [f"istioctl install -y -f manifests/istio/istio-operator.yaml {flags}",
            "kubectl get configmap istio -n istio-system -o jsonpath='{.data.mesh}' "
            f"| grep '{fields}'"]


def _mesh_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def load_command(client: str, url: str, *, connections: int, requests: int,
                 qps: float = 0, namespace: str = "default", container: str = "fortio") -> str:
    """The lab's fortio run: ``kubectl exec deploy/fortio-deploy -c fortio -- fortio load ...``."""
    words = ["fortio", "load", "-c", str(connections), "-qps", f"{qps:g}", "-n", str(requests),
             "-loglevel", "Warning", url]
    return shlex.join([*_exec_prefix(client, container, namespace), *words])


def logs_command(workload: str, container: str | None = None, since: float | None = None,
                 namespace: str = "default") -> str:
    """``kubectl logs deploy/<workload> -c <container> --since=<n>s`` (``<ns>/<workload>``
    for another namespace; the gateways are istio-system's)."""
    namespace, workload = _workload_namespace(workload, namespace)
    words = ["kubectl", "logs", *_ns_flag(namespace), f"deploy/{workload}"]
    if container:
        words += ["-c", container]
    if since is not None:
        words.append(f"--since={max(1, math.ceil(since))}s")
    return shlex.join(words)


def _workload_namespace(workload: str, namespace: str) -> tuple[str, str]:
    other, _, name = workload.rpartition("/")
    if other:
        return other, name
    if workload in ("istio-ingressgateway", "istio-egressgateway"):
        return "istio-system", workload
    return namespace, workload


def stats_command(workload: str, namespace: str = "default", grep: str | None = None) -> str:
    """The sidecar's Envoy stats, as in the circuit-breaking lab."""
    command = shlex.join([*_exec_prefix(workload, "istio-proxy", namespace),
                          "pilot-agent", "request", "GET", "stats"])
    return f"{command} | grep {shlex.quote(grep)}" if grep else command


def proxy_config_command(workload: str, section: str, namespace: str = "default") -> str:
    """``istioctl proxy-config routes|clusters ... -o json``: the sidecar's own config
    (``<namespace>/<workload>`` names one outside the labs' namespace)."""
    elsewhere, _, workload = workload.rpartition("/")
    return shlex.join(["istioctl", "proxy-config", section, f"deploy/{workload}",
                       *_ns_flag(elsewhere or namespace), "-o", "json"])


# -- scenarios and Then steps: what a learner runs to see what a check looks at ---------
#
# A Then step reads the answers of the last batch (or a log, a stat). Its command repeats
# the batch from the client pod and prints what the check reads, one line per request,
# counted with ``sort | uniq -c`` when there are several. The per-request text work runs
# in the pod's shell (busybox has grep, sort, tr, wc); the counting runs on your machine.

TALLY = "sort | uniq -c"


def scenario_heading(feature_name: str, scenario_name: str) -> str:
    """The line that heads a scenario's block in ``--explain`` (a shell comment, one line)."""
    title = " ".join(f"{feature_name}: {scenario_name}".split())
    return f"# ==== {title} ===="


def _sh_c_word(script: str) -> str:
    """``script`` as one word for ``sh -c``, expanded by the pod's shell, not yours.

    Double quotes keep a script readable (``-w '%{http_code}\\n'`` stays as written); ``$``,
    backquotes, double quotes and the backslashes that would escape them are escaped.
    A ``!`` (bash history) or a newline gets the fully quoted single-quote form.
    """
    if "!" in script or "\n" in script:
        return shlex.quote(script)
    return '"' + re.sub(r'[$`"]|\\(?=[$`"\\]|$)', lambda m: "\\" + m.group(0), script) + '"'


def _untagged(url: str) -> str:
    """``url`` without the batch's ``nonce``: a request re-sent to look at its answer must
    not add to the log lines a later step counts for that nonce."""
    base, _, query = url.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("nonce=")]
    return f"{base}?{'&'.join(params)}" if params else base


def _observe_curl(request: HttpRequest, *options: str, jar_dir: str = "/tmp") -> str:
    """The batch's request again, silent (no ``-i``, no progress), with ``options``."""
    args = request.curl_args()
    words = ["curl", "-s", *(args[2:] if args[:2] == ["-sS", "-i"] else args)]
    if request.cookie_jar:
        jar = f"{jar_dir.rstrip('/')}/{request.cookie_jar}.cookies"
        words += ["-b", jar, "-c", jar]
    return shlex.join([*words, *options, _untagged(request.url)])


def _per_request(client: str, batch, curl: str, *, pipe: str = "", tally: str = "",
                 comment: str = "", namespace: str = "default") -> str:
    """``curl`` (then ``pipe``) once per request of ``batch`` (``.request``, ``.count``)
    from the client pod, or from the learner's shell for a batch sent to the ingress
    gateway (``.from_host``); with several requests, ``tally`` counts the lines locally.

    Parallel batches (``request.parallel``) go through ``xargs -P`` when there is no pipe.
    """
    count, parallel = batch.count, batch.request.parallel
    if getattr(batch, "from_host", False):
        piped = f" | {pipe}" if pipe else ""
        command = curl + piped if count == 1 else \
            f"for i in $(seq {count}); do {curl}{piped}; done" + (f" | {tally}" if tally else "")
        return f"{command}  # {comment}" if comment and (count > 1 or not tally) else command
    prefix = shlex.join(_exec_prefix(client, client, namespace))
    if count == 1:
        command = f"{prefix} {curl}" + (f" | {pipe}" if pipe else "")
    else:
        if parallel > 1 and not pipe:
            script = f"seq {count} | xargs -P {parallel} -I{{}} {curl}"
        else:
            script = f"for i in $(seq {count}); do {curl}{f' | {pipe}' if pipe else ''}; done"
        command = f"{prefix} sh -c {_sh_c_word(script)}" + (f" | {tally}" if tally else "")
    return f"{command}  # {comment}" if comment and (count > 1 or not tally) else command


def statuses_command(client: str, batch, namespace: str = "default") -> str:
    """Each answer's status code, counted."""
    curl = _observe_curl(batch.request, "-o", "/dev/null", "-w", "%{http_code}\\n")
    return _per_request(client, batch, curl, tally=TALLY, comment="how many, status",
                        namespace=namespace)


def bodies_command(client: str, batch, namespace: str = "default") -> str:
    """Each answer's body and status, counted (an empty body shows as `` (503)``)."""
    curl = _observe_curl(batch.request, "-w", " (%{http_code})\\n")
    return _per_request(client, batch, curl, tally=TALLY, comment="how many, body (status)",
                        namespace=namespace)


def latencies_command(client: str, batch, namespace: str = "default") -> str:
    """Each answer's status and time in seconds."""
    curl = _observe_curl(batch.request, "-o", "/dev/null", "-w", "%{http_code} %{time_total}\\n")
    return _per_request(client, batch, curl, comment="status, seconds", namespace=namespace)


def versions_command(client: str, batch, namespace: str = "default") -> str:
    """Which reviews version answered each request: the pod name the page ("Reviews
    served by:") or the reviews JSON ("podname") shows, counted."""
    return _per_request(client, batch, _observe_curl(batch.request),
                        pipe="grep -o 'reviews-v[0-9]*' | sort -u", tally=TALLY,
                        comment="how many, reviews version", namespace=namespace)


def _star_pattern(istio) -> str:
    """A filled star on the page (checks/page.py): the glyph id, or on the Tailwind page
    of image 1.20.1 (no id) the filled svg; the closing quote leaves out -star-empty."""
    if istio.productpage_ui == "tailwind" and not istio.star_svg_id:
        return 'viewBox="0 0 20 20" fill="currentColor"'
    return 'glyphicon glyphicon-star"'


def _star_color_pattern(istio) -> str:
    """The wrapper that colours the filled stars (not the red ratings error text)."""
    return 'gap-x-1 text-[a-z]*-500' if istio.productpage_ui == "tailwind" else '<font color="[a-z]*"'


def stars_command(client: str, batch, istio, namespace: str = "default") -> str:
    """Filled stars on each page, counted."""
    return _per_request(client, batch, _observe_curl(batch.request),
                        pipe=f"grep -o {shlex.quote(_star_pattern(istio))} | wc -l", tally=TALLY,
                        comment="how many pages, filled stars on each", namespace=namespace)


def star_colors_command(client: str, batch, istio, with_version: bool = False,
                        namespace: str = "default") -> str:
    """The star colour of each page (and, ``with_version``, the reviews version), counted."""
    patterns = [_star_color_pattern(istio)] + (["reviews-v[0-9]*"] if with_version else [])
    grep = shlex.join(["grep", "-o", *[w for p in patterns for w in ("-e", p)]])
    what = "star colour, reviews version" if with_version else "star colour"
    return _per_request(client, batch, _observe_curl(batch.request),
                        pipe=f"{grep} | sort -u | tr '\\n' ' '; echo", tally=TALLY,
                        comment=f"how many pages, {what} (blank: no stars)", namespace=namespace)


def signed_in_command(client: str, batch, istio, namespace: str = "default") -> str:
    """Who each page shows signed in (the name before "Sign out"), counted."""
    pattern = ('text-gray-50">[^<]*' if istio.productpage_ui == "tailwind"
               else 'padding-left: 5px;">[^<]*')
    return _per_request(client, batch, _observe_curl(batch.request),
                        pipe=f"grep -o {shlex.quote(pattern)} || echo nobody", tally=TALLY,
                        comment="how many pages, signed-in user", namespace=namespace)


def page_text_command(client: str, batch, text: str, namespace: str = "default") -> str:
    """How many lines of each page show ``text``, counted."""
    return _per_request(client, batch, _observe_curl(batch.request),
                        pipe=f"grep -c {shlex.quote(text)}", tally=TALLY,
                        comment="how many pages, lines with the text", namespace=namespace)


def replies_command(client: str, batch, header: str, body: str | None = None,
                    namespace: str = "default") -> str:
    """Status lines, ``header`` and ``body`` (if given) in the answers (headers included),
    counted."""
    curl = _observe_curl(batch.request, "-i", "-w", "\\n")
    grep = shlex.join(["grep", "-i", "-e", "^HTTP/", "-e", f"^{header}:",
                       *(["-e", body] if body is not None else [])])
    return _per_request(client, batch, curl, tally=f"tr -d '\\r' | {grep} | {TALLY}",
                        comment="how many, line", namespace=namespace)


def log_grep_command(workload: str, nonce: str, container: str | None = None,
                     count: bool = True, namespace: str = "default") -> str:
    """The workload's log lines carrying the batch's nonce (``grep -c``: how many)."""
    grep = ["grep", "-c", nonce] if count else ["grep", nonce]
    return f"{logs_command(workload, container, namespace=namespace)} | {shlex.join(grep)}"


def sample_deployment(sample: str, istio) -> str:
    """The Deployment a sample runs as (fortio's is ``fortio-deploy``)."""
    try:
        return next((m.name for m in sample_manifests(sample, istio) if m.kind == "Deployment"),
                    sample)
    except Exception:  # noqa: BLE001 - not a sample (httpbin-v1 is a Deployment already)
        return sample


def stat_command(workload: str, host: str, stat: str, istio, growth: bool = True,
                 namespace: str = "default") -> str:
    """The ``workload`` sidecar's stats of ``host`` named like ``stat``, as the
    circuit-breaking lab reads them; ``growth``: read before and after the traffic."""
    command = stats_command(sample_deployment(workload, istio), namespace=namespace, grep=host)
    command = f"{command} | grep {shlex.quote(stat)}"
    return f"{command}  # before and after: the difference is the growth" if growth else command


def fortio_codes_command(client: str, url: str, istio, *, connections: int, requests: int,
                         namespace: str = "default") -> str:
    """fortio's per-status summary lines (``Code 503 : 4 (20.0 %)``) of the same run."""
    return load_command(sample_deployment(client, istio), url, connections=connections,
                        requests=requests, namespace=namespace) + " | grep '^Code '"


def answers_again_command(client: str, url: str, namespace: str = "default") -> str:
    """How long until ``url`` answers 200 again (run it right after the failing request)."""
    curl = shlex.join([*_exec_prefix(client, client, namespace),
                       "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url])
    return f'time until [ "$({curl})" = 200 ]; do sleep 0.1; done'


def validate_command(source: str, namespace: str = "default") -> str:
    """What the API server says of a manifest, without applying it."""
    words = ["kubectl", "apply", *_ns_flag(namespace), "--dry-run=server"]
    if _source_path(source) is not None:
        return shlex.join([*words, "-f", source])
    return shlex.join([*words, "-f", "-"]) + "  # the YAML on stdin"


def analyze_command(namespace: str = "default") -> str:
    """Istio's analysis of the namespace's config (a missing subset is IST0101)."""
    return shlex.join(["istioctl", "analyze", *_ns_flag(namespace)])


# -- TLS: the scenario's certificates, the secrets made of them, what the gateway served --

def certificates_dir_command(directory: str, namespace: str = "default") -> str:
    """Where the scenario keeps its certificate files (the next commands name them there)."""
    return f"mkdir -p {shlex.quote(directory)} && cd {shlex.quote(directory)}"


def root_certificate_commands(path: str, subject: str, namespace: str = "default") -> list[str]:
    """The handout's root certificate and key: ``<path>.crt`` and ``<path>.key``."""
    folder = str(Path(path).parent)
    return ([f"mkdir -p {shlex.quote(folder)}"] if folder != "." else []) + [shlex.join([
        "openssl", "req", "-x509", "-sha256", "-nodes", "-days", "365", "-newkey", "rsa:2048",
        "-subj", subject, "-keyout", f"{path}.key", "-out", f"{path}.crt"])]


def certificate_commands(path: str, ca: str, subject: str, host: str,
                         namespace: str = "default") -> list[str]:
    """A key and a certificate for ``host`` signed by the CA ``<ca>.crt``/``<ca>.key``
    (the handout's two commands, plus the host as a DNS subjectAltName)."""
    folder = str(Path(path).parent)
    return ([f"mkdir -p {shlex.quote(folder)}"] if folder != "." else []) + [
        shlex.join(["openssl", "req", "-out", f"{path}.csr", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", f"{path}.key", "-subj", subject,
                    "-addext", f"subjectAltName=DNS:{host}"]),
        shlex.join(["openssl", "x509", "-req", "-sha256", "-days", "365", "-CA", f"{ca}.crt",
                    "-CAkey", f"{ca}.key", "-set_serial", "0", "-in", f"{path}.csr",
                    "-out", f"{path}.crt", "-copy_extensions", "copy"])]


def create_secret_command(secret_type: str, name: str, files: Iterable[tuple[str, str]],
                          secret_namespace: str, namespace: str = "default") -> str:
    """``kubectl create secret tls`` (``files``: the key, then the certificate) or
    ``kubectl create secret generic`` with one ``--from-file=<key>=<file>`` each."""
    words = ["kubectl", "create", *_ns_flag(secret_namespace), "secret", secret_type, name]
    if secret_type == "tls":
        words += [f"--{'key' if key == 'tls.key' else 'cert'}={path}" for key, path in files]
    else:
        words += [f"--from-file={key}={path}" for key, path in files]
    return shlex.join(words)


def served_certificate_commands(batch, certificate: str, namespace: str = "default") -> list[str]:
    """The SHA-256 fingerprint of the certificate a TLS server presents for the batch's
    name (``openssl s_client -servername``), and of the expected certificate file."""
    address, port, name = batch.request.target()
    return [
        f"openssl s_client -connect {shlex.quote(f'{address}:{port}')} -servername "
        f"{shlex.quote(name)}"
        " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256  # served",
        shlex.join(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", certificate])
        + "  # expected"]


def exit_codes_command(client: str, batch, namespace: str = "default") -> str:
    """Each request's curl error and exit code (0: an HTTP response arrived)."""
    curl = _observe_curl(batch.request, "-S", "-o", "/dev/null") + '; echo "curl exit $?"'
    return _per_request(client, batch, curl, comment="curl's error and exit code",
                        namespace=namespace)


def secret_files_commands(secret: str, files: dict[str, str], namespace: str = "default"
                          ) -> list[str]:
    """Each key of a Secret written to a file (``kubectl get secret -o jsonpath | base64 -d``)."""
    return [shlex.join(["kubectl", "get", *_ns_flag(namespace), "secret", secret, "-o",
                        "jsonpath={.data." + key.replace(".", "\\.") + "}"])
            + f" | base64 -d > {shlex.quote(path)}" for key, path in files.items()]


def handshake_alert_command(request: HttpRequest, namespace: str = "default") -> str:
    """The request's TLS handshake with openssl, kept open a second to read what the server
    answers: its alert, if it sends one."""
    address, port, name = request.target()
    words = ["openssl", "s_client", "-connect", f"{address}:{port}", "-servername", name,
             "-alpn", "http/1.1"]
    for option, value in (("-CAfile", request.cacert), ("-cert", request.cert),
                          ("-key", request.key)):
        if value is not None:
            words += [option, value]
    return f"sleep 1 | {shlex.join(words)} 2>&1 | grep -i alert"


def _ingress_exports(mesh: str, port_name: str, address: str, variable: str) -> list[str]:
    """The handout's INGRESS_HOST and ``variable`` (the port): on a cluster the gateway
    pod's node and the port's nodePort; locally where the local mesh bound it."""
    if mesh == "kube":
        return [
            "export INGRESS_HOST=$(kubectl get po -l istio=ingressgateway -n istio-system "
            "-o jsonpath='{.items[0].status.hostIP}')",
            f"export {variable}=$(kubectl -n istio-system get service istio-ingressgateway "
            f"-o jsonpath='{{.spec.ports[?(@.name==\"{port_name}\")].nodePort}}')"]
    host, _, port = address.rpartition(":")
    return [f"# the local mesh binds the ingress gateway's {port_name} port on {address}",
            f"export INGRESS_HOST={host} {variable}={port}"]


#: the TCP traffic shifting task's client: the date, one connection, the echo printed
NC_DATE = "(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT"


def tcp_ingress_commands(mesh: str, port_name: str, request, count: int = 1,
                         namespace: str = "default") -> list[str]:
    """The TCP task's ``(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT`` from the
    learner's shell, ``count`` times (``request`` is a tcpclient.TcpRequest)."""
    lines = _ingress_exports(mesh, port_name, f"{request.host}:{request.port}", "TCP_INGRESS_PORT")
    return lines + [NC_DATE if count == 1 else f"for i in $(seq {count}); do {NC_DATE}; done"]


def tcp_replies_command(batch, namespace: str = "default") -> str:
    """The first word of each reply (``one``, ``two``), counted, over the batch's number of
    connections (after tcp_ingress_commands' exports)."""
    return (f"for i in $(seq {batch.count}); do {NC_DATE}; done | cut -d' ' -f1 | {TALLY}"
            "  # how many, first word of the reply")
