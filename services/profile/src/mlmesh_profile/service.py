"""Wiring: dataset.acquired -> profile the table -> dataset.profiled.

The profile folder (profile.json, plots/*.png, report.html, with its manifest) is stored
as one artifact; the event's ``profile`` ref names profile.json inside it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

import pandas as pd

from mlmesh.events.v1.dataset_pb2 import ColumnSummary, DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import problems, topics
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_profile.profiling import PROFILE_FILE, build_profile

STAGE = "profile"
#: Column summaries and warnings carried in the event at most; profile.json has them all.
MAX_EVENT_COLUMNS = 1000
MAX_EVENT_WARNINGS = 50
service = Service("profile")


@service.handles(topics.DATASET_ACQUIRED, stage=STAGE)
async def on_acquired(ctx: HandlerContext, event: DatasetAcquired) -> None:
    spec = event.spec
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "reading the table")
    table_path = await ctx.fetch_file(event.table)
    df = await ctx.run_blocking(pd.read_parquet, table_path)
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 10,
                       f"profiling {len(df)} rows x {df.shape[1]} columns")

    loop = asyncio.get_running_loop()
    sent: list[concurrent.futures.Future] = []

    def on_step(fraction: float, message: str) -> None:  # called from the worker thread
        ctx.check_cancelled()
        sent.append(asyncio.run_coroutine_threadsafe(
            ctx.progress(STAGE, StageProgress.STATE_RUNNING, 10 + 85 * fraction, message), loop))

    out = ctx.work_dir / "profile"
    profile = await ctx.run_blocking(
        build_profile, df, out, target_hint=spec.target or None,
        problem_type_hint=problems.from_proto(spec.problem_type) or None,
        metric_hint=spec.metric or None, seed=spec.seed or 42, on_step=on_step)
    await asyncio.gather(*(asyncio.wrap_future(f) for f in sent))  # progress stays in order
    ctx.check_cancelled()
    folder = await ctx.save_dir(spec.project, STAGE, out)

    columns = profile["columns"]
    warnings = list(profile["warnings"])
    if len(columns) > MAX_EVENT_COLUMNS:
        warnings.insert(0, f"the event lists the first {MAX_EVENT_COLUMNS} of {len(columns)} "
                           "columns; profile.json has them all")
    ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(
        spec=spec, table=event.table,
        profile=member_ref(folder, out, PROFILE_FILE, "application/json"),
        target=profile["target"], problem_type=problems.to_proto(profile["problem_type"]),
        metric=profile["metric"], target_reasons=profile["target_reasons"],
        n_rows=profile["n_rows"], warnings=warnings[:MAX_EVENT_WARNINGS],
        columns=[ColumnSummary(name=c["name"], kind=c["kind"], dtype=c["dtype"],
                               missing=int(c["missing"] or 0), unique=int(c["unique"] or 0))
                 for c in columns[:MAX_EVENT_COLUMNS]]))
    task = profile["task"]
    trained = "" if task["kind"] == profile["problem_type"] else f" as {profile['problem_type']}"
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"target {profile['target']} ({task['kind']}{trained}, "
                       f"metric {profile['metric']}); "
                       f"{len(profile['recommendations'])} recommendations")
