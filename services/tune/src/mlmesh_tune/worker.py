"""A tune worker's steps for one trial, as plain functions over its study.

Order matters for crash safety: evaluate, store what must outlive the worker (OOF file,
tracking run), then record the whole candidate on the trial and tell the study in one
step. A worker that crashes before the tell leaves the trial RUNNING and the redelivered
event evaluates it again; one that crashes after the tell finds the trial finished on
redelivery and re-emits the recorded result without evaluating it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mlmesh_common.modeling import PreparedData, greater_is_better, save_oof

from .coordinator import DEADLINE_ATTR, KEEP_PER_FAMILY
from .study import CANDIDATE_ATTR, fold_reporter, tell_trial, trial_by_number
from .trials import TrialOutcome, evaluate_trial, worth_keeping

#: A trial started after its deadline still gets this long (one fold always runs).
MIN_TRIAL_BUDGET_S = 1.0


@dataclass
class TrialRun:
    """What became of one trial: ``state`` is complete, pruned or fail.

    A fresh COMPLETE run has ``outcome`` (and ``keep_oof`` when its OOF predictions are
    worth storing) and still has to be recorded with :func:`record_complete`. A trial found
    already finished has ``candidate`` (COMPLETE) or ``error`` as recorded then.
    """

    state: str
    outcome: TrialOutcome | None = None
    keep_oof: bool = False
    candidate: dict[str, Any] | None = None
    error: str = ""
    already_finished: bool = False


def finished_result(study: optuna.Study, trial_number: int) -> TrialRun | None:
    """The recorded result of a trial that already finished (a redelivery), else None."""
    trial = trial_by_number(study, trial_number)
    if not trial.state.is_finished():
        return None
    if trial.state == TrialState.COMPLETE:
        return TrialRun(
            "complete",
            candidate=dict(trial.user_attrs.get(CANDIDATE_ATTR) or {}),
            already_finished=True,
        )
    state = "pruned" if trial.state == TrialState.PRUNED else "fail"
    return TrialRun(state, error=str(trial.user_attrs.get("error", state)), already_finished=True)


def run_trial(
    study: optuna.Study,
    trial_number: int,
    data: PreparedData,
    family: str,
    params: dict[str, Any],
    *,
    seed: int,
    device: str,
    now: float | None = None,
) -> TrialRun:
    """Cross-validate the trial, reporting every fold to the study's pruner.

    A pruned trial is told PRUNED here. Errors from fitting propagate (the caller decides
    whether to retry or tell FAIL with :func:`record_failure`). A COMPLETE trial keeps its
    OOF predictions when latency is an objective (it may be on the Pareto front) or it
    ranks among the family's :data:`KEEP_PER_FAMILY` best so far.
    """
    now = time.time() if now is None else now
    trial = trial_by_number(study, trial_number)
    deadline = trial.user_attrs.get(DEADLINE_ATTR)
    budget = None if deadline is None else max(MIN_TRIAL_BUDGET_S, float(deadline) - now)
    try:
        outcome = evaluate_trial(
            data,
            family,
            params,
            seed=seed,
            device=device,
            time_budget_s=budget,
            on_fold=fold_reporter(study, trial_number),
        )
    except optuna.TrialPruned as exc:
        message = f"pruned: {exc}"
        tell_trial(study, trial_number, None, "pruned", attrs={"error": message})
        return TrialRun("pruned", error=message)
    multi = len(study.directions) > 1
    done = [
        t.values[0]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.number != trial_number
    ]
    keep = multi or worth_keeping(
        outcome.value, done, maximize=greater_is_better(outcome.metric), keep=KEEP_PER_FAMILY
    )
    return TrialRun("complete", outcome=outcome, keep_oof=keep)


def write_oof(run: TrialRun, folder: Path) -> Path | None:
    """Write the run's out-of-fold predictions as ``oof.parquet`` (runs worth keeping)."""
    if run.outcome is None or not run.keep_oof or run.outcome.cv is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "oof.parquet"
    save_oof(run.outcome.cv, path)
    return path


def candidate_for(
    run: TrialRun, *, oof_ref: dict[str, Any] | None = None, mlflow_run_id: str = ""
) -> dict[str, Any]:
    """The select candidate (dict form) of a fresh COMPLETE run."""
    if run.outcome is None:
        raise ValueError(f"a {run.state} trial has no candidate")
    out = run.outcome
    return {
        **out.to_dict(),
        "source": "tune",
        "mlflow_run_id": mlflow_run_id,
        "greater_is_better": greater_is_better(out.metric),
        "oof_predictions": oof_ref,
    }


def record_complete(
    study: optuna.Study, trial_number: int, candidate: dict[str, Any]
) -> dict[str, Any]:
    """Store the candidate on the trial and tell the study COMPLETE (score, and latency when
    it is an objective). Returns the candidate as recorded (the first one wins if the trial
    was already told)."""
    values: list[float] = [candidate["cv_mean"]]
    if len(study.directions) > 1:
        values.append(candidate["latency_ms"])
    frozen = tell_trial(
        study,
        trial_number,
        values,
        attrs={CANDIDATE_ATTR: candidate, "cv_std": candidate.get("cv_std")},
    )
    if frozen.state != TrialState.COMPLETE:
        return {}
    return dict(frozen.user_attrs.get(CANDIDATE_ATTR) or candidate)


def record_failure(study: optuna.Study, trial_number: int, error: str) -> None:
    """Tell the study the trial FAILED, keeping the error."""
    tell_trial(study, trial_number, None, "fail", attrs={"error": error[:2000]})
