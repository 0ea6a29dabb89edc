"""The scenario contract: what one scenario applied, the traffic it sent, and its cleanup.

Steps stay a sentence and a few lines because the work is here: apply with warnings,
users with their own cookie jars, batches of requests that a later check can observe
again, everything applied removed at the end, and a leak check that fails the scenario
which left config behind.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable

from .explain import (apply_commands, delete_commands, ingress_commands, load_command,
                      mesh_config_commands, outbound_policy_command, placed_sample_commands,
                      send_command, tcp_ingress_commands)
from .loadgen import LoadResult
from .checks import EventuallyPolicy, eventually
from .manifests import (Manifest, check_release, load_file, manifest_from_object, parse_text,
                        webhook_warnings)
from .samples import Placement, sample_manifests
from .mesh import HttpRequest, HttpResponse, Mesh, ResourceKey
from .proxystats import StatsChange
from .tcpclient import TcpReply, TcpRequest, send_lines

PRODUCTPAGE = "http://productpage:9080"


@dataclass
class Traffic:
    """One batch of identical requests and what came back."""

    request: HttpRequest | TcpRequest
    #: curl's answers, or for a TcpRequest what came back on each connection
    responses: list[HttpResponse] | list[TcpReply]
    #: when the last response arrived (monotonic clock): timing marks start here, not
    #: after whatever a step reads next
    finished_at: float = 0.0
    started_at: float = 0.0
    #: sent with this machine's curl from outside the mesh (to the ingress gateway), not
    #: from the client pod
    from_host: bool = False
    #: the workload that sent it (``ns/name`` outside the labs' namespace); None: the client
    sender: str | None = None

    @property
    def count(self) -> int:
        return len(self.responses)

    def __repr__(self) -> str:
        # Shown in failure messages: a summary, not megabytes of HTML.
        if isinstance(self.request, TcpRequest):
            replies = Counter(r.first_word or r.error for r in self.responses)
            return f"<{self.count} TCP connections to {self.request.url}: replies {dict(replies)}>"
        statuses = Counter(r.status for r in self.responses)
        errors = Counter(r.error for r in self.responses if r.error)
        text = f"<{self.count} x {self.request.method} {self.request.url}: statuses {dict(statuses)}"
        return text + (f", curl errors {dict(errors)}>" if errors else ">")


class Lab:
    """One scenario's view of the mesh. Created per scenario by the ``lab`` fixture."""

    def __init__(self, mesh: Mesh, *, say: Callable[[str], None] | None = None,
                 explain: bool = False, policy: EventuallyPolicy | None = None):
        self.mesh = mesh
        self.client = mesh.client()
        self.policy = policy or EventuallyPolicy(interval_s=mesh.poll_interval_s)
        self._say = say or (lambda text: None)
        self._explain = explain
        self._id = secrets.token_hex(3)  # keeps cookie jars apart between scenarios
        self.baseline = mesh.owned_resources()
        self.applied: dict[ResourceKey, None] = {}  # ordered set
        self.manifests: list[Manifest] = []  # everything applied, for failure diagnostics
        self.warnings: list[str] = []
        self.traffic: Traffic | None = None
        self._resend: Callable[[], Traffic] | None = None  # sends the last kind of batch again
        self._more: Callable[[int], Traffic] | None = None  # sends n more of that kind
        self.history: list[Traffic] = []  # every batch this scenario sent, oldest first
        self.error: Exception | None = None  # what a step expected to fail raised
        self.nonce: str | None = None  # tags the last tagged batch in upstream logs
        self.trace_id: str | None = None  # the B3 trace id the last traced request carried
        self.load_result: LoadResult | None = None
        self.stats_change: StatsChange | None = None  # a sidecar's stats across the last burst
        self.marks: dict[str, float] = {}  # named moments (monotonic clock)
        #: what the lab report draws for this scenario: plain dicts with a "kind" (a split
        #: check's shares and band, a latency check's samples and band, a service graph)
        self.figures: list[dict] = []
        #: mesh-wide settings this scenario changed, and how to put each back
        self._restores: list[tuple[str, Callable[[], object]]] = []
        self.started = time.monotonic()
        #: called once a command has been shown, before it runs (--workshop waits there)
        self.before_acting: Callable[[], None] = lambda: None

    def explain(self, command: Callable[..., object], *args, **kwargs) -> None:
        """With --explain, print what a learner types to do or see the same by hand:
        ``command(*args, namespace=..., **kwargs)`` gives the line(s) (see explain.py)."""
        self._show(command, *args, **kwargs)

    def _show(self, command: Callable[..., object], *args, **kwargs) -> None:
        """With --explain, print the kubectl/curl equivalent of what the step does."""
        if not self._explain:
            return
        lines = command(*args, **{"namespace": self.mesh.namespace, **kwargs})
        for line in [lines] if isinstance(lines, str) else lines:
            self._say(line)
        self.before_acting()

    # -- sample apps -----------------------------------------------------------------
    def deploy(self, sample: str, placement: Placement | None = None) -> None:
        """Make a sample app and the in-mesh client ready (already running: nothing to do);
        with a ``placement``, the sample alone, in its namespace."""
        if placement is not None:
            self._show(placed_sample_commands, sample, placement)
            self.mesh.deploy(sample, placement)
            return
        for name in (sample, self.client):
            self._show(apply_commands, sample_manifests(name, self.mesh.istio))
            self.mesh.deploy(name)

    # -- configuration ---------------------------------------------------------------
    def apply(self, manifests: list[Manifest], explained: bool = False) -> list[ResourceKey]:
        """Apply manifests; ``explained``: the step already showed how a learner makes
        them (``kubectl create secret ...``), so ``kubectl apply`` is not shown."""
        # a field the selected release's CRDs lack is refused before any mesh sees it
        check_release(manifests, self.mesh.istio)
        if not explained:
            self._show(apply_commands, manifests)
        # Recorded before the apply: one interrupted half-way (Ctrl-C while a cluster's
        # config propagates) has written objects that cleanup must still delete. Cleanup
        # deletes only what exists and is ours, so a refused apply records nothing harmful.
        self.applied.update(dict.fromkeys(
            ResourceKey(m.kind, m.namespace or self.mesh.namespace, m.name) for m in manifests))
        keys = self.mesh.apply(manifests)
        self.manifests += manifests
        self.applied.update(dict.fromkeys(keys))
        warnings = webhook_warnings(manifests) + self.mesh.warnings_for(manifests)
        for warning in warnings:
            self._say(f"Warning: {warning}")
        self.warnings += warnings
        return keys

    def apply_file(self, name: str, namespace: str | None = None) -> list[ResourceKey]:
        """Apply a lab file; ``namespace``: as ``kubectl apply -n <namespace>`` (for the
        objects that do not name their own)."""
        manifests = load_file(name)
        if namespace is None:
            return self.apply(manifests)
        self._show(apply_commands, manifests, namespace=namespace)
        return self.apply([m if m.namespace else manifest_from_object(
            {**m.raw, "metadata": {**m.raw["metadata"], "namespace": namespace}}, m.source, m.line)
            for m in manifests], explained=True)

    def apply_text(self, text: str) -> list[ResourceKey]:
        return self.apply(parse_text(text))

    def delete(self, keys: list[ResourceKey]) -> None:
        self._show(delete_commands, keys)
        self.mesh.delete(keys)
        for key in keys:
            self.applied.pop(key, None)

    def delete_file(self, name: str) -> None:
        namespace = self.mesh.namespace
        keys = [ResourceKey(m.kind, m.namespace or namespace, m.name) for m in load_file(name)]
        self.delete([k for k in keys if k in self.mesh.owned_resources()])

    # -- traffic ---------------------------------------------------------------------
    def jar(self, user: str | None) -> str | None:
        """The cookie jar that holds ``user``'s browser session in this scenario."""
        return f"{user}-{self._id}" if user else None

    @property
    def sender(self) -> str:
        """The workload that sent the last batch (the client pod unless a step named one)."""
        return (self.traffic.sender if self.traffic is not None else None) or self.client

    def send(self, request: HttpRequest, count: int = 1, sender: str | None = None) -> Traffic:
        """``count`` requests from the client pod, or from the ``sender`` workload
        (``<namespace>/<workload>`` outside the labs' namespace)."""
        return self._batch(lambda n: self._send(request, n, sender), count)

    def login(self, user: str, through_ingress: bool = False) -> HttpResponse:
        """Sign in on the product page as a browser would (POST /login, session cookie kept),
        from the client pod or, ``through_ingress``, from outside through the gateway."""
        request = HttpRequest(
            url="/login", method="POST", headers=(("Referer", f"{PRODUCTPAGE}/productpage"),),
            data=f"username={user}&passwd=password", cookie_jar=self.jar(user))
        return self._page(request, through_ingress)

    def logout(self, user: str, through_ingress: bool = False) -> HttpResponse:
        request = HttpRequest(url="/logout", cookie_jar=self.jar(user),
                              headers=(("Referer", f"{PRODUCTPAGE}/productpage"),))
        return self._page(request, through_ingress)

    def _page(self, request: HttpRequest, through_ingress: bool) -> HttpResponse:
        if through_ingress:
            return self.send_through_ingress(request).responses[0]
        return self.send(replace(request, url=PRODUCTPAGE + request.url)).responses[0]

    def open_product_page(self, user: str | None, count: int) -> Traffic:
        return self.send(HttpRequest(url=f"{PRODUCTPAGE}/productpage",
                                     cookie_jar=self.jar(user)), count)

    def send_through_ingress(self, request: HttpRequest, count: int = 1,
                             port_name: str = "http2", host: str | None = None,
                             scheme: str = "http") -> Traffic:
        """Requests from outside the mesh to the ingress gateway, the URL being a path: the
        handout's ``curl -H "Host: <host>" http://$INGRESS_HOST:$INGRESS_PORT<path>``. With
        ``host`` the URL names it and curl resolves it to the gateway (``--resolve``), so it
        is also the TLS SNI: ``curl --resolve "<host>:$SECURE_INGRESS_PORT:$INGRESS_HOST"
        https://<host>:$SECURE_INGRESS_PORT<path>``."""
        address, port = self.mesh.ingress_address(port_name)
        if host is None:
            request = replace(request, url=f"{scheme}://{address}:{port}{request.url}")
        else:
            request = replace(request, url=f"{scheme}://{host}:{port}{request.url}",
                              resolve=(*request.resolve, f"{host}:{port}:{address}"))
        return self._batch(lambda n: self._send_from_host(request, n, port_name,
                                                          (address, port)), count)

    def _send_from_host(self, request: HttpRequest, count: int, port_name: str,
                        address: tuple[str, int]) -> Traffic:
        self._show(ingress_commands, self.mesh.name, port_name, request, count, address=address)
        started = time.monotonic()
        responses = self.mesh.send_from_host(request, count)
        self.traffic = Traffic(request, responses, finished_at=time.monotonic(),
                               started_at=started, from_host=True)
        return self.traffic

    def send_lines_through_ingress(self, count: int, port_name: str = "tcp") -> Traffic:
        """The TCP task's ``(date; sleep 1) | nc $INGRESS_HOST $TCP_INGRESS_PORT``, ``count``
        times from this machine: each a new connection to the ingress gateway's
        ``port_name`` port that sends the date and reads back the echo."""
        host, port = self.mesh.ingress_address(port_name)

        def send(count: int) -> Traffic:
            request = TcpRequest(host, port, time.strftime("%a %b %d %H:%M:%S UTC %Y",
                                                           time.gmtime()))
            self._show(tcp_ingress_commands, self.mesh.name, port_name, request, count)
            started = time.monotonic()
            replies = send_lines(request, count)
            self.traffic = Traffic(request, replies, finished_at=time.monotonic(),
                                   started_at=started, from_host=True)
            return self.traffic

        return self._batch(send, count)

    def send_tagged(self, request: HttpRequest, count: int) -> Traffic:
        """A batch whose URL carries a fresh nonce, so upstream logs show where it went.

        A re-send (``expect``) draws a new nonce and a new stats baseline, so the steps that
        count log lines or counters count the last batch only, never the sum of re-sends.
        """
        def tagged(count: int) -> Traffic:
            self.nonce = secrets.token_hex(8)
            separator = "&" if "?" in request.url else "?"
            url = f"{request.url}{separator}nonce={self.nonce}"
            return self._counting_stats(lambda: self._send(replace(request, url=url), count))

        return self._batch(tagged, count)

    def send_traced(self, request: HttpRequest) -> Traffic:
        """One request that starts a trace of its own: a fresh B3 trace id and span id, and
        no sampling decision (the sidecars' sampling decides); a re-send (``expect``) draws
        a new trace id."""
        def traced(count: int) -> Traffic:  # one request per batch: one trace id each
            self.trace_id = secrets.token_hex(16)
            headers = (*request.headers, ("x-b3-traceid", self.trace_id),
                       ("x-b3-spanid", secrets.token_hex(8)))
            return self._send(replace(request, headers=headers), count)

        return self._batch(traced, 1)

    def send_counting_stats(self, request: HttpRequest, count: int = 1) -> Traffic:
        """``send``, with the client sidecar's stats read before and after (``stats_change``)."""
        return self._batch(lambda n: self._counting_stats(lambda: self._send(request, n)), count)

    def _batch(self, send: Callable[[int], Traffic], count: int) -> Traffic:
        """Send a batch of ``count``, remembering how, so ``expect`` can send the same kind of
        batch again and a sequential check can send more of it (``send_more``)."""
        def recorded(n: int) -> Traffic:
            traffic = send(n)
            self.history.append(traffic)
            return traffic

        self._resend = lambda: recorded(count)
        self._more = recorded
        return recorded(count)

    def send_more(self, count: int) -> Traffic:
        """``count`` more requests of the kind the last batch sent (a new batch: a tagged one
        gets its own nonce). --explain does not repeat the command: the check says how
        many it sent."""
        if self._more is None:
            raise AssertionError("no traffic was sent yet: a When step must send requests first")
        return self._quietly(lambda: self._more(count))

    def _quietly(self, send: Callable[[], Traffic]) -> Traffic:
        """Send again without --explain repeating the command: a re-send is the check's
        own doing, not a step of the handout."""
        quiet, self._explain = self._explain, False
        try:
            return send()
        finally:
            self._explain = quiet

    def _send(self, request: HttpRequest, count: int, sender: str | None = None) -> Traffic:
        self._show(send_command, sender or self.client, request, count)
        started = time.monotonic()
        responses = self.mesh.send(sender or self.client, request, count)
        self.traffic = Traffic(request, responses, finished_at=time.monotonic(), started_at=started,
                               sender=sender)
        return self.traffic

    def _counting_stats(self, send: Callable[[], Traffic]) -> Traffic:
        before = self.mesh.proxy_stats(self.client)
        traffic = send()
        self.stats_change = StatsChange(self.client, before, self.mesh.proxy_stats(self.client))
        return traffic

    def seconds_since_start(self) -> float:
        return time.monotonic() - self.started

    def tagged_in_log(self, workload: str, container: str | None = None) -> list[str]:
        """The log lines of ``workload`` that carry the last nonce."""
        if self.nonce is None:
            raise AssertionError("no tagged requests were sent in this scenario")
        since = self.seconds_since_start() + 1
        return [line for line in self.mesh.logs(workload, since_s=since, container=container)
                if self.nonce in line]

    def load(self, url: str, *, connections: int, requests: int, qps: float = 0.0,
             client: str = "fortio") -> LoadResult:
        """A fortio load; the fortio sidecar's stats are read before and after it."""
        if self._explain:  # the sample's Deployment (fortio's is "fortio-deploy")
            deployment = next((m.name for m in sample_manifests(client, self.mesh.istio)
                               if m.kind == "Deployment"), client)
            self._show(load_command, deployment, url, connections=connections,
                       requests=requests, qps=qps)
        before = self.mesh.proxy_stats(client)
        self.load_result = self.mesh.load(client, url, connections=connections,
                                          requests=requests, qps=qps)
        self.stats_change = StatsChange(client, before, self.mesh.proxy_stats(client))
        for line in self.load_result.code_lines():
            self._say(line)
        return self.load_result

    def record_figure(self, kind: str, **data) -> None:
        """Keep what a check saw for the lab report's page (``kind``: "split", "latency",
        "graph"); the data must be JSON-serialisable."""
        self.figures.append({"kind": kind, **data})

    def mark(self, name: str, at: float | None = None) -> None:
        """Remember a moment (now, or ``at`` on the monotonic clock) under ``name``."""
        self.marks[name] = time.monotonic() if at is None else at

    def expect(self, expected: str, check: Callable[[Traffic], None],
               times: int | None = None, timeout_s: float | None = None,
               max_observations: int | None = None) -> Traffic:
        """Check the last traffic; while it fails, send the same batch again (eventually).

        The first observation is the batch the When step already sent; the check must then
        hold ``policy.times`` batches in a row (config may still be propagating on a cluster),
        or ``times`` (a check that itself waits for the batch's effects may need only one,
        and a ``timeout_s`` that leaves room for more than one such wait).
        A re-send repeats the When step's kind of batch: a tagged one gets a fresh nonce.
        """
        if self.traffic is None or self._resend is None:
            raise AssertionError("no traffic was sent yet: a When step must send requests first")
        pending = [self.traffic]

        def observe() -> Traffic:
            return pending.pop() if pending else self._quietly(self._resend)

        return eventually(observe, check, expected=expected, times=times, timeout_s=timeout_s,
                          policy=self.policy, max_observations=max_observations)

    def diagnostics(self) -> str:
        """What bears on a failure: what this scenario applied, the mesh's view of it, the
        proxy's log of the last batch (from a second before it started)."""
        since = None if self.traffic is None else time.monotonic() - self.traffic.started_at + 1
        return self.mesh.diagnostics(self.manifests, since_s=since, client=self.sender)

    # -- the contract ----------------------------------------------------------------
    def set_outbound_traffic_policy(self, mode: str) -> None:
        """Change the mesh-wide outbound traffic policy; cleanup puts the previous one back."""
        self._show(outbound_policy_command, mode)
        previous = self.mesh.set_outbound_traffic_policy(mode)
        if not any(name == "outbound policy" for name, _ in self._restores):
            self._restores.append(("outbound policy",
                                   lambda: self.mesh.set_outbound_traffic_policy(previous)))

    def scale(self, workload: str, replicas: int) -> None:
        """``kubectl scale``; cleanup puts the replicas back as the scenario found them."""
        previous = self.mesh.scale(workload, replicas)
        name = f"replicas of {workload}"
        if not any(n == name for n, _ in self._restores):
            self._restores.append((name, lambda: self.mesh.scale(workload, previous)))

    def set_mesh_config(self, changes: dict[str, Any]) -> None:
        """Change top-level fields of the mesh config; cleanup puts each field back as the
        scenario found it (the first change of a field remembers it)."""
        self._show(mesh_config_commands, changes)
        previous = self.mesh.set_mesh_config(changes)
        for key, value in previous.items():
            name = f"meshConfig.{key}"
            if not any(n == name for n, _ in self._restores):
                self._restores.append((name, lambda k=key, v=value: self.mesh.set_mesh_config(
                    {k: v})))

    def cleanup(self) -> None:
        """Delete everything this scenario applied and put back the mesh-wide settings it
        changed (also after a failure)."""
        try:
            keys = [k for k in self.applied if k in self.mesh.owned_resources()]
            if keys:
                self.delete(list(reversed(keys)))
            self.applied.clear()
        finally:
            while self._restores:
                _, restore = self._restores.pop()
                restore()

    def leaks(self) -> set[ResourceKey]:
        """Config present now that was not there before the scenario."""
        return self.mesh.owned_resources() - self.baseline

