"""A small evaluator of this project's IAM policy documents, for tests: neither moto nor LocalStack
community enforces IAM, so the tests decide themselves what a policy allows."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Dict, Optional, Sequence


def allows(
    policy: dict,
    action: str,
    resource: str,
    tags: Optional[Dict[str, str]] = None,
    prefix: str = "",
    leading_keys: Sequence[str] = (),
) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource``: ARN wildcards, and the conditions
    these policies use (StringEquals on request/resource tags, StringLike on ``s3:prefix``,
    ForAllValues:StringLike on ``dynamodb:LeadingKeys``: every partition key the request touches, given
    as ``leading_keys``, must match one pattern). There is no Deny in them, so the first matching Allow
    decides."""
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        # fnmatch treats [] as a character class; ARNs here never contain brackets.
        if action not in actions or not any(fnmatchcase(resource, pattern) for pattern in resources):
            continue
        condition = statement.get("Condition", {})
        equals = condition.get("StringEquals", {})
        tag_ok = all(
            (tags or {}).get(key.split("/", 1)[1]) in (wanted if isinstance(wanted, list) else [wanted])
            for key, wanted in equals.items()
            if "Tag/" in key
        )
        like = condition.get("StringLike", {}).get("s3:prefix")
        prefix_ok = like is None or any(fnmatchcase(prefix, pattern) for pattern in like)
        keys = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        keys_ok = keys is None or all(any(fnmatchcase(k, pattern) for pattern in keys) for k in leading_keys)
        if tag_ok and prefix_ok and keys_ok:
            return True
    return False
