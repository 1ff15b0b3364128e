"""Running one training job: cross-validation of one family on a PREPARED folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlmesh_common.modeling import (
    cross_validate,
    effective_device,
    greater_is_better,
    load_prepared,
)

from .planning import JobSpec


@dataclass
class JobResult:
    """Outcome of one training job (cross-validation scores of one family)."""

    job_id: str
    family: str
    params: dict[str, Any] = field(repr=False)
    metric: str
    greater_is_better: bool
    cv_mean: float
    cv_std: float
    fold_scores: list[float]
    n_folds: int
    truncated: bool
    fit_seconds: float
    device: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the job-completed event and rank_candidates)."""
        return asdict(self)


def run_job(
    prepared_folder: Path | str, job: JobSpec, *, seed: int, device: str, n_jobs: int = 1
) -> JobResult:
    """Cross-validate ``job.family`` on the PREPARED folder within ``job.time_budget_s``.

    Errors from the family's estimator propagate; the caller decides what a failure means.
    """
    data = load_prepared(Path(prepared_folder))
    cv = cross_validate(
        data,
        job.family,
        job.params,
        device=device,
        seed=seed,
        time_budget_s=job.time_budget_s,
        n_jobs=n_jobs,
    )
    return JobResult(
        job_id=job.job_id,
        family=job.family,
        params=dict(job.params),
        metric=cv.metric,
        greater_is_better=greater_is_better(cv.metric),
        cv_mean=cv.mean,
        cv_std=cv.std,
        fold_scores=list(cv.fold_scores),
        n_folds=cv.n_folds,
        truncated=cv.truncated,
        fit_seconds=cv.fit_seconds,
        device=effective_device(job.family, device),
    )
