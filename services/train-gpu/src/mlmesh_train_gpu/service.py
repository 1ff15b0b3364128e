"""Wiring: the planner fans dataset.prepared out to one train.job per family and fans the
results in to training.completed; workers cross-validate one family each."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path

from google.protobuf import json_format

from mlmesh.events.v1.dataset_pb2 import DatasetPrepared
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh.events.v1.training_pb2 import TrainingCompleted, TrainJob, TrainJobCompleted
from mlmesh_common import candidates, topics
from mlmesh_common.breakers import breaker
from mlmesh_common.envelope import derive_event_id
from mlmesh_common.errors import Cancelled, PermanentError, is_transient
from mlmesh_common.modeling import detect_device, greater_is_better, log_run
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_train_gpu.fanin import rank_candidates
from mlmesh_train_gpu.jobs import run_with_fallback
from mlmesh_train_gpu.planning import JobSpec, plan_jobs, planned_families

STAGE = "train"
#: Share of the experiment's time budget given to training (tuning gets its own share).
TRAIN_BUDGET_SHARE = 0.4
log = logging.getLogger("mlmesh.train_gpu")
service = Service("train-gpu")


def _scope(experiment_id: str) -> str:
    return f"train:{experiment_id}"


@service.handles(topics.DATASET_PREPARED, group="train-gpu-planner", stage=STAGE)
async def plan(ctx: HandlerContext, event: DatasetPrepared) -> None:
    spec = event.spec
    prep_json = await ctx.run_blocking(
        ctx.store.get_file, f"{event.prepared.uri}/prep.json", ctx.work_dir / "prep.json"
    )
    jobs = plan_jobs(
        json.loads(prep_json.read_text()),
        budget_s=spec.time_budget_s * TRAIN_BUDGET_SHARE,
        families=list(spec.families),
    )
    await ctx.run_blocking(
        ctx.ledger.state_init,
        _scope(ctx.experiment_id),
        {
            "job_count": len(jobs),
            "started_at": time.time(),
            "dataset": base64.b64encode(event.SerializeToString()).decode(),
        },
    )
    # Heaviest first, on consecutive partitions: the workers take the long jobs first and
    # share them (longest-processing-time-first scheduling across the worker group).
    by_budget = sorted(range(len(jobs)), key=lambda i: -jobs[i].time_budget_s)
    for position, index in enumerate(by_budget):
        job = jobs[index]
        ctx.emit(
            topics.TRAIN_JOB,
            TrainJob(
                job_id=job.job_id,
                family=job.family,
                params_json=json.dumps(job.params),
                dataset=event,
                time_budget_s=job.time_budget_s,
                job_index=index,
                job_count=len(jobs),
            ),
            key=f"{ctx.experiment_id}/{job.job_id}",
            spread=position,
        )
    await ctx.progress(
        STAGE,
        StageProgress.STATE_STARTED,
        0,
        f"{len(jobs)} families: {', '.join(j.family for j in jobs)}",
    )


@service.handles(topics.TRAIN_JOB, group="train-gpu-worker", stage=STAGE)
async def train(ctx: HandlerContext, job: TrainJob) -> None:
    ctx.check_cancelled()
    if await ctx.hand_to_idle_worker(job, key=f"{ctx.experiment_id}/{job.job_id}"):
        log.info("job %s handed to an idle worker", job.job_id)
        return
    spec = job.dataset.spec
    folder = await ctx.fetch_dir(job.dataset.prepared, ctx.work_dir / "prepared")
    device = detect_device()
    job_spec = JobSpec(job.job_id, job.family, json.loads(job.params_json), job.time_budget_s)
    done = TrainJobCompleted(job_id=job.job_id, job_count=job.job_count)
    oof_dir = ctx.work_dir / "oof" / job.job_id
    try:
        # A failed GPU fit falls back to the CPU inside the model; a failed family falls back
        # to a simpler one that has no job of its own in this experiment.
        result = await ctx.run_blocking(
            run_with_fallback,
            folder,
            job_spec,
            seed=spec.seed or 42,
            device=device,
            planned=planned_families(list(spec.families)),
            oof_dir=oof_dir,
        )
    except Exception as exc:
        if is_transient(exc) or isinstance(exc, Cancelled):
            raise
        log.warning("family %s failed: %s", job.family, exc)
        done.error = str(exc) if job.family in str(exc) else f"{job.family} failed: {exc}"
        ctx.emit(topics.TRAIN_JOB_COMPLETED, done)
        return
    row = result.to_dict()
    row["source"] = "train"
    oof_ref = await ctx.save_file(
        spec.project, STAGE, Path(result.oof_path), name=f"{job.job_id}/oof.parquet"
    )
    row["oof_predictions"] = json_format.MessageToDict(oof_ref, preserving_proto_field_name=True)
    tags = {
        "mlmesh.experiment_id": ctx.experiment_id,
        "mlmesh.stage": STAGE,
        "mlmesh.family": result.family,
        "mlmesh.device": result.device,
        "mlmesh.metric": result.metric,
    }
    if result.fallback_from:
        tags["mlmesh.fallback_from"] = result.fallback_from
        tags["mlmesh.fallback_errors"] = "; ".join(result.fallback_errors)[:4000]
    if result.device_fallback_reason:
        tags["mlmesh.device_fallback_reason"] = result.device_fallback_reason[:4000]
    metrics = {
        "cv_mean": result.cv_mean,
        "cv_std": result.cv_std,
        "fit_seconds": result.fit_seconds,
    }
    if result.latency_ms is not None:
        metrics["latency_ms"] = result.latency_ms
    if result.size_bytes is not None:
        metrics["size_bytes"] = float(result.size_bytes)
    row["mlflow_run_id"] = await ctx.run_blocking(
        breaker("mlflow").call,
        log_run,
        f"mlmesh/{spec.project}",
        f"{ctx.experiment_id}/{job.family}",
        params=result.params,
        metrics=metrics,
        tags=tags,
        run_id_tag=ctx.envelope.event_id,
        tracking_uri=ctx.settings.resolved_mlflow_uri,
    )
    done.candidate.CopyFrom(candidates.from_dict(row))
    ctx.emit(topics.TRAIN_JOB_COMPLETED, done)
    note = f" (standing in for {result.fallback_from})" if result.fallback_from else ""
    if result.device_fallback_reason:
        note += f"; {result.device_fallback_reason}"
    await ctx.progress(
        STAGE,
        StageProgress.STATE_RUNNING,
        0,
        f"{result.family}: CV {result.metric} {result.cv_mean:.4f} on {result.device}{note}",
    )


@service.handles(topics.TRAIN_JOB_COMPLETED, group="train-gpu-planner", stage=STAGE)
async def collect(ctx: HandlerContext, done: TrainJobCompleted) -> None:
    scope = _scope(ctx.experiment_id)
    value = {
        "error": done.error,
        "candidate": candidates.to_dict(done.candidate) if done.candidate.family else None,
    }
    received = await ctx.run_blocking(ctx.ledger.fanin_add, scope, done.job_id, value)
    state = await ctx.run_blocking(ctx.ledger.state_get, scope)
    if state is None:
        raise PermanentError(
            f"train.job.completed for {ctx.experiment_id} arrived without a "
            "plan; the planner's state is gone, resubmit the experiment"
        )
    total = state["job_count"]
    await ctx.progress(
        STAGE,
        StageProgress.STATE_RUNNING,
        100.0 * received / total,
        f"{received}/{total} families done",
    )
    if received < total:
        return
    items = await ctx.run_blocking(ctx.ledger.fanin_items, scope)
    dataset = DatasetPrepared.FromString(base64.b64decode(state["dataset"]))
    results = [v["candidate"] for v in items.values() if v["candidate"]]
    errors = [v["error"] for v in items.values() if v["error"]]
    if not results:
        raise PermanentError("every model family failed: " + "; ".join(errors))
    ranked = rank_candidates(results, dataset.metric)
    for row in ranked:
        row["greater_is_better"] = greater_is_better(dataset.metric)
    ctx.emit(
        topics.TRAINING_COMPLETED,
        TrainingCompleted(
            dataset=dataset,
            candidates=[candidates.from_dict(r) for r in ranked],
            best_family=ranked[0]["family"],
        ),
        event_id=derive_event_id(ctx.experiment_id, topics.TRAINING_COMPLETED.name),
    )
    await ctx.progress(
        STAGE,
        StageProgress.STATE_FINISHED,
        100,
        f"best {ranked[0]['family']} (CV {ranked[0]['cv_mean']:.4f})"
        + (f"; failed: {len(errors)}" if errors else ""),
    )
