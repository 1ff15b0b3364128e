"""plan_jobs: one deterministic job per family, budget carved by weight."""

import json

import pytest

from mlmesh_common.modeling import FAMILIES, UnknownFamilyError, default_params
from mlmesh_train_gpu import (
    FAMILY_WEIGHTS,
    BudgetError,
    JobSpec,
    SpecError,
    job_id_for,
    plan_jobs,
)

SPEC = {"target": "species", "problem_type": "multiclass", "metric": "accuracy"}


def test_one_job_per_family_with_defaults():
    jobs = plan_jobs(SPEC, budget_s=600)
    assert [j.family for j in jobs] == list(FAMILIES)
    assert len({j.job_id for j in jobs}) == len(FAMILIES)
    for job in jobs:
        assert job.params == default_params(job.family, "multiclass")
    regression = plan_jobs({"problem_type": "regression"}, budget_s=600, families=["linear"])
    assert regression[0].params == {"alpha": 1.0}


def test_job_ids_are_deterministic():
    first = plan_jobs(SPEC, budget_s=600)
    again = plan_jobs(SPEC, budget_s=120, families=["catboost", "dummy"])
    ids = {j.family: j.job_id for j in first}
    assert [j.job_id for j in again] == [ids["catboost"], ids["dummy"]]
    assert job_id_for("xgboost") == ids["xgboost"]


def test_budget_is_carved_by_weight():
    jobs = plan_jobs(SPEC, budget_s=600)
    assert sum(j.time_budget_s for j in jobs) == pytest.approx(600)
    by_family = {j.family: j.time_budget_s for j in jobs}
    assert by_family["catboost"] > by_family["lightgbm"] > by_family["linear"] > by_family["dummy"]
    ratio = by_family["catboost"] / by_family["linear"]
    assert ratio == pytest.approx(FAMILY_WEIGHTS["catboost"] / FAMILY_WEIGHTS["linear"])
    single = plan_jobs(SPEC, budget_s=90, families=["xgboost", "xgboost"])
    assert len(single) == 1 and single[0].time_budget_s == pytest.approx(90)


def test_bad_inputs():
    with pytest.raises(BudgetError, match="positive"):
        plan_jobs(SPEC, budget_s=0)
    with pytest.raises(UnknownFamilyError, match="use one of"):
        plan_jobs(SPEC, budget_s=60, families=["linear", "svm"])
    with pytest.raises(UnknownFamilyError, match="no families"):
        plan_jobs(SPEC, budget_s=60, families=[])
    with pytest.raises(SpecError, match="problem_type"):
        plan_jobs({"target": "y"}, budget_s=60)
    with pytest.raises(ValueError, match="problem type"):
        plan_jobs({"problem_type": "ranking"}, budget_s=60)


def test_jobspec_round_trips_through_json():
    job = plan_jobs(SPEC, budget_s=60, families=["lightgbm"])[0]
    again = JobSpec.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again == job and again.params == job.params
