"""``make bench``: speed figures of the local mesh, measured in one run, printed as ratios.

- start: LocalMesh.start + Bookinfo + the client, ready to serve;
- /productpage through the sidecars (client sidecar -> productpage) versus straight to the
  productpage app's own port, with the same client (one real curl process per batch,
  keep-alive): requests per second and p50/p99 latency, and their ratio;
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--skip-labs", action="store_true", help="do not time the traffic labs")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    mesh = LocalMesh.start(get_version(None))
    mesh.deploy("bookinfo")
    mesh.deploy(mesh.client())
    start_s = time.perf_counter() - started
    try:
        productpage = mesh.cluster.workload_pods("productpage-v1", mesh.namespace)[0]
        direct = f"http://127.0.0.1:{productpage.ports[9080]}/productpage"
        mesh.send(mesh.client(), HttpRequest(url=direct), 20)  # warm up both paths
        mesh.send(mesh.client(), HttpRequest(url="http://productpage:9080/productpage"), 20)
        straight = _measure(mesh, direct, args.requests)
        meshed = _measure(mesh, "http://productpage:9080/productpage", args.requests)
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
