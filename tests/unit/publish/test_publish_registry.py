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
        "description": "mlmesh experiment exp-001; git commit 0123456",
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
    assert version.description == "mlmesh experiment exp-001; git commit 0123456"
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


def _register_scored(_model_path, experiment_id: str, metric: str, score: float, uri: str,
                     name: str = "gate-model"):
    """A version carrying the gate tags as publish writes them (no model upload: the gate
    reads only tags and aliases)."""
    from mlmesh_publish.registry import GATE_METRIC_TAG, GATE_SCORE_TAG, RegisteredModel

    client = MlflowClient(uri)
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name, source="file:///nowhere/model",
        tags={GATE_METRIC_TAG: metric, GATE_SCORE_TAG: repr(score),
              "experiment_id": experiment_id})
    client.set_registered_model_alias(name, "challenger", version.version)
    return RegisteredModel(name, str(version.version),
                           f"models:/{name}/{version.version}", "")


def test_champion_gate_promotes_only_a_better_model(tracking, iris_model_path):
    from mlmesh_publish.registry import promote_if_better

    uri = tracking["uri"]
    client = MlflowClient(uri)

    def gate(registered, score, metric="accuracy", higher=True):
        return promote_if_better(registered.name, registered.version, metric=metric,
                                 score=score, greater_is_better=higher, tracking_uri=uri)

    first = _register_scored(iris_model_path, "exp-a", "accuracy", 0.90, uri)
    outcome = gate(first, 0.90)
    assert (outcome.alias, outcome.promoted) == ("champion", True)

    better = _register_scored(iris_model_path, "exp-b", "accuracy", 0.95, uri)
    outcome = gate(better, 0.95)
    assert (outcome.alias, outcome.promoted) == ("champion", True)
    assert outcome.champion_version == "1" and outcome.champion_score == pytest.approx(0.90)
    assert str(client.get_model_version_by_alias("gate-model", "champion").version) == "2"

    worse = _register_scored(iris_model_path, "exp-c", "accuracy", 0.93, uri)
    outcome = gate(worse, 0.93)
    assert (outcome.alias, outcome.promoted) == ("challenger", False)
    assert "does not beat champion v2" in outcome.reason
    assert str(client.get_model_version_by_alias("gate-model", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("gate-model", "challenger").version) == "3"

    tie = _register_scored(iris_model_path, "exp-d", "accuracy", 0.95, uri)
    assert gate(tie, 0.95).promoted is False  # a tie keeps the champion

    # replaying the gate of the current champion (redelivery) keeps it champion
    assert gate(better, 0.95).promoted is True

    # another metric cannot be compared: the champion stays
    other = _register_scored(iris_model_path, "exp-e", "log_loss", 0.01, uri)
    outcome = gate(other, 0.01, metric="log_loss", higher=False)
    assert not outcome.promoted and "no comparable log_loss" in outcome.reason

    # direction-aware: for rmse lower is better (a second model name in the same store)
    first = _register_scored(iris_model_path, "exp-r1", "rmse", 10.0, uri, "rmse-model")
    promote_if_better(first.name, first.version, metric="rmse", score=10.0,
                      greater_is_better=False, tracking_uri=uri)
    higher = _register_scored(iris_model_path, "exp-r2", "rmse", 12.0, uri, "rmse-model")
    assert not promote_if_better(higher.name, higher.version, metric="rmse", score=12.0,
                                 greater_is_better=False, tracking_uri=uri).promoted
    lower = _register_scored(iris_model_path, "exp-r3", "rmse", 8.0, uri, "rmse-model")
    assert promote_if_better(lower.name, lower.version, metric="rmse", score=8.0,
                             greater_is_better=False, tracking_uri=uri).promoted
    champion = MlflowClient(uri).get_model_version_by_alias("rmse-model", "champion")
    assert str(champion.version) == lower.version
