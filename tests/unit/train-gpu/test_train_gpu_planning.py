"""plan_jobs: one deterministic job per family, budget carved by weight."""

import json

import pytest

from mlmesh_common.modeling import FAMILIES, UnknownFamilyError, default_params
from mlmesh_train_gpu import (
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

SPEC = {"target": "species", "problem_type": "multiclass", "metric": "accuracy"}
CLASSIFICATION_DEFAULTS = [f for f in FAMILIES if f != "gaussian_process"]


def test_one_job_per_family_with_defaults():
    jobs = plan_jobs(SPEC, budget_s=600)
    assert [j.family for j in jobs] == CLASSIFICATION_DEFAULTS
    assert len({j.job_id for j in jobs}) == len(CLASSIFICATION_DEFAULTS)
    for job in jobs:
        assert job.params == default_params(job.family, "multiclass")
    regression = plan_jobs({"problem_type": "regression"}, budget_s=600, families=["linear"])
    assert regression[0].params == {"penalty": "l2", "alpha": 1.0}
    # an empty family list (the spec's default) means every default family
    assert [j.family for j in plan_jobs(SPEC, budget_s=600, families=[])] == (
        CLASSIFICATION_DEFAULTS
    )


def test_gaussian_process_trains_by_default_on_small_regression_only():
    small = {"problem_type": "regression", "split_sizes": {"train": 1600}}
    large = {"problem_type": "regression", "split_sizes": {"train": 50_000}}
    assert "gaussian_process" in [j.family for j in plan_jobs(small, budget_s=60)]
    assert "gaussian_process" not in [j.family for j in plan_jobs(large, budget_s=60)]
    assert "gaussian_process" not in [j.family for j in plan_jobs(SPEC, budget_s=60)]
    # named, it trains on any problem
    named = plan_jobs(large, budget_s=60, families=["gaussian_process"])
    assert [j.family for j in named] == ["gaussian_process"]
    assert trains_by_default("gaussian_process", "regression", GAUSSIAN_PROCESS_MAX_DEFAULT_ROWS)
    assert not trains_by_default(
        "gaussian_process", "regression", GAUSSIAN_PROCESS_MAX_DEFAULT_ROWS + 1
    )
    assert trains_by_default("gaussian_process", "regression", None)
    assert all(trains_by_default(f, "binary", 10**6) for f in CLASSIFICATION_DEFAULTS)


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
    with pytest.raises(SpecError, match="problem_type"):
        plan_jobs({"target": "y"}, budget_s=60)
    with pytest.raises(ValueError, match="problem type"):
        plan_jobs({"problem_type": "ranking"}, budget_s=60)


def test_jobspec_round_trips_through_json():
    job = plan_jobs(SPEC, budget_s=60, families=["lightgbm"])[0]
    again = JobSpec.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again == job and again.params == job.params


def test_every_family_has_a_weight_and_autogluon_a_large_share():
    assert set(FAMILY_WEIGHTS) == set(FAMILIES)
    jobs = {j.family: j.time_budget_s for j in plan_jobs(SPEC, budget_s=1000)}
    assert 0.2 < jobs["autogluon"] / 1000 < 0.35
    assert jobs["autogluon"] > jobs["catboost"] > jobs["hist_gb"] > jobs["knn"] > jobs["dummy"]
    regression = {"problem_type": "regression", "split_sizes": {"train": 500}}
    jobs = {j.family: j.time_budget_s for j in plan_jobs(regression, budget_s=1000)}
    assert jobs["autogluon"] > jobs["gaussian_process"] > jobs["catboost"]


def test_planned_families():
    assert planned_families([]) == list(FAMILIES) and planned_families(None) == list(FAMILIES)
    assert planned_families(["mlp", "linear", "mlp"]) == ["mlp", "linear"]
    with pytest.raises(UnknownFamilyError, match="use one of"):
        planned_families(["gbm"])


def test_fallback_chains_end_in_simpler_families():
    assert fallback_chain("catboost") == ["lightgbm", "hist_gb", "linear", "dummy"]
    assert fallback_chain("svm_rbf") == ["svm_linear", "linear", "dummy"]
    assert fallback_chain("mlp") == ["linear", "dummy"]
    assert fallback_chain("gaussian_process") == ["svm_rbf", "svm_linear", "linear", "dummy"]
    assert fallback_chain("autogluon") == ["lightgbm", "hist_gb", "linear", "dummy"]
    assert fallback_chain("dummy") == []
    # planned families have their own job: they are skipped, the chain goes on past them
    assert fallback_chain("catboost", ["catboost", "lightgbm", "linear"]) == ["hist_gb", "dummy"]
    assert fallback_chain("catboost", list(FAMILIES)) == []
    for family in FAMILIES:  # every chain ends at the baseline
        assert family == "dummy" or fallback_chain(family)[-1] == "dummy"
    assert set(FALLBACKS) == set(FAMILIES) - {"dummy"}
