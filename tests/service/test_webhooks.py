"""Webhooks against the real broker: subscribe over REST, an experiment.completed event is
delivered as a signed CloudEvent to a local receiver that verifies every signature; a failing
receiver is retried; private destinations are refused unless allowed."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentCompleted
from mlmesh_common import topics
from mlmesh_common.envelope import encode, new_envelope
from mlmesh_common.runtime import Service
from mlmesh_common.settings import Settings
from mlmesh_gateway import outbound, webhooks
from mlmesh_gateway.experiments import Experiments
from mlmesh_gateway.rest import create_app
from mlmesh_gateway.service import attach_webhooks

pytestmark = pytest.mark.service


class Receiver:
    """A local webhook receiver: fails the first `failures` requests, verifies the rest."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], str]] = []
        self.secret = ""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                outer.requests.append((dict(self.headers), body))
                failing = len(outer.requests) <= outer.failures
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/mlmesh"


async def test_signed_delivery_with_retry(mesh_settings: Settings,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMESH_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setattr(webhooks, "BACKOFF_INITIAL_S", 0.2)
    outbound.policy.cache_clear()
    outbound._client.cache_clear()
    project = f"p{uuid.uuid4().hex[:6]}"
    experiment = f"wh-{uuid.uuid4().hex[:8]}"
    receiver = Receiver(failures=1)
    gateway = Service("gateway", settings=mesh_settings)
    hooks, _ = attach_webhooks(gateway)
    app = create_app(Experiments(gateway), hooks)
    key = await app.state.security.mint("scientist", [project])
    await gateway.start()
    try:
        gateway.ledger.create_experiment(experiment, project, {})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw",
                                     headers={"x-api-key": key}) as rest:
            created = await rest.post(f"/v1/projects/{project}/webhooks", json={
                "url": receiver.url, "event_types": ["mlmesh.experiment.completed"]})
            assert created.status_code == 201, created.text
            hook = created.json()
            assert hook["secret"].startswith("whsec_")
            listed = (await rest.get(f"/v1/projects/{project}/webhooks")).json()["webhooks"]
            assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
            refused = await rest.post(f"/v1/projects/{project}/webhooks", json={
                "url": "http://10.1.2.3/x", "event_types": ["mlmesh.experiment.failed"]})
            assert refused.status_code == 422 and "private" in refused.text

            env = new_envelope(topics.EXPERIMENT_COMPLETED,
                               ExperimentCompleted(project=project, test_score=0.93),
                               experiment_id=experiment, producer=Producer(service="test"))
            producer = AIOKafkaProducer(bootstrap_servers=mesh_settings.kafka_bootstrap,
                                        enable_idempotence=False)
            await producer.start()
            for _ in range(2):  # a redelivered event is delivered once
                await producer.send_and_wait(topics.EXPERIMENT_COMPLETED.name, encode(env),
                                             key=experiment.encode())
            await producer.stop()
            deadline = time.monotonic() + 60
            while len(receiver.requests) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)
            log = (await rest.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()
    finally:
        await gateway.stop()
        receiver.server.shutdown()
    assert len(receiver.requests) == 2, "one failed attempt, one retry, no duplicate"
    for headers, body in receiver.requests:
        assert webhooks.verify(hook["secret"], headers, body)
        assert {k.lower(): v for k, v in headers.items()}["content-type"] == (
            "application/cloudevents+json")
    event = json.loads(receiver.requests[-1][1])
    assert event["type"] == "mlmesh.experiment.completed" and event["id"] == env.event_id
    assert event["subject"] == experiment and event["data"]["test_score"] == 0.93
    [delivery] = log["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
