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

# The reference StatsD server (Etsy's statsd, pinned in tools/local/statsd/package.json) for make airflow STATSD=1
# and its test: node_modules in tools/local/statsd/ (git-ignored), no lock file, no optional dependencies.
STATSD_DIR := tools/local/statsd
STATSD_STAMP := $(STATSD_DIR)/node_modules/.installed

$(STATSD_STAMP): $(STATSD_DIR)/package.json
	@command -v npm >/dev/null 2>&1 || { echo "ERROR: npm not found. make airflow STATSD=1 and its test need Node.js 18+ and npm (e.g. apt-get install nodejs npm)." >&2; exit 1; }
	npm install --prefix $(STATSD_DIR) --no-package-lock --omit=optional --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: statsd-setup
statsd-setup: $(STATSD_STAMP) ## install the local StatsD server into tools/local/statsd/node_modules (idempotent)

# Everything below runs inside the project's environment: .venv first on PATH (spark-submit needs it),
# local Spark defaults and quiet logging from emr_configs/local-spark.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export SPARK_CONF_DIR := $(abspath emr_configs/local-spark)

# The local AWS stack (LocalStack + local EMR endpoint): local-up / local-down / local-status, and the
# variables LS_STAMP / LS_JARS_STAMP used below. Benchmarks: bench / bench-quick.
-include localstack/local.mk
-include benchmarks/bench.mk

ML_RAW := $(DATA)/movielens/raw
ML_STAMP := $(ML_RAW)/_manifest.json
ENGINES ?= implicit

$(ML_STAMP): | $(STAMP)
	$(PY) -m tools.datagen.movielens --output $(ML_RAW) --cache $(DATA)/cache

.PHONY: data-movielens
data-movielens: $(STAMP) $(ML_STAMP) ## MovieLens-100K as raw events in data/movielens/raw (from the recbole wheel)

.PHONY: data-synthetic
data-synthetic: $(STAMP) ## a seeded synthetic clickstream in data/synthetic/raw (EVENTS=, DAYS=)
	$(PY) -m tools.datagen.clickstream --output $(DATA)/synthetic/raw --events $${EVENTS:-200000} --days $${DAYS:-3}

.PHONY: run
run: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) $(ML_STAMP) ## the real DAG on the local AWS stack with MovieLens-100K, then a summary (KEEP_STACK=1 leaves the stack up; CONFIG='{...}' overrides the DAG config)
	$(PY) -m tools.local.run --run-date $(RUN_DATE) $(if $(KEEP_STACK),--keep-stack) $(if $(CONFIG),--config '$(CONFIG)')

.PHONY: tune
tune: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) $(ML_STAMP) ## the recsys_tuning sweep on the local stack with MovieLens-100K: leaderboard, plot, tuning/best.json (KEEP_STACK=1, CONFIG='{...}')
	$(PY) -m tools.local.tune --run-date $(RUN_DATE) $(if $(KEEP_STACK),--keep-stack) $(if $(CONFIG),--config '$(CONFIG)')

.PHONY: airflow
airflow: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) $(ML_STAMP) $(if $(STATSD),$(STATSD_STAMP)) ## Airflow (UI, scheduler, DAG processor, triggerer) on 127.0.0.1:8080 wired to the local stack (Ctrl-C stops it; STATSD=1: Airflow's metrics to a StatsD server on 127.0.0.1:8125)
	$(PY) -m tools.local.airflow_stack --run-date $(RUN_DATE) $(if $(STATSD),--statsd)

.PHONY: airflow-screenshot
airflow-screenshot: $(STAMP) ## PNG of a run's graph view from a running make airflow (RUN_ID=..., needs Chromium)
	$(PY) -m tools.local.ui_screenshot --run-id "$(RUN_ID)"

.PHONY: run-chain
run-chain: check-java $(STAMP) $(ML_STAMP) ## the steps of emr_configs/steps.json spark-submitted in turn on MovieLens-100K (no Airflow, no AWS), then a metrics table
	$(PY) -m tools.local.run_chain --raw $(ML_RAW) --work $(VAR)/movielens --run-date $(RUN_DATE) \
	  --engines $(ENGINES)

.PHONY: local-test
local-test: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) ## the end-to-end suite: the real DAG on the local stack (starts the stack if needed)
	$(PY) -m pytest -m "localstack or e2e" tests/localstack tests/e2e

.PHONY: package
package: $(STAMP) ## build/code/<version>/: spark_jobs.zip, job entry points, bootstrap files
	$(PY) -m tools.release.package_jobs

.PHONY: deploy
deploy: $(STAMP) ## upload the packaged code and the bootstrap's hashed wheels to s3://$$ARTIFACT_BUCKET/code/<version>/ (ENDPOINT_URL= for LocalStack, ARCH= to override the instance types' architecture)
	@test -n "$${ARTIFACT_BUCKET:-}" || { echo "ERROR: set ARTIFACT_BUCKET (the DAG config's artifact_bucket)" >&2; exit 1; }
	$(PY) -m tools.release.deploy_code --bucket "$$ARTIFACT_BUCKET" $${ENDPOINT_URL:+--endpoint-url "$$ENDPOINT_URL"} $(if $(ARCH),--arch $(ARCH))

.PHONY: retention
retention: $(STAMP) ## apply the S3 lifecycle rules (rejects, runs, EMR logs, sweeps) to the configured buckets (ENDPOINT_URL=; LOCAL=1: the running local stack)
	$(PY) -m tools.release.apply_retention $(if $(LOCAL),--local) $${ENDPOINT_URL:+--endpoint-url "$$ENDPOINT_URL"}

.PHONY: alarms
alarms: $(STAMP) ## create/update the stale-model CloudWatch alarm (no promotion for stale_model_hours -> alert topic) (ENDPOINT_URL=; LOCAL=1: the running local stack)
	$(PY) -m tools.release.apply_alarms $(if $(LOCAL),--local) $${ENDPOINT_URL:+--endpoint-url "$$ENDPOINT_URL"}

# The registry CLI on the running local stack: the artefact bucket's registry/, the S3 endpoint
# (LOCALSTACK_PORT honoured) and the test credentials, all from localstack/resources.json. LocalStack keeps
# S3 in memory: use these while the stack is up (make run KEEP_STACK=1, make airflow). For real S3 run
# python -m tools.ops.registry_cli yourself (README, "Rolling back a model").
LOCAL_STACK_ENV = read -r bucket endpoint key secret region table dynamodb < <(PYTHONPATH=localstack $(PY) -c \
	  'from local_aws.settings import load_resources, load_settings; r = load_resources(); s = load_settings(); \
	  print(r["buckets"]["artifacts"], s.localstack_url, r["aws_access_key_id"], \
	  r["aws_secret_access_key"], r["region"], r["serving"]["table_name"], s.dynamodb_url)'); \
	  env -u AWS_PROFILE AWS_ACCESS_KEY_ID="$$key" AWS_SECRET_ACCESS_KEY="$$secret" AWS_DEFAULT_REGION="$$region"
LOCAL_REGISTRY_CLI = $(LOCAL_STACK_ENV) $(PY) -m tools.ops.registry_cli

.PHONY: registry
registry: $(STAMP) ## the local stack's model registry: latest.json and the versions, newest first
	@$(LOCAL_REGISTRY_CLI) show --registry "s3://$$bucket/registry" --endpoint-url "$$endpoint"

.PHONY: rollback
rollback: $(STAMP) ## point the local stack's latest.json and serving pointer back at a complete, loaded version (VERSION=, REASON=, BY=)
	@test -n "$${VERSION:-}" && test -n "$${REASON:-}" || { echo "ERROR: usage: make rollback VERSION=<version> REASON=<why> [BY=<who>]" >&2; exit 2; }
	@$(LOCAL_REGISTRY_CLI) rollback --registry "s3://$$bucket/registry" --endpoint-url "$$endpoint" \
	  --serving-table "$$table" --dynamodb-endpoint-url "$$dynamodb" \
	  --version "$$VERSION" --reason "$$REASON" $${BY:+--by "$$BY"}

.PHONY: serving
serving: $(STAMP) ## the local stack's serving table: the live version and the last pointer moves
	@$(LOCAL_STACK_ENV) $(PY) -m serving.cli pointer --table "$$table" --endpoint-url "$$dynamodb"

# USER is also the login name in every shell's environment: only USER= on the command line counts.
.PHONY: recommend
recommend: $(STAMP) ## one user's top N from the local stack's serving table (the live version), with MovieLens titles (USER=<user id>, N=10)
	@$(if $(filter command line,$(origin USER)),true,echo "ERROR: usage: make recommend USER=<user id> [N=10]" >&2; exit 2)
	@$(LOCAL_STACK_ENV) $(PY) -m serving.cli recommend --table "$$table" --endpoint-url "$$dynamodb" \
	  --user "$(USER)" --n "$(or $(N),10)" $(if $(wildcard $(ML_RAW)/_items.jsonl),--titles $(ML_RAW)/_items.jsonl)

# The run history page (tools/ops/run_report.py), like make registry: by default the running local stack
# (its endpoint, LOCALSTACK_PORT honoured, and test credentials, from localstack/resources.json) with make
# run's config. ENDPOINT_URL=<url> reads that S3 endpoint instead, and ENDPOINT_URL= (empty) real S3, both
# with the default AWS credential chain and the config in force (AIRFLOW_VAR_RECSYS_TRAINING_CONFIG).
.PHONY: report
report: $(STAMP) ## the run history as a page with a plot, var/report/index.html (local stack; ENDPOINT_URL=[url]: that S3 / AWS)
ifeq ($(origin ENDPOINT_URL),undefined)
	@$(LOCAL_STACK_ENV) $(PY) -m tools.ops.run_report --local --endpoint-url "$$endpoint"
else
	$(PY) -m tools.ops.run_report $(if $(ENDPOINT_URL),--endpoint-url "$(ENDPOINT_URL)")
endif

# Tests run in TEST_WORKERS pytest-xdist processes, a test file at a time (see tests/conftest.py):
# each worker has its own Airflow home, moto and Spark session. The in-process suites (unit, Spark, DAG
# under moto) run first; then the suites of the local stack (one group, in one worker, in file order:
# they share its ports and state) beside the spark-submit and Airflow-component suites, which mostly wait.
TEST_WORKERS ?= 2
FAST_MARKERS := unit or spark or dag
PYTEST_PARALLEL = $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: test
test: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) $(STATSD_STAMP) lint test-fast ## lint, then every suite: unit, Spark, DAG (moto), local stack, end to end
	$(PYTEST_PARALLEL) -m "not ($(FAST_MARKERS))"

.PHONY: test-unit
test-unit: $(STAMP) ## only the fast unit tests
	$(PY) -m pytest -m unit

.PHONY: test-fast
test-fast: check-java $(STAMP) ## the edit-test loop: unit, Spark and DAG (moto) tests, no servers or spark-submit (< 5 min)
	$(PYTEST_PARALLEL) -m "$(FAST_MARKERS)"

.PHONY: lint
lint: $(STAMP) ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format
format: $(STAMP) ## ruff fix + format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: requirements
requirements: $(STAMP) ## recompile requirements/dev.txt from pyproject.toml (run from the project root)
	$(UV) pip compile --python-version 3.11 --group pyproject.toml:dev -o requirements/dev.txt -q

.PHONY: requirements-emr
requirements-emr: $(STAMP) ## recompile emr_configs/bootstrap/requirements-emr.txt for EMR's Python 3.9, with every wheel's hash (x86_64 and aarch64)
	$(UV) pip compile --python-version 3.9 --python-platform x86_64-manylinux_2_28 --generate-hashes -q \
	  emr_configs/bootstrap/requirements-emr.in -o emr_configs/bootstrap/requirements-emr.txt

.PHONY: clean
clean: ## remove run outputs (keeps .venv and downloaded data)
	rm -rf $(VAR) build spark-warehouse metastore_db derby.log

.PHONY: distclean
distclean: clean ## remove everything not in git (.venv, data)
	rm -rf $(VENV) $(DATA)
