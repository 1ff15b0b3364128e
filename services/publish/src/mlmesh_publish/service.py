"""Wiring: experiment.committed -> artifacts (joblib, booster's native file, verified ONNX),
MLflow Model Registry version (challenger, champion when it wins the gate), generated
FastAPI serving app with pdoc API docs, reference data for monitoring -> model.published."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import joblib
import pandas as pd

from mlmesh.events.v1.delivery_pb2 import ExperimentCommitted, ModelPublished
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common import problems, topics
from mlmesh_common.breakers import breaker
from mlmesh_common.modeling import greater_is_better
from mlmesh_common.runtime import HandlerContext, Service, member_ref
from mlmesh_publish.artifacts import export_artifacts
from mlmesh_publish.registry import (
    GATE_METRIC_TAG,
    GATE_SCORE_TAG,
    promote_if_better,
    register_model,
)
from mlmesh_publish.serving import generate_api_docs, generate_serving_app

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


def lineage_description(experiment_id: str, event: ExperimentCommitted, metric: str,
                        score: float, family: str) -> str:
    """The registry version's description: where the model comes from."""
    parts = [f"mlmesh experiment {experiment_id}", f"family {family}",
             f"test {metric} {score:.6g}"]
    if event.commit:
        parts.append(f"git commit {event.commit}" + (f" on {event.branch}" if event.branch
                                                      else ""))
    if event.release_tag:
        parts.append(f"release {event.release_tag}")
    return "; ".join(parts)


@service.handles(topics.EXPERIMENT_COMMITTED, stage=STAGE)
async def publish(ctx: HandlerContext, event: ExperimentCommitted) -> None:
    selected = event.docs.selection
    dataset, spec = selected.dataset, selected.dataset.spec
    if "publish" not in spec.stages:
        ctx.emit(topics.MODEL_PUBLISHED, ModelPublished(committed=event, skipped=True))
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "publish not requested")
        return
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0, "exporting the model")
    model_path = await ctx.fetch_file(selected.model, ctx.work_dir / "model.joblib")
    prepared = await ctx.fetch_dir(dataset.prepared, ctx.work_dir / "prepared")
    prep = json.loads((prepared / "prep.json").read_text())
    profile = json.loads((await ctx.fetch_file(dataset.profile)).read_text())
    train = await ctx.run_blocking(pd.read_parquet, prepared / "train.parquet")
    test = await ctx.run_blocking(pd.read_parquet, prepared / "test.parquet")
    features = train[prep["feature_columns"]]
    out = ctx.work_dir / "publish"
    out.mkdir()
    model = await ctx.run_blocking(joblib.load, model_path)
    exported = await ctx.run_blocking(export_artifacts, model, out,
                                      test[prep["feature_columns"]])
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 30,
                       f"ONNX {exported.onnx_status}; registering the model")
    name = registered_name(spec.project, dataset.target)
    registered = await ctx.run_blocking(
        breaker("mlflow").call, register_model, model_path, registered_name=name,
        experiment_id=ctx.experiment_id, input_example=features.head(5),
        git_commit=event.commit or None,
        tags={"mlmesh.project": spec.project or "default", "mlmesh.family":
              selected.winner.family, "mlmesh.metric": selected.metric,
              "mlmesh.git_branch": event.branch, "mlmesh.release_tag": event.release_tag,
              GATE_METRIC_TAG: selected.metric, GATE_SCORE_TAG: repr(selected.test_score),
              "mlmesh.onnx": exported.onnx_status},
        metrics={"test_score": selected.test_score,
                 "baseline_test_score": selected.baseline_test_score},
        description=lineage_description(ctx.experiment_id, event, selected.metric,
                                        selected.test_score, selected.winner.family),
        extra_artifacts=_published_files(out, exported.onnx, exported.native_model))
    promotion = await ctx.run_blocking(
        breaker("mlflow").call, promote_if_better, registered.name, registered.version,
        metric=selected.metric, score=selected.test_score,
        greater_is_better=greater_is_better(selected.metric))
    ctx.check_cancelled()
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING, 60,
                       f"{registered.name} v{registered.version} is {promotion.alias} "
                       f"({promotion.reason}); generating the serving app")
    app_dir = ctx.work_dir / "serving"
    example = features.head(1).astype(object).where(features.head(1).notna(), None)
    await ctx.run_blocking(generate_serving_app, model_path, app_dir, model_name=name,
                           model_version=str(registered.version),
                           feature_schema=feature_schema(prep, profile),
                           problem_type=problems.from_proto(dataset.problem_type),
                           example_row=example.to_dict("records")[0],
                           onnx_path=out / exported.onnx if exported.onnx else None,
                           probe_rows=test[prep["feature_columns"]].head(200).to_dict("records"))
    docs_dir = await ctx.run_blocking(generate_api_docs, app_dir, ctx.work_dir / "serving-docs")
    shutil.copyfile(model_path, out / "model.joblib")
    (out / "promotion.json").write_text(json.dumps(promotion.__dict__, indent=2) + "\n")
    await ctx.run_blocking(features.to_parquet, out / "reference.parquet", index=False)
    folder = await ctx.save_dir(spec.project, STAGE, out)
    serving = await ctx.save_dir(spec.project, STAGE, app_dir, "serving")
    serving_docs = await ctx.save_dir(spec.project, STAGE, docs_dir, "serving-docs")
    published = ModelPublished(
        committed=event, registered_model=registered.name,
        model_version=str(registered.version), model_uri=registered.model_uri,
        model=member_ref(folder, out, "model.joblib", "application/octet-stream"),
        serving_app=serving, serving_docs=serving_docs,
        reference_data=member_ref(folder, out, "reference.parquet",
                                  "application/vnd.apache.parquet"),
        feature_columns=prep["feature_columns"], mlflow_run_id=registered.run_id,
        alias=promotion.alias, promoted_to_champion=promotion.promoted)
    if exported.onnx:
        published.onnx.CopyFrom(member_ref(folder, out, exported.onnx, "application/onnx"))
    if exported.native_model:
        published.native_model.CopyFrom(member_ref(folder, out, exported.native_model,
                                                   "application/octet-stream"))
    ctx.emit(topics.MODEL_PUBLISHED, published)
    onnx_note = "ONNX verified" if exported.onnx else f"no ONNX: {exported.onnx_reason}"
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{registered.name} v{registered.version} published as "
                       f"{promotion.alias}; {onnx_note}")


def _published_files(out: Path, *names: str | None) -> list[Path]:
    """The ONNX graph, its sidecar and the native booster file, where written."""
    files = []
    for name in names:
        if name:
            files.append(out / name)
            if (out / f"{name}.json").is_file():
                files.append(out / f"{name}.json")
    return files
