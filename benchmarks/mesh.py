"""Mesh benchmark (`make bench-mesh`): scaling on one machine and the mesh's own overhead.

1. A full mesh (`mlmesh up`, one replica each) runs a few small experiments, then one on a
   generated 100k-row dataset through every stage. Overhead = end to end
   (experiment.requested .. experiment.completed) minus the time inside the pipeline's
   handlers (mlmesh_handler_seconds of every group but the gateway's and monitor's, which run
   beside the pipeline, not on its path).
2. Replicas: train-gpu alone with 1 and then 2 replicas (`--replicas train-gpu=2`), every
   small experiment's dataset.prepared produced at once (`--copies` times, under new ids):
   train jobs per minute = train-gpu-worker handlers run / seconds until the last
   training.completed. Tune likewise from the experiments' training.completed: trials per
   minute (with a seeded random sampler, no pruning and a budget no round reaches, so that
   both rounds do the same trials). BLAS/OpenMP are pinned to one thread and the families
   are single-threaded, so a replica uses one core; the figures include how busy the
   workers were and the CPU seconds of every process.
3. Event hop latency on the embedded broker: benchmarks.run (the `make bench` measurement),
   all events at once and then paced one every 50 ms.

It prints the figures (and writes them as JSON with --json); it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import http.server
import json
import os
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf import json_format

from mlmesh.events.v1.envelope_pb2 import DeadLetter, Producer
from mlmesh_cli import runner
from mlmesh_common import topics
from mlmesh_common.broker import free_port
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.ledger import open_ledger
from mlmesh_common.topics import Topic

SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_SAMPLE = re.compile(r'^mlmesh_(handler_seconds_sum|handler_seconds_count|handed_over_total)'
                     r'\{group="([^"]+)",topic="[^"]+"\} ([0-9.eE+-]+)$')
_KINDS = {"handler_seconds_sum": "sum", "handler_seconds_count": "count",
          "handed_over_total": "handed_over"}


def make_dataset(path: Path, rows: int, seed: int = 0) -> Path:
    """A binary classification table: 16 numeric and 4 categorical columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 16))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(16)])
    for i in range(4):
        frame[f"c{i}"] = rng.choice(list("abcdef"), size=rows)
    signal = x[:, 0] - 0.7 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + (frame["c0"] == "a")
    frame["target"] = np.where(signal + rng.normal(scale=0.8, size=rows) > 0, "yes", "no")
    frame.to_csv(path, index=False)
    return path


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def start(home: Path, replicas: dict[str, int], admin_key: str) -> dict:
    env = {**SINGLE_THREAD, "MLMESH_ACQUIRE_ALLOWED_HOSTS": "127.0.0.1",
           "MLMESH_ADMIN_API_KEY": admin_key}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        runner.launch_detached(runner.MeshConfig(home=home, gateway_port=free_port(),
                                                 grpc_port=free_port(), replicas=replicas))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return runner.wait_ready(home, timeout_s=600)


def handler_seconds(state: dict) -> dict[str, dict[str, float]]:
    """Per consumer group, all replicas: handler seconds ('sum'), handled events ('count')
    and events handed to an idle worker instead ('handed_over')."""
    totals: dict[str, dict[str, float]] = {}
    with httpx.Client(timeout=10) as http:
        for name, proc in state["processes"].items():
            if name == "mlflow" or not proc.get("port"):
                continue
            try:
                text = http.get(f"http://127.0.0.1:{proc['port']}/metrics").text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                match = _SAMPLE.match(line)
                if match:
                    kind, group, value = match.groups()
                    slot = totals.setdefault(group, {"sum": 0.0, "count": 0.0,
                                                     "handed_over": 0.0})
                    slot[_KINDS[kind]] += float(value)
    return totals


def cpu_seconds(state: dict) -> dict[str, float]:
    """CPU seconds (user + system, children included) of every mesh process and the broker,
    and of the whole machine ('machine'), so far."""
    pids = {name: proc.get("pid") for name, proc in state["processes"].items()}
    pids["broker"] = state.get("broker_pid")
    out: dict[str, float] = {}
    for name, pid in pids.items():
        if not pid:
            continue
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        out[name] = times.user + times.system + times.children_user + times.children_system
    machine = psutil.cpu_times()
    out["machine"] = machine.user + machine.system + machine.nice
    return out


def delta(after: dict, before: dict, group: str, kind: str) -> float:
    return after.get(group, {}).get(kind, 0.0) - before.get(group, {}).get(kind, 0.0)


def submit_all(state: dict, admin_key: str, specs: list[dict]) -> list[str]:
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=state["gateway_url"], headers=headers, timeout=60) as http:
        ids = []
        for spec in specs:
            response = http.post("/v1/experiments", json=spec)
            response.raise_for_status()
            ids.append(response.json()["experiment_id"])
    return ids


def wait_all(home: Path, ids: list[str], timeout_s: float) -> dict[str, Any]:
    ledger = open_ledger(f"sqlite:///{home / 'ledger.sqlite3'}")
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            records = {eid: ledger.get_experiment(eid) for eid in ids}
            if all(r is not None and r.status in ("completed", "failed", "cancelled")
                   for r in records.values()):
                break
            time.sleep(2)
        else:
            raise TimeoutError(f"experiments not done after {timeout_s:.0f}s")
        failed = {eid: r.failure_reason for eid, r in records.items() if r.status != "completed"}
        if failed:
            raise RuntimeError(f"experiments failed: {failed}")
        out = {}
        for eid, record in records.items():
            events = ledger.events_since(eid, 0, 100_000)
            times = {e.type: e.produced_at for e in events}
            out[eid] = {"stages": {s.name: (s.started_at, s.finished_at) for s in record.stages},
                        "e2e_s": times["mlmesh.experiment.completed"]
                        - times["mlmesh.experiment.requested"]}
        return out
    finally:
        ledger.close()


def stage_payloads(home: Path, ids: list[str], event_type: str) -> list[dict]:
    """The logged payloads of one event type of the given experiments."""
    ledger = open_ledger(f"sqlite:///{home / 'ledger.sqlite3'}")
    try:
        return [event.payload for eid in ids
                if (event := ledger.latest_event(eid, event_type)) is not None]
    finally:
        ledger.close()


async def fan(bootstrap: str, source: Topic, payloads: list[dict], done: Topic, tag: str,
              timeout_s: float) -> float:
    """Produce every payload at once under new experiment ids; seconds until each one's
    `done` event is out."""
    ids = [f"{tag}-{i}" for i in range(len(payloads))]
    reader = AIOKafkaConsumer(done.name, source.dlq, bootstrap_servers=bootstrap,
                              group_id=None, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await reader.start()
    await producer.start()
    try:
        started = time.monotonic()
        for eid, payload in zip(ids, payloads, strict=True):
            message = json_format.ParseDict(payload, source.payload(), ignore_unknown_fields=True)
            env = new_envelope(source, message, experiment_id=eid,
                               producer=Producer(service="bench-mesh"))
            await producer.send_and_wait(source.name, encode(env), key=eid.encode())
        waiting = set(ids)
        while waiting:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{len(waiting)} of {len(ids)} {done.name} missing")
            batch = await reader.getmany(timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if tp.topic == source.dlq:
                        raise RuntimeError(f"{source.name} was dead-lettered: "
                                           f"{DeadLetter.FromString(record.value).error_message}")
                    waiting.discard(decode(record.value, done)[0].experiment_id)
        return time.monotonic() - started
    finally:
        await producer.stop()
        await reader.stop()


def worker_round(root: Path, service: str, replicas: int, source: Topic, payloads: list[dict],
                 done: Topic, worker_group: str) -> dict[str, Any]:
    """Only `service` (x replicas) on a fresh broker, reading the full mesh's artifacts: its
    work all queued at once."""
    home = root / f"{service}-{replicas}"
    env = {**SINGLE_THREAD, "MLMESH_ARTIFACT_ROOT": str(root / "mesh" / "artifacts")}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    supervisor = runner.Supervisor(runner.MeshConfig(home=home, services=(service,),
                                                     replicas={service: replicas}))
    try:
        state = supervisor.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        deadline = time.monotonic() + 300
        while not all(v == "ready" for v in runner.probe(state).values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} x{replicas} not ready")
            time.sleep(1)
        before, cpu_before = handler_seconds(state), cpu_seconds(state)
        seconds = asyncio.run(fan(supervisor._bootstrap, source, payloads, done,
                                  f"bench-{service}-{replicas}", timeout_s=1800))
        after, cpu_after = handler_seconds(state), cpu_seconds(state)
        handed_over = delta(after, before, worker_group, "handed_over")
        handled = delta(after, before, worker_group, "count") - handed_over
        busy = delta(after, before, worker_group, "sum")
        return {"replicas": replicas, "units": handled, "handed_over": handed_over,
                "seconds": seconds,
                "per_min": 60 * handled / seconds,
                # Share of the round the workers spent in their handler (1.0 = always busy).
                "worker_busy": busy / (replicas * seconds),
                "handler_s": {g: round(delta(after, before, g, "sum"), 1)
                              for g in sorted(after)},
                "cpu_s": {name: round(cpu_after[name] - cpu_before.get(name, 0.0), 1)
                          for name in sorted(cpu_after)}}
    finally:
        supervisor.stop()


def scaling(root: Path, base_url: str, args: argparse.Namespace, admin_key: str,
            ) -> dict[str, Any]:
    """A full mesh runs the experiments once (and the overhead experiment); their prepared
    datasets and training results then feed train-gpu and tune alone, 1 and 2 replicas."""
    home = root / "mesh"
    state = start(home, {}, admin_key)
    try:
        specs = [{"dataset_uri": f"{base_url}/small.csv", "target": "target",
                  "time_budget_s": args.budget, "max_trials": args.trials, "seed": i,
                  "families": args.families.split(","), "stages": ["tune"],
                  "project": "bench-scaling"} for i in range(args.experiments)]
        ids = submit_all(state, admin_key, specs)
        wait_all(home, ids, timeout_s=3600)
        result: dict[str, Any] = {}
        if not args.skip_overhead:
            result["overhead"] = overhead_round(home, state, base_url, admin_key)
            print(json.dumps(result["overhead"], indent=2), flush=True)
    finally:
        runner.shutdown(home)
    prepared = stage_payloads(home, ids, topics.DATASET_PREPARED.event_type) * args.copies
    trained = [fixed_tuning(p) for p in
               stage_payloads(home, ids, topics.TRAINING_COMPLETED.event_type)] * args.copies
    for replicas in (1, 2):
        if "train" in args.rounds:
            result[f"train_{replicas}"] = worker_round(
                root, "train-gpu", replicas, topics.DATASET_PREPARED, prepared,
                topics.TRAINING_COMPLETED, "train-gpu-worker")
            print("train", json.dumps(result[f"train_{replicas}"]), flush=True)
        if "tune" in args.rounds:
            result[f"tune_{replicas}"] = worker_round(
                root, "tune", replicas, topics.TRAINING_COMPLETED, trained,
                topics.TUNING_COMPLETED, "tune-worker")
            print("tune", json.dumps(result[f"tune_{replicas}"]), flush=True)
    return result


def fixed_tuning(payload: dict) -> dict:
    """A training.completed payload whose tuning is the same work however many replicas run
    it: a seeded random sampler (TPE's suggestions, and so a trial's cost, depend on which
    trials happen to be finished when it is asked), no pruning (which depends on the same),
    and a time budget no round reaches (a queue of waiting trials would otherwise eat the
    budget and end tuning with fewer trials)."""
    payload = copy.deepcopy(payload)
    payload["dataset"]["spec"].update(sampler="random", pruner="none", time_budget_s=7200)
    return payload


def overhead_round(home: Path, state: dict, base_url: str, admin_key: str) -> dict[str, Any]:
    before = handler_seconds(state)
    spec = {"dataset_uri": f"{base_url}/large.csv", "target": "target", "time_budget_s": 120,
            "max_trials": 4, "families": ["dummy", "linear"], "project": "bench-overhead"}
    (eid,) = submit_all(state, admin_key, [spec])
    run = wait_all(home, [eid], timeout_s=3600)[eid]
    time.sleep(2)
    after = handler_seconds(state)
    groups = set(after) | set(before)
    pipeline = {g: delta(after, before, g, "sum") for g in groups
                if not g.startswith("gateway") and g != "monitor"}
    inside = sum(pipeline.values())
    return {"e2e_s": run["e2e_s"], "handlers_s": inside, "overhead_s": run["e2e_s"] - inside,
            "overhead_pct": 100 * (run["e2e_s"] - inside) / run["e2e_s"],
            "by_group_s": {g: round(v, 2) for g, v in sorted(pipeline.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=3)
    parser.add_argument("--copies", type=int, default=3,
                        help="times each experiment's work is queued in the replica rounds")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the small dataset")
    parser.add_argument("--large-rows", type=int, default=100_000)
    # Jobs of seconds, not milliseconds: the rounds measure workers, not the broker.
    parser.add_argument("--families", default="random_forest,extra_trees,hist_gb,knn")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--hop-events", type=int, default=300)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--rounds", default="train,tune",
                        help="replica rounds to run: train, tune or both")
    parser.add_argument("--keep", type=Path,
                        help="work in this folder and keep it (logs, ledgers, studies)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    admin_key = f"mlmesh-bench-{secrets.token_hex(20)}"
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-mesh-") as tmp:
        root = Path(tmp)
        if args.keep:
            root = args.keep.resolve()
            root.mkdir(parents=True, exist_ok=True)
        data = root / "data"
        data.mkdir()
        make_dataset(data / "small.csv", args.rows)
        if not args.skip_overhead:
            make_dataset(data / "large.csv", args.large_rows, seed=1)
        server, base_url = serve(data)
        try:
            results.update(scaling(root, base_url, args, admin_key))
        finally:
            server.shutdown()
    for kind, unit in (("train", "jobs"), ("tune", "trials")):
        if f"{kind}_1" not in results:
            continue
        one, two = results[f"{kind}_1"], results[f"{kind}_2"]
        results[f"{kind}_speedup"] = two["per_min"] / one["per_min"]
        print(f"{kind} {unit}/min: {one['per_min']:.1f} (1 replica, {one['units']:.0f} in "
              f"{one['seconds']:.0f}s) -> {two['per_min']:.1f} (2 replicas, {two['units']:.0f} "
              f"in {two['seconds']:.0f}s): x{results[f'{kind}_speedup']:.2f}; workers busy "
              f"{one['worker_busy']:.0%} / {two['worker_busy']:.0%} of the round, machine CPU "
              f"{one['cpu_s']['machine'] / one['seconds']:.2f} / "
              f"{two['cpu_s']['machine'] / two['seconds']:.2f} cores")
    if "overhead" in results:
        o = results["overhead"]
        print(f"overhead on {args.large_rows} rows: end to end {o['e2e_s']:.1f}s, in handlers "
              f"{o['handlers_s']:.1f}s, mesh {o['overhead_s']:.1f}s = {o['overhead_pct']:.1f}%")
    from benchmarks.run import bench as hop_bench

    for interval_s in (0.0, 0.05):  # a burst, then paced below the service's throughput
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(hop_bench(args.hop_events, Path(tmp), interval_s))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
