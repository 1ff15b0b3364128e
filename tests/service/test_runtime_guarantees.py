"""More runtime guarantees against Tansu: long work, cancellation, tracing, health."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentCancel, ExperimentSpec
from mlmesh_common import observability, topics
from mlmesh_common.envelope import encode, new_envelope
from mlmesh_common.errors import Cancelled
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_common.settings import Settings

pytestmark = pytest.mark.service


async def send(bootstrap: str, topic: topics.Topic, payload: object, experiment_id: str,
               headers: list[tuple[str, bytes]] | None = None) -> str:
    env = new_envelope(topic, payload, experiment_id=experiment_id,
                       producer=Producer(service="test"))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, encode(env), key=experiment_id.encode(),
                                     headers=headers or [])
    finally:
        await producer.stop()
    return env.event_id


async def wait_until(predicate, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_long_work_keeps_the_partition_and_is_handled_once(
        mesh_settings: Settings) -> None:
    """Work longer than the session timeout runs off the poll loop on a paused partition:
    no rebalance, no redelivery."""
    experiment = f"long-{uuid.uuid4().hex[:8]}"
    settings = mesh_settings.model_copy(update={"session_timeout_ms": 6000,
                                                "max_poll_interval_ms": 8000})
    calls: list[float] = []
    svc = Service("profile", settings=settings)

    @svc.handles(topics.DATASET_ACQUIRED)
    async def slow(ctx: HandlerContext, event: DatasetAcquired) -> None:
        calls.append(time.monotonic())
        await ctx.run_blocking(time.sleep, 12)  # longer than session and poll interval

    await svc.start()
    try:
        await send(settings.kafka_bootstrap, topics.DATASET_ACQUIRED, DatasetAcquired(),
                   experiment)
        await wait_until(lambda: calls, 30)
        await asyncio.sleep(16)
    finally:
        await svc.stop()
    assert len(calls) == 1


async def test_cancel_stops_work_between_steps_and_drops_later_events(
        mesh_settings: Settings) -> None:
    experiment = f"cancel-{uuid.uuid4().hex[:8]}"
    steps: list[int] = []
    outcomes: list[str] = []
    svc = Service("profile", settings=mesh_settings)

    @svc.handles(topics.DATASET_ACQUIRED)
    async def stepwise(ctx: HandlerContext, event: DatasetAcquired) -> None:
        try:
            for step in range(50):
                ctx.check_cancelled()
                steps.append(step)
                await asyncio.sleep(0.2)
        except Cancelled:
            outcomes.append("cancelled")
            raise
        ctx.emit(topics.DATASET_PROFILED, DatasetProfiled())
        outcomes.append("finished")

    await svc.start()
    try:
        await asyncio.sleep(1)  # the cancel listener starts at the end of the topic
        await send(mesh_settings.kafka_bootstrap, topics.DATASET_ACQUIRED, DatasetAcquired(),
                   experiment)
        await wait_until(lambda: len(steps) >= 3)
        await send(mesh_settings.kafka_bootstrap, topics.EXPERIMENT_CANCEL,
                   ExperimentCancel(reason="test"), experiment)
        await wait_until(lambda: outcomes)
        handled_steps = len(steps)
        await send(mesh_settings.kafka_bootstrap, topics.DATASET_ACQUIRED, DatasetAcquired(),
                   experiment)
        await asyncio.sleep(3)
    finally:
        await svc.stop()
    assert outcomes == ["cancelled"]
    assert handled_steps < 50 and len(steps) == handled_steps, "later events are dropped"


async def test_span_continues_the_producers_trace_and_health_endpoints(
        mesh_settings: Settings) -> None:
    trace.set_tracer_provider(TracerProvider())
    experiment = f"trace-{uuid.uuid4().hex[:8]}"
    trace_id = uuid.uuid4().hex
    parent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    seen: list[str] = []
    settings = mesh_settings.model_copy(update={"http_port": 0})
    svc = Service("profile", settings=settings)

    @svc.handles(topics.DATASET_ACQUIRED)
    async def traced(ctx: HandlerContext, event: DatasetAcquired) -> None:
        span = trace.get_current_span().get_span_context()
        seen.append(f"{span.trace_id:032x}")
        seen.append(observability.experiment_id_var.get())

    await svc.start()
    try:
        base = f"http://127.0.0.1:{svc._health.port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/healthz")).status_code == 200
            assert (await client.get(f"{base}/readyz")).json()["ready"] is True
            await send(settings.kafka_bootstrap, topics.DATASET_ACQUIRED,
                       DatasetAcquired(spec=ExperimentSpec()), experiment,
                       headers=[("traceparent", parent.encode())])
            await wait_until(lambda: seen)
            metrics = (await client.get(f"{base}/metrics")).text
    finally:
        await svc.stop()
    assert seen == [trace_id, experiment]
    assert 'mlmesh_events_in_total{group="profile",topic="mlmesh.dataset.acquired.v1"}' in metrics
    assert "mlmesh_handler_seconds_bucket" in metrics and "mlmesh_consumer_lag" in metrics
