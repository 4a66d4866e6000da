"""Create or update the stale-model alarm (dags/recsys_dag/stale_model_alarm.py) in CloudWatch.

    python -m tools.release.apply_alarms [--endpoint-url URL] [--dry-run]
    python -m tools.release.apply_alarms --local      # the running local stack, with make run's config

The window (``stale_model_hours``) and the topic it notifies (``alert_topic_arn``) come from the DAG
configuration in force (``AIRFLOW_VAR_RECSYS_TRAINING_CONFIG``; ``--local``: make run's local
configuration). Idempotent: PutMetricAlarm replaces an alarm of the same name. Needs
``cloudwatch:PutMetricAlarm`` and ``cloudwatch:DescribeAlarms`` on the alarm; the Airflow role needs neither.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))

from recsys_dag.config import TRAINING_DAG_ID, config_from_mapping, load_config
from recsys_dag.stale_model_alarm import HOUR_S, alarm_spec, describe


def apply(cloudwatch, spec: Dict[str, Any]) -> Dict[str, Any]:
    """Put the alarm and return it as CloudWatch describes it now."""
    cloudwatch.put_metric_alarm(**spec)
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[spec["AlarmName"]])["MetricAlarms"]
    return alarm


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=None, help="CloudWatch endpoint (LocalStack), default AWS")
    parser.add_argument("--local", action="store_true", help="the local stack, make run's config")
    parser.add_argument("--dry-run", action="store_true", help="print the alarm, change nothing")
    args = parser.parse_args(argv)
    if args.local:
        from tools.local.run import local_client, local_config

        cfg = config_from_mapping(local_config("0.0.0"))
        cloudwatch = None if args.dry_run else local_client("cloudwatch")
    else:
        import boto3

        cfg = load_config()
        cloudwatch = None if args.dry_run else boto3.client("cloudwatch", endpoint_url=args.endpoint_url)
    spec = alarm_spec(TRAINING_DAG_ID, cfg.alert_topic_arn, cfg.stale_model_hours * HOUR_S)
    if args.dry_run:
        print(json.dumps(spec, indent=2))
        return 0
    if not cfg.alert_topic_arn:
        print("warning: no alert_topic_arn: the alarm changes state, notifies nobody", file=sys.stderr)
    print(describe(apply(cloudwatch, spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
