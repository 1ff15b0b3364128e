"""Optuna studies shared by the tune coordinator's replicas: open, ask, tell, read back."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mlmesh_common.modeling import greater_is_better

from .spaces import suggest_params

JOURNAL_SCHEME = "journal://"
_RDB_PREFIXES = ("sqlite:", "postgresql", "mysql")
DIRECTIONS = ("maximize", "minimize")
_STATES = {
    "complete": TrialState.COMPLETE,
    "fail": TrialState.FAIL,
    "pruned": TrialState.PRUNED,
}


class StorageUrlError(ValueError):
    """A study storage URL that is neither ``journal:///abs/path`` nor an RDB URL."""


class StudyConflictError(ValueError):
    """An existing study whose optimisation direction differs from the one asked for."""


class TrialResultError(ValueError):
    """A trial result that cannot be recorded (unknown trial, state or missing value)."""


def direction_for(metric: str) -> str:
    """``"maximize"`` or ``"minimize"``, following the metric's direction."""
    return "maximize" if greater_is_better(metric) else "minimize"


def make_storage(storage_url: str) -> BaseStorage:
    """Build the Optuna storage for ``journal:///abs/file.log`` or an RDB URL."""
    if storage_url.startswith(JOURNAL_SCHEME):
        path = Path(storage_url[len(JOURNAL_SCHEME) :])
        if not path.is_absolute() or not path.name:
            raise StorageUrlError(
                f"journal storage needs an absolute file path (journal:///abs/path.log); "
                f"got {storage_url!r}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if storage_url.startswith(_RDB_PREFIXES):
        if storage_url.startswith("sqlite:///"):
            db = storage_url[len("sqlite:///") :]
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
        return RDBStorage(storage_url)
    raise StorageUrlError(
        f"unsupported study storage {storage_url!r}; use journal:///abs/path.log, "
        "sqlite:///path.db or postgresql+psycopg://..."
    )


def _existing_trial_count(storage: BaseStorage, study_name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def open_study(study_name: str, storage_url: str, *, direction: str, seed: int) -> optuna.Study:
    """Create or load the study ``study_name`` in ``storage_url`` with a seeded TPE sampler.

    Several processes may open the same study. The sampler seed is offset by the number of
    trials already stored, so a restarted coordinator does not replay the same suggestions.
    """
    if direction not in DIRECTIONS:
        raise StudyConflictError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    storage = make_storage(storage_url)
    offset = _existing_trial_count(storage, study_name)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed + offset),
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise StudyConflictError(
            f"study {study_name!r} already exists with direction "
            f"{study.direction.name.lower()}, not {direction}; use a new study name"
        )
    return study


def ask_trial(study: optuna.Study, family: str, problem_type: str) -> tuple[int, dict[str, Any]]:
    """Start a trial for ``family`` and return ``(trial_number, estimator params)``.

    The family, problem type and full params are kept as trial user attributes.
    """
    trial = study.ask()
    try:
        params = suggest_params(trial, family, problem_type)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    trial.set_user_attr("family", family)
    trial.set_user_attr("problem_type", problem_type)
    trial.set_user_attr("params", params)
    return trial.number, params


def _state(state: TrialState | str) -> TrialState:
    if isinstance(state, TrialState):
        if state not in _STATES.values():
            raise TrialResultError(f"cannot tell a trial {state.name}; use complete/fail/pruned")
        return state
    try:
        return _STATES[state.lower()]
    except (KeyError, AttributeError):
        raise TrialResultError(
            f"unknown trial state {state!r}; use one of {', '.join(_STATES)}"
        ) from None


def tell_trial(
    study: optuna.Study,
    trial_number: int,
    value: float | None,
    state: TrialState | str = TrialState.COMPLETE,
    *,
    attrs: dict[str, Any] | None = None,
) -> optuna.trial.FrozenTrial:
    """Record the result of trial ``trial_number``; a repeat for a finished trial is a no-op.

    A COMPLETE result needs a value; a non-finite value is recorded as FAIL. ``attrs`` (e.g.
    cv_std, fit_seconds) are stored as user attributes of the trial.
    """
    final = _state(state)
    # Optuna has no public lookup of a trial by number, hence the private attributes.
    storage = study._storage
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
    except KeyError:
        raise TrialResultError(f"study {study.study_name!r} has no trial {trial_number}") from None
    current = storage.get_trial(trial_id)
    if current.state.is_finished():
        return current
    if final == TrialState.COMPLETE:
        if value is None:
            raise TrialResultError(
                f"trial {trial_number} is COMPLETE but has no value; send the score or FAIL"
            )
        if not math.isfinite(value):
            final, value = TrialState.FAIL, None
    else:
        value = None
    for key, attr in (attrs or {}).items():
        storage.set_trial_user_attr(trial_id, key, attr)
    return study.tell(trial_number, value, state=final, skip_if_finished=True)


def completed_candidates(study: optuna.Study, metric: str) -> list[dict[str, Any]]:
    """COMPLETE trials as select candidates (source ``"tune"``), in trial order."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        out.append(
            {
                "family": t.user_attrs.get("family"),
                "params": dict(t.user_attrs.get("params", {})),
                "source": "tune",
                "cv_mean": float(t.value),
                "cv_std": t.user_attrs.get("cv_std"),
                "metric": metric,
                "trial_number": t.number,
            }
        )
    return out
