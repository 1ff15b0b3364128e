"""train-gpu on the real broker: a planner and two workers train the spec's families, and
every candidate carries its OOF predictions in the artifact store, latency and size."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from kafka_io import read_topic, send_raw

from mlmesh.events.v1.common_pb2 import ProblemType
from mlmesh.events.v1.dataset_pb2 import DatasetPrepared
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common import topics
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.modeling import load_oof
from mlmesh_common.runtime import Service
from mlmesh_common.runtime._context import artifact_ref
from mlmesh_train_gpu.planning import FAMILY_WEIGHTS
from mlmesh_train_gpu.service import service as train_gpu

pytestmark = pytest.mark.service
HELPER = Path(__file__).resolve().parents[1] / "unit" / "modeling" / "prepared_data.py"
FAMILIES = ["dummy", "linear", "knn", "svm_linear", "mlp"]


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _instance(settings, groups: str, name: str, handled: list[str]) -> Service:
    svc = Service(
        train_gpu.name, settings=settings.model_copy(update={"groups": groups, "instance": name})
    )
    for route in train_gpu.routes:

        async def counted(ctx, event, _fn=route.fn, _name=name, _group=route.group):
            if _group == "train-gpu-worker":
                handled.append(_name)
            await _fn(ctx, event)

        svc.routes.append(type(route)(route.topic, route.group, route.stage, counted))
    return svc


async def test_planner_and_two_workers_train_the_spec_families(
    mesh_settings, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLMESH_DEVICE", "cpu")
    helper = _module("mlmesh_train_service_prepared", HELPER)
    folder = helper.make_prepared(
        tmp_path / "prepared", helper.penguins_frame(), "species", "multiclass"
    )
    settings = mesh_settings.model_copy(
        update={"mlflow_tracking_uri": f"file://{tmp_path / 'mlruns'}"}
    )
    handled: list[str] = []
    services = [
        _instance(settings, "train-gpu-planner", "planner", handled),
        _instance(settings, "train-gpu-worker", "worker-a", handled),
        _instance(settings, "train-gpu-worker", "worker-b", handled),
    ]
    experiment = f"t-{uuid.uuid4().hex[:10]}"
    store = services[0].store
    stored = store.put_dir(folder, f"projects/p/experiments/{experiment}/prep", "test/0")
    dataset = DatasetPrepared(
        spec=ExperimentSpec(
            project="p", stages=["train"], time_budget_s=120, seed=3, families=FAMILIES
        ),
        prepared=artifact_ref(stored),
        target="species",
        problem_type=ProblemType.PROBLEM_TYPE_MULTICLASS,
        metric="accuracy",
        n_folds=3,
    )
    env = new_envelope(
        topics.DATASET_PREPARED,
        dataset,
        experiment_id=experiment,
        producer=Producer(service="test"),
    )
    await asyncio.gather(*(s.start() for s in services))
    try:
        await send_raw(settings.kafka_bootstrap, topics.DATASET_PREPARED.name, experiment,
                       encode(env))
        records = await read_topic(
            settings.kafka_bootstrap, topics.TRAINING_COMPLETED.name, experiment, 1, timeout_s=90
        )
        # The planner's job events (caused by dataset.prepared), not the copies a worker
        # handed to the other one (caused by the job event), which land elsewhere.
        jobs = {}
        for family in FAMILIES:
            found = await read_topic(settings.kafka_bootstrap, topics.TRAIN_JOB.name,
                                     f"{experiment}/train-{family}", 2, timeout_s=3)
            jobs[family] = next(r for r in found
                                if decode(r.value, topics.TRAIN_JOB)[0].causation_id
                                == env.event_id)
    finally:
        await asyncio.gather(*(s.stop() for s in services))
    assert records, "no training.completed within 90 s"
    _, done = decode(records[0].value, topics.TRAINING_COMPLETED)
    assert sorted(c.family for c in done.candidates) == sorted(FAMILIES)
    assert done.best_family != "dummy"
    for candidate in done.candidates:
        assert candidate.latency_ms > 0 and candidate.size_bytes > 0
        assert candidate.device == "cpu" and not candidate.fallback_from
        ref = candidate.oof_predictions
        # write-once artifacts: <job>/<content version>/oof.parquet
        assert re.search(rf"/train-{candidate.family}/[0-9a-f]{{12}}/oof\.parquet$", ref.uri)
        assert ref.sha256
        local = store.get_file(
            ref.uri, tmp_path / "oof" / candidate.family / "oof.parquet", ref.sha256
        )
        oof, classes = load_oof(local)
        assert classes == ["Adelie", "Chinstrap", "Gentoo"] and not np.isnan(oof).any()
    # One job per family, spread over the workers, plus any job a worker handed to the other
    # because that one had nothing queued (counted here by both).
    assert len(handled) >= len(FAMILIES) and {"worker-a", "worker-b"} <= set(handled)
    # The planner places the jobs heaviest first on consecutive partitions, so the round-robin
    # assignor gives the workers alternate jobs (not whatever the key hash picks).
    # (The test broker's topics have 2 partitions.)
    by_weight = sorted(FAMILIES, key=lambda f: -FAMILY_WEIGHTS[f])  # stable, as the planner
    assert [jobs[f].partition for f in by_weight] == [
        topics.spread_partition(experiment, i, 2) for i in range(len(FAMILIES))
    ]
