"""Run the gateway: the ledger projection (consumer group), REST and gRPC in one process."""

from __future__ import annotations

import asyncio
import logging
import os

import uvicorn

from mlmesh_common import observability
from mlmesh_gateway.experiments import Experiments
from mlmesh_gateway.grpc_api import start_grpc
from mlmesh_gateway.rest import create_app
from mlmesh_gateway.security import Security
from mlmesh_gateway.service import service, webhooks

log = logging.getLogger("mlmesh.gateway")


async def main() -> None:
    host = os.environ.get("MLMESH_GATEWAY_HOST", "127.0.0.1")
    rest_port = int(os.environ.get("MLMESH_GATEWAY_PORT", "8080"))
    grpc_port = int(os.environ.get("MLMESH_GRPC_PORT", "50051"))
    experiments = Experiments(service)
    security = Security(service)  # one key cache and rate limiter for REST and gRPC
    app = create_app(experiments, webhooks, security)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=rest_port, log_config=None,
                                           access_log=False))
    grpc_server, bound = await start_grpc(experiments, host, grpc_port, webhooks, security)
    log.info("gateway listening: REST http://%s:%d, gRPC %s:%d", host, rest_port, host, bound)
    api = asyncio.create_task(server.serve())
    try:
        await service.serve()  # returns on SIGTERM/SIGINT after a graceful stop
    finally:
        server.should_exit = True
        await grpc_server.stop(5)
        await api
        await app.state.ops.stop()


if __name__ == "__main__":
    observability.setup("gateway", service.version)
    asyncio.run(main())
