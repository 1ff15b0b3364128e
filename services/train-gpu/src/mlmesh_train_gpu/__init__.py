"""train-gpu domain logic: plan one CV job per model family, run jobs, rank the results."""

from .fanin import NoCandidatesError, rank_candidates
from .jobs import JobResult, run_job
from .planning import FAMILY_WEIGHTS, BudgetError, JobSpec, SpecError, job_id_for, plan_jobs

__all__ = [
    "FAMILY_WEIGHTS",
    "BudgetError",
    "JobResult",
    "JobSpec",
    "NoCandidatesError",
    "SpecError",
    "job_id_for",
    "plan_jobs",
    "rank_candidates",
    "run_job",
]
