"""Wiring: plain aiokafka consumers for the topics, a faust-streaming app for the
references table (a changelogged global table, recovered on restart) and the worker (web
pages, timers, tasks).

- model.published: read in group ``mlmesh.monitor.models`` (offsets committed after each
  processed message); the model version's references are remembered in the table (training
  features from publish; test-split predictions and scores computed here, once per version).
- prediction.logged: read in group ``mlmesh.monitor`` (offsets committed after each
  processed batch), decoded in bulk, appended to the model
  version's tumbling window; each closed window is checked for data and prediction drift.
- ground_truth.logged: same consumer; joined with pending predictions by request id; each
  closed window of joined rows is scored against the test score (performance decay).
- A window that drifted or decayed gets an evidently report (HTML and JSON) in the
  artifact store, a drift.detected event, and, when the model's retraining policy allows,
  an experiment.requested with parent_experiment_id (claimed in the ledger first).

No topic is read through a faust agent: a faust worker that starts with a non-empty table
changelog could stop fetching its stream partitions after recovery (reproduced here: a
model.published waiting at start was never read, in about one start in three; upstream
faust-streaming issues #175 and #523), and its recovery could skip offsets of the served
topics. aiokafka's consumer commits only what was processed, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import faust
import joblib
import orjson
import pandas as pd
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError
from google.protobuf import json_format
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from mlmesh.events.v1.common_pb2 import ArtifactRef
from mlmesh.events.v1.envelope_pb2 import DeadLetter, Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentRequested, ExperimentSpec, StageProgress
from mlmesh.events.v1.monitoring_pb2 import DriftDetected
from mlmesh_common import __version__, problems, topics
from mlmesh_common.artifacts import experiment_prefix, open_store
from mlmesh_common.envelope import decode, encode, new_envelope, to_dict
from mlmesh_common.errors import PermanentError
from mlmesh_common.ledger import open_ledger
from mlmesh_common.settings import Settings
from mlmesh_monitor.monitor import (
    ClosedWindow,
    ModelReference,
    Monitor,
    WindowCheck,
    check_performance,
    check_window,
)
from mlmesh_monitor.policy import (
    RetrainLedger,
    RetrainPolicy,
    policy_from_settings,
    resolve_policy,
)
from mlmesh_monitor.reference import (
    PREDICTION,
    TARGET,
    labels_as_text,
    prediction_columns,
    reference_predictions,
    scored_model_file,
)
from mlmesh_monitor.report import write_report

log = logging.getLogger("mlmesh.monitor")
settings = Settings()
PRODUCER = Producer(service="monitor", version=__version__, instance=settings.instance)
DEFAULT_POLICY = policy_from_settings(settings)
#: Served events (prediction.logged, ground_truth.logged) processed per fetch, at most.
BATCH_EVENTS = 20_000
#: Consumer group of the served-events reader (the topic registry's group of the monitor).
SERVED_GROUP = topics.group("monitor").group_id
#: Topics the served-events consumer reads (in group SERVED_GROUP).
SERVED_TOPICS = (topics.PREDICTION_LOGGED, topics.GROUND_TRUTH_LOGGED)
#: Topics the published-models consumer reads (in group topics.MONITOR_MODELS_GROUP_ID).
PUBLISHED_TOPICS = (topics.MODEL_PUBLISHED,)

# Metric names are stable: dashboards (deploy/, the gateway) are built from them.
EVENTS_IN = Counter("mlmesh_monitor_events_total", "events ingested", ["topic"])
ROWS_IN = Counter("mlmesh_monitor_rows_total", "served rows received", ["model"])
IGNORED = Counter("mlmesh_monitor_ignored_rows_total",
                  "served rows of models without reference data", ["model"])
WINDOWS = Counter("mlmesh_monitor_windows_total", "windows checked for drift",
                  ["model", "drifted"])
PERF_WINDOWS = Counter("mlmesh_monitor_performance_windows_total",
                       "windows of joined ground truth scored", ["model", "decayed"])
SHARE_DRIFTED = Gauge("mlmesh_monitor_share_drifted",
                      "share of drifted features in the last window", ["model"])
PREDICTION_DRIFT = Gauge("mlmesh_monitor_prediction_drift",
                         "1 when the last window's predictions drifted, else 0", ["model"])
PREDICTION_SCORE = Gauge("mlmesh_monitor_prediction_drift_score",
                         "score of the deciding prediction drift test in the last window",
                         ["model", "stattest"])
DECAY = Gauge("mlmesh_monitor_performance_decay",
              "relative metric loss vs the test score in the last scored window", ["model"])
WINDOW_SCORE = Gauge("mlmesh_monitor_window_score", "metric on the last scored window",
                     ["model", "metric"])
DETECTED = Counter("mlmesh_monitor_drift_detected_total", "drift.detected by kind",
                   ["model", "kind"])
RETRAINS = Counter("mlmesh_monitor_retrains_total", "retraining experiments requested",
                   ["model"])
RETRAINS_SKIPPED = Counter("mlmesh_monitor_retrains_skipped_total",
                           "drifted windows that did not request retraining", ["model", "why"])
JOINED = Counter("mlmesh_monitor_ground_truth_total", "outcomes received",
                 ["model", "matched"])
PENDING = Gauge("mlmesh_monitor_join_pending", "predictions waiting for ground truth",
                ["model"])
CHECK_SECONDS = Histogram("mlmesh_monitor_check_seconds",
                          "time to compute one window's drift or decay", ["kind"],
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
REPORT_SECONDS = Histogram("mlmesh_monitor_report_seconds",
                           "time to render and store one evidently report",
                           buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
THROTTLED = Counter("mlmesh_monitor_reports_throttled_total",
                    "drifted windows not reported (within monitor_report_interval_s of the "
                    "last report)", ["model"])
MODELS = Gauge("mlmesh_monitor_models", "published models with reference data")
WATCHED_VERSION = Gauge("mlmesh_monitor_watched_version",
                        "latest model version watched for drift (numeric versions)", ["model"])
#: The faust app's id and consumer group: it reads only the references changelog.
TABLES_APP_ID = f"{topics.MONITOR_MODELS_GROUP_ID}.tables"

app = faust.App(
    TABLES_APP_ID, broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
    key_serializer="raw", value_serializer="raw", topic_partitions=settings.partitions,
    topic_replication_factor=1, producer_enable_idempotence=False,
    broker_session_timeout=settings.session_timeout_ms / 1000,
    broker_heartbeat_interval=settings.heartbeat_interval_ms / 1000,
    web_host=settings.http_host, web_port=settings.http_port or 6066, web_in_thread=False,
    consumer_auto_offset_reset="earliest", logging_config=None, loghandlers=[])

#: model name -> JSON: {"latest": version, "versions": {version: reference info}}. Global
#: (every worker holds every model) and written from a task, so the changelog partition comes
#: from the key (use_partitioner); one partition, as faust advises for global tables.
references = app.GlobalTable("references", default=None, key_type=str, value_type=bytes,
                             partitions=1, recovery_buffer_size=1, use_partitioner=True)
monitor = Monitor(window_rows=settings.monitor_window_rows,
                  window_seconds=settings.monitor_window_seconds,
                  decay_window_rows=settings.monitor_decay_window_rows,
                  join_window_s=settings.monitor_join_window_s,
                  join_max_pending=settings.monitor_join_max_pending)
_contexts: dict[tuple[str, str], tuple[str, ModelReference | None]] = {}
_ledger: RetrainLedger | None = None
_checks: asyncio.Queue | None = None
_renderer: ProcessPoolExecutor | None = None
#: (model key, window kind) -> when its last drift.detected went out (monotonic seconds).
_last_report: dict[tuple[Any, str], float] = {}
_KEEP_VERSIONS = 5


def _retrain_ledger() -> RetrainLedger:
    global _ledger
    if _ledger is None:
        _ledger = RetrainLedger(open_ledger(settings.resolved_ledger_url))
    return _ledger


async def _send(topic: topics.Topic, payload: Any, key: str, experiment_id: str,
                event_id: str | None = None, correlation_id: str = "") -> None:
    env = new_envelope(topic, payload, experiment_id=experiment_id, producer=PRODUCER,
                       event_id=event_id, correlation_id=correlation_id)
    await app.producer.send_and_wait(topic.name, key.encode(), encode(env), partition=None,
                                     timestamp=None, headers=None)


async def _dead_letter(topic: topics.Topic, raw: bytes, exc: Exception) -> None:
    # The registry's monitor group for every topic (model.published included, though it is
    # committed under mlmesh.monitor.models): DLQ entries name the group operators know.
    letter = DeadLetter(source_topic=topic.name, consumer_group=SERVED_GROUP,
                        error_type=type(exc).__name__, error_message=str(exc),
                        original_value=raw or b"", attempt=1)
    letter.failed_at.GetCurrentTime()
    letter.consumer.CopyFrom(PRODUCER)
    await app.producer.send_and_wait(topic.dlq, b"", letter.SerializeToString(),
                                     partition=None, timestamp=None, headers=None)
    log.error("sent a message of %s to %s: %s", topic.name, topic.dlq, exc)


# ---------------------------------------------------------------- model.published


@app.task
async def published_models() -> None:
    """model.published, one message at a time, committed once its reference is stored."""
    await app.tables.recovery.completed.wait()  # the references table is loaded
    _show_watched()
    consumer = _consumer(PUBLISHED_TOPICS, topics.MONITOR_MODELS_GROUP_ID,
                         max_poll_records=1)
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1)
            for records in batches.values():
                for record in records:
                    await _guarded(topics.MODEL_PUBLISHED, record.value, _remember_reference)
            await _commit(consumer, batches)
    finally:
        await consumer.stop()


def _consumer(read: tuple[topics.Topic, ...], group_id: str,
              **options: Any) -> AIOKafkaConsumer:
    """A consumer that commits by hand (``_commit``) after each processed batch."""
    return AIOKafkaConsumer(
        *(topic.name for topic in read), bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_poll_interval_ms=settings.max_poll_interval_ms, **options)


def _show_watched() -> None:
    """Metrics of the models in the (recovered) table."""
    for model in list(references.keys()):
        _set_watched(model, json.loads(references[model])["latest"])
    MODELS.set(len(references))


def _set_watched(model: str, version: str) -> None:
    try:
        WATCHED_VERSION.labels(model).set(float(version))
    except ValueError:  # a registry with non-numeric versions: the gauge says nothing
        pass


async def _guarded(topic: topics.Topic, raw: bytes, handler: Any) -> None:
    """Run one message's handler; a failure goes to the DLQ instead of crashing the agent."""
    try:
        env, event = decode(raw, topic)
        await handler(env, event)
    except Exception as exc:
        log.exception("handling %s failed", topic.name)
        await _dead_letter(topic, raw, exc)


def _model_info(model: str, version: str = "") -> dict[str, Any] | None:
    """The stored reference info of a model version (the latest when unknown)."""
    stored = references.get(model)
    if stored is None:
        return None
    entry = json.loads(stored)
    versions = entry.get("versions", {})
    return versions.get(version) or versions.get(entry.get("latest"))


async def _remember_reference(env: Any, event: Any) -> None:
    if event.skipped:
        return
    stored = references.get(event.registered_model)
    entry = json.loads(stored) if stored else {"versions": {}}
    known = entry["versions"].get(event.model_version)
    if known and known["reference"]["sha256"] == event.reference_data.sha256:
        log.info("already watching %s v%s (a redelivered model.published)",
                 event.registered_model, event.model_version)
        return
    selection = event.committed.docs.selection
    dataset = selection.dataset
    info: dict[str, Any] = {
        "model": event.registered_model, "version": event.model_version,
        "experiment_id": env.experiment_id, "project": dataset.spec.project,
        "reference": {"uri": event.reference_data.uri, "sha256": event.reference_data.sha256},
        "features": list(event.feature_columns), "spec": to_dict(dataset.spec),
        "problem_type": problems.from_proto(dataset.problem_type) if dataset.problem_type
        else "", "metric": selection.metric, "test_score": selection.test_score,
        "predictions": None, "scores": {}, "classes": []}
    try:
        info.update(await asyncio.to_thread(_build_prediction_reference, event, info))
    except Exception as exc:  # noqa: BLE001 - data drift works without the prediction side
        log.warning("no prediction reference for %s v%s (prediction drift and decay off): "
                    "%s", event.registered_model, event.model_version, exc)
    versions = {**entry["versions"], event.model_version: info}
    keep = sorted(versions, key=lambda v: (len(v), v))[-_KEEP_VERSIONS:]
    references[event.registered_model] = json.dumps(
        {"latest": event.model_version, "versions": {v: versions[v] for v in keep}}).encode()
    MODELS.set(len(references))
    _set_watched(event.registered_model, event.model_version)
    await _send(topics.STAGE_PROGRESS, StageProgress(
        stage="monitor", state=StageProgress.STATE_RUNNING, percent=100,
        message=f"watching {event.registered_model} v{event.model_version} for drift"),
        env.experiment_id, env.experiment_id)
    log.info("watching %s v%s", event.registered_model, event.model_version)


def _scored_model_file(store: Any, event: Any, tmp: Path) -> Path:
    """The model the test split scored: select's ``evaluated_model.joblib`` when the
    published model is its refit on every row (whose test predictions would be in-sample,
    too sharp for prediction drift and too good for performance decay), else the model."""
    folder = event.committed.docs.selection.selection
    if folder.uri:
        base = folder.uri.rstrip("/")
        digests = store.folder_files(base, tmp / "select", folder.sha256)
        selection = json.loads(store.get_file(f"{base}/selection.json", tmp / "selection.json",
                                              digests.get("selection.json", "")).read_text())
        evaluated = scored_model_file(selection, digests)
        if evaluated is not None:
            return store.get_file(f"{base}/{evaluated}", tmp / "evaluated_model.joblib",
                                  digests[evaluated])
    return store.get_file(event.model.uri, tmp / "model.joblib", event.model.sha256)


def _build_prediction_reference(event: Any, info: dict[str, Any]) -> dict[str, Any]:
    """The model's predictions and scores on its test split, stored next to the reports."""
    dataset = event.committed.docs.selection.dataset
    if not event.model.uri or not dataset.prepared.uri:
        raise ValueError("the event names no model or no prepared data")
    store = open_store(settings.resolved_artifact_root, settings.s3_endpoint_url)
    with tempfile.TemporaryDirectory() as tmp:
        base = dataset.prepared.uri.rstrip("/")
        digests = store.folder_files(base, Path(tmp) / "prepared", dataset.prepared.sha256)
        test = pd.read_parquet(store.get_file(f"{base}/test.parquet", Path(tmp) / "test.pq",
                                              digests.get("test.parquet", "")))
        model = joblib.load(_scored_model_file(store, event, Path(tmp)))
        frame, scores, classes = reference_predictions(
            model, test[info["features"]], test[dataset.target], info["problem_type"])
        path = Path(tmp) / "reference_predictions.parquet"
        frame.to_parquet(path, index=False)
        key = (f"{experiment_prefix(info['project'], info['experiment_id'], 'monitor')}/"
               f"reference_predictions-v{_safe(info['version'])}.parquet")
        stored = store.put_file(path, key, "application/vnd.apache.parquet")
    return {"predictions": {"uri": stored.uri, "sha256": stored.sha256}, "scores": scores,
            "classes": classes}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def _load_context(info: dict[str, Any]) -> ModelReference:
    store = open_store(settings.resolved_artifact_root, settings.s3_endpoint_url)
    with tempfile.TemporaryDirectory() as tmp:
        features = pd.read_parquet(store.get_file(
            info["reference"]["uri"], Path(tmp) / "reference.parquet",
            info["reference"]["sha256"]))
        predictions = None
        if info.get("predictions"):
            predictions = pd.read_parquet(store.get_file(
                info["predictions"]["uri"], Path(tmp) / "predictions.parquet",
                info["predictions"]["sha256"]))
    return ModelReference(
        model=info["model"], version=info["version"], problem_type=info["problem_type"],
        metric=info["metric"], features=[c for c in info["features"] if c in features],
        classes=info.get("classes", []), feature_frame=features,
        prediction_frame=predictions, reference_scores=info.get("scores", {}),
        drift_share=DEFAULT_POLICY.drift_share)


async def _context(key: tuple[str, str], info: dict[str, Any]) -> ModelReference | None:
    """The model version's summarised references, loaded once per reference digest."""
    digest = info["reference"]["sha256"] + str((info.get("predictions") or {}).get("sha256"))
    cached = _contexts.get(key)
    if cached and cached[0] == digest:
        return cached[1]
    try:
        context = await asyncio.to_thread(_load_context, info)
    except Exception:
        log.exception("cannot load the references of %s v%s; its windows are not checked",
                      *key)
        context = None
    _contexts[key] = (digest, context)
    return context


# ---------------------------------------------------------------- prediction.logged


@app.task
async def served_events() -> None:
    """prediction.logged and ground_truth.logged, read with a plain aiokafka consumer.

    faust's per-message pipeline caps ingestion at a few thousand events/s, and a worker
    that starts (or rebalances) with a backlog can drop a run of messages: its recovery
    resumes the flow before seeking to the committed offsets, the fetched records are
    cleared from the stream queues and never re-read. Here one ``getmany`` batch (up to
    BATCH_EVENTS per partition) is processed, then its offsets are committed: nothing is
    skipped, a crash re-reads the uncommitted batch (at least once). Range assignment puts
    partition i of both topics (keyed by model name) on the same worker, so a model's
    predictions and outcomes meet in one join buffer.
    """
    await app.tables.recovery.completed.wait()  # the references table is loaded
    consumer = _consumer(SERVED_TOPICS, SERVED_GROUP, max_poll_records=BATCH_EVENTS,
                         max_partition_fetch_bytes=16 * 1024 * 1024,
                         fetch_max_bytes=64 * 1024 * 1024,
                         partition_assignment_strategy=(RangePartitionAssignor,))
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH_EVENTS)
            if batches:
                await _ingest_batches(batches)
                await _commit(consumer, batches)
    finally:
        await consumer.stop()


async def _ingest_batches(batches: dict[TopicPartition, list[Any]]) -> None:
    """One fetched batch: predictions in bulk, then outcomes (they may join them)."""
    predictions = [r.value for tp, records in batches.items()
                   if tp.topic == topics.PREDICTION_LOGGED.name for r in records]
    if predictions:
        await _ingest_predictions(predictions)
    for tp, records in batches.items():
        if tp.topic == topics.GROUND_TRUTH_LOGGED.name:
            for record in records:
                await _guarded(topics.GROUND_TRUTH_LOGGED, record.value, _record_ground_truth)


async def _commit(consumer: AIOKafkaConsumer,
                  batches: dict[TopicPartition, list[Any]]) -> None:
    """Commit a processed batch; after a rebalance the new owner re-reads it instead."""
    offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("offsets not committed (partitions moved to another worker; they will "
                    "be read again there): %s", exc)


def _flatten(json_arrays: list[str]) -> list[Any]:
    """Concatenate JSON arrays (one per event) with one parse."""
    if not json_arrays:
        return []
    return [item for array in orjson.loads("[" + ",".join(json_arrays) + "]") for item in array]


async def _ingest_predictions(batch: list[bytes]) -> None:
    now = time.time()
    groups: dict[tuple[str, str], list[Any]] = {}
    for raw in batch:
        try:
            _, event = decode(raw, topics.PREDICTION_LOGGED)
        except PermanentError as exc:
            await _dead_letter(topics.PREDICTION_LOGGED, raw, exc)
            continue
        group = groups.get((event.model_name, event.model_version))
        if group is None:
            group = groups[(event.model_name, event.model_version)] = [[], [], [], [], []]
        group[0].append(event.rows_json or "[]")
        group[1].append(event.predictions_json or "[]")
        group[2].append(event.probabilities_json)
        group[3].extend(event.request_ids)
        group[4].append(raw)
    EVENTS_IN.labels(topics.PREDICTION_LOGGED.name).inc(len(batch))
    for key, (rows_json, predictions_json, probabilities_json, request_ids, raws) in (
            groups.items()):
        info = _model_info(*key)
        if info is None:
            IGNORED.labels(key[0]).inc(sum(len(orjson.loads(r)) for r in rows_json))
            log.warning("predictions for %s, which has no reference data; ignored", key[0])
            continue
        context = await _context(key, info)
        try:
            rows = _flatten(rows_json)
            predictions = _flatten(predictions_json)
            probabilities = (_flatten(probabilities_json) if all(probabilities_json)
                             else None)
            if info["problem_type"] != "regression":
                predictions = list(labels_as_text(predictions))
            closed = monitor.add_predictions(
                key, rows, predictions, probabilities, request_ids, info.get("classes", []),
                now, features=context.features if context else info["features"])
        except (ValueError, TypeError) as exc:
            for raw in raws:  # one bad event spoils the group's parse: DLQ the group
                await _dead_letter(topics.PREDICTION_LOGGED, raw, ValueError(
                    f"prediction batch of {key[0]} v{key[1]} is malformed: {exc}"))
            continue
        ROWS_IN.labels(key[0]).inc(len(rows))
        PENDING.labels(key[0]).set(monitor.pending_joins(key))
        for window in closed:
            await _queue_check(window, info, context)


# ---------------------------------------------------------------- ground_truth.logged


async def _record_ground_truth(env: Any, event: Any) -> None:
    EVENTS_IN.labels(topics.GROUND_TRUTH_LOGGED.name).inc()
    key = (event.model_name, event.model_version)
    info = _model_info(*key)
    if info is None:
        log.warning("ground truth for %s, which has no reference data; ignored", key[0])
        return
    outcomes = orjson.loads(event.outcomes_json or "[]")
    if info["problem_type"] != "regression":
        outcomes = list(labels_as_text(outcomes))
    closed, matched, unmatched = monitor.add_outcomes(
        key, list(event.request_ids), outcomes, info.get("classes", []), time.time())
    JOINED.labels(key[0], "true").inc(matched)
    JOINED.labels(key[0], "false").inc(unmatched)
    PENDING.labels(key[0]).set(monitor.pending_joins(key))
    context = await _context(key, info)
    for window in closed:
        await _queue_check(window, info, context)


# ---------------------------------------------------------------- checks


@app.timer(interval=1.0)
async def close_expired_windows() -> None:
    """Close windows whose time is up when traffic is sparse."""
    for window in monitor.poll(time.time()):
        info = _model_info(*window.key)
        if info is not None:
            await _queue_check(window, info, await _context(window.key, info))


async def _queue_check(window: ClosedWindow, info: dict[str, Any],
                       context: ModelReference | None) -> None:
    """Hand a closed window to the checker task (waits when it is behind: backpressure)."""
    if context is None:
        return
    global _checks
    if _checks is None:
        _checks = asyncio.Queue(maxsize=64)
    await _checks.put((window, info, context))


@app.task
async def checker() -> None:
    """Checks closed windows one at a time, off the ingestion path."""
    global _checks
    if _checks is None:
        _checks = asyncio.Queue(maxsize=64)
    while True:
        window, info, context = await _checks.get()
        try:
            await _check(window, info, context)
        except Exception:
            log.exception("checking window %s failed", window.window_id)


async def _check(window: ClosedWindow, info: dict[str, Any], context: ModelReference) -> None:
    model = window.key[0]
    policy = await _policy(model, info)
    started = time.perf_counter()
    if window.kind == "drift":
        check = await asyncio.to_thread(check_window, context, window.frame, window.window_id,
                                        policy.drift_share)
        CHECK_SECONDS.labels("drift").observe(time.perf_counter() - started)
        WINDOWS.labels(model, str(bool(check.kinds)).lower()).inc()
        if check.data is not None:
            SHARE_DRIFTED.labels(model).set(check.data.share_drifted)
        PREDICTION_DRIFT.labels(model).set(1.0 if check.prediction_drift else 0.0)
        if (column := check.prediction_column) is not None:
            PREDICTION_SCORE.labels(model, column.stattest).set(column.score)
    else:
        check = await asyncio.to_thread(check_performance, context, window.frame,
                                        window.window_id, policy.decay_threshold)
        CHECK_SECONDS.labels("performance").observe(time.perf_counter() - started)
        if check.decay is None:
            log.info("window %s of %s has no computable metric", window.window_id, model)
            return
        PERF_WINDOWS.labels(model, str(check.decay.decayed).lower()).inc()
        DECAY.labels(model).set(check.decay.decay)
        WINDOW_SCORE.labels(model, check.decay.metric).set(check.decay.window_score)
    if not check.kinds:
        return
    key = (window.key, window.kind)
    if time.monotonic() - _last_report.get(key, -1e18) < settings.monitor_report_interval_s:
        THROTTLED.labels(model).inc()
        return
    _last_report[key] = time.monotonic()
    await _report_drift(check, window, info, context, policy)


async def _policy(model: str, info: dict[str, Any]) -> RetrainPolicy:
    override = await asyncio.to_thread(_retrain_ledger().policy_override, model)
    try:
        return resolve_policy(DEFAULT_POLICY, info["spec"].get("tags", {}), override)
    except ValueError as exc:
        log.error("retraining policy of %s is invalid (%s); using the defaults", model, exc)
        return DEFAULT_POLICY


async def _report_drift(check: WindowCheck, window: ClosedWindow, info: dict[str, Any],
                        context: ModelReference, policy: RetrainPolicy) -> None:
    started = time.perf_counter()
    html_ref, json_ref = await _store_report(check, window.frame, info, context)
    REPORT_SECONDS.observe(time.perf_counter() - started)
    retrain_id, decision = await _maybe_retrain(check, info, policy)
    event = DriftDetected(
        model_name=check.model, model_version=check.version, window_rows=check.rows,
        report=html_ref, report_json=json_ref, source_experiment_id=info["experiment_id"],
        kinds=check.kinds, window_id=check.window_id, retrain_experiment_id=retrain_id,
        retrain_decision=decision)
    event.window_start.FromNanoseconds(int(check.start * 1e9))
    event.window_end.FromNanoseconds(int(check.end * 1e9))
    if check.data is not None:
        event.dataset_drift = check.data.dataset_drift
        event.share_drifted = check.data.share_drifted
        event.drifted_columns.extend(check.data.drifted_columns)
    if (column := check.prediction_column) is not None:
        event.prediction_drift = check.prediction_drift
        event.prediction_drift_score = column.score
        event.prediction_drift_stattest = column.stattest
    if check.decay is not None:
        event.performance_decay = check.decay.decayed
        event.metric = check.decay.metric
        event.window_score = check.decay.window_score
        event.reference_score = check.decay.reference_score
        event.decay = check.decay.decay
        event.labeled_rows = check.decay.labeled_rows
    for kind in check.kinds:
        DETECTED.labels(check.model, kind).inc()
    await _send(topics.DRIFT_DETECTED, event, check.model, info["experiment_id"])
    log.info("%s on %s v%s (window %s); %s", ", ".join(check.kinds), check.model,
             check.version, check.window_id, decision)


async def _store_report(check: WindowCheck, frame: pd.DataFrame, info: dict[str, Any],
                        context: ModelReference) -> tuple[ArtifactRef, ArtifactRef]:
    """evidently's report of what drifted (HTML and JSON) in the artifact store.

    Data drift: the features against the training data; else prediction drift: the
    predictions against the test-split predictions; else decay: target and predictions of
    the joined rows against the test split's. The JSON also holds every test's result.
    Rendered in a separate process so that ingestion keeps the GIL.
    """
    global _renderer
    if _renderer is None:
        _renderer = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    if check.data is not None and check.data.dataset_drift:
        reference, columns = context.feature_frame, list(context.features_table.columns)
    elif check.prediction_drift and context.prediction_frame is not None:
        reference = context.prediction_frame
        columns = [c for c in prediction_columns(reference) if c in frame.columns]
    else:
        reference = context.prediction_frame
        columns = [TARGET, PREDICTION]
    columns = [c for c in columns if c in frame.columns and c in reference.columns]
    threshold = check.data.drift_share_threshold if check.data else 0.5
    prefix = (f"{experiment_prefix(info['project'], info['experiment_id'], 'monitor')}/"
              f"windows/{_safe(check.window_id)}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = await asyncio.get_running_loop().run_in_executor(
            _renderer, write_report, reference[columns], frame[columns], columns, threshold,
            check.to_dict(), tmp)
        return tuple(await asyncio.to_thread(_upload, paths, prefix))


def _upload(paths: tuple[str, str], prefix: str) -> list[ArtifactRef]:
    store = open_store(settings.resolved_artifact_root, settings.s3_endpoint_url)
    refs = []
    for path, media in zip(paths, ("text/html", "application/json"), strict=True):
        stored = store.put_file(Path(path), prefix + Path(path).suffix, media)
        refs.append(ArtifactRef(uri=stored.uri, sha256=stored.sha256,
                                size_bytes=stored.size_bytes, media_type=media))
    return refs


async def _maybe_retrain(check: WindowCheck, info: dict[str, Any],
                         policy: RetrainPolicy) -> tuple[str, str]:
    """Claim a retraining request in the ledger and send it (plus any unsent earlier one);
    returns the new experiment id (or "") and the decision's reason."""
    ledger = _retrain_ledger()
    claim = await asyncio.to_thread(
        ledger.claim, check.model, policy=policy, kinds=check.kinds, trigger=check.window_id,
        now=time.time(), request={"version": check.version,
                                  "parent_experiment_id": info["experiment_id"]})
    for request in claim.unsent:
        await _send_retrain(request, info)
        await asyncio.to_thread(ledger.mark_sent, check.model, request["event_id"])
    if claim.request is None:
        RETRAINS_SKIPPED.labels(check.model, claim.decision.reason.split(":")[0]).inc()
        return "", claim.decision.reason
    await _send_retrain(claim.request, info)
    await asyncio.to_thread(ledger.mark_sent, check.model, claim.request["event_id"])
    RETRAINS.labels(check.model).inc()
    log.info("requested retraining experiment %s of %s (parent %s): %s",
             claim.request["experiment_id"], check.model, info["experiment_id"],
             claim.decision.reason)
    return (claim.request["experiment_id"],
            f"requested retraining experiment {claim.request['experiment_id']}: "
            f"{claim.decision.reason}")


async def _send_retrain(request: dict[str, Any], info: dict[str, Any]) -> None:
    """experiment.requested for a claimed request: the model's original spec, with lineage."""
    spec = ExperimentSpec()
    json_format.ParseDict(info["spec"], spec, ignore_unknown_fields=True)
    spec.parent_experiment_id = request["parent_experiment_id"]
    spec.tags["mlmesh.trigger"] = ",".join(request["kinds"])
    spec.tags["mlmesh.monitor.window"] = request["trigger"]
    message = ExperimentRequested(spec=spec, requested_by=f"monitor:{info['model']}")
    message.requested_at.FromNanoseconds(int(request["at"] * 1e9))
    await _send(topics.EXPERIMENT_REQUESTED, message, request["experiment_id"],
                request["experiment_id"], event_id=request["event_id"],
                correlation_id=request["parent_experiment_id"])


# ---------------------------------------------------------------- health and metrics


@app.page("/healthz")
async def healthz(web: Any, request: Any) -> Any:
    return web.json({"service": "monitor", "ok": True})


@app.page("/readyz")
async def readyz(web: Any, request: Any) -> Any:
    ready = app.producer is not None and app.consumer is not None
    return web.json({"ready": ready}, status=200 if ready else 503)


@app.page("/metrics")
async def metrics(web: Any, request: Any) -> Any:
    # aiohttp refuses a charset inside content_type; the exposition format is UTF-8 anyway
    return web.bytes(generate_latest(),
                     content_type=CONTENT_TYPE_LATEST.replace("; charset=utf-8", ""))

