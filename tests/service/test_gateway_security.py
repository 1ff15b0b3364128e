"""Gateway security against the real broker: every REST and gRPC call needs a key, roles
decide what a key may do, a key of project A cannot see, cancel or replay anything of
project B (404, as for a missing object), writes are audited, and size and rate limits hold."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_common.broker import free_port
from mlmesh_common.ledger import DeadLetterRecord, DeliveryRecord, WebhookRecord
from mlmesh_common.runtime import Service
from mlmesh_common.settings import Settings
from mlmesh_gateway import outbound
from mlmesh_gateway.experiments import Experiments
from mlmesh_gateway.grpc_api import start_grpc
from mlmesh_gateway.rest import create_app
from mlmesh_gateway.security import Security
from mlmesh_gateway.webhooks import Webhooks

pytestmark = pytest.mark.service


@dataclass
class World:
    rest: httpx.AsyncClient
    grpc_target: str
    service: Service
    security: Security
    keys: dict[str, str]
    a: str  # project names
    b: str
    exp_a: str
    exp_b: str
    letter_a: str
    letter_b: str
    hook_b: str


def _letter(letter_id: str, experiment: str) -> DeadLetterRecord:
    return DeadLetterRecord(
        id=letter_id, dlq_topic="mlmesh.dataset.profiled.v1.dlq",
        source_topic="mlmesh.dataset.profiled.v1", experiment_id=experiment, event_id="e",
        consumer_group="mlmesh.prep", error_type="ValueError", error_message="bad",
        stack="", attempt=1, failed_at=time.time(), original_key=experiment.encode(),
        original_value=b"\x00", original_headers={}, status="open", updated_at=time.time())


@pytest.fixture
async def world(mesh_settings: Settings, tmp_path: Path) -> AsyncIterator[World]:
    service = Service("gateway", settings=mesh_settings)
    hooks = Webhooks(service, check_url=outbound.check)
    security = Security(service)
    app = create_app(Experiments(service), hooks, security)
    await service.start()
    server, port = await start_grpc(Experiments(service), "127.0.0.1", free_port(), hooks,
                                    security)
    a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    keys = {"admin": await security.mint("admin", ["*"]),
            "admin_a": await security.mint("admin", [a]),
            "sci_a": await security.mint("scientist", [a]),
            "view_a": await security.mint("viewer", [a]),
            "sci_b": await security.mint("scientist", [b])}
    ledger = service.ledger
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n1,0\n2,1\n")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as rest:
        exp_a = (await rest.post("/v1/experiments", json={"dataset_uri": csv.as_uri(),
                                                          "project": a},
                                 headers={"x-api-key": keys["sci_a"]})).json()["experiment_id"]
        exp_b = (await rest.post("/v1/experiments", json={"dataset_uri": csv.as_uri(),
                                                          "project": b},
                                 headers={"x-api-key": keys["sci_b"]})).json()["experiment_id"]
        for project, experiment in ((a, exp_a), (b, exp_b)):
            folder = service.store.root / f"projects/{project}/experiments/{experiment}/docs"
            folder.mkdir(parents=True)
            (folder / "report.html").write_text(f"<h1>report of {experiment}</h1>")
        letter_a, letter_b = f"dlq-a-{exp_a}", f"dlq-b-{exp_b}"
        ledger.record_dead_letter(_letter(letter_a, exp_a))
        ledger.record_dead_letter(_letter(letter_b, exp_b))
        hook_b = f"wh_{uuid.uuid4().hex[:12]}"
        ledger.add_webhook(WebhookRecord(hook_b, b, "https://example.org/h",
                                         ["mlmesh.experiment.completed"], "whsec_" + "A" * 32,
                                         time.time()))
        ledger.enqueue_delivery(DeliveryRecord("dl_1" + hook_b, hook_b, "ev", "t", "{}",
                                               "pending", 0, 0, "", time.time() + 3600,
                                               time.time(), time.time()))
        try:
            yield World(rest, f"127.0.0.1:{port}", service, security, keys, a, b, exp_a, exp_b,
                        letter_a, letter_b, hook_b)
        finally:
            await server.stop(1)
            await app.state.ops.stop()
            await service.stop()


def _as(world: World, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {world.keys[who]}"}


async def test_every_api_route_needs_a_key(world: World) -> None:
    spec = (await world.rest.get("/openapi.json")).json()
    assert {"bearer", "apiKey"} <= set(spec["components"]["securitySchemes"])
    checked = 0
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            answer = await world.rest.request(method.upper(), concrete)
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 20
    bad = await world.rest.get("/v1/experiments", headers={"x-api-key": "mlm_0123456789ab_"
                                                           + "n" * 43})
    assert bad.status_code == 401 and "n" * 43 not in bad.text
    assert (await world.rest.get("/healthz")).status_code == 200  # probes stay open


async def test_project_isolation_over_rest(world: World) -> None:
    rest, a_key = world.rest, _as(world, "sci_a")
    listed = (await rest.get("/v1/experiments", headers=a_key)).json()["experiments"]
    assert {e["project"] for e in listed} == {world.a}
    assert world.exp_a in [e["experiment_id"] for e in listed]
    for method, path in (
            ("GET", f"/v1/experiments?project={world.b}"),
            ("GET", f"/v1/experiments/{world.exp_b}"),
            ("POST", f"/v1/experiments/{world.exp_b}/cancel"),
            ("GET", f"/v1/experiments/{world.exp_b}/events"),
            ("GET", f"/v1/experiments/{world.exp_b}/artifacts"),
            ("GET", f"/v1/experiments/{world.exp_b}/artifacts/docs/report.html"),
            ("GET", f"/v1/dlq/{world.letter_b}"),
            ("POST", f"/v1/dlq/{world.letter_b}/replay"),
            ("POST", f"/v1/dlq/{world.letter_b}/purge"),
            ("GET", f"/v1/projects/{world.b}/webhooks"),
            ("DELETE", f"/v1/webhooks/{world.hook_b}"),
            ("GET", f"/v1/webhooks/{world.hook_b}/deliveries")):
        for who in ("sci_a", "admin_a"):
            answer = await rest.request(method, path, headers=_as(world, who))
            assert answer.status_code == 404, (who, method, path, answer.text)
            # Exactly what an id that exists nowhere gets: nothing tells the two apart.
            real = next(r for r in (world.letter_b, world.hook_b, world.exp_b, world.b)
                        if r in path)
            twin = await rest.request(method, path.replace(real, "nothing-here"),
                                      headers=_as(world, who))
            assert twin.status_code == 404
            assert answer.text.replace(real, "ID") == twin.text.replace("nothing-here", "ID")
    created = await rest.post(f"/v1/projects/{world.b}/webhooks", headers=a_key, json={
        "url": "https://example.org/x", "event_types": ["mlmesh.experiment.failed"]})
    assert created.status_code == 404
    submitted = await rest.post("/v1/experiments", headers=a_key, json={
        "dataset_uri": "file:///tmp/x.csv", "project": world.b})
    assert submitted.status_code == 404
    taken = await rest.post("/v1/experiments", headers=a_key, json={
        "dataset_uri": "file:///tmp/x.csv", "project": world.a, "experiment_id": world.exp_b})
    assert taken.status_code == 409 and world.b not in taken.text
    letters = (await rest.get("/v1/dlq", headers=a_key)).json()
    assert [d["id"] for d in letters["dead_letters"]] == [world.letter_a]
    assert sum(letters["open_by_topic"].values()) == 1
    # Its own project's objects are there.
    report = await rest.get(f"/v1/experiments/{world.exp_a}/artifacts/docs/report.html",
                            headers=a_key)
    assert report.status_code == 200 and world.exp_a in report.text
    assert report.headers["content-security-policy"] == "sandbox"
    listing = (await rest.get(f"/v1/experiments/{world.exp_a}/artifacts", headers=a_key)).json()
    assert listing["artifacts"] == [{"path": "docs/report.html", "size": len(report.content)}]
    for sneaky in ("../../../" + world.b, "docs/../../../../" + world.b, "%2e%2e/x"):
        answer = await rest.get(f"/v1/experiments/{world.exp_a}/artifacts/{sneaky}",
                                headers=a_key)
        assert answer.status_code == 404, sneaky
    # The global admin sees both projects.
    everything = (await rest.get("/v1/dlq", headers=_as(world, "admin"))).json()
    assert {world.letter_a, world.letter_b} <= {d["id"] for d in everything["dead_letters"]}


async def test_roles(world: World) -> None:
    rest = world.rest
    viewer = _as(world, "view_a")
    assert (await rest.get(f"/v1/experiments/{world.exp_a}", headers=viewer)).status_code == 200
    for method, path, body in (
            ("POST", "/v1/experiments", {"dataset_uri": "file:///x.csv", "project": world.a}),
            ("POST", f"/v1/experiments/{world.exp_a}/cancel", {}),
            ("POST", f"/v1/projects/{world.a}/webhooks",
             {"url": "https://example.org/x", "event_types": ["mlmesh.experiment.failed"]}),
            ("POST", f"/v1/dlq/{world.letter_a}/replay", None),
            ("GET", "/v1/keys", None), ("GET", "/v1/audit", None)):
        answer = await rest.request(method, path, headers=viewer, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
    scientist = _as(world, "sci_a")
    assert (await rest.post(f"/v1/dlq/{world.letter_a}/purge",
                            headers=scientist)).status_code == 403
    assert (await rest.get("/v1/keys", headers=scientist)).status_code == 403
    cancelled = await rest.post(f"/v1/experiments/{world.exp_a}/cancel", headers=scientist,
                                json={"reason": "test"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    purged = await rest.post(f"/v1/dlq/{world.letter_a}/purge", headers=_as(world, "admin_a"))
    assert purged.status_code == 200 and purged.json()["status"] == "purged"


async def test_key_management_and_audit(world: World) -> None:
    rest, admin_a = world.rest, _as(world, "admin_a")
    wider = await rest.post("/v1/keys", headers=admin_a, json={"role": "viewer",
                                                                "projects": [world.b]})
    assert wider.status_code == 422
    everywhere = await rest.post("/v1/keys", headers=admin_a, json={"role": "admin",
                                                                     "projects": ["*"]})
    assert everywhere.status_code == 422
    made = await rest.post("/v1/keys", headers=admin_a, json={"role": "viewer", "name": "ci",
                                                               "projects": [world.a]})
    assert made.status_code == 201
    new = made.json()
    assert new["key"].startswith(f"mlm_{new['id']}_")
    stored = world.service.ledger.get_api_key(new["id"])
    assert new["key"] not in stored.digest and len(stored.digest) == 64
    listed = (await rest.get("/v1/keys", headers=admin_a)).json()["keys"]
    assert new["id"] in {k["id"] for k in listed}
    assert all(set(k["projects"]) <= {world.a} for k in listed) and "key" not in listed[0]
    with_key = {"x-api-key": new["key"]}
    assert (await rest.get("/v1/whoami", headers=with_key)).json()["role"] == "viewer"
    global_admin_id = world.service.ledger.list_api_keys()[0].id
    assert (await rest.delete(f"/v1/keys/{global_admin_id}",
                              headers=admin_a)).status_code == 404
    revoked = await rest.delete(f"/v1/keys/{new['id']}", headers=admin_a)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await rest.get("/v1/whoami", headers=with_key)).status_code == 401

    await rest.post("/v1/experiments", headers=_as(world, "view_a"),
                    json={"dataset_uri": "file:///x.csv", "project": world.a})
    entries = (await rest.get("/v1/audit", headers=admin_a)).json()["entries"]
    assert entries and {e["project"] for e in entries} <= {world.a}
    actions = {(e["action"], e["outcome"]) for e in entries}
    assert {("keys.create", "ok"), ("keys.revoke", "ok"), ("experiments.submit", "ok"),
            ("experiments.submit", "denied")} <= actions
    mine = [e for e in entries if e["action"] == "keys.create" and e["outcome"] == "ok"]
    assert mine[0]["key_id"] == world.service.ledger.get_api_key(new["id"]).created_by
    assert mine[0]["target"] == new["id"]
    everything = (await rest.get("/v1/audit", headers=_as(world, "admin"))).json()["entries"]
    assert world.b in {e["project"] for e in everything}
    for entry in everything:
        assert "mlm_" not in str(entry)


async def test_size_and_rate_limits(world: World, mesh_settings: Settings) -> None:
    rest, admin = world.rest, _as(world, "admin")
    big = await rest.post("/v1/experiments", headers=admin, content=b"{" + b" " * 2_000_000)
    assert big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    streamed = await rest.post("/v1/experiments", headers=admin, content=chunks())
    assert streamed.status_code == 413
    tight = Service("gateway", settings=mesh_settings.model_copy(
        update={"api_rate_per_s": 0.5, "api_rate_burst": 3}))
    app = create_app(Experiments(tight))
    key = await app.state.security.mint("viewer", [world.a])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw", headers={"x-api-key": key}) as client:
        codes = [(await client.get("/v1/whoami")).status_code for _ in range(4)]
        limited = await client.get("/v1/whoami")
    assert codes == [200, 200, 200, 429]
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


async def test_grpc_is_authenticated_and_scoped(world: World) -> None:
    async with grpc.aio.insecure_channel(world.grpc_target) as channel:
        experiments = gateway_pb2_grpc.ExperimentServiceStub(channel)
        letters = gateway_pb2_grpc.DeadLetterServiceStub(channel)
        keys = gateway_pb2_grpc.KeyServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await experiments.ListExperiments(gateway_pb2.ListExperimentsRequest())
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await experiments.ListExperiments(gateway_pb2.ListExperimentsRequest(),
                                              metadata=(("x-api-key", "mlm_0123456789ab_"
                                                         + "z" * 43),))
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "z" * 43 not in (bad.value.details() or "")
        sci_a = (("authorization", f"Bearer {world.keys['sci_a']}"),)
        listed = await experiments.ListExperiments(gateway_pb2.ListExperimentsRequest(),
                                                   metadata=sci_a)
        assert {e.project for e in listed.experiments} == {world.a}
        for call in (experiments.GetExperiment(gateway_pb2.GetExperimentRequest(
                         experiment_id=world.exp_b), metadata=sci_a),
                     experiments.CancelExperiment(gateway_pb2.CancelExperimentRequest(
                         experiment_id=world.exp_b), metadata=sci_a),
                     letters.ReplayDeadLetter(gateway_pb2.ReplayDeadLetterRequest(
                         id=world.letter_b), metadata=sci_a)):
            with pytest.raises(grpc.aio.AioRpcError) as hidden:
                await call
            assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        events = experiments.WatchExperiment(gateway_pb2.WatchExperimentRequest(
            experiment_id=world.exp_b), metadata=sci_a)
        with pytest.raises(grpc.aio.AioRpcError) as hidden_stream:
            async for _ in events:
                pass
        assert hidden_stream.value.code() == grpc.StatusCode.NOT_FOUND
        view_a = (("x-api-key", world.keys["view_a"]),)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await experiments.CancelExperiment(gateway_pb2.CancelExperimentRequest(
                experiment_id=world.exp_a), metadata=view_a)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        scoped = await letters.ListDeadLetters(gateway_pb2.ListDeadLettersRequest(),
                                               metadata=sci_a)
        assert [d.id for d in scoped.dead_letters] == [world.letter_a]
        admin = (("authorization", f"Bearer {world.keys['admin']}"),)
        made = await keys.CreateKey(gateway_pb2.CreateKeyRequest(
            name="grpc", role="scientist", projects=[world.b]), metadata=admin)
        assert made.key.startswith(f"mlm_{made.id}_")
        whoami = await world.rest.get("/v1/whoami", headers={"x-api-key": made.key})
        assert whoami.json()["projects"] == [world.b]
        listed_keys = await keys.ListKeys(gateway_pb2.ListKeysRequest(), metadata=admin)
        assert made.id in [k.id for k in listed_keys.keys] and not listed_keys.keys[0].key
        with pytest.raises(grpc.aio.AioRpcError) as not_admin:
            await keys.ListKeys(gateway_pb2.ListKeysRequest(), metadata=sci_a)
        assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await keys.RevokeKey(gateway_pb2.RevokeKeyRequest(id=made.id), metadata=admin)
        with pytest.raises(grpc.aio.AioRpcError) as revoked:
            await experiments.ListExperiments(gateway_pb2.ListExperimentsRequest(),
                                              metadata=(("x-api-key", made.key),))
        assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED
    audit = world.service.ledger.list_audit(action="keys.create")
    assert audit[0].target == made.id and audit[0].detail == "grpc"
    denied_audit = world.service.ledger.list_audit(action="experiments.cancel")
    assert any(e.outcome == "denied" and e.status_code == 403 for e in denied_audit)


async def test_auth_overhead_is_small(world: World) -> None:
    """Median latency of an authenticated route against an open one (in-process ASGI)."""
    rest, admin = world.rest, _as(world, "admin")

    async def median_ms(path: str, headers: dict[str, str]) -> float:
        times = []
        for _ in range(150):
            start = time.perf_counter()
            await rest.get(path, headers=headers)
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2] * 1000

    await asyncio.sleep(0)
    open_ms = await median_ms("/healthz", {})
    authed_ms = await median_ms("/v1/whoami", admin)
    print(f"median /healthz {open_ms:.3f} ms, /v1/whoami (authenticated) {authed_ms:.3f} ms, "
          f"overhead {authed_ms - open_ms:.3f} ms")
    assert authed_ms - open_ms < 5.0
