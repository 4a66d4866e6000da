"""make run's verdict: a DAG run that ran no task, or failed one, is a failure of make run."""

from __future__ import annotations

import pytest

from tools.local.run import local_config, verdict

pytestmark = pytest.mark.unit


def test_verdict():
    ok = [{"task_id": "a", "state": "success"}, {"task_id": "hold_model", "state": "skipped"}]
    assert verdict(0, ok) == 0
    assert verdict(0, []) == 1  # e.g. a logical date before start_date: nothing ran
    assert verdict(1, ok) == 1
    assert verdict(0, [*ok, {"task_id": "watch_train_cf", "state": "failed"}]) == 1


def test_local_config_is_a_valid_dag_config_that_covers_movielens_dates():
    from recsys_dag.config import config_from_mapping

    cfg = config_from_mapping(local_config("1.2.3"))
    assert cfg.start_datetime().year <= 1998 and cfg.code_version == "1.2.3"
    assert cfg.aws_conn_id == "aws_local"


def test_served_lists_check_counts_sources_lengths_and_repeats():
    import pandas as pd

    from tools.local.run import served_lists_check

    served = pd.DataFrame(
        {
            "user_id": ["1", "1", "2", "2", "3"],
            "item_id": ["a", "b", "a", "c", "z"],
            "source": ["model", "model", "model", "model", "popularity"],
        }
    )
    window = pd.DataFrame({"user_id": ["1", "2", "3", "4"], "item_id": ["c", "c", "y", "a"]})
    assert served_lists_check(served, window) == {
        "users": 3,
        "model_users": 2,
        "popularity_users": 1,
        "window_users": 4,
        "min_items": 1,
        "max_items": 2,
        "already_seen": 1,  # user 2 is served c, which they had
    }
