"""train-gpu domain logic: plan one CV job per model family, run jobs, rank the results."""

from .fanin import NoCandidatesError, rank_candidates
from .jobs import AllFamiliesFailedError, JobResult, run_job, run_with_fallback
from .planning import (
    FALLBACKS,
    FAMILY_WEIGHTS,
    BudgetError,
    JobSpec,
    SpecError,
    fallback_chain,
    job_id_for,
    plan_jobs,
    planned_families,
)

__all__ = [
    "FALLBACKS",
    "FAMILY_WEIGHTS",
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
]
