"""The stale-model alarm: a CloudWatch alarm on ``Recsys/Pipeline`` / ``ModelPromoted`` that goes to ALARM
and notifies the alert topic when no run promoted a model for ``stale_model_hours``. Pure functions; the
alarm is created by ``make alarms`` (tools/release/apply_alarms.py), never by the DAG, so it keeps working
when Airflow does not: a dead scheduler or a paused DAG sends no metric at all, and missing data is
breaching.

How it decides: one period per hour, the hour's Maximum of ``ModelPromoted`` (record_run sends 1 when the
run promoted, 0 when it held or failed). An hour is breaching when its maximum is below 1 or it has no
data; the alarm fires when all ``stale_model_hours`` hours in a row breach, and is OK again after the
first hour with a promotion.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from recsys_dag.run_record import NAMESPACE, PIPELINE_DIMENSION, PROMOTED

HOUR_S = 3600
# CloudWatch: Period x EvaluationPeriods at most 7 days (one day for periods under an hour).
MAX_WINDOW_S = 7 * 24 * HOUR_S
SHORT_PERIOD_MAX_WINDOW_S = 24 * HOUR_S


def alarm_name(dag_id: str) -> str:
    return f"{dag_id}-stale-model"


def alarm_spec(dag_id: str, topic_arn: str, window_s: int, period_s: int = HOUR_S) -> Dict[str, Any]:
    """``put_metric_alarm``'s arguments for "no promotion in the last ``window_s`` seconds". A deployment
    uses hourly periods (``window_s`` = ``stale_model_hours`` x 3600); a test shortens both."""
    limit_s = MAX_WINDOW_S if period_s >= HOUR_S else SHORT_PERIOD_MAX_WINDOW_S
    if period_s <= 0 or window_s <= 0 or window_s % period_s:
        raise ValueError(f"window {window_s} s: not a positive multiple of the period {period_s} s")
    if window_s > limit_s:
        raise ValueError(f"a {window_s} s window is longer than CloudWatch allows with {period_s} s periods")
    periods = window_s // period_s
    actions = [topic_arn] if topic_arn else []
    return {
        "AlarmName": alarm_name(dag_id),
        "AlarmDescription": (
            f"No model promoted by {dag_id} for {window_s / HOUR_S:g} h (runs held by the gate, or no run "
            "at all: scheduler down or DAG paused). Check the last runs' gate.json and run.json."
        ),
        "Namespace": NAMESPACE,
        "MetricName": PROMOTED,
        "Dimensions": [{"Name": PIPELINE_DIMENSION, "Value": dag_id}],
        "Statistic": "Maximum",
        "Period": period_s,
        "EvaluationPeriods": periods,
        "DatapointsToAlarm": periods,
        "Threshold": 1.0,
        "ComparisonOperator": "LessThanThreshold",
        "TreatMissingData": "breaching",
        "ActionsEnabled": bool(actions),
        "AlarmActions": actions,
        "OKActions": actions,
    }


def describe(alarm: Mapping[str, Any]) -> str:
    """One line for a described alarm (``describe_alarms``' MetricAlarms entry)."""
    window_h = alarm["Period"] * alarm["EvaluationPeriods"] / HOUR_S
    actions = ", ".join(alarm.get("AlarmActions") or []) or "no actions"
    state = alarm.get("StateValue", "?")
    return f"{alarm['AlarmName']}: {state}, fires after {window_h:g} h without a promotion -> {actions}"
