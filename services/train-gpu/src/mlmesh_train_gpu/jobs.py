"""Running one training job: cross-validation of one family on a PREPARED folder, with
out-of-fold predictions, serving cost, and a simpler family standing in when it fails."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mlmesh_common.errors import Cancelled, is_transient
from mlmesh_common.modeling import (
    OOF_FILE,
    PreparedData,
    cross_validate,
    default_params,
    greater_is_better,
    load_prepared,
    save_oof,
)

from .planning import JobSpec, fallback_chain

#: A fallback family gets what is left of the job's budget, but at least this share of it.
MIN_FALLBACK_SHARE = 0.25
log = logging.getLogger("mlmesh.train_gpu")


class AllFamiliesFailedError(ValueError):
    """A job's family and every fallback family failed (permanently)."""


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
    device_fallback_reason: str = ""
    latency_ms: float | None = None
    size_bytes: int | None = None
    fallback_from: str = ""
    fallback_errors: list[str] = field(default_factory=list)
    fit_info: dict[str, Any] = field(default_factory=dict)
    oof_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the job-completed event and rank_candidates)."""
        return asdict(self)


def _run(
    data: PreparedData,
    job: JobSpec,
    *,
    seed: int,
    device: str,
    n_jobs: int,
    oof_dir: Path | None,
) -> JobResult:
    cv = cross_validate(
        data,
        job.family,
        job.params,
        device=device,
        seed=seed,
        time_budget_s=job.time_budget_s,
        n_jobs=n_jobs,
        measure=True,
    )
    oof_path = None
    if oof_dir is not None:
        oof_path = str(save_oof(cv, Path(oof_dir) / OOF_FILE))
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
        device=cv.device,
        device_fallback_reason=cv.device_fallback_reason,
        latency_ms=cv.latency_ms,
        size_bytes=cv.size_bytes,
        fit_info=dict(cv.fit_info),
        oof_path=oof_path,
    )


def run_job(
    prepared_folder: Path | str,
    job: JobSpec,
    *,
    seed: int,
    device: str,
    n_jobs: int = 1,
    oof_dir: Path | str | None = None,
) -> JobResult:
    """Cross-validate ``job.family`` on the PREPARED folder within ``job.time_budget_s``.

    A GPU fit that fails falls back to the CPU inside the model (``result.device`` and
    ``result.device_fallback_reason`` say so). With ``oof_dir``, the out-of-fold
    predictions are written there as ``oof.parquet`` (``result.oof_path``). Errors from the
    family's estimator propagate; :func:`run_with_fallback` turns them into fallbacks.
    """
    data = load_prepared(Path(prepared_folder))
    return _run(
        data,
        job,
        seed=seed,
        device=device,
        n_jobs=n_jobs,
        oof_dir=Path(oof_dir) if oof_dir is not None else None,
    )


def run_with_fallback(
    prepared_folder: Path | str,
    job: JobSpec,
    *,
    seed: int,
    device: str,
    planned: Sequence[str] = (),
    n_jobs: int = 1,
    oof_dir: Path | str | None = None,
) -> JobResult:
    """:func:`run_job`, and when the family fails permanently, the next family of its
    :func:`~mlmesh_train_gpu.planning.fallback_chain` (skipping ``planned`` families, which
    have jobs of their own) with default params and what is left of the budget.

    The result of a stand-in keeps the job's ``job_id``, names the stand-in in ``family``
    and the failed family in ``fallback_from``; ``fallback_errors`` lists every failure.
    Transient errors and cancellation propagate (the runtime retries or stops); when every
    family fails, AllFamiliesFailedError says why each one did.
    """
    data = load_prepared(Path(prepared_folder))
    problem_type = data.problem_type
    out = Path(oof_dir) if oof_dir is not None else None
    errors: list[str] = []
    start = time.perf_counter()
    for family in [job.family, *fallback_chain(job.family, planned)]:
        attempt = job
        if family != job.family:
            left = job.time_budget_s - (time.perf_counter() - start)
            attempt = replace(
                job,
                family=family,
                params=default_params(family, problem_type),
                time_budget_s=max(left, MIN_FALLBACK_SHARE * job.time_budget_s),
            )
        try:
            result = _run(data, attempt, seed=seed, device=device, n_jobs=n_jobs, oof_dir=out)
        except Cancelled:
            raise
        except Exception as exc:
            if is_transient(exc):
                raise
            errors.append(f"{family}: {type(exc).__name__}: {exc}")
            log.warning("family %s failed (%s: %s)", family, type(exc).__name__, exc)
            continue
        if family != job.family:
            result.fallback_from = job.family
            log.warning("%s stood in for %s, which failed: %s", family, job.family, errors[0])
        result.fallback_errors = errors
        return result
    also = " and so did its fallbacks" if len(errors) > 1 else ""
    raise AllFamiliesFailedError(f"{job.family} failed{also}: " + "; ".join(errors))
