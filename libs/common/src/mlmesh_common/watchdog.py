"""The ledger's watchdog: re-drives experiments that stopped moving.

The embedded broker (Tansu) keeps its log in memory: when it restarts, every event in
flight is gone and nothing would ever wake the stage that was waiting for it. The ledger
still has the experiment's event log, so the watchdog finds running experiments with no
event for `watchdog_idle_s`, checks that no work for their next stage is queued or in
progress (the stage's consumer groups have no lag: a long queue is not a lost event) and that
the ledger's projection is not behind (the gateway group has no lag: a stale view is not a
stuck experiment), and
re-produces the event that stage consumes, rebuilt from the log.

Ids: a re-driven stage input gets an id derived from the original (`derive_event_id(id,
"watchdog", n)`), so the stage handles it as new work and every id it emits is derived from
it in turn; downstream de-duplicates by those ids, the git commit and the registry version
are idempotent per experiment, and fan-in results are idempotent per item. When every stage
is done but the completion was lost, the last event is re-delivered to the ledger's
projection only (its processed mark is forgotten, the id is kept), so webhooks and the
monitor, which already saw it, do not see it twice.

Run it as its own process: `python -m mlmesh_common.watchdog` (the runner starts one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from mlmesh_common import topics
from mlmesh_common.envelope import derive_event_id
from mlmesh_common.lag import group_lag
from mlmesh_common.ledger import EventRecord, Ledger, StageRecord
from mlmesh_common.topics import Topic

log = logging.getLogger("mlmesh.watchdog")

#: The pipeline in order: each stage, the topic of the event it consumes, and the service
#: whose consumer groups do its work.
PIPELINE: tuple[tuple[str, Topic, str], ...] = (
    ("acquire", topics.EXPERIMENT_REQUESTED, "acquire"),
    ("profile", topics.DATASET_ACQUIRED, "profile"),
    ("prep", topics.DATASET_PROFILED, "prep"),
    ("train", topics.DATASET_PREPARED, "train-gpu"),
    ("tune", topics.TRAINING_COMPLETED, "tune"),
    ("select", topics.TUNING_COMPLETED, "select"),
    ("docs", topics.MODEL_SELECTED, "docs"),
    ("git", topics.DOCS_GENERATED, "git"),
    ("publish", topics.EXPERIMENT_COMMITTED, "publish"),
)
#: The ledger's projection, which emits experiment.completed once every stage is done.
PROJECTION_GROUP = "gateway"
DONE = frozenset({"finished", "skipped"})


@dataclass(frozen=True)
class Redrive:
    """One event to re-produce for a stuck experiment."""

    experiment_id: str
    #: The stage that should run next ("" when only the completion is missing).
    stage: str
    topic: Topic
    #: Consumer groups whose lag must be zero to re-drive: the stage's (nothing queued or in
    #: progress) and the projection's (the ledger's view of the experiment is up to date).
    groups: tuple[str, ...]
    #: The ledger event re-produced, and the id it is re-produced with.
    source_event_id: str
    event_id: str
    payload: dict[str, Any]
    #: A group whose processed mark of `source_event_id` is dropped first ("" for none).
    forget_group: str = ""


def requested_event_id(experiment_id: str) -> str:
    """The id the gateway gives an experiment's experiment.requested."""
    return f"{experiment_id}-requested"


def plan_redrive(experiment_id: str, stages: Sequence[StageRecord],
                 latest: Callable[[str], EventRecord | None], redrive_number: int,
                 spec: dict[str, Any] | None = None) -> Redrive | None:
    """What to re-produce for an experiment that stopped moving, or None when nothing can.

    `latest(event_type)` is the experiment's newest logged event of a type; the next stage
    is the first one of the pipeline that is not finished or skipped. When the request itself
    never reached the log (the broker lost it before the projection read it), it is rebuilt
    from the `spec` the gateway recorded at submission.
    """
    status = {s.name: s.status for s in stages}
    for stage, topic, service in PIPELINE:
        if status.get(stage) in DONE:
            continue
        source = latest(topic.event_type)
        groups = (*(g.name for g in topics.groups_of(service)), PROJECTION_GROUP)
        if source is None and topic is topics.EXPERIMENT_REQUESTED and spec:
            source_id = requested_event_id(experiment_id)
            return Redrive(experiment_id, stage, topic, groups, source_id,
                           derive_event_id(source_id, "watchdog", str(redrive_number)),
                           {"spec": spec, "requested_by": "watchdog"})
        if source is None:
            return None
        return Redrive(experiment_id, stage, topic, groups, source.event_id,
                       derive_event_id(source.event_id, "watchdog", str(redrive_number)),
                       source.payload)
    last = latest(topics.MODEL_PUBLISHED.event_type)
    if last is None:
        return None
    return Redrive(experiment_id, "", topics.MODEL_PUBLISHED, (PROJECTION_GROUP,),
                   last.event_id, last.event_id, last.payload, forget_group=PROJECTION_GROUP)


def rebuild(topic: Topic, payload: dict[str, Any]) -> Message:
    """The topic's payload message from its logged dict form."""
    return json_format.ParseDict(payload, topic.payload(), ignore_unknown_fields=True)


Send = Callable[[Topic, Message, str, str], Awaitable[None]]
LagReader = Callable[[Sequence[str]], Awaitable[dict[str, int]]]


class Watchdog:
    """Sweeps the ledger for stuck experiments and re-drives them through `send`.

    `send(topic, payload, experiment_id, event_id)` produces one event keyed by the
    experiment; `read_lag(group_names)` answers each group's lag (a group left out of the
    answer counts as busy, so an unreadable broker never triggers a re-drive).
    """

    def __init__(self, ledger: Ledger, send: Send, read_lag: LagReader, *,
                 idle_s: float = 600.0, max_redrives: int = 5) -> None:
        self.ledger = ledger
        self.send = send
        self.read_lag = read_lag
        self.idle_s = idle_s
        self.max_redrives = max_redrives

    @staticmethod
    def _scope(experiment_id: str) -> str:
        return f"watchdog:{experiment_id}"

    async def sweep(self, now: float | None = None) -> list[Redrive]:
        """One pass: re-drive every experiment idle for `idle_s`; returns what was sent."""
        now = time.time() if now is None else now
        idle = await asyncio.to_thread(self.ledger.idle_experiments, now - self.idle_s)
        sent: list[Redrive] = []
        for experiment_id in idle:
            redrive = await self._consider(experiment_id, now)
            if redrive is not None:
                sent.append(redrive)
        return sent

    async def _consider(self, experiment_id: str, now: float) -> Redrive | None:
        ledger = self.ledger
        state = await asyncio.to_thread(ledger.state_get, self._scope(experiment_id)) or {
            "redrives": 0, "last_at": 0.0}
        if now - state["last_at"] < self.idle_s:
            return None
        if state["redrives"] >= self.max_redrives:
            if not state.get("gave_up"):
                log.error("experiment %s is still stuck after %d re-drives; leaving it to an "
                          "operator (cancel it or resubmit)", experiment_id, state["redrives"])
                state["gave_up"] = True
                await asyncio.to_thread(ledger.state_put, self._scope(experiment_id), state)
            return None
        record = await asyncio.to_thread(ledger.get_experiment, experiment_id)
        if record is None:
            return None
        redrive = await asyncio.to_thread(
            plan_redrive, experiment_id, record.stages,
            lambda event_type: ledger.latest_event(experiment_id, event_type),
            state["redrives"] + 1, record.spec)
        if redrive is None:
            return None
        lags = await self.read_lag(redrive.groups)
        busy = [g for g in redrive.groups if lags.get(g, 1) > 0]
        if busy:
            log.info("experiment %s is idle but %s has work queued or in progress; waiting",
                     experiment_id, ", ".join(busy))
            return None
        if redrive.forget_group:
            await asyncio.to_thread(ledger.forget_processed, redrive.forget_group,
                                    redrive.source_event_id)
        await self.send(redrive.topic, rebuild(redrive.topic, redrive.payload), experiment_id,
                        redrive.event_id)
        state.update(redrives=state["redrives"] + 1, last_at=now, stage=redrive.stage)
        await asyncio.to_thread(ledger.state_put, self._scope(experiment_id), state)
        log.warning("re-drove experiment %s: %s again as %s (stage %s, re-drive #%d)",
                    experiment_id, redrive.topic.name, redrive.event_id,
                    redrive.stage or "completion", state["redrives"])
        return redrive


def main() -> None:
    """Run the watchdog as a small service (health, metrics and a producer, no consumers)."""
    from mlmesh_common.runtime import Service

    service = Service("watchdog")
    settings = service.settings

    async def send(topic: Topic, payload: Message, experiment_id: str, event_id: str) -> None:
        await service.produce(topic, payload, key=experiment_id, experiment_id=experiment_id,
                              event_id=event_id)

    async def read_lag(names: Sequence[str]) -> dict[str, int]:
        return await group_lag(settings.kafka_bootstrap, [topics.group(n) for n in names])

    async def loop() -> None:
        watchdog = Watchdog(service.ledger, send, read_lag, idle_s=settings.watchdog_idle_s,
                            max_redrives=settings.watchdog_max_redrives)
        while True:
            try:
                await watchdog.sweep()
            except Exception:  # keep sweeping; the next pass may succeed
                log.exception("watchdog sweep failed")
            await asyncio.sleep(settings.watchdog_interval_s)

    async def start_loop() -> None:
        service._watchdog_task = asyncio.create_task(loop(), name="watchdog")  # type: ignore[attr-defined]

    async def stop_loop() -> None:
        task = getattr(service, "_watchdog_task", None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    service.on_start.append(start_loop)
    service.on_stop.insert(0, stop_loop)
    service.run()


if __name__ == "__main__":
    main()
