"""Optuna studies shared by the tune coordinator and workers: open, ask, report, tell, read.

One study per tuned family (``<prefix>-<family>``), so each family gets the sampler that
suits its space and pruning compares like with like. The study storage (journal file,
SQLite or PostgreSQL) is the source of truth for trials: the coordinator tags each trial
it asks with the event that asked it, so a redone handler finds its trials instead of
asking new ones, and a worker records the full candidate on the trial before telling it.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from mlmesh_common.modeling import greater_is_better

from .spaces import suggest_params

JOURNAL_SCHEME = "journal://"
_RDB_PREFIXES = ("sqlite:", "postgresql", "mysql")
DIRECTIONS = ("maximize", "minimize")
#: User attribute naming the ``<event id>:<index>`` that asked a trial (idempotent asks).
ASK_TAG = "mlmesh.ask"
#: User attribute holding the candidate dict a worker recorded for a COMPLETE trial.
CANDIDATE_ATTR = "candidate"
_STATES = {
    "complete": TrialState.COMPLETE,
    "fail": TrialState.FAIL,
    "pruned": TrialState.PRUNED,
}
_storages: dict[str, BaseStorage] = {}
_storages_lock = threading.Lock()


class StorageUrlError(ValueError):
    """A study storage URL that is neither ``journal:///abs/path`` nor an RDB URL."""


class StudyConflictError(ValueError):
    """An existing study whose optimisation directions differ from the ones asked for."""


class TrialResultError(ValueError):
    """A trial result that cannot be recorded (unknown trial, state or missing value)."""


def direction_for(metric: str) -> str:
    """``"maximize"`` or ``"minimize"``, following the metric's direction."""
    return "maximize" if greater_is_better(metric) else "minimize"


def rdb_url(storage_url: str) -> str:
    """A SQLAlchemy URL for an RDB storage: plain ``postgresql://`` uses psycopg 3 when
    psycopg2 (SQLAlchemy's default driver) is not installed."""
    if storage_url.startswith(("postgresql://", "postgres://")) and (
        importlib.util.find_spec("psycopg2") is None
    ):
        return "postgresql+psycopg://" + storage_url.split("://", 1)[1]
    return storage_url


def _new_storage(storage_url: str) -> BaseStorage:
    if storage_url.startswith(JOURNAL_SCHEME):
        path = Path(storage_url[len(JOURNAL_SCHEME) :])
        if not path.is_absolute() or not path.name:
            raise StorageUrlError(
                f"journal storage needs an absolute file path (journal:///abs/path.log); "
                f"got {storage_url!r}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if storage_url.startswith(_RDB_PREFIXES) or storage_url.startswith("postgres://"):
        if storage_url.startswith("sqlite:///"):
            db = storage_url[len("sqlite:///") :]
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            return RDBStorage(storage_url, engine_kwargs={"connect_args": {"timeout": 30}})
        return RDBStorage(rdb_url(storage_url), engine_kwargs={"pool_pre_ping": True})
    raise StorageUrlError(
        f"unsupported study storage {storage_url!r}; use journal:///abs/path.log, "
        "sqlite:///path.db or postgresql://user@host/db"
    )


def make_storage(storage_url: str) -> BaseStorage:
    """The Optuna storage for ``journal:///abs/file.log`` or an RDB URL (one per process)."""
    with _storages_lock:
        storage = _storages.get(storage_url)
        if storage is None:
            storage = _storages[storage_url] = _new_storage(storage_url)
        return storage


def _existing_trial_count(storage: BaseStorage, study_name: str) -> int:
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    return len(storage.get_all_trials(study_id, deepcopy=False))


def _directions(direction: str | None, directions: Sequence[str] | None) -> list[str]:
    wanted = list(directions) if directions else [direction or ""]
    bad = [d for d in wanted if d not in DIRECTIONS]
    if bad:
        raise StudyConflictError(f"direction must be one of {DIRECTIONS}; got {bad[0]!r}")
    return wanted


def open_study(
    study_name: str,
    storage_url: str,
    *,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    seed: int = 0,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    user_attrs: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create or load the study ``study_name`` in ``storage_url``.

    Give ``direction`` (one objective) or ``directions``. Without ``sampler`` a seeded TPE
    sampler is used whose seed is offset by the number of trials already stored, so a
    restarted coordinator does not replay the same suggestions. ``user_attrs`` are set on
    the study (e.g. the parent tracking run id the workers nest their runs under).
    """
    wanted = _directions(direction, directions)
    storage = make_storage(storage_url)
    if sampler is None:
        offset = _existing_trial_count(storage, study_name)
        sampler = optuna.samplers.TPESampler(seed=seed + offset)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=wanted,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    have = [d.name.lower() for d in study.directions]
    if have != wanted:
        raise StudyConflictError(
            f"study {study_name!r} already exists with directions {have}, not {wanted}; "
            "use a new study name"
        )
    for key, value in (user_attrs or {}).items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
    return study


def load_study(
    study_name: str, storage_url: str, *, pruner: optuna.pruners.BasePruner | None = None
) -> optuna.Study:
    """Load an existing study (a worker's view: it tells and prunes, it never asks)."""
    try:
        return optuna.load_study(
            study_name=study_name,
            storage=make_storage(storage_url),
            sampler=optuna.samplers.RandomSampler(),
            pruner=pruner,
        )
    except KeyError:
        raise TrialResultError(
            f"no study {study_name!r} in {storage_url!r}; the coordinator creates it first"
        ) from None


def trial_by_number(study: optuna.Study, trial_number: int) -> FrozenTrial:
    """The stored trial ``trial_number`` of ``study``."""
    # Optuna has no public lookup of a trial by number, hence the private attributes.
    storage = study._storage
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
    except KeyError:
        raise TrialResultError(f"study {study.study_name!r} has no trial {trial_number}") from None
    return storage.get_trial(trial_id)


def tagged_trials(study: optuna.Study, tag_prefix: str) -> dict[str, FrozenTrial]:
    """Trials whose ask tag starts with ``tag_prefix``, by tag."""
    return {
        t.user_attrs[ASK_TAG]: t
        for t in study.get_trials(deepcopy=False)
        if str(t.user_attrs.get(ASK_TAG, "")).startswith(tag_prefix)
    }


def ask_trial(
    study: optuna.Study,
    family: str,
    problem_type: str,
    *,
    tag: str | None = None,
    grid: bool = False,
    max_trees: int = 1000,
    attrs: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Start a trial for ``family`` and return ``(trial_number, estimator params)``.

    With ``tag`` the ask is idempotent: a trial already carrying that tag is returned
    instead of starting another. The family, problem type, params and ``attrs`` are kept as
    trial user attributes.
    """
    if tag is not None:
        found = tagged_trials(study, tag).get(tag)
        if found is not None and "params" in found.user_attrs:
            return found.number, dict(found.user_attrs["params"])
    trial = study.ask()
    try:
        if tag is not None:
            trial.set_user_attr(ASK_TAG, tag)
        params = suggest_params(trial, family, problem_type, grid=grid, max_trees=max_trees)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    for key, value in {**(attrs or {}), "family": family, "problem_type": problem_type}.items():
        trial.set_user_attr(key, value)
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
    value: float | Sequence[float] | None,
    state: TrialState | str = TrialState.COMPLETE,
    *,
    attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    """Record the result of trial ``trial_number``; a repeat for a finished trial is a no-op.

    A COMPLETE result needs a value (one per objective); a non-finite value is recorded as
    FAIL. ``attrs`` (e.g. cv_std, the candidate) are stored as user attributes first, so a
    finished trial always carries them.
    """
    final = _state(state)
    storage = study._storage
    current = trial_by_number(study, trial_number)
    if current.state.is_finished():
        return current
    values: list[float] | None = None
    if final == TrialState.COMPLETE:
        if value is None:
            raise TrialResultError(
                f"trial {trial_number} is COMPLETE but has no value; send the score or FAIL"
            )
        values = [float(v) for v in (value if isinstance(value, Sequence) else [value])]
        if len(values) != len(study.directions):
            raise TrialResultError(
                f"trial {trial_number} needs {len(study.directions)} values (one per "
                f"objective); got {len(values)}"
            )
        if not all(math.isfinite(v) for v in values):
            final, values = TrialState.FAIL, None
    for key, attr in (attrs or {}).items():
        storage.set_trial_user_attr(current._trial_id, key, attr)
    return study.tell(trial_number, values, state=final, skip_if_finished=True)


def fold_reporter(study: optuna.Study, trial_number: int) -> Callable[[int, float], None]:
    """An ``on_fold`` callback for cross_validate that reports the running mean of the fold
    scores as the trial's intermediate value and raises optuna.TrialPruned when the study's
    pruner says so. Multi-objective studies cannot prune: the callback then does nothing."""
    if len(study.directions) > 1:
        return lambda fold, score: None
    trial = optuna.trial.Trial(study, trial_by_number(study, trial_number)._trial_id)
    scores: list[float] = []

    def on_fold(fold: int, score: float) -> None:
        scores.append(float(score))
        step = len(scores)
        trial.report(sum(scores) / step, step)
        if trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned after {step} fold(s): running mean {sum(scores) / step:.5g}"
            )

    return on_fold


def completed_candidates(study: optuna.Study) -> list[dict[str, Any]]:
    """The candidate dicts workers recorded on COMPLETE trials, in trial order."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        candidate = t.user_attrs.get(CANDIDATE_ATTR)
        if candidate:
            out.append({**candidate, "trial_number": t.number})
    return out
