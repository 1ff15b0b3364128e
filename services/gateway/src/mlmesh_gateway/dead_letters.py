"""DLQ operations: record every `<topic>.dlq` message in the ledger; list, inspect, replay
and purge them (one application layer for REST, gRPC and the CLI)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from google.protobuf.message import DecodeError

from mlmesh.events.v1.envelope_pb2 import DeadLetter
from mlmesh_common import topics
from mlmesh_common.envelope import decode, timestamp_seconds, to_dict
from mlmesh_common.errors import PermanentError
from mlmesh_common.ledger import DeadLetterRecord, Ledger
from mlmesh_common.runtime import Service

log = logging.getLogger("mlmesh.gateway.dlq")
DLQ_GROUP_ID = "mlmesh.gateway-dlq"
STATUSES = ("open", "replayed", "purged")


class DeadLetterNotFound(KeyError):
    """No dead letter has that id."""


class DeadLetterConflict(ValueError):
    """The dead letter is not open (already replayed or purged)."""


def letter_id(dlq_topic: str, partition: int, offset: int) -> str:
    """A dead letter's id: where it sits in its DLQ topic."""
    return f"{dlq_topic}:{partition}:{offset}"


def to_record(dlq_topic: str, partition: int, offset: int, raw: bytes) -> DeadLetterRecord:
    """A DLQ message as a ledger record; undecodable bytes are kept as such."""
    letter = DeadLetter()
    try:
        letter.ParseFromString(raw or b"")
    except DecodeError:
        letter = DeadLetter(error_type="UndecodableDeadLetter",
                            error_message="the DLQ message is not a DeadLetter",
                            original_value=raw or b"")
    return DeadLetterRecord(
        id=letter_id(dlq_topic, partition, offset), dlq_topic=dlq_topic,
        source_topic=letter.source_topic or dlq_topic.removesuffix(".dlq"),
        experiment_id=letter.experiment_id, event_id=letter.event_id,
        consumer_group=letter.consumer_group, error_type=letter.error_type,
        error_message=letter.error_message, stack=letter.stack, attempt=letter.attempt,
        failed_at=timestamp_seconds(letter.failed_at) or time.time(),
        original_key=letter.original_key, original_value=letter.original_value,
        original_headers={k: v.decode(errors="replace")
                          for k, v in letter.original_headers.items()},
        status="open", updated_at=time.time())


def describe(record: DeadLetterRecord, with_payload: bool = False) -> dict[str, Any]:
    """A dead letter for the API; with the decoded original envelope when asked and possible."""
    out = {k: getattr(record, k) for k in (
        "id", "dlq_topic", "source_topic", "experiment_id", "event_id", "consumer_group",
        "error_type", "error_message", "attempt", "failed_at", "status", "updated_at")}
    if with_payload:
        out["stack"] = record.stack
        out["original_size"] = len(record.original_value)
        try:
            env, payload = decode(record.original_value,
                                  topics.topic_by_name(record.source_topic))
            out["envelope"] = {**to_dict(env), "payload": to_dict(payload)}
        except (PermanentError, KeyError) as exc:
            out["envelope"] = None
            out["decode_error"] = str(exc)
    return out


class DeadLetters:
    """List, inspect, replay and purge dead letters."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def ledger(self) -> Ledger:
        return self.service.ledger

    async def list(self, source_topic: str = "", experiment_id: str = "", status: str = "open",
                   limit: int = 100, projects: list[str] | None = None,
                   ) -> list[DeadLetterRecord]:
        """Dead letters, newest first; `projects`: only those of these projects' experiments."""
        if status and status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        return await asyncio.to_thread(self.ledger.list_dead_letters, source_topic=source_topic,
                                       experiment_id=experiment_id, status=status,
                                       limit=min(max(limit, 1), 1000), projects=projects)

    async def get(self, letter: str) -> DeadLetterRecord:
        record = await asyncio.to_thread(self.ledger.get_dead_letter, letter)
        if record is None:
            raise DeadLetterNotFound(letter)
        return record

    async def replay(self, letter: str) -> DeadLetterRecord:
        """Send the original bytes back to their topic; the experiment runs again."""
        record = await self.get(letter)
        if record.status != "open":
            raise DeadLetterConflict(f"dead letter {letter} is {record.status}; only open ones "
                                     "can be replayed")
        if not await asyncio.to_thread(self.ledger.set_dead_letter_status, letter, "replayed"):
            raise DeadLetterConflict(f"dead letter {letter} was handled concurrently")
        if record.experiment_id:
            await asyncio.to_thread(self.ledger.reopen, record.experiment_id)
        await self.service.send_raw(record.source_topic, record.original_key,
                                    record.original_value,
                                    [(k, v.encode()) for k, v in
                                     record.original_headers.items()])
        log.info("replayed %s to %s", letter, record.source_topic)
        return await self.get(letter)

    async def purge(self, letter: str) -> DeadLetterRecord:
        """Mark a dead letter as dealt with; it no longer shows as open."""
        record = await self.get(letter)
        if not await asyncio.to_thread(self.ledger.set_dead_letter_status, letter, "purged"):
            raise DeadLetterConflict(f"dead letter {letter} is {record.status}; only open ones "
                                     "can be purged")
        return await self.get(letter)


class DeadLetterRecorder:
    """Consumes every `<topic>.dlq` into the ledger (group mlmesh.gateway-dlq)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            *sorted(t.dlq for t in topics.TOPICS),
            bootstrap_servers=self.service.settings.kafka_bootstrap, group_id=DLQ_GROUP_ID,
            enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        self._task = asyncio.create_task(self._run(consumer), name="dlq-recorder")

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            async for message in consumer:
                record = to_record(message.topic, message.partition, message.offset,
                                   message.value)
                await asyncio.to_thread(self.service.ledger.record_dead_letter, record)
                await consumer.commit()
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
