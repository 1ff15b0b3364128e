"""build_estimator / default_params: right classes, GPU settings, parameter checks."""

import json

import pytest
from catboost import CatBoostClassifier, CatBoostRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import SVC, SVR, LinearSVC, LinearSVR
from xgboost import XGBClassifier, XGBRegressor

from mlmesh_common.modeling import (
    FAMILIES,
    META_PARAMS,
    AutoGluonEstimator,
    GaussianProcessEstimator,
    InvalidParamsError,
    UnknownDeviceError,
    UnknownFamilyError,
    build_estimator,
    default_params,
    effective_device,
)
from mlmesh_common.problems import MODEL_FAMILIES

# (family, classification) -> (outer class, inner class or None)
EXPECTED = {
    ("dummy", True): (DummyClassifier, None),
    ("dummy", False): (DummyRegressor, None),
    ("linear", True): (LogisticRegression, None),
    ("linear", False): (Ridge, None),
    ("svm_linear", True): (CalibratedClassifierCV, LinearSVC),
    ("svm_linear", False): (TransformedTargetRegressor, LinearSVR),
    ("svm_rbf", True): (CalibratedClassifierCV, SVC),
    ("svm_rbf", False): (TransformedTargetRegressor, SVR),
    ("knn", True): (KNeighborsClassifier, None),
    ("knn", False): (KNeighborsRegressor, None),
    ("random_forest", True): (RandomForestClassifier, None),
    ("random_forest", False): (RandomForestRegressor, None),
    ("extra_trees", True): (ExtraTreesClassifier, None),
    ("extra_trees", False): (ExtraTreesRegressor, None),
    ("hist_gb", True): (HistGradientBoostingClassifier, None),
    ("hist_gb", False): (HistGradientBoostingRegressor, None),
    ("lightgbm", True): (LGBMClassifier, None),
    ("lightgbm", False): (LGBMRegressor, None),
    ("xgboost", True): (XGBClassifier, None),
    ("xgboost", False): (XGBRegressor, None),
    ("catboost", True): (CatBoostClassifier, None),
    ("catboost", False): (CatBoostRegressor, None),
    ("gaussian_process", True): (GaussianProcessEstimator, None),
    ("gaussian_process", False): (GaussianProcessEstimator, None),
    ("mlp", True): (MLPClassifier, None),
    ("mlp", False): (TransformedTargetRegressor, MLPRegressor),
    ("autogluon", True): (AutoGluonEstimator, None),
    ("autogluon", False): (AutoGluonEstimator, None),
}
# default params that are not estimator params under the same name
_NOT_ESTIMATOR_KEYS = {"penalty", "hidden_layer_sizes"} | META_PARAMS


def _inner(est):
    if isinstance(est, CalibratedClassifierCV):
        return est.estimator
    if isinstance(est, TransformedTargetRegressor):
        return est.regressor
    return est


def test_families_are_the_problem_registry():
    assert FAMILIES == MODEL_FAMILIES and len(FAMILIES) == 14


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_builds_the_family_class_with_defaults(family, problem_type):
    est = build_estimator(family, problem_type, {}, device="cpu", seed=7)
    outer, inner = EXPECTED[(family, problem_type != "regression")]
    assert type(est) is outer
    if inner is not None:
        assert type(_inner(est)) is inner
    defaults = default_params(family, problem_type)
    json.dumps(defaults)  # travels in params_json
    params = _inner(est).get_params()
    for key, value in defaults.items():
        if key not in _NOT_ESTIMATOR_KEYS:
            assert params[key] == value, key


def test_default_params_are_sensible():
    for family in ("lightgbm", "xgboost"):
        p = default_params(family, "binary")
        assert p["n_estimators"] >= 500 and p["early_stopping_rounds"] > 0
        assert 0.02 <= p["learning_rate"] <= 0.1
    p = default_params("catboost", "regression")
    assert p["iterations"] >= 500 and p["early_stopping_rounds"] > 0
    assert default_params("hist_gb", "binary")["early_stopping"] is True
    assert default_params("mlp", "regression")["early_stopping"] is True
    assert default_params("svm_rbf", "binary")["max_train_rows"] == 10_000
    assert default_params("dummy", "multiclass") == {"strategy": "prior"}
    assert default_params("dummy", "regression") == {"strategy": "mean"}
    assert default_params("autogluon", "binary")["presets"] == "medium_quality"


@pytest.mark.parametrize(
    "problem_type,penalty,expected_ratio,solver",
    [
        ("binary", "l2", 0.0, "lbfgs"),
        ("binary", "l1", 1.0, "liblinear"),
        ("multiclass", "l1", 1.0, "saga"),
        ("binary", "elasticnet", 0.3, "saga"),
    ],
)
def test_logistic_penalties(problem_type, penalty, expected_ratio, solver):
    est = build_estimator(
        "linear", problem_type, {"penalty": penalty, "l1_ratio": 0.3}, device="cpu", seed=0
    )
    assert est.l1_ratio == expected_ratio and est.solver == solver


def test_regression_penalties():
    assert type(build_estimator("linear", "regression", {}, device="cpu", seed=0)) is Ridge
    lasso = build_estimator("linear", "regression", {"penalty": "l1"}, device="cpu", seed=0)
    assert type(lasso) is Lasso
    enet = build_estimator(
        "linear", "regression", {"penalty": "elasticnet", "l1_ratio": 0.2}, device="cpu", seed=0
    )
    assert type(enet) is ElasticNet and enet.l1_ratio == 0.2
    with pytest.raises(InvalidParamsError, match="l2, l1, elasticnet"):
        build_estimator("linear", "binary", {"penalty": "l3"}, device="cpu", seed=0)


def test_svm_calibration_settings():
    est = build_estimator(
        "svm_rbf", "binary", {"C": 3.0, "calibration": "isotonic"}, device="cpu", seed=0
    )
    assert est.method == "isotonic" and est.estimator.C == 3.0 and est.cv == 3


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
    rf = build_estimator("random_forest", "binary", {}, device="cpu", seed=3, n_jobs=2)
    assert rf.n_jobs == 2 and rf.random_state == 3
    ag = build_estimator("autogluon", "binary", {}, device="cpu", seed=0, n_jobs=2)
    assert ag.num_gpus == 0 and ag.num_cpus == 2


def test_gpu_settings_are_chosen_on_cuda():
    xgb = build_estimator("xgboost", "multiclass", {}, device="cuda", seed=0).get_params()
    assert xgb["device"] == "cuda" and xgb["tree_method"] == "hist"
    cb = build_estimator("catboost", "binary", {}, device="cuda", seed=0, n_jobs=4).get_params()
    assert cb["task_type"] == "GPU"
    assert cb["thread_count"] == 4 and cb["verbose"] == 0 and cb["allow_writing_files"] is False
    assert build_estimator("autogluon", "regression", {}, device="cuda", seed=0).num_gpus == 1
    # LightGBM and the sklearn families stay on the CPU.
    lgb = build_estimator("lightgbm", "binary", {}, device="cuda", seed=0).get_params()
    assert lgb.get("device", "cpu") == "cpu" and lgb.get("device_type", "cpu") == "cpu"
    for family in ("xgboost", "catboost", "autogluon"):
        assert effective_device(family, "cuda") == "cuda"
    for family in ("lightgbm", "linear", "hist_gb", "mlp", "svm_rbf"):
        assert effective_device(family, "cuda") == "cpu"


def test_categorical_features_reach_the_native_families():
    cb = build_estimator(
        "catboost", "binary", {}, device="cpu", seed=0, categorical_features=[2, 3]
    )
    assert cb.get_params()["cat_features"] == [2, 3]
    hgb = build_estimator("hist_gb", "binary", {}, device="cpu", seed=0, categorical_features=[1])
    assert hgb.categorical_features == [1]
    plain = build_estimator("hist_gb", "binary", {}, device="cpu", seed=0)
    assert plain.categorical_features is None


def test_params_override_defaults_and_catboost_aliases():
    lgb = build_estimator("lightgbm", "binary", {"n_estimators": 50}, device="cpu", seed=0)
    assert lgb.get_params()["n_estimators"] == 50
    cb = build_estimator(
        "catboost", "binary", {"n_estimators": 50, "max_depth": 4}, device="cpu", seed=0
    ).get_params()
    assert cb["iterations"] == 50 and cb["depth"] == 4 and "n_estimators" not in cb
    mlp = build_estimator("mlp", "binary", {"hidden_layer_sizes": [8]}, device="cpu", seed=0)
    assert mlp.hidden_layer_sizes == (8,)


def test_unknown_family_names_the_known_ones():
    with pytest.raises(UnknownFamilyError, match="dummy, linear, svm_linear, .*, autogluon"):
        build_estimator("randomforest", "binary", {}, device="cpu", seed=0)
    assert issubclass(UnknownFamilyError, ValueError)


def test_reserved_and_invalid_params():
    with pytest.raises(InvalidParamsError, match="must not set device"):
        build_estimator("xgboost", "binary", {"device": "cuda"}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="random_state"):
        build_estimator("linear", "binary", {"random_state": 1}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="num_gpus"):
        build_estimator("autogluon", "binary", {"num_gpus": 1}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="cat_features"):
        build_estimator("catboost", "binary", {"cat_features": [0]}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="catboost"):
        build_estimator("catboost", "binary", {"no_such_param": 1}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="linear"):
        build_estimator("linear", "regression", {"no_such_param": 1}, device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="knn"):
        build_estimator("knn", "binary", {"no_such_param": 1}, device="cpu", seed=0)
    with pytest.raises(UnknownDeviceError, match="cpu, cuda"):
        build_estimator("linear", "binary", {}, device="tpu", seed=0)
    with pytest.raises(ValueError, match="eval_metric"):
        build_estimator("autogluon", "binary", {"eval_metric": "auc"}, device="cpu", seed=0)
