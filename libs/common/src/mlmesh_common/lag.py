"""Consumer lag as KEDA's Kafka scaler reads it: per group, end offset minus committed offset.

Read through an aiokafka consumer's committed()/end_offsets() (the admin API's
list_consumer_group_offsets is not served by Tansu). The consumer never subscribes, so
reading lag does not join the group or trigger a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from mlmesh_common.topics import ConsumerGroup


async def group_lag(bootstrap: str, groups: Iterable[ConsumerGroup],
                    request_timeout_ms: int = 10_000) -> dict[str, int]:
    """Total lag of each consumer group over its input topics, by group name.

    A partition the group never committed on counts from offset 0 (the group starts at
    the earliest offset). A group whose offsets cannot be read is left out of the answer.
    """
    lags: dict[str, int] = {}
    for group in groups:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group.group_id,
                                    enable_auto_commit=False,
                                    request_timeout_ms=request_timeout_ms,
                                    client_id=f"mlmesh-lag-{group.name}")
        try:
            await consumer.start()
            partitions = []
            for topic in group.topics:
                for number in sorted(consumer.partitions_for_topic(topic) or ()):
                    partitions.append(TopicPartition(topic, number))
            if not partitions:
                await consumer.topics()  # metadata may not be loaded yet
                for topic in group.topics:
                    for number in sorted(consumer.partitions_for_topic(topic) or ()):
                        partitions.append(TopicPartition(topic, number))
            ends = await consumer.end_offsets(partitions) if partitions else {}
            total = 0
            for tp in partitions:
                committed = await consumer.committed(tp) or 0
                total += max(0, ends.get(tp, 0) - committed)
            lags[group.name] = total
        except KafkaError:
            continue
        finally:
            await consumer.stop()
    return lags


async def topic_partitions(bootstrap: str, topic_names: Iterable[str]) -> dict[str, int]:
    """How many partitions each topic has on the broker (0 when it does not exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()
        return {name: len(consumer.partitions_for_topic(name) or ()) for name in topic_names}
    finally:
        await consumer.stop()
