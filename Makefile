# baremetal.k8s developer entry points. `make help` lists them.
SHELL := /bin/bash
REPO := $(abspath .)
VENV := $(REPO)/.venv
PY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(REPO)/.collections
export ANSIBLE_CONFIG := $(REPO)/ansible.cfg
# Go build cache and built binaries survive between runs here (never required).
export BMK8S_CACHE ?= $(HOME)/.cache/baremetal-k8s

.PHONY: help deps collection-link lab-up lab-down site test test-fast test-molecule \
        test-integration test-e2e lint sanity unit bench build

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: $(VENV)/.deps-stamp collection-link ## Python venv with the pinned requirements
$(VENV)/.deps-stamp: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

collection-link: ## expose this checkout as ansible_collections/baremetal/k8s
	@mkdir -p .collections/ansible_collections/baremetal
	@ln -sfn $(REPO) .collections/ansible_collections/baremetal/k8s

lab-up: deps ## start dockerd if needed, build the base image, start 5 hosts
	$(PY) lab/lab.py up

lab-down: ## remove the lab hosts, network and the dockerd we started
	$(PY) lab/lab.py down

site: deps ## main job: lab hosts + air-gap artifacts, converged by playbooks/site.yml through the fleet inventory
	$(PY) lab/site.py

test: deps ## every tier: fast, molecule, integration, e2e (with a summary)
	$(PY) tools/run_tiers.py fast molecule integration e2e

test-fast: deps ## lint + sanity + unit
	$(PY) tools/run_tiers.py fast

test-molecule: deps ## Molecule scenarios on lab container hosts
	$(PY) tools/run_tiers.py molecule

test-integration: deps ## modules against a real Kubernetes control plane (kwok nodes)
	$(PY) tools/run_tiers.py integration

test-e2e: deps ## full kubeadm HA cluster on the lab
	$(PY) tools/run_tiers.py e2e

lint: deps ## ruff + ansible-lint
	$(PY) tools/run_tiers.py lint

sanity: deps ## ansible-test sanity on a copy of the collection tree
	$(PY) tools/run_tiers.py sanity

unit: deps ## L0 unit and property tests
	$(PY) tools/run_tiers.py unit

bench: deps ## benchmarks that print numbers (tests/benchmarks/bench_*.py)
	$(PY) tools/run_benchmarks.py

build: deps ## collection tarball, installed into an empty path and listed
	$(PY) tools/run_tiers.py build
