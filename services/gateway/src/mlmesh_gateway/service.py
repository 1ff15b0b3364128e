"""Wiring: the gateway's consumer group projects every experiment event into the ledger."""

from __future__ import annotations

import asyncio
import time

from google.protobuf.message import Message

from mlmesh.events.v1.common_pb2 import ArtifactRef
from mlmesh.events.v1.experiment_pb2 import ExperimentCompleted
from mlmesh_common import topics
from mlmesh_common.envelope import timestamp_seconds, to_dict
from mlmesh_common.ledger import Ledger
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_gateway import outbound
from mlmesh_gateway.dead_letters import DeadLetterRecorder
from mlmesh_gateway.projection import FINISHING_EVENTS, STAGES, transition
from mlmesh_gateway.webhooks import Dispatcher, Webhooks, cloud_event

service = Service("gateway")
dlq_recorder = DeadLetterRecorder(service)
service.on_start.append(dlq_recorder.start)
service.on_stop.append(dlq_recorder.stop)

#: Every topic the ledger projects (the gateway group's inputs).
PROJECTED_TOPICS = (
    topics.EXPERIMENT_REQUESTED, topics.DATASET_ACQUIRED, topics.DATASET_PROFILED,
    topics.DATASET_PREPARED, topics.TRAINING_COMPLETED, topics.TUNING_COMPLETED,
    topics.MODEL_SELECTED, topics.DOCS_GENERATED, topics.EXPERIMENT_COMMITTED,
    topics.MODEL_PUBLISHED, topics.EXPERIMENT_FAILED, topics.STAGE_PROGRESS,
    topics.EXPERIMENT_COMPLETED, topics.DRIFT_DETECTED,
)


def apply_event(ledger: Ledger, experiment_id: str, event_id: str, event_type: str,
                payload: dict, produced_at: float) -> bool:
    """Project one event; True when, after it, every stage is done (the experiment completes).

    Events of one experiment arrive on several topics, so their order across topics is not
    guaranteed: completion is checked after every stage-finishing event, not only publish's.
    """
    change = transition(event_type, payload)
    if event_type == "mlmesh.experiment.requested":
        spec = payload.get("spec", {})
        ledger.create_experiment(experiment_id, spec.get("project", "default"), spec)
    ledger.append_event(experiment_id, event_id, event_type, change.stage,
                        change.stage_status or change.status, payload, produced_at)
    if change.stage and change.stage_status:
        ledger.upsert_stage(experiment_id, change.stage, change.stage_status, change.percent,
                            change.message, produced_at)
    if change.result:
        ledger.merge_result(experiment_id, change.result)
    if change.status:
        ledger.set_status(experiment_id, change.status, change.failure_reason)
    if event_type not in FINISHING_EVENTS:
        return False
    record = ledger.get_experiment(experiment_id)
    if record is None or record.status != "running":
        return False
    done = {s.name for s in record.stages if s.status in ("finished", "skipped")}
    return all(stage in done for stage in STAGES)


def completion(ledger: Ledger, experiment_id: str) -> ExperimentCompleted:
    """The experiment.completed payload from the ledger's result summary."""
    record = ledger.get_experiment(experiment_id)
    assert record is not None
    r = record.result
    return ExperimentCompleted(
        project=record.project, winner_family=r.get("winner", ""), metric=r.get("metric", ""),
        test_score=float(r.get("test_score") or 0.0),
        baseline_test_score=float(r.get("baseline_test_score") or 0.0),
        registered_model=r.get("registered_model", ""),
        model_version=str(r.get("model_version", "")),
        git_commit=r.get("git", {}).get("commit", ""),
        report=ArtifactRef(uri=r.get("report_uri", "")),
        serving_app=ArtifactRef(uri=r.get("serving_app_uri", "")),
        duration_s=time.time() - record.created_at, mlflow_run_id=r.get("mlflow_run_id", ""))


async def project(ctx: HandlerContext, event: Message) -> None:
    env = ctx.envelope
    if not env.experiment_id:
        return
    completes = await asyncio.to_thread(apply_event, ctx.ledger, env.experiment_id,
                                        env.event_id, env.type, to_dict(event),
                                        timestamp_seconds(env.produced_at))
    if completes:
        done = await asyncio.to_thread(completion, ctx.ledger, env.experiment_id)
        ctx.emit(topics.EXPERIMENT_COMPLETED, done, event_id=f"{env.experiment_id}-completed")


for _topic in PROJECTED_TOPICS:
    service.handles(_topic, group="gateway")(project)


#: Events webhooks can subscribe to (the gateway-webhooks group's inputs).
WEBHOOK_TOPICS = (topics.EXPERIMENT_COMPLETED, topics.EXPERIMENT_FAILED, topics.MODEL_PUBLISHED,
                  topics.DRIFT_DETECTED)


def attach_webhooks(svc: Service) -> tuple[Webhooks, Dispatcher]:
    """Wire webhook fan-out and delivery onto a gateway service."""
    hooks = Webhooks(svc, check_url=outbound.check)
    dispatch = Dispatcher(svc, post=outbound.post)

    async def notify(ctx: HandlerContext, event: Message) -> None:
        """Queue the event for its project's subscribers and wake the dispatcher."""
        env = ctx.envelope
        record = await asyncio.to_thread(ctx.ledger.get_experiment, env.experiment_id)
        body = cloud_event(env.type, env.event_id, env.experiment_id,
                           timestamp_seconds(env.produced_at), to_dict(event))
        if await asyncio.to_thread(hooks.enqueue, record.project if record else "default",
                                   env.type, env.event_id, body):
            dispatch.wake()

    for topic in WEBHOOK_TOPICS:
        svc.handles(topic, group="gateway-webhooks")(notify)
    svc.on_start.append(dispatch.start)
    svc.on_stop.append(dispatch.stop)
    return hooks, dispatch


webhooks, dispatcher = attach_webhooks(service)
