"""The EMR instance profile's policy, derived from the locations the steps use.

Every process on the cluster (the Spark jobs, EMR's log pusher, the bootstrap action) acts as the
instance profile. It may read the code and the inputs, write only the pipeline's own output prefixes and
the serving table's version items (never its pointer), and nothing else in the account: no ``s3:*``, no
other bucket, no other table, no other AWS service. The Airflow role
(emr_configs/iam/airflow-recsys-policy.json) is separate: promotion, the registry's writes and alerts
happen there, never on the cluster.

``python -m tools.release.render_emr_policy`` prints the document for the configuration in force;
``emr_configs/iam/emr-instance-profile-policy.json`` is the default configuration's, with the buckets,
region and account left as ``${...}`` placeholders. Pure functions, no AWS calls.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from recsys_dag.config import PipelineConfig
from recsys_dag.locations import s3_uri, split_s3_uri

# What each kind of prefix allows. Spark's writes overwrite (delete) and upload in parts; parse_logs
# prunes old attempts; every writer also reads back what it wrote (_PUBLISHED.json, manifests).
READ = ["s3:GetObject"]
WRITE = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
LOGS = ["s3:PutObject"]  # EMR's log pusher only uploads


def _prefix(uri: str) -> Tuple[str, str]:
    bucket, key = split_s3_uri(uri)
    return bucket, key.strip("/")


def prefixes(cfg: PipelineConfig) -> Dict[str, List[Tuple[str, str]]]:
    """(bucket, prefix) per access kind: ``read`` (code, raw events, the registry: train_cf reads
    production's pointer and parameters), ``write`` (parsed events and their attempts, rejects, the
    runs' and the sweeps' outputs), ``logs`` (EMR's LogUri)."""
    return {
        "read": [
            _prefix(s3_uri(cfg.artifact_bucket, cfg.code_prefix)),  # every deployed code version
            _prefix(s3_uri(cfg.data_bucket, cfg.raw_prefix)),
            _prefix(s3_uri(cfg.artifact_bucket, cfg.registry_prefix)),
        ],
        "write": [
            _prefix(s3_uri(cfg.data_bucket, cfg.parsed_prefix)),
            _prefix(s3_uri(cfg.data_bucket, cfg.rejects_prefix)),
            _prefix(s3_uri(cfg.artifact_bucket, cfg.runs_prefix)),
            _prefix(s3_uri(cfg.artifact_bucket, cfg.tuning_prefix)),
        ],
        "logs": [_prefix(s3_uri(cfg.artifact_bucket, cfg.emr_log_prefix))],
    }


def _objects(pairs: List[Tuple[str, str]]) -> List[str]:
    # Hadoop's S3 clients HEAD the folder's own key before listing it, and EMRFS marks a folder with a
    # "<folder>_$folder$" object beside it: both are allowed for the prefix itself, nothing beside it.
    out = []
    for bucket, prefix in pairs:
        out += [f"arn:aws:s3:::{bucket}/{prefix}{suffix}" for suffix in ("", "/*", "_$folder$")]
    return out


# load_serving (serving/load.py) writes its version's items, all keyed "<version>#<user>" or
# "<version>@<what>" with a version that starts with its date; it reads the pointer to refuse the live
# version, and checks it again in the transaction that marks the version loaded. It can never write the
# pointer ("@pointer", "@pointer#<seq>"): moving it is promotion's, in Airflow.
SERVING_WRITE = ["dynamodb:BatchWriteItem", "dynamodb:PutItem"]
SERVING_READ_POINTER = ["dynamodb:GetItem", "dynamodb:ConditionCheckItem"]
VERSION_KEYS = ["????-??-??*"]
POINTER_KEYS = ["@pointer"]


def serving_table_arn(cfg: PipelineConfig, region: str, account: str) -> str:
    """The serving table's ARN."""
    return f"arn:aws:dynamodb:{region}:{account}:table/{cfg.serving_table}"


def instance_profile_policy(
    cfg: PipelineConfig, region: str = "${Region}", account: str = "${AccountId}"
) -> Dict[str, Any]:
    """The IAM policy document (a dict) for the cluster's instance profile (``cfg.job_flow_role``)."""
    kinds = prefixes(cfg)
    buckets = sorted({bucket for pairs in kinds.values() for bucket, _ in pairs})
    listed: Dict[str, List[str]] = {bucket: [] for bucket in buckets}
    for pairs in kinds.values():
        for bucket, prefix in pairs:
            listed[bucket] += [prefix, f"{prefix}/*"]
    statements: List[Dict[str, Any]] = [
        {
            "Sid": "ReadCodeRawEventsAndRegistry",
            "Effect": "Allow",
            "Action": READ,
            "Resource": _objects(kinds["read"]),
        },
        {
            "Sid": "WriteParsedRejectsRunsAndTuning",
            "Effect": "Allow",
            "Action": WRITE,
            "Resource": _objects(kinds["write"]),
        },
        {"Sid": "ShipEmrLogs", "Effect": "Allow", "Action": LOGS, "Resource": _objects(kinds["logs"])},
    ]
    for index, bucket in enumerate(buckets, start=1):
        statements.append(
            {
                "Sid": f"ListOnlyPipelinePrefixes{index}",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": sorted(set(listed[bucket]))}},
            }
        )
    statements.append(
        {
            "Sid": "LocateTheBucketsAndTheirUploads",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            "Resource": [f"arn:aws:s3:::{bucket}" for bucket in buckets],
        }
    )
    table = serving_table_arn(cfg, region, account)
    statements += [
        {
            "Sid": "LoadServingListsIntoTheirVersion",
            "Effect": "Allow",
            "Action": SERVING_WRITE,
            "Resource": table,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": VERSION_KEYS}},
        },
        {
            "Sid": "ReadTheServingPointer",
            "Effect": "Allow",
            "Action": SERVING_READ_POINTER,
            "Resource": table,
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": POINTER_KEYS}},
        },
    ]
    # EMR's own regional bucket (AWS-owned, read only): release components some EMR features fetch.
    statements.append(
        {
            "Sid": "ReadEmrRegionalArtifacts",
            "Effect": "Allow",
            "Action": READ,
            "Resource": f"arn:aws:s3:::{region}.elasticmapreduce/*",
        }
    )
    return {"Version": "2012-10-17", "Statement": statements}


def placeholder_config(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` with its buckets as the ``${DataBucket}`` / ``${ArtifactBucket}`` placeholders the
    committed policy documents use."""
    import dataclasses

    return dataclasses.replace(cfg, data_bucket="${DataBucket}", artifact_bucket="${ArtifactBucket}")
