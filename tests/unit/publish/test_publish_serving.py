"""Unit tests for mlmesh_publish.serving: generate the app, run it in-process, query it."""

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

from mlmesh_publish.serving import (
    FeatureSchemaError,
    ServingModelError,
    build_fields,
    generate_serving_app,
)


def _load_app_module(folder: Path) -> types.ModuleType:
    name = f"generated_app_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _json_rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as a client would send them: NaN/None -> null."""
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def iris_app(tmp_path_factory, iris_model_path, iris_schema):
    folder = generate_serving_app(
        iris_model_path,
        tmp_path_factory.mktemp("serving") / "iris",
        model_name="iris-species",
        model_version="3",
        feature_schema=iris_schema,
        problem_type="multiclass",
    )
    module = _load_app_module(folder)
    with TestClient(module.app) as client:
        yield folder, client


def test_folder_is_self_contained(iris_app, iris_model_path):
    folder, _ = iris_app
    assert {p.name for p in folder.iterdir()} >= {
        "app.py",
        "model.joblib",
        "requirements.txt",
        "Dockerfile",
        "README.md",
    }
    assert (folder / "model.joblib").read_bytes() == iris_model_path.read_bytes()
    app_source = (folder / "app.py").read_text()
    assert "mlmesh_publish" not in app_source
    compile(app_source, "app.py", "exec")
    requirements = (folder / "requirements.txt").read_text().splitlines()
    pinned = {line.split("==")[0]: line for line in requirements if "==" in line}
    for dist in ("fastapi", "uvicorn", "pydantic", "prometheus-client", "scikit-learn", "pandas"):
        assert dist in pinned, dist
    import sklearn

    assert pinned["scikit-learn"] == f"scikit-learn=={sklearn.__version__}"
    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.startswith("# Prediction API")
    assert f"FROM python:{sys.version_info.major}.{sys.version_info.minor}-slim" in dockerfile
    assert 'CMD ["uvicorn", "app:app"' in dockerfile
    readme = (folder / "README.md").read_text()
    assert "iris-species" in readme and "/predict/batch" in readme
    assert "| `colour class` | categorical | str | str |" in readme
    assert "Classes: setosa, versicolor, virginica" in readme


def test_single_predictions_match_the_model(iris_app, iris_model_path, iris_data):
    _, client = iris_app
    frame, _ = iris_data
    model = joblib.load(iris_model_path)
    rows = frame.iloc[[0, 7, 60, 75, 120, 149]]
    expected = model.predict(rows)
    expected_proba = model.predict_proba(rows)
    for payload, label, proba in zip(_json_rows(rows), expected, expected_proba, strict=True):
        response = client.post("/predict", json=payload)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["prediction"] == label
        assert list(body["probabilities"]) == ["setosa", "versicolor", "virginica"]
        assert np.allclose(list(body["probabilities"].values()), proba)


def test_batch_predictions_match_the_model_including_missing_values(
    iris_app, iris_model_path, iris_data
):
    _, client = iris_app
    frame, _ = iris_data
    model = joblib.load(iris_model_path)
    missing = frame["sepal width (cm)"].isna() | frame["colour class"].isna()
    assert missing.sum() >= 10  # the batch exercises imputation of null fields
    response = client.post("/predict/batch", json={"rows": _json_rows(frame)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == list(model.predict(frame))
    assert np.allclose(
        [list(p.values()) for p in body["probabilities"]], model.predict_proba(frame)
    )


def test_absent_fields_are_missing_values(iris_app, iris_model_path):
    _, client = iris_app
    model = joblib.load(iris_model_path)
    payload = {"petal length (cm)": 5.9, "petal_width": 2.1}
    response = client.post("/predict", json=payload)
    assert response.status_code == 200, response.text
    expected_row = pd.DataFrame(
        [
            {
                "sepal length (cm)": np.nan,
                "sepal width (cm)": np.nan,
                "petal length (cm)": 5.9,
                "petal_width": 2.1,
                "colour class": np.nan,
            }
        ]
    ).astype({"colour class": object})
    assert response.json()["prediction"] == model.predict(expected_row)[0]


def test_bad_input_gives_422_naming_the_field(iris_app):
    _, client = iris_app
    response = client.post("/predict", json={"sepal length (cm)": "not a number"})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert errors[0]["loc"] == ["body", "sepal length (cm)"]

    response = client.post("/predict", json={"petal_widht": 1.0})  # typo is not ignored
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "petal_widht"]

    response = client.post("/predict/batch", json={"rows": []})
    assert response.status_code == 422

    response = client.post("/predict/batch",
                           json={"rows": [{"petal_width": 1.0}, {"petal_width": "wide"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "rows", 1, "petal_width"]
    response = client.post("/predict/batch", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_health_metrics_and_openapi(iris_app):
    _, client = iris_app
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "model_name": "iris-species",
        "model_version": "3",
        "problem_type": "multiclass",
        "n_features": 5,
        "prediction_logging": False,
        "backend": "sklearn",
        "auth": False,
        "rate_limit": None,
        "scoring": "compiled",
    }
    client.post("/predict", json={"petal_width": 0.2})
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'mlmesh_model_requests_total{endpoint="predict",outcome="ok"}' in metrics.text
    assert 'mlmesh_model_info{model_name="iris-species",model_version="3"} 1.0' in metrics.text
    schema = client.get("/openapi.json").json()
    batch_body = schema["paths"]["/predict/batch"]["post"]["requestBody"]
    assert batch_body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchRequest"}
    batch_schema = schema["components"]["schemas"]["BatchRequest"]
    assert batch_schema["properties"]["rows"]["items"] == {"$ref": "#/components/schemas/Row"}
    row_schema = schema["components"]["schemas"]["Row"]["properties"]
    assert set(row_schema) == {
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal_width",
        "colour class",
    }


def test_regression_app_with_int_and_boolean_features(tmp_path, diabetes_model_path):
    model_path, frame = diabetes_model_path
    schema = [
        {"name": "age", "kind": "numeric", "dtype": "float64"},
        {"name": "bmi", "kind": "numeric", "dtype": "float64"},
        {"name": "bp", "kind": "numeric", "dtype": "float64"},
        {"name": "visits", "kind": "numeric", "dtype": "int64"},
        {"name": "smoker", "kind": "boolean", "dtype": "bool"},
    ]
    folder = generate_serving_app(
        model_path,
        tmp_path / "diabetes",
        model_name="diabetes",
        model_version="1",
        feature_schema=schema,
        problem_type="regression",
    )
    model = joblib.load(model_path)
    rows = frame.head(25)
    with TestClient(_load_app_module(folder).app) as client:
        response = client.post("/predict/batch", json={"rows": _json_rows(rows)})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "probabilities" not in body
        assert np.allclose(body["predictions"], model.predict(rows))
        single = client.post("/predict", json=_json_rows(rows.head(1))[0]).json()
        assert set(single) == {"prediction", "request_id"}
        assert single["prediction"] == pytest.approx(float(model.predict(rows.head(1))[0]))
        bad = client.post("/predict", json={"smoker": "perhaps"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "smoker"]


class _RecordingLogger:
    instances: list[_RecordingLogger] = []

    def __init__(self, model_name: str, model_version: str) -> None:
        self.model_name, self.model_version = model_name, model_version
        self.events: list[str] = []
        self.logged: list[tuple[list[dict], list]] = []
        self.request_ids: list[list[str]] = []
        self.probabilities: list[list[dict] | None] = []
        self.outcomes: list[tuple[list[str], list]] = []

    @classmethod
    def from_env(cls, *, model_name: str, model_version: str) -> _RecordingLogger:
        logger = cls(model_name, model_version)
        cls.instances.append(logger)
        return logger

    async def start(self) -> None:
        self.events.append("start")

    async def log(self, rows: list[dict], predictions: list, *, request_ids: list[str],
                  probabilities: list[dict] | None = None) -> None:
        self.logged.append((rows, predictions))
        self.request_ids.append(request_ids)
        self.probabilities.append(probabilities)

    async def log_outcomes(self, request_ids: list[str], outcomes: list) -> None:
        self.outcomes.append((request_ids, outcomes))

    async def stop(self) -> None:
        self.events.append("stop")


def test_predictions_are_logged_when_kafka_is_configured(
    tmp_path, monkeypatch, iris_model_path, iris_schema, iris_data
):
    package = types.ModuleType("mlmesh_common")
    package.__path__ = []
    submodule = types.ModuleType("mlmesh_common.prediction_log")
    submodule.PredictionLogger = _RecordingLogger
    monkeypatch.setitem(sys.modules, "mlmesh_common", package)
    monkeypatch.setitem(sys.modules, "mlmesh_common.prediction_log", submodule)
    monkeypatch.setenv("MLMESH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    _RecordingLogger.instances.clear()

    folder = generate_serving_app(
        iris_model_path,
        tmp_path / "app",
        model_name="iris-species",
        model_version="4",
        feature_schema=iris_schema,
        problem_type="multiclass",
    )
    frame, _ = iris_data
    rows = _json_rows(frame.head(3))
    with TestClient(_load_app_module(folder).app) as client:
        assert client.get("/health").json()["prediction_logging"] is True
        single = client.post("/predict", json=rows[0]).json()
        batch = client.post("/predict/batch", json={"rows": rows}).json()
        feedback = client.post("/feedback", json={"request_ids": batch["request_ids"][:2],
                                                  "outcomes": ["setosa", "virginica"]})
        mismatched = client.post("/feedback", json={"request_ids": ["a", "b"],
                                                    "outcomes": ["setosa"]})

    (logger,) = _RecordingLogger.instances
    assert (logger.model_name, logger.model_version) == ("iris-species", "4")
    assert logger.events == ["start", "stop"]
    assert logger.logged[0] == ([rows[0]], [single["prediction"]])
    assert logger.logged[1] == (rows, batch["predictions"])
    # request ids go back to the caller and into the log; probabilities are logged too
    assert logger.request_ids == [[single["request_id"]], batch["request_ids"]]
    assert len(set(batch["request_ids"])) == 3
    assert logger.probabilities[0] == [single["probabilities"]]
    assert logger.outcomes == [(batch["request_ids"][:2], ["setosa", "virginica"])]
    assert feedback.status_code == 202 and feedback.json() == {"accepted": 2}
    assert mismatched.status_code == 422 and "one outcome per request id" in mismatched.text


def test_missing_prediction_logger_fails_startup_clearly(
    tmp_path, monkeypatch, iris_model_path, iris_schema
):
    monkeypatch.setitem(sys.modules, "mlmesh_common.prediction_log", None)  # import fails
    monkeypatch.setenv("MLMESH_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    folder = generate_serving_app(
        iris_model_path,
        tmp_path / "app",
        model_name="m",
        model_version="1",
        feature_schema=iris_schema,
        problem_type="multiclass",
    )
    app = _load_app_module(folder).app
    with pytest.raises(RuntimeError, match="install mlmesh-common"):
        with TestClient(app):
            pass


def test_schema_must_match_the_model(tmp_path, iris_model_path, iris_schema):
    with pytest.raises(FeatureSchemaError, match=r"missing \['colour class'\]"):
        generate_serving_app(
            iris_model_path,
            tmp_path,
            model_name="m",
            model_version="1",
            feature_schema=iris_schema[:-1],
            problem_type="multiclass",
        )
    with pytest.raises(FeatureSchemaError, match="kind 'text'"):
        build_fields([{"name": "comment", "kind": "text", "dtype": "str"}])
    with pytest.raises(FeatureSchemaError, match="appears twice"):
        build_fields([{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "numeric"}])
    with pytest.raises(ServingModelError, match="problem_type 'ranking'"):
        generate_serving_app(
            iris_model_path,
            tmp_path,
            model_name="m",
            model_version="1",
            feature_schema=iris_schema,
            problem_type="ranking",
        )
    with pytest.raises(ServingModelError, match="does not exist"):
        generate_serving_app(
            tmp_path / "nope.joblib",
            tmp_path,
            model_name="m",
            model_version="1",
            feature_schema=iris_schema,
            problem_type="multiclass",
        )


def test_field_identifiers_are_valid_and_unique():
    fields = build_fields(
        [
            {"name": "class", "kind": "categorical", "dtype": "str"},
            {"name": "1st value", "kind": "numeric", "dtype": "float64"},
            {"name": "1st-value", "kind": "numeric", "dtype": "float64"},
            {"name": "model_id", "kind": "categorical", "dtype": "int64"},
            {"name": "schema", "kind": "boolean", "dtype": "bool"},
            {"name": "_private", "kind": "numeric", "dtype": "float64"},
        ]
    )
    idents = [f.ident for f in fields]
    assert len(set(idents)) == len(idents)
    assert all(i.isidentifier() and not i.startswith("_") for i in idents)
    assert [f.pytype for f in fields] == ["str", "float", "float", "int", "bool", "float"]


def test_awkward_column_names_and_integer_labels(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    quoted, accented, hostile = 'a "quoted" \\ name', "naïve côté", "x'); import os; ('"
    frame = pd.DataFrame(
        {
            quoted: rng.normal(size=80),
            accented: rng.choice(["oui", "non"], 80),
            hostile: rng.normal(size=80),
        }
    )
    target = (frame[quoted] + (frame[accented] == "oui") > 0.5).astype(int)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer([("cat", OneHotEncoder(), [accented])], remainder="passthrough"),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, target)
    model.feature_columns = list(frame.columns)
    model_path = tmp_path / "m.joblib"
    joblib.dump(model, model_path)
    folder = generate_serving_app(
        model_path,
        tmp_path / "app",
        model_name='weird "name"',
        model_version="1",
        feature_schema=[
            {"name": quoted, "kind": "numeric", "dtype": "float64"},
            {"name": accented, "kind": "categorical", "dtype": "object"},
            {"name": hostile, "kind": "numeric", "dtype": "float64"},
        ],
        problem_type="binary",
    )
    rows = frame.head(8)
    with TestClient(_load_app_module(folder).app) as client:
        body = client.post("/predict/batch", json={"rows": _json_rows(rows)}).json()
        assert body["predictions"] == model.predict(rows).tolist()
        assert all(isinstance(p, int) for p in body["predictions"])
        assert list(body["probabilities"][0]) == ["0", "1"]
        assert client.get("/health").json()["model_name"] == 'weird "name"'


def test_feedback_without_prediction_logging_says_how_to_enable_it(
    tmp_path, iris_model_path, iris_schema, monkeypatch
):
    monkeypatch.delenv("MLMESH_KAFKA_BOOTSTRAP", raising=False)
    folder = generate_serving_app(iris_model_path, tmp_path / "app", model_name="m",
                                  model_version="1", feature_schema=iris_schema,
                                  problem_type="multiclass")
    with TestClient(_load_app_module(folder).app) as client:
        response = client.post("/feedback", json={"request_ids": ["x"], "outcomes": ["setosa"]})
    assert response.status_code == 503
    assert "MLMESH_KAFKA_BOOTSTRAP" in response.json()["detail"]
