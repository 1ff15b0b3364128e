"""The GPU paths on a host with a CUDA GPU: XGBoost and CatBoost really train on it.

CI has no GPU, so these tests skip there (their CPU fallbacks are tested in
test_modeling_trees_and_devices.py). On a GPU machine they run with only this folder's
conftest: ``pytest --confcutdir=tests/unit/modeling tests/unit/modeling/test_modeling_gpu.py``.
"""

import pickle

import numpy as np
import pytest

from mlmesh_common.modeling import cross_validate, detect_device, load_prepared, new_model, score

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.skipif(detect_device() != "cuda", reason="needs a CUDA GPU"),
]


def _served_copy(model):
    """The model as the serving app gets it: pickled, loaded where no GPU is used."""
    return pickle.loads(pickle.dumps(model)).to_cpu()


def test_xgboost_trains_on_the_gpu_and_serves_on_the_cpu(cancer_prepared):
    data = load_prepared(cancer_prepared)
    model = new_model(data, "xgboost", {"n_estimators": 200}, device="cuda", seed=0)
    model.fit(data.X_train, data.y_train)
    assert model.device_ == "cuda" and model.device_fallback_reason_ == ""
    assert model.estimator_.get_params()["device"] == "cuda"
    proba = model.predict_proba(data.X_test)
    assert score("roc_auc", data.y_test, y_proba=proba, labels=list(model.classes_)) > 0.95
    served = _served_copy(model)
    assert served.estimator_.get_params()["device"] == "cpu"
    np.testing.assert_allclose(served.predict_proba(data.X_test), proba, atol=1e-5)


def test_catboost_trains_on_the_gpu_with_native_categoricals(penguins_prepared_trees):
    data = load_prepared(penguins_prepared_trees)
    model = new_model(data, "catboost", {"iterations": 200}, device="cuda", seed=0)
    assert model.categorical_features  # the tree preprocessor's code columns
    model.fit(data.X_train, data.y_train)
    assert model.device_ == "cuda" and model.device_fallback_reason_ == ""
    assert model.estimator_.get_params()["task_type"] == "GPU"
    proba = model.predict_proba(data.X_test)
    assert score("accuracy", data.y_test, y_pred=model.predict(data.X_test)) > 0.9
    np.testing.assert_allclose(_served_copy(model).predict_proba(data.X_test), proba, atol=1e-9)


def test_catboost_regression_on_the_gpu(diabetes_prepared):
    data = load_prepared(diabetes_prepared)
    model = new_model(data, "catboost", {"iterations": 200}, device="cuda", seed=0)
    model.fit(data.X_train, data.y_train)
    assert model.device_ == "cuda" and model.device_fallback_reason_ == ""
    assert score("rmse", data.y_test, y_pred=model.predict(data.X_test)) < 70


@pytest.mark.parametrize("family", ["xgboost", "catboost"])
def test_cross_validation_stays_on_the_gpu(cancer_prepared, family):
    data = load_prepared(cancer_prepared)
    rounds = {"xgboost": {"n_estimators": 100}, "catboost": {"iterations": 100}}[family]
    cv = cross_validate(data, family, rounds, device="cuda", seed=0)
    assert cv.device == "cuda" and cv.device_fallback_reason == ""
    assert cv.mean > 0.95
