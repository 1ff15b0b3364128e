"""Tracker adapters: MLflow (temp store), W&B offline (temp dir, no network), composite."""

import pytest
from mlflow.tracking import MlflowClient

from mlmesh_common.tracking import (
    RUN_ID_TAG,
    CompositeTracker,
    MlflowTracker,
    NoActiveRunError,
    TrackingConfigError,
    TrackingInputError,
    WandbTracker,
    make_tracker,
    tracker_names,
)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.png").write_bytes(b"png")
    (tmp_path / "oof.parquet").write_bytes(b"parquet")
    return tmp_path


def test_mlflow_nested_runs_with_artifacts(mlflow_uri, files, tmp_path):
    tracker = MlflowTracker(mlflow_uri, artifact_location=str(tmp_path / "art"))
    with tracker.run("exp", "study", tags={"stage": "tune"}, run_id_tag="ev-1") as parent:
        tracker.log_params({"n_trials": 2})
        tracker.log_artifact(files / "plots")
        for i in range(2):
            with tracker.run("exp", f"trial-{i}") as child:
                tracker.log_metrics({"score": 0.9 + i / 100}, step=i)
                tracker.log_artifact(files / "oof.parquet")
                tracker.set_tags({"trial": i})
    client = MlflowClient(mlflow_uri)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.params == {"n_trials": "2"}
    assert run.data.tags[RUN_ID_TAG] == "ev-1"
    assert [a.path for a in client.list_artifacts(parent, "plots")] == ["plots/roc.png"]
    child_run = client.get_run(child)
    assert child_run.data.tags["mlflow.parentRunId"] == parent
    assert child_run.data.metrics == {"score": 0.91} and child_run.data.tags["trial"] == "1"
    assert [a.path for a in client.list_artifacts(child)] == ["oof.parquet"]
    # a redelivered event finds the finished run and logs nothing twice
    again = MlflowTracker(mlflow_uri)
    assert again.start_run("exp", "study", run_id_tag="ev-1") == parent and again.reused
    again.log_params({"n_trials": 3})
    again.end_run()
    assert client.get_run(parent).data.params == {"n_trials": "2"}


def test_failed_run_and_bad_input(mlflow_uri, tmp_path):
    tracker = MlflowTracker(mlflow_uri)
    with pytest.raises(RuntimeError), tracker.run("exp", "boom") as run_id:
        raise RuntimeError("fit failed")
    assert MlflowClient(mlflow_uri).get_run(run_id).info.status == "FAILED"
    with pytest.raises(NoActiveRunError):
        tracker.log_metrics({"x": 1})
    with tracker.run("exp", "bad"):
        with pytest.raises(TrackingInputError, match="infinite"):
            tracker.log_metrics({"x": float("inf")})
        with pytest.raises(TrackingInputError, match="does not exist"):
            tracker.log_artifact(tmp_path / "missing.txt")


def test_settings_choose_the_trackers(monkeypatch, mlflow_uri, tmp_path):
    monkeypatch.delenv("MLMESH_TRACKERS", raising=False)
    assert tracker_names() == ["mlflow"]
    monkeypatch.setenv("MLMESH_TRACKERS", "mlflow, wandb")
    assert tracker_names() == ["mlflow", "wandb"]
    tracker = make_tracker(tracking_uri=mlflow_uri, wandb_dir=tmp_path)
    assert isinstance(tracker, CompositeTracker)
    assert [t.name for t in tracker.trackers] == ["mlflow", "wandb"]
    with pytest.raises(TrackingConfigError, match="unknown tracker 'neptune'"):
        tracker_names("mlflow,neptune")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingConfigError, match="MLFLOW_TRACKING_URI"):
        make_tracker("mlflow")


def test_wandb_offline_and_composite(monkeypatch, mlflow_uri, files, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb_tracker = WandbTracker(tmp_path / "wandb")
    tracker = CompositeTracker([MlflowTracker(mlflow_uri), wandb_tracker])
    with tracker.run("mlmesh/demo", "select", tags={"stage": "select"}) as parent:
        tracker.log_params({"family": "ensemble"})
        tracker.log_metrics({"test_score_marker": 0.97})
        tracker.log_artifact(files / "oof.parquet")
        with tracker.run("mlmesh/demo", "member-linear") as child:
            tracker.log_metrics({"member_weight_marker": 0.5})
    client = MlflowClient(mlflow_uri)
    assert client.get_run(parent).data.metrics == {"test_score_marker": 0.97}
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == parent
    dirs = list(wandb_tracker.run_dirs.values())
    assert len(dirs) == 2 and all(d.is_dir() and "offline-run" in d.name for d in dirs)
    logs = [next(d.glob("*.wandb")).read_bytes() for d in dirs]
    assert b"test_score_marker" in logs[0] and b"ensemble" in logs[0]
    assert b"member_weight_marker" in logs[1]
