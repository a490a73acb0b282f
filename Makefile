# Two commands do everything on a fresh machine:
#   make demo   release the course and grade the bundled sample class
#   make test   the whole test suite (what CI runs)
# Both create or refresh .venv first; that step is a no-op when nothing changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is installed on its own first so that a machine without CUDA gets the
# small CPU build (from the local wheel cache or TORCH_INDEX_URL) rather than
# the multi-GB CUDA build a plain `pip install torch` would pull.
TORCH_VERSION   ?= 2.13.0
TORCH_INDEX_URL ?=
HAS_CUDA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)

# nbgrader runs alembic as a subprocess, so the venv's bin/ must be on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MPLBACKEND := Agg

.PHONY: venv demo test test-fast lint lab release student-bundle bench browser services clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(HAS_CUDA),yes)
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
else
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
endif
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Debian's Chromium for the JupyterLab browser test; skipped quietly where
# apt is unavailable (the test then skips with the reason).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "note: chromium missing and apt-get unavailable; browser tests will skip"; fi; }

# Debian's PostgreSQL (the `postgres` tests start a private server from its binaries)
# and iproute2, each installed only when missing; as for Chromium, the tests that need
# them skip with the reason where apt is unavailable.
PG_BIN = $(firstword $(wildcard /usr/lib/postgresql/*/bin/pg_ctl) $(shell command -v pg_ctl 2>/dev/null))
services:
	@missing=$$(echo $(if $(PG_BIN),,postgresql) $$(command -v ip >/dev/null 2>&1 || echo iproute2)); \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install $$missing; the postgres tests will skip"; \
	  else echo "note: $$missing missing and apt-get unavailable (or not root); the postgres tests will skip"; fi; \
	fi

demo: venv
	$(BIN)/python -m autograder demo

# pytest-xdist runs one worker per core; each worker's torch and BLAS get one thread
# so that workers do not fight over the cores (the benchmarks set threads themselves).
test: venv browser services lint
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n auto

# ruff (lint and format check) and mypy, configured in pyproject.toml.
lint: venv
	$(BIN)/ruff check course_lib autograder
	$(BIN)/ruff format --check course_lib autograder
	$(BIN)/mypy

test-fast: venv
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n auto -m "not slow and not browser"

release: venv
	$(BIN)/python -m autograder release

lab: venv
	$(BIN)/jupyter lab notebooks/

# The students' copy of the course (notebooks, course_lib, their README and Makefile;
# no solutions, hidden tests or grader) in BUNDLE_DIR, replaced if it is already there.
BUNDLE_DIR ?= dist/student
student-bundle: venv
	$(BIN)/python -m autograder bundle $(BUNDLE_DIR)

bench: venv
	-$(BIN)/python benchmarks/bench_course_lib.py
	-$(BIN)/python benchmarks/bench_widgets.py
	-$(BIN)/python benchmarks/bench_notebooks.py
	-$(BIN)/python benchmarks/bench_autograder.py

clean:
	rm -rf $(VENV) course_run test-output dist
