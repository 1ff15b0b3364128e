"""build_estimator / default_params: right classes, GPU settings, parameter checks."""

import pytest
from catboost import CatBoostClassifier, CatBoostRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from xgboost import XGBClassifier, XGBRegressor

from mlmesh_common.modeling import (
    FAMILIES,
    InvalidParamsError,
    UnknownDeviceError,
    UnknownFamilyError,
    build_estimator,
    default_params,
    effective_device,
)

EXPECTED = {
    ("dummy", True): DummyClassifier,
    ("dummy", False): DummyRegressor,
    ("linear", True): LogisticRegression,
    ("linear", False): Ridge,
    ("lightgbm", True): LGBMClassifier,
    ("lightgbm", False): LGBMRegressor,
    ("xgboost", True): XGBClassifier,
    ("xgboost", False): XGBRegressor,
    ("catboost", True): CatBoostClassifier,
    ("catboost", False): CatBoostRegressor,
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_builds_the_family_class_with_defaults(family, problem_type):
    est = build_estimator(family, problem_type, {}, device="cpu", seed=7)
    assert type(est) is EXPECTED[(family, problem_type != "regression")]
    params = est.get_params()
    for key, value in default_params(family, problem_type).items():
        assert params[key] == value


def test_default_params_are_quick_and_sensible():
    for family in ("lightgbm", "xgboost"):
        p = default_params(family, "binary")
        assert 200 <= p["n_estimators"] <= 400 and 0.05 <= p["learning_rate"] <= 0.1
    p = default_params("catboost", "regression")
    assert 200 <= p["iterations"] <= 400 and 0.05 <= p["learning_rate"] <= 0.1
    assert default_params("dummy", "multiclass") == {"strategy": "prior"}
    assert default_params("dummy", "regression") == {"strategy": "mean"}


def test_cpu_settings():
    xgb = build_estimator("xgboost", "binary", {}, device="cpu", seed=3, n_jobs=2).get_params()
    assert (xgb["device"], xgb["tree_method"], xgb["n_jobs"], xgb["random_state"]) == (
        "cpu",
        "hist",
        2,
        3,
    )
    cb = build_estimator("catboost", "multiclass", {}, device="cpu", seed=3, n_jobs=2).get_params()
    assert cb["task_type"] == "CPU" and cb["thread_count"] == 2 and cb["random_seed"] == 3
    lgb = build_estimator("lightgbm", "regression", {}, device="cpu", seed=3).get_params()
    assert lgb["verbose"] == -1 and lgb["random_state"] == 3 and lgb["n_jobs"] == 1


def test_gpu_settings_are_chosen_on_cuda():
    xgb = build_estimator("xgboost", "multiclass", {}, device="cuda", seed=0).get_params()
    assert xgb["device"] == "cuda" and xgb["tree_method"] == "hist"
    cb = build_estimator("catboost", "binary", {}, device="cuda", seed=0, n_jobs=4).get_params()
    assert cb["task_type"] == "GPU"
    assert cb["thread_count"] == 4 and cb["verbose"] == 0 and cb["allow_writing_files"] is False
    # LightGBM and the sklearn families stay on the CPU.
    lgb = build_estimator("lightgbm", "binary", {}, device="cuda", seed=0).get_params()
    assert lgb.get("device", "cpu") == "cpu" and lgb.get("device_type", "cpu") == "cpu"
    assert effective_device("xgboost", "cuda") == "cuda"
    assert effective_device("catboost", "cuda") == "cuda"
    assert effective_device("lightgbm", "cuda") == "cpu"
    assert effective_device("linear", "cuda") == "cpu"


def test_params_override_defaults_and_catboost_aliases():
    lgb = build_estimator("lightgbm", "binary", {"n_estimators": 50}, device="cpu", seed=0)
    assert lgb.get_params()["n_estimators"] == 50
    cb = build_estimator(
        "catboost", "binary", {"n_estimators": 50, "max_depth": 4}, device="cpu", seed=0
    ).get_params()
    assert cb["iterations"] == 50 and cb["depth"] == 4 and "n_estimators" not in cb


def test_unknown_family_names_the_known_ones():
    with pytest.raises(UnknownFamilyError, match="dummy, linear, lightgbm, xgboost, catboost"):
        build_estimator("randomforest", "binary", {}, device="cpu", seed=0)
    assert issubclass(UnknownFamilyError, ValueError)


def test_reserved_and_invalid_params():
    with pytest.raises(InvalidParamsError, match="must not set device"):
        build_estimator("xgboost", "binary", {"device": "cuda"}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="random_state"):
        build_estimator("linear", "binary", {"random_state": 1}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="catboost"):
        build_estimator("catboost", "binary", {"no_such_param": 1}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="linear"):
        build_estimator("linear", "regression", {"no_such_param": 1}, device="cpu", seed=0)
    with pytest.raises(UnknownDeviceError, match="cpu, cuda"):
        build_estimator("linear", "binary", {}, device="tpu", seed=0)
