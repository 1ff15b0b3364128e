"""Wiring: dataset.profiled -> split, folds, fitted preprocessor -> dataset.prepared."""

from __future__ import annotations

import json

import pandas as pd

from mlmesh.events.v1.dataset_pb2 import DatasetPrepared, DatasetProfiled
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import topics
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_prep.preparation import prepare

STAGE = "prep"
service = Service("prep")


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
    prep = await ctx.run_blocking(prepare, df, profile, out, seed=spec.seed or 42)
    folder = await ctx.save_dir(spec.project, STAGE, out)
    sizes = prep["split_sizes"]
    ctx.emit(topics.DATASET_PREPARED, DatasetPrepared(
        spec=spec, prepared=folder, profile=event.profile, target=prep["target"],
        problem_type=event.problem_type, metric=prep["metric"], n_train=sizes["train"],
        n_valid=sizes["valid"], n_test=sizes["test"], n_folds=prep["n_folds"],
        feature_columns=prep["feature_columns"]))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"train {sizes['train']} / valid {sizes['valid']} / test {sizes['test']}, "
                       f"{prep['n_folds']} folds")
