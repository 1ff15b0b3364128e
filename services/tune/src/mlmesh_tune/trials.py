"""Evaluating one tuning trial: cross-validation of the suggested params."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlmesh_common.modeling import cross_validate, effective_device, load_prepared


@dataclass
class TrialOutcome:
    """CV result of one trial; ``value`` is the mean fold score that Optuna optimises."""

    family: str
    params: dict[str, Any]
    metric: str
    value: float
    cv_std: float
    fold_scores: list[float]
    truncated: bool
    fit_seconds: float
    device: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the trial-completed event)."""
        return asdict(self)


def evaluate_trial(
    prepared_folder: Path | str,
    family: str,
    params: dict[str, Any],
    *,
    seed: int,
    device: str,
    time_budget_s: float | None = None,
    n_jobs: int = 1,
) -> TrialOutcome:
    """Cross-validate ``family`` with ``params`` on the PREPARED folder; errors propagate."""
    data = load_prepared(Path(prepared_folder))
    cv = cross_validate(
        data, family, params, device=device, seed=seed, time_budget_s=time_budget_s, n_jobs=n_jobs
    )
    return TrialOutcome(
        family=family,
        params=dict(params),
        metric=cv.metric,
        value=cv.mean,
        cv_std=cv.std,
        fold_scores=list(cv.fold_scores),
        truncated=cv.truncated,
        fit_seconds=cv.fit_seconds,
        device=effective_device(family, device),
    )
