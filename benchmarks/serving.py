"""Serving benchmark: the generated FastAPI app against ``mlflow models serve`` of the same
registered model, on this machine, driven by the same load generator.

Three models are trained on the breast-cancer table (30 numeric features plus a
categorical one), each registered in a temporary MLflow store (SQLite) and served, one
uvicorn worker each:

- ``dense-lgbm``: LightGBM on prep's simple dense preprocessor, exported to a verified
  ONNX graph;
- ``tree-lgbm``: LightGBM on prep's tree preprocessor (categorical codes, generated
  features): the typical winner;
- ``ensemble``: a caruana ensemble of that LightGBM and an MLP (dense preprocessor with
  quantile clipping).

Servers: ``generated/onnx`` (the generated app's onnxruntime backend, where a graph
exists), ``generated/sklearn`` (in process, the model's preprocessing compiled by
``fastpath.py``), ``generated/sklearn-plain`` (in process, a DataFrame through the model's
own predict / predict_proba; ``MLMESH_SERVING_COMPILED=0``), ``generated/sklearn+log``
(as deployed: the compiled path with every prediction logged to ``prediction.logged`` on
an embedded Tansu broker) and ``mlflow serve`` (``mlflow models serve -m
models:/<name>/<version> --env-manager local``).

Load generator: an asyncio httpx client, keep-alive connections, a fixed concurrency for
a fixed duration after a warm-up. Single rows are sent one at a time (concurrency 1) and
give p50/p99 latency; batches of 100 rows are sent with ``--concurrency`` clients and give
rows/s. It prints a table and the ratios against the targets (>= 3x MLflow's batch
throughput, single-row p99 < 10 ms). It asserts nothing: the numbers are the measurement.

    python -m benchmarks.serving [--duration 10] [--concurrency 4] [--batch 100]
        [--models dense-lgbm,tree-lgbm,ensemble] [--no-plain] [--no-log]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from mlmesh_common import topics
from mlmesh_common.broker import create_topics, free_port, start_tansu
from mlmesh_common.modeling import EnsembleModel, MeshModel
from mlmesh_prep.features import ColumnChoice, FeaturePlan
from mlmesh_prep.preparation import build_preprocessor
from mlmesh_publish.artifacts import export_artifacts
from mlmesh_publish.registry import register_model
from mlmesh_publish.serving import generate_serving_app

P99_TARGET_MS = 10.0
THROUGHPUT_RATIO_TARGET = 3.0


@dataclass
class Result:
    """Measurements of one server."""

    model: str
    name: str
    p50_ms: float
    p99_ms: float
    single_rps: float
    batch_rows_per_s: float
    batch_p50_ms: float
    errors: int


def _cancer() -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    data = load_breast_cancer(as_frame=True)
    frame = data.data.copy()
    frame["size_band"] = np.where(frame["mean radius"] > 15, "large", "small")
    target = np.where(data.target == 1, "benign", "malignant")
    return frame, target, list(data.data.columns)


def _plan(numeric: list[str]) -> FeaturePlan:
    """Prep's column choices: codes for trees, one-hot for the dense models, clipping of
    heavy-tailed columns and two generated features."""
    heavy = {"area error", "perimeter error", "radius error", "worst area"}
    columns = [ColumnChoice(c, "numeric", 0.0, 0, "median", False, "standard_scale", "number",
                            outliers="clip" if c in heavy else "none") for c in numeric]
    columns.append(ColumnChoice("size_band", "categorical", 0.0, 2, "most_frequent", False,
                                "one_hot", "code"))
    generated = [
        {"name": "radius_x_texture", "op": "mul", "inputs": ["mean radius", "mean texture"]},
        {"name": "area_by_band", "op": "group_mean", "inputs": ["size_band", "mean area"]},
    ]
    return FeaturePlan(columns, "binary", generated=generated)


def make_models(folder: Path) -> tuple[list[tuple[str, str, Path]], pd.DataFrame, list[dict]]:
    """Train the benchmark models; returns ([(key, title, joblib path)], held-out rows,
    feature schema). ``dense-lgbm`` exports to ONNX; the others cannot (prep's tree
    preprocessor with codes and generated features; an ensemble with an MLP)."""
    frame, target, numeric = _cancer()
    train = frame.sample(frac=0.8, random_state=0)
    test = frame.drop(train.index)
    y = target[frame.index.get_indexer(train.index)]
    columns = list(frame.columns)
    plan = _plan(numeric)
    trees, codes = plan.trees()
    dense = MeshModel(build_preprocessor(numeric, ["size_band"]), "lightgbm", "binary", columns,
                      {"n_estimators": 200}).fit(train, y)
    tree_lgbm = MeshModel(trees, "lightgbm", "binary", columns, {"n_estimators": 200},
                          categorical_features=codes).fit(train, y)
    mlp = MeshModel(plan.dense(), "mlp", "binary", columns, {"max_iter": 300}).fit(train, y)
    ensemble = EnsembleModel([tree_lgbm, mlp], [0.6, 0.4]).from_fitted()
    models = [
        ("dense-lgbm", "LightGBM (200 trees), dense prep (ONNX-exportable)", dense),
        ("tree-lgbm", "LightGBM (200 trees), prep's tree preprocessor with codes + generated "
         "features (no ONNX)", tree_lgbm),
        ("ensemble", "caruana ensemble: that LightGBM + MLP on the dense prep with clipping "
         "(no ONNX)", ensemble),
    ]
    paths = []
    for key, title, model in models:
        path = folder / f"{key}.joblib"
        joblib.dump(model, path)
        paths.append((key, title, path))
    schema = [{"name": c, "kind": "numeric", "dtype": "float64"} for c in numeric]
    schema.append({"name": "size_band", "kind": "categorical", "dtype": "object"})
    return paths, test, schema


def wait_ready(process: subprocess.Popen, url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s")


async def drive(url: str, payload_for, concurrency: int, duration: float,
                warmup: float) -> tuple[list[float], int, float]:
    """Closed-loop load: ``concurrency`` workers post back to back for ``duration`` s.

    Returns (latencies in seconds of successful requests, errors, measured seconds).
    """
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        async def worker(stop_at: float, record: bool) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < stop_at:
                body = payload_for(i)
                i += 1
                started = time.perf_counter()
                response = await client.post(url, content=body,
                                             headers={"Content-Type": "application/json"})
                elapsed = time.perf_counter() - started
                if not record:
                    continue
                if response.status_code == 200:
                    latencies.append(elapsed)
                else:
                    errors += 1

        await asyncio.gather(*(worker(time.perf_counter() + warmup, False)
                               for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + duration, True) for _ in range(concurrency)))
        return latencies, errors, time.perf_counter() - started


def measure(model: str, name: str, single_url: str, batch_url: str, single_body, batch_body,
            args: argparse.Namespace) -> Result:
    single, single_errors, single_s = asyncio.run(
        drive(single_url, single_body, 1, args.duration, args.warmup))
    batch, batch_errors, batch_s = asyncio.run(
        drive(batch_url, batch_body, args.concurrency, args.duration, args.warmup))
    ms = np.asarray(single) * 1000
    return Result(
        model=model,
        name=name,
        p50_ms=float(np.percentile(ms, 50)) if len(ms) else float("nan"),
        p99_ms=float(np.percentile(ms, 99)) if len(ms) else float("nan"),
        single_rps=len(single) / single_s,
        batch_rows_per_s=len(batch) * args.batch / batch_s,
        batch_p50_ms=float(np.percentile(np.asarray(batch) * 1000, 50)) if batch else
        float("nan"),
        errors=single_errors + batch_errors,
    )


def check_same_predictions(rows: list[dict], app_url: str, mlflow_url: str) -> int:
    """Rows on which the generated app and MLflow's server disagree (should be 0)."""
    ours = httpx.post(f"{app_url}/predict/batch", json={"rows": rows}, timeout=60).json()
    theirs = httpx.post(f"{mlflow_url}/invocations", json={"dataframe_records": rows},
                        timeout=60).json()
    return sum(a != b for a, b in zip(ours["predictions"], theirs["predictions"], strict=True))


def serve_and_measure(key: str, title: str, model_path: Path, test: pd.DataFrame,
                      schema: list[dict], root: Path, uri: str, env: dict[str, str],
                      args: argparse.Namespace) -> list[Result]:
    """Register, export and serve one model every way; measure each server."""
    registered = register_model(model_path, registered_name=f"bench-{key}",
                                experiment_id="bench", tags={},
                                input_example=test.head(5), tracking_uri=uri,
                                artifact_location=(root / "artifacts").as_uri())
    exported = export_artifacts(joblib.load(model_path), root / key / "published", test)
    print(f"\n[{key}] {title}; {registered.model_uri}; ONNX {exported.onnx_status}: "
          f"{exported.verification or exported.onnx_reason}")
    app_dir = generate_serving_app(
        model_path, root / key / "serving", model_name=f"bench-{key}",
        model_version=registered.version, feature_schema=schema, problem_type="binary",
        onnx_path=root / key / "published" / exported.onnx if exported.onnx else None,
        probe_rows=test.tail(50).to_dict("records"))

    rows = json.loads(test.to_json(orient="records"))
    rng = np.random.default_rng(0)
    batches = [[rows[j] for j in rng.integers(0, len(rows), args.batch)] for _ in range(32)]
    single_app = [json.dumps(r).encode() for r in rows]
    batch_app = [json.dumps({"rows": b}).encode() for b in batches]
    single_mlflow = [json.dumps({"dataframe_records": [r]}).encode() for r in rows]
    batch_mlflow = [json.dumps({"dataframe_records": b}).encode() for b in batches]

    variants = [("onnx", {"MLMESH_SERVING_BACKEND": "onnx"})] if exported.onnx else []
    variants.append(("sklearn", {"MLMESH_SERVING_BACKEND": "sklearn"}))
    if args.plain:
        variants.append(("sklearn-plain", {"MLMESH_SERVING_BACKEND": "sklearn",
                                           "MLMESH_SERVING_COMPILED": "0"}))
    if args.kafka:
        # as deployed: every prediction also logged to prediction.logged on the broker
        variants.append(("sklearn+log", {"MLMESH_SERVING_BACKEND": "sklearn",
                                         "MLMESH_KAFKA_BOOTSTRAP": args.kafka}))
    servers: list[subprocess.Popen] = []
    results: list[Result] = []
    try:
        urls = {}
        for name, extra in variants:
            port = free_port()
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", "1", "--log-level", "warning",
                 "--no-access-log"],
                cwd=app_dir, env={**env, **extra},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls[name] = f"http://127.0.0.1:{port}"
        mlflow_port = free_port()
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", registered.model_uri,
             "--env-manager", "local", "-p", str(mlflow_port), "-h", "127.0.0.1", "-w", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for url, process in zip(urls.values(), servers, strict=False):
            wait_ready(process, f"{url}/health")
        wait_ready(servers[-1], f"{mlflow_url}/ping")
        for name, url in urls.items():
            scoring = httpx.get(f"{url}/health").json().get("scoring")
            mismatches = check_same_predictions(rows, url, mlflow_url)
            print(f"generated/{name} (scoring: {scoring}): {mismatches} of {len(rows)} "
                  "predictions differ from mlflow serve")

        def cycle(items):
            return lambda i: items[i % len(items)]

        for name, url in urls.items():
            results.append(measure(f"{key}", f"generated/{name}", f"{url}/predict",
                                   f"{url}/predict/batch", cycle(single_app),
                                   cycle(batch_app), args))
        results.append(measure(f"{key}", "mlflow serve", f"{mlflow_url}/invocations",
                               f"{mlflow_url}/invocations", cycle(single_mlflow),
                               cycle(batch_mlflow), args))
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=4, help="clients for batches")
    parser.add_argument("--batch", type=int, default=100, help="rows per batch request")
    parser.add_argument("--models", default="dense-lgbm,tree-lgbm,ensemble",
                        help="comma-separated: dense-lgbm, tree-lgbm, ensemble")
    parser.add_argument("--no-plain", dest="plain", action="store_false",
                        help="skip the sklearn backend's plain (uncompiled) path")
    parser.add_argument("--no-log", dest="log", action="store_false",
                        help="skip the variant that logs every prediction to Kafka (Tansu)")
    args = parser.parse_args()
    args.kafka = ""
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-serving-") as tmp:
        root = Path(tmp)
        broker = None
        if args.log:
            port = free_port()
            broker = start_tansu(port, root / "tansu.log")
            args.kafka = f"127.0.0.1:{port}"
            asyncio.run(create_topics(args.kafka, [topics.PREDICTION_LOGGED]))
        models, test, schema = make_models(root)
        print(f"{len(schema)} features, {len(test)} held-out rows")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        # mlflow serve runs `uvicorn` by name: put this interpreter's bin folder first
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        for key in ("MLMESH_KAFKA_BOOTSTRAP", "MLMESH_SERVING_API_KEYS",
                    "MLMESH_SERVING_RATE_LIMIT", "MLMESH_SERVING_COMPILED"):
            env.pop(key, None)
        try:
            for key, title, path in models:
                if key in wanted:
                    results += serve_and_measure(key, title, path, test, schema, root, uri,
                                                 env, args)
        finally:
            if broker is not None:
                broker.terminate()
                broker.wait(10)

    print(f"\n{args.duration:.0f} s per measurement after {args.warmup:.0f} s warm-up; "
          f"single rows at concurrency 1, batches of {args.batch} at concurrency "
          f"{args.concurrency}; one uvicorn worker each; {os.cpu_count()} CPUs, shared with "
          "the load generator\n")
    header = (f"{'model':<12}{'server':<26}{'p50 ms':>9}{'p99 ms':>9}{'single req/s':>14}"
              f"{'batch rows/s':>14}{'batch p50 ms':>14}{'errors':>8}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.model:<12}{r.name:<26}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.single_rps:>14.0f}"
              f"{r.batch_rows_per_s:>14.0f}{r.batch_p50_ms:>14.2f}{r.errors:>8d}")
    print()
    for model in dict.fromkeys(r.model for r in results):
        group = [r for r in results if r.model == model]
        baseline = group[-1]
        for r in group[:-1]:
            ratio = r.batch_rows_per_s / baseline.batch_rows_per_s
            throughput_met = "met" if ratio >= THROUGHPUT_RATIO_TARGET else "NOT met"
            print(f"{model} {r.name}: batch throughput {ratio:.2f}x mlflow serve (target >= "
                  f"{THROUGHPUT_RATIO_TARGET:.0f}x: {throughput_met}); "
                  f"single-row p99 {r.p99_ms:.2f} ms (target < {P99_TARGET_MS:.0f} ms: "
                  f"{'met' if r.p99_ms < P99_TARGET_MS else 'NOT met'}); single-row p50 "
                  f"{baseline.p50_ms / r.p50_ms:.1f}x faster than mlflow serve")


if __name__ == "__main__":
    main()
