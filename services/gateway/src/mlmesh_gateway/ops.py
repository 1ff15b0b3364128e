"""The ops view: service health and breakers, consumer lag per group and topic, DLQ counts,
throughput, and drift status of published models."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mlmesh_common import topics
from mlmesh_common.runtime import Service
from mlmesh_gateway.auth import Principal

log = logging.getLogger("mlmesh.gateway.ops")
MESH_STATE_FILE = "mesh.json"
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


@dataclass
class Target:
    """A service instance whose /healthz and /metrics the ops view reads."""

    name: str
    url: str


def targets(home: Path, extra: str = "") -> list[Target]:
    """Service instances: from the embedded supervisor's state file and MLMESH_OPS_TARGETS
    ('name=http://host:port,...'); the gateway itself is read in-process."""
    found: dict[str, str] = {}
    path = home / MESH_STATE_FILE
    if path.exists():
        try:
            state = json.loads(path.read_text())
            for name, proc in state.get("processes", {}).items():
                if name == "mlflow" or name.startswith("gateway") or not proc.get("port"):
                    continue
                found[name] = f"http://127.0.0.1:{proc['port']}"
        except (ValueError, OSError) as exc:
            log.warning("cannot read %s: %s", path, exc)
    for part in filter(None, (p.strip() for p in extra.split(","))):
        name, _, url = part.partition("=")
        if name and url.startswith(("http://", "https://")):
            found[name] = url.rstrip("/")
    return [Target(n, u) for n, u in sorted(found.items())]


def summarize_metrics(text: str) -> dict[str, Any]:
    """Totals from a Prometheus exposition: events in/out/failed, DLQ, in flight, breakers."""
    out: dict[str, Any] = {"events_in": 0.0, "events_out": 0.0, "events_failed": 0.0,
                           "dlq": 0.0, "in_flight": 0.0, "breakers": {}}
    names = {"mlmesh_events_in_total": "events_in", "mlmesh_events_out_total": "events_out",
             "mlmesh_events_failed_total": "events_failed", "mlmesh_dlq_total": "dlq",
             "mlmesh_in_flight": "in_flight"}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                out[names[sample.name]] += sample.value
            elif sample.name == "mlmesh_breaker_state":
                out["breakers"][sample.labels.get("breaker", "")] = BREAKER_STATES.get(
                    int(sample.value), str(sample.value))
    return out


class Ops:
    """Collects the ops view; remembers the previous sample to compute throughput."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._previous: dict[str, tuple[float, float, float]] = {}
        self._consumers: dict[str, AIOKafkaConsumer] = {}
        self._lock = asyncio.Lock()

    def _rate(self, name: str, summary: dict[str, Any]) -> None:
        now = time.monotonic()
        before = self._previous.get(name)
        self._previous[name] = (now, summary["events_in"], summary["events_out"])
        if before is None or now - before[0] <= 0:
            summary["in_per_s"] = summary["out_per_s"] = None
            return
        dt = now - before[0]
        summary["in_per_s"] = max(0.0, (summary["events_in"] - before[1]) / dt)
        summary["out_per_s"] = max(0.0, (summary["events_out"] - before[2]) / dt)

    async def _probe(self, client: httpx.AsyncClient, target: Target) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": target.name, "url": target.url}
        try:
            health = await client.get(f"{target.url}/healthz")
            body = health.json()
            entry.update(status="up", ready=bool(body.get("ready")),
                         version=body.get("version", ""), breakers=body.get("breakers", {}))
            metrics = await client.get(f"{target.url}/metrics")
            summary = summarize_metrics(metrics.text)
            self._rate(target.name, summary)
            entry["metrics"] = summary
            entry["breakers"] = {**summary["breakers"], **entry["breakers"]}
        except (httpx.HTTPError, ValueError) as exc:
            entry.update(status="down", ready=False, error=type(exc).__name__, breakers={})
        return entry

    async def services(self) -> list[dict[str, Any]]:
        """Health, breakers and throughput of every known service instance."""
        settings = self.service.settings
        found = targets(settings.resolved_home, os.environ.get("MLMESH_OPS_TARGETS", ""))
        async with httpx.AsyncClient(timeout=2.0) as client:
            entries = list(await asyncio.gather(*(self._probe(client, t) for t in found)))
        own = summarize_metrics(generate_latest(REGISTRY).decode())
        self._rate("gateway", own)
        from mlmesh_common import breakers

        entries.insert(0, {"name": "gateway", "url": "", "status": "up",
                           "ready": self.service.ready, "version": self.service.version,
                           "breakers": {**own["breakers"], **breakers.states()},
                           "metrics": own})
        return entries

    async def _consumer(self, group_id: str) -> AIOKafkaConsumer:
        consumer = self._consumers.get(group_id)
        if consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.service.settings.kafka_bootstrap,
                                        group_id=group_id, enable_auto_commit=False,
                                        client_id=f"gateway-ops-{group_id}")
            await consumer.start()
            self._consumers[group_id] = consumer
        return consumer

    async def lag(self) -> list[dict[str, Any]]:
        """Consumer lag per group and topic: end offsets minus committed offsets.

        Read with committed() and end_offsets() of a consumer in each group (that never
        subscribes, so it never joins the group): admin list_consumer_group_offsets does not
        work on every broker (Tansu)."""
        rows: list[dict[str, Any]] = []
        async with self._lock:
            for group in topics.CONSUMER_GROUPS:
                for group_id, names in group.topics_by_group_id().items():
                    rows += await self._group_lag(group, group_id, names)
        return rows

    async def _group_lag(self, group: topics.ConsumerGroup, group_id: str,
                         topic_names: tuple[str, ...]) -> list[dict[str, Any]]:
        """Lag rows, one per topic, of ``group`` on the topics it commits under ``group_id``."""
        try:
            consumer = await self._consumer(group_id)
            await consumer.topics()  # refresh metadata
            parts = [TopicPartition(t, p) for t in topic_names
                     for p in sorted(consumer.partitions_for_topic(t) or ())]
            ends = await consumer.end_offsets(parts) if parts else {}
            per_topic: dict[str, list[int]] = {}
            for tp in parts:
                committed = await consumer.committed(tp)
                end = ends.get(tp, 0)
                lag = end - committed if committed is not None else end
                acc = per_topic.setdefault(tp.topic, [0, 0])
                acc[0] += max(0, lag)
                acc[1] += end
            return [{"group": group.name, "group_id": group_id, "service": group.service,
                     "topic": topic_name, "lag": lag, "end_offset": end}
                    for topic_name, (lag, end) in sorted(per_topic.items())]
        except (KafkaError, OSError, AssertionError) as exc:
            return [{"group": group.name, "group_id": group_id, "service": group.service,
                     "topic": "", "lag": None, "error": f"{type(exc).__name__}: {exc}"}]

    def drift(self, who: Principal) -> list[dict[str, Any]]:
        """Published models in the caller's projects with their latest drift verdict."""
        ledger = self.service.ledger
        latest: dict[str, dict[str, Any]] = {}
        for event in ledger.events_of_type("mlmesh.drift.detected", 500):
            latest.setdefault(event.experiment_id, {"at": event.produced_at, **event.payload})
        models = []
        for record in ledger.list_experiments(None, None, 200, projects=who.scope()):
            result = record.result
            if not result.get("registered_model"):
                continue
            drift = latest.get(record.experiment_id)
            models.append({
                "experiment_id": record.experiment_id, "project": record.project,
                "model": result.get("registered_model"),
                "version": str(result.get("model_version", "")),
                "alias": result.get("registry_alias", ""),
                "status": ("drifting" if drift and (drift.get("dataset_drift")
                                                     or drift.get("prediction_drift")
                                                     or drift.get("performance_decay"))
                           else "stable" if drift else "no window yet"),
                "share_drifted": drift.get("share_drifted") if drift else None,
                "drifted_columns": drift.get("drifted_columns", []) if drift else [],
                "kinds": drift.get("kinds", []) if drift else [],
                "checked_at": drift.get("at") if drift else None})
        return models

    async def view(self, who: Principal) -> dict[str, Any]:
        """Everything the ops page shows, scoped to the caller where it is project data."""
        who.require("ops.read")
        services, lag = await asyncio.gather(self.services(), self.lag())
        ledger = self.service.ledger
        dlq = await asyncio.to_thread(ledger.count_dead_letters, who.scope())
        drift = await asyncio.to_thread(self.drift, who)
        return {"at": time.time(), "services": services, "consumer_lag": lag,
                "dlq_open_by_topic": dlq, "drift": drift,
                "mlflow_url": mlflow_url(self.service)}

    async def stop(self) -> None:
        for consumer in self._consumers.values():
            await consumer.stop()
        self._consumers.clear()


def mlflow_url(service: Service) -> str:
    """The MLflow server's URL for links ('' when tracking is not over HTTP)."""
    uri = service.settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri if uri.startswith(("http://", "https://")) else ""
