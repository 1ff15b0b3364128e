"""cross_validate / fit_and_score on real datasets."""

import numpy as np
import pytest

from mlmesh_common.modeling import (
    PreparedDataError,
    cross_validate,
    fit_and_score,
    load_prepared,
    metrics_for,
    score,
    score_model,
    score_model_many,
)


def test_regression_fold_scores_match_oof(diabetes_prepared):
    data = load_prepared(diabetes_prepared)
    cv = cross_validate(data, "lightgbm", {"n_estimators": 50}, device="cpu", seed=0)
    assert cv.metric == "rmse" and cv.n_folds == 3 and cv.folds_completed == 3
    assert not cv.truncated and cv.fit_seconds > 0
    assert cv.oof.shape == (len(data.X_train),) and not np.isnan(cv.oof).any()
    for fold, fold_score in zip(range(3), cv.fold_scores, strict=True):
        held = data.folds == fold
        assert score("rmse", data.y_train[held], y_pred=cv.oof[held]) == pytest.approx(fold_score)
    assert cv.mean == pytest.approx(np.mean(cv.fold_scores))
    assert cv.std == pytest.approx(np.std(cv.fold_scores))
    dummy = cross_validate(data, "dummy", {}, device="cpu", seed=0)
    assert cv.mean < dummy.mean  # rmse: the model beats predicting the mean


def test_binary_roc_auc(cancer_prepared):
    data = load_prepared(cancer_prepared)
    linear = cross_validate(data, "linear", {}, device="cpu", seed=0)
    dummy = cross_validate(data, "dummy", {}, device="cpu", seed=0)
    assert linear.metric == "roc_auc"
    assert linear.mean > 0.95
    assert dummy.mean == pytest.approx(0.5)
    assert linear.classes == [0, 1] and linear.oof.shape == (len(data.X_train), 2)
    np.testing.assert_allclose(linear.oof.sum(axis=1), 1.0)


def test_multiclass_oof_probabilities(penguins_prepared):
    data = load_prepared(penguins_prepared)
    cv = cross_validate(data, "catboost", {"iterations": 50}, device="cpu", seed=0)
    assert cv.classes == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose(cv.oof.sum(axis=1), 1.0, rtol=1e-6)
    oof_acc = np.mean(np.array(cv.classes)[cv.oof.argmax(axis=1)] == data.y_train.to_numpy())
    assert oof_acc > 0.9 and cv.mean > 0.9
    other = cross_validate(data, "linear", {}, device="cpu", seed=0, metric="log_loss")
    assert other.metric == "log_loss" and other.mean < 0.3


def test_cv_leaves_the_prepared_preprocessor_alone(diabetes_prepared):
    data = load_prepared(diabetes_prepared)
    scaler = data.preprocessor.named_transformers_["num"].named_steps["scale"]
    before = scaler.mean_.copy()
    cross_validate(data, "linear", {}, device="cpu", seed=0)
    np.testing.assert_array_equal(scaler.mean_, before)


def test_time_budget_stops_after_first_fold(penguins_prepared):
    data = load_prepared(penguins_prepared)
    cv = cross_validate(data, "linear", {}, device="cpu", seed=0, time_budget_s=1e-9)
    assert cv.truncated and cv.folds_completed == 1 and cv.n_folds == 3
    scored = data.folds == 0
    assert not np.isnan(cv.oof[scored]).any() and np.isnan(cv.oof[~scored]).all()


def test_fit_and_score(penguins_prepared):
    data = load_prepared(penguins_prepared)
    model, test_score = fit_and_score(data, "lightgbm", {"n_estimators": 50}, device="cpu", seed=0)
    assert test_score == pytest.approx(score_model(model, data.X_test, data.y_test, "accuracy"))
    assert test_score > 0.9
    # fitted on train+valid: the imputer saw every row of both splits
    imputer = model.preprocessor_.named_transformers_["num"].named_steps["impute"]
    X_tv, _ = data.combined(("train", "valid"))
    numeric = data.spec["numeric_columns"]
    np.testing.assert_allclose(imputer.statistics_, X_tv[numeric].median().to_numpy())

    _, valid_score = fit_and_score(
        data, "linear", {}, device="cpu", seed=0, fit_on=("train",), eval_on="valid"
    )
    assert 0.9 < valid_score <= 1.0
    with pytest.raises(PreparedDataError, match="unknown split"):
        fit_and_score(data, "linear", {}, device="cpu", seed=0, eval_on="holdout")


def test_score_model_many(cancer_prepared):
    data = load_prepared(cancer_prepared)
    model, auc = fit_and_score(data, "linear", {}, device="cpu", seed=0)
    scores = score_model_many(model, data.X_test, data.y_test, metrics_for("binary"))
    assert set(scores) == {"roc_auc", "accuracy", "balanced_accuracy", "f1_macro", "log_loss"}
    assert scores["roc_auc"] == pytest.approx(auc)
    assert scores["accuracy"] > 0.9 and scores["log_loss"] < 0.3
