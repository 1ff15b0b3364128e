"""The monitor end to end on the real broker: the monitor as its own process learns a
published model, sees shifted traffic and inverted outcomes, reports drift and decay with
evidently reports, and requests one retraining (parent id set) inside its cooldown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from mlmesh.events.v1.common_pb2 import PROBLEM_TYPE_BINARY, ArtifactRef
from mlmesh.events.v1.delivery_pb2 import ModelPublished
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.monitoring_pb2 import GroundTruthLogged, PredictionLogged
from mlmesh_common import topics
from mlmesh_common.artifacts import open_store
from mlmesh_common.broker import free_port
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.settings import Settings

pytestmark = pytest.mark.service
FEATURES = ["x1", "x2"]


def _rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    frame = pd.DataFrame({"x1": rng.normal(shift, 1, n), "x2": rng.normal(-shift, 1, n)})
    frame["y"] = (frame["x1"] - frame["x2"] + rng.normal(0, 0.5, n) > 0).astype(int)
    return frame


def _published(home: Path, experiment_id: str, model_name: str, *,
               refit: bool = False) -> tuple[ModelPublished, object]:
    """A model, its prepared test split and its reference data, as publish leaves them.

    With ``refit``, select's folder says the published model is a refit on every row and
    holds the model the test split scored (here one fitted on 40 rows, to tell them apart).
    """
    rng = np.random.default_rng(0)
    store = open_store(str(home / "artifacts"))
    work = home / "fixture"
    (work / "prepared").mkdir(parents=True)
    train, test = _rows(rng, 400), _rows(rng, 200)
    test.to_parquet(work / "prepared" / "test.parquet", index=False)
    model = LogisticRegression().fit(train[FEATURES], train["y"])
    joblib.dump(model, work / "model.joblib")
    train[FEATURES].to_parquet(work / "reference.parquet", index=False)
    prefix = f"projects/mon/experiments/{experiment_id}"
    folder = store.put_dir(work / "prepared", f"{prefix}/prep", "test")
    stored = {n: store.put_file(work / n, f"{prefix}/publish/{n}")
              for n in ("model.joblib", "reference.parquet")}
    event = ModelPublished(registered_model=model_name, model_version="1",
                           feature_columns=FEATURES)
    event.model.CopyFrom(ArtifactRef(uri=stored["model.joblib"].uri,
                                     sha256=stored["model.joblib"].sha256))
    event.reference_data.CopyFrom(ArtifactRef(uri=stored["reference.parquet"].uri,
                                              sha256=stored["reference.parquet"].sha256))
    selection = event.committed.docs.selection
    selection.metric, selection.test_score = "roc_auc", 0.9
    dataset = selection.dataset
    dataset.target, dataset.problem_type = "y", PROBLEM_TYPE_BINARY
    dataset.prepared.CopyFrom(ArtifactRef(uri=folder.uri, sha256=folder.sha256))
    dataset.spec.project, dataset.spec.target = "mon", "y"
    dataset.spec.dataset_uri = "file:///data.csv"
    dataset.spec.stages.extend(["acquire", "publish"])
    if refit:
        (work / "select").mkdir()
        scored = LogisticRegression().fit(train[FEATURES].head(40), train["y"].head(40))
        joblib.dump(scored, work / "select" / "evaluated_model.joblib")
        joblib.dump(model, work / "select" / "model.joblib")
        (work / "select" / "selection.json").write_text(json.dumps(
            {"model_path": "model.joblib", "evaluated_model_path": "evaluated_model.joblib"}))
        stored_select = store.put_dir(work / "select", f"{prefix}/select", "test")
        selection.selection.CopyFrom(ArtifactRef(uri=stored_select.uri,
                                                 sha256=stored_select.sha256))
    return event, model


def _metric(url: str, name: str) -> float:
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


async def _wait_until(probe: Callable[[], bool], what: str, proc: subprocess.Popen, log: Path,
                      timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"monitor exited:\n{log.read_text()[-3000:]}")
        if await asyncio.to_thread(probe):
            return
        await asyncio.sleep(0.3)
    pytest.fail(f"{what} within {timeout_s} s:\n{log.read_text()[-3000:]}")


async def _wait_metric(url: str, name: str, value: float, proc: subprocess.Popen,
                       log: Path, timeout_s: float) -> None:
    await _wait_until(lambda: _metric(url, name) >= value, f"{name} did not reach {value}",
                      proc, log, timeout_s)


async def _wait_watched(url: str, model: str, proc: subprocess.Popen, log: Path,
                        timeout_s: float) -> None:
    """Wait until the monitor watches version 1 of this test's model (the broker is shared)."""
    await _wait_until(lambda: _model_metric(url, "mlmesh_monitor_watched_version", model) >= 1,
                      f"{model} v1 not watched", proc, log, timeout_s)


async def test_drift_and_decay_request_one_retraining_with_lineage(
        mesh_settings: Settings, tmp_path: Path) -> None:
    bootstrap = mesh_settings.kafka_bootstrap
    experiment_id = uuid.uuid4().hex[:16]
    model_name = f"mlmesh-mon-{uuid.uuid4().hex[:8]}"
    published, model = _published(mesh_settings.resolved_home, experiment_id, model_name,
                                  refit=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    log = tmp_path / "monitor.log"
    env = {**os.environ, "MLMESH_KAFKA_BOOTSTRAP": bootstrap,
           "MLMESH_HOME": str(mesh_settings.resolved_home), "MLMESH_HTTP_PORT": str(port),
           "MLMESH_PARTITIONS": "2", "MLMESH_SESSION_TIMEOUT_MS": "6000",
           "MLMESH_HEARTBEAT_INTERVAL_MS": "1000", "MLMESH_MONITOR_WINDOW_ROWS": "100",
           "MLMESH_MONITOR_DECAY_WINDOW_ROWS": "100", "MLMESH_MONITOR_RETRAIN": "true",
           "MLMESH_MONITOR_RETRAIN_COOLDOWN_S": "3600"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlmesh_monitor"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    consumer = AIOKafkaConsumer(topics.DRIFT_DETECTED.name, topics.EXPERIMENT_REQUESTED.name,
                                bootstrap_servers=bootstrap, group_id=f"t-{uuid.uuid4().hex}",
                                auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    try:
        serving = Producer(service="serving", version=f"{model_name}:1")
        await producer.send_and_wait(topics.MODEL_PUBLISHED.name, encode(new_envelope(
            topics.MODEL_PUBLISHED, published, experiment_id=experiment_id,
            producer=Producer(service="publish", version="test"))), key=experiment_id.encode())
        await _wait_watched(url, model_name, proc, log, timeout_s=90)

        # 200 shifted rows in 8 events (two windows), then inverted outcomes for 100 of them
        rng = np.random.default_rng(1)
        shifted = _rows(rng, 200, shift=2.0)
        ids = [uuid.uuid4().hex for _ in range(200)]
        labels = model.predict(shifted[FEATURES])
        proba = model.predict_proba(shifted[FEATURES])
        for start in range(0, 200, 25):
            part = slice(start, start + 25)
            event = PredictionLogged(
                model_name=model_name, model_version="1",
                rows_json=json.dumps(shifted[FEATURES].iloc[part].to_dict("records")),
                predictions_json=json.dumps([int(v) for v in labels[part]]),
                probabilities_json=json.dumps([{"0": p[0], "1": p[1]} for p in proba[part]]),
                request_ids=ids[part])
            await producer.send(topics.PREDICTION_LOGGED.name, encode(new_envelope(
                topics.PREDICTION_LOGGED, event, experiment_id="", producer=serving)),
                key=model_name.encode())
        # the world changed: outcomes now fall opposite to what the model learned (both
        # classes present, so roc_auc is defined); they come after the predictions
        score = (shifted["x1"] - shifted["x2"]).to_numpy()
        truth = [int(v < np.median(score)) for v in score]
        await _wait_metric(url, "mlmesh_monitor_rows_total", 200, proc, log, timeout_s=30)
        outcomes = GroundTruthLogged(model_name=model_name, model_version="1",
                                     request_ids=ids[:100],
                                     outcomes_json=json.dumps(truth[:100]))
        await producer.send_and_wait(topics.GROUND_TRUTH_LOGGED.name, encode(new_envelope(
            topics.GROUND_TRUTH_LOGGED, outcomes, experiment_id="", producer=serving)),
            key=model_name.encode())

        drifts, retrains = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                len(drifts) >= 2 and retrains and
                _metric(url, "mlmesh_monitor_reports_throttled_total") >= 1):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    topic = topics.topic_by_name(record.topic)
                    env, payload = decode(record.value, topic)
                    if topic is topics.DRIFT_DETECTED and payload.model_name == model_name:
                        drifts.append(payload)
                    elif (topic is topics.EXPERIMENT_REQUESTED
                          and payload.spec.parent_experiment_id == experiment_id):
                        retrains.append((env, payload))
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        await consumer.stop()
        await producer.stop()
        proc.terminate()
        proc.wait(30)

    store = open_store(mesh_settings.resolved_artifact_root)
    by_kind = {k: d for d in drifts for k in d.kinds}
    assert {"data_drift", "prediction_drift", "performance_decay"} <= set(by_kind), drifts
    data = by_kind["data_drift"]
    assert data.dataset_drift and set(data.drifted_columns) == set(FEATURES)
    assert data.prediction_drift and data.source_experiment_id == experiment_id
    assert data.report.media_type == "text/html" and store.exists(data.report.uri)
    report = json.loads(Path(data.report_json.uri.removeprefix("file://")).read_text())
    assert report["check"]["kinds"] == list(data.kinds) and "evidently" in report
    decay = by_kind["performance_decay"]
    assert decay.metric == "roc_auc" and decay.window_score < decay.reference_score
    # The reference is the score of the model the test split scored, not of the refit.
    home = mesh_settings.resolved_home / "fixture"
    test = pd.read_parquet(home / "prepared" / "test.parquet")
    scored = joblib.load(home / "select" / "evaluated_model.joblib")
    auc = {name: roc_auc_score(test["y"], m.predict_proba(test[FEATURES])[:, 1])
           for name, m in (("scored", scored), ("published", model))}
    assert auc["scored"] != pytest.approx(auc["published"], abs=1e-4), auc
    assert decay.reference_score == pytest.approx(auc["scored"], abs=1e-9), auc
    assert decay.labeled_rows == 100 and decay.decay > 0.1
    # one retraining for both triggers: the second fell inside the cooldown
    assert len(retrains) == 1, retrains
    env, request = retrains[0]
    assert request.spec.parent_experiment_id == experiment_id
    assert request.spec.dataset_uri == "file:///data.csv" and request.spec.target == "y"
    assert env.experiment_id in {d.retrain_experiment_id for d in drifts}
    assert any(d.retrain_decision.startswith("cooldown") for d in drifts), drifts


def _model_metric(url: str, name: str, model: str) -> float:
    """One model's sample of a labelled metric (the broker is shared with other tests)."""
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and f'model="{model}"' in line)


async def test_a_backlog_waiting_at_start_is_ingested_whole(
        mesh_settings: Settings, tmp_path: Path) -> None:
    """A monitor that starts with served events already waiting reads every one of them.

    faust's worker resumed its stream flow before seeking to the committed offsets, so
    records fetched in between were cleared from the stream queues and never read again: a
    run of a few dozen to a few hundred events was lost (seen in make bench-monitor).
    """
    bootstrap = mesh_settings.kafka_bootstrap
    experiment_id = uuid.uuid4().hex[:16]
    model_name = f"mlmesh-mon-{uuid.uuid4().hex[:8]}"
    published, _ = _published(mesh_settings.resolved_home, experiment_id, model_name)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    log = tmp_path / "monitor.log"
    env = {**os.environ, "MLMESH_KAFKA_BOOTSTRAP": bootstrap,
           "MLMESH_HOME": str(mesh_settings.resolved_home), "MLMESH_HTTP_PORT": str(port),
           "MLMESH_PARTITIONS": "2", "MLMESH_SESSION_TIMEOUT_MS": "6000",
           "MLMESH_HEARTBEAT_INTERVAL_MS": "1000", "MLMESH_MONITOR_WINDOW_ROWS": "1000",
           "MLMESH_MONITOR_RETRAIN": "false"}

    def start() -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "mlmesh_monitor"], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                linger_ms=20, max_batch_size=1_000_000)
    await producer.start()
    proc = start()
    try:
        await producer.send_and_wait(topics.MODEL_PUBLISHED.name, encode(new_envelope(
            topics.MODEL_PUBLISHED, published, experiment_id=experiment_id,
            producer=Producer(service="publish", version="test"))), key=experiment_id.encode())
        await _wait_watched(url, model_name, proc, log, timeout_s=90)
        proc.terminate()
        proc.wait(60)
        # the backlog: 20,000 one-row events in large batches while no monitor runs
        rows = _rows(np.random.default_rng(2), 20_000)[FEATURES].to_dict("records")
        serving = Producer(service="serving", version=f"{model_name}:1")
        sent = [await producer.send(topics.PREDICTION_LOGGED.name, encode(new_envelope(
            topics.PREDICTION_LOGGED, PredictionLogged(
                model_name=model_name, model_version="1", rows_json=json.dumps([row]),
                predictions_json="[1]", request_ids=[uuid.uuid4().hex]),
            experiment_id="", producer=serving)), key=model_name.encode()) for row in rows]
        await asyncio.gather(*sent)
        proc = start()
        deadline, seen = time.monotonic() + 120, 0.0
        while time.monotonic() < deadline and seen < len(rows) and proc.poll() is None:
            await asyncio.sleep(0.5)
            seen = await asyncio.to_thread(_model_metric, url, "mlmesh_monitor_rows_total",
                                           model_name)
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        await producer.stop()
        proc.terminate()
        proc.wait(30)
    assert seen == len(rows), f"{seen:.0f} of {len(rows)} served rows ingested"
