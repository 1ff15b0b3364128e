"""REST front end (FastAPI): the same use cases as gRPC, with OpenAPI and SSE watch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common import problems
from mlmesh_gateway.convert import delivery_dict, event_dict, experiment_dict, webhook_dict
from mlmesh_gateway.dead_letters import (
    DeadLetterConflict,
    DeadLetterNotFound,
    DeadLetters,
    describe,
)
from mlmesh_gateway.experiments import ExperimentNotFound, Experiments
from mlmesh_gateway.specs import InvalidSpec
from mlmesh_gateway.webhooks import InvalidWebhook, WebhookNotFound, Webhooks


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
    time_budget_s: int = Field(0, ge=0, description="0 for the server's default")
    seed: int = Field(42, ge=0)
    stages: list[str] = Field(default_factory=list,
                              description="optional stages to run: tune, docs, git, publish")
    project: str = "default"
    tags: dict[str, str] = Field(default_factory=dict)
    source_options: dict[str, str] = Field(
        default_factory=dict, description="how to read the source: sheet, member, format, "
        "delimiter, encoding, ... (never credentials)")
    max_trials: int = Field(0, ge=0)
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
        spec = json_format.ParseDict(data, ExperimentSpec())
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


def get_experiments(request: Request) -> Experiments:
    """The application layer, injected into every route (FastAPI dependency)."""
    return request.app.state.experiments


def get_webhooks(request: Request) -> Webhooks:
    """Webhook subscriptions (FastAPI dependency)."""
    return request.app.state.webhooks


def get_dead_letters(request: Request) -> DeadLetters:
    """DLQ operations (FastAPI dependency)."""
    return request.app.state.dead_letters


Exps = Annotated[Experiments, Depends(get_experiments)]
Dlq = Annotated[DeadLetters, Depends(get_dead_letters)]
Hooks = Annotated[Webhooks, Depends(get_webhooks)]


def create_app(experiments: Experiments, webhooks: Webhooks | None = None) -> FastAPI:
    """The REST application over `experiments`."""
    app = FastAPI(title="mlmesh gateway", version=experiments.service.version,
                  description="Submit, follow and cancel autonomous ML experiments.")
    app.state.experiments = experiments
    app.state.dead_letters = DeadLetters(experiments.service)
    app.state.webhooks = webhooks

    @app.exception_handler(InvalidWebhook)
    async def invalid_webhook(request: Request, exc: InvalidWebhook) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(WebhookNotFound)
    async def webhook_not_found(request: Request, exc: WebhookNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={
            "detail": f"no webhook {exc.args[0]!r}; list a project's with "
                      "GET /v1/projects/{project}/webhooks"})

    @app.post("/v1/projects/{project}/webhooks", status_code=201, tags=["webhooks"])
    async def create_webhook(project: str, body: WebhookIn, hooks: Hooks) -> dict[str, Any]:
        """Subscribe a URL; the response carries the signing secret (shown only once)."""
        record = await hooks.create(project, body.url, body.event_types, body.secret)
        return webhook_dict(record, with_secret=True)

    @app.get("/v1/projects/{project}/webhooks", tags=["webhooks"])
    async def list_webhooks(project: str, hooks: Hooks) -> dict[str, Any]:
        """A project's active subscriptions (secrets omitted)."""
        return {"webhooks": [webhook_dict(r) for r in await hooks.list(project)]}

    @app.delete("/v1/webhooks/{webhook_id}", status_code=204, tags=["webhooks"])
    async def delete_webhook(webhook_id: str, hooks: Hooks) -> None:
        """Remove a subscription; pending deliveries to it are dropped."""
        await hooks.remove(webhook_id)

    @app.get("/v1/webhooks/{webhook_id}/deliveries", tags=["webhooks"])
    async def list_deliveries(webhook_id: str, hooks: Hooks,
                              limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """The delivery log: every event, its attempts, last status and error."""
        return {"deliveries": [delivery_dict(r) for r in await hooks.deliveries(webhook_id,
                                                                                limit)]}

    @app.exception_handler(DeadLetterNotFound)
    async def letter_not_found(request: Request, exc: DeadLetterNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={
            "detail": f"no dead letter {exc.args[0]!r}; list them with GET /v1/dlq"})

    @app.exception_handler(DeadLetterConflict)
    async def letter_conflict(request: Request, exc: DeadLetterConflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.get("/v1/dlq", tags=["dead letters"])
    async def list_dead_letters(dlq: Dlq, source_topic: str = "", experiment_id: str = "",
                                status: Literal["open", "replayed", "purged", "any"] = "open",
                                limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Messages that could not be handled, newest first."""
        records = await dlq.list(source_topic, experiment_id,
                                 "" if status == "any" else status, limit)
        counts = await asyncio.to_thread(dlq.ledger.count_dead_letters)
        return {"dead_letters": [describe(r) for r in records], "open_by_topic": counts}

    @app.get("/v1/dlq/{letter_id}", tags=["dead letters"])
    async def get_dead_letter(letter_id: str, dlq: Dlq) -> dict[str, Any]:
        """One dead letter: the error, its stack and the decoded original envelope."""
        return describe(await dlq.get(letter_id), with_payload=True)

    @app.post("/v1/dlq/{letter_id}/replay", tags=["dead letters"])
    async def replay_dead_letter(letter_id: str, dlq: Dlq) -> dict[str, Any]:
        """Send the original message back to its topic (after fixing the cause)."""
        return describe(await dlq.replay(letter_id))

    @app.post("/v1/dlq/{letter_id}/purge", tags=["dead letters"])
    async def purge_dead_letter(letter_id: str, dlq: Dlq) -> dict[str, Any]:
        """Mark a dead letter as dealt with."""
        return describe(await dlq.purge(letter_id))

    @app.exception_handler(InvalidSpec)
    async def invalid_spec(request: Request, exc: InvalidSpec) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": "invalid experiment spec",
                                                      "errors": exc.errors})

    @app.exception_handler(ExperimentNotFound)
    async def not_found(request: Request, exc: ExperimentNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={
            "detail": f"no experiment {exc.args[0]!r}; list them with GET /v1/experiments"})

    @app.post("/v1/experiments", status_code=201, tags=["experiments"])
    async def submit(spec: ExperimentSpecIn, exps: Exps) -> dict[str, Any]:
        """Submit an experiment; it runs with no human in the loop."""
        record = await exps.submit(spec.to_proto(), spec.experiment_id, requested_by="rest")
        return experiment_dict(record)

    @app.get("/v1/experiments", tags=["experiments"])
    async def list_experiments(exps: Exps, project: str = "", status: str = "",
                               limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        """Experiments, newest first."""
        return {"experiments": [experiment_dict(r)
                                for r in await exps.list(project, status, limit)]}

    @app.get("/v1/experiments/{experiment_id}", tags=["experiments"])
    async def get_experiment(experiment_id: str, exps: Exps) -> dict[str, Any]:
        """An experiment's state, stages and results."""
        return experiment_dict(await exps.get(experiment_id))

    @app.post("/v1/experiments/{experiment_id}/cancel", tags=["experiments"])
    async def cancel(experiment_id: str, exps: Exps, body: CancelIn | None = None,
                     ) -> dict[str, Any]:
        """Cancel an experiment; services stop between steps."""
        return experiment_dict(await exps.cancel(experiment_id, body.reason if body else "",
                                                 requested_by="rest"))

    @app.get("/v1/experiments/{experiment_id}/events", tags=["experiments"])
    async def watch(experiment_id: str, exps: Exps, after: int = 0) -> EventSourceResponse:
        """Server-sent events: every event of the experiment until it ends."""
        await exps.get(experiment_id)

        async def stream() -> AsyncIterator[dict[str, str]]:
            async for event in exps.watch(experiment_id, after):
                yield {"id": str(event.sequence), "event": event.type,
                       "data": json.dumps(event_dict(event))}
            record = await exps.get(experiment_id)
            yield {"event": "end", "data": json.dumps(experiment_dict(record))}

        return EventSourceResponse(stream(), ping=15)

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

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail})

    return app
