from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from google.protobuf.message import Message
from opentelemetry import trace
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from mlmesh.events.v1.envelope_pb2 import DeadLetter, Envelope, Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentFailed, StageProgress
from mlmesh_common import __version__, breakers, observability
from mlmesh_common.artifacts import ArtifactStore, open_store
from mlmesh_common.envelope import decode, encode, new_envelope
from mlmesh_common.errors import Cancelled, PermanentError, is_transient
from mlmesh_common.lag import WorkQueueReader
from mlmesh_common.ledger import Ledger, open_ledger
from mlmesh_common.observability import (
    CONSUMER_LAG,
    DLQ_TOTAL,
    EVENTS_DUPLICATE,
    EVENTS_FAILED,
    EVENTS_IN,
    EVENTS_OUT,
    HANDLER_SECONDS,
    IN_FLIGHT,
)
from mlmesh_common.runtime._context import HandlerContext, Output
from mlmesh_common.runtime._health import HealthServer
from mlmesh_common.settings import Settings
from mlmesh_common.topics import (
    EXPERIMENT_CANCEL,
    EXPERIMENT_FAILED,
    STAGE_PROGRESS,
    Topic,
    spread_partition,
)
from mlmesh_common.topics import group as consumer_group

log = logging.getLogger("mlmesh.runtime")
Handler = Callable[[HandlerContext, Any], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    """A handler bound to one input topic within one consumer group."""

    topic: Topic
    group: str
    stage: str
    fn: Handler


class Service:
    """A mesh service: its handlers, and the runtime that delivers events to them.

    The runtime owns at-least-once delivery (commit after outputs), idempotency by event
    id, long work on paused partitions, retries with backoff, dead-lettering, breakers,
    cancellation, graceful SIGTERM, tracing, JSON logs and metrics.
    """

    def __init__(self, name: str, version: str = __version__,
                 settings: Settings | None = None) -> None:
        self.name = name
        self.version = version
        self.settings = settings or Settings()
        self.routes: list[Route] = []
        self._cancelled: set[str] = set()
        self._stopping = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._consumers: dict[str, AIOKafkaConsumer] = {}
        self._queue_readers: dict[str, WorkQueueReader] = {}
        self._ready = False
        self._health: HealthServer | None = None
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        #: Test hook: awaited after outputs are produced and before the commit.
        self.after_produce: Callable[[ConsumerRecord], Awaitable[None]] | None = None

    # -- wiring ---------------------------------------------------------------------------
    def handles(self, topic: Topic, *, group: str | None = None,
                stage: str | None = None) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine as the handler of `topic` in consumer `group`."""
        group_name = group or self.name
        if topic.name not in consumer_group(group_name).topics:
            raise ValueError(f"consumer group {group_name!r} does not read {topic.name} in the "
                             "topic registry (mlmesh_common.topics); register it there first")

        def decorate(fn: Handler) -> Handler:
            self.routes.append(Route(topic, group_name, stage or self.name, fn))
            return fn

        return decorate

    @cached_property
    def ledger(self) -> Ledger:
        return open_ledger(self.settings.resolved_ledger_url)

    @cached_property
    def store(self) -> ArtifactStore:
        return open_store(self.settings.resolved_artifact_root, self.settings.s3_endpoint_url)

    @property
    def producer_info(self) -> Producer:
        return Producer(service=self.name, version=self.version, instance=self.settings.instance)

    @property
    def ready(self) -> bool:
        return self._ready

    def _active_groups(self) -> dict[str, list[Route]]:
        wanted = self.settings.group_filter
        groups: dict[str, list[Route]] = {}
        for route in self.routes:
            if not wanted or route.group in wanted:
                groups.setdefault(route.group, []).append(route)
        return groups

    # -- lifecycle ------------------------------------------------------------------------
    def run(self) -> None:
        """Run until SIGTERM/SIGINT (the entry point of `python -m mlmesh_<service>`)."""
        observability.setup(self.name, self.version)
        asyncio.run(self.serve())

    async def serve(self) -> None:
        """Start producer, consumers and the health server; stop gracefully on a signal."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._stopping.set)
            except (NotImplementedError, RuntimeError):
                pass
        await self.start()
        try:
            await self._stopping.wait()
        finally:
            await self.stop()

    async def start(self) -> None:
        """Connect to the broker and start every consumer loop."""
        self._stopping.clear()
        breakers.configure(self.settings.breaker_fail_max, self.settings.breaker_reset_s)
        self._health = HealthServer(self, self.settings.http_host, self.settings.http_port)
        self._health.start()
        await asyncio.to_thread(lambda: self.ledger)
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap,
                                          enable_idempotence=False, acks="all", linger_ms=5,
                                          client_id=f"{self.name}-{self.settings.instance}")
        await self._producer.start()
        for hook in self.on_start:
            await hook()
        self._tasks = [asyncio.create_task(self._cancel_listener(), name="cancel-listener")]
        starts = []
        for group_name, routes in self._active_groups().items():
            consumer = AIOKafkaConsumer(
                *sorted({r.topic.name for r in routes}),
                bootstrap_servers=self.settings.kafka_bootstrap,
                group_id=consumer_group(group_name).group_id, enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=1,
                # Round robin deals partitions to members in turn, which spread_partition
                # relies on (it is aiokafka's default; named so that it stays so).
                partition_assignment_strategy=(RoundRobinPartitionAssignor,),
                session_timeout_ms=self.settings.session_timeout_ms,
                heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
                max_poll_interval_ms=self.settings.max_poll_interval_ms,
                client_id=f"{self.name}-{group_name}-{self.settings.instance}")
            self._consumers[group_name] = consumer
            starts.append(consumer.start())
        await asyncio.gather(*starts)
        for group_name, routes in self._active_groups().items():
            self._tasks.append(asyncio.create_task(
                self._consume(group_name, {r.topic.name: r for r in routes}), name=group_name))
        self._tasks.append(asyncio.create_task(self._report_lag(), name="lag"))
        self._ready = True
        log.info("service started", extra={"groups": list(self._consumers)})

    async def stop(self) -> None:
        """Finish or hand back current work, commit, leave the groups, flush the producer."""
        self._stopping.set()
        self._ready = False
        tasks = getattr(self, "_tasks", [])
        consume = [t for t in tasks if t.get_name() in self._consumers]
        if consume:
            await asyncio.wait(consume, timeout=self.settings.shutdown_grace_s + 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for consumer in self._consumers.values():
            await consumer.stop()
        self._consumers.clear()
        for reader in self._queue_readers.values():
            await reader.close()
        self._queue_readers.clear()
        for hook in self.on_stop:
            await hook()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._health is not None:
            self._health.stop()
        log.info("service stopped")

    def work_queue_reader(self, topic: Topic) -> WorkQueueReader:
        """The (kept open) lag reader of the group that consumes ``topic``."""
        group_id = consumer_group(topic.consumer_groups[0]).group_id_for(topic.name)
        if group_id not in self._queue_readers:
            self._queue_readers[group_id] = WorkQueueReader(self.settings.kafka_bootstrap,
                                                            group_id)  # fmt: skip
        return self._queue_readers[group_id]

    def request_stop(self) -> None:
        """Ask the service to stop (what SIGTERM does)."""
        self._stopping.set()

    # -- consuming ------------------------------------------------------------------------
    async def _consume(self, group_name: str, routes: dict[str, Route]) -> None:
        consumer = self._consumers[group_name]
        while not self._stopping.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=1)
            except KafkaError as exc:
                log.warning("poll failed, retrying: %s", exc)
                await asyncio.sleep(1)
                continue
            for tp, records in batch.items():
                for record in records:
                    await self._work_paused(consumer, tp, record, group_name, routes)
                    if self._stopping.is_set():
                        return

    async def _work_paused(self, consumer: AIOKafkaConsumer, tp: TopicPartition,
                           record: ConsumerRecord, group_name: str,
                           routes: dict[str, Route]) -> None:
        """Handle one record off the poll loop: pause, keep polling, resume, commit."""
        consumer.pause(*consumer.assignment())
        IN_FLIGHT.labels(group_name).inc()
        task = asyncio.create_task(self._handle(group_name, routes[record.topic], record))
        handed_back = False
        try:
            deadline = None
            while not task.done():
                await asyncio.wait({task}, timeout=1.0)
                if task.done():
                    break
                # Keep polling so the group sees us alive; a rebalance may hand us new,
                # unpaused partitions: rewind anything fetched and pause again.
                extra = await consumer.getmany(timeout_ms=0)
                for etp, erecs in extra.items():
                    consumer.seek(etp, erecs[0].offset)
                consumer.pause(*consumer.assignment())
                if self._stopping.is_set():
                    deadline = deadline or time.monotonic() + self.settings.shutdown_grace_s
                    if time.monotonic() > deadline:
                        task.cancel()
                        handed_back = True
            await asyncio.gather(task, return_exceptions=handed_back)
        finally:
            IN_FLIGHT.labels(group_name).dec()
            consumer.resume(*consumer.paused())
        if handed_back:
            log.warning("shutdown: handed back %s[%d]@%d uncommitted", tp.topic, tp.partition,
                        record.offset)
            return
        try:
            await consumer.commit({tp: record.offset + 1})
        except (CommitFailedError, KafkaError) as exc:
            # The partition moved during the work; the new owner redelivers and dedups.
            log.warning("commit of %s[%d]@%d failed: %s", tp.topic, tp.partition,
                        record.offset, exc)

    async def _handle(self, group_name: str, route: Route, record: ConsumerRecord) -> None:
        topic = route.topic
        EVENTS_IN.labels(group_name, topic.name).inc()
        try:
            env, payload = decode(record.value, topic)
        except PermanentError as exc:
            await self._dead_letter(group_name, record, exc, 1, None)
            return
        if await asyncio.to_thread(self.ledger.has_processed, group_name, env.event_id):
            EVENTS_DUPLICATE.labels(group_name, topic.name).inc()
            log.info("skipping redelivered event %s", env.event_id)
            return
        token = observability.experiment_id_var.set(env.experiment_id)
        span_ctx = observability.extract_context(record.headers)
        tracer = observability.tracer()
        try:
            with tracer.start_as_current_span(
                    f"{topic.subject} process", context=span_ctx, kind=trace.SpanKind.CONSUMER,
                    attributes={"messaging.system": "kafka", "messaging.destination.name":
                                topic.name, "messaging.consumer.group.name": group_name,
                                "mlmesh.experiment_id": env.experiment_id,
                                "mlmesh.event_id": env.event_id}) as span:
                await self._run_handler(group_name, route, record, env, payload, span)
        finally:
            observability.experiment_id_var.reset(token)

    async def _run_handler(self, group_name: str, route: Route, record: ConsumerRecord,
                           env: Envelope, payload: Message, span: trace.Span) -> None:
        topic = route.topic
        if env.experiment_id and await asyncio.to_thread(self.is_cancelled, env.experiment_id):
            log.info("experiment cancelled; dropping %s", topic.subject)
            await asyncio.to_thread(self.ledger.mark_processed, group_name, env.event_id)
            return
        ctx: HandlerContext | None = None
        attempt = 0
        started = time.perf_counter()
        try:
            async for attempt_state in AsyncRetrying(
                    stop=stop_after_attempt(self.settings.max_attempts),
                    wait=wait_exponential_jitter(initial=self.settings.retry_initial_s,
                                                 max=self.settings.retry_max_s),
                    retry=retry_if_exception(is_transient), reraise=True):
                with attempt_state:
                    attempt = attempt_state.retry_state.attempt_number
                    if attempt > 1:
                        log.warning("retrying %s (attempt %d)", topic.subject, attempt)
                    with tempfile.TemporaryDirectory(prefix=f"mlmesh-{self.name}-") as tmp:
                        ctx = HandlerContext(self, group_name, topic, env, attempt, Path(tmp),
                                             partition=record.partition)
                        await route.fn(ctx, payload)
        except Cancelled as exc:
            log.info("%s", exc)
            await self.send_progress(env, route.stage, StageProgress.STATE_FAILED, 0.0,
                                     "cancelled")
        except Exception as exc:
            span.record_exception(exc)
            EVENTS_FAILED.labels(group_name, topic.name, type(exc).__name__).inc()
            log.error("%s failed after %d attempt(s): %s", topic.subject, attempt, exc,
                      exc_info=exc)
            await self._dead_letter(group_name, record, exc, attempt, env)
            await self._fail_experiment(env, route.stage, exc, topic.dlq)
            return  # not marked processed: a replay from the DLQ must be handled again
        else:
            assert ctx is not None
            await self._produce_outputs(ctx.outputs, env, attempt)
            if self.after_produce is not None:
                await self.after_produce(record)
        finally:
            HANDLER_SECONDS.labels(group_name, topic.name).observe(time.perf_counter() - started)
        await asyncio.to_thread(self.ledger.mark_processed, group_name, env.event_id)

    # -- producing ------------------------------------------------------------------------
    async def _send(self, topic_name: str, key: str, value: bytes,
                    headers: list[tuple[str, bytes]], partition: int | None = None) -> None:
        assert self._producer is not None, "service not started"
        await self._producer.send_and_wait(topic_name, value, key=key.encode(),
                                           partition=partition,
                                           headers=observability.inject_headers(headers))

    async def _spread_partition(self, topic: Topic, experiment_id: str, spread: int) -> int:
        assert self._producer is not None, "service not started"
        partitions = sorted(await self._producer.partitions_for(topic.name))
        return partitions[spread_partition(experiment_id, spread, len(partitions))]

    async def send_raw(self, topic_name: str, key: bytes, value: bytes,
                       headers: list[tuple[str, bytes]]) -> None:
        """Produce bytes as they are (a DLQ replay): no new envelope, original headers."""
        assert self._producer is not None, "service not started"
        await self._producer.send_and_wait(topic_name, value, key=key or None,
                                           headers=headers)

    async def _produce_outputs(self, outputs: list[Output], cause: Envelope, attempt: int) -> None:
        for out in outputs:
            partition = out.partition
            if partition is None and out.spread is not None:
                partition = await self._spread_partition(out.topic, out.experiment_id,
                                                         out.spread)
            await self.produce(out.topic, out.payload, key=out.key,
                               experiment_id=out.experiment_id, event_id=out.event_id,
                               cause=cause, attempt=attempt, partition=partition)

    async def produce(self, topic: Topic, payload: Message, *, key: str, experiment_id: str,
                      event_id: str | None = None, cause: Envelope | None = None,
                      attempt: int = 1, partition: int | None = None) -> Envelope:
        """Produce one event now (handlers use ctx.emit; this is for the runtime and gateway).

        ``partition`` None: the key's partition."""
        env = new_envelope(topic, payload, experiment_id=experiment_id,
                           producer=self.producer_info, event_id=event_id, attempt=attempt,
                           correlation_id=(cause.correlation_id or cause.event_id) if cause else "",
                           causation_id=cause.event_id if cause else "")
        if not env.correlation_id:
            env.correlation_id = env.event_id
        await self._send(topic.name, key, encode(env), [("mlmesh-type", env.type.encode())],
                         partition)
        EVENTS_OUT.labels(topic.name).inc()
        return env

    async def send_progress(self, cause: Envelope, stage: str, state: int, percent: float,
                            message: str, **extra: Any) -> None:
        """Emit stage.progress for the experiment of `cause`."""
        progress = StageProgress(stage=stage, state=state, percent=percent, message=message,
                                 **extra)
        try:
            await self.produce(STAGE_PROGRESS, progress, key=cause.experiment_id,
                               experiment_id=cause.experiment_id, cause=cause)
        except KafkaError as exc:  # progress is informational; never fail work over it
            log.warning("stage.progress not sent: %s", exc)

    async def _dead_letter(self, group_name: str, record: ConsumerRecord, exc: BaseException,
                           attempt: int, env: Envelope | None) -> None:
        topic_name = f"{record.topic}.dlq"
        letter = DeadLetter(source_topic=record.topic, partition=record.partition,
                            offset=record.offset,
                            consumer_group=consumer_group(group_name).group_id,
                            error_type=type(exc).__name__, error_message=str(exc),
                            stack="".join(traceback.format_exception(exc)), attempt=attempt,
                            original_key=record.key or b"", original_value=record.value or b"",
                            experiment_id=env.experiment_id if env else "",
                            event_id=env.event_id if env else "")
        for k, v in record.headers or ():
            letter.original_headers[k] = v or b""
        letter.failed_at.GetCurrentTime()
        letter.consumer.CopyFrom(self.producer_info)
        await self._send(topic_name, (record.key or b"").decode(errors="replace"),
                         letter.SerializeToString(), [("mlmesh-type", b"mlmesh.dead_letter")])
        DLQ_TOTAL.labels(record.topic).inc()
        log.error("sent %s[%d]@%d to %s: %s", record.topic, record.partition, record.offset,
                  topic_name, exc)

    async def _fail_experiment(self, env: Envelope, stage: str, exc: BaseException,
                               dlq: str) -> None:
        if not env.experiment_id:
            return
        reason = f"{stage} failed: {exc}"
        if is_transient(exc):
            reason += (" (a dependency kept failing after retries; check that it is up, then "
                       "replay the message from the DLQ)")
        failed = ExperimentFailed(stage=stage, reason=reason, error_type=type(exc).__name__,
                                  dead_letter_topic=dlq, retryable=is_transient(exc))
        await self.produce(EXPERIMENT_FAILED, failed, key=env.experiment_id,
                           experiment_id=env.experiment_id, cause=env)

    # -- cancellation and lag -------------------------------------------------------------
    def is_cancelled(self, experiment_id: str) -> bool:
        """True when a cancel for the experiment was seen or the ledger says so."""
        if experiment_id in self._cancelled:
            return True
        if self.ledger.is_cancelled(experiment_id):
            self._cancelled.add(experiment_id)
            return True
        return False

    async def _cancel_listener(self) -> None:
        consumer = AIOKafkaConsumer(EXPERIMENT_CANCEL.name,
                                    bootstrap_servers=self.settings.kafka_bootstrap,
                                    group_id=None, auto_offset_reset="latest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            async for record in consumer:
                try:
                    env, _ = decode(record.value, EXPERIMENT_CANCEL)
                except PermanentError as exc:
                    log.warning("ignoring undecodable cancel: %s", exc)
                    continue
                self._cancelled.add(env.experiment_id)
                log.info("cancel received for %s", env.experiment_id)
        finally:
            await consumer.stop()

    async def _report_lag(self) -> None:
        while not self._stopping.is_set():
            for group_name, consumer in list(self._consumers.items()):
                try:
                    assigned = list(consumer.assignment())
                    if not assigned:
                        continue
                    ends = await consumer.end_offsets(assigned)
                    per_topic: dict[str, int] = {}
                    for tp in assigned:
                        committed = await consumer.committed(tp) or 0
                        per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(
                            0, ends[tp] - committed)
                    for topic_name, lag in per_topic.items():
                        CONSUMER_LAG.labels(group_name, topic_name).set(lag)
                except (KafkaError, AssertionError) as exc:
                    log.debug("lag not read: %s", exc)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=15)
            except TimeoutError:
                pass
