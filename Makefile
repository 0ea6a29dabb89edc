# Two commands set everything up on a fresh machine:
#   make labs   virtual environment + install + the whole lab catalogue on the local mesh + lab report
#               (reports/labs.txt, labs.json and the page labs.html)
#   make test   the full test suite (engine unit tests, every lab on the local mesh, and
#               the traffic and resilience labs through the kube backend against the
#               emulated cluster; make kube-emulated runs every lab that way)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/pytest
ISTIO_VERSION ?= 1.26

.PHONY: labs playground test test-local test-unit test-labs-local test-labs-local-mesh test-labs-local-edge test-kube-emulated-edge test-kube-emulated-mesh test-kube-emulated-traffic test-kube-emulated-resilience kube-emulated bench deps kind-up kind-down kind-clean-labs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Python packages, plus the system tools the local mesh drives (curl, openssl).
deps: $(STAMP)
	@scripts/ensure-tools.sh

# At pytest's normal verbosity a line names each lab as it starts; the lab report ends the
# output and says where its page is (reports/labs.html).
labs: deps
	$(PYTEST) features/ --istio-version $(ISTIO_VERSION)

# The runs go side by side, each printing its output when it ends; make fails if any
# fails. Most of them mostly wait (polls, gates, delays, Envoy: four runs used 61 % of the
# 2 cores), so five at once keep the cores busy: the unit tests, the labs on the local mesh
# in two halves, and the traffic and the resilience labs through the emulated cluster.
# The gateway, security and observability labs go through it in `make kube-emulated`
# only. Measured 2026-11-27 on the 2-core machine: with the emulated cluster's traffic and
# resilience labs in one run (810 s, the longest), 14.4 min.
test: deps
	@$(MAKE) --no-print-directory -j5 --output-sync=target test-kube-emulated-resilience \
		test-labs-local-mesh test-labs-local-edge test-unit test-kube-emulated-traffic

# The workshop mesh in the foreground: Bookinfo, the client, the gateways; Ctrl-C stops it.
playground: deps
	$(BIN)/bookinfo-labs up

# tests and labs on the local mesh, one after the other
test-local: test-unit test-labs-local

test-unit:
	$(PYTEST) -q tests

test-labs-local: test-labs-local-mesh test-labs-local-edge

test-labs-local-mesh:
	$(PYTEST) -q --lab-report reports/local/mesh features/traffic features/resilience

test-labs-local-edge:
	$(PYTEST) -q --lab-report reports/local/edge features/gateways features/security \
		features/observability

test-kube-emulated-edge:
	$(KUBE_EMULATED) --lab-report reports/kube-emulated/edge features/gateways -q

test-kube-emulated-mesh: test-kube-emulated-traffic test-kube-emulated-resilience

test-kube-emulated-traffic:
	$(KUBE_EMULATED) --lab-report reports/kube-emulated/traffic features/traffic -q

test-kube-emulated-resilience:
	$(KUBE_EMULATED) --lab-report reports/kube-emulated/resilience features/resilience -q

# The whole catalogue through the kube backend (server-side apply, the propagation gate,
# one exec per batch) against a Kubernetes API emulated in-process on the local mesh
# (tests/emulated); its lab report goes to reports/kube-emulated.
KUBE_EMULATED = PYTHONPATH=tests $(PYTEST) -p emulated.plugin --mesh kube --emulated-cluster \
	--istio-version $(ISTIO_VERSION)

kube-emulated: deps
	$(KUBE_EMULATED) --lab-report reports/kube-emulated features/

bench: deps
	@scripts/ensure-tools.sh bench
	$(BIN)/python -m bookinfo_labs.bench

# A kind cluster with Istio and the samples (needs Docker and kind); see README.
kind-up: deps
	$(BIN)/python scripts/cluster.py up --istio $(ISTIO_VERSION)

kind-down: deps
	$(BIN)/python scripts/cluster.py down

# Delete the lab config a killed run left in the cluster (never the sample apps).
kind-clean-labs: deps
	$(BIN)/python scripts/cluster.py clean-labs

clean:
	rm -rf $(VENV) reports .pytest_cache
