"""LocalStack READY hook: create what the pipeline's local configuration names (localstack/resources.json).

LocalStack exec()s this file in its own process (its own virtual environment, so its own boto3) once
all services are up; the launcher copies it into ``$FILESYSTEM_ROOT/etc/localstack/init/ready.d`` on
every start and passes the resources file in ``RECSYS_LOCAL_RESOURCES``. State is in memory only
(no PERSISTENCE), so every start creates everything afresh; every call below is idempotent anyway.

Creates: the data-lake and artefact buckets, the alert SNS topic, and an SQS queue subscribed to it
with raw message delivery OFF, so a reader gets the SNS envelope and parses its ``Message``.
"""

import json
import os

import boto3
from botocore.exceptions import ClientError


def _create_all() -> None:
    with open(os.environ["RECSYS_LOCAL_RESOURCES"], encoding="utf-8") as handle:
        resources = json.load(handle)
    host, port = os.environ["GATEWAY_LISTEN"].rsplit(":", 1)
    session = boto3.session.Session(
        aws_access_key_id=resources["aws_access_key_id"],
        aws_secret_access_key=resources["aws_secret_access_key"],
        region_name=resources["region"],
    )
    endpoint = f"http://{host}:{port}"
    s3 = session.client("s3", endpoint_url=endpoint)
    sns = session.client("sns", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)

    for bucket in resources["buckets"].values():
        try:
            s3.create_bucket(Bucket=bucket)  # us-east-1: no LocationConstraint
        except ClientError as error:
            if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise

    alerts = resources["alerts"]
    topic_arn = sns.create_topic(Name=alerts["topic_name"])["TopicArn"]
    queue_url = sqs.create_queue(QueueName=alerts["inbox_queue_name"])["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # The policy real AWS needs before SNS may deliver to the queue; LocalStack does not enforce it,
    # but the resource should look like what a deployment would create.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    existing = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    if not any(sub["Protocol"] == "sqs" and sub["Endpoint"] == queue_arn for sub in existing):
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true" if alerts["raw_message_delivery"] else "false"},
        )
    print(f"recsys resources ready: buckets {sorted(resources['buckets'].values())}, topic {topic_arn}")


_create_all()
