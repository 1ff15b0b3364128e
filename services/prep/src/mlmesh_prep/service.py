"""Wiring: dataset.profiled -> split, folds, fitted preprocessor -> dataset.prepared."""

from __future__ import annotations

import json

import pandas as pd

from mlmesh.events.v1.dataset_pb2 import DatasetPrepared, DatasetProfiled
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import topics
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_prep.engineering import FE_TIME_BUDGET_S
from mlmesh_prep.preparation import prepare

STAGE = "prep"
#: Share of the experiment's time budget feature engineering may use.
FE_BUDGET_SHARE = 0.1
service = Service("prep")


def fe_budget_s(time_budget_s: int) -> float:
    """Seconds for feature engineering: a tenth of the experiment budget, at most the
    default (the default when the experiment has no budget)."""
    if not time_budget_s:
        return FE_TIME_BUDGET_S
    return min(FE_TIME_BUDGET_S, FE_BUDGET_SHARE * time_budget_s)


@service.handles(topics.DATASET_PROFILED, stage=STAGE)
async def on_profiled(ctx: HandlerContext, event: DatasetProfiled) -> None:
    spec = event.spec
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "splitting")
    table_path = await ctx.fetch_file(event.table)
    profile_path = await ctx.fetch_file(event.profile)
    df = await ctx.run_blocking(pd.read_parquet, table_path)
    profile = json.loads(profile_path.read_text())
    ctx.check_cancelled()
    out = ctx.work_dir / "prepared"
    prep = await ctx.run_blocking(
        prepare, df, profile, out, seed=spec.seed or 42, split_strategy=spec.split_strategy,
        group_column=spec.group_column, time_column=spec.time_column,
        fe_time_budget_s=fe_budget_s(spec.time_budget_s))
    folder = await ctx.save_dir(spec.project, STAGE, out)
    sizes = prep["split_sizes"]
    ctx.emit(topics.DATASET_PREPARED, DatasetPrepared(
        spec=spec, prepared=folder, profile=event.profile, target=prep["target"],
        problem_type=event.problem_type, metric=prep["metric"], n_train=sizes["train"],
        n_valid=sizes["valid"], n_test=sizes["test"], n_folds=prep["n_folds"],
        feature_columns=prep["feature_columns"], split_strategy=prep["split_strategy"],
        n_generated_features=prep["n_generated_features"]))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"train {sizes['train']} / valid {sizes['valid']} / test {sizes['test']}, "
                       f"{prep['n_folds']} folds ({prep['split_strategy']}), "
                       f"{prep['n_generated_features']} generated features")
