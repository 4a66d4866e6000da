"""The tuning sweep's configurations: a grid from the deployment config, expanded and checked.

A grid is either

- a **product**: ``{"factors": [32, 64], "regularization": [10, 30]}`` (every combination, in the order
  the keys and values are written), or
- an **explicit list**: ``[{"factors": 32}, {"factors": 128, "alpha": 4}]``.

Each configuration sets some of :data:`TUNABLE`; the rest come from the nightly configuration (the
``base`` mapping, i.e. ``PipelineConfig.as_dict()``). Pure functions, no Airflow or AWS imports.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Dict, List, Mapping, Optional, Sequence

from spark_jobs.common.job_defaults import ALGORITHMS, ALGORITHMS_BY_ENGINE, ENGINES

# The values a configuration may set, and which job uses them: the model's go to train_cf / tune_trial,
# the features' to build_features (one features build per distinct combination of them).
MODEL_KEYS = ("engine", "algorithm", "factors", "iterations", "regularization", "learning_rate", "alpha")
FEATURE_KEYS = ("half_life_days",)
TUNABLE = MODEL_KEYS + FEATURE_KEYS
# Short labels for the step and file names of a configuration (``t03_f64_reg10``).
_LABELS = {
    "engine": "",
    "algorithm": "",
    "factors": "f",
    "iterations": "it",
    "regularization": "reg",
    "learning_rate": "lr",
    "alpha": "a",
    "half_life_days": "hl",
}


@dataclasses.dataclass(frozen=True)
class Trial:
    """One configuration of the sweep.

    ``index`` counts from 1 in grid order; ``name`` is unique in the sweep (step name, file names);
    ``values`` holds every key of :data:`TUNABLE` (nightly defaults filled in); ``features`` names its
    features build (:func:`feature_sets`).
    """

    index: int
    name: str
    values: Dict[str, Any]
    features: str

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _number(key: str, value: Any, integer: bool, nullable: bool = False) -> Any:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"tuning_grid: {key} must be a number{' or null' if nullable else ''}, got {value!r}"
        )
    if integer:
        if int(value) != value or value < 1:
            raise ValueError(f"tuning_grid: {key} must be a positive integer, got {value!r}")
        return int(value)
    if value < 0:
        raise ValueError(f"tuning_grid: {key} must be >= 0, got {value!r}")
    return float(value)


def check_value(key: str, value: Any) -> Any:
    """``value`` normalised for ``key`` (ints stay ints, floats become floats); ValueError if invalid."""
    if key not in TUNABLE:
        raise ValueError(f"tuning_grid: {key!r} cannot be tuned; tunable keys: {list(TUNABLE)}")
    if key == "engine":
        if value not in ENGINES:
            raise ValueError(f"tuning_grid: engine must be one of {ENGINES}, got {value!r}")
        return value
    if key == "algorithm":
        if value not in ALGORITHMS:
            raise ValueError(f"tuning_grid: algorithm must be one of {ALGORITHMS}, got {value!r}")
        return value
    if key in ("factors", "iterations"):
        return _number(key, value, integer=True)
    return _number(key, value, integer=False, nullable=key in ("regularization", "learning_rate"))


def _partial_configs(grid: Any) -> List[Dict[str, Any]]:
    """The grid as a list of partial configurations (only the keys the grid sets)."""
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("tuning_grid is empty: give at least one key with a list of values")
        keys = list(grid)
        lists = []
        for key in keys:
            values = grid[key]
            if not isinstance(values, list) or not values:
                raise ValueError(f"tuning_grid: {key} must be a non-empty list of values, got {values!r}")
            lists.append([check_value(key, value) for value in values])
        return [dict(zip(keys, combo)) for combo in itertools.product(*lists)]
    if isinstance(grid, list):
        if not grid:
            raise ValueError("tuning_grid is an empty list: give at least one configuration")
        out = []
        for position, entry in enumerate(grid, start=1):
            if not isinstance(entry, Mapping):
                raise ValueError(f"tuning_grid: configuration {position} must be an object, got {entry!r}")
            out.append({key: check_value(key, value) for key, value in entry.items()})
        return out
    raise ValueError(f"tuning_grid must be an object of lists or a list of objects, got {grid!r}")


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace(".", "p") if value is not None else "default"


def expand_grid(grid: Any, base: Mapping[str, Any], max_configs: int) -> List[Trial]:
    """Every configuration of ``grid`` over ``base``, checked; ValueError past ``max_configs`` or for a
    configuration the engines cannot run, or two configurations that are the same."""
    partials = _partial_configs(grid)
    if len(partials) > max_configs:
        raise ValueError(
            f"tuning_grid has {len(partials)} configurations, more than tuning_max_configs {max_configs}:"
            " shrink the grid (or raise the limit knowingly: each configuration is one EMR step)"
        )
    varied = [key for key in TUNABLE if len({repr(p.get(key, base.get(key))) for p in partials}) > 1]
    trials, seen = [], {}
    for index, partial in enumerate(partials, start=1):
        values = {key: check_value(key, partial.get(key, base.get(key))) for key in TUNABLE}
        if values["algorithm"] not in ALGORITHMS_BY_ENGINE[values["engine"]]:
            raise ValueError(
                f"tuning_grid: configuration {index} asks for algorithm {values['algorithm']!r}, which engine"
                f" {values['engine']!r} does not implement"
            )
        key = repr(sorted(values.items()))
        if key in seen:
            raise ValueError(f"tuning_grid: configurations {seen[key]} and {index} are the same: {values}")
        seen[key] = index
        parts = [f"t{index:02d}"] + [_LABELS[k] + _label(values[k]) for k in varied]
        trials.append(Trial(index, "_".join(parts), values, features_key(values)))
    return trials


def features_key(values: Mapping[str, Any]) -> str:
    """The name of the features build a configuration needs (``hl14``): one per distinct feature values."""
    return "_".join(_LABELS[key] + _label(values[key]) for key in FEATURE_KEYS)


def feature_sets(trials: Sequence[Trial]) -> Dict[str, Dict[str, Any]]:
    """Features key -> the feature values of that build, in the order the trials first need them."""
    out: Dict[str, Dict[str, Any]] = {}
    for trial in trials:
        out.setdefault(trial.features, {key: trial.values[key] for key in FEATURE_KEYS})
    return out


def effective_params(base: Mapping[str, Any], tuned: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The values of :data:`TUNABLE` a nightly run uses: ``base`` (its config), overlaid by ``tuned``
    (a tuning result's values) where given."""
    tuned = tuned or {}
    return {key: check_value(key, tuned[key]) if key in tuned else base.get(key) for key in TUNABLE}
