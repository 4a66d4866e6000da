"""The jobs' option defaults, declared once (spark_jobs/common/job_defaults.py): what each job's --help
shows, and that the DAG side imports them where there is no Spark stack."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spark_jobs.common import job_defaults as defaults

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# What Airflow has in production (README, "Deploying"): the DAGs folder, and beside it on the path the
# serving library and the jobs' package, but no pyspark, numpy or implicit.
AIRFLOW_SIDE = ("dags", "serving", "spark_jobs")
SPARK_STACK = ("pyspark", "numpy", "pandas", "pyarrow", "scipy", "implicit")

REQUIRED = {
    "build_features": ["--events", "e", "--run-date", "2024-01-01", "--output", "o"],
    "train_cf": ["--features", "f", "--output", "o"],
    "tune_trial": ["--features", "f", "--output", "o", "--name", "n"],
    "evaluate": ["--features", "f", "--recommendations", "r", "--output", "o"],
    "load_serving": ["--recommendations", "r", "--features", "f", "--version", "v", "--table", "t"],
}
MODEL_OPTIONS = [
    ("--engine", defaults.ENGINE),
    ("--algorithm", defaults.ALGORITHM),
    ("--factors", defaults.FACTORS),
    ("--iterations", defaults.ITERATIONS),
    ("--alpha", defaults.ALPHA),
    ("--learning-rate", defaults.LEARNING_RATE),
    ("--seed", defaults.SEED),
    ("--k", defaults.EVALUATION_K),
]
DECLARED = [
    ("build_features", "--lookback-days", defaults.LOOKBACK_DAYS),
    ("build_features", "--min-window-share", defaults.MIN_WINDOW_SHARE),
    ("build_features", "--half-life-days", defaults.HALF_LIFE_DAYS),
    ("build_features", "--min-user-items", defaults.MIN_USER_ITEMS),
    ("build_features", "--min-item-users", defaults.MIN_ITEM_USERS),
    ("build_features", "--holdout-fraction", defaults.HOLDOUT_FRACTION),
    *(("train_cf", option, value) for option, value in MODEL_OPTIONS),
    ("train_cf", "--serve-k", defaults.SERVE_K),
    *(("tune_trial", option, value) for option, value in MODEL_OPTIONS),
    ("evaluate", "--k", defaults.EVALUATION_K),
    ("load_serving", "--max-items", defaults.SERVE_K),
    ("load_serving", "--threads", defaults.SERVING_LOAD_THREADS),
]


def _help_of(job: str, option: str, capsys, monkeypatch) -> str:
    """``option``'s entry in ``job --help``, on one line."""
    monkeypatch.setenv("COLUMNS", "250")  # no wrapping inside an entry
    with pytest.raises(SystemExit) as exited:
        importlib.import_module(f"spark_jobs.{job}").parse_args(["--help"])
    assert exited.value.code == 0
    entries = re.split(r"\n(?=  -)", capsys.readouterr().out)  # an entry starts "  --option"
    entry = next(e for e in entries if e.lstrip().startswith(f"{option} "))
    return " ".join(entry.split())


@pytest.mark.parametrize("job,option,value", DECLARED, ids=[f"{j}{o}" for j, o, _ in DECLARED])
def test_help_shows_the_declared_default(job, option, value, capsys, monkeypatch):
    assert f"(default: {value})" in _help_of(job, option, capsys, monkeypatch)


@pytest.mark.parametrize("job,option,value", DECLARED, ids=[f"{j}{o}" for j, o, _ in DECLARED])
def test_an_unset_option_parses_to_the_declared_default(job, option, value):
    args = importlib.import_module(f"spark_jobs.{job}").parse_args(REQUIRED[job])
    assert getattr(args, option.lstrip("-").replace("-", "_")) == value


def test_help_names_each_engines_own_regularization(capsys, monkeypatch):
    entry = _help_of("train_cf", "--regularization", capsys, monkeypatch)
    for (engine, algorithm), value in defaults.REGULARIZATION_BY_MODEL.items():
        assert f"{value:g} for {engine} {algorithm}" in entry


def test_the_dag_config_imports_on_airflow_without_the_spark_stack(tmp_path):
    """Only what a deployment gives Airflow, an isolated interpreter, and the Spark stack made
    unimportable: the DAG config still loads, with the jobs' defaults."""
    for name in AIRFLOW_SIDE:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    code = f"""
import importlib.abc, sys
class NoSparkStack(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SPARK_STACK!r}:
            raise ImportError(f"{{name}} is not installed on Airflow")
sys.meta_path.insert(0, NoSparkStack())
sys.path[:0] = [{str(tmp_path / "dags")!r}, {str(tmp_path)!r}]
import recsys_dag.config, recsys_dag.tuning_grid
from spark_jobs.common import job_defaults
assert job_defaults.__file__.startswith({str(tmp_path)!r}), job_defaults.__file__
cfg = recsys_dag.config.PipelineConfig()
print(cfg.lookback_days, cfg.factors, cfg.k, cfg.serve_k, cfg.engine)
"""
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    expected = (defaults.LOOKBACK_DAYS, defaults.FACTORS, defaults.EVALUATION_K, defaults.SERVE_K)
    assert out.stdout.split() == [*map(str, expected), defaults.ENGINE]


def test_the_declaration_imports_only_the_standard_library():
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); before = set(sys.modules);"
        "import spark_jobs.common.job_defaults;"
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['spark_jobs']"
