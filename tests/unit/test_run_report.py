"""make report's rows: one per run date from handmade run.json / gate.json documents (the shapes record_run
and quality_gate write), gaps for what a run never reached, and unreadable records named, never fatal."""

from __future__ import annotations

import pytest

from tools.ops.run_report import RunRecords, build_row, build_rows, parse_record, report_line, version_index

pytestmark = pytest.mark.unit

RUN_ID = "scheduled__2024-03-02T02:00:00+00:00"


def run_doc(ds, run_id, promoted, **metrics):
    return {
        "ds": ds,
        "run_id": run_id,
        "promoted": promoted,
        "cost": {
            "cluster_id": "j-1",
            "minutes": metrics.get("ClusterMinutes"),
            "provisioning_minutes": 11.5,
            "usd": metrics.get("EstimatedCostUSD"),
            "created_at": f"{ds}T02:05:00+00:00",
            "ready_at": f"{ds}T02:16:30+00:00",
            "ended_at": f"{ds}T02:58:30+00:00",
        },
        "metrics": {**metrics, "ModelPromoted": 1.0 if promoted else 0.0},
    }


def gate_doc(ds, run_id, promote, ndcg, popularity, production=None, make_live=True, reasons=()):
    return {
        "ds": ds,
        "run_id": run_id,
        "promote": promote,
        "make_live": make_live,
        "k": 10,
        "ndcg": ndcg,
        "popularity_ndcg": popularity,
        "production_ndcg": production,
        "production_version": "2024-03-01_j-0" if production is not None else None,
        "paired_ndcg_difference": None if production is None else ndcg - production,
        "reasons": list(reasons) or ["PASS ndcg@10 0.1185 vs floor 0.0500"],
    }


def test_a_promoted_run_has_the_gate_numbers_its_version_and_is_marked_live():
    records = RunRecords(
        ds="2024-03-02",
        run=run_doc(
            "2024-03-02", RUN_ID, True, CandidateNdcg=0.1185, PopularityNdcg=0.072, ProductionNdcg=0.112,
            RejectRatio=0.015, LinesRead=1000, ClusterMinutes=42.0, EstimatedCostUSD=0.84,
        ),
        gate=gate_doc("2024-03-02", RUN_ID, True, 0.1185, 0.072, production=0.112),
    )  # fmt: skip
    row = build_row(records, {RUN_ID: "2024-03-02_j-1"}, live_version="2024-03-02_j-1")
    assert row["status"] == "promoted" and row["version"] == "2024-03-02_j-1" and row["live"]
    assert (row["candidate_ndcg"], row["production_ndcg"], row["popularity_ndcg"]) == (0.1185, 0.112, 0.072)
    assert row["paired_difference"] == pytest.approx(0.0065)
    assert (row["reject_ratio"], row["cost_usd"], row["cluster_minutes"]) == (0.015, 0.84, 42.0)
    assert row["provisioning_minutes"] == 11.5 and row["cluster_wall_minutes"] == 53.5
    assert row["k"] == 10 and row["problems"] == []


def test_the_first_run_has_no_production_number_a_gap_not_a_zero():
    ds, run_id = "2024-03-01", "scheduled__2024-03-01T02:00:00+00:00"
    records = RunRecords(
        ds=ds,
        run=run_doc(ds, run_id, True, CandidateNdcg=0.112, PopularityNdcg=0.071, RejectRatio=0.01),
        gate=gate_doc(ds, run_id, True, 0.112, 0.071, reasons=["PASS no production model yet"]),
    )
    row = build_row(records, {}, None)
    assert row["production_ndcg"] is None and row["paired_difference"] is None
    assert row["status"] == "promoted" and row["version"] is None and not row["live"]


def test_a_held_run_says_which_rules_failed():
    fail = "FAIL paired change vs production 2024-03-01_j-0 -0.0290 (...) vs allowed regression 0.0200"
    records = RunRecords(
        ds="2024-03-03",
        run=run_doc(
            "2024-03-03", RUN_ID, False, CandidateNdcg=0.089, PopularityNdcg=0.07, ProductionNdcg=0.118
        ),
        gate=gate_doc("2024-03-03", RUN_ID, False, 0.089, 0.07, 0.118, reasons=["PASS ndcg@10", fail]),
    )
    row = build_row(records, {}, "2024-03-01_j-0")
    assert row["status"] == "held" and row["note"] == fail and row["version"] is None
    assert row["production_version"] == "2024-03-01_j-0"


def test_a_failed_run_without_metrics_has_gaps_and_the_jobs_own_reason():
    ds = "2024-03-04"
    run = run_doc(ds, RUN_ID, False, LinesRead=1_200_000, RejectRatio=0.083, ClusterMinutes=6.5)
    run["cost"]["usd"] = None  # e.g. no price for the instance type: unknown, not 0
    reason = "FAILED parse_logs: reject ratio 0.0830 (99600/1200000 lines) exceeds --max-reject-ratio 0.05"
    records = RunRecords(
        ds=ds, run=run, outcomes={"parse_logs": {"job": "parse_logs", "status": "failed", "reason": reason}}
    )
    row = build_row(records, {}, None)
    assert row["status"] == "failed" and row["note"] == reason
    for key in ("candidate_ndcg", "production_ndcg", "popularity_ndcg", "users", "fit_seconds", "cost_usd"):
        assert row[key] is None, key
    assert row["reject_ratio"] == 0.083 and row["lines_read"] == 1_200_000 and row["cluster_minutes"] == 6.5
    # Without an outcome record (a job killed from outside) it still says what is known.
    assert "before the quality gate" in build_row(RunRecords(ds=ds, run=run), {}, None)["note"]


def test_corrupt_records_are_named_and_what_is_readable_is_shown():
    gate, problem = parse_record("gate.json", b'{"promote": tr')
    assert gate is None and problem.startswith("gate.json: not JSON")
    assert parse_record("run.json", b"[1, 2]") == (None, "run.json: not a JSON object (a list)")
    assert parse_record("run.json", b"\xff\xfe")[1].startswith("run.json: not UTF-8")
    assert parse_record("run.json", None) == (None, None)  # absent is not a problem

    # run.json corrupt, gate.json fine: the gate's numbers, and the reason.
    bad_run = RunRecords(
        ds="2024-03-05",
        gate=gate_doc("2024-03-05", RUN_ID, True, 0.124, 0.073, 0.1175),
        problems=[parse_record("run.json", b"\x00garbage")[1]],
    )
    row = build_row(bad_run, {}, None)
    assert row["status"] == "unreadable" and row["candidate_ndcg"] == 0.124
    assert row["problems"] and row["problems"][0].startswith("run.json: not JSON")
    # gate.json corrupt, run.json fine: promoted or held is unknown, the run's numbers are shown.
    bad_gate = RunRecords(
        ds="2024-03-06", run=run_doc("2024-03-06", RUN_ID, False, RejectRatio=0.02), problems=[problem]
    )
    row = build_row(bad_gate, {}, None)
    assert row["status"] == "unreadable" and row["reject_ratio"] == 0.02 and row["problems"] == [problem]
    # A malformed number is a problem and a gap, never a 0 or a crash; a bool is not a number either.
    weird = run_doc("2024-03-07", RUN_ID, False, CandidateNdcg="0.1", RejectRatio=True)
    weird["metrics"]["EstimatedCostUSD"] = float("nan")
    row = build_row(RunRecords(ds="2024-03-07", run=weird), {}, None)
    assert row["candidate_ndcg"] is None and row["reject_ratio"] is None and row["cost_usd"] is None
    assert any("CandidateNdcg is not a number" in p for p in row["problems"])
    garbage = build_row(RunRecords(ds="2024-03-08", run={"metrics": [1], "cost": "x"}), {}, None)
    assert garbage["status"] == "failed" and garbage["problems"]


def test_a_backfill_is_registered_not_live():
    gate = gate_doc(
        "2024-02-20", RUN_ID, True, 0.11, 0.07, make_live=False, reasons=["SKIP paired check: production ..."]
    )
    row = build_row(
        RunRecords(ds="2024-02-20", run=run_doc("2024-02-20", RUN_ID, False), gate=gate), {}, None
    )
    assert row["status"] == "backfill" and row["note"].startswith("SKIP")


def test_rows_are_ordered_by_date_whatever_the_listing_order_and_versions_deterministic():
    from itertools import permutations

    for listed in permutations(("2024-03-03", "2024-03-01", "2024-03-02")):  # every listing order
        rows = build_rows([RunRecords(ds=ds) for ds in listed], {}, None)
        assert [r["ds"] for r in rows] == ["2024-03-01", "2024-03-02", "2024-03-03"], listed
        assert all(r["status"] == "incomplete" for r in rows)
    manifests = {
        "2024-03-02_j-2": {"run_id": "r2"},
        "2024-03-01_j-1": {"run_id": "r1"},
        "2024-03-02_j-3": None,
    }
    assert version_index(manifests) == {"r1": "2024-03-01_j-1", "r2": "2024-03-02_j-2"}
    # A run that registered two versions: the same one, whichever order the listing gave them in.
    twice = [("2024-03-04_j-4", {"run_id": "r4"}), ("2024-03-04_j-5", {"run_id": "r4"}), *manifests.items()]
    for listed in permutations(twice):
        assert version_index(dict(listed))["r4"] == "2024-03-04_j-5", listed


def test_report_line_never_raises_and_is_one_line(tmp_path):
    class BrokenS3:
        def get_paginator(self, name):
            raise RuntimeError("connection refused\nsecond line")

    line = report_line(BrokenS3(), {"artifact_bucket": "b"}, tmp_path / "index.html")
    assert line.startswith("warning: no run report (RuntimeError: connection refused")
    assert "\n" not in line
    assert report_line(BrokenS3(), {"no_such_key": 1}, tmp_path / "index.html").startswith("warning:")
