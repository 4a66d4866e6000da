"""Which production model the gate compares against, and how train_cf scores it without leakage.

The registry pointer (``registry/latest.json``) names the production version, its logical date ``ds`` and
its training configuration (``params``; older pointers lack it, and then the version's
``params.json`` is read). Production's *serving* model has seen most of today's per-user holdout, so
scoring its artefact on today's holdout would flatter it. Instead train_cf refits production's recorded
configuration on today's training split, and evaluate scores both on today's holdout: a paired comparison
of configurations on the same users and interactions, neither fit having seen them.

:func:`plan` is pure; train_cf writes its result as ``production/production.json``::

    {"status": "none" | "older_date" | "same_config" | "refit" | "unavailable",
     "version": str | null, "ds": "YYYY-MM-DD" | null, "params": {...} | null,
     "reason": str, "recommendations": URI | null}

- ``none``: no production model yet; ``older_date``: production is from a later logical date than this
  run (a backfill: no paired check); ``unavailable``: the pointer or its configuration cannot be read
  (the gate holds and says why).
- ``same_config``: production's configuration equals the candidate's, so its refit on today's split is
  the candidate's evaluation model (the engines are deterministic for a fixed seed and thread count:
  see :mod:`spark_jobs.common.engines`); ``recommendations`` names the candidate's evaluation lists.
- ``refit``: production's configuration was fitted on today's ``train/``; ``recommendations`` names its
  lists.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Dict, Mapping, Optional

from spark_jobs.common.engines import TrainParams

# Statuses whose ``recommendations`` evaluate scores beside the candidate.
SCORED_STATUSES = ("refit", "same_config")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def params_from_record(record: Mapping[str, Any]) -> TrainParams:
    """A :class:`TrainParams` from a recorded ``params`` mapping (unknown keys ignored).

    Raises ValueError when a value is invalid or the mapping is not a dict.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"recorded params are not an object: {record!r}")
    known = set(TrainParams.__dataclass_fields__)
    try:
        return TrainParams(**{key: value for key, value in record.items() if key in known})
    except TypeError as exc:
        raise ValueError(f"recorded params are malformed: {exc}") from None


def pointer_ds(pointer: Mapping[str, Any]) -> str:
    """The logical date of a pointer: ``ds``, else the date that starts its ``version`` (older layout)."""
    ds = pointer.get("ds")
    if isinstance(ds, str) and _DATE.match(ds):
        return ds[:10]
    match = _DATE.match(str(pointer.get("version", "")))
    if not match:
        raise ValueError(f"the pointer names no logical date (ds or a dated version): {dict(pointer)!r}")
    return match.group(1)


def plan(
    pointer: Optional[Mapping[str, Any]],
    run_date: dt.date,
    candidate: TrainParams,
    read_params: Callable[[str], Optional[Mapping[str, Any]]],
) -> Dict[str, Any]:
    """Decide how production is scored for a run of ``run_date`` with the ``candidate`` configuration.

    Args:
        pointer: the parsed ``latest.json``, or None when there is none.
        read_params: ``model URI -> params.json`` of that model (None if absent); only called for a
            pointer without ``params``.

    Returns the ``production.json`` document without ``recommendations`` (train_cf adds it).
    """
    if pointer is None:
        return _doc("none", None, None, None, "no production model yet")
    version = pointer.get("version")
    try:
        ds = pointer_ds(pointer)
    except ValueError as exc:
        return _doc("unavailable", version, None, None, str(exc))
    if ds > run_date.isoformat():
        return _doc(
            "older_date",
            version,
            ds,
            None,
            f"production {version} is for {ds}, later than this run's {run_date.isoformat()}: "
            "a backfill is registered but never compared or made live",
        )
    record = pointer.get("params")
    if record is None:
        model = pointer.get("model") or pointer.get("model_uri")
        if not model:
            return _doc("unavailable", version, ds, None, "the pointer names neither params nor a model")
        saved = read_params(str(model))
        if saved is None or "params" not in saved:
            return _doc("unavailable", version, ds, None, f"no params.json with params under {model}")
        record = saved["params"]
    try:
        params = params_from_record(record)
    except ValueError as exc:
        return _doc("unavailable", version, ds, None, f"production {version}: {exc}")
    if params == candidate:
        return _doc(
            "same_config",
            version,
            ds,
            params.as_dict(),
            "production's configuration is the candidate's: its refit on today's split is the "
            "candidate's evaluation model",
        )
    return _doc(
        "refit", version, ds, params.as_dict(), "production's configuration refitted on today's split"
    )


def unavailable(version: Optional[str], reason: str) -> Dict[str, Any]:
    """The ``unavailable`` document: production exists but cannot be scored, and ``reason`` says why."""
    return _doc("unavailable", version, None, None, reason)


def _doc(status, version, ds, params, reason) -> Dict[str, Any]:
    return {
        "status": status,
        "version": version,
        "ds": ds,
        "params": params,
        "reason": reason,
        "recommendations": None,
    }
