"""Wiring: a faust-streaming app. It keeps each published model's reference data in a table,
windows prediction.logged per model and reports evidently data drift as drift.detected."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
import pandas as pd
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

from mlmesh.events.v1.common_pb2 import ArtifactRef
from mlmesh.events.v1.envelope_pb2 import DeadLetter, Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentRequested, ExperimentSpec, StageProgress
from mlmesh.events.v1.monitoring_pb2 import DriftDetected
from mlmesh_common import __version__, topics
from mlmesh_common.artifacts import experiment_prefix, open_store
from mlmesh_common.envelope import decode, encode, new_envelope, to_dict
from mlmesh_common.errors import PermanentError
from mlmesh_common.settings import Settings
from mlmesh_monitor.drift import compute_drift
from mlmesh_monitor.windows import ModelWindows

log = logging.getLogger("mlmesh.monitor")
settings = Settings()
WINDOW_ROWS = int(os.environ.get("MLMESH_MONITOR_WINDOW_ROWS", "200"))
WINDOW_SECONDS = float(os.environ.get("MLMESH_MONITOR_WINDOW_SECONDS", "300"))
#: Retraining policy: on dataset drift, request a new experiment (at most once per cooldown).
RETRAIN = os.environ.get("MLMESH_MONITOR_RETRAIN", "false").lower() in ("1", "true", "yes")
RETRAIN_COOLDOWN_S = float(os.environ.get("MLMESH_MONITOR_RETRAIN_COOLDOWN_S", "3600"))
PRODUCER = Producer(service="monitor", version=__version__, instance=settings.instance)

ROWS_IN = Counter("mlmesh_monitor_rows_total", "served rows received", ["model"])
WINDOWS = Counter("mlmesh_monitor_windows_total", "windows checked for drift", ["model",
                                                                                 "drifted"])
SHARE_DRIFTED = Gauge("mlmesh_monitor_share_drifted", "share of drifted features in the last "
                      "window", ["model"])
MODELS = Gauge("mlmesh_monitor_models", "published models with reference data")

app = faust.App(
    "mlmesh.monitor", broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
    key_serializer="raw", value_serializer="raw", topic_partitions=settings.partitions,
    topic_replication_factor=1, producer_enable_idempotence=False,
    broker_session_timeout=settings.session_timeout_ms / 1000,
    broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
    web_host=settings.http_host, web_port=settings.http_port or 6066, web_in_thread=False,
    consumer_auto_offset_reset="earliest", logging_config=None, loghandlers=[])

published_topic = app.topic(topics.MODEL_PUBLISHED.name, key_type=bytes, value_type=bytes)
predictions_topic = app.topic(topics.PREDICTION_LOGGED.name, key_type=bytes, value_type=bytes)
ground_truth_topic = app.topic(topics.GROUND_TRUTH_LOGGED.name, key_type=bytes,
                               value_type=bytes)
#: model name -> JSON of its reference data (artifact), version and source experiment.
references = app.Table("references", default=None, key_type=str, value_type=bytes)
windows = ModelWindows(size=WINDOW_ROWS, seconds=WINDOW_SECONDS)
_reference_frames: dict[str, tuple[str, pd.DataFrame]] = {}


async def _send(topic: topics.Topic, payload: Any, key: str, experiment_id: str) -> None:
    env = new_envelope(topic, payload, experiment_id=experiment_id, producer=PRODUCER)
    await app.producer.send_and_wait(topic.name, key.encode(), encode(env), partition=None,
                                     timestamp=None, headers=None)


async def _dead_letter(topic: topics.Topic, raw: bytes, exc: Exception) -> None:
    letter = DeadLetter(source_topic=topic.name, consumer_group="mlmesh.monitor",
                        error_type=type(exc).__name__, error_message=str(exc),
                        original_value=raw or b"", attempt=1)
    letter.failed_at.GetCurrentTime()
    letter.consumer.CopyFrom(PRODUCER)
    await app.producer.send_and_wait(topic.dlq, b"", letter.SerializeToString(),
                                     partition=None, timestamp=None, headers=None)
    log.error("sent a message of %s to %s: %s", topic.name, topic.dlq, exc)


def _published_model(raw: bytes) -> bytes:
    """Re-key model.published by model name so the table shard matches prediction.logged."""
    try:
        _, event = decode(raw, topics.MODEL_PUBLISHED)
    except PermanentError:
        return b""
    return event.registered_model.encode()


@app.agent(published_topic)
async def on_published(stream: faust.StreamT) -> None:
    async for raw in stream.group_by(_published_model, name="by-model"):
        await _guarded(topics.MODEL_PUBLISHED, raw, _remember_reference)


async def _guarded(topic: topics.Topic, raw: bytes, handler: Any) -> None:
    """Run one message's handler; a failure goes to the DLQ instead of crashing the agent."""
    try:
        env, event = decode(raw, topic)
        await handler(env, event)
    except Exception as exc:
        log.exception("handling %s failed", topic.name)
        await _dead_letter(topic, raw, exc)


async def _remember_reference(env: Any, event: Any) -> None:
    if event.skipped:
        return
    references[event.registered_model] = json.dumps({
        "version": event.model_version, "experiment_id": env.experiment_id,
        "project": event.committed.docs.selection.dataset.spec.project,
        "reference": {"uri": event.reference_data.uri, "sha256": event.reference_data.sha256},
        "features": list(event.feature_columns),
        "spec": to_dict(event.committed.docs.selection.dataset.spec)}).encode()
    MODELS.set(len(references))
    await _send(topics.STAGE_PROGRESS, StageProgress(
        stage="monitor", state=StageProgress.STATE_RUNNING, percent=100,
        message=f"watching {event.registered_model} v{event.model_version} for drift"),
        env.experiment_id, env.experiment_id)
    log.info("watching %s v%s", event.registered_model, event.model_version)


def _reference_frame(model: str, info: dict[str, Any]) -> pd.DataFrame:
    cached = _reference_frames.get(model)
    if cached and cached[0] == info["reference"]["sha256"]:
        return cached[1]
    store = open_store(settings.resolved_artifact_root, settings.s3_endpoint_url)
    with tempfile.TemporaryDirectory() as tmp:
        path = store.get_file(info["reference"]["uri"], Path(tmp) / "reference.parquet",
                              info["reference"]["sha256"])
        frame = pd.read_parquet(path)
    _reference_frames[model] = (info["reference"]["sha256"], frame)
    return frame


def _check_window(model: str, info: dict[str, Any], window: pd.DataFrame) -> DriftDetected:
    """Drift of one closed window against the model's reference data, report stored."""
    reference = _reference_frame(model, info)
    columns = [c for c in info["features"] if c in window.columns]
    store = open_store(settings.resolved_artifact_root, settings.s3_endpoint_url)
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / f"drift-{int(time.time() * 1000)}.html"
        result = compute_drift(reference, window[columns], columns=columns, html_path=html)
        key = (f"{experiment_prefix(info['project'], info['experiment_id'], 'monitor')}/"
               f"{html.name}")
        stored = store.put_file(html, key, "text/html")
    return DriftDetected(model_name=model, model_version=info["version"],
                         dataset_drift=result.dataset_drift, share_drifted=result.share_drifted,
                         drifted_columns=result.drifted_columns, window_rows=len(window),
                         report=ArtifactRef(uri=stored.uri, sha256=stored.sha256,
                                            size_bytes=stored.size_bytes,
                                            media_type="text/html"),
                         source_experiment_id=info["experiment_id"])


@app.agent(predictions_topic)
async def on_predictions(stream: faust.StreamT) -> None:
    async for raw in stream:
        await _guarded(topics.PREDICTION_LOGGED, raw, _check_predictions)


async def _check_predictions(env: Any, event: Any) -> None:
    rows = json.loads(event.rows_json)
    ROWS_IN.labels(event.model_name).inc(len(rows))
    stored = references.get(event.model_name)
    if stored is None:
        log.warning("predictions for %s, which has no reference data; ignored",
                    event.model_name)
        return
    info = json.loads(stored)
    for window in windows.add(event.model_name, rows, time.time()):
        drift = await asyncio.to_thread(_check_window, event.model_name, info,
                                        pd.DataFrame(window))
        WINDOWS.labels(event.model_name, str(drift.dataset_drift).lower()).inc()
        SHARE_DRIFTED.labels(event.model_name).set(drift.share_drifted)
        await _send(topics.DRIFT_DETECTED, drift, event.model_name, info["experiment_id"])
        if drift.dataset_drift and RETRAIN:
            await _maybe_retrain(event.model_name, info)


async def _maybe_retrain(model: str, info: dict[str, Any]) -> None:
    """Request a retraining experiment, lineage kept through parent_experiment_id."""
    now = time.time()
    if now - info.get("last_retrain_at", 0.0) < RETRAIN_COOLDOWN_S:
        return
    spec = ExperimentSpec()
    json_format.ParseDict(info["spec"], spec)
    spec.parent_experiment_id = info["experiment_id"]
    spec.tags["mlmesh.trigger"] = "drift"
    request = ExperimentRequested(spec=spec, requested_by=f"monitor:{model}")
    request.requested_at.GetCurrentTime()
    experiment_id = f"{info['experiment_id'][:8]}-retrain-{int(now)}"
    await _send(topics.EXPERIMENT_REQUESTED, request, experiment_id, experiment_id)
    references[model] = json.dumps({**info, "last_retrain_at": now}).encode()
    log.info("drift on %s: requested retraining experiment %s", model, experiment_id)


@app.agent(ground_truth_topic)
async def on_ground_truth(stream: faust.StreamT) -> None:
    async for raw in stream:
        await _guarded(topics.GROUND_TRUTH_LOGGED, raw, _record_ground_truth)


async def _record_ground_truth(env: Any, event: Any) -> None:
    # Performance decay needs outcomes joined to requests: the "Operate" issue adds it.
    log.info("ground truth for %d requests of %s received", len(event.request_ids),
             event.model_name)


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    return web.json({"service": "monitor", "ok": True})


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    ready = app.producer is not None and app.consumer is not None
    return web.json({"ready": ready}, status=200 if ready else 503)


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST)
