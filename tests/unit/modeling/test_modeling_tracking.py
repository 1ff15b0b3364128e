"""log_run: MLflow runs with params/metrics/tags/artifacts, idempotent by tag."""

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from mlmesh_common.modeling import (
    RUN_ID_TAG,
    TrackingConfigError,
    TrackingInputError,
    log_run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", str(root / "artifacts")


@pytest.fixture
def env(store, monkeypatch):
    uri, artifacts = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return MlflowClient(tracking_uri=uri), artifacts


def test_logs_a_complete_run(env, tmp_path):
    client, artifacts = env
    report = tmp_path / "report.json"
    report.write_text('{"ok": true}')
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "roc.txt").write_text("curve")
    run_id = log_run(
        "exp-complete",
        "lightgbm-cv",
        params={"n_estimators": 50, "learning_rate": 0.1, "nested": {"a": 1}},
        metrics={"cv_mean": 0.93, "cv_std": 0.01, "truncated": False},
        tags={"family": "lightgbm", "experiment_id": "e1"},
        artifacts=[report, folder],
        artifact_location=artifacts,
    )
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "lightgbm-cv"
    assert run.data.params == {
        "n_estimators": "50",
        "learning_rate": "0.1",
        "nested": '{"a": 1}',
    }
    assert run.data.metrics == {"cv_mean": 0.93, "cv_std": 0.01, "truncated": 0.0}
    assert run.data.tags["family"] == "lightgbm"
    names = {a.path for a in client.list_artifacts(run_id)}
    assert names == {"report.json", "plots"}
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/roc.txt"]


def test_idempotent_by_tag_and_parent(env):
    client, artifacts = env
    parent = log_run(
        "exp-idem", "parent", params={}, metrics={}, tags={}, artifact_location=artifacts
    )
    kwargs = dict(
        params={"C": 1.0},
        metrics={"auc": 0.9},
        tags={"stage": "train"},
        parent_run_id=parent,
        run_id_tag="event-123",
    )
    first = log_run("exp-idem", "child", **kwargs)
    second = log_run("exp-idem", "child", **kwargs)
    assert first == second
    exp = client.get_experiment_by_name("exp-idem")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.stage = 'train'")
    assert [r.info.run_id for r in runs] == [first]
    assert runs[0].data.tags["mlflow.parentRunId"] == parent
    assert runs[0].data.tags[RUN_ID_TAG] == "event-123"
    other = log_run("exp-idem", "child", **{**kwargs, "run_id_tag": "event-456"})
    assert other != first


def test_stale_half_written_run_is_replaced(env):
    client, artifacts = env
    log_run("exp-stale", "warmup", params={}, metrics={}, tags={}, artifact_location=artifacts)
    exp = client.get_experiment_by_name("exp-stale")
    stale = client.create_run(exp.experiment_id, tags={RUN_ID_TAG: "event-9"})  # left RUNNING
    run_id = log_run(
        "exp-stale", "retry", params={}, metrics={"m": 1}, tags={}, run_id_tag="event-9"
    )
    assert run_id != stale.info.run_id
    active = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{RUN_ID_TAG}` = 'event-9'",
        run_view_type=ViewType.ACTIVE_ONLY,
    )
    assert [r.info.run_id for r in active] == [run_id]


def test_bad_input(env, tmp_path):
    with pytest.raises(TrackingInputError, match="must be a number"):
        log_run("exp-bad", "r", params={}, metrics={"m": "high"}, tags={})
    with pytest.raises(TrackingInputError, match="do not exist"):
        log_run("exp-bad", "r", params={}, metrics={}, tags={}, artifacts=[tmp_path / "x"])
    with pytest.raises(TrackingInputError, match="single quotes"):
        log_run("exp-bad", "r", params={}, metrics={}, tags={}, run_id_tag="a'b")


def test_needs_a_tracking_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingConfigError, match="MLFLOW_TRACKING_URI"):
        log_run("exp", "r", params={}, metrics={}, tags={})
