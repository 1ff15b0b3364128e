"""Every family (AutoGluon apart: see test_modeling_autogluon.py) fits, predicts, gives
probabilities and round-trips through joblib on tiny binary, multiclass and regression data."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.preprocessing import StandardScaler

from mlmesh_common.modeling import FAMILIES, MeshModel, score

# Light settings so that the 36 fits stay well under a second each.
LIGHT = {
    "random_forest": {"n_estimators": 20},
    "extra_trees": {"n_estimators": 20},
    "hist_gb": {"max_iter": 30},
    "xgboost": {"n_estimators": 30},
    "lightgbm": {"n_estimators": 30, "min_child_samples": 5},
    "catboost": {"iterations": 30},
    "mlp": {"hidden_layer_sizes": [16], "max_iter": 200},
    "gaussian_process": {"optimize_rows": 60},
}
SKLEARN_FAMILIES = [f for f in FAMILIES if f != "autogluon"]
COLUMNS = [f"x{i}" for i in range(6)]


def _frame(problem_type):
    if problem_type == "regression":
        X, y = make_regression(
            n_samples=150, n_features=6, n_informative=4, noise=5.0, random_state=0
        )
        y = y * 10 + 500  # far from unit scale: the SVM/MLP target scaling must cope
    else:
        X, y = make_classification(
            n_samples=150,
            n_features=6,
            n_informative=4,
            n_redundant=0,
            n_classes=2 if problem_type == "binary" else 3,
            n_clusters_per_class=1,
            class_sep=1.5,
            random_state=0,
        )
        y = np.array(["no", "yes", "maybe"])[y]
    return pd.DataFrame(X, columns=COLUMNS), pd.Series(y)


def _preprocessor():
    return ColumnTransformer([("num", StandardScaler(), COLUMNS)])


@pytest.mark.parametrize("family", SKLEARN_FAMILIES)
@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_family_fits_predicts_and_pickles(family, problem_type):
    X, y = _frame(problem_type)
    train, test = slice(0, 110), slice(110, None)
    model = MeshModel(
        _preprocessor(), family, problem_type, COLUMNS, LIGHT.get(family, {}), seed=0
    ).fit(X[train], y[train])
    pred = model.predict(X[test])
    assert pred.shape == (40,)
    restored = joblib.load(_dumped(model))
    np.testing.assert_array_equal(restored.predict(X[test]), pred)
    if problem_type == "regression":
        assert pred.dtype == float and not hasattr(model, "predict_proba")
        if family != "dummy":
            r2 = score("r2", y[test], y_pred=pred)
            assert r2 > 0.3, f"{family} r2 {r2:.3f}"
        return
    proba = model.predict_proba(X[test])
    n_classes = 2 if problem_type == "binary" else 3
    assert proba.shape == (40, n_classes) and set(pred) <= set(model.classes_)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(restored.predict_proba(X[test]), proba)
    if family != "dummy":
        accuracy = score("accuracy", y[test], y_pred=pred)
        assert accuracy > 0.7, f"{family} accuracy {accuracy:.3f}"
    assert model.device_ == "cpu" and model.device_fallback_reason_ == ""


def _dumped(model):
    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    return buf


def test_svm_rbf_subsamples_above_its_row_cap():
    X, y = _frame("binary")
    model = MeshModel(
        _preprocessor(), "svm_rbf", "binary", COLUMNS, {"max_train_rows": 60}, seed=0
    ).fit(X, y)
    assert model.fit_info_["train_rows"] == 60 and model.fit_info_["subsampled_from"] == 150
    # stratified: both classes kept in their proportions
    assert model.estimator_.calibrated_classifiers_[0].estimator.support_vectors_.shape[0] <= 60
    full = MeshModel(_preprocessor(), "svm_rbf", "binary", COLUMNS, {}, seed=0).fit(X, y)
    assert full.fit_info_["subsampled_from"] is None and full.fit_info_["train_rows"] == 150
