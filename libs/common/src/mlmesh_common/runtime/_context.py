from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.message import Message

from mlmesh.events.v1.common_pb2 import ArtifactRef
from mlmesh.events.v1.envelope_pb2 import Envelope
from mlmesh.events.v1.experiment_pb2 import StageProgress
from mlmesh_common.artifacts import StoredArtifact, experiment_prefix, sha256_file
from mlmesh_common.errors import Cancelled
from mlmesh_common.topics import Topic

if TYPE_CHECKING:
    from mlmesh_common.runtime._service import Service

T = TypeVar("T")
State = StageProgress.State


@dataclass
class Output:
    """An event a handler emits; produced by the runtime after the handler returns."""

    topic: Topic
    payload: Message
    key: str
    experiment_id: str
    event_id: str
    #: Position among an experiment's parallel work items (see HandlerContext.emit).
    spread: int | None = None
    #: A partition chosen by the handler (see HandlerContext.emit).
    partition: int | None = None


def artifact_ref(stored: StoredArtifact) -> ArtifactRef:
    """The event form of a stored artifact."""
    return ArtifactRef(uri=stored.uri, sha256=stored.sha256, size_bytes=stored.size_bytes,
                       media_type=stored.media_type)


def member_ref(folder: ArtifactRef, local_dir: Path, name: str, media_type: str = "",
               ) -> ArtifactRef:
    """The ref of file `name` inside a folder stored with save_dir from `local_dir`."""
    local = local_dir / name
    return ArtifactRef(uri=f"{folder.uri.rstrip('/')}/{name}", sha256=sha256_file(local),
                       size_bytes=local.stat().st_size, media_type=media_type)


class HandlerContext:
    """What a handler gets besides its payload: emit, progress, artifacts, cancellation."""

    def __init__(self, service: Service, group: str, topic: Topic, envelope: Envelope,
                 attempt: int, work_dir: Path, partition: int | None = None) -> None:
        self.service = service
        #: The partition the handled event was read from (None outside a consumer).
        self.partition = partition
        self.group = group
        self.topic = topic
        self.envelope = envelope
        self.attempt = attempt
        self.work_dir = work_dir
        self.outputs: list[Output] = []

    @property
    def experiment_id(self) -> str:
        return self.envelope.experiment_id

    @property
    def settings(self):
        return self.service.settings

    @property
    def ledger(self):
        return self.service.ledger

    @property
    def store(self):
        return self.service.store

    def emit(self, topic: Topic, payload: Message, *, key: str | None = None,
             event_id: str | None = None, experiment_id: str | None = None,
             spread: int | None = None, partition: int | None = None) -> None:
        """Queue an event; the runtime produces it after the handler returns, before commit.

        Its id is derived from the handled event, so a redone handler emits the same ids
        and consumers de-duplicate the redo. ``spread`` (the item's place among the
        experiment's parallel work: train's position heaviest first, tune's slot) places it
        on a partition by :func:`mlmesh_common.topics.spread_partition` instead of by key
        hash, so that an experiment's jobs or trials land on consecutive partitions and are
        shared evenly by the workers (a key hash may put two of them on one busy worker
        while another idles). A redo places an item where it went the first time.
        ``partition`` places it on that partition (see :meth:`hand_to_idle_worker`); it
        wins over ``spread``.
        """
        from mlmesh_common.envelope import derive_event_id

        experiment = experiment_id if experiment_id is not None else self.experiment_id
        key = key if key is not None else experiment
        event_id = event_id or derive_event_id(self.envelope.event_id, self.group, topic.name,
                                               key, str(len(self.outputs)))
        self.outputs.append(Output(topic, payload, key, experiment, event_id, spread, partition))

    async def work_queue(self, topic: Topic) -> tuple[dict[int, int], int]:
        """(lag per partition, number of members) of the group that consumes ``topic``:
        how much work waits for, or is being done by, each worker. Empty and 0 when the
        broker cannot say."""
        from aiokafka.errors import KafkaError

        try:
            reader = self.service.work_queue_reader(topic)
            return await reader.lags(topic.name), await reader.members()
        except (TimeoutError, KafkaError, OSError):
            return {}, 0

    async def hand_to_idle_worker(self, payload: Message, *, key: str) -> bool:
        """Give the event being handled to an idle worker of this group instead of doing it.

        True when this worker has more work of the topic waiting behind this event and
        another worker has nothing queued (:func:`mlmesh_common.topics.idle_worker_partition`):
        the event is then re-emitted to that worker's partition (counted in
        ``mlmesh_handed_over_total``) and the handler should return.
        Work queued on a partition cannot move by itself, so without this one worker can
        end a batch with several items queued while the others idle. The re-emitted event
        has an id derived from this one, so a redo does not hand it over twice.
        """
        from mlmesh_common.topics import idle_worker_partition

        if self.partition is None:
            return False
        lags, members = await self.work_queue(self.topic)
        target = idle_worker_partition(lags, members, self.partition)
        if target is None:
            return False
        from mlmesh_common.observability import HANDED_OVER

        self.emit(self.topic, payload, key=key, partition=target)
        HANDED_OVER.labels(self.group, self.topic.name).inc()
        return True

    async def progress(self, stage: str, state: int = State.STATE_RUNNING, percent: float = 0.0,
                       message: str = "", **extra: Any) -> None:
        """Send stage.progress now (not held back until the handler returns)."""
        await self.service.send_progress(self.envelope, stage, state, percent, message, **extra)

    async def elapsed_s(self) -> float | None:
        """Seconds since work on this experiment began (None when the ledger does not know)."""
        started = await self.run_blocking(self.ledger.work_started_at, self.experiment_id)
        return None if started is None else time.time() - started

    def check_cancelled(self) -> None:
        """Raise Cancelled when the experiment was cancelled; call between steps of long work."""
        if self.service.is_cancelled(self.experiment_id):
            raise Cancelled(f"experiment {self.experiment_id} was cancelled")

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run CPU- or I/O-bound work in a thread so the poll loop keeps running."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    def artifact_key(self, project: str, stage: str, name: str = "") -> str:
        """The store key for `name` inside a stage of this experiment."""
        prefix = experiment_prefix(project, self.experiment_id, stage)
        return f"{prefix}/{name}" if name else prefix

    async def save_dir(self, project: str, stage: str, folder: Path, name: str = "") -> ArtifactRef:
        """Store a folder with its manifest under this experiment's stage (write-once)."""
        stored = await self.run_blocking(self.store.put_dir, folder,
                                         self.artifact_key(project, stage, name),
                                         f"{self.service.name}/{self.service.version}")
        return artifact_ref(stored)

    async def save_file(self, project: str, stage: str, path: Path, name: str = "") -> ArtifactRef:
        """Store one file under this experiment's stage (write-once, in a content-named folder)."""
        stored = await self.run_blocking(self.store.put_file, path,
                                         self.artifact_key(project, stage, name or path.name),
                                         versioned=True)
        return artifact_ref(stored)

    async def fetch_file(self, ref: ArtifactRef, dest: Path | None = None) -> Path:
        """Download an artifact (checking its sha256) into the work dir."""
        dest = dest or self.work_dir / Path(ref.uri).name
        return await self.run_blocking(self.store.get_file, ref.uri, dest, ref.sha256)

    async def fetch_dir(self, ref: ArtifactRef, dest: Path | None = None) -> Path:
        """Download a folder artifact, checking the manifest and every file."""
        dest = dest or self.work_dir / Path(ref.uri.rstrip("/")).name
        return await self.run_blocking(self.store.get_dir, ref.uri, dest, ref.sha256)
