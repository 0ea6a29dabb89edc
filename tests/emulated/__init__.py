"""An emulated Kubernetes cluster for the kube backend's end-to-end tests.

A Kubernetes API served in-process (``fakeapi.FakeApiServer``) whose pods are the local
mesh's workloads: real Envoy sidecars configured over ADS by bookinfo-labs' own control
plane. ``pytest features/ -p emulated.plugin --mesh kube --emulated-cluster`` (``make
kube-emulated``) runs the whole lab catalogue through the kube backend against it: server-
side apply, the propagation gate, one exec per batch, logs, stats and config dumps.

Test code only: never shipped in the package (tests/test_packaging.py checks).
"""
