"""JSON logs, OpenTelemetry tracing over Kafka headers, and Prometheus metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Sequence

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import Counter, Gauge, Histogram

experiment_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("experiment_id",
                                                                        default="")
_service_name = "mlmesh"

EVENTS_IN = Counter("mlmesh_events_in_total", "events received", ["group", "topic"])
EVENTS_OUT = Counter("mlmesh_events_out_total", "events produced", ["topic"])
EVENTS_FAILED = Counter("mlmesh_events_failed_total", "handler failures", ["group", "topic",
                                                                          "error_type"])
EVENTS_DUPLICATE = Counter("mlmesh_events_duplicate_total", "redelivered events skipped",
                           ["group", "topic"])
HANDED_OVER = Counter("mlmesh_handed_over_total",
                      "events handed to an idle worker instead of being handled",
                      ["group", "topic"])
DLQ_TOTAL = Counter("mlmesh_dlq_total", "messages sent to a dead-letter queue", ["topic"])
HANDLER_SECONDS = Histogram("mlmesh_handler_seconds", "handler latency", ["group", "topic"],
                            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900))
CONSUMER_LAG = Gauge("mlmesh_consumer_lag", "messages not yet committed", ["group", "topic"])
IN_FLIGHT = Gauge("mlmesh_in_flight", "messages being handled", ["group"])


class JsonFormatter(logging.Formatter):
    """One JSON object per line with service, trace_id and experiment_id."""

    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": _service_name,
            "logger": record.name,
            "message": record.getMessage(),
            "experiment_id": getattr(record, "experiment_id", "") or experiment_id_var.get(),
            "trace_id": f"{span.trace_id:032x}" if span.is_valid else "",
            "span_id": f"{span.span_id:016x}" if span.is_valid else "",
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(service: str, version: str, level: str | None = None) -> None:
    """Configure JSON logging and the tracer provider for this process."""
    global _service_name
    _service_name = service
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("MLMESH_LOG_LEVEL", "INFO"))
    for noisy in ("aiokafka", "kafka", "urllib3", "httpx", "git", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    provider = TracerProvider(resource=Resource.create({"service.name": f"mlmesh-{service}",
                                                        "service.version": version}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        except ImportError:
            logging.getLogger(__name__).warning(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http "
                "is not installed; spans are not exported")
    trace.set_tracer_provider(provider)


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode() for k, v in carrier or () if k == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier or ()]


class _HeaderSetter(Setter[list[tuple[str, bytes]]]):
    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode()))


def extract_context(headers: Sequence[tuple[str, bytes]] | None):
    """The W3C trace context carried in Kafka headers (traceparent)."""
    return propagate.extract(headers or (), getter=_HeaderGetter())


def inject_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Add the current trace context to Kafka headers."""
    propagate.inject(headers, setter=_HeaderSetter())
    return headers


def tracer():
    return trace.get_tracer("mlmesh")
