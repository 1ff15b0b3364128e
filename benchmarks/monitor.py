"""Monitor benchmark: sustained prediction.logged events per second through the real
monitor (faust app, served events read in batches by its aiokafka consumer) against the
embedded Tansu broker, with drift computed per window.

A fast producer first writes a model.published event (a real scikit-learn model, its
prepared test split and training features in a temporary artifact store) and N
prediction.logged events of ``--rows-per-event`` rows each (one row = one /predict call;
the second half of the traffic is shifted, so windows drift and evidently reports,
drift.detected and retraining requests are produced too). Then the monitor starts as its
own process (``python -m mlmesh_monitor``) and this script reads its /metrics until every
event is ingested and every window checked. Printed: events/s and rows/s from the first
ingested event to the last, windows checked, drift computation time per window and the
reports written, and the monitor's committed offsets (events processed, to compare with
the events produced: nothing may be lost). Nothing is asserted: the numbers printed are
the measurement.

    python -m benchmarks.monitor [--events 200000] [--rows-per-event 1] [--window-rows 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
from aiokafka import AIOKafkaProducer
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlmesh.events.v1.common_pb2 import PROBLEM_TYPE_BINARY, ArtifactRef
from mlmesh.events.v1.delivery_pb2 import ModelPublished
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.monitoring_pb2 import PredictionLogged
from mlmesh_common import topics
from mlmesh_common.artifacts import open_store
from mlmesh_common.broker import create_topics, free_port, start_tansu
from mlmesh_common.envelope import encode, new_envelope

MODEL = "mlmesh-bench-credit"
#: mlmesh_monitor.service.SERVED_GROUP (not imported: that module builds the faust app).
SERVED_GROUP = "mlmesh.monitor"
NUMERIC = [f"x{i}" for i in range(8)]
CATEGORICAL = ["region", "segment"]


def make_rows(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """Ten features (eight numeric, two categorical) and a binary target."""
    frame = pd.DataFrame({c: rng.normal(shift, 1.0, n) for c in NUMERIC})
    frame["region"] = rng.choice(["north", "south", "east", "west"], n,
                                 p=[0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4])
    frame["segment"] = rng.choice(["retail", "business"], n)
    logit = frame["x0"] - 0.5 * frame["x1"] + (frame["region"] == "north")
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def publish_fixture(root: Path, experiment_id: str) -> ModelPublished:
    """A trained model, its prepared splits and reference data, as publish leaves them."""
    rng = np.random.default_rng(0)
    store = open_store(str(root))
    work = root.parent / "fixture"
    prepared = work / "prepared"
    prepared.mkdir(parents=True)
    train, test = make_rows(3000, rng), make_rows(1000, rng)
    train.to_parquet(prepared / "train.parquet", index=False)
    test.to_parquet(prepared / "test.parquet", index=False)
    model = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(), CATEGORICAL)],
                                            remainder="passthrough"), LogisticRegression())
    model.fit(train[NUMERIC + CATEGORICAL], train["target"])
    joblib.dump(model, work / "model.joblib")
    train[NUMERIC + CATEGORICAL].to_parquet(work / "reference.parquet", index=False)
    prefix = f"projects/bench/experiments/{experiment_id}"
    folder = store.put_dir(prepared, f"{prefix}/prep", "bench")
    refs = {name: store.put_file(work / name, f"{prefix}/publish/{name}")
            for name in ("model.joblib", "reference.parquet")}
    event = ModelPublished(registered_model=MODEL, model_version="1",
                           feature_columns=NUMERIC + CATEGORICAL)
    event.model.CopyFrom(ArtifactRef(uri=refs["model.joblib"].uri,
                                     sha256=refs["model.joblib"].sha256))
    event.reference_data.CopyFrom(ArtifactRef(uri=refs["reference.parquet"].uri,
                                              sha256=refs["reference.parquet"].sha256))
    selection = event.committed.docs.selection
    selection.metric, selection.test_score = "roc_auc", 0.75
    dataset = selection.dataset
    dataset.target, dataset.problem_type = "target", PROBLEM_TYPE_BINARY
    dataset.prepared.CopyFrom(ArtifactRef(uri=folder.uri, sha256=folder.sha256))
    dataset.spec.project = "bench"
    dataset.spec.dataset_uri = "file:///bench.csv"
    dataset.spec.target = "target"
    return event


def prediction_events(events: int, rows_per_event: int) -> list[bytes]:
    """Encoded prediction.logged envelopes; the second half of the traffic is shifted."""
    rng = np.random.default_rng(1)
    out = []
    producer = Producer(service="serving", version=f"{MODEL}:1")
    total = events * rows_per_event
    frame = pd.concat([make_rows(total // 2, rng), make_rows(total - total // 2, rng, 0.7)],
                      ignore_index=True)
    records = frame[NUMERIC + CATEGORICAL].to_dict("records")
    p = 1 / (1 + np.exp(-frame["x0"].to_numpy()))  # stand-in probabilities of class "1"
    for i in range(events):
        chunk = slice(i * rows_per_event, (i + 1) * rows_per_event)
        probs = p[chunk]
        event = PredictionLogged(
            model_name=MODEL, model_version="1", rows_json=json.dumps(records[chunk]),
            predictions_json=json.dumps([int(v > 0.5) for v in probs]),
            probabilities_json=json.dumps([{"0": 1 - float(v), "1": float(v)} for v in probs]),
            request_ids=[uuid.uuid4().hex for _ in probs])
        out.append(encode(new_envelope(topics.PREDICTION_LOGGED, event, experiment_id="",
                                       producer=producer)))
    return out


async def publish(bootstrap: str, published: ModelPublished, experiment_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        env = new_envelope(topics.MODEL_PUBLISHED, published, experiment_id=experiment_id,
                           producer=Producer(service="publish", version="bench"))
        await producer.send_and_wait(topics.MODEL_PUBLISHED.name, encode(env),
                                     key=experiment_id.encode())
    finally:
        await producer.stop()


async def produce(bootstrap: str, payloads: list[bytes]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                linger_ms=20, max_batch_size=1_000_000,
                                max_request_size=8_000_000)
    await producer.start()
    try:
        started = time.perf_counter()
        key = MODEL.encode()
        pending = []
        for raw in payloads:
            pending.append(await producer.send(topics.PREDICTION_LOGGED.name, raw, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str) -> dict[int, int]:
    """The monitor's committed offset per prediction.logged partition (what it has
    processed; Tansu's offsets are per record, so their sum is the events processed).
    Tansu's high watermark is not used: it reports the last batch's base offset + 1."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        parts = [TopicPartition(topics.PREDICTION_LOGGED.name, p) for p in range(2)]
        group = await admin.list_consumer_group_offsets(SERVED_GROUP, partitions=parts)
        return {tp.partition: max(meta.offset, 0) for tp, meta in group.items()}
    finally:
        await admin.close()


def scrape(url: str) -> dict[str, float]:
    """Sum of each metric family's samples (labels dropped) from /metrics."""
    values: dict[str, float] = {}
    try:
        text = httpx.get(url, timeout=5).text
    except httpx.HTTPError:
        return values
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", line)
        if match:
            name = match.group(1)
            if match.group(2) and 'kind="drift"' in match.group(2):
                name += ":drift"
            values[name] = values.get(name, 0.0) + float(match.group(3))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rows-per-event", type=int, default=1)
    parser.add_argument("--window-rows", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--log", default="", metavar="PATH",
                        help="write the monitor's log here (default: a temporary file)")
    parser.add_argument("--py-spy", default="", metavar="SVG",
                        help="profile the measured monitor with py-spy into this flame graph "
                        "(collapsed stacks when it ends with .txt)")
    args = parser.parse_args()
    port = free_port()
    broker = start_tansu(port)
    bootstrap = f"127.0.0.1:{port}"
    monitor = None
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        try:
            asyncio.run(create_topics(bootstrap, partitions=2))
            experiment_id = uuid.uuid4().hex[:16]
            published = publish_fixture(home / "artifacts", experiment_id)
            asyncio.run(publish(bootstrap, published, experiment_id))
            http_port = free_port()
            env = {**os.environ, "MLMESH_KAFKA_BOOTSTRAP": bootstrap, "MLMESH_HOME": str(home),
                   "MLMESH_HTTP_PORT": str(http_port), "MLMESH_PARTITIONS": "2",
                   "MLMESH_MONITOR_WINDOW_ROWS": str(args.window_rows),
                   "MLMESH_MONITOR_RETRAIN": "true",
                   "MLMESH_LOG_LEVEL": os.environ.get("MLMESH_LOG_LEVEL", "WARNING")}
            log_path = Path(args.log) if args.log else Path(tmp) / "monitor.log"
            url = f"http://127.0.0.1:{http_port}/metrics"
            # 1. the monitor learns the model (reference predictions computed), then stops
            t = time.perf_counter()
            monitor = start_monitor(env, log_path)
            wait_for(url, "mlmesh_monitor_models", 1, args.timeout, log_path)
            print(f"monitor joined and learned the model in {time.perf_counter() - t:.1f} s")
            monitor.terminate()
            monitor.wait(60)
            # 2. a fast producer fills prediction.logged while no monitor runs
            t = time.perf_counter()
            payloads = prediction_events(args.events, args.rows_per_event)
            print(f"encoded {len(payloads)} events in {time.perf_counter() - t:.1f} s")
            seconds = asyncio.run(produce(bootstrap, payloads))
            print(f"produced {len(payloads)} events in {seconds:.1f} s "
                  f"({len(payloads) / seconds:,.0f} events/s)")
            del payloads
            # 3. the monitor restarts (its table recovers from the changelog) and drains it
            monitor = start_monitor(env, log_path, args.py_spy)
            measure(url, args, log_path)
            committed = asyncio.run(committed_offsets(bootstrap))
            print(f"committed offsets of {SERVED_GROUP} {committed}: "
                  f"{sum(committed.values())} of {args.events} produced events processed")
        finally:
            if monitor is not None:
                monitor.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
                monitor.wait(60)
            broker.terminate()
            broker.wait(10)


def start_monitor(env: dict[str, str], log_path: Path, profile: str = "") -> subprocess.Popen:
    """The monitor as its own process (under ``py-spy record`` when ``profile`` names the
    flame graph to write)."""
    command = [sys.executable, "-m", "mlmesh_monitor"]
    if profile:
        raw = ["--format", "raw"] if profile.endswith(".txt") else []  # collapsed stacks
        command = ["py-spy", "record", "-o", profile, *raw, "--", *command]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(url: str, metric: str, value: float, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scrape(url).get(metric, 0.0) >= value:
            return
        time.sleep(0.2)
    raise SystemExit(f"{metric} did not reach {value}; monitor log tail:\n"
                     + log_path.read_text()[-3000:])


def measure(url: str, args: argparse.Namespace, log_path: Path) -> None:
    total_rows = args.events * args.rows_per_event
    expected_windows = total_rows // args.window_rows
    load = os.getloadavg()
    deadline = time.monotonic() + args.timeout
    first: tuple[float, float] | None = None
    last_events, last_change = 0.0, time.monotonic()
    while time.monotonic() < deadline:
        values = scrape(url)
        events = values.get("mlmesh_monitor_events_total", 0.0)
        now = time.monotonic()
        if events and first is None:
            first = (now, events)
        if events != last_events:
            last_events, last_change = events, now
        windows = values.get("mlmesh_monitor_windows_total", 0.0)
        if events >= args.events and windows >= expected_windows:
            break
        if first is not None and now - last_change > 10:  # stalled short of the total
            break
        time.sleep(0.2)
    if first is None:
        print("timed out: no event ingested; monitor log tail:\n"
              + log_path.read_text()[-3000:])
        return
    if last_events < args.events:
        print(f"WARNING: only {last_events:.0f} of {args.events} events were ingested")
    elapsed = last_change - first[0]
    counted = last_events - first[1]
    rate = counted / elapsed if elapsed > 0 else float("inf")
    checks = values.get("mlmesh_monitor_check_seconds_count:drift", 0.0)
    check_s = values.get("mlmesh_monitor_check_seconds_sum:drift", 0.0)
    reports = values.get("mlmesh_monitor_report_seconds_count", 0.0)
    report_s = values.get("mlmesh_monitor_report_seconds_sum", 0.0)
    print(f"load average before measuring: {load[0]:.2f} (2-core machine shared with the "
          "broker and other work)")
    print(f"ingested {args.events} events ({total_rows} rows) of which {counted:.0f} measured "
          f"in {elapsed:.2f} s: {rate:,.0f} events/s, {rate * args.rows_per_event:,.0f} rows/s")
    print(f"windows checked: {windows:.0f} of {args.window_rows} rows; drift computation "
          f"{1000 * check_s / max(checks, 1):.1f} ms per window (data + prediction drift)")
    print(f"drifted windows reported: {reports:.0f} (evidently HTML+JSON "
          f"{report_s / max(reports, 1):.2f} s each); retrains requested: "
          f"{values.get('mlmesh_monitor_retrains_total', 0):.0f}")


if __name__ == "__main__":
    main()
