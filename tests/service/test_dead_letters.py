"""DLQ operations through the gateway (REST and gRPC) against the real broker: a failing
event is recorded, inspected, replayed after the cause is fixed, and then handled."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_common import topics
from mlmesh_common.broker import free_port
from mlmesh_common.envelope import encode, new_envelope
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_common.settings import Settings
from mlmesh_gateway.dead_letters import DeadLetterRecorder
from mlmesh_gateway.experiments import Experiments
from mlmesh_gateway.grpc_api import start_grpc
from mlmesh_gateway.rest import create_app

pytestmark = pytest.mark.service


async def test_record_inspect_replay_purge(mesh_settings: Settings) -> None:
    experiment = f"dlq-{uuid.uuid4().hex[:8]}"
    fixed: list[bool] = []
    handled: list[str] = []
    worker = Service("profile", settings=mesh_settings)

    @worker.handles(topics.DATASET_ACQUIRED)
    async def picky(ctx: HandlerContext, event: DatasetAcquired) -> None:
        if not fixed:
            raise ValueError("column 'id' is all null: fix the source and replay")
        handled.append(ctx.envelope.event_id)
        ctx.emit(topics.DATASET_PROFILED, DatasetProfiled(target="y"))

    gateway = Service("gateway", settings=mesh_settings)
    recorder = DeadLetterRecorder(gateway)
    gateway.on_start.append(recorder.start)
    gateway.on_stop.append(recorder.stop)
    await asyncio.gather(worker.start(), gateway.start())
    grpc_server, port = await start_grpc(Experiments(gateway), "127.0.0.1", free_port())
    app = create_app(Experiments(gateway))
    key = await app.state.security.mint("admin", ["*"])
    auth = (("authorization", f"Bearer {key}"),)
    try:
        gateway.ledger.create_experiment(experiment, "p", {})
        env = new_envelope(topics.DATASET_ACQUIRED,
                           DatasetAcquired(spec=ExperimentSpec(project="p")),
                           experiment_id=experiment, producer=Producer(service="test"))
        producer = AIOKafkaProducer(bootstrap_servers=mesh_settings.kafka_bootstrap,
                                    enable_idempotence=False)
        await producer.start()
        await producer.send_and_wait(topics.DATASET_ACQUIRED.name, encode(env),
                                     key=experiment.encode(), headers=[("x-test", b"1")])
        await producer.stop()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw", headers=dict(auth)) as rest:
            letters: list = []
            deadline = time.monotonic() + 60
            while not letters and time.monotonic() < deadline:
                body = (await rest.get("/v1/dlq", params={"experiment_id": experiment})).json()
                letters = body["dead_letters"]
                await asyncio.sleep(0.3)
            assert len(letters) == 1 and body["open_by_topic"][topics.DATASET_ACQUIRED.name] >= 1
            letter = letters[0]
            assert letter["error_type"] == "ValueError" and "all null" in letter["error_message"]
            detail = (await rest.get(f"/v1/dlq/{letter['id']}")).json()
            assert detail["envelope"]["event_id"] == env.event_id and "Traceback" in detail["stack"]
            deadline = time.monotonic() + 30
            while gateway.ledger.get_experiment(experiment).status != "failed":
                # the gateway projection is not running here: record the failure as it would
                gateway.ledger.set_status(experiment, "failed", "profile failed")
                assert time.monotonic() < deadline
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = gateway_pb2_grpc.DeadLetterServiceStub(channel)
                listed = await stub.ListDeadLetters(
                    gateway_pb2.ListDeadLettersRequest(experiment_id=experiment), metadata=auth)
                assert [d.id for d in listed.dead_letters] == [letter["id"]]
                with pytest.raises(grpc.aio.AioRpcError) as missing:
                    await stub.GetDeadLetter(gateway_pb2.GetDeadLetterRequest(id="nope"),
                                             metadata=auth)
                assert missing.value.code() == grpc.StatusCode.NOT_FOUND
                fixed.append(True)
                replayed = await stub.ReplayDeadLetter(
                    gateway_pb2.ReplayDeadLetterRequest(id=letter["id"]), metadata=auth)
                assert replayed.status == "replayed"
                with pytest.raises(grpc.aio.AioRpcError) as again:
                    await stub.ReplayDeadLetter(
                        gateway_pb2.ReplayDeadLetterRequest(id=letter["id"]), metadata=auth)
                assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            deadline = time.monotonic() + 30
            while not handled and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert handled == [env.event_id], "the replayed event is handled, not deduplicated"
            assert gateway.ledger.get_experiment(experiment).status == "running"
            conflict = await rest.post(f"/v1/dlq/{letter['id']}/purge")
            assert conflict.status_code == 409
            assert (await rest.get("/v1/dlq/nope")).status_code == 404
    finally:
        await grpc_server.stop(1)
        await asyncio.gather(worker.stop(), gateway.stop())
