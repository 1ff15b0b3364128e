"""MeshModel: label encoding, column handling, pickling, preprocessor isolation."""

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlmesh_common.modeling import (
    MeshModel,
    MissingFeaturesError,
    TargetError,
    load_prepared,
    score,
)


def _model(data, family, params=None, **kw):
    return MeshModel(
        data.preprocessor, family, data.problem_type, data.feature_columns, params, **kw
    )


@pytest.mark.parametrize(
    "family,params",
    [("xgboost", {"n_estimators": 50}), ("catboost", {"iterations": 50}), ("linear", {})],
)
def test_string_labels_round_trip(penguins_prepared, family, params):
    data = load_prepared(penguins_prepared)
    model = _model(data, family, params).fit(data.X_train, data.y_train)
    assert list(model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    pred = model.predict(data.X_test)
    assert set(pred) <= set(model.classes_)
    assert score("accuracy", data.y_test, y_pred=pred) > 0.9
    proba = model.predict_proba(data.X_test)
    assert proba.shape == (len(data.X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # predict agrees with the most probable class.
    assert (model.classes_[proba.argmax(axis=1)] == pred).mean() > 0.97
    assert model.family == family and model.problem_type == "multiclass"
    assert model.params == params and model.feature_columns == data.feature_columns


def test_regression(diabetes_prepared):
    data = load_prepared(diabetes_prepared)
    model = _model(data, "lightgbm", {"n_estimators": 50}).fit(data.X_train, data.y_train)
    pred = model.predict(data.X_test)
    assert pred.dtype == float and pred.shape == (len(data.X_test),)
    assert score("r2", data.y_test, y_pred=pred) > 0.2
    assert not hasattr(model, "predict_proba")


def test_columns_extra_ignored_missing_named(penguins_prepared):
    data = load_prepared(penguins_prepared)
    model = _model(data, "linear").fit(data.X_train, data.y_train)
    X = data.X_test.copy()
    X["unrelated"] = 1
    X = X[X.columns[::-1]]  # column order does not matter either
    np.testing.assert_array_equal(model.predict(X), model.predict(data.X_test))
    with pytest.raises(MissingFeaturesError, match="island"):
        model.predict(data.X_test.drop(columns=["island"]))
    with pytest.raises(MissingFeaturesError, match="DataFrame"):
        model.predict(data.X_test.to_numpy())


def test_pickles_and_clones(cancer_prepared):
    data = load_prepared(cancer_prepared)
    model = _model(data, "xgboost", {"n_estimators": 50}, seed=1).fit(data.X_train, data.y_train)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    restored = joblib.load(buf)
    np.testing.assert_allclose(
        restored.predict_proba(data.X_test), model.predict_proba(data.X_test)
    )
    fresh = clone(model)
    assert not hasattr(fresh, "estimator_") and fresh.get_params()["seed"] == 1


def test_fit_uses_its_own_preprocessor_copy(diabetes_prepared):
    data = load_prepared(diabetes_prepared)
    scaler = data.preprocessor.named_transformers_["num"].named_steps["scale"]
    before = scaler.mean_.copy()
    model = _model(data, "linear").fit(data.X_valid, data.y_valid)
    np.testing.assert_array_equal(scaler.mean_, before)
    own = model.preprocessor_.named_transformers_["num"].named_steps["scale"]
    assert model.preprocessor_ is not data.preprocessor
    assert not np.allclose(own.mean_, before)


def test_bad_targets(penguins_prepared):
    data = load_prepared(penguins_prepared)
    one_class = pd.Series(["Adelie"] * len(data.y_train))
    with pytest.raises(TargetError, match="single class"):
        _model(data, "linear").fit(data.X_train, one_class)
    with pytest.raises(TargetError, match="one value per row"):
        _model(data, "linear").fit(data.X_train, data.y_train[:10])
    reg = MeshModel(data.preprocessor, "linear", "regression", data.feature_columns)
    with pytest.raises(TargetError, match="numeric"):
        reg.fit(data.X_train, data.y_train)
