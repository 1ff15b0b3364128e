"""Planning the training fan-out: one cross-validation job per model family."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlmesh_common.modeling import (
    FAMILIES,
    UnknownFamilyError,
    check_family,
    check_problem_type,
    default_params,
)

FAMILY_WEIGHTS: dict[str, float] = {
    "dummy": 0.5,
    "linear": 1.0,
    "lightgbm": 3.0,
    "xgboost": 3.0,
    "catboost": 4.0,
}
"""Relative share of the training budget each family gets (boosted trees cost more)."""


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


def plan_jobs(
    spec: dict[str, Any], *, budget_s: float, families: Sequence[str] = FAMILIES
) -> list[JobSpec]:
    """Plan one job per family for the experiment described by ``spec`` (prep.json).

    The budget is carved into per-job budgets in proportion to FAMILY_WEIGHTS; params are
    the family defaults for the spec's problem type.
    """
    if not isinstance(budget_s, int | float) or not budget_s > 0:
        raise BudgetError(f"budget_s must be a positive number of seconds; got {budget_s!r}")
    if "problem_type" not in spec:
        raise SpecError("spec (prep.json) lacks problem_type; re-run the prep stage")
    problem_type = check_problem_type(spec["problem_type"])
    chosen = list(dict.fromkeys(families))
    if not chosen:
        raise UnknownFamilyError(f"no families to train; choose from {', '.join(FAMILIES)}")
    for family in chosen:
        check_family(family)
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
