"""gRPC front end: ExperimentService over the same use cases as REST."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc

from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_common.ledger import DeadLetterRecord
from mlmesh_gateway.convert import (
    dead_letter_message,
    delivery_message,
    event_message,
    experiment_message,
    webhook_message,
)
from mlmesh_gateway.dead_letters import DeadLetterConflict, DeadLetterNotFound, DeadLetters
from mlmesh_gateway.experiments import ExperimentNotFound, Experiments
from mlmesh_gateway.specs import InvalidSpec
from mlmesh_gateway.webhooks import WebhookNotFound, Webhooks


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


class DeadLetterServicer(gateway_pb2_grpc.DeadLetterServiceServicer):
    """DLQ operations over gRPC."""

    def __init__(self, dead_letters: DeadLetters) -> None:
        self.dead_letters = dead_letters

    async def ListDeadLetters(self, request: gateway_pb2.ListDeadLettersRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext,
                              ) -> gateway_pb2.ListDeadLettersResponse:
        status = "" if request.status == "any" else (request.status or "open")
        try:
            records = await self.dead_letters.list(request.source_topic, request.experiment_id,
                                                   status, request.limit or 100)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return gateway_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter_message(r) for r in records])

    async def GetDeadLetter(self, request: gateway_pb2.GetDeadLetterRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.DeadLetterEntry:
        return await self._call(self.dead_letters.get, request.id, context, with_payload=True)

    async def ReplayDeadLetter(self, request: gateway_pb2.ReplayDeadLetterRequest,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> gateway_pb2.DeadLetterEntry:
        return await self._call(self.dead_letters.replay, request.id, context)

    async def PurgeDeadLetter(self, request: gateway_pb2.PurgeDeadLetterRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext) -> gateway_pb2.DeadLetterEntry:
        return await self._call(self.dead_letters.purge, request.id, context)

    async def _call(self, operation: Callable[[str], Awaitable[DeadLetterRecord]], letter: str,
                    context: grpc.aio.ServicerContext,
                    with_payload: bool = False) -> gateway_pb2.DeadLetterEntry:
        try:
            return dead_letter_message(await operation(letter), with_payload)
        except DeadLetterNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no dead letter {letter!r}; list "
                                "them with ListDeadLetters")
        except DeadLetterConflict as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))


class WebhookServicer(gateway_pb2_grpc.WebhookServiceServicer):
    """Webhook subscriptions over gRPC."""

    def __init__(self, webhooks: Webhooks) -> None:
        self.webhooks = webhooks

    async def CreateWebhook(self, request: gateway_pb2.CreateWebhookRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.Webhook:
        try:
            record = await self.webhooks.create(request.project or "default", request.url,
                                                list(request.event_types), request.secret)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return webhook_message(record, with_secret=True)

    async def ListWebhooks(self, request: gateway_pb2.ListWebhooksRequest,  # noqa: N802
                           context: grpc.aio.ServicerContext,
                           ) -> gateway_pb2.ListWebhooksResponse:
        records = await self.webhooks.list(request.project or "default")
        return gateway_pb2.ListWebhooksResponse(webhooks=[webhook_message(r) for r in records])

    async def DeleteWebhook(self, request: gateway_pb2.DeleteWebhookRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.Webhook:
        try:
            await self.webhooks.remove(request.id)
        except WebhookNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no webhook {request.id!r}")
        return gateway_pb2.Webhook(id=request.id)

    async def ListDeliveries(self, request: gateway_pb2.ListDeliveriesRequest,  # noqa: N802
                             context: grpc.aio.ServicerContext,
                             ) -> gateway_pb2.ListDeliveriesResponse:
        try:
            records = await self.webhooks.deliveries(request.webhook_id, request.limit or 100)
        except WebhookNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no webhook {request.webhook_id!r}")
        return gateway_pb2.ListDeliveriesResponse(
            deliveries=[delivery_message(r) for r in records])


async def start_grpc(experiments: Experiments, host: str, port: int,
                     webhooks: Webhooks | None = None) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server; returns it and the bound port."""
    server = grpc.aio.server()
    gateway_pb2_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(experiments),
                                                             server)
    gateway_pb2_grpc.add_DeadLetterServiceServicer_to_server(
        DeadLetterServicer(DeadLetters(experiments.service)), server)
    if webhooks is not None:
        gateway_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookServicer(webhooks), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
