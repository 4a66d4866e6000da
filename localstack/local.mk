# The local AWS stack: LocalStack (host mode, no Docker) + the local EMR endpoint. Included by ../Makefile.
# Every target sets up what it needs (idempotently); see localstack/README.md.
# Ports: LOCALSTACK_PORT (4566), LOCAL_EMR_PORT (4580); state: LOCAL_AWS_STATE_DIR (var/localstack).

LS_VENV := .venv-localstack
LS_STAMP := $(LS_VENV)/.installed
LS_JARS_DIR := $(or $(LOCAL_AWS_JARS_DIR),$(VAR)/jars)
LS_JARS_STAMP := $(LS_JARS_DIR)/.fetched
LOCAL_AWS := PYTHONPATH=localstack $(PY) -m local_aws

# LocalStack's own virtual environment (its boto3/moto pins clash with Airflow's), from the pinned file.
$(LS_STAMP): localstack/requirements.txt | $(STAMP)
	$(LOCAL_AWS) setup-venv

# hadoop-aws + AWS SDK bundle for S3A, extracted from the sagemaker-pyspark sdist (downloaded, not installed).
$(LS_JARS_STAMP): | $(STAMP)
	$(LOCAL_AWS) setup-jars

.PHONY: local-setup
local-setup: $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) ## install .venv-localstack and the S3A jars (idempotent)

.PHONY: local-up
local-up: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) ## start LocalStack + the local EMR endpoint, wait until ready
	$(LOCAL_AWS) up

.PHONY: local-down
local-down: $(STAMP) ## stop the local AWS stack (harmless if nothing runs)
	$(LOCAL_AWS) down

.PHONY: local-status
local-status: $(STAMP) ## is the local AWS stack running and ready? (PID, RSS, log files)
	@$(LOCAL_AWS) status || true  # exit status 3 (not all ready) is for scripts, not an error here

.PHONY: local-connection
local-connection: $(STAMP) ## print AIRFLOW_CONN_AWS_LOCAL=<json> for the local stack
	@$(LOCAL_AWS) connection --env

.PHONY: test-localstack
test-localstack: check-java $(STAMP) $(LS_STAMP) $(LS_JARS_STAMP) ## only the local AWS stack suite (starts the stack if needed)
	$(PY) -m pytest -m localstack tests/localstack

.PHONY: local-requirements
local-requirements: $(STAMP) ## recompile localstack/requirements.txt from localstack/requirements.in
	$(UV) pip compile --python-version 3.11 localstack/requirements.in -o localstack/requirements.txt -q
