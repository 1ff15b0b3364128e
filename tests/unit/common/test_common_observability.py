from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from mlmesh_common import observability


def test_json_logs_carry_service_trace_and_experiment() -> None:
    observability.setup("unit-test", "0")
    trace.set_tracer_provider(TracerProvider())
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    token = observability.experiment_id_var.set("exp-1")
    try:
        with trace.get_tracer("t").start_as_current_span("s") as span:
            line = json.loads(observability.JsonFormatter().format(record))
            trace_id = f"{span.get_span_context().trace_id:032x}"
    finally:
        observability.experiment_id_var.reset(token)
    assert line["message"] == "hello world" and line["service"] == "unit-test"
    assert line["experiment_id"] == "exp-1" and line["trace_id"] == trace_id
    assert line["level"] == "info"


def test_trace_context_round_trips_through_kafka_headers() -> None:
    trace.set_tracer_provider(TracerProvider())
    with trace.get_tracer("t").start_as_current_span("producer") as span:
        headers = observability.inject_headers([("other", b"x")])
        trace_id = span.get_span_context().trace_id
    assert any(k == "traceparent" for k, _ in headers)
    ctx = observability.extract_context(headers)
    assert trace.get_current_span(ctx).get_span_context().trace_id == trace_id
