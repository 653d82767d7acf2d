# Tweet sentiment platform. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock requirements.in pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
export SENTIMENT_HOME ?= $(HOME)/sentiment-platform
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
# Heavy frameworks: quiet logs, no telemetry, never reach for the Hub. Tokenizer threads stay off unless you
# export TOKENIZERS_PARALLELISM=true (a transformer fit on a many-core GPU box tokenizes faster with them).
export TF_CPP_MIN_LOG_LEVEL := 2
export BENTOML_DO_NOT_TRACK := True
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: help install browser cluster-deps cluster-up cluster-down cluster-status test-cluster up down status airflow-env config dashboard train-classical test test-fast lint bench bench-dashboard lock clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "} {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.lock requirements.in pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25" "setuptools>=69" wheel
	$(PY) -m pip install -c requirements.lock -r requirements.in
	@# The Spark provider pulls pyspark-client 4.2, which shares the pyspark/ folder and overwrites pyspark 4.3's
	@# Python files while the 4.3 JARs stay: put pyspark's own files back and check that both halves agree.
	$(PY) -m pip install -q --no-deps --force-reinstall -c requirements.lock pyspark
	$(PY) -c "import pyspark, pathlib; v = pyspark.__version__; jars = pathlib.Path(pyspark.__file__).parent / 'jars'; \
	  assert list(jars.glob(f'spark-core_*-{v}.jar')), f'pyspark {v} Python files do not match its JARs'"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) browser cluster-deps ## Create .venv and install pinned dependencies (idempotent; fast when up to date)

browser: ## Debian's chromium for the browser tests (apt-get when missing, as root; else a message)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install -y chromium' (the browser tests are skipped without it)"; \
	  fi; }

cluster-deps: ## Debian's redis-server and PostgreSQL server for the cluster (apt-get when missing, as root; else a message)
	@missing=""; command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	  { command -v pg_config >/dev/null 2>&1 && test -x "$$(pg_config --bindir)/initdb"; } || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing Debian's$$missing for the cluster tests ..."; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else \
	      echo "missing:$$missing: run 'sudo apt-get install -y$$missing' (the cluster tests are skipped without them)"; \
	    fi; \
	  fi

cluster-up: install ## Spark standalone (master + workers), PostgreSQL, Redis, Airflow with Celery workers on loopback
	$(PY) -m ops cluster up $(ARGS)

cluster-down: ## Stop everything `make cluster-up` started
	@test -x $(PY) && $(PY) -m ops cluster down || true

cluster-status: ## Show what `make cluster-up` started
	$(PY) -m ops cluster status

test-cluster: install ## Only the cluster tests (tests/cluster: Spark standalone, PostgreSQL + Celery, scaled-out service)
	$(PY) -m pytest -q -m cluster tests/cluster

up: install ## Set up and run the platform's main job on embedded defaults (ARGS="--retrain --families logreg,gru")
	$(PY) -m ops up $(ARGS)

down: ## Stop everything `make up` started
	@test -x $(PY) && $(PY) -m ops down || true

status: ## Show what `make up` started and where it listens
	$(PY) -m ops status

airflow-env: ## Print the exports that point the `airflow` CLI at the platform: eval "$(make -s airflow-env)"
	@$(PY) -m ops env

config: install ## Print every setting, its value, where it came from, and its help
	@$(PY) -m ml config

dashboard: install ## Serve the live dashboard on http://127.0.0.1:8501 (ARGS="--host 0.0.0.0" needs SENTIMENT_DASHBOARD_TOKEN)
	$(PY) -m serving.dashboard $(ARGS)

train-classical: install ## CLI only, no Airflow: download -> prepare -> train the classical family -> evaluate
	$(PY) -m ml data download
	$(PY) -m ml data prepare
	for f in logreg linearsvc multinomialnb; do $(PY) -m ml train $$f || exit 1; done
	$(PY) -m ml evaluate
	$(PY) -m serving package

test: install ## Install, then run the whole test suite (what CI runs)
	$(PY) -m pytest -q --durations=20

test-fast: install ## Unit tests only (skips the slow tests that train models or start servers)
	$(PY) -m pytest -q -m "not slow"

lint: install ## ruff, and the layer order (import-linter; see pyproject.toml)
	$(VENV)/bin/ruff check ml serving spark_apps dags plugins ops tests bench
	$(VENV)/bin/lint-imports

bench: install ## Run the benchmarks on ../shared/data (DATA=... to point elsewhere)
	$(PY) bench/classical.py --data $${DATA:-../shared/data}

bench-dashboard: install ## Time the dashboard's Live queries on 1M and 10M synthetic posts (cold, warm, RSS)
	$(PY) bench/dashboard.py

lock: ## Re-resolve requirements.in and rewrite requirements.lock
	$(PY) -m pip install -r requirements.in
	(echo "# Generated by 'make lock' from requirements.in on Python 3.11 / linux x86_64. Do not edit."; \
	 $(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//') > requirements.lock

clean: ## Remove build and test caches (not the artifacts root)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
