"""Publishing an ensemble winner: one verified ONNX graph for the blend, served by both
backends."""

import importlib.util
import json
import sys
import uuid
from pathlib import Path

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlmesh_common.modeling import EnsembleModel, MeshModel
from mlmesh_publish.artifacts import export_artifacts
from mlmesh_publish.serving import generate_serving_app

IRIS_NUMERIC = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal_width"]
IRIS_CATEGORICAL = ["colour class"]


def _preprocessor(numeric, categorical):
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )


def _load_app_module(folder: Path):
    name = f"serving_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _json_rows(frame):
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def ensemble_path(tmp_path_factory, iris_data):
    frame, target = iris_data
    pre = _preprocessor(IRIS_NUMERIC, IRIS_CATEGORICAL)
    columns = [*IRIS_NUMERIC, *IRIS_CATEGORICAL]
    members = [MeshModel(pre, fam, "multiclass", columns, {}, seed=0) for fam in ("linear", "knn")]
    model = EnsembleModel(members, [0.6, 0.4]).fit(frame, target)
    path = tmp_path_factory.mktemp("ensemble") / "model.joblib"
    joblib.dump(model, path)
    return path


def test_the_blend_is_one_verified_onnx_graph(ensemble_path, iris_data, tmp_path):
    frame, _ = iris_data
    result = export_artifacts(joblib.load(ensemble_path), tmp_path, frame)
    assert result.onnx == "model.onnx" and result.onnx_status == "verified", result.onnx_reason
    assert result.verification["label_mismatches"] == 0
    assert result.verification["max_proba_diff"] <= 1e-4
    recorded = json.loads((tmp_path / "model.onnx.json").read_text())
    assert recorded["family"] == "ensemble (caruana: linear, knn)"


def _serving_app(ensemble_path, iris_schema, folder, onnx_path=None):
    return generate_serving_app(ensemble_path, folder, model_name="iris-ens", model_version="1",
                                feature_schema=iris_schema, problem_type="multiclass",
                                onnx_path=onnx_path)


def test_serving_app_serves_the_ensemble(ensemble_path, iris_data, iris_schema, tmp_path):
    frame, _ = iris_data
    folder = _serving_app(ensemble_path, iris_schema, tmp_path / "app")
    model = joblib.load(ensemble_path)
    rows = frame.iloc[[0, 60, 120]]
    with TestClient(_load_app_module(folder).app) as client:
        for payload, label, proba in zip(
            _json_rows(rows), model.predict(rows), model.predict_proba(rows), strict=True
        ):
            body = client.post("/predict", json=payload).json()
            assert body["prediction"] == label
            assert body["prediction"] == model.classes_[np.argmax(proba)]
            assert np.allclose(list(body["probabilities"].values()), proba)


def test_the_onnx_backend_serves_the_ensemble(ensemble_path, iris_data, iris_schema, tmp_path,
                                              monkeypatch):
    """The graph holds a KNN, which onnxruntime runs slower than the model: the app serves it
    with sklearn by default and with onnxruntime on request."""
    frame, _ = iris_data
    exported = export_artifacts(joblib.load(ensemble_path), tmp_path / "published", frame)
    assert exported.onnx_status == "verified", exported.onnx_reason
    folder = _serving_app(ensemble_path, iris_schema, tmp_path / "app",
                          onnx_path=tmp_path / "published" / "model.onnx")
    assert json.loads((folder / "model.onnx.json").read_text())["preferred"] is False
    assert '"sklearn"' in (folder / "k8s" / "deployment.yaml").read_text()
    monkeypatch.delenv("MLMESH_SERVING_BACKEND", raising=False)
    with TestClient(_load_app_module(folder).app) as client:
        assert client.get("/health").json()["scoring"] != "onnx"
    monkeypatch.setenv("MLMESH_SERVING_BACKEND", "onnx")
    model = joblib.load(ensemble_path)
    rows = frame.iloc[[0, 60, 120, 140]]
    with TestClient(_load_app_module(folder).app) as client:
        assert client.get("/health").json()["scoring"] == "onnx"
        body = client.post("/predict/batch", json={"rows": _json_rows(rows)}).json()
    assert body["predictions"] == list(model.predict(rows))
    for got, proba in zip(body["probabilities"], model.predict_proba(rows), strict=True):
        assert np.allclose(list(got.values()), proba, atol=1e-4)
