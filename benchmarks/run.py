"""Runtime benchmark on the embedded broker: one event hop through a service.

A producer sends N dataset.acquired events; a `profile` service on the shared runtime
(dedup, commit after produce, tracing, metrics) re-emits each as dataset.profiled; a reader
measures the time from the first send to each output. Prints hop latency p50/p99 and
throughput; it asserts nothing (targets live in issue notes, numbers come from here).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh_common import topics
from mlmesh_common.broker import create_topics, free_port, start_tansu
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_common.settings import Settings


async def bench(events: int, home: Path, interval_s: float = 0.0) -> None:
    """`interval_s` 0 sends every event at once (queueing included); above 0 paces them."""
    port = free_port()
    broker = start_tansu(port)
    bootstrap = f"127.0.0.1:{port}"
    try:
        await create_topics(bootstrap, partitions=2)
        service = Service("profile", settings=Settings(home=home, kafka_bootstrap=bootstrap))

        @service.handles(topics.DATASET_ACQUIRED)
        async def hop(ctx: HandlerContext, event: DatasetAcquired) -> None:
            ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(n_rows=event.n_rows))

        await service.start()
        reader = AIOKafkaConsumer(topics.DATASET_PROFILED.name, bootstrap_servers=bootstrap,
                                  group_id="bench-reader", auto_offset_reset="latest")
        await reader.start()
        while not reader.assignment():
            await asyncio.sleep(0.1)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
        await producer.start()
        sent: dict[int, float] = {}
        latencies: list[float] = []
        started = time.perf_counter()

        async def send_all() -> None:
            for i in range(events):
                env = new_envelope(topics.DATASET_ACQUIRED, DatasetAcquired(n_rows=i),
                                   experiment_id=f"bench-{i % 16}",
                                   producer=Producer(service="b"))
                if interval_s:
                    await asyncio.sleep(max(0.0, started + i * interval_s - time.perf_counter()))
                sent[i] = time.perf_counter()
                await producer.send(topics.DATASET_ACQUIRED.name, encode(env),
                                    key=env.experiment_id.encode())
            await producer.flush()

        sender = asyncio.create_task(send_all())  # read while sending
        while len(latencies) < events:
            batch = await reader.getmany(timeout_ms=30_000)
            if not batch:
                raise TimeoutError(f"only {len(latencies)}/{events} events came through")
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    _, out = decode(record.value, topics.DATASET_PROFILED)
                    latencies.append(now - sent[out.n_rows])
        elapsed = time.perf_counter() - started
        await sender
        await producer.stop()
        await reader.stop()
        await service.stop()
    finally:
        broker.terminate()
        broker.wait(10)
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"events: {events}, one consumer, sequential handling with commit per event")
    how = (f"one event every {interval_s * 1000:.0f} ms" if interval_s
           else "queueing included: all events are sent at once")
    print(f"hop latency p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms "
          f"({how})")
    print(f"throughput {events / elapsed:.1f} events/s through one service instance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bench(args.events, Path(tmp)))


if __name__ == "__main__":
    main()
