#!/usr/bin/env python3
"""The labs' cluster: create it (kind + pinned Istio + sample apps), or delete it.

    python scripts/cluster.py up   [--istio 1.26]          # make kind-up
    python scripts/cluster.py down                         # make kind-down
    python scripts/cluster.py up --context NAME --allow-any-context
                                   # Istio + samples on a cluster you already have
    python scripts/cluster.py samples [--istio 1.26]        # only (re)deploy the sample apps
    python scripts/cluster.py clean-labs                    # make kind-clean-labs: delete the
                                   # lab config a killed run left (never the sample apps)

Every step skips what is already there, so `up` can be re-run at any time.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

try:
    import bookinfo_labs  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bookinfo_labs.kube.context import DEFAULT_CONTEXT
from bookinfo_labs.kube.provision import Provisioner
from bookinfo_labs.mesh import MeshError
from bookinfo_labs.versions import DEFAULT_VERSION, VERSIONS, get_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "samples", "clean-labs"])
    parser.add_argument("--istio", default=os.environ.get("ISTIO_VERSION") or DEFAULT_VERSION,
                        help=f"Istio release from the version table ({', '.join(VERSIONS)}); "
                             "default $ISTIO_VERSION or %(default)s")
    parser.add_argument("--context", default=None,
                        help=f"kubeconfig context (default {DEFAULT_CONTEXT}, the kind cluster)")
    parser.add_argument("--allow-any-context", action="store_true",
                        help="allow a context whose name does not start with kind-")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--sample", action="append", dest="samples",
                        help="deploy only this sample (repeatable); default: bookinfo, the "
                             "curl/sleep client, fortio, httpbin")
    args = parser.parse_args(argv)
    try:
        istio = get_version(args.istio)
        provisioner = Provisioner(istio, context=args.context, namespace=args.namespace,
                                  allow_any_context=args.allow_any_context)
        if args.command == "down":
            provisioner.down()
            return 0
        if args.command == "clean-labs":
            left = provisioner.clean_labs()
            print("deleted: " + (", ".join(str(k) for k in left) or "nothing, the cluster was clean"))
            return 0
        if args.command == "samples":
            provisioner.ensure_samples(provisioner._api(), tuple(args.samples or ()) or None)
            return 0
        host, port = provisioner.up(tuple(args.samples or ()) or None)
    except (MeshError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    print(f"\nReady: Istio {istio.patch} at context {provisioner.context}.")
    print(f"Ingress gateway: http://{host}:{port}  (export INGRESS_HOST={host} INGRESS_PORT={port})")
    print("Run the labs on it: pytest features/ --mesh kube")
    return 0


if __name__ == "__main__":
    sys.exit(main())
