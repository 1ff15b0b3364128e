"""Wiring: the coordinator runs an Optuna study on the best families, fanning trials out as
tune.trial events to workers that share the study storage, and ends with tuning.completed."""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

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
from mlmesh_common.modeling import detect_device, greater_is_better, log_run
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_tune.budget import TuningBudget
from mlmesh_tune.plan import family_for_trial, pick_families
from mlmesh_tune.study import ask_trial, direction_for, open_study, tell_trial
from mlmesh_tune.trials import evaluate_trial

STAGE = "tune"
#: Share of the experiment's time budget given to tuning.
TUNE_BUDGET_SHARE = 0.35
#: Trials evaluated at the same time (one per worker replica is a good value).
PARALLELISM = 2
log = logging.getLogger("mlmesh.tune")
service = Service("tune")


def _scope(experiment_id: str) -> str:
    return f"tune:{experiment_id}"


def _budget(state: dict[str, Any]) -> TuningBudget:
    return TuningBudget(max_trials=state["max_trials"], time_budget_s=state["time_budget_s"],
                        parallelism=PARALLELISM, grace_s=max(30.0, state["time_budget_s"] / 4))


def _best(rows: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    sign = 1 if greater_is_better(metric) else -1
    return max(rows, key=lambda r: sign * r["cv_mean"])


async def _ask(ctx: HandlerContext, state: dict[str, Any], count: int) -> None:
    """Ask `count` new trials (or re-emit those this event already asked, on a redo)."""
    asked = state["asked_by"].get(ctx.envelope.event_id)
    if asked is None:
        study = await ctx.run_blocking(open_study, state["study_name"], state["storage_url"],
                                       direction=state["direction"], seed=state["seed"])
        asked = []
        for _ in range(count):
            family = family_for_trial(state["n_asked"], state["families"])
            number, params = await ctx.run_blocking(ask_trial, study, family,
                                                    state["problem_type"])
            asked.append({"number": number, "family": family, "params": params})
            state["n_asked"] += 1
        state["asked_by"][ctx.envelope.event_id] = asked
        await ctx.run_blocking(ctx.ledger.state_put, _scope(ctx.experiment_id), state)
    dataset = TrainingCompleted.FromString(base64.b64decode(state["training"])).dataset
    for trial in asked:
        trial_id = f"{ctx.experiment_id}-trial-{trial['number']}"
        ctx.emit(topics.TUNE_TRIAL, TuneTrial(
            trial_id=trial_id, study_name=state["study_name"], storage_url=state["storage_url"],
            trial_number=trial["number"], family=trial["family"],
            params_json=json.dumps(trial["params"]), dataset=dataset), key=trial_id)


@service.handles(topics.TRAINING_COMPLETED, group="tune-coordinator", stage=STAGE)
async def start(ctx: HandlerContext, event: TrainingCompleted) -> None:
    spec = event.dataset.spec
    trained = [candidates.to_dict(c) for c in event.candidates]
    if "tune" not in spec.stages or spec.max_trials == 0:
        best = _best(trained, event.dataset.metric)
        ctx.emit(topics.TUNING_COMPLETED, TuningCompleted(
            dataset=event.dataset, candidates=event.candidates,
            best=candidates.from_dict(best), skipped=True))
        await ctx.progress(STAGE, StageProgress.STATE_SKIPPED, 100, "tuning not requested")
        return
    metric = event.dataset.metric
    state = await ctx.run_blocking(ctx.ledger.state_init, _scope(ctx.experiment_id), {
        "study_name": f"mlmesh-{ctx.experiment_id}",
        "storage_url": ctx.settings.resolved_optuna_storage,
        "direction": direction_for(metric), "seed": spec.seed or 42, "metric": metric,
        "problem_type": problems.from_proto(event.dataset.problem_type),
        "families": pick_families(trained, top_k=2), "max_trials": spec.max_trials,
        "time_budget_s": max(10.0, spec.time_budget_s * TUNE_BUDGET_SHARE),
        "started_at": time.time(), "n_asked": 0, "asked_by": {},
        "training": base64.b64encode(event.SerializeToString()).decode()})
    await ctx.progress(STAGE, StageProgress.STATE_STARTED, 0,
                       f"TPE on {', '.join(state['families'])}: up to {state['max_trials']} "
                       f"trials in {state['time_budget_s']:.0f}s")
    await _ask(ctx, state, _budget(state).next_batch_size(state["n_asked"], 0, 0.0))


@service.handles(topics.TUNE_TRIAL, group="tune-worker", stage=STAGE)
async def evaluate(ctx: HandlerContext, trial: TuneTrial) -> None:
    spec = trial.dataset.spec
    done = TuneTrialCompleted(trial_id=trial.trial_id, trial_number=trial.trial_number)
    study = await ctx.run_blocking(open_study, trial.study_name, trial.storage_url,
                                   direction=direction_for(trial.dataset.metric),
                                   seed=spec.seed or 42)
    if ctx.service.is_cancelled(ctx.experiment_id):
        await ctx.run_blocking(tell_trial, study, trial.trial_number, None, "fail")
        ctx.check_cancelled()
    folder = await ctx.fetch_dir(trial.dataset.prepared, ctx.work_dir / "prepared")
    try:
        outcome = await ctx.run_blocking(evaluate_trial, folder, trial.family,
                                         json.loads(trial.params_json), seed=spec.seed or 42,
                                         device=detect_device())
    except Exception as exc:
        if is_transient(exc):
            raise
        await ctx.run_blocking(tell_trial, study, trial.trial_number, None, "fail")
        done.error = f"{type(exc).__name__}: {exc}"
        ctx.emit(topics.TUNE_TRIAL_COMPLETED, done)
        return
    await ctx.run_blocking(tell_trial, study, trial.trial_number, outcome.value,
                           attrs={"cv_std": outcome.cv_std, "device": outcome.device})
    run_id = await ctx.run_blocking(
        breaker("mlflow").call, log_run, f"mlmesh/{spec.project}",
        f"{ctx.experiment_id}/trial-{trial.trial_number}", params=outcome.params,
        metrics={"cv_mean": outcome.value, "cv_std": outcome.cv_std,
                 "fit_seconds": outcome.fit_seconds},
        tags={"mlmesh.experiment_id": ctx.experiment_id, "mlmesh.stage": STAGE,
              "mlmesh.family": outcome.family, "mlmesh.trial": str(trial.trial_number)},
        run_id_tag=ctx.envelope.event_id)
    done.candidate.CopyFrom(candidates.from_dict({
        "family": outcome.family, "params": outcome.params, "metric": outcome.metric,
        "cv_mean": outcome.value, "cv_std": outcome.cv_std, "fold_scores": outcome.fold_scores,
        "fit_seconds": outcome.fit_seconds, "device": outcome.device, "source": "tune",
        "mlflow_run_id": run_id, "greater_is_better": greater_is_better(outcome.metric)}))
    ctx.emit(topics.TUNE_TRIAL_COMPLETED, done)


@service.handles(topics.TUNE_TRIAL_COMPLETED, group="tune-coordinator", stage=STAGE)
async def collect(ctx: HandlerContext, done: TuneTrialCompleted) -> None:
    scope = _scope(ctx.experiment_id)
    finished = await ctx.run_blocking(
        ctx.ledger.fanin_add, scope, str(done.trial_number),
        {"error": done.error,
         "candidate": candidates.to_dict(done.candidate) if done.candidate.family else None})
    state = await ctx.run_blocking(ctx.ledger.state_get, scope)
    if state is None:
        log.warning("trial result for %s without a study; ignored", ctx.experiment_id)
        return
    budget, elapsed = _budget(state), time.time() - state["started_at"]
    await ctx.progress(STAGE, StageProgress.STATE_RUNNING,
                       min(99.0, 100.0 * max(finished / max(state["max_trials"], 1),
                                             elapsed / state["time_budget_s"])),
                       f"{finished} trials done"
                       + (f" (last: {done.candidate.cv_mean:.4f})" if done.candidate.family
                          else f" (last failed: {done.error[:80]})"))
    if not budget.is_done(state["n_asked"], finished, elapsed):
        count = budget.next_batch_size(state["n_asked"], finished, elapsed)
        if count or ctx.envelope.event_id in state["asked_by"]:
            await _ask(ctx, state, count)
        return
    await _finish(ctx, state, finished)


async def _finish(ctx: HandlerContext, state: dict[str, Any], finished: int) -> None:
    training = TrainingCompleted.FromString(base64.b64decode(state["training"]))
    study = await ctx.run_blocking(open_study, state["study_name"], state["storage_url"],
                                   direction=state["direction"], seed=state["seed"])
    metric = state["metric"]
    items = await ctx.run_blocking(ctx.ledger.fanin_items, _scope(ctx.experiment_id))
    tuned = [v["candidate"] for v in items.values() if v.get("candidate")]
    rows = [candidates.to_dict(c) for c in training.candidates] + tuned
    best = _best(rows, metric)
    history = ctx.work_dir / "tuning_history.csv"
    frame = await ctx.run_blocking(study.trials_dataframe)
    frame.to_csv(history, index=False)
    ref = await ctx.save_file(training.dataset.spec.project, STAGE, history)
    all_candidates: list[Candidate] = list(training.candidates) + [
        candidates.from_dict(r) for r in tuned]
    ctx.emit(topics.TUNING_COMPLETED, TuningCompleted(
        dataset=training.dataset, candidates=all_candidates, best=candidates.from_dict(best),
        study_name=state["study_name"], n_trials=finished, history=ref),
        event_id=derive_event_id(ctx.experiment_id, topics.TUNING_COMPLETED.name))
    await ctx.progress(STAGE, StageProgress.STATE_FINISHED, 100,
                       f"{len(tuned)} trials completed; best {best['family']} "
                       f"({best['source']}) CV {best['cv_mean']:.4f}")


