"""make report over a real HTTP S3 endpoint (moto's server on a free loopback port): the CLI reads three
runs' records and the registry from the bucket the configuration names, and writes the page and the plot."""

from __future__ import annotations

import json

import boto3
import pytest
from PIL import Image

from tests.dags.conftest import REGION, reset_moto_server
from tools.ops import run_report

pytestmark = pytest.mark.dag

BUCKET = "acme-ml"  # from the configuration in force, as in a deployment: not the default's bucket


def put(s3, key, doc):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def run_json(ds, promoted, **metrics):
    cost = {"minutes": metrics.get("ClusterMinutes"), "provisioning_minutes": 11.0, "usd": None}
    return {"ds": ds, "run_id": f"scheduled__{ds}", "promoted": promoted, "cost": cost, "metrics": metrics}


def gate_json(ds, promote, ndcg, popularity, production=None):
    reasons = ["PASS ndcg@10"] + ([] if promote else ["FAIL paired change vs production -0.0290"])
    return {
        "ds": ds, "run_id": f"scheduled__{ds}", "promote": promote, "make_live": True, "k": 10, "ndcg": ndcg,
        "popularity_ndcg": popularity, "production_ndcg": production, "reasons": reasons,
    }  # fmt: skip


@pytest.fixture
def s3(moto_server, aws_env, monkeypatch):
    reset_moto_server(moto_server)
    monkeypatch.setenv("AIRFLOW_VAR_RECSYS_TRAINING_CONFIG", json.dumps({"artifact_bucket": BUCKET}))
    client = boto3.client("s3", endpoint_url=moto_server, region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    yield client
    reset_moto_server(moto_server)


def test_the_page_lists_every_run_with_its_numbers_and_the_plot_is_a_png(s3, moto_server, tmp_path, capsys):
    first, held, failed = "2024-03-01", "2024-03-02", "2024-03-03"
    put(s3, f"runs/dt={first}/run.json", run_json(first, True, CandidateNdcg=0.1123, PopularityNdcg=0.0711,
        RejectRatio=0.0121, ClusterMinutes=42.0, EstimatedCostUSD=0.8412))  # fmt: skip
    put(s3, f"runs/dt={first}/gate.json", gate_json(first, True, 0.1123, 0.0711))
    put(s3, f"runs/dt={held}/run.json", run_json(held, False, CandidateNdcg=0.0891, PopularityNdcg=0.0702,
        ProductionNdcg=0.1181, RejectRatio=0.0213, ClusterMinutes=41.5, EstimatedCostUSD=0.8234))  # fmt: skip
    put(s3, f"runs/dt={held}/gate.json", gate_json(held, False, 0.0891, 0.0702, 0.1181))
    put(s3, f"runs/dt={failed}/run.json", run_json(failed, False, RejectRatio=0.0834, ClusterMinutes=6.5))
    put(
        s3,
        f"runs/dt={failed}/outcomes/parse_logs.json",
        {"status": "failed", "reason": "FAILED parse_logs: x"},
    )
    put(s3, "runs/dt=2024-03-04/run.json", b"{corrupt")  # listed with its reason, never fatal
    version = f"{first}_j-1"
    put(
        s3,
        f"registry/versions/{version}/_manifest.json",
        {"version": version, "run_id": f"scheduled__{first}"},
    )
    put(s3, "registry/latest.json", {"version": version, "ds": first, "run_id": f"scheduled__{first}"})

    output = tmp_path / "report" / "index.html"
    assert run_report.main(["--endpoint-url", moto_server, "--output", str(output)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == (
        f"report: {output} (4 runs: 1 promoted, 1 held, 1 failed, 1 unreadable; live {version}; "
        "1 with unreadable records)"
    )

    page = output.read_text()
    for ds in (first, held, failed, "2024-03-04"):
        assert f'<td class="text">{ds}</td>' in page, ds
    for number in ("0.1123", "0.0711", "0.0121", "0.8412", "0.0891", "0.1181", "0.0213", "0.8234", "0.0834"):
        assert f"<td>{number}</td>" in page, number
    assert "FAILED parse_logs: x" in page and "FAIL paired change vs production" in page
    assert "run.json: not JSON" in page and f"<code>{version}</code> <span" in page
    assert page.count("<tr>") == 5  # header + one row per run date
    cell = '<td class="text">{}</td>'.format
    assert page.index(cell(failed)) < page.index(cell(held)) < page.index(cell(first))  # newest first
    assert "data:image/png;base64," in page  # self-contained: nothing fetched from elsewhere
    assert 'src="http' not in page and "<link" not in page and "<script" not in page

    plot = output.parent / run_report.PLOT_NAME
    assert plot.stat().st_size > 10_000
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 500
        image.verify()
