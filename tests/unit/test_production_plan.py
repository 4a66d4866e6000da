"""Which production model the gate compares with, and how: spark_jobs.common.production.plan."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.common.engines import TrainParams
from spark_jobs.common.production import plan

pytestmark = pytest.mark.unit

RUN = dt.date(2024, 1, 31)
CANDIDATE = TrainParams(factors=64)
OTHER = TrainParams(factors=16, iterations=5)


def no_params(uri):
    raise AssertionError(f"params.json of {uri} must not be read")


def test_no_pointer_means_no_production():
    assert plan(None, RUN, CANDIDATE, no_params)["status"] == "none"


def test_a_production_from_a_later_date_is_a_backfill():
    doc = plan({"version": "2024-02-03_j-9", "ds": "2024-02-03"}, RUN, CANDIDATE, no_params)
    assert doc["status"] == "older_date" and doc["ds"] == "2024-02-03"
    assert "later than this run's 2024-01-31" in doc["reason"]


def test_the_same_configuration_needs_no_second_fit():
    pointer = {"version": "2024-01-30_j-1", "ds": "2024-01-30", "params": CANDIDATE.as_dict()}
    doc = plan(pointer, RUN, CANDIDATE, no_params)
    assert doc["status"] == "same_config" and doc["params"] == CANDIDATE.as_dict()


def test_another_configuration_is_refitted_and_a_same_day_production_counts():
    pointer = {"version": "2024-01-31_j-1", "ds": "2024-01-31", "params": OTHER.as_dict()}
    doc = plan(pointer, RUN, CANDIDATE, no_params)
    assert doc == {
        "status": "refit",
        "version": "2024-01-31_j-1",
        "ds": "2024-01-31",
        "params": OTHER.as_dict(),
        "reason": "production's configuration refitted on today's split",
        "recommendations": None,
    }


def test_an_old_layout_pointer_is_read_through_its_params_json():
    pointer = {"version": "2024-01-30", "model_uri": "s3://arts/registry/versions/2024-01-30/model"}
    seen = []

    def read(uri):
        seen.append(uri)
        return {"engine": "implicit", "params": {**OTHER.as_dict(), "retired_knob": 1}}

    doc = plan(pointer, RUN, CANDIDATE, read)
    assert seen == ["s3://arts/registry/versions/2024-01-30/model"]
    assert doc["status"] == "refit" and doc["ds"] == "2024-01-30" and doc["params"] == OTHER.as_dict()


@pytest.mark.parametrize(
    "pointer,reason",
    [
        ({"version": "latest"}, "names no logical date"),
        ({"version": "2024-01-30"}, "neither params nor a model"),
        ({"version": "2024-01-30", "model_uri": "s3://x/m"}, "no params.json with params under s3://x/m"),
        ({"version": "2024-01-30", "params": {"engine": "lightfm"}}, "unknown engine"),
        ({"version": "2024-01-30", "params": ["factors", 3]}, "not an object"),
    ],
)
def test_a_production_that_cannot_be_scored_says_why(pointer, reason):
    doc = plan(pointer, RUN, CANDIDATE, lambda uri: None)
    assert doc["status"] == "unavailable" and reason in doc["reason"]
