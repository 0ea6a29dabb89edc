"""``make bench``: the local mesh's speed and memory, measured in one run, as ratios.

- start: ``LocalMesh.start`` + Bookinfo + the client, every sidecar's config ACKed;
- Istio's own benchmark setting: a fixed 1000 requests per second over 16 connections to
  httpbin for 10 s, straight to the app versus through the client's and the server's
  sidecars: the latency the two sidecars add at p50, p90 and p99, and the sidecars' CPU
  per 1000 requests per second (from /proc). The load generator is Debian's ``hey``
  (a Go program outside the mesh's Python process); the rate it kept is printed, so a
  generator that fell behind is visible;
- as fast as it goes at 1, 8 and 64 connections, straight versus through the sidecars;
- ``/productpage`` through the client's sidecar versus straight to the productpage app;
- the memory of the Envoys (PSS from /proc, shared binary pages split between them);
- the split checks: for each share the features check, the exact mean requests of one
  sequential test when the split is right and when it is 10 points off, beside the fixed
  sample that would meet the same bounds; and one real 50/50 check of the reviews versions
  (requests and seconds) through the client's sidecar.

Its last line: ``bench: added p90 at 1000 rps = <ms> ms; sidecar/straight throughput at 8
connections = <ratio>``. Nothing here is an assertion: figures go in the closing notes.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from collections import Counter

from .checks.backends import reviews_version
from .checks.eventually import EventuallyPolicy
from .checks.sequential import BATCH, RESOLUTION, design, operating_characteristic, step_bounds
from .checks.splits import expect_split
from .checks.stats import binomial_band, false_failure_probability
from .local import LocalMesh
from .manifests import load_file
from .scenario import Lab
from .local.pilot import listen_port
from .manifests import parse_text
from .versions import get_version

ROUTE_TO_V1 = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http: [{route: [{destination: {host: httpbin, subset: v1}}]}]
"""
_TICKS = os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hey(url: str, *, seconds: float | None = None, requests: int | None = None,
        connections: int, rate: float = 0.0, host: str | None = None) -> dict[str, float]:
    """One hey run: requests per second kept, and latency percentiles (seconds)."""
    argv = ["hey", "-c", str(connections), "-o", "csv", "-disable-compression"]
    argv += ["-z", f"{seconds:g}s"] if seconds else ["-n", str(requests)]
    if rate:
        argv += ["-q", f"{rate / connections:g}"]  # hey's -q is per worker
    if host:
        argv += ["-host", host]
    started = time.perf_counter()
    done = subprocess.run([*argv, url], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    latencies = [float(r["response-time"]) for r in rows]
    failed = sum(1 for r in rows if r.get("status-code") != "200")
    if not latencies or failed:
        raise SystemExit(f"bench: hey against {url}: {len(latencies)} answers, {failed} not 200")
    return {"rps": len(latencies) / wall, "p50": _percentile(latencies, 0.5),
            "p90": _percentile(latencies, 0.9), "p99": _percentile(latencies, 0.99)}


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def pss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fixed_sample(p0: float, alpha: float, beta: float) -> int:
    """The smallest n whose exact band at ``alpha`` passes each neighbour ``RESOLUTION``
    away with probability at most ``beta``: a fixed-size test meeting the same bounds."""
    def meets(n: int) -> bool:
        band = binomial_band(n, p0, alpha)
        return all(1 - false_failure_probability(n, q, band) <= beta
                   for q in (p0 - RESOLUTION, p0 + RESOLUTION) if 0 < q < 1)
    n = 50
    while not meets(n):
        n += 50
    return n


def split_costs(times: int = 3) -> list[tuple[float, float, float, int]]:
    """Per share: (share, mean requests right, mean requests 10 points off, fixed n)."""
    bounds = step_bounds(times)
    rows = []
    for share in (0.5, 0.2, 0.1):
        d = design(share, bounds.alpha, bounds.beta)
        off = max(operating_characteristic(d, q)[2] for q in d.neighbours)
        rows.append((share, d.expected_requests, off, fixed_sample(share, bounds.alpha,
                                                                   bounds.beta)))
    return rows


def split_check_seconds(mesh: LocalMesh) -> tuple[int, float]:
    """One 50/50 reviews check as traffic_shifting.feature runs it: (requests, seconds)."""
    lab = Lab(mesh, say=lambda text: None, policy=EventuallyPolicy(interval_s=0.0))
    try:
        lab.apply_file("destination-rule-all.yaml")
        lab.apply(load_file("virtual-service-reviews-50-v3.yaml"))
        sent: list[int] = []

        def versions(traffic) -> Counter:  # every batch the check looks at comes here
            sent.append(traffic.count)
            return Counter(reviews_version(r) or "unknown" for r in traffic.responses)

        started = time.perf_counter()
        lab.open_product_page(None, BATCH)
        expect_split(lab, "reviews split v1 50% and v3 50%", versions, {"v1": 50, "v3": 50},
                     say=lambda text: None)
        return sum(sent), time.perf_counter() - started
    finally:
        lab.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="the fixed-rate runs")
    parser.add_argument("--burst-seconds", type=float, default=5.0, help="the as-fast runs")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        raise SystemExit("bench: needs hey (Debian's package): scripts/ensure-tools.sh bench")

    started = time.perf_counter()
    mesh = LocalMesh.start(get_version(None))
    mesh.deploy("bookinfo")
    mesh.deploy(mesh.client())
    start_s = time.perf_counter() - started
    try:
        mesh.deploy("httpbin")
        mesh.deploy("fortio")
        mesh.apply(parse_text(ROUTE_TO_V1))
        pod = lambda name: mesh.registry.workload_pods(name, mesh.namespace)[0]  # noqa: E731
        fortio, httpbin, client, productpage = (pod("fortio"), pod("httpbin-v1"),
                                                pod(mesh.client()), pod("productpage-v1"))
        straight = f"http://{httpbin.app_ip}:{listen_port(8080)}/get"
        meshed = f"http://{fortio.outbound_ip}:{listen_port(8000)}/get"
        sidecars = [fortio.sidecar.process.pid, httpbin.sidecar.process.pid]
        hey(straight, requests=200, connections=4)  # warm both paths
        hey(meshed, requests=200, connections=4, host="httpbin:8000")

        fixed_straight = hey(straight, seconds=args.seconds, connections=16, rate=1000)
        cpu_before = cpu_seconds(sidecars)
        fixed_meshed = hey(meshed, seconds=args.seconds, connections=16, rate=1000,
                           host="httpbin:8000")
        cpu = (cpu_seconds(sidecars) - cpu_before) / args.seconds / (fixed_meshed["rps"] / 1000)

        bursts = [(c, hey(straight, seconds=args.burst_seconds, connections=c),
                   hey(meshed, seconds=args.burst_seconds, connections=c, host="httpbin:8000"))
                  for c in (1, 8, 64)]
        page_straight = hey(f"http://{productpage.app_ip}:{listen_port(9080)}/productpage",
                            requests=400, connections=1)
        page_meshed = hey(f"http://{client.outbound_ip}:{listen_port(9080)}/productpage",
                          requests=400, connections=1, host="productpage:9080")
        memory = {p.name: pss_mib(p.sidecar.process.pid) for p in mesh.registry.pods}
        split_requests, split_s = split_check_seconds(mesh)
    finally:
        mesh.close()

    print(f"Envoy {mesh.envoy_version}, {os.cpu_count()} cores")
    print(f"local mesh start (Bookinfo + client, every sidecar ACKed): {start_s:.2f} s")
    print(f"fixed 1000 req/s over 16 connections for {args.seconds:g} s to httpbin /get:")
    print(f"  {'path':<28} {'kept req/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for name, row in (("straight to the app", fixed_straight),
                      ("through both sidecars", fixed_meshed)):
        print(f"  {name:<28} {row['rps']:>10.0f} {row['p50'] * 1e3:>8.2f} {row['p90'] * 1e3:>8.2f} "
              f"{row['p99'] * 1e3:>8.2f}")
    added = {q: (fixed_meshed[q] - fixed_straight[q]) * 1e3 for q in ("p50", "p90", "p99")}
    print(f"  added by the two sidecars: p50 {added['p50']:.2f} ms, p90 {added['p90']:.2f} ms, "
          f"p99 {added['p99']:.2f} ms (Istio publishes 2.65 ms at p90)")
    print(f"  the two sidecars' CPU: {cpu:.3f} cores per 1000 req/s (Istio publishes 0.35 vCPU)")
    print("as fast as it goes, httpbin /get:")
    print(f"  {'connections':>11} {'straight req/s':>15} {'sidecars req/s':>15} {'ratio':>6}"
          f" {'straight p99 ms':>16} {'sidecars p99 ms':>16}")
    for connections, direct, through in bursts:
        print(f"  {connections:>11} {direct['rps']:>15.0f} {through['rps']:>15.0f} "
              f"{through['rps'] / direct['rps']:>6.2f} {direct['p99'] * 1e3:>16.2f} "
              f"{through['p99'] * 1e3:>16.2f}")
    print("/productpage, 400 sequential requests (productpage calls details, reviews, ratings "
          "through its sidecar either way):")
    for name, row in (("straight to the productpage app", page_straight),
                      ("through the client's sidecar", page_meshed)):
        print(f"  {name:<34} {row['rps']:>8.1f} req/s  p50 {row['p50'] * 1e3:.2f} ms  "
              f"p99 {row['p99'] * 1e3:.2f} ms")
    total = sum(memory.values())
    print(f"Envoy memory (PSS): {total:.1f} MiB for {len(memory)} sidecars, "
          f"{total / len(memory):.1f} MiB each on average (Istio publishes 40 MB per proxy)")
    print("split checks (3 passing tests in a row; false failure <= 1e-6, a split 10 points "
          "off passes <= 1e-3 per assertion; exact):")
    print(f"  {'share':>6} {'mean requests, right':>21} {'10 points off':>14} "
          f"{'fixed sample, same bounds':>26}")
    for share, right, off, fixed in split_costs():
        print(f"  {share:>6.0%} {right:>21.0f} {off:>14.0f} {fixed:>26}")
    print(f"  one 50/50 reviews check locally: {split_requests} requests in {split_s:.1f} s "
          f"({split_requests / split_s:.0f} pages/s); on a cluster each look of {BATCH} is one "
          f"kubectl exec: about {split_requests // BATCH} execs of ~1 s plus the pages")
    eight = next(through["rps"] / direct["rps"] for c, direct, through in bursts if c == 8)
    print(f"bench: added p90 at 1000 rps = {added['p90']:.2f} ms; sidecar/straight throughput "
          f"at 8 connections = {eight:.2f}")


if __name__ == "__main__":
    sys.exit(main())
