"""Print the EMR instance profile's policy for the configuration in force (the DAG config's env var).

    python -m tools.release.render_emr_policy [--region eu-west-1] [--account 123456789012] [--placeholders]

``--placeholders`` leaves the buckets as ``${...}`` (and the region and account unless given): what
``emr_configs/iam/emr-instance-profile-policy.json`` holds (``--placeholders`` without region or
account rewrites it exactly).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))

from recsys_dag.config import load_config
from recsys_dag.emr_policy import instance_profile_policy, placeholder_config


def render(placeholders: bool, region: Optional[str], account: Optional[str] = None) -> str:
    cfg = load_config()
    if placeholders:
        cfg = placeholder_config(cfg)
    policy = instance_profile_policy(cfg, region or "${Region}", account or "${AccountId}")
    return json.dumps(policy, indent=2) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--region", default=None, help="the cluster's region (default: the ${Region} placeholder)"
    )
    parser.add_argument(
        "--account", default=None, help="the AWS account id (default: the ${AccountId} placeholder)"
    )
    parser.add_argument(
        "--placeholders", action="store_true", help="buckets as ${DataBucket} / ${ArtifactBucket}"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.placeholders, args.region, args.account))
    return 0


if __name__ == "__main__":
    sys.exit(main())
