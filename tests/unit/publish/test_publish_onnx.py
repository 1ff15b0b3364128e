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
         "catboost": {"iterations": 40}, "linear": None, "dummy": None}


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


def _model(family: str, problem: str) -> tuple[MeshModel, pd.DataFrame]:
    frame, target = _frame(problem)
    numeric = [c for c in frame.columns if c not in ("colour", "grade")]
    model = MeshModel(build_preprocessor(numeric, ["colour", "grade"]), family, problem,
                      list(frame.columns), SMALL[family]).fit(frame, target)
    test = frame.sample(80, random_state=0).copy()
    test.iloc[:3, test.columns.get_loc("colour")] = "never-seen"  # unknown category
    return model, test


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("family", ["linear", "lightgbm", "xgboost", "catboost"])
def test_onnx_matches_the_model(tmp_path, family, problem):
    model, test = _model(family, problem)
    result = export_artifacts(model, tmp_path, test)

    assert result.onnx_status == "verified", result.onnx_reason
    assert result.onnx == "model.onnx"
    spec = read_spec(tmp_path / "model.onnx")
    assert spec.verified and spec.family == family
    labels, proba = predict_onnx(tmp_path / "model.onnx", test)
    if problem == "regression":
        expected = model.predict(test)
        assert np.max(np.abs(labels - expected) / np.maximum(np.abs(expected), 1)) <= 1e-4
        assert proba is None
    else:
        assert list(labels) == list(model.predict(test))
        assert np.max(np.abs(proba - model.predict_proba(test))) <= 1e-4
        assert spec.classes == list(model.classes_)
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
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    frame, target = _frame("binary")
    pipe = Pipeline([("prep", ColumnTransformer([("n", "passthrough", ["mean radius"])])),
                     ("clf", RandomForestClassifier(n_estimators=2))]).fit(frame, target)
    with pytest.raises(OnnxUnsupportedError, match="RandomForestClassifier"):
        export_onnx(pipe, tmp_path / "y.onnx")
    joblib.dump(pipe, tmp_path / "pipe.joblib")  # and export_artifacts records it
    result = export_artifacts(pipe, tmp_path / "out", frame.head(10))
    assert result.onnx_status == "unsupported" and "RandomForestClassifier" in result.onnx_reason


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


def test_a_tree_preprocessor_with_category_codes_is_unsupported_not_an_error(tmp_path):
    """prep's tree preprocessor encodes categories as ordinal codes: no ONNX translation, so
    export says so (publish records the reason) instead of failing the stage."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    frame, target = _frame("binary")
    numeric = [c for c in frame.columns if c not in ("colour", "grade")]
    codes = make_pipeline(SimpleImputer(strategy="most_frequent"),
                          OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1))
    preprocessor = ColumnTransformer([("codes", codes, ["colour"]),
                                      ("num", SimpleImputer(strategy="median"), numeric)])
    model = MeshModel(preprocessor, "lightgbm", "binary", numeric + ["colour"],
                      SMALL["lightgbm"]).fit(frame, target)
    with pytest.raises(OnnxUnsupportedError, match="OrdinalEncoder"):
        export_onnx(model, tmp_path / "model.onnx")
    result = export_artifacts(model, tmp_path / "out", frame.head(20))
    assert result.onnx is None and result.onnx_status == "unsupported"
    assert "OrdinalEncoder" in result.onnx_reason
