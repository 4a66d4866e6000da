"""Turn an EMR step's ``command-runner.jar`` arguments into a local command line and environment.

``spark-submit`` is rewritten for local Spark: deploy mode client (the driver runs here), ``--master
yarn`` dropped (``emr_configs/local-spark`` sets ``local[*]``), the S3A jars put on
``--driver-class-path`` and the S3A confs added. The class path, not ``--jars``: spark-submit itself
fetches an ``s3://`` primary resource and ``--py-files`` through Hadoop's FileSystem *before* it loads
``--jars``, so with ``--jars`` alone it fails with ClassNotFoundException S3AFileSystem (verified with
Spark 3.5.9). In local mode the executors live in the driver's JVM, so the driver class path is all
they need too; adding the ~190 MB SDK bundle to ``--jars`` as well made steps ~5 s slower on average
(Spark ships ``--jars`` to the executor's work directory). Anything else (``bash -c …``, ``sleep 60``,
``false``) runs as given, without a shell.

A step that asks for cluster mode (``--deploy-mode cluster``, or ``--conf spark.submit.deployMode=cluster``
without ``--deploy-mode``: spark-submit lets the option win over the conf) still runs in client mode;
``LocalCommand.cluster_mode`` tells the runner to lay its output out as YARN would (local_emr.yarn).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from local_emr.config import RunnerConfig

COMMAND_RUNNER = "command-runner.jar"
# spark-submit options that take no value; every other ``--option`` (without ``=``) takes the next token.
SPARK_FLAGS = frozenset({"--verbose", "-v", "--supervise", "--help", "-h", "--version", "--usage-error"})


class UnsupportedStep(ValueError):
    """The step cannot run locally (e.g. a custom JAR); the message becomes its FailureDetails."""


@dataclass(frozen=True)
class LocalCommand:
    """What to execute for one step: argv (no shell), extra environment, and what was rewritten."""

    argv: List[str]
    env: Dict[str, str]
    notes: Tuple[str, ...] = ()
    cluster_mode: bool = False  # the step asked for --deploy-mode cluster (it still runs in client mode)


def is_spark_submit(program: str) -> bool:
    return os.path.basename(program) == "spark-submit"


def split_spark_submit(args: Sequence[str]) -> Tuple[List[Tuple[str, Optional[str]]], List[str]]:
    """Split spark-submit's arguments (after the program) into (option, value) pairs and the rest.

    The rest starts at the primary resource (first token that is neither an option nor an option's
    value) and includes the application's own arguments, which are never touched.
    """
    options: List[Tuple[str, Optional[str]]] = []
    index = 0
    while index < len(args):
        token = args[index]
        if not token.startswith("-"):
            break
        if "=" in token and token.startswith("--"):
            name, value = token.split("=", 1)
            options.append((name, value))
            index += 1
        elif token in SPARK_FLAGS:
            options.append((token, None))
            index += 1
        else:
            options.append((token, args[index + 1] if index + 1 < len(args) else None))
            index += 2
    return options, list(args[index:])


def requested_deploy_mode(options: Sequence[Tuple[str, Optional[str]]]) -> str:
    """The deploy mode spark-submit would use for these options: ``--deploy-mode`` (the last one)
    wins over ``--conf spark.submit.deployMode``; without either, ``client``."""
    flag: Optional[str] = None
    conf: Optional[str] = None
    for name, value in options:
        if name == "--deploy-mode" and value:
            flag = value
        elif name == "--conf" and value and value.split("=", 1)[0] == "spark.submit.deployMode":
            conf = value.split("=", 1)[1] if "=" in value else None
    return (flag or conf or "client").strip()


def rewrite_spark_submit(args: Sequence[str], config: RunnerConfig) -> Tuple[List[str], Tuple[str, ...]]:
    """Local spark-submit argv for EMR-style ``args`` (``args[0]`` is spark-submit); also returns notes."""
    options, rest = split_spark_submit(args[1:])
    notes: List[str] = []
    kept: List[Tuple[str, Optional[str]]] = []
    for name, value in options:
        if name == "--master" and value and value.startswith("yarn"):
            notes.append(f"dropped --master {value} (local Spark: spark.master from SPARK_CONF_DIR)")
        elif name == "--deploy-mode":
            if value != "client":
                notes.append(f"--deploy-mode {value} -> client")
        elif (
            name == "--conf"
            and value
            and value.split("=", 1)[0] in ("spark.master", "spark.submit.deployMode")
        ):
            notes.append(f"dropped --conf {value}")
        elif name == "--driver-class-path" and value:
            kept.append(("--driver-class-path", os.pathsep.join([value, *map(str, config.jars)])))
        else:
            kept.append((name, value))
    if not any(name == "--driver-class-path" for name, _ in kept):
        kept.append(("--driver-class-path", os.pathsep.join(str(path) for path in config.jars)))
    kept.append(("--deploy-mode", "client"))
    # Ours go first so a --conf given by the step (same key) still wins: spark-submit keeps the last one.
    confs = [("--conf", f"{key}={value}") for key, value in config.s3a_confs().items()]
    argv = [str(config.python.parent / "spark-submit")]
    for name, value in [*confs, *kept]:
        argv.extend([name] if value is None else [name, value])
    return [*argv, *rest], tuple(notes)


def step_environment(config: RunnerConfig, base: Mapping[str, str]) -> Dict[str, str]:
    """Environment of a step process: the jobs' venv first on PATH, local Spark defaults, no AWS_* leak.

    The dummy credentials and LocalStack's endpoint are set (DynamoDB's: the local DynamoDB endpoint), so
    a step using boto3 or the AWS CLI talks to the local stack as a step on EMR talks to AWS with the
    instance profile.
    """
    env = {key: value for key, value in base.items() if not key.startswith(("AWS_", "LOCAL_EMR_", "MOTO_"))}
    venv_bin = str(config.python.parent)
    env.update(
        {
            "PATH": f"{venv_bin}{os.pathsep}{base.get('PATH', '')}",
            "PYSPARK_PYTHON": str(config.python),
            "PYSPARK_DRIVER_PYTHON": str(config.python),
            "SPARK_CONF_DIR": str(config.spark_conf_dir),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "OPENBLAS_NUM_THREADS": base.get("OPENBLAS_NUM_THREADS", "1"),
            "AWS_ACCESS_KEY_ID": config.access_key,
            "AWS_SECRET_ACCESS_KEY": config.secret_key,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_REGION": config.region,
            "AWS_ENDPOINT_URL": config.localstack_url,
            "AWS_ENDPOINT_URL_DYNAMODB": config.dynamodb_url,
        }
    )
    # Not the jobs' business, or harmful: the endpoint's own PYTHONPATH (localstack/); a SPARK_HOME of
    # another Spark install (pyspark's spark-submit would run that one); a shell's PySpark options.
    for key in ("PYTHONPATH", "SPARK_HOME", "PYSPARK_SUBMIT_ARGS", "PYSPARK_DRIVER_PYTHON_OPTS"):
        env.pop(key, None)
    return env


def local_command(
    jar: str, args: Sequence[str], config: RunnerConfig, base_env: Mapping[str, str]
) -> LocalCommand:
    """The local command for a step's HadoopJarStep (``jar``, ``args``); raises UnsupportedStep."""
    if os.path.basename(jar) != COMMAND_RUNNER:
        raise UnsupportedStep(
            f"only {COMMAND_RUNNER} steps run locally; got Jar={jar!r} (custom JARs are not supported)"
        )
    if not args:
        raise UnsupportedStep(f"{COMMAND_RUNNER} step without Args")
    env = step_environment(config, base_env)
    if is_spark_submit(args[0]):
        argv, notes = rewrite_spark_submit(args, config)
        options, _ = split_spark_submit(args[1:])
        cluster_mode = requested_deploy_mode(options) == "cluster"
        return LocalCommand(argv=argv, env=env, notes=notes, cluster_mode=cluster_mode)
    return LocalCommand(argv=list(args), env=env)
