"""What the EMR step templates (``emr_configs/steps.json``, ``tuning_steps.json``) render with, besides
Airflow's own ``ds`` and ``ti``: one definition for both DAGs and for ``tools.local.run_chain``, which renders
``steps.json`` without Airflow. Pure functions of the config; nothing here calls AWS at import or call.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict

from recsys_dag import registry
from recsys_dag.config import PipelineConfig
from recsys_dag.locations import code_locations, registry_locations, run_locations


def step_macros(cfg: PipelineConfig, serving_region: Callable[[], str] = lambda: "") -> Dict[str, Any]:
    """The templates' names: ``cfg`` (the config as a dict), ``code`` (deployed code locations),
    ``run_locations(ds)``, ``registry_locations()``, ``model_version(ds, cluster_id)`` and
    ``serving_region()`` (load_serving's ``--region``; "" = the cluster's default)."""
    return {
        "cfg": cfg.as_dict(),
        "code": code_locations(cfg),
        "run_locations": functools.partial(run_locations, cfg),
        "registry_locations": functools.partial(registry_locations, cfg),
        # The version a training registers on promotion; load_serving writes its lists into it.
        "model_version": registry.version_id,
        "serving_region": serving_region,
    }
