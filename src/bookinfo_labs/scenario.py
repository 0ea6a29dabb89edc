"""The scenario contract: what one scenario applied, the traffic it sent, and its cleanup.

Steps stay a sentence and a few lines because the work is here: apply with warnings,
users with their own cookie jars, batches of requests that a later check can observe
again, everything applied removed at the end, and a leak check that fails the scenario
which left config behind.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from .explain import apply_commands, delete_commands, send_command
from .checks import EventuallyPolicy, eventually
from .manifests import Manifest, load_file, parse_text
from .samples import sample_manifests
from .mesh import HttpRequest, HttpResponse, Mesh, ResourceKey

PRODUCTPAGE = "http://productpage:9080"


@dataclass
class Traffic:
    """One batch of identical requests and what came back."""

    request: HttpRequest
    responses: list[HttpResponse]

    @property
    def count(self) -> int:
        return len(self.responses)

    def __repr__(self) -> str:
        # Shown in failure messages: a summary, not megabytes of HTML.
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
        self.error: Exception | None = None  # what a step expected to fail raised

    def _show(self, command: Callable[..., object], *args) -> None:
        """With --explain, print the kubectl/curl equivalent of what the step does."""
        if not self._explain:
            return
        lines = command(*args, self.mesh.namespace)
        for line in [lines] if isinstance(lines, str) else lines:
            self._say(line)

    # -- sample apps -----------------------------------------------------------------
    def deploy(self, sample: str) -> None:
        """Make a sample app and the in-mesh client ready (already running: nothing to do)."""
        for name in (sample, self.client):
            self._show(apply_commands, sample_manifests(name, self.mesh.istio))
            self.mesh.deploy(name)

    # -- configuration ---------------------------------------------------------------
    def apply(self, manifests: list[Manifest]) -> list[ResourceKey]:
        self._show(apply_commands, manifests)
        keys = self.mesh.apply(manifests)
        self.manifests += manifests
        self.applied.update(dict.fromkeys(keys))
        warnings = self.mesh.warnings_for(manifests)
        for warning in warnings:
            self._say(f"Warning: {warning}")
        self.warnings += warnings
        return keys

    def apply_file(self, name: str) -> list[ResourceKey]:
        return self.apply(load_file(name))

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

    def send(self, request: HttpRequest, count: int = 1) -> Traffic:
        self._show(send_command, self.client, request, count)
        self.traffic = Traffic(request, self.mesh.send(self.client, request, count))
        return self.traffic

    def login(self, user: str) -> HttpResponse:
        """Sign in on the product page as a browser would (POST /login, session cookie kept)."""
        request = HttpRequest(
            url=f"{PRODUCTPAGE}/login", method="POST",
            headers=(("Referer", f"{PRODUCTPAGE}/productpage"),),
            data=f"username={user}&passwd=password", cookie_jar=self.jar(user))
        return self.send(request).responses[0]

    def logout(self, user: str) -> HttpResponse:
        request = HttpRequest(url=f"{PRODUCTPAGE}/logout", cookie_jar=self.jar(user),
                              headers=(("Referer", f"{PRODUCTPAGE}/productpage"),))
        return self.send(request).responses[0]

    def open_product_page(self, user: str | None, count: int) -> Traffic:
        return self.send(HttpRequest(url=f"{PRODUCTPAGE}/productpage",
                                     cookie_jar=self.jar(user)), count)

    def expect(self, expected: str, check: Callable[[Traffic], None]) -> Traffic:
        """Check the last traffic; while it fails, send the same batch again (eventually).

        The first observation is the batch the When step already sent; the check must then
        hold ``policy.times`` batches in a row (config may still be propagating on a cluster).
        """
        if self.traffic is None:
            raise AssertionError("no traffic was sent yet: a When step must send requests first")
        pending = [self.traffic]

        def observe() -> Traffic:
            if pending:
                return pending.pop()
            return self.send(self.traffic.request, self.traffic.count)

        return eventually(observe, check, expected=expected, policy=self.policy)

    # -- the contract ----------------------------------------------------------------
    def cleanup(self) -> None:
        """Delete everything this scenario applied (also after a failure)."""
        keys = [k for k in self.applied if k in self.mesh.owned_resources()]
        if keys:
            self.delete(list(reversed(keys)))
        self.applied.clear()

    def leaks(self) -> set[ResourceKey]:
        """Config present now that was not there before the scenario."""
        return self.mesh.owned_resources() - self.baseline
