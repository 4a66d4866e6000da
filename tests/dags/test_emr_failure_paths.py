"""Failure paths that must hold on real EMR: API blips, failed steps, runs that time out, reruns.

AWS is moto's HTTP server on 127.0.0.1 (every service), and the DAG's EMR calls go through a
fault-injecting HTTP proxy (tests/dags/fault_proxy.py) that answers chosen calls with throttling, 503s
or connection resets. botocore's own retries are switched off in the test connection, so every injected
fault reaches the DAG's code. The one mocked part is EMR itself: moto never runs or advances steps, so
the tests set each step's final state (and FailureDetails) through moto's backend objects in-process
(StepScript). Everything else is real: Airflow's task runner and retries (``dag.test()``), the provider's
hooks, SNS -> SQS delivery of alerts.
"""

from __future__ import annotations

import json

import pytest

from tests.dags.conftest import HTTP_CONN_ID, REGION, load_dag_module
from tests.dags.test_dag_runs import ACTIVE_CLUSTER_STATES, DS, JOBS, LOGICAL_DATE, StepScript, World

pytestmark = pytest.mark.dag

DAG_ID = "recsys_training"


@pytest.fixture
def http_world(aws_over_http):
    """(World on moto's HTTP server, the FaultProxy in front of EMR)."""
    server, proxy = aws_over_http
    world = World(endpoint_url=server)
    yield world, proxy
    # Whatever happened in the scenario, no cluster may be left running.
    assert world.clusters(ACTIVE_CLUSTER_STATES) == []


def run(monkeypatch, world: World, **overrides):
    """The DAG, configured for the HTTP connection, run for LOGICAL_DATE: (dag_run, {task_id: ti})."""
    config = world.config(aws_conn_id=HTTP_CONN_ID, **overrides)
    module = load_dag_module(monkeypatch, **config)
    dag_run = module.dag.test(logical_date=LOGICAL_DATE)
    return dag_run, {ti.task_id: ti for ti in dag_run.get_task_instances()}


def cluster(world: World, name: str, **tags: str) -> str:
    """A cluster with these tags (as cluster.json sets them), waiting for steps; its id."""
    return world.emr.run_job_flow(
        Name=name,
        ReleaseLabel="emr-7.5.0",
        Instances={
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
        },
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )["JobFlowId"]


def state(world: World, cluster_id: str) -> str:
    return world.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


# --- step sensors: blips are ridden out, failed steps fail at once


def test_throttling_5xx_and_resets_are_ridden_out_within_the_poke(monkeypatch, http_world):
    world, proxy = http_world
    StepScript().install(monkeypatch)  # every step COMPLETED
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    proxy.fail("DescribeStep", ["throttle", "unavailable", "reset", "internal"])

    dag_run, tis = run(monkeypatch, world)

    assert dag_run.state == "success"
    assert proxy.injected == [
        ("DescribeStep", "throttle"),
        ("DescribeStep", "unavailable"),
        ("DescribeStep", "reset"),
        ("DescribeStep", "internal"),
    ]
    # Four faults, then one successful poke per sensor: no Airflow retry was needed.
    assert proxy.calls["DescribeStep"] == 4 + len(JOBS)
    assert all(tis[f"watch_{job}"].state == "success" for job in JOBS)
    assert all(tis[f"watch_{job}"].try_number == 1 for job in JOBS)


def test_errors_outlasting_the_backoff_are_retried_by_airflow(monkeypatch, http_world):
    """One try gives up after 1 + step_transient_retries calls; the task's Airflow retry (the same path
    a worker restart takes) polls again and finds the step that kept running."""
    world, proxy = http_world
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    proxy.fail("DescribeStep", ["throttle"] * 3)

    dag_run, tis = run(monkeypatch, world, step_transient_retries=2, step_sensor_retries=1)

    assert dag_run.state == "success"
    assert tis["watch_parse_logs"].state == "success" and tis["watch_parse_logs"].try_number == 2
    assert proxy.calls["DescribeStep"] == 3 + len(JOBS)
    assert len(world.clusters()) == 1  # the retry watched the same cluster, nothing was recreated


def test_an_api_outage_longer_than_every_retry_fails_and_tears_down(monkeypatch, http_world):
    world, proxy = http_world
    StepScript().install(monkeypatch)
    world.day_arrives()
    proxy.fail("DescribeStep", ["unavailable"] * 4)  # (1 + 1 transient retry) x (1 + 1 Airflow retry)

    dag_run, tis = run(monkeypatch, world, step_transient_retries=1, step_sensor_retries=1)

    assert dag_run.state == "failed"
    assert tis["watch_parse_logs"].state == "failed" and tis["watch_parse_logs"].try_number == 2
    assert tis["terminate_cluster"].state == "success"
    (alert,) = world.messages()
    assert "task: watch_parse_logs (try 2)" in alert and "ServiceUnavailable" in alert


def test_a_failed_step_fails_its_sensor_at_once_without_retry(monkeypatch, http_world):
    world, proxy = http_world
    StepScript(outcomes={"parse_logs": "FAILED", **{job: "CANCELLED" for job in JOBS[1:]}}).install(
        monkeypatch
    )
    world.day_arrives()
    proxy.fail("DescribeStep", ["throttle"])  # a blip first: ridden out, then the real failure

    dag_run, tis = run(monkeypatch, world, step_sensor_retries=2)

    assert dag_run.state == "failed"
    sensor = tis["watch_parse_logs"]
    assert sensor.state == "failed" and sensor.try_number == 1  # retries=2 were not used
    assert all(tis[f"watch_{job}"].state == "upstream_failed" for job in JOBS[1:])
    assert tis["terminate_cluster"].state == "success"
    (only,) = world.clusters()
    step_id = world.emr.list_steps(ClusterId=only["Id"], StepStates=["FAILED"])["Steps"][0]["Id"]
    (alert,) = world.messages()
    assert (
        f"error: AirflowFailException: step parse_logs ({step_id}) on cluster {only['Id']} is FAILED: "
        "Unknown Error. Step parse_logs exited with code 2; log: s3://"
    ) in alert


def test_a_step_running_past_its_timeout_by_emr_clock_fails_without_retry(monkeypatch, http_world):
    """A retried sensor restarts its own clock; EMR's StartDateTime does not, so the budget holds."""
    import datetime as dt

    from moto.emr.models import ElasticMapReduceBackend

    world, _ = http_world
    original = ElasticMapReduceBackend.describe_step

    def started_long_ago(backend, cluster_id, step_id):
        step = original(backend, cluster_id, step_id)
        step.start_date_time = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
        return step  # RUNNING (moto's first step), for two hours by EMR's timeline

    monkeypatch.setattr(ElasticMapReduceBackend, "describe_step", started_long_ago)
    world.day_arrives()

    dag_run, tis = run(monkeypatch, world, step_timeout_seconds=3600, step_sensor_retries=2)

    assert dag_run.state == "failed"
    sensor = tis["watch_parse_logs"]
    assert sensor.state == "failed" and sensor.try_number == 1
    (alert,) = world.messages()
    assert "AirflowSensorTimeout: step parse_logs" in alert and "over its 3600 s" in alert


def test_deferrable_sensors_fail_a_failed_step_without_retry_too(monkeypatch, http_world):
    """Deferred, the provider's trigger waits for the step and reports a failure as an error event;
    the sensor turns it into AirflowFailException with the step's details, not a retryable error."""
    world, _ = http_world
    script = StepScript(
        outcomes={"parse_logs": "FAILED", **{job: "CANCELLED" for job in JOBS[1:]}}, running_polls=1
    )
    script.install(monkeypatch)
    world.day_arrives()

    dag_run, tis = run(monkeypatch, world, deferrable=True, step_sensor_retries=2)

    assert dag_run.state == "failed"
    sensor = tis["watch_parse_logs"]
    assert sensor.state == "failed" and sensor.try_number == 1
    # The first poke saw RUNNING and deferred; the trigger's waiter saw FAILED; the sensor looked again.
    assert max(script.polls.values()) >= 3
    (alert,) = world.messages()
    assert "AirflowFailException: step parse_logs" in alert and "Step parse_logs exited with code 2" in alert


# --- a run that failed or timed out leaves no cluster


def test_the_failure_callback_terminates_only_this_runs_active_clusters(http_world):
    from recsys_dag.cleanup import RunCleanup

    world, proxy = http_world
    run_id = "scheduled__2024-01-31T02:00:00+00:00"
    ours = cluster(world, "recsys-training-2024-01-31", dag_id=DAG_ID, run_id=run_id, logical_date=DS)
    ours_done = cluster(world, "recsys-training-2024-01-31", dag_id=DAG_ID, run_id=run_id, logical_date=DS)
    world.emr.terminate_job_flows(JobFlowIds=[ours_done])
    other_run = cluster(
        world, "recsys-training-2024-01-30", dag_id=DAG_ID, run_id="manual__x", logical_date=DS
    )
    other_dag = cluster(world, "someone-else", dag_id="another_dag", run_id=run_id)
    untagged = cluster(world, "untagged")
    # The Airflow role may not describe clusters of other teams (IAM is scoped by the dag_id tag).
    proxy.fail("DescribeCluster", ["denied"], when=lambda body: body.get("ClusterId") == untagged)

    outcome = RunCleanup(DAG_ID, HTTP_CONN_ID, REGION, world.topic_arn, 50400)(
        {"run_id": run_id, "reason": "timed_out"}
    )

    assert outcome["terminated"] == [ours] and outcome["error"] is None
    assert proxy.injected == [("DescribeCluster", "denied")]
    assert state(world, ours) == "TERMINATED"
    assert {state(world, c) for c in (other_run, other_dag, untagged)} == {"WAITING"}
    (alert,) = world.messages()
    assert f"run: {run_id}" in alert
    assert "the run timed out: dagrun_timeout (50400 s) reached" in alert
    assert f"terminated clusters: {ours} (recsys-training-2024-01-31, was WAITING)" in alert
    assert ours_done not in alert and other_run not in alert
    world.emr.terminate_job_flows(JobFlowIds=[other_run, other_dag, untagged])


def test_the_failure_callback_alerts_only_when_there_is_news(http_world):
    """A run whose teardown already ran (an ordinary task failure): nothing to terminate, no second
    alert. A failed run that still had a cluster: terminated and said so."""
    from recsys_dag.cleanup import RunCleanup

    world, _ = http_world
    cleanup = RunCleanup(DAG_ID, HTTP_CONN_ID, REGION, world.topic_arn)
    assert cleanup({"run_id": "r1", "reason": "task_failure"})["terminated"] == []
    assert world.messages() == []

    left = cluster(world, "recsys-training-2024-01-31", dag_id=DAG_ID, run_id="r2", logical_date=DS)
    assert cleanup({"run_id": "r2", "reason": "task_failure"})["terminated"] == [left]
    (alert,) = world.messages()
    assert "the run failed (task_failure)" in alert and f"terminated clusters: {left}" in alert

    assert cleanup({"run_id": "r3", "reason": "timed_out"})["terminated"] == []
    (alert,) = world.messages()
    assert "timed out" in alert and "terminated clusters: none" in alert


def test_the_failure_callback_still_alerts_when_emr_is_unreachable(http_world):
    from recsys_dag.cleanup import RunCleanup

    world, proxy = http_world
    proxy.fail("ListClusters", ["unavailable"])

    outcome = RunCleanup(DAG_ID, HTTP_CONN_ID, REGION, world.topic_arn)(
        {"run_id": "r", "reason": "timed_out"}
    )

    assert "ServiceUnavailable" in outcome["error"]
    (alert,) = world.messages()
    assert "cluster cleanup FAILED, check EMR by hand" in alert


# --- a rerun starts clean


def test_a_rerun_terminates_the_earlier_attempts_cluster_first(monkeypatch, http_world):
    world, _ = http_world
    StepScript().install(monkeypatch)
    world.day_arrives()
    world.steps_wrote_outputs(ndcg=0.20)
    # An earlier attempt for the same date whose Airflow died mid-run, and another date's cluster.
    stale = cluster(world, f"recsys-training-{DS}", dag_id=DAG_ID, run_id="manual__dead", logical_date=DS)
    other_date = cluster(
        world, "recsys-training-2024-01-30", dag_id=DAG_ID, run_id="manual__y", logical_date="2024-01-30"
    )

    dag_run, tis = run(monkeypatch, world)

    assert dag_run.state == "success"
    assert state(world, stale) == "TERMINATED"
    assert state(world, other_date) == "WAITING"
    new = world.emr.describe_cluster(ClusterId=tis["create_cluster"].xcom_pull(task_ids="create_cluster"))
    tags = {tag["Key"]: tag["Value"] for tag in new["Cluster"]["Tags"]}
    assert tags["run_id"] == dag_run.run_id and new["Cluster"]["Id"] != stale
    world.emr.terminate_job_flows(JobFlowIds=[other_date])


def test_create_cluster_logs_which_clusters_it_terminated(http_world, capsys):
    from recsys_dag.emr_operators import EmrCreateJobFlowFromTemplateOperator

    world, _ = http_world
    stale = cluster(world, f"recsys-training-{DS}", dag_id=DAG_ID, run_id="manual__dead", logical_date=DS)
    request = {
        "Name": f"recsys-training-{DS}",
        "ReleaseLabel": "emr-7.5.0",
        "Instances": {
            "KeepJobFlowAliveWhenNoSteps": True,
            "InstanceCount": 1,
            "MasterInstanceType": "m5.xlarge",
        },
        "Tags": [{"Key": "dag_id", "Value": DAG_ID}, {"Key": "logical_date", "Value": DS}],
    }
    operator = EmrCreateJobFlowFromTemplateOperator(
        task_id="create_probe",
        job_flow_overrides=json.dumps(request),
        emr_conn_id=None,
        aws_conn_id=HTTP_CONN_ID,
        region_name=REGION,
    )

    created = operator.execute({"ti": _NoXCom()})

    assert state(world, stale) == "TERMINATED" and state(world, created) == "WAITING"
    logged = capsys.readouterr().out  # Airflow's task loggers write to stdout outside a task runner
    assert (
        f"terminated clusters of an earlier attempt ({{'dag_id': '{DAG_ID}', 'logical_date': '{DS}'}})"
        in logged
    )
    assert f"{stale} (recsys-training-{DS}, was WAITING)" in logged
    world.emr.terminate_job_flows(JobFlowIds=[created])


class _NoXCom:
    def xcom_push(self, key, value):
        pass


def test_the_test_connection_leaves_every_fault_to_the_dags_code(http_world):
    """The premise of the tests above: with botocore's retries off, one injected fault reaches the
    caller, and the sensor's classifier calls each kind transient (a denial is not)."""
    from airflow.providers.amazon.aws.hooks.emr import EmrHook
    from recsys_dag.emr_sensors import is_transient

    world, proxy = http_world
    emr = EmrHook(aws_conn_id=HTTP_CONN_ID, region_name=REGION, emr_conn_id=None).conn
    cluster_id = cluster(world, "probe")
    kinds = ["throttle", "unavailable", "internal", "reset", "denied"]
    proxy.fail("DescribeCluster", kinds)
    seen = []
    for _ in kinds:
        with pytest.raises(Exception) as raised:
            emr.describe_cluster(ClusterId=cluster_id)
        seen.append((type(raised.value).__name__, is_transient(raised.value)))
    assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Id"] == cluster_id
    assert proxy.calls["DescribeCluster"] == len(kinds) + 1  # no hidden retries
    assert [transient for _, transient in seen] == [True, True, True, True, False]
    assert seen[3][0] in ("ConnectionClosedError", "EndpointConnectionError")  # the reset
    world.emr.terminate_job_flows(JobFlowIds=[cluster_id])
