"""The local EMR endpoint: moto's EMR API over HTTP, plus a step runner that really executes steps.

A development stand-in for EMR's control plane (localstack/README.md), not a product feature: the DAG talks to
it exactly as to EMR, and each ``command-runner.jar`` step runs as a local process (``spark-submit`` in
local mode, with ``s3://`` mapped to S3A on LocalStack). Started by ``python -m local_aws up``; the
server itself is ``python -m local_emr.server``. Not named ``localstack``: that would shadow LocalStack.
"""
