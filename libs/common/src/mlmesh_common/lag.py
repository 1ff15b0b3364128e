"""Consumer lag as KEDA's Kafka scaler reads it: per group, end offset minus committed offset.

Read through an aiokafka consumer's committed()/end_offsets() (the admin API's
list_consumer_group_offsets is not served by Tansu). The consumer never subscribes, so
reading lag does not join the group or trigger a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from mlmesh_common.topics import ConsumerGroup


async def group_lag(bootstrap: str, groups: Iterable[ConsumerGroup],
                    request_timeout_ms: int = 10_000) -> dict[str, int]:
    """Total lag of each consumer group over its input topics, by group name.

    A partition the group never committed on counts from offset 0 (the group starts at
    the earliest offset). Topics a service reads under a second group id
    (``ConsumerGroup.topic_group_ids``) count with that group's commits. A group whose
    offsets cannot be read is left out of the answer.
    """
    lags: dict[str, int] = {}
    for group in groups:
        try:
            total = 0
            for group_id, names in group.topics_by_group_id().items():
                total += await _lag(bootstrap, group_id, names, request_timeout_ms,
                                    f"mlmesh-lag-{group.name}")
            lags[group.name] = total
        except KafkaError:
            continue
    return lags


async def _lag(bootstrap: str, group_id: str, topic_names: tuple[str, ...],
               request_timeout_ms: int, client_id: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id,
                                enable_auto_commit=False, request_timeout_ms=request_timeout_ms,
                                client_id=client_id)
    try:
        await consumer.start()
        partitions = _partitions(consumer, topic_names)
        if not partitions:
            await consumer.topics()  # metadata may not be loaded yet
            partitions = _partitions(consumer, topic_names)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        total = 0
        for tp in partitions:
            committed = await consumer.committed(tp) or 0
            total += max(0, ends.get(tp, 0) - committed)
        return total
    finally:
        await consumer.stop()


class WorkQueueReader:
    """Reads one consumer group's lag per partition of a topic, and its member count, over
    connections kept open between reads (a handler may ask before every work item)."""

    def __init__(self, bootstrap: str, group_id: str, request_timeout_ms: int = 5_000) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
            request_timeout_ms=request_timeout_ms, client_id=f"mlmesh-lag-{group_id}",
        )  # fmt: skip
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                          request_timeout_ms=request_timeout_ms,
                                          client_id=f"mlmesh-members-{group_id}")  # fmt: skip
        self._started = False

    async def _start(self) -> None:
        if not self._started:
            await self._consumer.start()
            await self._admin.start()
            self._started = True

    async def lags(self, topic_name: str) -> dict[int, int]:
        """The group's lag on each partition of ``topic_name``: the messages its members
        have not committed yet, the ones being handled included."""
        await self._start()
        partitions = _partitions(self._consumer, (topic_name,))
        if not partitions:
            await self._consumer.topics()  # metadata may not be loaded yet
            partitions = _partitions(self._consumer, (topic_name,))
        ends = await self._consumer.end_offsets(partitions) if partitions else {}
        committed = {tp: await self._consumer.committed(tp) or 0 for tp in partitions}
        return {tp.partition: max(0, ends.get(tp, 0) - committed[tp]) for tp in partitions}

    async def members(self) -> int:
        """Members of the group now (0 when it has none or the broker does not know it)."""
        await self._start()
        responses = await self._admin.describe_consumer_groups([self.group_id])
        return sum(len(g[5]) for r in responses for g in r.groups
                   if g[1] == self.group_id and g[0] == 0)  # fmt: skip

    async def close(self) -> None:
        """Close the connections."""
        if self._started:
            await self._consumer.stop()
            await self._admin.close()
            self._started = False


def _partitions(consumer: AIOKafkaConsumer, topic_names: tuple[str, ...]) -> list[TopicPartition]:
    return [TopicPartition(topic, number) for topic in topic_names
            for number in sorted(consumer.partitions_for_topic(topic) or ())]


async def topic_partitions(bootstrap: str, topic_names: Iterable[str]) -> dict[str, int]:
    """How many partitions each topic has on the broker (0 when it does not exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()
        return {name: len(consumer.partitions_for_topic(name) or ()) for name in topic_names}
    finally:
        await consumer.stop()
