# Two commands set everything up on a fresh machine:
#   make labs   virtual environment + install + the whole lab catalogue on the local mesh + lab report
#   make test   the full test suite (engine unit tests, every lab on the local mesh, and
#               every lab through the kube backend against the emulated cluster)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST := $(BIN)/pytest
ISTIO_VERSION ?= 1.26

.PHONY: labs test test-local test-kube-emulated kube-emulated bench deps kind-up kind-down kind-clean-labs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Python packages, plus the system tools the local mesh drives (curl, openssl).
deps: $(STAMP)
	@scripts/ensure-tools.sh

labs: deps
	$(PYTEST) features/ -q --istio-version $(ISTIO_VERSION)

# The two runs go side by side (the kube one mostly waits: polls, gates, delays), each
# printing its output when it ends; make fails if either fails.
test: deps
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-local test-kube-emulated

test-local:
	$(PYTEST) -q

test-kube-emulated:
	$(KUBE_EMULATED) -q

# The whole catalogue through the kube backend (server-side apply, the propagation gate,
# one exec per batch) against a Kubernetes API emulated in-process on the local mesh
# (tests/emulated); its lab report goes to reports/kube-emulated.
KUBE_EMULATED = PYTHONPATH=tests $(PYTEST) features/ -p emulated.plugin --mesh kube \
	--emulated-cluster --istio-version $(ISTIO_VERSION) --lab-report reports/kube-emulated

kube-emulated: deps
	$(KUBE_EMULATED)

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
