"""``make bench``: speed figures of the local mesh, measured in one run, printed as ratios.

- start: LocalMesh.start + Bookinfo + the client, ready to serve;
- /productpage through the sidecars (client sidecar -> productpage) versus straight to the
  productpage app's own port, with the same client (one real curl process per batch,
  keep-alive): requests per second and p50/p99 latency, and their ratio;
- a fortio-style load on httpbin's /get at 1, 8 and 64 connections, through one client
  sidecar (and httpbin's inbound sidecar) versus straight to the httpbin app: requests
  per second and p99, with the ratio per row;
- the wall time of ``pytest features/ -m traffic`` in a fresh process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .local import LocalMesh
from .local.fortio import run_load
from .mesh import HttpRequest
from .versions import get_version


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(mesh: LocalMesh, url: str, count: int) -> dict[str, float]:
    started = time.perf_counter()
    responses = mesh.send(mesh.client(), HttpRequest(url=url), count)
    wall = time.perf_counter() - started
    bad = [r.status for r in responses if r.status != 200]
    if bad:
        raise SystemExit(f"bench: {len(bad)} of {count} requests to {url} failed: {bad[:5]}")
    latencies = [r.elapsed_s for r in responses]
    return {"rps": count / wall, "p50": _percentile(latencies, 0.5),
            "p99": _percentile(latencies, 0.99), "mean": statistics.fmean(latencies)}


def _load_rows(mesh: LocalMesh, requests: int):
    """(connections, straight, through the sidecar) fortio-style runs, measured back to back."""
    mesh.deploy("httpbin")
    mesh.deploy("fortio")
    fortio = mesh.registry.workload_pods("fortio", mesh.namespace)[0]
    httpbin = mesh.registry.workload_pods("httpbin-v1", mesh.namespace)[0]
    app_port = next(iter(httpbin.ports.values()))
    rows = []
    for connections in (1, 8, 64):
        def run(port: int):
            return mesh.run(run_load(f"http://127.0.0.1:{port}/get", "httpbin:8000",
                                     connections=connections, requests=requests))
        run(app_port)  # warm-up of both paths
        run(fortio.sidecar.outbound_port)
        rows.append((connections, run(app_port), run(fortio.sidecar.outbound_port)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--load-requests", type=int, default=2000)
    parser.add_argument("--skip-labs", action="store_true", help="do not time the traffic labs")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    mesh = LocalMesh.start(get_version(None))
    mesh.deploy("bookinfo")
    mesh.deploy(mesh.client())
    start_s = time.perf_counter() - started
    try:
        productpage = mesh.registry.workload_pods("productpage-v1", mesh.namespace)[0]
        direct = f"http://127.0.0.1:{productpage.ports[9080]}/productpage"
        mesh.send(mesh.client(), HttpRequest(url=direct), 20)  # warm up both paths
        mesh.send(mesh.client(), HttpRequest(url="http://productpage:9080/productpage"), 20)
        straight = _measure(mesh, direct, args.requests)
        meshed = _measure(mesh, "http://productpage:9080/productpage", args.requests)
        load_rows = _load_rows(mesh, args.load_requests)
    finally:
        mesh.close()

    print(f"local mesh start (Bookinfo + client, ready): {start_s:.2f} s")
    print(f"/productpage, {args.requests} sequential requests per path, one curl process each:")
    print(f"  {'path':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, row in (("straight to the productpage app", straight),
                      ("through the sidecars", meshed)):
        print(f"  {name:<34} {row['rps']:>8.1f} {row['p50'] * 1000:>8.2f} {row['p99'] * 1000:>8.2f}")
    print(f"  {'ratio (sidecars / straight)':<34} {meshed['rps'] / straight['rps']:>8.2f} "
          f"{meshed['p50'] / straight['p50']:>8.2f} {meshed['p99'] / straight['p99']:>8.2f}")

    print(f"fortio-style load on httpbin /get, {args.load_requests} calls per run:")
    print(f"  {'connections':>11} {'straight req/s':>15} {'sidecar req/s':>14} {'ratio':>6}"
          f" {'straight p99 ms':>16} {'sidecar p99 ms':>15} {'ratio':>6}")
    for connections, direct_run, mesh_run in load_rows:
        print(f"  {connections:>11} {direct_run.qps:>15.1f} {mesh_run.qps:>14.1f} "
              f"{mesh_run.qps / direct_run.qps:>6.2f} {direct_run.p99 * 1000:>16.2f} "
              f"{mesh_run.p99 * 1000:>15.2f} {mesh_run.p99 / direct_run.p99:>6.2f}")

    if not args.skip_labs:
        root = Path(__file__).resolve().parents[2]
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "features/", "-m", "traffic", "-q",
                               "--lab-report", "reports/bench"], cwd=root,
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
        print(f"traffic labs (pytest features/ -m traffic): {wall:.1f} s wall ({summary})")
        if done.returncode != 0:
            raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
