"""Wiring: the coordinator runs one Optuna study per tuned family, fanning trials out as
tune.trial events to workers that share the study storage, and ends with tuning.completed."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from google.protobuf import json_format

from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh.events.v1.training_pb2 import (
    Candidate,
    TrainingCompleted,
    TuneTrial,
    TuneTrialCompleted,
    TuningCompleted,
)
from mlmesh_common import candidates, problems, topics
from mlmesh_common.breakers import breaker
from mlmesh_common.envelope import derive_event_id
from mlmesh_common.errors import is_transient
from mlmesh_common.modeling import (
    detect_device,
    greater_is_better,
    load_prepared,
    log_run,
)
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_common.runtime._context import member_ref
from mlmesh_tune.budget import select_refit_estimate, tune_time_budget
from mlmesh_tune.coordinator import (
    PARENT_RUN_ATTR,
    TrialTicket,
    TuneConfig,
    ask_batch,
    is_done,
    open_studies,
    summarize,
)
from mlmesh_tune.plan import pick_families
from mlmesh_tune.report import write_report
from mlmesh_tune.strategy import make_pruner
from mlmesh_tune.study import load_study
from mlmesh_tune.worker import (
    TrialRun,
    candidate_for,
    finished_result,
    record_complete,
    record_failure,
    run_trial,
    write_oof,
)

STAGE = "tune"
#: Trials evaluated at the same time (one per worker replica is a good value).
PARALLELISM = 2
#: Families tuned: the best this many tunable families of training.
TOP_FAMILIES = 2
log = logging.getLogger("mlmesh.tune")
service = Service("tune")


def _scope(experiment_id: str) -> str:
    return f"tune:{experiment_id}"


def _best(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    sign = 1 if greater_is_better(metric) else -1
    return max(rows, key=lambda r: sign * r["cv_mean"])


def _ranked(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    sign = 1 if greater_is_better(metric) else -1
    return sorted(rows, key=lambda r: -sign * r["cv_mean"])


def _tracking_experiment(project: str) -> str:
    return f"mlmesh/{project}"


def _emit_trials(
    ctx: HandlerContext, config: TuneConfig, tickets: list[TrialTicket], dataset: Any
) -> None:
    for t in tickets:
        trial_id = f"{ctx.experiment_id}-{t.family}-trial-{t.number}"
        ctx.emit(
            topics.TUNE_TRIAL,
            TuneTrial(
                trial_id=trial_id,
                study_name=t.study_name,
                storage_url=config.storage_url,
                trial_number=t.number,
                family=t.family,
                params_json=json.dumps(t.params),
                dataset=dataset,
            ),
            key=trial_id,
            spread=t.slot,
        )


@service.handles(topics.TRAINING_COMPLETED, group="tune-coordinator", stage=STAGE)
async def start(ctx: HandlerContext, event: TrainingCompleted) -> None:
    spec = event.dataset.spec
    trained = [candidates.to_dict(c) for c in event.candidates]
    if "tune" not in spec.stages or spec.max_trials == 0:
        best = _best(trained, event.dataset.metric)
        ctx.emit(
            topics.TUNING_COMPLETED,
            TuningCompleted(
                dataset=event.dataset,
                candidates=event.candidates,
                best=candidates.from_dict(best),
                skipped=True,
            ),
        )
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "tuning not requested")
        return
    ranked = _ranked(trained, event.dataset.metric)
    config = TuneConfig.create(
        study_prefix=f"mlmesh-{ctx.experiment_id}",
        storage_url=ctx.settings.resolved_optuna_storage,
        metric=event.dataset.metric,
        problem_type=problems.from_proto(event.dataset.problem_type),
        families=pick_families(ranked, top_k=TOP_FAMILIES),
        sampler=spec.sampler or "auto",
        pruner=spec.pruner or "median",
        objectives=list(spec.objectives),
        seed=spec.seed or 42,
        max_trials=spec.max_trials,
        time_budget_s=tune_time_budget(spec.time_budget_s, await ctx.elapsed_s(),
                                       select_refit_estimate(
                                           ranked[0] if ranked else None,
                                           event.dataset.n_train, event.dataset.n_valid,
                                           event.dataset.n_folds)),
        parallelism=PARALLELISM,
    )
    state = await ctx.run_blocking(
        ctx.ledger.state_init,
        _scope(ctx.experiment_id),
        {
            "config": config.to_dict(),
            "training": base64.b64encode(event.SerializeToString()).decode(),
        },
    )
    config = TuneConfig.from_dict(state["config"])
    if not config.parent_run_id:
        config.parent_run_id = await ctx.run_blocking(
            breaker("mlflow").call,
            log_run,
            _tracking_experiment(spec.project),
            f"{ctx.experiment_id}/tune",
            params={
                "families": ",".join(config.families),
                "samplers": config.samplers,
                "pruner": config.pruner,
                "objectives": ",".join(config.objectives),
                "max_trials": config.max_trials,
                "time_budget_s": config.time_budget_s,
            },
            metrics={},
            tags={"mlmesh.experiment_id": ctx.experiment_id, "mlmesh.stage": STAGE},
            run_id_tag=f"{ctx.envelope.event_id}-tune-parent",
            tracking_uri=ctx.settings.resolved_mlflow_uri,
        )
        state["config"] = config.to_dict()
        await ctx.run_blocking(ctx.ledger.state_put, _scope(ctx.experiment_id), state)
    studies = await ctx.run_blocking(open_studies, config)
    tickets = await ctx.run_blocking(
        ask_batch, config, studies, ctx.envelope.event_id, n_finished=0
    )
    samplers = ", ".join(f"{f} ({s})" for f, s in config.samplers.items())
    await ctx.progress(
        STAGE,
        StageProgress.STATE_STARTED,
        0,
        f"tuning {samplers}, pruner {config.pruner}"
        + (", objectives score+latency" if config.multi_objective else "")
        + f": up to {config.max_trials} trials in {config.time_budget_s:.0f}s",
    )
    _emit_trials(ctx, config, tickets, event.dataset)


def _emit_result(ctx: HandlerContext, trial: TuneTrial, run: TrialRun) -> None:
    done = TuneTrialCompleted(trial_id=trial.trial_id, trial_number=trial.trial_number)
    if run.state == "complete" and run.candidate:
        done.candidate.CopyFrom(candidates.from_dict(run.candidate))
    else:
        done.error = run.error or f"trial ended {run.state}"
    ctx.emit(topics.TUNE_TRIAL_COMPLETED, done)


@service.handles(topics.TUNE_TRIAL, group="tune-worker", stage=STAGE)
async def evaluate(ctx: HandlerContext, trial: TuneTrial) -> None:
    spec = trial.dataset.spec
    study = await ctx.run_blocking(load_study, trial.study_name, trial.storage_url)
    previous = await ctx.run_blocking(finished_result, study, trial.trial_number)
    if previous is not None:  # told before a crash or redelivery: re-emit, never redo
        _emit_result(ctx, trial, previous)
        return
    if await ctx.hand_to_idle_worker(trial, key=trial.trial_id):
        log.info("trial %s handed to an idle worker", trial.trial_id)
        return
    if ctx.service.is_cancelled(ctx.experiment_id):
        await ctx.run_blocking(record_failure, study, trial.trial_number, "cancelled")
        ctx.check_cancelled()
    folder = await ctx.fetch_dir(trial.dataset.prepared, ctx.work_dir / "prepared")
    params = json.loads(trial.params_json)
    try:
        data = await ctx.run_blocking(load_prepared, folder)
        study.pruner = make_pruner(spec.pruner, data.n_folds, n_objectives=len(study.directions))
        run = await ctx.run_blocking(
            run_trial,
            study,
            trial.trial_number,
            data,
            trial.family,
            params,
            seed=spec.seed or 42,
            device=detect_device(),
        )
    except Exception as exc:
        if is_transient(exc):
            raise
        error = f"{type(exc).__name__}: {exc}"
        await ctx.run_blocking(record_failure, study, trial.trial_number, error)
        _emit_result(ctx, trial, TrialRun("fail", error=error))
        return
    if run.state != "complete":
        _emit_result(ctx, trial, run)
        return
    oof_ref = None
    oof_path = await ctx.run_blocking(write_oof, run, ctx.work_dir / "oof")
    if oof_path is not None:
        stored = await ctx.save_file(
            spec.project,
            STAGE,
            oof_path,
            name=f"trials/{trial.family}-{trial.trial_number}/oof.parquet",
        )
        oof_ref = json_format.MessageToDict(stored, preserving_proto_field_name=True)
    outcome = run.outcome
    assert outcome is not None
    run_id = await ctx.run_blocking(
        breaker("mlflow").call,
        log_run,
        _tracking_experiment(spec.project),
        f"{ctx.experiment_id}/{trial.family}-trial-{trial.trial_number}",
        params=outcome.params,
        metrics={
            "cv_mean": outcome.value,
            "cv_std": outcome.cv_std,
            "fit_seconds": outcome.fit_seconds,
            **({"latency_ms": outcome.latency_ms} if outcome.latency_ms else {}),
            **({"size_bytes": outcome.size_bytes} if outcome.size_bytes else {}),
        },
        tags={
            "mlmesh.experiment_id": ctx.experiment_id,
            "mlmesh.stage": STAGE,
            "mlmesh.family": outcome.family,
            "mlmesh.trial": str(trial.trial_number),
        },
        parent_run_id=study.user_attrs.get(PARENT_RUN_ATTR) or None,
        run_id_tag=ctx.envelope.event_id,
        tracking_uri=ctx.settings.resolved_mlflow_uri,
    )
    recorded = await ctx.run_blocking(
        record_complete,
        study,
        trial.trial_number,
        candidate_for(run, oof_ref=oof_ref, mlflow_run_id=run_id),
    )
    _emit_result(
        ctx,
        trial,
        TrialRun("complete", candidate=recorded, error="" if recorded else "non-finite CV score"),
    )


@service.handles(topics.TUNE_TRIAL_COMPLETED, group="tune-coordinator", stage=STAGE)
async def collect(ctx: HandlerContext, done: TuneTrialCompleted) -> None:
    scope = _scope(ctx.experiment_id)
    finished = await ctx.run_blocking(
        ctx.ledger.fanin_add,
        scope,
        done.trial_id or str(done.trial_number),
        {"error": done.error, "family": done.candidate.family},
    )
    state = await ctx.run_blocking(ctx.ledger.state_get, scope)
    if state is None:
        log.warning("trial result for %s without a study; ignored", ctx.experiment_id)
        return
    config = TuneConfig.from_dict(state["config"])
    studies = await ctx.run_blocking(open_studies, config)
    share = max(
        finished / max(config.max_trials, 1),
        (time.time() - config.started_at) / config.time_budget_s,
    )
    await ctx.progress(
        STAGE,
        StageProgress.STATE_RUNNING,
        min(99.0, 100.0 * share),
        f"{finished} trials done"
        + (
            f" (last: {done.candidate.family} {done.candidate.cv_mean:.4f})"
            if done.candidate.family
            else f" (last: {done.error[:80]})"
        ),
    )
    if not await ctx.run_blocking(is_done, config, studies, n_finished=finished):
        tickets = await ctx.run_blocking(
            ask_batch, config, studies, ctx.envelope.event_id, n_finished=finished
        )
        training = TrainingCompleted.FromString(base64.b64decode(state["training"]))
        _emit_trials(ctx, config, tickets, training.dataset)
        return
    await _finish(ctx, config, state, studies, finished)


async def _finish(
    ctx: HandlerContext,
    config: TuneConfig,
    state: dict[str, Any],
    studies: dict[str, Any],
    finished: int,
) -> None:
    training = TrainingCompleted.FromString(base64.b64decode(state["training"]))
    project = training.dataset.spec.project
    trained = [candidates.to_dict(c) for c in training.candidates]
    summary = await ctx.run_blocking(summarize, config, studies, trained)
    folder = ctx.work_dir / "tuning"
    report = await ctx.run_blocking(
        write_report,
        studies,
        folder,
        metric=config.metric,
        maximize=config.directions[0] == "maximize",
        pareto=summary.pareto_front,
        points=summary.measured,
        seed=config.seed,
    )
    plots = await ctx.save_dir(project, STAGE, folder, name="report")
    history = member_ref(plots, folder, report["history"], "text/csv")
    counts = summary.counts
    if config.parent_run_id:
        await ctx.run_blocking(
            breaker("mlflow").call,
            log_run,
            _tracking_experiment(project),
            f"{ctx.experiment_id}/tune-summary",
            params={"best_family": summary.best["family"], "best_source": summary.best["source"]},
            metrics={
                "best_cv_mean": summary.best["cv_mean"],
                "trials": sum(counts.values()),
                **{f"trials_{k}": v for k, v in counts.items()},
            },
            tags={"mlmesh.experiment_id": ctx.experiment_id, "mlmesh.stage": STAGE},
            artifacts=[folder],
            parent_run_id=config.parent_run_id,
            run_id_tag=f"{config.study_prefix}-summary",
            tracking_uri=ctx.settings.resolved_mlflow_uri,
        )
    all_candidates: list[Candidate] = list(training.candidates) + [
        candidates.from_dict(c) for c in summary.kept
    ]
    ctx.emit(
        topics.TUNING_COMPLETED,
        TuningCompleted(
            dataset=training.dataset,
            candidates=all_candidates,
            best=candidates.from_dict(summary.best),
            study_name=config.study_prefix,
            n_trials=finished,
            history=history,
            plots=plots,
            pareto_front=[candidates.from_dict(c) for c in summary.pareto_front],
        ),
        event_id=derive_event_id(ctx.experiment_id, topics.TUNING_COMPLETED.name),
    )
    await ctx.progress(
        STAGE,
        StageProgress.STATE_FINISHED,
        100,
        f"{counts['complete']} trials completed, {counts['pruned']} pruned, "
        f"{counts['fail']} failed; best {summary.best['family']} "
        f"({summary.best['source']}) CV {summary.best['cv_mean']:.4f}",
    )
