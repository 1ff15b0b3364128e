"""The authorized application layer: every use case of REST and gRPC with its permission
and project checks in one place. Objects of projects outside a key's scope are reported as
missing (the same error as an unknown id), never as forbidden."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_common.ledger import (
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    ExperimentRecord,
    WebhookRecord,
)
from mlmesh_common.runtime import Service
from mlmesh_gateway import artifacts
from mlmesh_gateway.auth import Principal, ProjectNotFound, note
from mlmesh_gateway.dead_letters import DeadLetterNotFound, DeadLetters
from mlmesh_gateway.experiments import ExperimentNotFound, Experiments
from mlmesh_gateway.webhooks import WebhookNotFound, Webhooks


class ExperimentIdTaken(ValueError):
    """A client-chosen experiment id already belongs to another project."""


class Access:
    """Use cases on behalf of a verified principal."""

    def __init__(self, experiments: Experiments, dead_letters: DeadLetters,
                 webhooks: Webhooks | None) -> None:
        self.experiments = experiments
        self.dead_letters = dead_letters
        self.webhooks = webhooks

    @property
    def service(self) -> Service:
        return self.experiments.service

    def _project(self, who: Principal, project: str) -> str:
        if not who.sees(project):
            raise ProjectNotFound(project)
        return project

    # -- experiments ------------------------------------------------------------------------
    async def submit(self, who: Principal, spec: ExperimentSpec, experiment_id: str = "",
                     requested_by: str = "api") -> ExperimentRecord:
        project = spec.project or "default"
        note(action="experiments.submit", project=project, target=experiment_id)
        self._project(who, project)
        who.require("experiments.submit")
        if experiment_id:
            existing = await asyncio.to_thread(self.experiments.ledger.get_experiment,
                                               experiment_id)
            if existing is not None and existing.project != project:
                raise ExperimentIdTaken(f"experiment id {experiment_id!r} is taken; choose "
                                        "another or omit it")
        record = await self.experiments.submit(spec, experiment_id, requested_by=requested_by)
        note(target=record.experiment_id)
        return record

    async def get(self, who: Principal, experiment_id: str) -> ExperimentRecord:
        record = await self.experiments.get(experiment_id)
        if not who.sees(record.project):
            raise ExperimentNotFound(experiment_id)
        who.require("experiments.read")
        return record

    async def list(self, who: Principal, project: str = "", status: str = "",
                   limit: int = 50) -> list[ExperimentRecord]:
        who.require("experiments.read")
        if project:
            self._project(who, project)
        return await self.experiments.list(project, status, limit, projects=who.scope())

    async def cancel(self, who: Principal, experiment_id: str, reason: str = "",
                     requested_by: str = "api") -> ExperimentRecord:
        note(action="experiments.cancel", target=experiment_id)
        record = await self.experiments.get(experiment_id)
        if not who.sees(record.project):
            raise ExperimentNotFound(experiment_id)
        note(project=record.project)
        who.require("experiments.cancel")
        return await self.experiments.cancel(experiment_id, reason, requested_by=requested_by)

    async def watch(self, who: Principal, experiment_id: str,
                    after_sequence: int = 0) -> AsyncIterator[EventRecord]:
        await self.get(who, experiment_id)
        return self.experiments.watch(experiment_id, after_sequence)

    # -- artifacts --------------------------------------------------------------------------
    async def artifact_list(self, who: Principal, experiment_id: str) -> list[dict]:
        record = await self.get(who, experiment_id)
        who.require("artifacts.read")
        return await asyncio.to_thread(artifacts.list_files, self.service.store, record.project,
                                       experiment_id)

    async def artifact(self, who: Principal, experiment_id: str,
                       path: str) -> artifacts.ArtifactFile:
        record = await self.get(who, experiment_id)
        who.require("artifacts.read")
        return await asyncio.to_thread(artifacts.fetch, self.service.store, record.project,
                                       experiment_id, path)

    # -- dead letters -----------------------------------------------------------------------
    async def _letter_visible(self, who: Principal, letter: str) -> DeadLetterRecord:
        record = await self.dead_letters.get(letter)
        if who.all_projects:
            return record
        experiment = (await asyncio.to_thread(self.experiments.ledger.get_experiment,
                                              record.experiment_id)
                      if record.experiment_id else None)
        if experiment is None or not who.sees(experiment.project):
            raise DeadLetterNotFound(letter)
        note(project=experiment.project)
        return record

    async def letters(self, who: Principal, source_topic: str = "", experiment_id: str = "",
                      status: str = "open", limit: int = 100) -> list[DeadLetterRecord]:
        who.require("dlq.read")
        return await self.dead_letters.list(source_topic, experiment_id, status, limit,
                                            projects=who.scope())

    async def open_letter_counts(self, who: Principal) -> dict[str, int]:
        who.require("dlq.read")
        return await asyncio.to_thread(self.dead_letters.ledger.count_dead_letters,
                                       who.scope())

    async def letter(self, who: Principal, letter: str) -> DeadLetterRecord:
        who.require("dlq.read")
        return await self._letter_visible(who, letter)

    async def replay(self, who: Principal, letter: str) -> DeadLetterRecord:
        note(action="dlq.replay", target=letter)
        await self._letter_visible(who, letter)
        who.require("dlq.write")
        return await self.dead_letters.replay(letter)

    async def purge(self, who: Principal, letter: str) -> DeadLetterRecord:
        note(action="dlq.purge", target=letter)
        await self._letter_visible(who, letter)
        who.require("dlq.write")
        return await self.dead_letters.purge(letter)

    # -- webhooks ---------------------------------------------------------------------------
    def _hooks(self) -> Webhooks:
        if self.webhooks is None:
            raise WebhookNotFound("webhooks are not enabled on this gateway")
        return self.webhooks

    async def _hook_visible(self, who: Principal, webhook_id: str) -> WebhookRecord:
        record = await asyncio.to_thread(self._hooks().ledger.get_webhook, webhook_id)
        if record is None or not who.sees(record.project):
            raise WebhookNotFound(webhook_id)
        note(project=record.project)
        return record

    async def create_webhook(self, who: Principal, project: str, url: str,
                             event_types: list[str], secret: str = "") -> WebhookRecord:
        note(action="webhooks.create", project=project)
        self._project(who, project)
        who.require("webhooks.write")
        record = await self._hooks().create(project, url, event_types, secret)
        note(target=record.id)
        return record

    async def list_webhooks(self, who: Principal, project: str) -> list[WebhookRecord]:
        self._project(who, project)
        who.require("webhooks.read")
        return await self._hooks().list(project)

    async def remove_webhook(self, who: Principal, webhook_id: str) -> None:
        note(action="webhooks.delete", target=webhook_id)
        await self._hook_visible(who, webhook_id)
        who.require("webhooks.write")
        await self._hooks().remove(webhook_id)

    async def deliveries(self, who: Principal, webhook_id: str,
                         limit: int = 100) -> list[DeliveryRecord]:
        await self._hook_visible(who, webhook_id)
        who.require("webhooks.read")
        return await self._hooks().deliveries(webhook_id, limit)
