"""Compiled in-process scoring (mlmesh_publish.fastpath): prep's tree and dense
preprocessors (codes, one-hot, clipping, model-based imputation, generated features),
MeshModels, ensembles and plain sklearn pipelines answer exactly like the model, and the
generated app keeps the plain path when they would not."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import uuid
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer

from mlmesh_common.modeling import EnsembleModel, MeshModel
from mlmesh_prep.features import ColumnChoice, FeaturePlan
from mlmesh_publish import fastpath
from mlmesh_publish.serving import generate_serving_app

NUMERIC = ["mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness",
           "worst radius"]
GENERATED = [
    {"name": "radius_x_texture", "op": "mul", "inputs": ["mean radius", "mean texture"]},
    {"name": "log_area", "op": "log", "inputs": ["mean area"]},
    {"name": "area_by_site", "op": "group_mean", "inputs": ["site", "mean area"]},
    {"name": "site_share", "op": "group_frequency", "inputs": ["site"]},
    {"name": "pc0", "op": "pca", "inputs": ["mean radius", "mean perimeter"], "component": 0},
]


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    frame = data.data[NUMERIC].copy()
    rng = np.random.default_rng(5)
    frame["site"] = np.where(frame["mean radius"] > 14, "north", "south")
    frame.loc[frame.index[rng.random(len(frame)) < 0.15], "site"] = "east"
    frame["grade"] = np.where(frame["mean texture"] > 19, "high", "low")
    for column in ("site", "grade", "mean texture", "mean area"):
        frame.loc[rng.choice(len(frame), 25, replace=False), column] = np.nan
    target = np.where(data.target == 1, "benign", "malignant")
    return frame, target


def _plan() -> FeaturePlan:
    columns = [
        ColumnChoice("mean radius", "numeric", 0.0, 0, "median", False, "standard_scale",
                     "number", outliers="clip"),
        ColumnChoice("mean texture", "numeric", 0.04, 0, "knn", True, "standard_scale",
                     "number"),
        ColumnChoice("mean perimeter", "numeric", 0.0, 0, "median", False, "standard_scale",
                     "number", outliers="clip"),
        ColumnChoice("mean area", "numeric", 0.04, 0, "mean", True, "standard_scale", "number"),
        ColumnChoice("mean smoothness", "numeric", 0.0, 0, "median", False, "standard_scale",
                     "number"),
        ColumnChoice("worst radius", "numeric", 0.0, 0, "median", False, "standard_scale",
                     "number"),
        ColumnChoice("site", "categorical", 0.04, 3, "most_frequent", False, "one_hot", "code"),
        ColumnChoice("grade", "categorical", 0.04, 2, "missing_category", False, "target",
                     "one_hot"),
    ]
    return FeaturePlan(columns, "binary", generated=GENERATED)


@pytest.fixture(scope="module")
def models():
    frame, target = _data()
    train = frame.iloc[:450]
    features = list(frame.columns)
    plan = _plan()
    trees, codes = plan.trees()
    lgb = MeshModel(trees, "lightgbm", "binary", features, {"n_estimators": 40},
                    categorical_features=codes).fit(train, target[:450])
    mlp = MeshModel(plan.dense(), "mlp", "binary", features, {"max_iter": 200}).fit(
        train, target[:450])
    knn = MeshModel(plan.dense(), "knn", "binary", features, {}).fit(train, target[:450])
    caruana = EnsembleModel([lgb, mlp, knn], [0.5, 0.3, 0.2]).from_fitted()
    return {"lightgbm": lgb, "mlp": mlp, "knn": knn, "caruana": caruana}, frame.iloc[450:]


def _with_surprises(rows: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows plus rows with unseen categories and every value missing."""
    unseen = rows.head(10).assign(site="west", grade="medium")
    empty = pd.DataFrame([{c: np.nan for c in rows.columns}]).astype(
        {"site": object, "grade": object})
    return pd.concat([rows, unseen, empty], ignore_index=True)


def _columns(frame: pd.DataFrame) -> fastpath.Columns:
    data = {}
    for name in frame.columns:
        if frame[name].dtype == object:
            values = frame[name].astype(object)
            data[name] = values.where(values.notna(), np.nan).to_numpy()
        else:
            data[name] = frame[name].to_numpy(dtype=np.float64)
    return fastpath.Columns(data, len(frame))


@pytest.mark.parametrize("name", ["lightgbm", "mlp", "knn", "caruana"])
def test_compiled_models_answer_like_the_model(models, name):
    fitted, test = models
    model = fitted[name]
    rows = _with_surprises(test)
    compiled = fastpath.compile_model(model)
    columns = _columns(rows)
    assert list(compiled.predict(columns)) == list(model.predict(rows))
    np.testing.assert_allclose(compiled.predict_proba(columns), model.predict_proba(rows),
                               rtol=1e-12, atol=1e-12)
    for i in (0, len(rows) - 11, len(rows) - 1):  # one row at a time (unseen, all missing)
        one = rows.iloc[[i]].reset_index(drop=True)
        assert list(compiled.predict(_columns(one))) == list(model.predict(one))


def test_the_preprocessor_runs_once_per_request(models):
    fitted, test = models
    compiled = fastpath.compile_model(fitted["lightgbm"])
    calls = []
    function = compiled.preprocessor_.function
    compiled.preprocessor_.function = lambda c: calls.append(1) or function(c)
    columns = _columns(test)
    compiled.predict(columns)
    compiled.predict_proba(columns)
    assert len(calls) == 1


def test_blocks_that_cannot_be_compiled_run_their_own_transform(models):
    fitted, test = models
    model = fitted["mlp"]  # dense plan: 'grade' is target-encoded (not compiled)
    blocks = model.preprocessor_.named_steps["columns"].transformers_
    assert any(type(t).__name__ == "Pipeline" and "target" in t.named_steps
               for _, t, _ in blocks)
    compiled = fastpath.compile_model(model)
    rows = _with_surprises(test)
    np.testing.assert_array_equal(compiled.preprocessor_.transform(_columns(rows)),
                                  model.transform(rows))


def _load_app(folder: Path) -> types.ModuleType:
    name = f"fast_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _schema() -> list[dict]:
    return [{"name": c, "kind": "numeric", "dtype": "float64"} for c in NUMERIC] + [
        {"name": c, "kind": "categorical", "dtype": "object"} for c in ("site", "grade")]


def test_generated_app_serves_an_ensemble_compiled(models, tmp_path):
    fitted, test = models
    model = fitted["caruana"]
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    folder = generate_serving_app(path, tmp_path / "app", model_name="cancer-ens",
                                  model_version="2", feature_schema=_schema(),
                                  problem_type="binary",
                                  probe_rows=test.head(30).to_dict("records"))
    probes = json.loads((folder / "probe_rows.json").read_text())
    assert len(probes) == 30 and any(r["site"] is None for r in probes)
    assert "fastpath.py" in (folder / "Dockerfile").read_text()
    rows = _with_surprises(test)
    payload = json.loads(rows.to_json(orient="records"))
    with TestClient(_load_app(folder).app) as client:
        assert client.get("/health").json()["scoring"] == "compiled"
        body = client.post("/predict/batch", json={"rows": payload}).json()
        assert body["predictions"] == list(model.predict(rows))
        got = [[p["benign"], p["malignant"]] for p in body["probabilities"]]
        np.testing.assert_allclose(got, model.predict_proba(rows), rtol=1e-12, atol=1e-12)
        one = client.post("/predict", json=payload[-1]).json()
        assert one["prediction"] == model.predict(rows.tail(1))[0]


def test_app_keeps_the_plain_path_when_the_compiled_model_disagrees(models, tmp_path,
                                                                    monkeypatch):
    fitted, test = models
    path = tmp_path / "model.joblib"
    joblib.dump(fitted["lightgbm"], path)
    folder = generate_serving_app(path, tmp_path / "app", model_name="cancer", model_version="1",
                                  feature_schema=_schema(), problem_type="binary",
                                  probe_rows=test.head(5).to_dict("records"))
    source = (folder / "fastpath.py").read_text()
    # a compiled scorer that flips every label: the startup check must refuse it
    (folder / "fastpath.py").write_text(source + """

_real_compile = compile_model


class _Flipped:
    def __init__(self, model):
        self.inner = _real_compile(model)
        self.classes_ = model.classes_

    def predict(self, columns):
        labels = self.inner.predict(columns)
        return self.classes_[1 - np.searchsorted(self.classes_, labels)]

    def predict_proba(self, columns):
        return self.inner.predict_proba(columns)


def compile_model(model):
    return _Flipped(model)
""")
    module = _load_app(folder)
    with TestClient(module.app) as client:
        scoring = client.get("/health").json()["scoring"]
        assert scoring == "plain (the compiled model disagreed with the model)"
        payload = json.loads(test.to_json(orient="records"))
        body = client.post("/predict/batch", json={"rows": payload}).json()
        assert body["predictions"] == list(fitted["lightgbm"].predict(test))
    monkeypatch.setenv("MLMESH_SERVING_COMPILED", "0")
    with TestClient(_load_app(folder).app) as client:
        assert client.get("/health").json()["scoring"] == "plain (MLMESH_SERVING_COMPILED=0)"


class _Opaque(BaseEstimator):
    """A fitted member the compiler does not know (like an AutoGluon MeshModel)."""

    family = "opaque"

    def __init__(self, inner: MeshModel | None = None) -> None:
        self.inner = inner
        if inner is None:
            return
        self.problem_type = inner.problem_type
        self.feature_columns = list(inner.feature_columns)
        self.classes_ = inner.classes_
        self.estimator_ = inner.estimator_
        self.params = {}

    def fit(self, X: pd.DataFrame, y: object) -> _Opaque:  # fitted already
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        assert isinstance(X, pd.DataFrame)
        return self.inner.predict(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        assert isinstance(X, pd.DataFrame)
        return self.inner.predict_proba(X)


def test_an_ensemble_member_that_cannot_be_compiled_gets_a_frame(models):
    fitted, test = models
    opaque = _Opaque(fitted["lightgbm"])
    model = EnsembleModel([opaque, fitted["mlp"]], [0.5, 0.5]).from_fitted()
    with pytest.raises(fastpath.Unsupported):
        fastpath.compile_model(opaque)
    compiled = fastpath.compile_model(model)
    rows = _with_surprises(test)
    assert list(compiled.predict(_columns(rows))) == list(model.predict(rows))
    np.testing.assert_allclose(compiled.predict_proba(_columns(rows)),
                               model.predict_proba(rows), rtol=1e-12, atol=1e-12)
