"""The four jobs spark-submitted in sequence on a generated data set, checked end to end.

Real spark-submit processes (as on EMR or by hand), a real generated clickstream with malformed lines of
every kind; assertions on the written outputs only.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from spark_jobs.common.events import REJECT_REASONS
from spark_jobs.common.published import local_pointer
from tools.datagen.clickstream import generate
from tools.local.run_chain import NOT_RUN, ROOT, render_steps, run_chain
from tools.release.package_jobs import JOBS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spark_env():
    """PATH with the venv first (spark-submit finds pyspark through it) and quiet local Spark defaults."""
    venv_bin = str(Path(sys.executable).parent)
    saved = dict(os.environ)
    os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    os.environ["SPARK_CONF_DIR"] = str(ROOT / "emr_configs" / "local-spark")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("job", JOBS)
def test_each_job_has_help(spark_env, job):
    proc = subprocess.run(
        ["spark-submit", str(ROOT / "spark_jobs" / f"{job}.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout and "--outcome" in proc.stdout


@pytest.fixture(scope="module")
def chain(spark_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("chain")
    manifest = generate(
        base / "raw", events=40000, days=3, users=800, items=400, groups=8, seed=11, quiet=True
    )
    result = run_chain(
        base / "raw",
        base / "work",
        manifest["last_day"],
        engines=("implicit",),
        config={"half_life_days": 7.0, "factors": 32, "iterations": 10, "train_driver_cores": 1},
        per_day=True,
    )
    return manifest, result


def test_parse_logs_reconciles_with_the_generator(chain):
    manifest, result = chain
    assert len(result.parsed_days) == 3
    for day in result.parsed_days:
        expected = manifest["days"][day.split("=", 1)[1]]
        stats = local_pointer(result.location("parsed", ds=day[len("dt=") :]))["stats"]
        assert stats["lines"] == expected["lines"] == stats["accepted"] + stats["rejected"]
        assert stats["accepted"] == expected["expected_accepted"]
        assert stats["rejected_by_reason"] == expected["expected_rejected_by_reason"]
        rejects = [
            json.loads(line)
            for path in Path(stats["rejects"]).glob("part-*.json")
            for line in path.read_text().splitlines()
        ]
        assert len(rejects) == stats["rejected"]
        assert all(set(r) >= {"raw", "reason"} for r in rejects)


def test_every_reject_reason_occurs(chain):
    """Each reason parse_logs knows was counted on some day and is written in that day's rejects."""
    _, result = chain
    counted = {reason: 0 for reason in REJECT_REASONS}
    written = {reason: 0 for reason in REJECT_REASONS}
    for day in result.parsed_days:
        stats = local_pointer(result.location("parsed", ds=day[len("dt=") :]))["stats"]
        for reason, n in stats["rejected_by_reason"].items():
            counted[reason] += n
        for path in Path(stats["rejects"]).glob("part-*.json"):
            for line in path.read_text().splitlines():
                written[json.loads(line)["reason"]] += 1
    assert set(counted) == set(REJECT_REASONS)
    assert all(n > 0 for n in counted.values()), counted
    assert written == counted


def test_features_and_model_outputs_exist(chain):
    manifest, result = chain
    features = result.location("features")
    summary = json.loads((features / "manifest.json").read_text())
    assert summary["events_read"] == manifest["total"]["expected_accepted"]
    assert summary["train_nnz"] > 0 and summary["holdout_nnz"] > 0
    for part in ("train", "holdout", "users", "items", "window"):
        assert list((features / part).glob("part-*.parquet")), part
    model = result.location("model")
    params = json.loads((model / "model" / "params.json").read_text())
    assert params["users"] == summary["users"] and params["items"] == summary["items"]
    lists = params["served_lists"]
    assert lists["users"] == summary["window_users"]  # every user of the window is served
    assert lists["model_users"] == summary["users"]
    assert lists["model_users"] + lists["popularity_users"] == lists["users"]
    evaluation = pd.read_parquet(model / "evaluation" / "recommendations")
    assert len(evaluation) == 10 * summary["users"]  # every user has >= 10 unseen items here

    # What is served, as a user sees it: nothing they already had, whatever the source.
    served = pd.read_parquet(model / "recommendations")
    window = pd.read_parquet(features / "window")
    assert served.merge(window, on=["user_id", "item_id"]).empty
    assert set(served["user_id"]) == set(window["user_id"]) and len(served) == lists["rows"]


def test_the_chain_ran_every_step_of_the_template(chain):
    """The steps are steps.json's, rendered for the run date: all ran but NOT_RUN, in its order."""
    _, result = chain
    names = [step["Name"] for step in render_steps(result.configs["implicit"], result.run_date)]
    ran = [label.split("[", 1)[0] for label in result.timings]
    expected = [name for name in names if name not in NOT_RUN]
    assert list(dict.fromkeys(ran)) == expected
    assert ran.count("parse_logs") == len(result.parsed_days) == 3
    outcomes = result.location("outcomes")
    assert sorted(p.stem for p in outcomes.glob("*.json")) == sorted(expected)


def test_model_beats_popularity(chain):
    _, result = chain
    metrics = result.metrics["implicit"]
    assert set(metrics) == {"k", "model", "popularity", "production", "users_evaluated"}
    assert metrics["production"]["status"] == "none"  # the chain's registry has no live model yet
    assert metrics["users_evaluated"] > 100
    assert metrics["model"]["ndcg@10"] > metrics["popularity"]["ndcg@10"]


def test_packaged_bundle_runs_like_on_emr(spark_env, tmp_path):
    """spark-submit the packaged entry point with the zip as --py-files, as the EMR step does."""
    from tools.release.package_jobs import build

    build("0.0.0-test", tmp_path / "code")
    bundle = tmp_path / "code" / "0.0.0-test"
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "part.jsonl").write_text(
        '{"event_id":"a","user_id":1,"item_id":2,"event_type":"view","ts":"2024-01-01T00:00:00Z"}\nnot json\n'
    )
    proc = subprocess.run(
        [
            "spark-submit", "--py-files", str(bundle / "spark_jobs.zip"),
            str(bundle / "jobs" / "parse_logs.py"),
            "--input", str(raw), "--output", str(tmp_path / "out"), "--rejects", str(tmp_path / "rej"),
        ],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = local_pointer(tmp_path / "out")["stats"]
    assert (stats["lines"], stats["accepted"], stats["rejected"]) == (2, 1, 1)


def test_spark_submitted_parse_logs_rejects_bytes_that_are_not_utf8(spark_env, tmp_path):
    """The real spark-submit job on lines a log file can hold but nobody plans for: it must finish,
    reconcile, and keep every rejected line's exact bytes."""
    good = b'{"event_id":"%s","user_id":1,"item_id":2,"event_type":"view","ts":0}'
    lines = [
        good % b"a",
        b"\xff\xfe\x00 latin-1 or worse \xe9",
        b"\xef\xbb\xbf" + good % b"bom",
        good % b"cr" + b"\r",
        b"[" * 10_000,
        b'{"n":' + b"9" * 5_000 + b"}",
    ]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "part.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    proc = subprocess.run(
        [
            "spark-submit", str(ROOT / "spark_jobs" / "parse_logs.py"),
            "--input", str(raw), "--output", str(tmp_path / "out"), "--rejects", str(tmp_path / "rej"),
        ],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = local_pointer(tmp_path / "out")["stats"]
    assert (stats["lines"], stats["accepted"], stats["rejected"]) == (6, 3, 3)
    assert stats["rejected_by_reason"]["invalid_utf8"] == 1
    assert stats["rejected_by_reason"]["malformed_json"] == 2
    rejects = [
        json.loads(text)
        for path in Path(stats["rejects"]).glob("*.json")
        for text in path.read_text(encoding="utf-8").splitlines()
    ]
    (bad,) = [r for r in rejects if r["reason"] == "invalid_utf8"]
    assert base64.b64decode(bad["raw_base64"]) == lines[1]
    assert bad["raw"] == "\\xff\\xfe\x00 latin-1 or worse \\xe9"
    # The other rejected lines are UTF-8: their text is the line itself, whole (10,000 and 5,000 bytes).
    malformed = sorted(r["raw"] for r in rejects if r["reason"] == "malformed_json")
    assert malformed == sorted(line.decode("utf-8") for line in lines[4:])
    assert not [r for r in rejects if r["reason"] == "malformed_json" and "raw_base64" in r]
