"""Handing work to an idle worker, on the real broker: the lag per partition and the member
count a worker reads, matched with the round-robin assignment the runtime's consumers use,
and two workers of one group sharing items that were all queued on one worker's partition."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.training_pb2 import TuneTrial
from mlmesh_common import topics
from mlmesh_common.envelope import encode, new_envelope
from mlmesh_common.lag import WorkQueueReader
from mlmesh_common.runtime import Service

pytestmark = pytest.mark.service


async def _settled(consumers: list, partitions: int) -> None:
    for _ in range(100):  # until the group has settled with every member assigned
        if sum(len(c.assignment()) for c in consumers) == partitions and all(
            c.assignment() for c in consumers
        ):
            return
        await asyncio.gather(*(c.getmany(timeout_ms=200, max_records=0) for c in consumers))
    raise AssertionError("the group did not settle")


async def test_lag_per_partition_and_members_point_at_the_idle_worker(kafka_bootstrap):
    topic, group_id = f"work-{uuid.uuid4().hex[:8]}", f"workers-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for partition in (0, 0, 0, 1, 1):  # one record per request, as the runtime produces
        await producer.send_and_wait(topic, b"job", partition=partition)
    await producer.stop()
    reader = WorkQueueReader(kafka_bootstrap, group_id)
    assert await reader.members() == 0
    consumers = [
        AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, group_id=group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1,
            partition_assignment_strategy=(RoundRobinPartitionAssignor,),
            session_timeout_ms=6000, heartbeat_interval_ms=1000,
        )  # fmt: skip
        for _ in range(2)
    ]
    await asyncio.gather(*(c.start() for c in consumers))
    try:
        await _settled(consumers, 4)
        owners = {tp.partition: i for i, c in enumerate(consumers) for tp in c.assignment()}
        first = owners[0]
        # The round-robin assignor deals sorted partitions in turn: 0 and 2 to one member.
        assert owners == {0: first, 2: first, 1: 1 - first, 3: 1 - first}
        await consumers[first].commit({TopicPartition(topic, 0): 1})  # one job done
        assert await reader.lags(topic) == {0: 2, 1: 2, 2: 0, 3: 0}
        assert await reader.members() == 2
        # Both workers have a job queued behind the current one: nothing to hand over.
        assert topics.idle_worker_partition(await reader.lags(topic), 2, here=0) is None
        await consumers[1 - first].commit({TopicPartition(topic, 1): 1})
        # The other worker has only its current job left: partition 0's next goes to that
        # worker's partition with the least lag.
        assert topics.idle_worker_partition(await reader.lags(topic), 2, here=0) == 3
    finally:
        await asyncio.gather(*(c.stop() for c in consumers))
        await reader.close()


async def test_items_queued_on_one_worker_are_shared_with_the_idle_one(mesh_settings):
    """Six items all on one partition: its worker hands items to the other worker whenever
    that one has nothing, so both work and every item is done exactly once."""
    done: list[tuple[str, str]] = []
    handed: list[str] = []

    def worker(name: str) -> Service:
        svc = Service("tune", settings=mesh_settings.model_copy(
            update={"groups": "tune-worker", "instance": name}))  # fmt: skip

        @svc.handles(topics.TUNE_TRIAL, group="tune-worker")
        async def work(ctx, trial: TuneTrial) -> None:
            if not trial.trial_id.startswith(batch):
                return  # another test's trial on the shared broker
            if await ctx.hand_to_idle_worker(trial, key=trial.trial_id):
                handed.append(name)
                return
            done.append((name, trial.trial_id))
            await asyncio.sleep(1.0)

        return svc

    batch = f"handover-{uuid.uuid4().hex[:8]}"
    workers = [worker("a"), worker("b")]
    await asyncio.gather(*(w.start() for w in workers))
    try:
        consumers = [w._consumers["tune-worker"] for w in workers]
        for _ in range(150):  # the services poll; wait until both have a partition
            if all(c.assignment() for c in consumers):
                break
            await asyncio.sleep(0.1)
        producer = AIOKafkaProducer(bootstrap_servers=mesh_settings.kafka_bootstrap)
        await producer.start()
        for i in range(6):
            trial = TuneTrial(trial_id=f"{batch}-{i}", trial_number=i, family="knn")
            env = new_envelope(topics.TUNE_TRIAL, trial, experiment_id=batch,
                               producer=Producer(service="test"))
            await producer.send_and_wait(topics.TUNE_TRIAL.name, encode(env),
                                         key=trial.trial_id.encode(), partition=0)
        await producer.stop()
        for _ in range(300):
            if len(done) >= 6:
                break
            await asyncio.sleep(0.1)
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    assert sorted(t for _, t in done) == [f"{batch}-{i}" for i in range(6)], done
    assert {name for name, _ in done} == {"a", "b"}, done  # both workers did items
    assert handed, "no item was handed over"
