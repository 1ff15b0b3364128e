"""run_job: real cross-validation of one family on a PREPARED folder."""

import json
import shutil

import numpy as np
import pytest

from mlmesh_common.modeling import FAMILIES, default_params, load_oof
from mlmesh_train_gpu import (
    AllFamiliesFailedError,
    JobSpec,
    plan_jobs,
    rank_candidates,
    run_job,
    run_with_fallback,
)
from mlmesh_train_gpu import jobs as jobs_module


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


def test_job_saves_oof_and_measures_cost(penguins_prepared, tmp_path):
    result = run_job(penguins_prepared, _job("linear", {}), seed=0, device="cpu", oof_dir=tmp_path)
    oof, classes = load_oof(result.oof_path)
    assert result.oof_path == str(tmp_path / "oof.parquet")
    assert classes == ["Adelie", "Chinstrap", "Gentoo"] and oof.shape[1] == 3
    assert not np.isnan(oof).any()
    assert result.latency_ms > 0 and result.size_bytes > 1000
    json.dumps(result.to_dict())


def test_failed_family_falls_back_to_a_simpler_one(cancer_prepared, tmp_path):
    bad = _job("svm_rbf", {"C": -1.0})
    result = run_with_fallback(
        cancer_prepared, bad, seed=0, device="cpu", planned=["svm_rbf"], oof_dir=tmp_path
    )
    assert result.family == "svm_linear" and result.fallback_from == "svm_rbf"
    assert result.job_id == "train-svm_rbf"  # still answers the planned job
    assert result.params == default_params("svm_linear", "binary")
    assert len(result.fallback_errors) == 1 and "svm_rbf" in result.fallback_errors[0]
    assert result.cv_mean > 0.95 and load_oof(result.oof_path)[1] == [0, 1]


def test_fallback_skips_families_with_their_own_job(cancer_prepared):
    planned = ["svm_rbf", "svm_linear"]
    result = run_with_fallback(
        cancer_prepared, _job("svm_rbf", {"C": -1.0}), seed=0, device="cpu", planned=planned
    )
    assert result.family == "linear" and result.fallback_from == "svm_rbf"


def test_no_fallback_left_is_a_clear_error(cancer_prepared):
    with pytest.raises(AllFamiliesFailedError, match="linear failed: linear: .*C"):
        run_with_fallback(
            cancer_prepared,
            _job("linear", {"C": -1.0}),
            seed=0,
            device="cpu",
            planned=list(FAMILIES),
        )


def test_success_is_not_a_fallback(diabetes_prepared):
    result = run_with_fallback(
        diabetes_prepared, _job("dummy", {}), seed=0, device="cpu", planned=list(FAMILIES)
    )
    assert result.family == "dummy" and result.fallback_from == "" and not result.fallback_errors


def test_transient_errors_are_not_fallbacks(cancer_prepared, monkeypatch):
    def broker_down(*args, **kwargs):
        raise ConnectionError("artifact store unreachable")

    monkeypatch.setattr(jobs_module, "cross_validate", broker_down)
    with pytest.raises(ConnectionError):
        run_with_fallback(cancer_prepared, _job("mlp", {}), seed=0, device="cpu")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has a GPU")
def test_gpu_job_on_a_cpu_host_runs_on_the_cpu_with_a_reason(cancer_prepared):
    result = run_with_fallback(
        cancer_prepared, _job("catboost", {"iterations": 30}), seed=0, device="cuda"
    )
    assert result.family == "catboost" and result.fallback_from == ""
    assert result.device == "cpu" and "failed on the GPU" in result.device_fallback_reason
    assert result.cv_mean > 0.95
