"""ONNX export and native booster files of real MeshModels, verified against the model."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from mlmesh_common.modeling import MeshModel
from mlmesh_prep.preparation import build_preprocessor
from mlmesh_publish import artifacts as artifacts_module
from mlmesh_publish.artifacts import export_artifacts
from mlmesh_publish.onnx_export import (
    OnnxUnsupportedError,
    export_onnx,
    predict_onnx,
    read_spec,
    verify_onnx,
)

SMALL = {"lightgbm": {"n_estimators": 40}, "xgboost": {"n_estimators": 40},
         "catboost": {"iterations": 40}, "random_forest": {"n_estimators": 30},
         "extra_trees": {"n_estimators": 30}, "hist_gb": {"max_iter": 40},
         "mlp": {"hidden_layer_sizes": (16,), "max_iter": 300}}
#: Every family a MeshModel can be published with as ONNX (not dummy, autogluon, gaussian
#: process: their reasons are tested below).
ONNX_FAMILIES = ["linear", "lightgbm", "xgboost", "catboost", "mlp", "random_forest",
                 "extra_trees", "hist_gb", "knn", "svm_linear", "svm_rbf"]


def _frame(problem: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Numeric columns with gaps, a string category with gaps and unseen values, an int
    category: what prep hands to the model."""
    if problem == "binary":
        data = load_breast_cancer(as_frame=True)
        frame, target = data.data.iloc[:, :6].copy(), np.where(
            data.target == 1, "benign", "malignant")
    elif problem == "multiclass":
        data = load_iris(as_frame=True)
        frame, target = data.data.copy(), np.asarray(data.target_names)[data.target]
    else:
        data = load_diabetes(as_frame=True)
        frame, target = data.data.iloc[:, :5].copy(), data.target.to_numpy()
    rng = np.random.default_rng(1)
    first = frame.columns[0]
    frame["colour"] = np.where(frame[first] > frame[first].median(), "dark", "pale")
    frame.loc[rng.choice(len(frame), 12, replace=False), "colour"] = None
    frame["grade"] = rng.integers(0, 4, len(frame))
    frame.iloc[rng.choice(len(frame), 9, replace=False), 1] = np.nan
    return frame, target


def _model(family: str, problem: str, preprocessor: object = None,
           categorical_features: list[int] | None = None) -> tuple[MeshModel, pd.DataFrame]:
    """A model fitted on the rows that are not in the returned (held-out) test rows."""
    frame, target = _frame(problem)
    numeric = [c for c in frame.columns if c not in ("colour", "grade")]
    test = frame.sample(60, random_state=0).copy()
    train = ~frame.index.isin(test.index)
    model = MeshModel(preprocessor or build_preprocessor(numeric, ["colour", "grade"]), family,
                      problem, list(frame.columns), SMALL.get(family),
                      categorical_features=categorical_features).fit(frame[train], target[train])
    test.iloc[:3, test.columns.get_loc("colour")] = "never-seen"  # unknown category
    return model, test


def _assert_matches(model, test, path) -> None:
    labels, proba = predict_onnx(path, test)
    if model.problem_type == "regression":
        expected = model.predict(test)
        assert np.max(np.abs(labels - expected) / np.maximum(np.abs(expected), 1)) <= 1e-4
        assert proba is None
    else:
        assert list(labels) == list(model.predict(test))
        assert np.max(np.abs(proba - model.predict_proba(test))) <= 1e-4
        assert read_spec(path).classes == list(model.classes_)


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("family", ONNX_FAMILIES)
def test_onnx_matches_the_model(tmp_path, family, problem):
    model, test = _model(family, problem)
    result = export_artifacts(model, tmp_path, test)

    assert result.onnx_status == "verified", result.onnx_reason
    assert result.onnx == "model.onnx"
    spec = read_spec(tmp_path / "model.onnx")
    assert spec.verified and spec.family == family
    assert spec.preferred is (family != "knn")  # onnxruntime's KNN is slower than sklearn's
    _assert_matches(model, test, tmp_path / "model.onnx")
    recorded = json.loads((tmp_path / "artifacts.json").read_text())
    assert recorded["onnx_status"] == "verified"
    assert recorded["verification"]["rows"] == len(test)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_native_booster_file_predicts_like_the_model(tmp_path, family):
    model, test = _model(family, "binary")
    result = export_artifacts(model, tmp_path, test)
    path = tmp_path / result.native_model
    features = model.preprocessor_.transform(test).astype(np.float64)
    expected = model.estimator_.predict_proba(features)[:, 1]
    if family == "lightgbm":
        import lightgbm

        assert path.name == "model.lgb.txt"
        got = lightgbm.Booster(model_file=str(path)).predict(features)
    elif family == "xgboost":
        import xgboost

        assert path.name == "model.ubj"
        booster = xgboost.Booster()
        booster.load_model(str(path))
        got = booster.predict(xgboost.DMatrix(features))
    else:
        import catboost

        assert path.name == "model.cbm"
        got = catboost.CatBoostClassifier().load_model(str(path)).predict_proba(features)[:, 1]
    assert np.allclose(got, expected, atol=1e-6)


def test_dummy_and_linear_have_no_native_file_and_dummy_no_onnx(tmp_path):
    model, test = _model("dummy", "binary")
    result = export_artifacts(model, tmp_path, test)
    assert result.native_model is None and result.onnx is None
    assert result.onnx_status == "unsupported"
    assert "dummy" in result.onnx_reason
    assert not (tmp_path / "model.onnx").exists()
    assert json.loads((tmp_path / "artifacts.json").read_text())["onnx_status"] == "unsupported"
    linear, test = _model("linear", "binary")
    assert export_artifacts(linear, tmp_path / "linear", test).native_model is None


def test_a_graph_that_disagrees_with_the_model_is_not_published(tmp_path, monkeypatch):
    model, test = _model("lightgbm", "binary")
    other = MeshModel(model.preprocessor, "lightgbm", "binary", model.feature_columns,
                      {"n_estimators": 3, "num_leaves": 4})
    frame, target = _frame("binary")
    other.fit(frame, target[::-1])  # a different model: reversed labels
    real_export = artifacts_module.export_onnx
    monkeypatch.setattr(artifacts_module, "export_onnx",
                        lambda _model, path: real_export(other, path))

    result = export_artifacts(model, tmp_path, test)

    assert result.onnx is None and result.onnx_status == "mismatch"
    assert "labels differ" in result.onnx_reason or "probabilities differ" in result.onnx_reason
    assert not (tmp_path / "model.onnx").exists()
    assert result.native_model == "model.lgb.txt"  # the rest is still published
    assert result.verification["passed"] is False


def test_verify_reports_the_size_of_a_difference(tmp_path):
    model, test = _model("linear", "regression")
    export_onnx(model, tmp_path / "m.onnx")
    shifted = MeshModel(model.preprocessor, "linear", "regression", model.feature_columns,
                        {"alpha": 50.0})
    frame, target = _frame("regression")
    shifted.fit(frame, target)
    verdict = verify_onnx(tmp_path / "m.onnx", shifted, test)
    assert not verdict.passed and verdict.max_relative_diff > 1e-4
    assert "relative" in verdict.reason
    assert read_spec(tmp_path / "m.onnx").verified is False


def test_unsupported_models_say_why(tmp_path):
    with pytest.raises(OnnxUnsupportedError, match="neither a MeshModel nor a Pipeline"):
        export_onnx(object(), tmp_path / "x.onnx")
    from sklearn.compose import ColumnTransformer
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = _frame("binary")
    pipe = Pipeline([("prep", ColumnTransformer([("n", StandardScaler(), ["mean radius"])])),
                     ("clf", QuadraticDiscriminantAnalysis())]).fit(frame, target)
    with pytest.raises(OnnxUnsupportedError, match="QuadraticDiscriminantAnalysis"):
        export_onnx(pipe, tmp_path / "y.onnx")
    joblib.dump(pipe, tmp_path / "pipe.joblib")  # and export_artifacts records it
    result = export_artifacts(pipe, tmp_path / "out", frame.head(10))
    assert result.onnx_status == "unsupported"
    assert "QuadraticDiscriminantAnalysis" in result.onnx_reason
    gp, test = _model("gaussian_process", "regression")
    result = export_artifacts(gp, tmp_path / "gp", test)
    assert result.onnx_status == "unsupported" and "GaussianProcess" in result.onnx_reason


def test_a_scikit_learn_pipeline_of_a_forest_is_exported(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = _frame("multiclass")
    numeric = [c for c in frame.columns if c not in ("colour", "grade")]
    pipe = Pipeline([("prep", ColumnTransformer([("n", StandardScaler(), numeric)])),
                     ("clf", RandomForestClassifier(n_estimators=10, random_state=0))])
    pipe.fit(frame.fillna(0), target)
    result = export_artifacts(pipe, tmp_path, frame.fillna(0).head(40))
    assert result.onnx_status == "verified", result.onnx_reason
    assert read_spec(tmp_path / "model.onnx").label_output == "value"


def _tree_plan(problem: str, outliers: str = "none"):
    """prep's own plan for the test frame: category codes for trees (unknown -> NaN),
    one-hot for dense models, quantile clipping when ``outliers='clip'``."""
    from mlmesh_prep.features import ColumnChoice, FeaturePlan

    frame, _ = _frame(problem)
    columns = [ColumnChoice(c, "numeric", 0.0, 0, "median", False, "standard_scale", "number",
                            outliers) for c in frame.columns if c not in ("colour", "grade")]
    columns += [ColumnChoice(c, "categorical", 0.0, 0, "most_frequent", False, "one_hot",
                             "code") for c in ("colour", "grade")]
    return FeaturePlan(columns, problem)


@pytest.mark.parametrize("family", ["random_forest", "extra_trees", "lightgbm", "xgboost"])
@pytest.mark.parametrize("problem", ["binary", "regression"])
def test_category_codes_of_the_tree_preprocessor_are_exported(tmp_path, family, problem):
    """The tree preprocessor's ordinal codes, with NaN for unseen categories: the forests'
    graphs send NaN where scikit-learn does (missing_go_to_left), LightGBM splits natively
    on the codes."""
    preprocessor, codes = _tree_plan(problem).trees()
    model, test = _model(family, problem, preprocessor, codes)
    test.iloc[3:20, test.columns.get_loc("colour")] = "unseen"  # many rows with NaN codes
    result = export_artifacts(model, tmp_path, test)
    assert result.onnx_status == "verified", result.onnx_reason
    _assert_matches(model, test, tmp_path / "model.onnx")


GENERATED = [
    {"name": "g_mul", "op": "mul", "inputs": ["n0", "n1"]},
    {"name": "g_add", "op": "add", "inputs": ["n0", "n2"]},
    {"name": "g_sub", "op": "sub", "inputs": ["n1", "n2"]},
    {"name": "g_div", "op": "div", "inputs": ["n0", "n1"]},
    {"name": "g_square", "op": "square", "inputs": ["n2"]},
    {"name": "g_log", "op": "log", "inputs": ["n1"]},
    {"name": "g_sqrt", "op": "sqrt", "inputs": ["n0"]},
    {"name": "g_abs", "op": "abs", "inputs": ["n1"]},
    {"name": "g_mean", "op": "group_mean", "inputs": ["colour", "n0"]},
    {"name": "g_std", "op": "group_std", "inputs": ["grade", "n2"]},
    {"name": "g_share", "op": "group_frequency", "inputs": ["colour"]},
    {"name": "g_pc0", "op": "pca", "inputs": ["n0", "n1", "n2"], "component": 0},
    {"name": "g_pc1", "op": "pca", "inputs": ["n0", "n1", "n2"], "component": 1},
]


@pytest.mark.parametrize("family", ["lightgbm", "mlp"])
def test_generated_features_are_translated(tmp_path, family):
    """Every FeatureGenerator operation, with zeros, negatives and gaps in its inputs (NaN
    ratios, logs and roots), missing and unseen group keys."""
    frame, target = _frame("binary")
    frame.columns = [f"n{i}" if c not in ("colour", "grade") else c
                     for i, c in enumerate(frame.columns)]
    rng = np.random.default_rng(3)
    frame["n1"] = frame["n1"] - frame["n1"].median()  # negatives: NaN logs and roots
    frame.loc[rng.choice(len(frame), 10, replace=False), "n1"] = 0.0  # zero divisors
    plan = _tree_plan("binary")
    for choice, column in zip(plan.columns, frame.columns, strict=False):
        choice.name = column
    plan.generated = GENERATED
    if family == "lightgbm":
        preprocessor, codes = plan.trees()
    else:
        preprocessor, codes = plan.dense(), None
    test = frame.sample(60, random_state=0).copy()
    train = ~frame.index.isin(test.index)
    model = MeshModel(preprocessor, family, "binary", list(frame.columns), SMALL[family],
                      categorical_features=codes).fit(frame[train], target[train])
    test.iloc[:4, test.columns.get_loc("colour")] = "never-seen"
    test.iloc[4:8, test.columns.get_loc("colour")] = None
    test.iloc[8:12, test.columns.get_loc("n0")] = np.nan
    result = export_artifacts(model, tmp_path, test)
    assert result.onnx_status == "verified", result.onnx_reason
    _assert_matches(model, test, tmp_path / "model.onnx")
    generated = model.preprocessor_.steps[0][1].transform(test)[[g["name"] for g in GENERATED]]
    assert generated.isna().any().any()  # the NaN paths were exercised


def _dense_plan(problem: str, numeric_imputation: str, encoding: str):
    """prep's dense plan with the given numeric imputation (missing indicators on every
    numeric column) and categorical encoding."""
    from mlmesh_prep.features import ColumnChoice, FeaturePlan

    frame, _ = _frame(problem)
    columns = [ColumnChoice(c, "numeric", 0.1, 0, numeric_imputation, True, "standard_scale",
                            "number") for c in frame.columns if c not in ("colour", "grade")]
    columns += [ColumnChoice(c, "categorical", 0.1, 0, "most_frequent", False, encoding,
                             "code") for c in ("colour", "grade")]
    return FeaturePlan(columns, problem)


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_missing_indicators_and_target_encoding_are_translated(tmp_path, problem):
    """NumericImputer's mean fill and the 0/1 indicator columns it appends (scaled after
    it), and cross-fitted target encoding (one column per class for a multiclass target)."""
    preprocessor = _dense_plan(problem, "mean", "target").dense()
    model, test = _model("linear", problem, preprocessor)
    test.iloc[5:15, 1] = np.nan  # missing numbers: filled and flagged
    result = export_artifacts(model, tmp_path, test)
    assert result.onnx_status == "verified", result.onnx_reason
    _assert_matches(model, test, tmp_path / "model.onnx")


def test_knn_imputation_says_why(tmp_path):
    preprocessor = _dense_plan("binary", "knn", "one_hot").dense()
    model, test = _model("linear", "binary", preprocessor)
    result = export_artifacts(model, tmp_path, test)
    assert result.onnx_status == "unsupported"
    assert "knn imputation of column" in result.onnx_reason


def test_quantile_clipping_is_translated(tmp_path):
    preprocessor = _tree_plan("regression", outliers="clip").dense()
    model, test = _model("mlp", "regression", preprocessor)
    test.iloc[:5, 0] = test.iloc[:5, 0] * 40  # far outside the clipped range
    result = export_artifacts(model, tmp_path, test)
    assert result.onnx_status == "verified", result.onnx_reason


def test_native_categorical_splits_say_why(tmp_path):
    preprocessor, codes = _tree_plan("binary").trees()
    for family, reason in (("hist_gb", "native categorical splits"),
                           ("catboost", "does yet not support categorical features")):
        model, test = _model(family, "binary", preprocessor, codes)
        result = export_artifacts(model, tmp_path / family, test)
        assert result.onnx_status == "unsupported" and reason in result.onnx_reason


def _ensemble(kind: str, problem: str, families: tuple[str, ...]):
    from mlmesh_common.modeling import EnsembleModel
    from mlmesh_common.modeling._ensemble import stack_features

    members, test = [], None
    for family in families:
        member, test = _model(family, problem)
        members.append(member)
    frame, target = _frame(problem)
    if kind == "caruana":
        return EnsembleModel(members, [0.5, 0.3, 0.2][: len(members)]).from_fitted(), test
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV

    ensemble = EnsembleModel(members, kind="stacking", meta=RidgeCV())
    ensemble.from_fitted()
    classes = list(getattr(ensemble, "classes_", []))
    outputs = ensemble.member_outputs(frame, classes or None)
    features = stack_features(outputs, problem)
    meta = (RidgeCV() if problem == "regression" else LogisticRegressionCV(Cs=3, max_iter=500))
    ensemble.meta = meta.fit(features, target)
    return ensemble, test


@pytest.mark.parametrize("kind", ["caruana", "stacking"])
@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_ensembles_are_exported_as_one_graph(tmp_path, kind, problem):
    """Every member's graph in one (CatBoost's probability maps included), blended by the
    Caruana weights or the stacking meta-learner on the members' logits."""
    ensemble, test = _ensemble(kind, problem, ("mlp", "lightgbm", "catboost"))
    result = export_artifacts(ensemble, tmp_path, test)
    assert result.onnx_status == "verified", result.onnx_reason
    spec = read_spec(tmp_path / "model.onnx")
    assert spec.family.startswith(f"ensemble ({kind}") and "catboost" in spec.family
    _assert_matches(ensemble, test, tmp_path / "model.onnx")


def test_an_ensemble_with_an_unconvertible_member_names_it(tmp_path):
    from mlmesh_common.modeling import EnsembleModel

    linear, test = _model("linear", "regression")
    gp, _ = _model("gaussian_process", "regression")
    ensemble = EnsembleModel([linear, gp], [0.5, 0.5]).from_fitted()
    result = export_artifacts(ensemble, tmp_path, test)
    assert result.onnx_status == "unsupported"
    assert "member 1 (gaussian_process)" in result.onnx_reason


def test_lightgbm_thresholds_keep_float64_precision(tmp_path):
    """200 trees on 30 features: with float32 thresholds (onnxmltools' default) some rows
    fall between float32(t) and t and the probabilities drift by ~1e-3; the exported graph
    compares in float64 like LightGBM and stays within 1e-4."""
    data = load_breast_cancer(as_frame=True)
    frame = data.data.copy()
    frame["band"] = np.where(frame["mean radius"] > 15, "large", "small")
    model = MeshModel(build_preprocessor(list(data.data.columns), ["band"]), "lightgbm",
                      "binary", list(frame.columns), {"n_estimators": 200}).fit(
        frame, data.target.to_numpy())
    result = export_artifacts(model, tmp_path, frame)
    assert result.onnx_status == "verified", result.onnx_reason
    assert result.verification["max_proba_diff"] < 1e-5
