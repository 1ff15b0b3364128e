"""Ledger records to API shapes (gRPC messages and REST dicts)."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh.gateway.v1 import gateway_pb2
from mlmesh_common.ledger import (
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ExperimentRecord,
    WebhookRecord,
)
from mlmesh_gateway.dead_letters import describe


def _ts(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def spec_from_dict(data: dict[str, Any]) -> ExperimentSpec:
    """An ExperimentSpec from its JSON form (unknown fields are an error)."""
    return json_format.ParseDict(data, ExperimentSpec())


def experiment_message(record: ExperimentRecord) -> gateway_pb2.Experiment:
    msg = gateway_pb2.Experiment(
        experiment_id=record.experiment_id, project=record.project, status=record.status,
        spec=spec_from_dict(record.spec), result_json=json.dumps(record.result),
        failure_reason=record.failure_reason, created_at=_ts(record.created_at),
        updated_at=_ts(record.updated_at))
    for stage in record.stages:
        msg.stages.add(name=stage.name, status=stage.status, percent=stage.percent,
                       message=stage.message, started_at=_ts(stage.started_at),
                       finished_at=_ts(stage.finished_at))
    return msg


def event_message(event: EventRecord) -> gateway_pb2.ExperimentEvent:
    return gateway_pb2.ExperimentEvent(sequence=event.sequence, event_id=event.event_id,
                                       type=event.type, produced_at=_ts(event.produced_at),
                                       stage=event.stage, status=event.status,
                                       payload_json=json.dumps(event.payload))


def dead_letter_message(record: DeadLetterRecord,
                        with_payload: bool = False) -> gateway_pb2.DeadLetterEntry:
    described = describe(record, with_payload)
    return gateway_pb2.DeadLetterEntry(
        id=record.id, dlq_topic=record.dlq_topic, source_topic=record.source_topic,
        experiment_id=record.experiment_id, event_id=record.event_id,
        consumer_group=record.consumer_group, error_type=record.error_type,
        error_message=record.error_message, attempt=record.attempt,
        failed_at=_ts(record.failed_at), status=record.status,
        stack=record.stack if with_payload else "",
        envelope_json=json.dumps(described["envelope"]) if described.get("envelope") else "")


def experiment_dict(record: ExperimentRecord) -> dict[str, Any]:
    return {
        "experiment_id": record.experiment_id, "project": record.project,
        "status": record.status, "spec": record.spec, "result": record.result,
        "failure_reason": record.failure_reason, "created_at": record.created_at,
        "updated_at": record.updated_at,
        "stages": [{"name": s.name, "status": s.status, "percent": s.percent,
                    "message": s.message, "started_at": s.started_at,
                    "finished_at": s.finished_at} for s in record.stages],
    }


def event_dict(event: EventRecord) -> dict[str, Any]:
    return {"sequence": event.sequence, "event_id": event.event_id, "type": event.type,
            "stage": event.stage, "status": event.status, "produced_at": event.produced_at,
            "payload": event.payload}


def webhook_dict(record: WebhookRecord, with_secret: bool = False) -> dict[str, Any]:
    out = {"id": record.id, "project": record.project, "url": record.url,
           "event_types": record.event_types, "created_at": record.created_at}
    if with_secret:
        out["secret"] = record.secret
    return out


def delivery_dict(record: DeliveryRecord) -> dict[str, Any]:
    return {k: getattr(record, k) for k in (
        "id", "webhook_id", "event_id", "event_type", "status", "attempts",
        "last_status_code", "last_error", "created_at", "updated_at")}


def webhook_message(record: WebhookRecord, with_secret: bool = False) -> gateway_pb2.Webhook:
    return gateway_pb2.Webhook(id=record.id, project=record.project, url=record.url,
                               event_types=record.event_types,
                               secret=record.secret if with_secret else "",
                               created_at=_ts(record.created_at))


def delivery_message(record: DeliveryRecord) -> gateway_pb2.Delivery:
    return gateway_pb2.Delivery(
        id=record.id, webhook_id=record.webhook_id, event_id=record.event_id,
        event_type=record.event_type, status=record.status, attempts=record.attempts,
        last_status_code=record.last_status_code, last_error=record.last_error,
        created_at=_ts(record.created_at), updated_at=_ts(record.updated_at))
