"""build_leaderboard, refit_winner, save_model / load_model on real datasets."""

import json

import joblib
import numpy as np
import pytest

from mlmesh_common.modeling import load_prepared, metrics_for
from mlmesh_select import (
    CandidateError,
    NoCandidatesError,
    build_leaderboard,
    load_model,
    refit_winner,
    save_model,
)


def _c(family, mean, std=0.01, source="train", metric="roc_auc", params=None):
    return {
        "family": family,
        "params": params if params is not None else {},
        "source": source,
        "cv_mean": mean,
        "cv_std": std,
        "metric": metric,
    }


def test_leaderboard_orders_by_metric_direction():
    board = build_leaderboard(
        [_c("dummy", 0.5), _c("lightgbm", 0.97, source="tune"), _c("linear", 0.95)]
    )
    assert [(c["rank"], c["family"]) for c in board] == [
        (1, "lightgbm"),
        (2, "linear"),
        (3, "dummy"),
    ]
    rmse = build_leaderboard([_c("dummy", 80, metric="rmse"), _c("linear", 54, metric="rmse")])
    assert [c["family"] for c in rmse] == ["linear", "dummy"]


def test_leaderboard_ties_dedupe_and_failures():
    same = {"n_estimators": 50}
    board = build_leaderboard(
        [
            _c("xgboost", 0.9, 0.02, "train", params=same),
            _c("xgboost", 0.9, 0.02, "tune", params={"n_estimators": 80}),
            _c("catboost", 0.9, 0.01, "train"),
            _c("xgboost", 0.8, 0.01, "tune", params=same),  # duplicate, worse: dropped
            _c("linear", float("nan")),  # failed: left out
        ]
    )
    assert [(c["family"], c["source"]) for c in board] == [
        ("catboost", "train"),
        ("xgboost", "tune"),
        ("xgboost", "train"),
    ]
    assert [c["rank"] for c in board] == [1, 2, 3]


def test_leaderboard_rejects_bad_candidates():
    with pytest.raises(NoCandidatesError):
        build_leaderboard([])
    with pytest.raises(NoCandidatesError, match="finite"):
        build_leaderboard([_c("linear", None)])
    with pytest.raises(CandidateError, match="lacks cv_mean"):
        build_leaderboard([{"family": "linear", "params": {}, "source": "train", "metric": "r2"}])
    with pytest.raises(CandidateError, match="mix metrics"):
        build_leaderboard([_c("linear", 0.9), _c("dummy", 0.5, metric="accuracy")])
    with pytest.raises(CandidateError, match="source"):
        build_leaderboard([_c("linear", 0.9, source="manual")])
    with pytest.raises(CandidateError, match="unknown model family"):
        build_leaderboard([_c("svm", 0.9)])


def test_refit_multiclass_winner(penguins_prepared, tmp_path):
    winner = build_leaderboard(
        [
            _c("lightgbm", 0.97, metric="accuracy", params={"n_estimators": 50}),
            _c("dummy", 0.44, metric="accuracy"),
        ]
    )[0]
    result = refit_winner(penguins_prepared, winner, seed=0, device="cpu")
    data = load_prepared(penguins_prepared)
    assert result.family == "lightgbm" and result.metric == "accuracy"
    assert result.n_test == len(data.X_test)
    assert result.test_score > 0.9 and result.baseline_test_score < 0.5
    assert result.beats_baseline
    assert set(result.test_metrics) == set(metrics_for("multiclass"))
    assert result.test_metrics["accuracy"] == pytest.approx(result.test_score)
    assert result.baseline_test_metrics["accuracy"] == pytest.approx(result.baseline_test_score)
    assert set(result.model.predict(data.X_test)) <= {"Adelie", "Chinstrap", "Gentoo"}
    json.dumps(result.summary())

    path = save_model(result.model, tmp_path / "model" / "model.joblib")
    restored = load_model(path)
    np.testing.assert_array_equal(restored.predict(data.X_test), result.model.predict(data.X_test))
    np.testing.assert_allclose(
        restored.predict_proba(data.X_test), result.model.predict_proba(data.X_test)
    )


def test_refit_binary_and_regression(cancer_prepared, diabetes_prepared):
    binary = refit_winner(
        cancer_prepared,
        _c("xgboost", 0.99, params={"n_estimators": 50}),
        seed=0,
        device="cpu",
    )
    assert binary.test_score > 0.95 and binary.baseline_test_score == pytest.approx(0.5)
    assert set(binary.test_metrics) == set(metrics_for("binary"))

    regression = refit_winner(
        diabetes_prepared, _c("linear", 54.0, metric="rmse"), seed=0, device="cpu"
    )
    assert regression.greater_is_better is False
    assert regression.test_score < regression.baseline_test_score
    assert regression.beats_baseline
    assert set(regression.test_metrics) == {"rmse", "mae", "r2"}
    assert regression.test_metrics["r2"] > 0.3


def test_refit_rejects_a_winner_of_another_metric(cancer_prepared):
    with pytest.raises(CandidateError, match="experiment metric is 'roc_auc'"):
        refit_winner(cancer_prepared, _c("linear", 0.9, metric="accuracy"), seed=0, device="cpu")


def test_load_model_rejects_other_objects(tmp_path):
    joblib.dump({"not": "a model"}, tmp_path / "x.joblib")
    with pytest.raises(TypeError, match="not a MeshModel"):
        load_model(tmp_path / "x.joblib")


def test_a_candidate_with_truncated_cv_ranks_after_complete_ones():
    """One lucky fold (the budget stopped the rest) must not beat a full 5-fold CV."""
    full = {"family": "linear", "params": {}, "source": "train", "metric": "accuracy",
            "cv_mean": 0.98, "cv_std": 0.01, "fold_scores": [0.97, 0.98, 0.99, 0.98, 0.98]}
    lucky = {"family": "autogluon", "params": {}, "source": "train", "metric": "accuracy",
             "cv_mean": 1.0, "cv_std": 0.0, "fold_scores": [1.0]}
    board = build_leaderboard([lucky, full])
    assert [c["family"] for c in board] == ["linear", "autogluon"]


def test_a_truncated_cv_that_wins_every_fold_it_scored_ranks_ahead():
    """Folds are shared and scored in order: beating a full CV on each of the first folds
    (at least two) is evidence, unlike a mean over fewer folds."""
    def cand(family, scores):
        return {"family": family, "params": {}, "source": "train", "metric": "rmse",
                "cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores)),
                "fold_scores": scores}

    full = cand("lightgbm", [1.20, 1.25, 1.18, 1.22, 1.21])
    other = cand("linear", [2.5, 2.6, 2.4, 2.5, 2.6])
    strong = cand("gaussian_process", [0.98, 0.97])  # beats lightgbm on folds 0 and 1
    mixed = cand("catboost", [1.10, 1.30, 1.15])  # worse than lightgbm on fold 1
    lucky = cand("autogluon", [0.5])  # one fold proves nothing
    board = build_leaderboard([other, lucky, mixed, full, strong])
    assert [c["family"] for c in board] == [
        "gaussian_process", "lightgbm", "catboost", "linear", "autogluon"]
    assert [c["rank"] for c in board] == [1, 2, 3, 4, 5]
