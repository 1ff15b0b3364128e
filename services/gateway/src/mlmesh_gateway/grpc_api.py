"""gRPC front end: the same use cases as REST, authenticated by a server interceptor
(metadata 'authorization: Bearer <key>' or 'x-api-key: <key>')."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_common import apikeys
from mlmesh_gateway.access import Access, ExperimentIdTaken
from mlmesh_gateway.auth import (
    Forbidden,
    Principal,
    ProjectNotFound,
    RateLimited,
    Unauthenticated,
    audit_note,
    key_from_headers,
    note,
)
from mlmesh_gateway.convert import (
    _ts,
    dead_letter_message,
    delivery_message,
    event_message,
    experiment_message,
    webhook_message,
)
from mlmesh_gateway.dead_letters import DeadLetterConflict, DeadLetterNotFound, DeadLetters
from mlmesh_gateway.experiments import ExperimentNotFound, Experiments
from mlmesh_gateway.keys import InvalidKeyRequest, KeyNotFound
from mlmesh_gateway.security import Security
from mlmesh_gateway.specs import InvalidSpec
from mlmesh_gateway.webhooks import InvalidWebhook, WebhookNotFound, Webhooks

log = logging.getLogger("mlmesh.gateway.grpc")
#: The verified caller of the current RPC (set by the interceptor).
caller: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("caller",
                                                                          default=None)
#: RPCs that change state: each gets an audit entry.
WRITES = frozenset({"SubmitExperiment", "CancelExperiment", "ReplayDeadLetter",
                    "PurgeDeadLetter", "CreateWebhook", "DeleteWebhook", "CreateKey",
                    "RevokeKey"})


def _who(context: grpc.aio.ServicerContext) -> Principal:
    principal = caller.get()
    if principal is None:  # the interceptor always sets it; never serve without one
        raise Unauthenticated("no verified caller")
    return principal


def _status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status for a use-case error (404 for other projects' objects)."""
    if isinstance(exc, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED, apikeys.redact(str(exc))
    if isinstance(exc, Forbidden):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc)
    if isinstance(exc, RateLimited):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, ProjectNotFound):
        return grpc.StatusCode.NOT_FOUND, f"no project {exc.args[0]!r} for this key"
    if isinstance(exc, ExperimentNotFound):
        return (grpc.StatusCode.NOT_FOUND,
                f"no experiment {exc.args[0]!r}; list them with ListExperiments")
    if isinstance(exc, DeadLetterNotFound):
        return (grpc.StatusCode.NOT_FOUND,
                f"no dead letter {exc.args[0]!r}; list them with ListDeadLetters")
    if isinstance(exc, WebhookNotFound):
        return grpc.StatusCode.NOT_FOUND, f"no webhook {exc.args[0]!r}"
    if isinstance(exc, KeyNotFound):
        return grpc.StatusCode.NOT_FOUND, f"no active key {exc.args[0]!r}"
    if isinstance(exc, (DeadLetterConflict,)):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, ExperimentIdTaken):
        return grpc.StatusCode.ALREADY_EXISTS, str(exc)
    if isinstance(exc, InvalidSpec):
        return grpc.StatusCode.INVALID_ARGUMENT, f"invalid spec: {exc}"
    if isinstance(exc, (InvalidWebhook, InvalidKeyRequest, ValueError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    return grpc.StatusCode.INTERNAL, "internal error; see the gateway's log"


_HANDLED = (Unauthenticated, Forbidden, RateLimited, KeyError, ValueError)


async def _fail(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message = _status(exc)
    if isinstance(exc, RateLimited):
        context.set_trailing_metadata((("retry-after", str(int(exc.retry_after_s))),))
    await context.abort(code, message)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call, rate-limits per key, and audits every write."""

    def __init__(self, security: Security) -> None:
        self.security = security

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails],
                                                             Awaitable[grpc.RpcMethodHandler]],
                                details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        metadata = {k.lower(): v for k, v in (details.invocation_metadata or ())
                    if isinstance(v, str)}
        key = key_from_headers(metadata.get)
        security = self.security

        async def authenticate(context: grpc.aio.ServicerContext) -> Principal | None:
            auth = security.authenticator
            try:
                principal = auth.cached(key) if key else None
                if principal is not None:
                    auth.limiter.take(f"key:{principal.key_id}")
                else:
                    peer = context.peer() or ""
                    principal = await asyncio.to_thread(auth.authenticate, key, peer)
            except (Unauthenticated, RateLimited) as exc:
                if method in WRITES:
                    await self._audit(None, method, {}, exc)
                await _fail(context, exc)
                return None
            return principal

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                principal = await authenticate(context)
                token, noted = caller.set(principal), {}
                note_token = audit_note.set(noted)
                error: BaseException | None = None
                try:
                    return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    caller.reset(token)
                    audit_note.reset(note_token)
                    if method in WRITES:
                        await self._audit(principal, method, noted, error, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext,
                             ) -> AsyncIterator[Any]:
                principal = await authenticate(context)
                token = caller.set(principal)
                try:
                    async for item in inner_stream(request, context):
                        yield item
                finally:
                    caller.reset(token)

            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler

    async def _audit(self, principal: Principal | None, method: str, noted: dict[str, Any],
                     error: BaseException | None,
                     context: grpc.aio.ServicerContext | None = None) -> None:
        status = grpc.StatusCode.OK
        if error is not None:
            status = _status(error)[0]
            if context is not None and context.code() is not None:
                status = context.code()  # set by abort(): the status the client saw
        try:
            await asyncio.to_thread(self.security.audit.record, principal,
                                    noted.get("action") or f"grpc {method}",
                                    str(noted.get("target", "")),
                                    str(noted.get("project", "")),
                                    _HTTP_EQUIVALENT.get(status, 500), "grpc")
        except Exception:  # the audit log must not break the answer
            log.exception("audit entry not recorded for %s", method)


#: gRPC status -> the HTTP code the audit log records (one scale for both front ends).
_HTTP_EQUIVALENT = {
    grpc.StatusCode.OK: 200, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 422, grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
}


class _Base:
    def __init__(self, access: Access) -> None:
        self.access = access

    async def _run(self, context: grpc.aio.ServicerContext,
                   call: Callable[[Principal], Awaitable[Any]]) -> Any:
        try:
            return await call(_who(context))
        except _HANDLED as exc:
            await _fail(context, exc)


class ExperimentServicer(_Base, gateway_pb2_grpc.ExperimentServiceServicer):
    """Translates gRPC calls to the authorized use cases and errors to status codes."""

    async def SubmitExperiment(self, request: gateway_pb2.SubmitExperimentRequest,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> gateway_pb2.Experiment:
        record = await self._run(context, lambda who: self.access.submit(
            who, request.spec, request.experiment_id, requested_by="grpc"))
        return experiment_message(record)

    async def GetExperiment(self, request: gateway_pb2.GetExperimentRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.Experiment:
        record = await self._run(context, lambda who: self.access.get(who,
                                                                      request.experiment_id))
        return experiment_message(record)

    async def ListExperiments(self, request: gateway_pb2.ListExperimentsRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext,
                              ) -> gateway_pb2.ListExperimentsResponse:
        records = await self._run(context, lambda who: self.access.list(
            who, request.project, request.status, request.limit or 50))
        return gateway_pb2.ListExperimentsResponse(
            experiments=[experiment_message(r) for r in records])

    async def CancelExperiment(self, request: gateway_pb2.CancelExperimentRequest,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> gateway_pb2.Experiment:
        record = await self._run(context, lambda who: self.access.cancel(
            who, request.experiment_id, request.reason, requested_by="grpc"))
        return experiment_message(record)

    async def WatchExperiment(self, request: gateway_pb2.WatchExperimentRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext,
                              ) -> AsyncIterator[gateway_pb2.ExperimentEvent]:
        events = await self._run(context, lambda who: self.access.watch(
            who, request.experiment_id, request.after_sequence))
        async for event in events:
            yield event_message(event)


class DeadLetterServicer(_Base, gateway_pb2_grpc.DeadLetterServiceServicer):
    """DLQ operations over gRPC."""

    async def ListDeadLetters(self, request: gateway_pb2.ListDeadLettersRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext,
                              ) -> gateway_pb2.ListDeadLettersResponse:
        status = "" if request.status == "any" else (request.status or "open")
        records = await self._run(context, lambda who: self.access.letters(
            who, request.source_topic, request.experiment_id, status, request.limit or 100))
        return gateway_pb2.ListDeadLettersResponse(
            dead_letters=[dead_letter_message(r) for r in records])

    async def GetDeadLetter(self, request: gateway_pb2.GetDeadLetterRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.DeadLetterEntry:
        record = await self._run(context, lambda who: self.access.letter(who, request.id))
        return dead_letter_message(record, with_payload=True)

    async def ReplayDeadLetter(self, request: gateway_pb2.ReplayDeadLetterRequest,  # noqa: N802
                               context: grpc.aio.ServicerContext) -> gateway_pb2.DeadLetterEntry:
        record = await self._run(context, lambda who: self.access.replay(who, request.id))
        return dead_letter_message(record)

    async def PurgeDeadLetter(self, request: gateway_pb2.PurgeDeadLetterRequest,  # noqa: N802
                              context: grpc.aio.ServicerContext) -> gateway_pb2.DeadLetterEntry:
        record = await self._run(context, lambda who: self.access.purge(who, request.id))
        return dead_letter_message(record)


class WebhookServicer(_Base, gateway_pb2_grpc.WebhookServiceServicer):
    """Webhook subscriptions over gRPC."""

    async def CreateWebhook(self, request: gateway_pb2.CreateWebhookRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.Webhook:
        record = await self._run(context, lambda who: self.access.create_webhook(
            who, request.project or "default", request.url, list(request.event_types),
            request.secret))
        return webhook_message(record, with_secret=True)

    async def ListWebhooks(self, request: gateway_pb2.ListWebhooksRequest,  # noqa: N802
                           context: grpc.aio.ServicerContext,
                           ) -> gateway_pb2.ListWebhooksResponse:
        records = await self._run(context, lambda who: self.access.list_webhooks(
            who, request.project or "default"))
        return gateway_pb2.ListWebhooksResponse(webhooks=[webhook_message(r) for r in records])

    async def DeleteWebhook(self, request: gateway_pb2.DeleteWebhookRequest,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> gateway_pb2.Webhook:
        await self._run(context, lambda who: self.access.remove_webhook(who, request.id))
        return gateway_pb2.Webhook(id=request.id)

    async def ListDeliveries(self, request: gateway_pb2.ListDeliveriesRequest,  # noqa: N802
                             context: grpc.aio.ServicerContext,
                             ) -> gateway_pb2.ListDeliveriesResponse:
        records = await self._run(context, lambda who: self.access.deliveries(
            who, request.webhook_id, request.limit or 100))
        return gateway_pb2.ListDeliveriesResponse(
            deliveries=[delivery_message(r) for r in records])


def key_message(record: Any, key: str = "") -> gateway_pb2.ApiKey:
    return gateway_pb2.ApiKey(id=record.id, name=record.name, role=record.role,
                              projects=list(record.projects), key=key,
                              created_at=_ts(record.created_at), created_by=record.created_by,
                              revoked_at=_ts(record.revoked_at))


class KeyServicer(gateway_pb2_grpc.KeyServiceServicer):
    """API key management over gRPC (admin)."""

    def __init__(self, security: Security) -> None:
        self.security = security

    async def _run(self, context: grpc.aio.ServicerContext,
                   call: Callable[[Principal], Awaitable[Any]]) -> Any:
        try:
            return await call(_who(context))
        except _HANDLED as exc:
            await _fail(context, exc)

    async def CreateKey(self, request: gateway_pb2.CreateKeyRequest,  # noqa: N802
                        context: grpc.aio.ServicerContext) -> gateway_pb2.ApiKey:
        note(action="keys.create", project=",".join(request.projects))
        record, key = await self._run(context, lambda who: self.security.keys.create(
            who, request.name, request.role, list(request.projects)))
        note(target=record.id)
        return key_message(record, key)

    async def ListKeys(self, request: gateway_pb2.ListKeysRequest,  # noqa: N802
                       context: grpc.aio.ServicerContext) -> gateway_pb2.ListKeysResponse:
        records = await self._run(context, lambda who: self.security.keys.list(
            who, request.include_revoked))
        return gateway_pb2.ListKeysResponse(keys=[key_message(r) for r in records])

    async def RevokeKey(self, request: gateway_pb2.RevokeKeyRequest,  # noqa: N802
                        context: grpc.aio.ServicerContext) -> gateway_pb2.ApiKey:
        note(action="keys.revoke", target=request.id)
        record = await self._run(context, lambda who: self.security.keys.revoke(who,
                                                                                request.id))
        note(project=",".join(record.projects))
        self.security.authenticator.forget(request.id)
        return key_message(record)


async def start_grpc(experiments: Experiments, host: str, port: int,
                     webhooks: Webhooks | None = None, security: Security | None = None,
                     ) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server (authenticated; share `security` with REST); returns it and the
    bound port."""
    security = security or Security(experiments.service)
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(security)],
        options=[("grpc.max_receive_message_length", security.max_body_bytes)])
    access = Access(experiments, DeadLetters(experiments.service), webhooks)
    gateway_pb2_grpc.add_ExperimentServiceServicer_to_server(ExperimentServicer(access), server)
    gateway_pb2_grpc.add_DeadLetterServiceServicer_to_server(DeadLetterServicer(access), server)
    if webhooks is not None:
        gateway_pb2_grpc.add_WebhookServiceServicer_to_server(WebhookServicer(access), server)
    gateway_pb2_grpc.add_KeyServiceServicer_to_server(KeyServicer(security), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
