"""Simulated YARN for cluster-mode steps: application and container ids, and the launcher's output.

On EMR, ``spark-submit --deploy-mode cluster`` only *submits* the application to YARN and then polls
it: the step's own stdout/stderr hold that launcher's lines (submission, an application report now and
then, the final report and, on failure, ``Exception in thread "main" org.apache.spark.SparkException:
Application … finished with failed status``), while the driver's output goes to the application
master's container log. The stand-in runs the driver locally in client mode and writes what the
launcher would have printed (Spark 3.5's ``org.apache.spark.deploy.yarn.Client``, EMR's log4j2 layout
``yy/MM/dd HH:mm:ss LEVEL Logger: message``), from the step's real start and end times. Pure functions.

Ids as YARN makes them: ``application_<RM start epoch ms>_<sequence, at least 4 digits>`` and, for the
first attempt's application master (which runs the driver in cluster mode),
``container_<same epoch>_<same sequence>_01_000001``. The ResourceManager starts with the cluster, so
the stand-in uses the cluster's creation time.
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import List, Optional

REPORT_LOG_EVERY_S = 30  # spark.yarn.report.interval 1 s x spark.yarn.report.loggingFrequency 30
ACCEPTED_AFTER_S = 1.0  # submission -> first report (ACCEPTED): one report interval
RUNNING_AFTER_S = 2.0  # submission -> RUNNING (the AM has registered)
# Made-up but EMR-shaped addresses: a primary node (ResourceManager, proxy) and a core node (the AM).
RM_HOST = "ip-10-0-0-10.ec2.internal"
RM_ADDRESS = f"{RM_HOST}/10.0.0.10:8032"
AM_HOST = "10.0.0.20"
AM_RPC_PORT = 35871
AM_MEMORY_MB, AM_OVERHEAD_MB, MAX_CONTAINER_MB = 2432, 384, 12288


@dataclass(frozen=True)
class YarnApp:
    """One simulated YARN application: its id and its application master's (the driver's) container."""

    application_id: str
    container_id: str


def epoch_ms(moment: dt.datetime) -> int:
    """Milliseconds since the epoch of ``moment`` (a naive datetime is UTC, as moto's ``utcnow``)."""
    if moment.tzinfo is not None:
        return int(moment.timestamp() * 1000)
    return calendar.timegm(moment.timetuple()) * 1000 + moment.microsecond // 1000


def yarn_app(cluster_timestamp_ms: int, sequence: int, attempt: int = 1) -> YarnApp:
    """Ids of application number ``sequence`` (1-based) of a ResourceManager started at the timestamp."""
    if sequence < 1 or attempt < 1:
        raise ValueError(f"sequence and attempt start at 1; got {sequence}, {attempt}")
    return YarnApp(
        application_id=f"application_{cluster_timestamp_ms}_{sequence:04d}",
        container_id=f"container_{cluster_timestamp_ms}_{sequence:04d}_{attempt:02d}_000001",
    )


def _stamp(epoch_s: float) -> str:
    return time.strftime("%y/%m/%d %H:%M:%S", time.gmtime(epoch_s))


def _report(app: YarnApp, start_ms: int, diagnostics: str, am_up: bool, final_status: str) -> List[str]:
    """The indented block Spark's Client logs after a report whose state changed (formatReportDetails)."""
    return [
        "\t client token: N/A",
        f"\t diagnostics: {diagnostics}",
        f"\t ApplicationMaster host: {AM_HOST if am_up else 'N/A'}",
        f"\t ApplicationMaster RPC port: {AM_RPC_PORT if am_up else -1}",
        "\t queue: default",
        f"\t start time: {start_ms}",
        f"\t final status: {final_status}",
        f"\t tracking URL: http://{RM_HOST}:20888/proxy/{app.application_id}/",
        "\t user: hadoop",
    ]


def launcher_output(
    app: YarnApp,
    submitted_s: float,
    ended_s: float,
    exit_code: Optional[int],
    killed: bool = False,
    node_managers: int = 1,
) -> str:
    """What spark-submit prints (on stderr) in cluster mode on YARN for an application that ran from
    ``submitted_s`` to ``ended_s`` (epoch seconds): exit status 0 finished SUCCEEDED, any other FAILED.

    ``killed``: the launcher itself was stopped (CancelSteps, cluster termination) before the
    application ended, so there is no final report, only its shutdown hook. Returns text ending in a
    newline; the launcher's stdout stays empty.
    """
    ended_s = max(ended_s, submitted_s)
    app_id = app.application_id
    start_ms = int(submitted_s * 1000)
    lines: List[str] = []

    def log(at_s: float, level: str, logger: str, message: str) -> None:
        lines.append(f"{_stamp(at_s)} {level} {logger}: {message}")

    log(
        submitted_s,
        "INFO",
        "DefaultNoHARMFailoverProxyProvider",
        f"Connecting to ResourceManager at {RM_ADDRESS}",
    )
    log(
        submitted_s,
        "INFO",
        "Client",
        f"Requesting a new application from cluster with {node_managers} NodeManagers",
    )
    log(
        submitted_s,
        "INFO",
        "Client",
        "Verifying our application has not requested more than the maximum memory capability of the "
        f"cluster ({MAX_CONTAINER_MB} MB per container)",
    )
    log(
        submitted_s,
        "INFO",
        "Client",
        f"Will allocate AM container, with {AM_MEMORY_MB} MB memory including {AM_OVERHEAD_MB} MB overhead",
    )
    log(submitted_s, "INFO", "Client", "Setting up container launch context for our AM")
    log(submitted_s, "INFO", "Client", "Setting up the launch environment for our AM container")
    log(submitted_s, "INFO", "Client", "Preparing resources for our AM container")
    log(submitted_s, "INFO", "Client", f"Submitting application {app_id} to ResourceManager")
    log(submitted_s, "INFO", "YarnClientImpl", f"Submitted application {app_id}")

    accepted_s = min(submitted_s + ACCEPTED_AFTER_S, ended_s)
    running_s = min(submitted_s + RUNNING_AFTER_S, ended_s)
    log(accepted_s, "INFO", "Client", f"Application report for {app_id} (state: ACCEPTED)")
    log(accepted_s, "INFO", "Client", "")
    lines.extend(
        _report(
            app,
            start_ms,
            "AM container is launched, waiting for AM container to Register with RM",
            False,
            "UNDEFINED",
        )
    )
    log(running_s, "INFO", "Client", f"Application report for {app_id} (state: RUNNING)")
    log(running_s, "INFO", "Client", "")
    lines.extend(_report(app, start_ms, "N/A", True, "UNDEFINED"))
    # Unchanged state: one line every loggingFrequency reports, up to the last report before the end.
    at_s = running_s + REPORT_LOG_EVERY_S
    while at_s < ended_s:
        log(at_s, "INFO", "Client", f"Application report for {app_id} (state: RUNNING)")
        at_s += REPORT_LOG_EVERY_S

    if not killed:
        failed = exit_code != 0
        diagnostics = f"User application exited with status {exit_code}" if failed else "N/A"
        log(ended_s, "INFO", "Client", f"Application report for {app_id} (state: FINISHED)")
        log(ended_s, "INFO", "Client", "")
        lines.extend(_report(app, start_ms, diagnostics, True, "FAILED" if failed else "SUCCEEDED"))
        if failed:
            log(ended_s, "ERROR", "Client", f"Application diagnostics message: {diagnostics}")
            lines.append(failed_status_line(app))
            frames = (
                "org.apache.spark.deploy.yarn.Client.run(Client.scala)",
                "org.apache.spark.deploy.yarn.YarnClusterApplication.start(Client.scala)",
                "org.apache.spark.deploy.SparkSubmit.org$apache$spark$deploy$SparkSubmit$$runMain(SparkSubmit.scala)",
                "org.apache.spark.deploy.SparkSubmit.doRunMain$1(SparkSubmit.scala)",
                "org.apache.spark.deploy.SparkSubmit.submit(SparkSubmit.scala)",
                "org.apache.spark.deploy.SparkSubmit.doSubmit(SparkSubmit.scala)",
                "org.apache.spark.deploy.SparkSubmit$.main(SparkSubmit.scala)",
                "org.apache.spark.deploy.SparkSubmit.main(SparkSubmit.scala)",
            )
            lines.extend(f"\tat {frame}" for frame in frames)
    log(ended_s, "INFO", "ShutdownHookManager", "Shutdown hook called")
    scratch = uuid.uuid5(uuid.NAMESPACE_URL, app_id)  # stable per application, like a real temp dir name
    log(ended_s, "INFO", "ShutdownHookManager", f"Deleting directory /mnt/tmp/spark-{scratch}")
    return "\n".join(lines) + "\n"


def failed_status_line(app: YarnApp) -> str:
    """The launcher's final exception line for a failed application (EMR's FailureDetails.Message)."""
    return (
        'Exception in thread "main" org.apache.spark.SparkException: '
        f"Application {app.application_id} finished with failed status"
    )
