"""Raw Kafka I/O for service tests: send one record, read a key's records from the start."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def send_raw(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    """Produce one record (bytes as given) and wait for the broker's ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str, key: str, want: int,
                     timeout_s: float = 60) -> list:
    """Every record of ``key`` on ``topic`` (from the start) once ``want`` are there, or
    what arrived by the deadline."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found, deadline = [], time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(found) < want:
            batch = await consumer.getmany(timeout_ms=500)
            found += [r for recs in batch.values() for r in recs if r.key == key.encode()]
        return found
    finally:
        await consumer.stop()
