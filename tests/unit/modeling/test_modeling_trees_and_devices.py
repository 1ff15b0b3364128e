"""Tree preprocessor and native categoricals; the GPU -> CPU fallback on a CPU-only host."""

import shutil

import numpy as np
import pytest

from mlmesh_common.modeling import (
    TREE_FAMILIES,
    MeshModel,
    cross_validate,
    load_prepared,
    new_model,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
no_gpu_here = pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="this host has a GPU; the fallback needs none"
)


def test_tree_families_get_the_tree_preprocessor(penguins_prepared_trees, penguins_prepared):
    data = load_prepared(penguins_prepared_trees)
    assert data.tree_categorical_features == [5, 6]
    for family in TREE_FAMILIES:
        assert data.preprocessor_for(family) is data.preprocessor_trees
    for family in ("linear", "svm_rbf", "knn", "mlp", "dummy", "autogluon"):
        assert data.preprocessor_for(family) is data.preprocessor
        assert data.categorical_features_for(family) == []
    assert data.categorical_features_for("lightgbm") == [5, 6]
    # without preprocessor_trees.joblib everyone uses the dense preprocessor
    plain = load_prepared(penguins_prepared)
    assert plain.preprocessor_trees is None and plain.categorical_features_for("lightgbm") == []
    assert plain.preprocessor_for("catboost") is plain.preprocessor


@pytest.mark.parametrize(
    "family,params",
    [
        ("lightgbm", {"n_estimators": 30}),
        ("catboost", {"iterations": 30}),
        ("hist_gb", {"max_iter": 30}),
        ("xgboost", {"n_estimators": 30}),
    ],
)
def test_native_categoricals(penguins_prepared_trees, family, params):
    data = load_prepared(penguins_prepared_trees)
    model = new_model(data, family, params, device="cpu", seed=0)
    model.fit(data.X_train, data.y_train)
    est = model.estimator_
    if family == "lightgbm":
        infos = est.booster_.dump_model()["feature_infos"]
        assert infos["Column_5"]["values"] and infos["Column_6"]["values"]  # categorical
        assert infos["Column_0"]["values"] == []  # numeric
    elif family == "catboost":
        assert est.get_cat_feature_indices() == [5, 6]
    elif family == "hist_gb":
        assert list(np.flatnonzero(est.is_categorical_)) == [5, 6]
    else:  # xgboost: codes are plain ordered numbers (documented choice)
        assert model.categorical_features_ == []
    # the tree preprocessor does not scale: raw body mass values reach the estimator
    Xt = model.transform(data.X_test)
    body_mass = np.asarray(Xt)[:, 3].astype(float)
    assert np.nanmax(body_mass) > 1000
    assert (model.predict(data.X_test) == data.y_test.to_numpy()).mean() > 0.9


def test_unseen_category_at_predict_time(penguins_prepared_trees):
    data = load_prepared(penguins_prepared_trees)
    model = new_model(data, "catboost", {"iterations": 30}, device="cpu", seed=0)
    model.fit(data.X_train, data.y_train)
    X = data.X_test.head(5).copy()
    X["island"] = "Atlantis"
    assert model.predict_proba(X).shape == (5, 3)


def test_hist_gb_keeps_high_cardinality_codes_numeric():
    from mlmesh_common.modeling._families import hist_gb_categoricals

    X = np.column_stack([np.arange(300) % 3, np.arange(300), np.full(300, np.nan)])
    assert hist_gb_categoricals(X, [0, 1, 2]) == [0, 2]


@no_gpu_here
def test_catboost_gpu_failure_falls_back_to_cpu_with_a_reason(cancer_prepared):
    data = load_prepared(cancer_prepared)
    model = new_model(data, "catboost", {"iterations": 20}, device="cuda", seed=0)
    model.fit(data.X_train, data.y_train)
    assert model.device_ == "cpu"
    assert "failed on the GPU" in model.device_fallback_reason_
    assert "trained on the CPU instead" in model.device_fallback_reason_
    assert model.estimator_.get_params()["task_type"] == "CPU"
    assert model.predict_proba(data.X_test).shape == (len(data.X_test), 2)


@no_gpu_here
def test_xgboost_without_a_gpu_records_the_cpu(cancer_prepared):
    data = load_prepared(cancer_prepared)
    model = new_model(data, "xgboost", {"n_estimators": 20}, device="cuda", seed=0)
    model.fit(data.X_train, data.y_train)
    assert model.device_ == "cpu" and "no usable GPU" in model.device_fallback_reason_


def test_cpu_families_never_claim_a_gpu(cancer_prepared):
    data = load_prepared(cancer_prepared)
    model = new_model(data, "linear", {}, device="cuda", seed=0).fit(data.X_train, data.y_train)
    assert model.device_ == "cpu" and model.device_fallback_reason_ == ""


def test_cv_stops_trying_the_gpu_after_a_fallback(cancer_prepared, monkeypatch):
    data = load_prepared(cancer_prepared)
    tried = []
    real = MeshModel._build_and_fit

    def gpu_breaks(self, device, *args, **kwargs):
        tried.append(device)
        if device == "cuda":
            raise RuntimeError("CUDA error 35: CUDA driver version is insufficient")
        return real(self, device, *args, **kwargs)

    monkeypatch.setattr(MeshModel, "_build_and_fit", gpu_breaks)
    cv = cross_validate(data, "catboost", {"iterations": 20}, device="cuda", seed=0)
    assert tried == ["cuda", "cpu", "cpu", "cpu"]  # 3 folds, the GPU tried once
    assert cv.device == "cpu" and "CUDA driver version" in cv.device_fallback_reason
    assert cv.mean > 0.95


def test_a_cpu_failure_is_not_retried(cancer_prepared, monkeypatch):
    data = load_prepared(cancer_prepared)

    def broken(self, device, *args, **kwargs):
        raise RuntimeError(f"broken on {device}")

    monkeypatch.setattr(MeshModel, "_build_and_fit", broken)
    with pytest.raises(RuntimeError, match="broken on cpu"):
        new_model(data, "lightgbm", {}, device="cpu", seed=0).fit(data.X_train, data.y_train)
    with pytest.raises(RuntimeError, match="broken on cpu"):  # GPU failed, then the CPU too
        new_model(data, "xgboost", {}, device="cuda", seed=0).fit(data.X_train, data.y_train)


def test_bad_tree_categorical_features_are_rejected(penguins_prepared_trees, tmp_path):
    import json
    import shutil as sh

    from mlmesh_common.modeling import PreparedDataError

    folder = tmp_path / "prepared"
    sh.copytree(penguins_prepared_trees, folder)
    spec = json.loads((folder / "prep.json").read_text())
    spec["tree_categorical_features"] = ["island"]
    (folder / "prep.json").write_text(json.dumps(spec))
    with pytest.raises(PreparedDataError, match="tree_categorical_features"):
        load_prepared(folder)
