"""gRPC front end: ExperimentService over the same use cases as REST."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_gateway.convert import event_message, experiment_message
from mlmesh_gateway.experiments import ExperimentNotFound, Experiments
from mlmesh_gateway.specs import InvalidSpec


class ExperimentServicer(gateway_pb2_grpc.ExperimentServiceServicer):
    """Translates gRPC calls to `Experiments` and its errors to status codes."""

    def __init__(self, experiments: Experiments) -> None:
        self.experiments = experiments

    async def SubmitExperiment(self, request: gateway_pb2.SubmitExperimentRequest,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> gateway_pb2.Experiment:
        try:
            record = await self.experiments.submit(request.spec, request.experiment_id,
                                                   requested_by="grpc")
        except InvalidSpec as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid spec: {exc}")
        return experiment_message(record)

    async def GetExperiment(self, request: gateway_pb2.GetExperimentRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.Experiment:
        return experiment_message(await self._get(request.experiment_id, context))

    async def ListExperiments(self, request: gateway_pb2.ListExperimentsRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext,
                              ) -> gateway_pb2.ListExperimentsResponse:
        records = await self.experiments.list(request.project, request.status,
                                              request.limit or 50)
        return gateway_pb2.ListExperimentsResponse(
            experiments=[experiment_message(r) for r in records])

    async def CancelExperiment(self, request: gateway_pb2.CancelExperimentRequest,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> gateway_pb2.Experiment:
        await self._get(request.experiment_id, context)
        record = await self.experiments.cancel(request.experiment_id, request.reason,
                                               requested_by="grpc")
        return experiment_message(record)

    async def WatchExperiment(self, request: gateway_pb2.WatchExperimentRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext,
                              ) -> AsyncIterator[gateway_pb2.ExperimentEvent]:
        await self._get(request.experiment_id, context)
        async for event in self.experiments.watch(request.experiment_id,
                                                  request.after_sequence):
            yield event_message(event)

    async def _get(self, experiment_id: str, context: grpc.aio.ServicerContext):
        try:
            return await self.experiments.get(experiment_id)
        except ExperimentNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"no experiment {experiment_id!r}; list them with "
                                "ListExperiments")


async def start_grpc(experiments: Experiments, host: str, port: int) -> tuple[grpc.aio.Server,
                                                                             int]:
    """Start the gRPC server; returns it and the bound port."""
    server = grpc.aio.server()
    gateway_pb2_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(experiments),
                                                             server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
