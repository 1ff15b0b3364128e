"""Unit tests for mlmesh_publish.registry against a temporary SQLite MLflow store."""

from __future__ import annotations

import joblib
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from mlmesh_publish.registry import (
    ModelFileError,
    RegistrationInputError,
    RegistryConfigError,
    register_model,
)

FEATURES = [
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal_width",
    "colour class",
]


@pytest.fixture()
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return {"uri": uri, "artifacts": (tmp_path / "artifacts").as_uri()}


def test_register_load_predict_and_idempotency(tracking, iris_model_path, iris_data):
    frame, _ = iris_data
    example = frame[FEATURES].head(5)
    common = {
        "registered_name": "iris-species",
        "experiment_id": "exp-001",
        "tags": {"project": "demo", "family": "logistic_regression"},
        "input_example": example,
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "metrics": {"test_accuracy": 0.96},
        "artifact_location": tracking["artifacts"],
    }
    first = register_model(iris_model_path, **common)

    assert first.created is True
    assert (first.name, first.version) == ("iris-species", "1")
    assert first.model_uri == "models:/iris-species/1"

    client = MlflowClient(tracking["uri"])
    version = client.get_model_version("iris-species", "1")
    assert version.tags["experiment_id"] == "exp-001"
    assert version.tags["git_commit"] == common["git_commit"]
    assert version.tags["project"] == "demo"
    assert version.run_id == first.run_id
    assert str(client.get_model_version_by_alias("iris-species", "challenger").version) == "1"
    run = client.get_run(first.run_id)
    assert run.data.tags["experiment_id"] == "exp-001"
    assert run.data.metrics["test_accuracy"] == pytest.approx(0.96)

    # the registered model predicts exactly like the pickled one, through pyfunc
    loaded = mlflow.pyfunc.load_model(first.model_uri)
    original = joblib.load(iris_model_path)
    rows = frame[FEATURES].iloc[::7]
    assert list(loaded.predict(rows)) == list(original.predict(rows))
    assert loaded.metadata.get_input_schema().input_names() == FEATURES

    # redelivery: same experiment -> same version, nothing new
    again = register_model(iris_model_path, **common)
    assert again == first.__class__(**{**first.__dict__, "created": False})
    assert len(client.search_model_versions("name='iris-species'")) == 1

    # a new experiment becomes version 2 and takes the challenger alias
    second = register_model(iris_model_path, **{**common, "experiment_id": "exp-002"})
    assert (second.version, second.created) == ("2", True)
    assert str(client.get_model_version_by_alias("iris-species", "challenger").version) == "2"

    # replaying the first experiment does not move the alias back
    assert register_model(iris_model_path, **common).version == "1"
    assert str(client.get_model_version_by_alias("iris-species", "challenger").version) == "2"


def test_regression_model_without_example(tracking, diabetes_model_path):
    model_path, frame = diabetes_model_path
    result = register_model(
        model_path,
        registered_name="diabetes",
        experiment_id="exp-r1",
        tags={},
        artifact_location=tracking["artifacts"],
    )
    loaded = mlflow.pyfunc.load_model(result.model_uri)
    rows = frame.head(10)
    assert np.allclose(loaded.predict(rows), joblib.load(model_path).predict(rows))
    assert "git_commit" not in MlflowClient(tracking["uri"]).get_model_version("diabetes", "1").tags


def test_errors_are_actionable(tmp_path, monkeypatch, iris_model_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RegistryConfigError, match="set MLFLOW_TRACKING_URI"):
        register_model(iris_model_path, registered_name="m", experiment_id="e", tags={})

    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with pytest.raises(ModelFileError, match="does not exist"):
        register_model(
            tmp_path / "missing.joblib",
            registered_name="m",
            experiment_id="e",
            tags={},
            tracking_uri=uri,
        )
    not_a_model = tmp_path / "list.joblib"
    joblib.dump([1, 2, 3], not_a_model)
    with pytest.raises(ModelFileError, match="without predict"):
        register_model(
            not_a_model, registered_name="m", experiment_id="e", tags={}, tracking_uri=uri
        )
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"this is not a pickle")
    with pytest.raises(ModelFileError, match="cannot be loaded"):
        register_model(garbage, registered_name="m", experiment_id="e", tags={}, tracking_uri=uri)
    with pytest.raises(RegistrationInputError, match="quotes"):
        register_model(
            iris_model_path, registered_name="it's", experiment_id="e", tags={}, tracking_uri=uri
        )
