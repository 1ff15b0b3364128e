"""The runner's autoscaler against a real broker: lag read the way KEDA reads it (end offset
minus the group's committed offset) scales a service up, and draining it scales it down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mlmesh_cli.runner import Autoscaler
from mlmesh_common import topics
from mlmesh_common.broker import create_topics, free_port, start_tansu
from mlmesh_common.lag import group_lag

pytestmark = pytest.mark.reliability
TUNE_INPUTS = (topics.TRAINING_COMPLETED, topics.TUNE_TRIAL, topics.TUNE_TRIAL_COMPLETED)
MONITOR_INPUTS = (topics.MODEL_PUBLISHED, topics.PREDICTION_LOGGED, topics.GROUND_TRUTH_LOGGED)


@pytest.fixture
def bootstrap(tmp_path) -> Iterator[str]:
    """A broker of its own: lag must not depend on what other tests produce."""
    port = free_port()
    proc = start_tansu(port, tmp_path / "tansu.log")
    address = f"127.0.0.1:{port}"
    asyncio.run(create_topics(address, TUNE_INPUTS + MONITOR_INPUTS))
    yield address
    proc.terminate()
    proc.wait(10)


async def fill(address: str, count: int, topic: str = topics.TUNE_TRIAL.name) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=address)
    await producer.start()
    try:
        # One record per request, as the runtime produces: Tansu answers ListOffsets(latest)
        # with the last batch's base offset + 1, so a batch of records would count once.
        for i in range(count):
            await producer.send_and_wait(topic, b"event", key=f"t{i}".encode())
    finally:
        await producer.stop()


async def drain(address: str, count: int, topic: str = topics.TUNE_TRIAL.name,
                group_id: str = topics.group("tune-worker").group_id) -> None:
    """Consume and commit `count` records of `topic` as `group_id` would (default: trials
    as the tune-worker group)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=address, group_id=group_id,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=2000)
            seen += sum(len(records) for records in batch.values())
        await consumer.commit()
    finally:
        await consumer.stop()


def test_lag_scales_tune_up_to_the_ceiling_and_back_down(bootstrap: str) -> None:
    asyncio.run(fill(bootstrap, 30))
    lags = asyncio.run(group_lag(bootstrap, topics.groups_of("tune")))
    assert lags == {"tune-coordinator": 0, "tune-worker": 30}
    replicas = {"tune": 1}
    scaler = Autoscaler(bootstrap, ("tune",), current=replicas.__getitem__,
                        scale=replicas.__setitem__, max_replicas=3, cooldown_s=0)
    assert scaler.step() == {"tune": 3}  # ceil(30 / 4) = 8, capped at --max-replicas
    asyncio.run(drain(bootstrap, 30))
    assert asyncio.run(group_lag(bootstrap, topics.groups_of("tune")))["tune-worker"] == 0
    assert scaler.step() == {"tune": 2}  # down one step at a time
    assert scaler.step() == {"tune": 1}
    assert scaler.step() == {}


def test_a_topic_read_under_a_second_group_id_counts_that_groups_commits(bootstrap: str) -> None:
    # The monitor reads model.published in group mlmesh.monitor.models and served events
    # in group mlmesh.monitor: its lag is the sum of both.
    monitor = topics.group("monitor")
    published = topics.MODEL_PUBLISHED.name
    assert monitor.group_id_for(published) == topics.MONITOR_MODELS_GROUP_ID
    asyncio.run(fill(bootstrap, 4, published))
    asyncio.run(fill(bootstrap, 6, topics.PREDICTION_LOGGED.name))
    assert asyncio.run(group_lag(bootstrap, [monitor])) == {"monitor": 10}
    asyncio.run(drain(bootstrap, 4, published, topics.MONITOR_MODELS_GROUP_ID))
    assert asyncio.run(group_lag(bootstrap, [monitor])) == {"monitor": 6}
    asyncio.run(drain(bootstrap, 6, topics.PREDICTION_LOGGED.name, monitor.group_id))
    assert asyncio.run(group_lag(bootstrap, [monitor])) == {"monitor": 0}
