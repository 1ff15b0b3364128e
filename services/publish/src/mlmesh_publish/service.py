"""Wiring: experiment.committed -> MLflow Model Registry version, joblib artifact, generated
FastAPI serving app, reference data for monitoring -> model.published."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd

from mlmesh.events.v1.delivery_pb2 import ExperimentCommitted, ModelPublished
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import problems, topics
from mlmesh_common.breakers import breaker
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_publish.registry import register_model
from mlmesh_publish.serving import generate_serving_app

STAGE = "publish"
service = Service("publish")


def registered_name(project: str, target: str) -> str:
    """The registry name of a project's model for one target."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"mlmesh-{project or 'default'}-{target}")


def feature_schema(prep: dict, profile: dict) -> list[dict]:
    """Serving inputs from prep's feature lists and the profile's column kinds."""
    kinds = {c["name"]: c for c in profile["columns"]}
    numeric = set(prep.get("numeric_columns", []))
    schema = []
    for name in prep["feature_columns"]:
        column = kinds.get(name, {})
        kind = "numeric" if name in numeric else (
            "boolean" if column.get("kind") == "boolean" else "categorical")
        schema.append({"name": name, "kind": kind, "dtype": column.get("dtype", "")})
    return schema


@service.handles(topics.EXPERIMENT_COMMITTED, stage=STAGE)
async def publish(ctx: HandlerContext, event: ExperimentCommitted) -> None:
    selected = event.docs.selection
    dataset, spec = selected.dataset, selected.dataset.spec
    if "publish" not in spec.stages:
        ctx.emit(topics.MODEL_PUBLISHED, ModelPublished(committed=event, skipped=True))
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "publish not requested")
        return
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "registering the model")
    model_path = await ctx.fetch_file(selected.model, ctx.work_dir / "model.joblib")
    prepared = await ctx.fetch_dir(dataset.prepared, ctx.work_dir / "prepared")
    prep = json.loads((prepared / "prep.json").read_text())
    profile = json.loads((await ctx.fetch_file(dataset.profile)).read_text())
    train = await ctx.run_blocking(pd.read_parquet, prepared / "train.parquet")
    features = train[prep["feature_columns"]]
    name = registered_name(spec.project, dataset.target)
    registered = await ctx.run_blocking(
        breaker("mlflow").call, register_model, model_path, registered_name=name,
        experiment_id=ctx.experiment_id, input_example=features.head(5),
        git_commit=event.commit or None,
        tags={"mlmesh.project": spec.project or "default", "mlmesh.family":
              selected.winner.family, "mlmesh.metric": selected.metric,
              "mlmesh.git_branch": event.branch},
        metrics={"test_score": selected.test_score,
                 "baseline_test_score": selected.baseline_test_score})
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 60,
                       f"{registered.name} v{registered.version}; generating the serving app")
    out = ctx.work_dir / "publish"
    out.mkdir()
    app_dir = ctx.work_dir / "serving"
    example = features.head(1).astype(object).where(features.head(1).notna(), None)
    await ctx.run_blocking(generate_serving_app, model_path, app_dir, model_name=name,
                           model_version=str(registered.version),
                           feature_schema=feature_schema(prep, profile),
                           problem_type=problems.from_proto(dataset.problem_type),
                           example_row=example.to_dict("records")[0])
    shutil.copyfile(model_path, out / "model.joblib")
    await ctx.run_blocking(features.to_parquet, out / "reference.parquet", index=False)
    folder = await ctx.save_dir(spec.project, STAGE, out)
    serving = await ctx.save_dir(spec.project, STAGE, app_dir, "serving")
    ctx.emit(topics.MODEL_PUBLISHED, ModelPublished(
        committed=event, registered_model=registered.name,
        model_version=str(registered.version), model_uri=registered.model_uri,
        model=member_ref(folder, out, "model.joblib", "application/octet-stream"),
        serving_app=serving,
        reference_data=member_ref(folder, out, "reference.parquet",
                                  "application/vnd.apache.parquet"),
        feature_columns=prep["feature_columns"], mlflow_run_id=registered.run_id))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{registered.name} v{registered.version} published")
