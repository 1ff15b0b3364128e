"""rank_candidates: direction per metric, tie-breaks, failed jobs."""

import math

import pytest

from mlmesh_train_gpu import NoCandidatesError, rank_candidates


def _r(family, mean, std=0.01, metric="roc_auc"):
    return {"family": family, "cv_mean": mean, "cv_std": std, "metric": metric}


def test_greater_is_better_metric():
    ranked = rank_candidates([_r("dummy", 0.5), _r("xgboost", 0.97), _r("linear", 0.95)], "roc_auc")
    assert [r["family"] for r in ranked] == ["xgboost", "linear", "dummy"]
    assert [r["rank"] for r in ranked] == [1, 2, 3]


def test_lower_is_better_metric():
    results = [_r("dummy", 80.0, metric="rmse"), _r("linear", 53.5, metric="rmse")]
    assert [r["family"] for r in rank_candidates(results, "rmse")] == ["linear", "dummy"]


def test_ties_go_to_lower_std_then_name():
    results = [_r("xgboost", 0.9, 0.05), _r("lightgbm", 0.9, 0.01), _r("catboost", 0.9, 0.05)]
    assert [r["family"] for r in rank_candidates(results, "roc_auc")] == [
        "lightgbm",
        "catboost",
        "xgboost",
    ]


def test_failed_results_are_left_out_and_inputs_untouched():
    results = [_r("linear", 0.9), _r("xgboost", math.nan), {"family": "catboost", "error": "OOM"}]
    ranked = rank_candidates(results, "roc_auc")
    assert [r["family"] for r in ranked] == ["linear"]
    assert "rank" not in results[0]
    with pytest.raises(NoCandidatesError, match="failed jobs"):
        rank_candidates(results[1:], "roc_auc")


def test_mixed_metrics_rejected():
    with pytest.raises(ValueError, match="one metric"):
        rank_candidates([_r("linear", 0.9), _r("dummy", 0.5, metric="accuracy")], "roc_auc")
