# rootseg: `make demo` and `make test` each set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
TORCH ?= 2.13.0
SAM2 ?= 1.1.0
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# exact versions of every dependency but torch and sam2 (make lock writes it; make install reads it)
LOCK := requirements.lock
# optional extras installed into the development environment (sweep: Optuna sweeper, slurm: submitit)
EXTRAS ?= dev sweep slurm
# pytest-xdist processes for `make test` (a test file stays on one worker: its module fixtures are built once)
TEST_WORKERS ?= 2
export NO_ALBUMENTATIONS_UPDATE := 1
export WANDB_MODE ?= offline
export HYDRA_FULL_ERROR ?= 0

LOCK_VENV ?= /tmp/rootseg-lock-venv

.PHONY: help install lock demo test test-slow test-all test-browser chromium lint format clean gpu-bundle mutation

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# 1. torch first, pinned (CPU build here; TORCH=... or a CUDA torch you installed yourself on a GPU box)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "torch==$(TORCH)"
	# 2. every dependency but torch and sam2, at the exact versions of the lock (sam2 declares torchvision: no CPU
	#    build on PyPI, breaks lightning); a lock that misses or contradicts pyproject.toml stops here
	$(PY) .ci/lock.py check $(LOCK) $(EXTRAS)
	$(PIP) install -q --no-deps -r $(LOCK)
	# 3. sam2 without its torchvision and without the 2.5 GB isolated CUDA build
	$(PY) -c "import sam2" 2>/dev/null || SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation --no-deps "sam2==$(SAM2)"
	# 4. rootseg itself, editable; its dependencies are all in place
	$(PIP) install -q --no-deps --no-build-isolation -e .
	$(PY) -c "import lightning, torchmetrics, hydra, albumentations, sam2.modeling, rootseg; print('rootseg environment ready')"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install rootseg from requirements.lock (TORCH=2.13.0 by default)

# A fresh environment resolved from pyproject.toml's ranges (torch pinned first, sam2 left out), frozen into the
# lock. Run it after changing a dependency, then `make test`, and commit both.
lock:  ## regenerate requirements.lock from pyproject.toml's ranges (newest versions they allow)
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel
	$(LOCK_VENV)/bin/python -m pip install -q "torch==$(TORCH)"
	$(LOCK_VENV)/bin/python .ci/requirements.py --without sam2 --extra $(EXTRAS) > $(LOCK_VENV)/requirements.txt
	$(LOCK_VENV)/bin/python -m pip install -q -r $(LOCK_VENV)/requirements.txt
	$(LOCK_VENV)/bin/python .ci/lock.py freeze $(LOCK_VENV)/bin/python > $(LOCK).new && mv $(LOCK).new $(LOCK)
	$(LOCK_VENV)/bin/python .ci/lock.py check $(LOCK) $(EXTRAS)
	rm -rf $(LOCK_VENV)
	@echo "$(LOCK) written: run make test, then commit it"

demo: $(STAMP)  ## train unet_demo on built-in synthetic data, evaluate it, print the test metrics
	$(PY) -m rootseg.train +experiment=unet_demo

test: $(STAMP)  ## run the test suite (slow, gpu and browser tests excluded) on TEST_WORKERS processes
	$(PY) -m pytest -q -m "not slow and not gpu and not browser" -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

test-slow: $(STAMP)  ## the slow tests only (RootSAM DDP and resume, stage 1 -> 2 chain, real fine-tune; CI runs them)
	$(PY) -m pytest -q -m "slow and not gpu and not browser" -n $(TEST_WORKERS) --dist loadfile --durations=15 tests

test-browser: $(STAMP) chromium  ## the headless-Chromium end-to-end test of rootseg.annotate (CI runs it)
	$(PY) -m pytest -q -m browser tests

# Debian's chromium for the browser test, installed with apt-get when missing (CI runs as root); elsewhere the
# test skips and says how to install it. Playwright drives it; no browser build is downloaded.
chromium:  ## install Debian's chromium when missing (needs root and apt-get)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "apt-get could not install chromium: the browser test will skip"; \
	else echo "chromium is missing and cannot be installed here (needs root and apt-get): the browser test will skip"; fi

mutation: $(STAMP)  ## mutation testing of the numeric core (mutmut; about an hour; see benchmarks/RESULTS.md)
	$(PY) -m pip install -q 'mutmut>=3.3'
	$(PY) benchmarks/mutation.py

test-all: $(STAMP)  ## run every CPU test, slow ones included
	$(PY) -m pytest -q -m "not gpu" tests

lint: $(STAMP)  ## ruff check and format check
	$(VENV)/bin/ruff check rootseg tests benchmarks
	$(VENV)/bin/ruff format --check rootseg tests benchmarks

format: $(STAMP)  ## ruff fix and format
	$(VENV)/bin/ruff check --fix rootseg tests benchmarks
	$(VENV)/bin/ruff format rootseg tests benchmarks

gpu-bundle: $(STAMP)  ## wheels + SegRoot scans for the GPU machine into .gpu-bundle (experiments/gpu/README.md)
	# hydra-core, omegaconf, antlr4, albumentations (+ pydantic...), cma, iopath for cp312 manylinux x86_64, sam2
	# built with SAM2_BUILD_CUDA=0 --no-build-isolation, SegRoot's train + val scans (masks as 1-bit PNG)
	$(PY) experiments/gpu/bundle.py all .gpu-bundle

clean:  ## remove the environment, caches and run outputs
	rm -rf $(VENV) logs data/synthetic .pytest_cache .ruff_cache build *.egg-info
