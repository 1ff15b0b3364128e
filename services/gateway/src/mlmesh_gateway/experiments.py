"""The gateway's application layer: submit, get, list, cancel, watch (one for REST and gRPC)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from google.protobuf import json_format

from mlmesh.events.v1.experiment_pb2 import ExperimentCancel, ExperimentRequested, ExperimentSpec
from mlmesh_common import topics
from mlmesh_common.ledger import EventRecord, ExperimentRecord, Ledger
from mlmesh_common.ledger._base import TERMINAL_STATUSES
from mlmesh_common.runtime import Service
from mlmesh_gateway.specs import validate_spec


class ExperimentNotFound(KeyError):
    """No experiment has that id."""


class Experiments:
    """Use cases over the ledger and the event log; front ends only translate."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def ledger(self) -> Ledger:
        return self.service.ledger

    async def submit(self, spec: ExperimentSpec, experiment_id: str = "",
                     requested_by: str = "api") -> ExperimentRecord:
        """Validate, record and emit experiment.requested; idempotent on experiment_id."""
        spec = validate_spec(spec, self.service.settings.default_time_budget_s,
                             self.service.settings.default_max_trials)
        experiment_id = experiment_id or uuid.uuid4().hex[:16]
        spec_dict = json_format.MessageToDict(spec, preserving_proto_field_name=True)
        created = await asyncio.to_thread(self.ledger.create_experiment, experiment_id,
                                          spec.project, spec_dict)
        if created:
            requested = ExperimentRequested(spec=spec, requested_by=requested_by)
            requested.requested_at.GetCurrentTime()
            await self.service.produce(topics.EXPERIMENT_REQUESTED, requested, key=experiment_id,
                                       experiment_id=experiment_id,
                                       event_id=f"{experiment_id}-requested")
        return await self.get(experiment_id)

    async def get(self, experiment_id: str) -> ExperimentRecord:
        record = await asyncio.to_thread(self.ledger.get_experiment, experiment_id)
        if record is None:
            raise ExperimentNotFound(experiment_id)
        return record

    async def list(self, project: str = "", status: str = "", limit: int = 50,
                   projects: list[str] | None = None) -> list[ExperimentRecord]:
        """Experiments with their stages, newest first; `projects`: only these (None: all)."""

        def read() -> list[ExperimentRecord]:
            records = self.ledger.list_experiments(project or None, status or None,
                                                   min(max(limit, 1), 500), projects)
            for record in records:
                record.stages = self.ledger.get_stages(record.experiment_id)
            return records

        return await asyncio.to_thread(read)

    async def cancel(self, experiment_id: str, reason: str = "",
                     requested_by: str = "api") -> ExperimentRecord:
        """Mark cancelled (unless already finished) and tell every service."""
        await self.get(experiment_id)
        if await asyncio.to_thread(self.ledger.set_status, experiment_id, "cancelled",
                                   reason or "cancelled by request"):
            await self.service.produce(
                topics.EXPERIMENT_CANCEL,
                ExperimentCancel(reason=reason, requested_by=requested_by),
                key=experiment_id, experiment_id=experiment_id)
        return await self.get(experiment_id)

    async def watch(self, experiment_id: str, after_sequence: int = 0,
                    poll_s: float = 0.3) -> AsyncIterator[EventRecord]:
        """The experiment's events as they are recorded, until it ends."""
        await self.get(experiment_id)
        cursor = after_sequence
        while True:
            events = await asyncio.to_thread(self.ledger.events_since, experiment_id, cursor)
            for event in events:
                cursor = event.sequence
                yield event
            if not events:
                record = await self.get(experiment_id)
                if record.status in TERMINAL_STATUSES:
                    # One last read: events recorded between the two queries.
                    for event in await asyncio.to_thread(self.ledger.events_since,
                                                         experiment_id, cursor):
                        yield event
                    return
                await asyncio.sleep(poll_s)
