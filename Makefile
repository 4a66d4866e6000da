# Recommendation training pipeline. Every target does its own set-up, idempotently.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
DATA := data
VAR := var
# Run date for `make run` (MovieLens-100K's last day of ratings is 1998-04-22).
RUN_DATE ?= 1998-04-22

export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export OPENBLAS_NUM_THREADS := 1
export SPARK_LOCAL_IP := 127.0.0.1
export PYTHONHASHSEED := 0

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: check-java
check-java:
	@command -v java >/dev/null 2>&1 || { echo "ERROR: Java not found. Spark 3.5 needs a JDK/JRE 17 (e.g. apt-get install openjdk-17-jre-headless)." >&2; exit 1; }
	@java -version 2>&1 | head -1 | grep -qE '"(1[17]|21)[."]' || { echo "ERROR: Spark 3.5 needs Java 11, 17 or 21; found: $$(java -version 2>&1 | head -1)" >&2; exit 1; }

$(STAMP): requirements/dev.txt requirements/bootstrap.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/bootstrap.txt
	$(UV) pip install --python $(PY) --quiet -r requirements/dev.txt
	@touch $@

.PHONY: setup
setup: check-java $(STAMP) ## create .venv and install everything (idempotent)
