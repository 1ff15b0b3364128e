"""train-gpu domain logic: plan one CV job per model family, run jobs, rank the results."""

from .fanin import NoCandidatesError, rank_candidates
from .jobs import AllFamiliesFailedError, JobResult, run_job, run_with_fallback
from .planning import (
    FALLBACKS,
    FAMILY_WEIGHTS,
    GAUSSIAN_PROCESS_MAX_DEFAULT_ROWS,
    BudgetError,
    JobSpec,
    SpecError,
    fallback_chain,
    job_id_for,
    plan_jobs,
    planned_families,
    trains_by_default,
)

__all__ = [
    "FALLBACKS",
    "FAMILY_WEIGHTS",
    "GAUSSIAN_PROCESS_MAX_DEFAULT_ROWS",
    "AllFamiliesFailedError",
    "BudgetError",
    "JobResult",
    "JobSpec",
    "NoCandidatesError",
    "SpecError",
    "fallback_chain",
    "job_id_for",
    "plan_jobs",
    "planned_families",
    "rank_candidates",
    "run_job",
    "run_with_fallback",
    "trains_by_default",
]
