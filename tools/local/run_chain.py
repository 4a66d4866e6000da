"""Run the nightly's Spark steps in sequence with spark-submit, as a person would by hand, and report.

    python -m tools.local.run_chain --raw data/movielens/raw --work var/run --run-date 1998-04-22
        [--engines implicit,spark-als] [--config '{"factors": 32}'] [--per-day] [--event-logs DIR]

The steps are the DAG's own: ``emr_configs/steps.json`` rendered with the step macros the DAG uses
(``recsys_dag.step_macros``) and the local stack's DAG config (``tools.local.run.local_config``, what
``make run`` trains with) plus ``--config``; each ``s3://bucket/key`` becomes ``<work>/bucket/key``, the
code is packaged there as ``make deploy`` would, and each step's spark-submit runs in client mode (the
driver is this machine). So a job's arguments are written once, in the template, for EMR and for this
chain. load_serving is not run: it writes the serving table (DynamoDB), which ``make run`` covers.

The raw input is linked in as the run date's raw partition (a backfill of the whole history), or with
``--per-day`` each ``raw/dt=*`` folder as its own day, parsed one by one as the nightly does. Each engine
in ``--engines`` gets its own runs prefix (``runs/<engine>/``): features, model and evaluation. Ends with
a metrics table (model vs popularity), per-job wall times (timed from the outside) and the outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import jinja2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "dags"))  # recsys_dag: the DAG's config, locations and step macros

from recsys_dag.config import PipelineConfig, config_from_mapping  # noqa: E402
from recsys_dag.locations import run_locations, split_s3_uri  # noqa: E402
from recsys_dag.step_macros import step_macros  # noqa: E402

from spark_jobs.common.published import local_pointer  # noqa: E402
from tools.local.run import local_config  # noqa: E402
from tools.release.package_jobs import build, project_version  # noqa: E402

EMR_CONFIGS = ROOT / "emr_configs"
METRIC_NAMES = ("precision", "recall", "ndcg", "map")
CLUSTER_ID = "j-LOCALCHAIN"  # what the template's create_cluster XCom is (the model version's token)
# Steps of steps.json the chain does not run, and why.
NOT_RUN = {"load_serving": "it writes the serving table (DynamoDB); make run runs it on the local stack"}


@dataclass
class ChainResult:
    """Where a chain run wrote things, and how long each step took (seconds, wall clock)."""

    work: Path
    run_date: str
    configs: Dict[str, PipelineConfig] = field(default_factory=dict)  # engine label -> its config
    timings: Dict[str, float] = field(default_factory=dict)
    spans: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # step -> (start, end) epoch ms
    metrics: Dict[str, dict] = field(default_factory=dict)  # engine label -> metrics.json
    parsed_days: List[str] = field(default_factory=list)  # dt=... partitions written by parse_logs

    def location(self, name: str, engine: Optional[str] = None, ds: Optional[str] = None) -> Path:
        """``run_locations(ds)[name]`` of ``engine``'s run (default: the first engine, the run date),
        as the local path the chain used."""
        cfg = self.configs[engine or next(iter(self.configs))]
        return localize(run_locations(cfg, ds or self.run_date)[name], self.work)


class StepFailed(RuntimeError):
    """A spark-submit exited non-zero."""

    def __init__(self, step: str, returncode: int, log_path: Path):
        super().__init__(f"step {step} failed with exit code {returncode}; its log: {log_path}")
        self.step, self.returncode, self.log_path = step, returncode, log_path


class RecordedXComs:
    """The ``ti`` the templates read: ``ti.xcom_pull(task_ids=...)`` answers from a fixed mapping."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = dict(values)

    def xcom_pull(self, task_ids: str) -> Any:
        return self.values[task_ids]


def localize(value: str, work: Path) -> Path:
    """``s3://bucket/key`` -> ``<work>/bucket/key``."""
    bucket, key = split_s3_uri(value)
    return work / bucket / key


def localize_args(args: Sequence[str], work: Path) -> List[str]:
    """A step's arguments with every ``s3://`` URI made a local path (a trailing ``/`` is kept)."""
    out = []
    for arg in args:
        if arg.startswith("s3://"):
            arg = str(localize(arg, work)) + ("/" if arg.endswith("/") else "")
        out.append(arg)
    return out


def client_mode(args: Sequence[str]) -> List[str]:
    """command-runner's spark-submit arguments for a driver on this machine: ``--deploy-mode cluster``
    becomes ``client`` (local Spark has no cluster manager to place a driver; options that apply to a
    cluster-mode driver only, like ``--driver-cores``, are ignored by spark-submit)."""
    out = list(args)
    if "--deploy-mode" in out[:-1]:  # the template's one, among spark-submit's own options
        out[out.index("--deploy-mode") + 1] = "client"
    return out


def render_steps(cfg: PipelineConfig, ds: str) -> List[dict]:
    """``emr_configs/steps.json`` for logical date ``ds``, rendered as the DAG renders it (its macros,
    strict undefined names), with ``resolve_params`` taking the config's values."""
    from recsys_dag.tuned_params import resolve

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(EMR_CONFIGS)), undefined=jinja2.StrictUndefined
    )
    xcoms = {
        "resolve_params": resolve(cfg.as_dict(), False, "", lambda uri: None),
        "create_cluster": CLUSTER_ID,
    }
    text = env.get_template("steps.json").render(ds=ds, ti=RecordedXComs(xcoms), **step_macros(cfg))
    return json.loads(text)


def step_commands(cfg: PipelineConfig, ds: str, work: Path) -> Dict[str, List[str]]:
    """Step name -> the local command line of its spark-submit, in the template's order."""
    commands = {}
    for step in render_steps(cfg, ds):
        args = step["HadoopJarStep"]["Args"]
        commands[step["Name"]] = client_mode(localize_args(args, work))
    return commands


def event_log_conf(folder: Path) -> List[str]:
    """spark-submit options that write Spark's event log for the application into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        "--conf", "spark.eventLog.enabled=true",
        "--conf", f"spark.eventLog.dir={folder.resolve().as_uri()}",
    ]  # fmt: skip


def spark_submit(
    command: Sequence[str],
    log_dir: Path,
    label: str,
    event_logs: Optional[Path] = None,
    spans: Optional[Dict[str, Tuple[int, int]]] = None,
) -> float:
    """Run one step's ``spark-submit ...`` command; stream its output to ``<log_dir>/<label>.log``;
    return wall seconds.

    ``event_logs``: write Spark's event log into ``<event_logs>/<label>/``. ``spans``: record the
    process's (start, end) in epoch milliseconds under ``label``.
    """
    options = event_log_conf(event_logs / label) if event_logs is not None else []
    command = [command[0], *options, *command[1:]]
    print("$ " + " ".join(shlex.quote(part) for part in command), flush=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{label}.log"
    started, started_ms = time.perf_counter(), time.time_ns() // 1_000_000
    with open(log_path, "w") as log:
        proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    if spans is not None:
        spans[label] = (started_ms, time.time_ns() // 1_000_000)
    for line in log_path.read_text(errors="replace").splitlines():
        if " recsys." in line:  # the jobs' own stage lines, not Spark's chatter
            print("    " + line.split(" ", 2)[-1], flush=True)
    if proc.returncode != 0:
        raise StepFailed(label, proc.returncode, log_path)
    return seconds


def link_raw(cfg: PipelineConfig, ds: str, source: Path, work: Path) -> None:
    """Make ``source`` the raw partition of ``ds`` under ``work`` (a symbolic link, replaced if there)."""
    target = localize(run_locations(cfg, ds)["raw"], work)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(source.resolve(), target_is_directory=True)


def engine_config(base: Mapping[str, Any], engine: str) -> PipelineConfig:
    """``base`` with ``engine`` (``name`` or ``name:algorithm``) and a runs prefix of its own."""
    name, _, algorithm = engine.partition(":")
    label = engine_label(engine)
    runs_prefix = f"{str(base.get('runs_prefix', PipelineConfig.runs_prefix)).strip('/')}/{label}"
    return config_from_mapping(
        {**base, "engine": name, "algorithm": algorithm or "als", "runs_prefix": runs_prefix}
    )


def engine_label(engine: str) -> str:
    return engine.replace(":", "-")


def run_chain(
    raw: Path,
    work: Path,
    run_date: str,
    engines: Sequence[str] = ("implicit",),
    config: Optional[Mapping[str, Any]] = None,
    per_day: bool = False,
    event_logs: Optional[Path] = None,
) -> ChainResult:
    """Run steps.json's steps (but NOT_RUN) under ``work``: parse_logs once per day, then the rest once
    per engine.

    ``config``: DAG config overrides on top of the local stack's (``tools.local.run.local_config``).
    ``per_day``: parse each ``raw/dt=*`` folder into its own partition (as the nightly DAG does; the
    window is then the number of days unless ``config`` sets ``lookback_days``); otherwise parse all of
    ``raw`` at once into the run date's partition. ``event_logs``: keep each step's Spark event log in
    ``<event_logs>/<step>/``.
    """
    base: Dict[str, Any] = local_config(project_version())
    days = sorted(p.name for p in raw.glob("dt=*")) if per_day else [f"dt={run_date}"]
    if per_day:
        base["lookback_days"] = len(days)
    base.update(config or {})
    result = ChainResult(work=work, run_date=run_date)
    result.configs = {engine_label(engine): engine_config(base, engine) for engine in engines}
    logs = work / "logs"
    first = next(iter(result.configs.values()))
    # The code bundle where code_locations() points, as make deploy uploads it.
    build(first.code_version, localize(f"s3://{first.artifact_bucket}/{first.code_prefix}", work))

    def submit(command: Sequence[str], label: str) -> float:
        return spark_submit(command, logs, label, event_logs, result.spans)

    for day in days:
        ds = day.split("=", 1)[1]
        link_raw(first, ds, raw / day if per_day else raw, work)
        command = step_commands(first, ds, work)["parse_logs"]
        result.timings[f"parse_logs[{day}]" if per_day else "parse_logs"] = submit(
            command, f"parse_logs-{day}"
        )
    result.parsed_days = days
    for index, (label, cfg) in enumerate(result.configs.items()):
        for step, command in step_commands(cfg, run_date, work).items():
            if step == "parse_logs" or step in NOT_RUN:
                continue
            # build_features keeps its plain name for the first engine (one features build per chain).
            name = step if step == "build_features" and index == 0 else f"{step}[{label}]"
            log_label = step if step == "build_features" and index == 0 else f"{step}-{label}"
            result.timings[name] = submit(command, log_label)
        result.metrics[label] = json.loads(result.location("metrics", label).read_text())
    for step, why in NOT_RUN.items():
        print(f"(not run: {step}: {why})", flush=True)
    return result


def metrics_table(metrics: Dict[str, dict]) -> str:
    """A fixed-width table: one row per engine and one for popularity (same split, so shown once)."""
    first = next(iter(metrics.values()))
    k = first["k"]
    columns = [f"{name}@{k}" for name in METRIC_NAMES] + ["coverage"]
    rows = [(label, m["model"]) for label, m in metrics.items()] + [("popularity", first["popularity"])]
    width = max(len(label) for label, _ in rows) + 2
    lines = ["model".ljust(width) + "".join(c.rjust(14) for c in columns)]
    lines.append("-" * len(lines[0]))
    for label, values in rows:
        lines.append(label.ljust(width) + "".join(f"{values[c]:14.4f}" for c in columns))
    lines.append(f"users evaluated: {first['users_evaluated']}")
    return "\n".join(lines)


def report(result: ChainResult) -> str:
    """The closing summary of a chain run."""
    parsed = [result.location("parsed", ds=day.split("=", 1)[1]) for day in result.parsed_days]
    stats = [local_pointer(folder)["stats"] for folder in parsed]
    lines_total = sum(s["lines"] for s in stats)
    accepted, rejected = sum(s["accepted"] for s in stats), sum(s["rejected"] for s in stats)
    features = json.loads(result.location("features_manifest").read_text())
    lines = [
        "",
        f"== metrics on the held-out latest interactions (run date {result.run_date}) ==",
        metrics_table(result.metrics),
        "",
        "== wall time per job (seconds, including Spark start-up) ==",
    ]
    lines += [f"  {step:<28}{seconds:8.1f}" for step, seconds in result.timings.items()]
    lines += [f"  {'total':<28}{sum(result.timings.values()):8.1f}", "", "== data =="]
    lines.append(
        f"  parse_logs: {lines_total} lines = {accepted} accepted + {rejected} rejected "
        f"({len(stats)} partition(s))"
    )
    lines.append(
        f"  build_features: {features['users']} users x {features['items']} items, "
        f"{features['train_nnz']} train + {features['holdout_nnz']} holdout pairs"
    )
    lines += ["", "== outputs =="]
    places = [("parsed events", parsed[0].parent), ("rejects", result.location("rejects").parent)]
    for label in result.metrics:
        places.append((f"features [{label}]", result.location("features", label)))
        places.append((f"model [{label}]", result.location("model", label)))
        places.append((f"metrics [{label}]", result.location("evaluation", label)))
    places.append(("job logs", result.work / "logs"))
    width = max(len(name) for name, _ in places) + 2
    lines += [f"  {name.ljust(width)}{place}" for name, place in places]
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, required=True, help="raw events folder (dt=... folders inside)")
    parser.add_argument(
        "--work", type=Path, required=True, help="output folder for this run (outputs overwritten)"
    )
    parser.add_argument("--run-date", required=True, help="YYYY-MM-DD partition to write")
    parser.add_argument(
        "--engines",
        default="implicit",
        help="comma-separated engines to train and evaluate: implicit, implicit:bpr, spark-als",
    )
    parser.add_argument(
        "--config",
        type=json.loads,
        default={},
        help="DAG config overrides as a JSON object (as make run's CONFIG=), on the local stack's config",
    )
    parser.add_argument("--per-day", action="store_true", help="parse each raw dt= folder separately")
    parser.add_argument(
        "--event-logs", type=Path, default=None, help="keep each step's Spark event log under this folder"
    )
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if not args.raw.is_dir():
        print(f"ERROR: no raw data at {args.raw}", file=sys.stderr)
        return 2
    engines: List[str] = [e.strip() for e in args.engines.split(",") if e.strip()]
    try:
        result = run_chain(
            args.raw, args.work, args.run_date, engines, args.config, args.per_day, args.event_logs
        )
    except StepFailed as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        tail = exc.log_path.read_text(errors="replace").splitlines()[-15:]
        print("\n".join("    " + line for line in tail), file=sys.stderr)
        return 1
    except ValueError as exc:  # a config the DAG would refuse
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print(report(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
