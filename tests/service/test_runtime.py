"""The runtime against a real broker (Tansu): redelivery, dead letters, breakers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka_io import read_topic, send_raw

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.envelope_pb2 import DeadLetter, Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentFailed, ExperimentSpec
from mlmesh_common import breakers, topics
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_common.settings import Settings

pytestmark = pytest.mark.service
HERE = Path(__file__).parent


async def produce_acquired(bootstrap: str, experiment_id: str, columns: list[str]) -> str:
    env = new_envelope(topics.DATASET_ACQUIRED,
                       DatasetAcquired(spec=ExperimentSpec(project="t"), columns=columns),
                       experiment_id=experiment_id, producer=Producer(service="test"))
    await send_raw(bootstrap, topics.DATASET_ACQUIRED.name, experiment_id, encode(env))
    return env.event_id


def downstream_counter(settings: Settings, experiment: str) -> tuple[Service, list[str]]:
    """A 'prep' service that records the dataset.profiled events of `experiment` it handles
    (the group is shared with other tests' experiments on the same broker)."""
    seen: list[str] = []
    svc = Service("prep", settings=settings)

    @svc.handles(topics.DATASET_PROFILED)
    async def on_profiled(ctx: HandlerContext, event: DatasetProfiled) -> None:
        if ctx.experiment_id == experiment:
            seen.append(ctx.envelope.event_id)

    return svc, seen


async def test_crash_before_commit_redelivers_without_duplicate_effect(
        mesh_settings: Settings) -> None:
    """A profile process dies after producing but before committing; the restarted one redoes
    the work, and the downstream consumer handles the output exactly once."""
    experiment = f"crash-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "MLMESH_HOME": str(mesh_settings.home),
           "MLMESH_KAFKA_BOOTSTRAP": mesh_settings.kafka_bootstrap,
           "MLMESH_SESSION_TIMEOUT_MS": "6000", "MLMESH_HEARTBEAT_INTERVAL_MS": "1000",
           "CRASH_MARKER": str(mesh_settings.home / "crashed")}
    down, seen = downstream_counter(mesh_settings, experiment)
    await down.start()
    try:
        await produce_acquired(mesh_settings.kafka_bootstrap, experiment, ["a", "b"])
        first = subprocess.run([sys.executable, str(HERE / "crashing_service.py")], env=env,
                               timeout=120, capture_output=True, text=True)
        assert first.returncode == 17, first.stderr[-2000:]  # died after produce, pre-commit
        second = subprocess.Popen([sys.executable, str(HERE / "crashing_service.py")], env=env)
        try:
            records = await read_topic(mesh_settings.kafka_bootstrap,
                                       topics.DATASET_PROFILED.name, experiment, want=2)
            deadline = time.monotonic() + 60
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)  # give a duplicate every chance to be (wrongly) handled
        finally:
            second.terminate()
            assert second.wait(30) == 0  # graceful SIGTERM exits cleanly
    finally:
        await down.stop()
    ids = {decode(r.value, topics.DATASET_PROFILED)[0].event_id for r in records}
    assert len(records) == 2, "the redo produced the output again (at-least-once)"
    assert len(ids) == 1, "the redo must re-emit the same event id"
    assert seen == list(ids), "the downstream consumer handled the output exactly once"


async def test_poison_message_goes_to_dlq_and_next_flows(mesh_settings: Settings) -> None:
    experiment = f"poison-{uuid.uuid4().hex[:8]}"
    handled: list[list[str]] = []
    svc = Service("profile", settings=mesh_settings)

    @svc.handles(topics.DATASET_ACQUIRED)
    async def on_acquired(ctx: HandlerContext, event: DatasetAcquired) -> None:
        if "boom" in event.columns:
            raise ValueError("column 'boom' cannot be profiled: remove it and resubmit")
        handled.append(list(event.columns))

    await svc.start()
    try:
        await send_raw(mesh_settings.kafka_bootstrap, topics.DATASET_ACQUIRED.name, experiment,
                       b"\xff\x00 not protobuf")
        await produce_acquired(mesh_settings.kafka_bootstrap, experiment, ["boom"])
        await produce_acquired(mesh_settings.kafka_bootstrap, experiment, ["ok"])
        dlq = await read_topic(mesh_settings.kafka_bootstrap, topics.DATASET_ACQUIRED.dlq,
                               experiment, want=2)
        deadline = time.monotonic() + 30
        while not handled and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        failed = await read_topic(mesh_settings.kafka_bootstrap, topics.EXPERIMENT_FAILED.name,
                                  experiment, want=1)
    finally:
        await svc.stop()
    assert handled == [["ok"]]
    letters = [DeadLetter.FromString(r.value) for r in dlq]
    assert letters[0].original_value == b"\xff\x00 not protobuf"
    assert letters[0].error_type == "UndecodableEvent"
    assert letters[1].error_type == "ValueError" and "boom" in letters[1].error_message
    assert letters[1].attempt == 1, "a permanent error is not retried"
    assert "Traceback" in letters[1].stack and letters[1].experiment_id == experiment
    reason = decode(failed[0].value, topics.EXPERIMENT_FAILED)[1]
    assert isinstance(reason, ExperimentFailed) and "boom" in reason.reason
    assert reason.dead_letter_topic == topics.DATASET_ACQUIRED.dlq


async def test_open_breaker_recovers_and_event_completes(mesh_settings: Settings) -> None:
    experiment = f"breaker-{uuid.uuid4().hex[:8]}"
    settings = mesh_settings.model_copy(update={"max_attempts": 8, "retry_initial_s": 0.3,
                                                "retry_max_s": 0.6})
    calls: list[float] = []
    name = f"flaky-{experiment}"
    svc = Service("profile", settings=settings)

    def flaky_dependency() -> str:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise ConnectionError("dependency down")
        return "ok"

    states: list[str] = []

    @svc.handles(topics.DATASET_ACQUIRED)
    async def on_acquired(ctx: HandlerContext, event: DatasetAcquired) -> None:
        try:
            result = breakers.breaker(name).call(flaky_dependency)
        finally:
            states.append(breakers.breaker(name).current_state)
        ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(target=result))

    await svc.start()
    try:
        await produce_acquired(settings.kafka_bootstrap, experiment, ["x"])
        out = await read_topic(settings.kafka_bootstrap, topics.DATASET_PROFILED.name,
                               experiment, want=1)
    finally:
        await svc.stop()
    assert len(out) == 1 and decode(out[0].value, topics.DATASET_PROFILED)[1].target == "ok"
    assert "open" in states, "two consecutive failures must open the breaker"
    assert states[-1] == "closed", "a successful half-open probe closes it"
    assert len(calls) == 3, "while open, calls are refused without touching the dependency"
    sample = breakers.BREAKER_STATE.labels(name)._value.get()
    assert sample == 0
