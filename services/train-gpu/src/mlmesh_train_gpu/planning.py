"""Planning the training fan-out: one cross-validation job per model family."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlmesh_common.modeling import (
    FAMILIES,
    check_family,
    check_problem_type,
    default_params,
)

FAMILY_WEIGHTS: dict[str, float] = {
    "dummy": 0.25,
    "linear": 1.0,
    "svm_linear": 1.0,
    "svm_rbf": 2.0,
    "knn": 0.5,
    "gaussian_process": 5.0,
    "random_forest": 2.0,
    "extra_trees": 2.0,
    "hist_gb": 2.0,
    "xgboost": 3.0,
    "lightgbm": 3.0,
    "catboost": 4.0,
    "mlp": 2.0,
    "autogluon": 8.0,
}
"""Relative share of the training budget each family gets. Boosted trees cost more than
linear models; AutoGluon, a whole AutoML system fitted once per fold, gets about a quarter
of the budget when every family trains (its time_limit comes from this share). The
Gaussian process (small regression problems only) optimises its kernel in every fold: its
share lets five folds finish within a one-minute experiment."""

FALLBACKS: dict[str, str] = {
    "catboost": "lightgbm",
    "xgboost": "lightgbm",
    "lightgbm": "hist_gb",
    "hist_gb": "linear",
    "random_forest": "hist_gb",
    "extra_trees": "random_forest",
    "svm_rbf": "svm_linear",
    "svm_linear": "linear",
    "knn": "linear",
    "gaussian_process": "svm_rbf",
    "mlp": "linear",
    "autogluon": "lightgbm",
    "linear": "dummy",
}
"""The simpler family that stands in when a family fails (followed transitively)."""

GAUSSIAN_PROCESS_MAX_DEFAULT_ROWS = 5000
"""The gaussian_process family trains by default on regression problems with at most this
many training rows: its cost grows with the cube of the rows (it conditions on at most
``max_train_rows`` of them), and on larger data the boosters are better anyway. Asked for
by name it trains on any problem."""


class BudgetError(ValueError):
    """A training budget that is not a positive number of seconds."""


class SpecError(ValueError):
    """A prep.json spec without the fields planning needs."""


@dataclass(frozen=True)
class JobSpec:
    """One training job: cross-validate ``family`` with ``params`` within ``time_budget_s``."""

    job_id: str
    family: str
    params: dict[str, Any] = field(hash=False)
    time_budget_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for an event payload)."""
        return {
            "job_id": self.job_id,
            "family": self.family,
            "params": dict(self.params),
            "time_budget_s": self.time_budget_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            job_id=str(data["job_id"]),
            family=check_family(str(data["family"])),
            params=dict(data["params"]),
            time_budget_s=float(data["time_budget_s"]),
        )


def job_id_for(family: str) -> str:
    """The deterministic job id of ``family``'s training job (same on every redelivery)."""
    return f"train-{check_family(family)}"


def trains_by_default(family: str, problem_type: str | None, n_train: int | None) -> bool:
    """Whether ``family`` is among the families an experiment that names none trains, for
    ``problem_type`` with ``n_train`` training rows (None: not known, no restriction)."""
    check_family(family)
    if family != "gaussian_process" or problem_type is None:
        return True
    small = n_train is None or n_train <= GAUSSIAN_PROCESS_MAX_DEFAULT_ROWS
    return problem_type == "regression" and small


def planned_families(
    families: Sequence[str] | None,
    *,
    problem_type: str | None = None,
    n_train: int | None = None,
) -> list[str]:
    """The families an experiment trains: ``families`` in order without repeats, or when it
    is empty (the spec's ``families`` field) every family that :func:`trains_by_default`
    for ``problem_type`` and ``n_train``. Unknown names raise."""
    chosen = list(dict.fromkeys(families or ()))
    for family in chosen:
        check_family(family)
    return chosen or [f for f in FAMILIES if trains_by_default(f, problem_type, n_train)]


def fallback_chain(family: str, planned: Sequence[str] = ()) -> list[str]:
    """Families to try, in order, when ``family`` fails: FALLBACKS followed transitively,
    skipping families in ``planned`` (they have their own job, and their own fallbacks)."""
    check_family(family)
    chain: list[str] = []
    seen = {family}
    current = FALLBACKS.get(family)
    while current is not None and current not in seen:
        seen.add(current)
        if current not in planned:
            chain.append(current)
        current = FALLBACKS.get(current)
    return chain


def plan_jobs(
    spec: dict[str, Any], *, budget_s: float, families: Sequence[str] | None = None
) -> list[JobSpec]:
    """Plan one job per family for the experiment described by ``spec`` (prep.json).

    ``families`` empty or None means the default families for the spec's problem type and
    training rows (:func:`planned_families`). The budget
    is carved into per-job budgets in proportion to FAMILY_WEIGHTS; params are the family
    defaults for the spec's problem type.
    """
    if not isinstance(budget_s, int | float) or not budget_s > 0:
        raise BudgetError(f"budget_s must be a positive number of seconds; got {budget_s!r}")
    if "problem_type" not in spec:
        raise SpecError("spec (prep.json) lacks problem_type; re-run the prep stage")
    problem_type = check_problem_type(spec["problem_type"])
    n_train = spec.get("split_sizes", {}).get("train")
    chosen = planned_families(
        families, problem_type=problem_type, n_train=None if n_train is None else int(n_train)
    )
    total = sum(FAMILY_WEIGHTS[f] for f in chosen)
    return [
        JobSpec(
            job_id=job_id_for(family),
            family=family,
            params=default_params(family, problem_type),
            time_budget_s=float(budget_s) * FAMILY_WEIGHTS[family] / total,
        )
        for family in chosen
    ]
