"""Wiring: dataset.acquired -> profile the table -> dataset.profiled."""

from __future__ import annotations

import json

import pandas as pd

from mlmesh.events.v1.dataset_pb2 import ColumnSummary, DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import problems, topics
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_profile.profiling import profile_table

STAGE = "profile"
service = Service("profile")


@service.handles(topics.DATASET_ACQUIRED, stage=STAGE)
async def on_acquired(ctx: HandlerContext, event: DatasetAcquired) -> None:
    spec = event.spec
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "reading the table")
    table_path = await ctx.fetch_file(event.table)
    df = await ctx.run_blocking(pd.read_parquet, table_path)
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 30,
                       f"profiling {len(df)} rows x {df.shape[1]} columns")
    profile = await ctx.run_blocking(profile_table, df, target_hint=spec.target or None,
                                     problem_type_hint=problems.from_proto(spec.problem_type)
                                     or None, metric_hint=spec.metric or None)
    out = ctx.work_dir / "profile.json"
    out.write_text(json.dumps(profile, indent=2))
    ref = await ctx.save_file(spec.project, STAGE, out)
    ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(
        spec=spec, table=event.table, profile=ref, target=profile["target"],
        problem_type=problems.to_proto(profile["problem_type"]), metric=profile["metric"],
        target_reasons=profile["target_reasons"], n_rows=profile["n_rows"],
        warnings=profile.get("warnings", []),
        columns=[ColumnSummary(name=c["name"], kind=c["kind"], dtype=c["dtype"],
                               missing=int(c["missing"] or 0), unique=int(c["unique"] or 0))
                 for c in profile["columns"]]))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"target {profile['target']} ({profile['problem_type']}, "
                       f"metric {profile['metric']})")
