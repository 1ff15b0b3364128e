"""A data-in mesh for service tests: acquire, profile and prep on the real broker, in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentRequested, ExperimentSpec
from mlmesh_common import topics
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.settings import Settings


@dataclass
class Outcome:
    """How an experiment's data-in stages ended: 'prepared' or 'failed' (with the reason)."""

    status: str
    reason: str = ""
    stage: str = ""
    event: object = None


class DataInMesh:
    """Submits experiment.requested and waits for dataset.prepared or experiment.failed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}

    async def run(self, spec: ExperimentSpec, timeout_s: float = 120) -> Outcome:
        experiment_id = f"t-{uuid.uuid4().hex[:10]}"
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiters[experiment_id] = future
        env = new_envelope(topics.EXPERIMENT_REQUESTED, ExperimentRequested(spec=spec),
                           experiment_id=experiment_id, producer=Producer(service="test"))
        await self._producer.send_and_wait(topics.EXPERIMENT_REQUESTED.name, encode(env),
                                           key=experiment_id.encode())
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._waiters.pop(experiment_id, None)

    async def _listen(self) -> None:
        async for record in self._consumer:
            experiment_id = (record.key or b"").decode()
            future = self._waiters.get(experiment_id)
            if future is None or future.done():
                continue
            if record.topic == topics.DATASET_PREPARED.name:
                _, event = decode(record.value, topics.DATASET_PREPARED)
                future.set_result(Outcome("prepared", event=event))
            elif record.topic == topics.EXPERIMENT_FAILED.name:
                _, event = decode(record.value, topics.EXPERIMENT_FAILED)
                future.set_result(Outcome("failed", event.reason, event.stage, event))

    async def start(self) -> None:
        from mlmesh_acquire.service import service as acquire
        from mlmesh_common.runtime import Service
        from mlmesh_prep.service import service as prep
        from mlmesh_profile.service import service as profile

        self.services = []
        for template in (acquire, profile, prep):
            # A fresh Service per test with the same handlers, bound to this test's settings.
            svc = Service(template.name, settings=self.settings)
            svc.routes = list(template.routes)
            self.services.append(svc)
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap,
                                          enable_idempotence=False)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            topics.DATASET_PREPARED.name, topics.EXPERIMENT_FAILED.name,
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
            auto_offset_reset="latest")
        await self._consumer.start()
        while not self._consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)  # pin "latest" before anything is submitted
        self._listener = asyncio.create_task(self._listen())
        await asyncio.gather(*(svc.start() for svc in self.services))

    async def stop(self) -> None:
        await asyncio.gather(*(svc.stop() for svc in self.services))
        self._listener.cancel()
        await self._consumer.stop()
        await self._producer.stop()


@pytest.fixture
async def data_in_mesh(mesh_settings: Settings) -> AsyncIterator[DataInMesh]:
    """acquire + profile + prep running on the test broker with this test's settings."""
    mesh = DataInMesh(mesh_settings.model_copy(update={"max_attempts": 2}))
    await mesh.start()
    try:
        yield mesh
    finally:
        await mesh.stop()

