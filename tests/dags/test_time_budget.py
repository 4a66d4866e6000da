"""The time budget: timeouts and retries must add up to less than dagrun_timeout, checked at parse time."""

from __future__ import annotations

import pytest
from recsys_dag.config import PipelineConfig, check_time_budget, config_from_mapping, time_budget

pytestmark = pytest.mark.unit


def test_the_defaults_fit_a_daily_run():
    cfg = config_from_mapping({})
    total = check_time_budget(cfg)
    assert total == 4 * 3600 + 1800 + 5 * 5400 + 8 * 2 * 300 + 5 * 2 * 60 + 1800 == 50400  # 14 h 0 min
    assert total <= cfg.dagrun_timeout_seconds == 14 * 3600 < 24 * 3600


def test_the_old_defaults_are_refused_naming_every_number():
    old = {
        "data_wait_timeout_seconds": 6 * 3600,
        "step_timeout_seconds": 4 * 3600,
        "dagrun_timeout_seconds": 12 * 3600,
    }
    with pytest.raises(ValueError) as refused:
        config_from_mapping(old)
    message = str(refused.value)
    assert message.startswith("time budget 102600 s exceeds dagrun_timeout_seconds 43200: ")
    for part in (
        "data_wait_timeout_seconds 21600",
        "cluster_start_timeout_seconds 1800",
        "5 steps x step_timeout_seconds 14400 (= 72000)",
        "8 tasks x retries 2 x retry_delay_seconds 300 (= 4800)",
        "5 sensors x step_sensor_retries 2 x step_sensor_retry_delay_seconds 60 (= 600)",
        "budget_margin_seconds 1800",
        "= 102600 s",
    ):
        assert part in message, part


def test_sensor_retries_count_against_the_budget():
    fits = {"dagrun_timeout_seconds": 50400}
    assert check_time_budget(config_from_mapping(fits)) == 50400
    with pytest.raises(ValueError, match="step_sensor_retries 3"):
        config_from_mapping({**fits, "step_sensor_retries": 3})
    with pytest.raises(ValueError, match="retries 3 x retry_delay_seconds 300"):
        config_from_mapping({**fits, "retries": 3})


def test_only_a_test_configuration_may_skip_the_check():
    assert PipelineConfig().test_only_skip_time_budget_check is False
    tiny = {"dagrun_timeout_seconds": 45}
    with pytest.raises(ValueError, match="exceeds dagrun_timeout_seconds 45"):
        config_from_mapping(tiny)
    assert (
        config_from_mapping({**tiny, "test_only_skip_time_budget_check": True}).dagrun_timeout_seconds == 45
    )


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"step_timeout_seconds": 0}, "step_timeout_seconds must be > 0"),
        ({"step_sensor_retries": -1}, "step_sensor_retries must be >= 0"),
        ({"step_transient_backoff_max_seconds": 1.0}, "step_transient_backoff_max_seconds must be >="),
    ],
)
def test_durations_are_validated(overrides, message):
    with pytest.raises(ValueError, match=message):
        config_from_mapping(overrides)


def test_every_configuration_in_the_repository_passes():
    """The DAG tests' base config, make run's and make airflow's local config, the e2e scenarios'."""
    from types import SimpleNamespace

    from tests.dags.test_dag_runs import World
    from tools.local.run import local_config

    base = World.config(SimpleNamespace(topic_arn="arn:aws:sns:us-east-1:123456789012:t"))  # no AWS needed
    configs = {
        "tests/dags": base,
        "tests/dags HTTP": {**base, "aws_conn_id": "aws_moto_http"},
        "make run": local_config("1.2.3"),
        "make airflow": local_config("1.2.3", schedule=None),
        "e2e": local_config("0.0.0-e2e", raw_prefix="e2e-x/raw/events", factors=32, iterations=10),
    }
    for name, config in configs.items():
        cfg = config_from_mapping(config)
        assert check_time_budget(cfg) <= cfg.dagrun_timeout_seconds, name
    assert sum(seconds for _, seconds in time_budget(PipelineConfig())) == 50400
