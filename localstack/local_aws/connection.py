"""The Airflow AWS connection ``aws_local``: EMR and DynamoDB at their local endpoints, every other service
at LocalStack.

The amazon provider resolves a client's endpoint as ``extra.service_config.<service>.endpoint_url``,
falling back to ``extra.endpoint_url`` (``AwsConnectionWrapper.get_service_endpoint_url``), so one
connection serves both servers. Credentials are LocalStack's dummies; nothing here reaches AWS.
"""

from __future__ import annotations

import json
from typing import Any, Dict

from local_aws.settings import Settings, load_resources

CONN_ID = "aws_local"


def connection(settings: Settings) -> Dict[str, Any]:
    """The connection in Airflow's JSON form (as accepted by ``AIRFLOW_CONN_<ID>``)."""
    resources = load_resources()
    return {
        "conn_type": "aws",
        "description": "Local AWS stack: EMR and DynamoDB at their local endpoints, the rest at LocalStack.",
        "login": resources["aws_access_key_id"],
        "password": resources["aws_secret_access_key"],
        "extra": {
            "region_name": resources["region"],
            "endpoint_url": settings.localstack_url,
            "service_config": {
                "emr": {"endpoint_url": settings.emr_url},
                "dynamodb": {"endpoint_url": settings.dynamodb_url},
            },
            # Path-style S3 URLs: bucket names as host names would need DNS for *.127.0.0.1.
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        },
    }


def as_json(settings: Settings) -> str:
    return json.dumps(connection(settings), sort_keys=True)


def env_line(settings: Settings) -> str:
    """``AIRFLOW_CONN_AWS_LOCAL='<json>'``, ready for ``export`` in a POSIX shell."""
    return f"AIRFLOW_CONN_{CONN_ID.upper()}='{as_json(settings)}'"


def import_file(settings: Settings) -> Dict[str, Any]:
    """The content of ``localstack/airflow_connection.json`` (``airflow connections import`` format)."""
    return {CONN_ID: connection(settings)}
