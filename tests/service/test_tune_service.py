"""tune on the real broker: a coordinator and two worker instances share one study."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from pathlib import Path

import pytest
from kafka_io import read_topic, send_raw

from mlmesh.events.v1.common_pb2 import ProblemType
from mlmesh.events.v1.dataset_pb2 import DatasetPrepared
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh.events.v1.training_pb2 import Candidate, TrainingCompleted, TuneTrialCompleted
from mlmesh_common import topics
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.runtime import Service
from mlmesh_common.runtime._context import artifact_ref
from mlmesh_tune.service import service as tune

pytestmark = pytest.mark.service
HELPER = Path(__file__).resolve().parents[1] / "unit" / "modeling" / "prepared_data.py"


def _prepared_helper():
    spec = importlib.util.spec_from_file_location("mlmesh_tune_service_prepared", HELPER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _instance(settings, groups: str, name: str, handled: list[str]) -> Service:
    svc = Service(
        tune.name, settings=settings.model_copy(update={"groups": groups, "instance": name})
    )
    for route in tune.routes:
        fn = route.fn

        async def counted(ctx, event, _fn=fn, _name=name, _group=route.group):
            if _group == "tune-worker":
                handled.append(_name)
            await _fn(ctx, event)

        svc.routes.append(type(route)(route.topic, route.group, route.stage, counted))
    return svc


async def test_two_workers_tune_one_study(mesh_settings, tmp_path, monkeypatch):
    # MLflow's file store: a fresh SQLite tracking database takes ~20 s to migrate.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    helper = _prepared_helper()
    folder = helper.make_prepared(
        tmp_path / "prepared", helper.breast_cancer_frame(), "target", "binary"
    )
    settings = mesh_settings.model_copy(
        update={"mlflow_tracking_uri": f"file://{tmp_path / 'mlruns'}"}
    )
    handled: list[str] = []
    services = [
        _instance(settings, "tune-coordinator", "coordinator", handled),
        _instance(settings, "tune-worker", "worker-a", handled),
        _instance(settings, "tune-worker", "worker-b", handled),
    ]
    experiment = f"t-{uuid.uuid4().hex[:10]}"
    stored = services[0].store.put_dir(
        folder, f"projects/p/experiments/{experiment}/prep", "test/0"
    )
    dataset = DatasetPrepared(
        spec=ExperimentSpec(
            project="p",
            stages=["tune"],
            max_trials=6,
            time_budget_s=300,
            seed=3,
            objectives=["score", "latency"],
        ),
        prepared=artifact_ref(stored),
        target="target",
        problem_type=ProblemType.PROBLEM_TYPE_BINARY,
        metric="roc_auc",
        n_folds=3,
    )
    trained = [
        Candidate(
            family=f,
            cv_mean=s,
            metric="roc_auc",
            source="train",
            greater_is_better=True,
            params_json="{}",
        )
        for f, s in (("linear", 0.99), ("knn", 0.97), ("dummy", 0.5))
    ]
    env = new_envelope(
        topics.TRAINING_COMPLETED,
        TrainingCompleted(dataset=dataset, candidates=trained),
        experiment_id=experiment,
        producer=Producer(service="test"),
    )
    await asyncio.gather(*(s.start() for s in services))
    try:
        await send_raw(
            settings.kafka_bootstrap, topics.TRAINING_COMPLETED.name, experiment, encode(env)
        )
        records = await read_topic(
            settings.kafka_bootstrap, topics.TUNING_COMPLETED.name, experiment, 1, timeout_s=90
        )
    finally:
        await asyncio.gather(*(s.stop() for s in services))
    assert records, "no tuning.completed within 90 s"
    _, done = decode(records[0].value, topics.TUNING_COMPLETED)
    assert done.n_trials == 6 and done.study_name == f"mlmesh-{experiment}"
    tuned = [c for c in done.candidates if c.source == "tune"]
    assert tuned and {c.family for c in tuned} <= {"linear", "knn"}
    assert all(c.oof_predictions.uri and c.latency_ms > 0 and c.size_bytes > 0 for c in tuned)
    assert done.pareto_front and all(c.pareto_optimal for c in done.pareto_front)
    assert done.history.uri.endswith("history.csv") and done.plots.uri
    assert done.best.cv_mean >= 0.99
    # Both worker instances evaluated trials (consecutive trials go to consecutive partitions).
    assert {"worker-a", "worker-b"} <= set(handled), handled
    results = await read_topic(
        settings.kafka_bootstrap, topics.TUNE_TRIAL_COMPLETED.name, experiment, 6, timeout_s=10
    )
    numbers = {decode(r.value, topics.TUNE_TRIAL_COMPLETED)[1].trial_id for r in results}
    assert len(numbers) == 6
    assert isinstance(decode(results[0].value, topics.TUNE_TRIAL_COMPLETED)[1], TuneTrialCompleted)
