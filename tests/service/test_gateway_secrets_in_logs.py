"""No secret in any log: plant an admin key, a wrong key, a webhook secret and a freshly
created key, drive REST, gRPC and a failing webhook delivery with them at DEBUG level, then
search every captured log record, every log file and the audit log for them."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import grpc
import httpx
import pytest

from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_common import observability
from mlmesh_common.broker import free_port
from mlmesh_common.runtime import Service
from mlmesh_common.settings import Settings
from mlmesh_gateway import outbound, webhooks
from mlmesh_gateway.experiments import Experiments
from mlmesh_gateway.grpc_api import start_grpc
from mlmesh_gateway.rest import create_app
from mlmesh_gateway.security import Security
from mlmesh_gateway.webhooks import Dispatcher, Webhooks

pytestmark = pytest.mark.service


async def test_no_secret_reaches_a_log(mesh_settings: Settings, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    admin_key = f"planted-admin-{uuid.uuid4().hex}"
    wrong_key = f"mlm_0123456789ab_PLANTED{uuid.uuid4().hex}"
    malformed = f"PLANTED MALFORMED {uuid.uuid4().hex}"
    webhook_secret = "whsec_" + "UExBTlRFRHdlYmhvb2tzZWNyZXQx"
    monkeypatch.setenv("MLMESH_ADMIN_API_KEY", admin_key)
    monkeypatch.setenv("MLMESH_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setattr(webhooks, "MAX_ATTEMPTS", 1)
    outbound.policy.cache_clear()
    outbound._client.cache_clear()
    log_file = tmp_path / "gateway.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(observability.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)

    service = Service("gateway", settings=mesh_settings)
    hooks = Webhooks(service, check_url=outbound.check)
    security = Security(service)  # installs MLMESH_ADMIN_API_KEY
    app = create_app(Experiments(service), hooks, security)
    await service.start()
    server, port = await start_grpc(Experiments(service), "127.0.0.1", free_port(), hooks,
                                    security)
    created_key = ""
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw") as rest:
            admin = {"authorization": f"Bearer {admin_key}"}
            assert (await rest.get("/v1/whoami", headers=admin)).status_code == 200
            for bad in (wrong_key, malformed):
                for headers in ({"x-api-key": bad}, {"authorization": f"Bearer {bad}"}):
                    answer = await rest.post("/v1/experiments", headers=headers, json={
                        "dataset_uri": "file:///x.csv"})
                    assert answer.status_code == 401 and bad not in answer.text
            made = await rest.post("/v1/keys", headers=admin,
                                   json={"role": "scientist", "projects": ["p"]})
            created_key = made.json()["key"]
            hook = await rest.post("/v1/projects/p/webhooks", headers={"x-api-key": created_key},
                                   json={"url": f"http://127.0.0.1:{free_port()}/closed",
                                         "event_types": ["mlmesh.experiment.failed"],
                                         "secret": webhook_secret})
            assert hook.status_code == 201, hook.text
            assert hooks.enqueue("p", "mlmesh.experiment.failed", "ev-1", '{"x": 1}') == 1
            assert Dispatcher(service, post=outbound.post).run_due() == 1  # fails, dead-letters
            deliveries = await rest.get(f"/v1/webhooks/{hook.json()['id']}/deliveries",
                                        headers=admin)
            assert deliveries.json()["deliveries"][0]["status"] == "dead"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.ExperimentServiceStub(channel)
            for metadata in ((("x-api-key", wrong_key),),
                             (("authorization", f"Bearer {admin_key}"),)):
                try:
                    await stub.ListExperiments(gateway_pb2.ListExperimentsRequest(),
                                               metadata=metadata)
                except grpc.aio.AioRpcError as exc:
                    assert wrong_key not in (exc.details() or "")
    finally:
        await server.stop(1)
        await app.state.ops.stop()
        await service.stop()
        root.removeHandler(handler)
        handler.close()

    secrets = {"admin key": admin_key, "wrong key": wrong_key, "malformed key": malformed,
               "webhook secret": webhook_secret, "created key": created_key,
               "created key's secret part": created_key.split("_", 2)[2]}  # mlm_<id>_<secret>
    records = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''} {vars(r)!r}"
                        for r in caplog.records)
    assert len(caplog.records) > 5, "the test must have produced log records to search"
    files = [log_file, *Path(mesh_settings.resolved_home).rglob("*.log")]
    audit = repr(service.ledger.list_audit(limit=1000))
    assert "keys.create" in audit and "webhooks.create" in audit
    for name, secret in secrets.items():
        assert secret not in records, f"{name} in a captured log record"
        assert secret not in audit, f"{name} in the audit log"
        for path in files:
            assert secret not in path.read_text(errors="replace"), f"{name} in {path}"
