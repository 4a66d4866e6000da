"""The stale-model alarm's definition: what CloudWatch is asked to evaluate, and the limits it enforces."""

from __future__ import annotations

import json

import pytest
from recsys_dag.config import TRAINING_DAG_ID, config_from_mapping
from recsys_dag.run_record import NAMESPACE, PROMOTED
from recsys_dag.stale_model_alarm import alarm_spec

from tools.release import apply_alarms

pytestmark = pytest.mark.unit
TOPIC = "arn:aws:sns:us-east-1:123456789012:recsys-alerts"


def test_hourly_periods_all_breaching_missing_data_included() -> None:
    spec = alarm_spec(TRAINING_DAG_ID, TOPIC, 72 * 3600)
    assert (spec["Namespace"], spec["MetricName"]) == (NAMESPACE, PROMOTED)
    assert spec["Dimensions"] == [{"Name": "Pipeline", "Value": "recsys_training"}]
    # 72 hourly maxima, every one of them below 1 (or missing): no promotion in 72 h.
    assert (spec["Period"], spec["EvaluationPeriods"], spec["DatapointsToAlarm"]) == (3600, 72, 72)
    assert (spec["Statistic"], spec["ComparisonOperator"], spec["Threshold"]) == (
        "Maximum",
        "LessThanThreshold",
        1.0,
    )
    assert spec["TreatMissingData"] == "breaching"  # no run at all is the case it exists for
    assert spec["AlarmActions"] == spec["OKActions"] == [TOPIC]


def test_without_a_topic_the_alarm_has_no_actions() -> None:
    spec = alarm_spec(TRAINING_DAG_ID, "", 3600)
    assert spec["ActionsEnabled"] is False and spec["AlarmActions"] == []


@pytest.mark.parametrize(
    ("window_s", "period_s"),
    [(8 * 24 * 3600, 3600), (2 * 24 * 3600, 60), (90, 60), (0, 3600)],
    ids=["over-7-days", "short-periods-over-1-day", "not-a-multiple", "empty"],
)
def test_windows_cloudwatch_refuses_are_refused_here(window_s: int, period_s: int) -> None:
    with pytest.raises(ValueError):
        alarm_spec(TRAINING_DAG_ID, TOPIC, window_s, period_s)


@pytest.mark.parametrize("hours", [0, 169])
def test_config_refuses_a_window_cloudwatch_cannot_evaluate(hours: int) -> None:
    with pytest.raises(ValueError, match="stale_model_hours"):
        config_from_mapping({"stale_model_hours": hours})


def test_make_alarms_dry_run_prints_the_configured_window(capsys, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", json.dumps({"stale_model_hours": 30, "alert_topic_arn": TOPIC})
    )
    assert apply_alarms.main(["--dry-run"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["EvaluationPeriods"] == 30 and spec["AlarmActions"] == [TOPIC]
