"""EnvoyFilter and rate limit steps: what a limit lets through, the proxy's own filters,
and what the local mesh says about a patch.

A limit is state: a token bucket in the proxy (local) or a count per fixed window in the
rate limit service (global). A check is re-sent while it fails and must then hold
several batches in a row (``lab.expect``), and every re-sent request spends the limit
too; so the check reads all the requests since the When step's batch, in order. It
relies on no refill meanwhile: Envoy's token bucket (1.32 on) refills continuously,
``tokens_per_fill`` per ``fill_interval``, and the labs' buckets get one token back every
15 s at the fastest (4 a minute), while a check's batches all come within a few seconds;
a fixed window must not end meanwhile (``the current minute has at least N seconds
left``).
"""

import time

from pytest_bdd import given, parsers, then

from bookinfo_labs import explain
from bookinfo_labs.checks import eventually
from bookinfo_labs.checks.eventually import EventuallyPolicy
from bookinfo_labs.proxyconfig import http_filters

#: how long one minute window lasts (envoyproxy/ratelimit: windows start at multiples of
#: the unit since the Unix epoch, on the service's clock, which is this machine's or its
#: kind nodes')
_WINDOW_S = 60


@given(parsers.re(r"the current minute has at least (?P<seconds>\d+) seconds left"),
       converters={"seconds": int})
def minute_has_time_left(lab, seconds):
    """Waits for the next minute when this one is nearly over, so the scenario's batches
    (well under a second each) all fall in one fixed window of the rate limit service."""
    def check(left: float) -> None:
        assert left >= seconds, f"{left:.1f} s left in this minute"

    eventually(lambda: _WINDOW_S - time.time() % _WINDOW_S, check,
               expected=f"at least {seconds} s left in the current minute",
               policy=EventuallyPolicy(times=1, timeout_s=seconds + 5, interval_s=0.2))


@then(parsers.re(r"the first (?:(?P<allowed>\d+) )?(?:requests? )?gets? 200 and the rest "
                 r"(?P<status>\d+)"), converters={"status": int})
def limit_lets_through(lab, allowed, status):
    """The statuses of every request since the batch the When step sent, in order, are
    ``allowed`` 200s and then only ``status``: re-sent batches keep spending the limit.

    The limit must be in the proxy's config before the batch (a Given step checks it: on
    a cluster config arrives in its own time). The very first answer may still come from
    a config before: a proxy sends it on a connection opened earlier, which the previous
    listener at the other end serves once more and then closes (pilot-agent's
    --drain-strategy immediate). So it may have any status; if the old config was the
    limiter's own, it did not count (the rest is the whole sequence), else the limiter
    counted it as let through (its place is a 200's). A limit one higher than the one
    configured would pass when the first answer is a 200 from before the limiter.
    """
    allowed = int(allowed or 1)
    lab.explain(explain.statuses_command, lab.client, lab.traffic)
    record: list[int] = []  # every status since the When step's batch

    def check(traffic):
        record.extend(r.status for r in traffic.responses)
        assert set(record[1:]) <= {200, status}, f"statuses in order: {record}"
        let_through = [s != status for s in record]
        expected = [True] * allowed + [False] * (len(record) - allowed)
        assert let_through == expected or let_through[1:] == expected[:-1], (
            f"statuses since the first batch, in order: {record}")

    lab.expect(f"{allowed} x 200, then only {status}", check)


@given(parsers.re(r"the (?P<workload>client's|[\w-]+) proxy runs \"(?P<first>[\w.]+)\" before "
                  r"\"(?P<second>[\w.]+)\" on its (?P<direction>inbound|outbound) port "
                  r"(?P<port>\d+)"), converters={"port": int})
@then(parsers.re(r"the (?P<workload>client's|[\w-]+) proxy runs \"(?P<first>[\w.]+)\" before "
                 r"\"(?P<second>[\w.]+)\" on its (?P<direction>inbound|outbound) port "
                 r"(?P<port>\d+)"), converters={"port": int})
def proxy_runs_filter_before(lab, workload, first, second, direction, port):
    """Every connection manager of the port has both filters, in this order (as a Given:
    the config has reached the proxy)."""
    workload = lab.client if workload == "client's" else workload
    lab.explain(explain.proxy_config_command, workload, "listeners")

    def check(chains):
        assert chains, f"no connection manager on {direction} port {port}"
        for names in chains:
            assert first in names and second in names and \
                names.index(first) < names.index(second), f"HTTP filters: {names}"

    eventually(lambda: http_filters(lab.mesh.proxy_config(workload, "listeners"),
                                    direction.upper(), port), check,
               expected=f"{first} before {second}", policy=lab.policy)


@then(parsers.re(r"the (?P<workload>client's|[\w-]+) proxy has no \"(?P<name>[\w.]+)\" on its "
                 r"(?P<direction>inbound|outbound) port (?P<port>\d+)"),
      converters={"port": int})
def proxy_lacks_filter(lab, workload, name, direction, port):
    workload = lab.client if workload == "client's" else workload
    lab.explain(explain.proxy_config_command, workload, "listeners")

    def check(chains):
        assert chains, f"no connection manager on {direction} port {port}"
        assert not any(name in names for names in chains), f"HTTP filters: {chains}"

    eventually(lambda: http_filters(lab.mesh.proxy_config(workload, "listeners"),
                                    direction.upper(), port), check,
               expected=f"no {name}", policy=lab.policy)


@then(parsers.re(r"applying it warned that patch (?P<index>\d+) of EnvoyFilter "
                 r"(?P<name>[\w./-]+) matches nothing"), converters={"index": int})
def warned_patch_matches_nothing(lab, index, name):
    """The local mesh's own warning (istioctl analyze has no such check)."""
    lab.explain(explain.analyze_command)
    wanted = f"spec.configPatches[{index}]: matches nothing"
    quoted = f'EnvoyFilter "{name.rpartition("/")[2]}"'
    assert any(quoted in w and wanted in w for w in lab.warnings), (
        f"expected a warning that {wanted!r} for {name}; warnings were: "
        f"{lab.warnings or 'none'}")


@then(parsers.re(r'the proxies rejected it, and the error names EnvoyFilter "(?P<name>[^"]+)"'))
def proxies_rejected(lab, name):
    """The apply failed with Envoy's reason (a NACK), naming the EnvoyFilter whose patch made
    the rejected resource; the previous config is back."""
    applied = sorted({m.source for m in lab.manifests})
    assert lab.error is not None, f"no error: the apply succeeded (applied so far: {applied})"
    lab.explain(explain.validate_command, lab.error.source)
    text = str(lab.error)
    assert "rejected" in text and f"EnvoyFilter {name}" in text, f"the error was: {text}"
    print(f"rejected as expected: {text}")

