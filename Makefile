# ecg_digitization — everyday commands. `make train` and `make test` work on a fresh machine with Python 3.11 + pip.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5050
MLFLOW_STORE ?= $(CURDIR)
APPROACH ?= signalsavants
FROM ?= shipped
NOW := $(shell date +%Y%m%d-%H%M%S)
export MPLBACKEND ?= Agg
# pytest on two workers, a module per worker, slowest modules first (tests/conftest.py); PYTEST_XDIST= runs one process
PYTEST_XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder
# Threads per test process (torch/OpenMP, MKL, OpenCV). The test commands run two processes at once (two notebook
# workers, two pytest workers), so on a 2-core machine more than one thread each oversubscribes the cores: a torch
# thread spinning at a barrier while the other is descheduled burns CPU the other process needs (docs/benchmarks.md, "Test suite wall time").
TEST_THREADS ?= 1
TEST_ENV = export OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) OPENCV_FOR_THREADS_NUM=$(TEST_THREADS)

.PHONY: setup train train-cli test test-fast check mlflow-server mlflow-ui mlflow-sync compare lab export docs docs-nbs clean bench help

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch>=2.4,<=2.14.1" "torchvision>=0.19,<=0.29.1"
	$(BIN)/pip install -q -e ".[all]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install everything (torch, timm, mlflow, nbdev, ray, jupyterlab)

train: setup  ## fine-tune the shipped digitizer on fresh synthetic pages (CPU, local MLflow store); FROM=scratch trains from random weights
	@mkdir -p runs
	$(BIN)/papermill nbs/train.ipynb runs/train-$(NOW).ipynb -p approach $(APPROACH) \
	  -p preset $(if $(filter scratch,$(FROM)),cpu_quick,cpu_finetune) --progress-bar --log-output
	@$(BIN)/python -c "import sys; from ecg_digitization.tracking import resolve_tracking_uri as r; u=r(); print('\nMLflow store:', u); print('Open the UI: make mlflow-ui   (then http://127.0.0.1:$(PORT))')"

train-cli: setup  ## the same job through the Hydra CLI (ARGS='approach=baseline training.epochs=2')
	$(BIN)/python -m ecg_digitization.train approach=$(APPROACH) $(ARGS)

# The tests write stores, checkpoints and Ray sessions under a scratch TMPDIR of their own, emptied between the
# notebook and pytest phases and removed at the end (pass or fail), so a test run leaves no disk behind.
test: setup check  ## run every test: notebook tests, then integration tests (pytest)
	@set -e; export TMPDIR="$$(mktemp -d -t ecgd-test.XXXXXX)"; trap 'rm -rf "$$TMPDIR"' EXIT; $(TEST_ENV); \
	echo "scratch TMPDIR=$$TMPDIR, $(TEST_THREADS) thread(s) per test process"; \
	$(BIN)/nbdev_test --n_workers 2 --flags slow --skip_file_re '^(train|compare)\.ipynb$$'; \
	echo "notebook tests left $$(du -sh "$$TMPDIR" | cut -f1) in TMPDIR; emptying it"; \
	rm -rf "$$TMPDIR"/* "$$TMPDIR"/.[!.]* 2>/dev/null || true; \
	$(BIN)/python -m pytest tests -q -ra $(PYTEST_XDIST) $(PYTEST_ARGS); \
	echo "pytest left $$(du -sh "$$TMPDIR" | cut -f1) in TMPDIR"

test-fast: setup check  ## the quick loop: notebook tests without `#| slow` cells, then pytest without @pytest.mark.slow
	@set -e; export TMPDIR="$$(mktemp -d -t ecgd-test.XXXXXX)"; trap 'rm -rf "$$TMPDIR"' EXIT; $(TEST_ENV); \
	$(BIN)/nbdev_test --n_workers 2 --skip_file_re '^(train|compare)\.ipynb$$'; \
	rm -rf "$$TMPDIR"/* "$$TMPDIR"/.[!.]* 2>/dev/null || true; \
	$(BIN)/python -m pytest tests -q -ra -m "not slow" $(PYTEST_XDIST) $(PYTEST_ARGS)

check: setup  ## fail if nbs/ and ecg_digitization/ disagree or a notebook has outputs
	$(BIN)/python tools/check_sync.py

export: setup  ## notebooks -> package, and strip notebook outputs
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

mlflow-server: setup  ## MLflow server on http://$(HOST):$(PORT) (sqlite backend + artifacts folder); ALLOWED_HOSTS=host.docker.internal:$(PORT),... for clients in Docker
	$(BIN)/mlflow server --host $(HOST) --port $(PORT) --backend-store-uri sqlite:///$(MLFLOW_STORE)/mlflow.db \
	  --artifacts-destination $(MLFLOW_STORE)/mlartifacts $(if $(ALLOWED_HOSTS),--allowed-hosts "$(ALLOWED_HOSTS)")

mlflow-ui: mlflow-server  ## alias of mlflow-server

mlflow-sync: setup  ## send runs logged to the local fallback store (server was down) to http://$(HOST):$(PORT)
	$(BIN)/python -m ecg_digitization.tracking sync --to http://$(HOST):$(PORT)

compare: setup  ## the run-comparison notebook as an app on http://$(HOST):8866 (Voila)
	$(BIN)/voila nbs/compare.ipynb --port 8866 --Voila.ip=$(HOST) --no-browser

lab: setup  ## JupyterLab on nbs/ (http://$(HOST):8888)
	$(BIN)/jupyter lab --notebook-dir nbs --ip $(HOST) --no-browser

bench: setup  ## all benchmarks (tables printed, JSON in benchmarks/results/); MODEL=models:/… adds digitizer SNR + latency
	$(BIN)/python benchmarks/run_all.py $(if $(MODEL),--model $(MODEL))

# The documentation site: nbdev processes the notebooks (running their imports and show_doc cells: a notebook whose
# documentation cannot be built fails here), then Quarto renders _proc/ into _docs/. Quarto comes from PyPI
# (quarto-cli), whose install downloads Quarto's release from github.com; where that cannot be reached and no quarto
# is on PATH, the same pages are rendered as plain HTML by nbconvert (tools/render_docs.py), so the build still checks
# every notebook's documentation.
docs-nbs: setup  ## process the notebooks for the docs site into _proc/ (no Quarto needed)
	rm -rf _proc
	$(BIN)/python tools/proc_docs.py
	$(BIN)/python tools/fix_sidebar.py nbs _proc/sidebar.yml

docs: export PATH := $(CURDIR)/$(BIN):$(PATH)
docs: docs-nbs  ## build the documentation site into _docs/ (nbdev + Quarto from PyPI; plain nbconvert HTML without Quarto)
	@command -v quarto >/dev/null || $(BIN)/pip install -q quarto-cli >/dev/null 2>&1 || \
	  echo "make docs: Quarto is not installed and 'pip install quarto-cli' failed (it downloads Quarto from github.com); rendering plain HTML with nbconvert instead"
	@if command -v quarto >/dev/null; then \
	  (cd _proc && quarto render --no-cache) && rm -rf _docs && mv _proc/_docs _docs; \
	else $(BIN)/python tools/render_docs.py _proc _docs; fi
	@echo "docs: $(CURDIR)/_docs/index.html ($$(du -sh _docs | cut -f1))"

clean:  ## remove build outputs (keeps .venv, mlflow.db and runs/)
	rm -rf build dist *.egg-info _docs _proc .pytest_cache
