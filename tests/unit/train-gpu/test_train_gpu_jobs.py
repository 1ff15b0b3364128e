"""run_job: real cross-validation of one family on a PREPARED folder."""

import json

import pytest

from mlmesh_train_gpu import JobSpec, plan_jobs, rank_candidates, run_job


def _job(family, params, budget=60.0):
    return JobSpec(job_id=f"train-{family}", family=family, params=params, time_budget_s=budget)


def test_runs_lightgbm_on_binary(cancer_prepared):
    result = run_job(cancer_prepared, _job("lightgbm", {"n_estimators": 50}), seed=0, device="cpu")
    assert result.family == "lightgbm" and result.job_id == "train-lightgbm"
    assert result.metric == "roc_auc" and result.greater_is_better is True
    assert result.n_folds == 3 and len(result.fold_scores) == 3 and not result.truncated
    assert result.cv_mean > 0.95 and 0 <= result.cv_std < 0.05
    assert result.fit_seconds > 0 and result.device == "cpu"
    assert result.params == {"n_estimators": 50}
    json.dumps(result.to_dict())  # event-ready


def test_reports_the_device_actually_used(diabetes_prepared):
    # The linear family never trains on the GPU, so asking for cuda reports cpu.
    result = run_job(diabetes_prepared, _job("linear", {}), seed=0, device="cuda")
    assert result.device == "cpu"
    assert result.metric == "rmse" and result.greater_is_better is False


def test_planned_jobs_run_and_rank(penguins_prepared):
    spec = json.loads((penguins_prepared / "prep.json").read_text())
    jobs = plan_jobs(spec, budget_s=60, families=["dummy", "linear"])
    results = [run_job(penguins_prepared, j, seed=0, device="cpu").to_dict() for j in jobs]
    ranked = rank_candidates(results, "accuracy")
    assert [r["family"] for r in ranked] == ["linear", "dummy"]
    assert ranked[0]["cv_mean"] > 0.9 and ranked[1]["cv_mean"] < 0.5


def test_family_errors_propagate(cancer_prepared):
    with pytest.raises(ValueError, match="C"):
        run_job(cancer_prepared, _job("linear", {"C": -1.0}), seed=0, device="cpu")
