"""REST front end (FastAPI): the same use cases as gRPC, with OpenAPI, SSE watch, the
dashboard, and API-key security (authentication, roles, project scope, rate and size limits,
an audit log of every write)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common import apikeys, problems
from mlmesh_gateway.access import Access, ExperimentIdTaken
from mlmesh_gateway.artifacts import ArtifactNotFound
from mlmesh_gateway.auth import (
    Forbidden,
    Principal,
    ProjectNotFound,
    RateLimited,
    Unauthenticated,
    audit_note,
    note,
)
from mlmesh_gateway.convert import delivery_dict, event_dict, experiment_dict, webhook_dict
from mlmesh_gateway.dead_letters import (
    DeadLetterConflict,
    DeadLetterNotFound,
    DeadLetters,
    describe,
)
from mlmesh_gateway.experiments import ExperimentNotFound, Experiments
from mlmesh_gateway.keys import InvalidKeyRequest, KeyNotFound, audit_dict, key_dict
from mlmesh_gateway.ops import Ops, mlflow_url
from mlmesh_gateway.security import Security
from mlmesh_gateway.specs import InvalidSpec
from mlmesh_gateway.webhooks import InvalidWebhook, WebhookNotFound, Webhooks

log = logging.getLogger("mlmesh.gateway.rest")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Paths served without a key: probes, metrics, the API description and the dashboard's
#: static files (the dashboard asks for a key before it reads anything).
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json",
                   "/dashboard", "/favicon.ico")
DASHBOARD_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; "
     b"frame-src blob:; object-src 'none'; base-uri 'none'; form-action 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class ExperimentSpecIn(BaseModel):
    """What to run: a dataset reference and, optionally, target, budget and stages."""

    model_config = ConfigDict(extra="forbid")

    dataset_uri: str = Field(description="file://, http(s)://, s3://, kaggle://owner/dataset, "
                             "hf://datasets/<name>[/<config>/<split>], openml://<id> or "
                             "uci://<id>")
    dataset_sha256: str = Field("", description="expected sha256 of the source bytes")
    target: str = Field("", description="target column; found by profile when empty")
    problem_type: Literal["", "binary", "multiclass", "regression"] = ""
    metric: str = ""
    time_budget_s: int = Field(0, ge=0, le=2**31 - 1,
                               description="0 for the server's default")
    seed: int = Field(42, ge=0, le=2**31 - 1)
    stages: list[str] = Field(default_factory=list,
                              description="optional stages to run: tune, docs, git, publish")
    project: str = "default"
    tags: dict[str, str] = Field(default_factory=dict)
    source_options: dict[str, str] = Field(
        default_factory=dict, description="how to read the source: sheet, member, format, "
        "delimiter, encoding, ... (never credentials)")
    max_trials: int = Field(0, ge=0, le=2**31 - 1)
    parent_experiment_id: str = ""
    families: list[str] = Field(default_factory=list, description="model families to train; "
                                "empty for all (" + ", ".join(problems.MODEL_FAMILIES) + ")")
    split_strategy: str = Field("", description="auto, random, stratified, group or time")
    group_column: str = Field("", description="column keeping rows together (group split)")
    time_column: str = Field("", description="column ordering rows in time (time split)")
    sensitive_columns: list[str] = Field(default_factory=list,
                                         description="columns to report fairness metrics over")
    max_latency_ms: float = Field(0, ge=0, description="latency limit per row; 0 for none")
    max_model_size_mb: float = Field(0, ge=0, description="model size limit; 0 for none")
    objectives: list[str] = Field(default_factory=list,
                                  description="tuning objectives: score, latency")
    sampler: str = Field("", description="Optuna sampler: auto, tpe, random or grid")
    pruner: str = Field("", description="median, successive_halving, hyperband or none")
    experiment_id: str = Field("", description="client-chosen id; resubmitting returns it")

    def to_proto(self) -> ExperimentSpec:
        data = self.model_dump(exclude={"experiment_id", "problem_type"})
        try:
            spec = json_format.ParseDict(data, ExperimentSpec())
        except json_format.ParseError as exc:
            raise InvalidSpec({"spec": str(exc)}) from exc
        spec.problem_type = problems.to_proto(self.problem_type)
        return spec


class CancelIn(BaseModel):
    reason: str = ""


class WebhookIn(BaseModel):
    """A subscription: where to POST, which events, and optionally your own whsec_ secret."""

    model_config = ConfigDict(extra="forbid")

    url: str
    event_types: list[str] = Field(min_length=1)
    secret: str = ""


class KeyIn(BaseModel):
    """A new API key: a name, a role and the projects it may act on ('*' for all)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100)
    role: Literal["viewer", "scientist", "admin"]
    projects: list[str] = Field(min_length=1, max_length=100)


class Guard:
    """ASGI middleware: request size limit (413), security headers for the dashboard, and
    an audit entry for every write under /v1 (who, action, target, project, outcome)."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.security.max_body_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0")
        path: str = scope.get("path", "")
        is_write = scope.get("method", "GET") in WRITE_METHODS and path.startswith("/v1/")
        scope.setdefault("state", {})
        noted: dict[str, Any] = {}
        token = audit_note.set(noted)
        status: dict[str, Any] = {"code": 0, "started": False, "too_large": False}
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            if status["too_large"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # stop reading: the answer will be 413
                    status["too_large"] = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def tracking_send(message: Message) -> None:
            if status["too_large"]:  # whatever the app made of a truncated body
                if message["type"] == "http.response.start":
                    await _too_large(limit, send)
                    status.update(code=413, started=True)
                return
            if message["type"] == "http.response.start":
                status.update(code=message["status"], started=True)
                if path.startswith("/dashboard"):
                    message = {**message, "headers": [*message.get("headers", []),
                                                      *DASHBOARD_HEADERS]}
            await send(message)

        try:
            if not declared.isdigit() or int(declared) > limit:
                status["too_large"] = True
                await _too_large(limit, send)
                status.update(code=413, started=True)
            else:
                await self.app(scope, counting_receive, tracking_send)
        finally:
            audit_note.reset(token)
            if is_write:
                await self._audit(scope, noted, status["code"] or 500)

    async def _audit(self, scope: Scope, noted: dict[str, Any], code: int) -> None:
        principal = scope.get("state", {}).get("principal")
        action = noted.get("action") or f"{scope.get('method')} {scope.get('path', '')}"
        try:
            await asyncio.to_thread(self.security.audit.record, principal, action,
                                    str(noted.get("target", "")),
                                    str(noted.get("project", "")), code,
                                    str(noted.get("detail", "")))
        except Exception:  # the audit log must not break the answer
            log.exception("audit entry not recorded for %s", action)


async def _too_large(limit: int, send: Send) -> None:
    body = json.dumps({"detail": f"request body larger than {limit} bytes; send less "
                                 "(MLMESH_API_MAX_BODY_BYTES)"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


_bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                     description="Authorization: Bearer <API key>")
_api_key_header = APIKeyHeader(name="x-api-key", auto_error=False, scheme_name="apiKey",
                               description="x-api-key: <API key>")


async def authenticate(request: Request,
                       bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                       header_key: Annotated[str | None, Depends(_api_key_header)],
                       ) -> Principal:
    """The caller's principal (FastAPI dependency of every /v1 route)."""
    security: Security = request.app.state.security
    key = (bearer.credentials if bearer else "") or (header_key or "")
    client = request.client.host if request.client else ""
    auth = security.authenticator
    principal = auth.cached(key) if key else None
    if principal is not None:
        auth.limiter.take(f"key:{principal.key_id}")
    else:
        principal = await asyncio.to_thread(auth.authenticate, key.strip(), client)
    request.state.principal = principal
    return principal


def get_access(request: Request) -> Access:
    """The authorized application layer (FastAPI dependency)."""
    return request.app.state.access


Who = Annotated[Principal, Depends(authenticate)]
Api = Annotated[Access, Depends(get_access)]


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    handlers: dict[type[Exception], Any] = {
        Unauthenticated: lambda exc: _error(401, apikeys.redact(str(exc)),
                                            {"WWW-Authenticate": "Bearer"}),
        Forbidden: lambda exc: _error(403, str(exc)),
        RateLimited: lambda exc: _error(429, str(exc),
                                        {"Retry-After": str(int(exc.retry_after_s))}),
        ProjectNotFound: lambda exc: _error(404, f"no project {exc.args[0]!r} for this key"),
        ExperimentNotFound: lambda exc: _error(
            404, f"no experiment {exc.args[0]!r}; list them with GET /v1/experiments"),
        ExperimentIdTaken: lambda exc: _error(409, str(exc)),
        WebhookNotFound: lambda exc: _error(
            404, f"no webhook {exc.args[0]!r}; list a project's with "
                 "GET /v1/projects/{project}/webhooks"),
        InvalidWebhook: lambda exc: _error(422, str(exc)),
        DeadLetterNotFound: lambda exc: _error(
            404, f"no dead letter {exc.args[0]!r}; list them with GET /v1/dlq"),
        DeadLetterConflict: lambda exc: _error(409, str(exc)),
        KeyNotFound: lambda exc: _error(404, f"no active key {exc.args[0]!r}; list them with "
                                             "GET /v1/keys"),
        InvalidKeyRequest: lambda exc: _error(422, str(exc)),
        ArtifactNotFound: lambda exc: _error(
            404, f"no artifact {exc.args[0]!r}; list them with "
                 "GET /v1/experiments/{experiment_id}/artifacts"),
        InvalidSpec: lambda exc: JSONResponse(status_code=422, content={
            "detail": "invalid experiment spec", "errors": exc.errors}),
        HTTPException: lambda exc: JSONResponse(status_code=exc.status_code,
                                                content={"detail": exc.detail},
                                                headers=getattr(exc, "headers", None)),
    }
    for kind, build in handlers.items():
        async def handle(request: Request, exc: Exception, build: Any = build) -> JSONResponse:
            return build(exc)

        app.add_exception_handler(kind, handle)


def create_app(experiments: Experiments, webhooks: Webhooks | None = None,
               security: Security | None = None) -> FastAPI:
    """The REST application over `experiments`, secured by `security` (built from the
    service's settings when not given: share one between REST and gRPC)."""
    security = security or Security(experiments.service)
    app = FastAPI(title="mlmesh gateway", version=experiments.service.version,
                  description="Submit, follow and cancel autonomous ML experiments. Every /v1 "
                              "call needs an API key ('Authorization: Bearer <key>' or "
                              "'x-api-key'); objects of projects outside the key's scope "
                              "answer 404.")
    dead_letters = DeadLetters(experiments.service)
    app.state.experiments = experiments
    app.state.dead_letters = dead_letters
    app.state.webhooks = webhooks
    app.state.security = security
    app.state.access = Access(experiments, dead_letters, webhooks)
    app.state.ops = Ops(experiments.service)
    app.add_middleware(Guard, security=security)
    _install_error_handlers(app)

    @app.post("/v1/projects/{project}/webhooks", status_code=201, tags=["webhooks"])
    async def create_webhook(project: str, body: WebhookIn, who: Who, api: Api,
                             ) -> dict[str, Any]:
        """Subscribe a URL; the response carries the signing secret (shown only once)."""
        record = await api.create_webhook(who, project, body.url, body.event_types, body.secret)
        return webhook_dict(record, with_secret=True)

    @app.get("/v1/projects/{project}/webhooks", tags=["webhooks"])
    async def list_webhooks(project: str, who: Who, api: Api) -> dict[str, Any]:
        """A project's active subscriptions (secrets omitted)."""
        return {"webhooks": [webhook_dict(r) for r in await api.list_webhooks(who, project)]}

    @app.delete("/v1/webhooks/{webhook_id}", status_code=204, tags=["webhooks"])
    async def delete_webhook(webhook_id: str, who: Who, api: Api) -> None:
        """Remove a subscription; pending deliveries to it are dropped."""
        await api.remove_webhook(who, webhook_id)

    @app.get("/v1/webhooks/{webhook_id}/deliveries", tags=["webhooks"])
    async def list_deliveries(webhook_id: str, who: Who, api: Api,
                              limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """The delivery log: every event, its attempts, last status and error."""
        return {"deliveries": [delivery_dict(r)
                               for r in await api.deliveries(who, webhook_id, limit)]}

    @app.get("/v1/dlq", tags=["dead letters"])
    async def list_dead_letters(who: Who, api: Api, source_topic: str = "",
                                experiment_id: str = "",
                                status: Literal["open", "replayed", "purged", "any"] = "open",
                                limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Messages that could not be handled, newest first (of the key's projects)."""
        records = await api.letters(who, source_topic, experiment_id,
                                    "" if status == "any" else status, limit)
        counts = await api.open_letter_counts(who)
        return {"dead_letters": [describe(r) for r in records], "open_by_topic": counts}

    @app.get("/v1/dlq/{letter_id}", tags=["dead letters"])
    async def get_dead_letter(letter_id: str, who: Who, api: Api) -> dict[str, Any]:
        """One dead letter: the error, its stack and the decoded original envelope."""
        return describe(await api.letter(who, letter_id), with_payload=True)

    @app.post("/v1/dlq/{letter_id}/replay", tags=["dead letters"])
    async def replay_dead_letter(letter_id: str, who: Who, api: Api) -> dict[str, Any]:
        """Send the original message back to its topic (after fixing the cause; admin)."""
        return describe(await api.replay(who, letter_id))

    @app.post("/v1/dlq/{letter_id}/purge", tags=["dead letters"])
    async def purge_dead_letter(letter_id: str, who: Who, api: Api) -> dict[str, Any]:
        """Mark a dead letter as dealt with (admin)."""
        return describe(await api.purge(who, letter_id))

    @app.post("/v1/experiments", status_code=201, tags=["experiments"])
    async def submit(spec: ExperimentSpecIn, who: Who, api: Api) -> dict[str, Any]:
        """Submit an experiment; it runs with no human in the loop (scientist or admin)."""
        record = await api.submit(who, spec.to_proto(), spec.experiment_id,
                                  requested_by="rest")
        return experiment_dict(record)

    @app.get("/v1/experiments", tags=["experiments"])
    async def list_experiments(who: Who, api: Api, project: str = "", status: str = "",
                               limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        """Experiments of the key's projects, newest first."""
        return {"experiments": [experiment_dict(r)
                                for r in await api.list(who, project, status, limit)]}

    @app.get("/v1/experiments/{experiment_id}", tags=["experiments"])
    async def get_experiment(experiment_id: str, who: Who, api: Api) -> dict[str, Any]:
        """An experiment's state, stages and results."""
        return experiment_dict(await api.get(who, experiment_id))

    @app.post("/v1/experiments/{experiment_id}/cancel", tags=["experiments"])
    async def cancel(experiment_id: str, who: Who, api: Api, body: CancelIn | None = None,
                     ) -> dict[str, Any]:
        """Cancel an experiment; services stop between steps (scientist or admin)."""
        return experiment_dict(await api.cancel(who, experiment_id,
                                                body.reason if body else "",
                                                requested_by="rest"))

    @app.get("/v1/experiments/{experiment_id}/events", tags=["experiments"])
    async def watch(experiment_id: str, who: Who, api: Api,
                    after: int = Query(0, ge=0, le=2**62)) -> EventSourceResponse:
        """Server-sent events: every event of the experiment until it ends."""
        events = await api.watch(who, experiment_id, after)

        async def stream() -> AsyncIterator[dict[str, str]]:
            async for event in events:
                yield {"id": str(event.sequence), "event": event.type,
                       "data": json.dumps(event_dict(event))}
            record = await api.get(who, experiment_id)
            yield {"event": "end", "data": json.dumps(experiment_dict(record))}

        return EventSourceResponse(stream(), ping=15)

    @app.get("/v1/experiments/{experiment_id}/artifacts", tags=["artifacts"])
    async def list_artifacts(experiment_id: str, who: Who, api: Api) -> dict[str, Any]:
        """Files under the experiment's artifact folder (paths relative to it)."""
        return {"artifacts": await api.artifact_list(who, experiment_id)}

    @app.get("/v1/experiments/{experiment_id}/artifacts/{path:path}", tags=["artifacts"],
             response_class=FileResponse)
    async def get_artifact(experiment_id: str, path: str, who: Who, api: Api) -> FileResponse:
        """Download one artifact of the experiment (served inert: sandboxed, no sniffing)."""
        found = await api.artifact(who, experiment_id, path)
        cleanup = BackgroundTask(os.unlink, found.path) if found.temporary else None
        return FileResponse(found.path, filename=found.name, background=cleanup,
                            content_disposition_type="inline",
                            headers={"content-security-policy": "sandbox",
                                     "x-content-type-options": "nosniff"})

    @app.post("/v1/keys", status_code=201, tags=["keys"])
    async def create_key(body: KeyIn, who: Who) -> dict[str, Any]:
        """Create an API key within your own scope (admin); the key is shown only once."""
        note(action="keys.create", project=",".join(body.projects))
        record, key = await security.keys.create(who, body.name, body.role, body.projects)
        note(target=record.id)
        return key_dict(record, key)

    @app.get("/v1/keys", tags=["keys"])
    async def list_keys(who: Who, include_revoked: bool = False) -> dict[str, Any]:
        """API keys within your scope (admin); never the keys themselves."""
        return {"keys": [key_dict(r) for r in await security.keys.list(who, include_revoked)]}

    @app.delete("/v1/keys/{key_id}", tags=["keys"])
    async def revoke_key(key_id: str, who: Who) -> dict[str, Any]:
        """Revoke an API key (admin); it stops working at once on this gateway."""
        note(action="keys.revoke", target=key_id)
        record = await security.keys.revoke(who, key_id)
        note(project=",".join(record.projects))
        security.authenticator.forget(key_id)
        return key_dict(record)

    @app.get("/v1/audit", tags=["audit"])
    async def audit_log(who: Who, key_id: str = "", action: str = "",
                        since: float = Query(0.0, ge=0, le=1e12),
                        limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Every write through the API, newest first (admin; of the key's projects)."""
        records = await security.audit.list(who, key_id, action, since, limit)
        return {"entries": [audit_dict(r) for r in records]}

    @app.get("/v1/whoami", tags=["keys"])
    async def whoami(who: Who) -> dict[str, Any]:
        """The calling key (id, name, role, projects) and where MLflow's UI is."""
        return {"key_id": who.key_id, "name": who.name, "role": who.role,
                "projects": list(who.projects),
                "mlflow_url": mlflow_url(experiments.service)}

    @app.get("/v1/ops", tags=["ops"])
    async def ops_view(who: Who) -> dict[str, Any]:
        """Service health and breakers, consumer lag per group and topic, DLQ counts,
        throughput and drift status of published models."""
        return await app.state.ops.view(who)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:
        return {"service": "gateway", "ok": True}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ready = experiments.service.ready
        return JSONResponse(status_code=200 if ready else 503, content={"ready": ready})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    dashboard = resources.files("mlmesh_gateway") / "dashboard"
    app.mount("/dashboard", StaticFiles(directory=str(dashboard), html=True), name="dashboard")
    return app
