"""The dashboard in headless Chromium against an in-process gateway on a real broker: sign in
with a key, submit an experiment that appears and advances with hand-produced progress,
replay a dead letter from the UI (the replayed event moves the experiment on), and the ops
page. Screenshots are kept under .artifacts/screenshots."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetProfiled
from mlmesh.events.v1.envelope_pb2 import DeadLetter, Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec, StageProgress
from mlmesh_common import topics
from mlmesh_common.envelope import encode, new_envelope

from .conftest import SCREENSHOTS, LiveGateway

pytestmark = [pytest.mark.service, pytest.mark.timeout(120)]
PRODUCER = Producer(service="test")


async def _send(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def _until(check, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


async def test_dashboard_follows_an_experiment_and_replays_a_dead_letter(
        live_gateway: LiveGateway, browser_page, tmp_path: Path) -> None:
    page, gw = browser_page, live_gateway
    bootstrap = gw.service.settings.kafka_bootstrap
    ledger = gw.service.ledger
    project = f"dash{uuid.uuid4().hex[:6]}"
    csv = tmp_path / "tiny.csv"
    csv.write_text("a,b,y\n1,2,0\n3,4,1\n")

    # Sign in: the key is asked once and kept in sessionStorage.
    await page.goto(f"{gw.url}/")
    await page.fill("#api-key", gw.admin_key)
    await page.click("#login-form button")
    await page.wait_for_selector("#experiments")
    assert await page.evaluate("sessionStorage.getItem('mlmesh.apiKey')") == gw.admin_key

    # Submit through the form; the page moves to the experiment, which the projection starts.
    await page.fill("#submit-form input[name=dataset_uri]", csv.as_uri())
    await page.fill("#submit-form input[name=project]", project)
    await page.click("#submit-form button")
    await page.wait_for_selector("#stages")
    experiment = page.url.rsplit("/", 1)[-1]
    await _until(lambda: ledger.get_experiment(experiment).status == "running")
    await page.wait_for_selector("#summary .status-running", timeout=15_000)

    # Hand-produced progress: acquire runs, then finishes; the page follows live (SSE).
    progress = new_envelope(topics.STAGE_PROGRESS,
                            StageProgress(stage="acquire", state=StageProgress.STATE_RUNNING,
                                          percent=40, message="downloading"),
                            experiment_id=experiment, producer=PRODUCER)
    await _send(bootstrap, topics.STAGE_PROGRESS.name, experiment, encode(progress))
    await page.wait_for_selector("tr[data-stage=acquire] .status-running", timeout=20_000)
    await page.wait_for_selector("#event-log .event >> text=downloading", timeout=20_000)
    assert "40%" in await page.inner_text("tr[data-stage=acquire] .pct")
    await page.screenshot(path=str(SCREENSHOTS / "experiment-progress.png"), full_page=True)
    acquired = new_envelope(topics.DATASET_ACQUIRED,
                            DatasetAcquired(spec=ExperimentSpec(project=project), n_rows=2,
                                            n_columns=3),
                            experiment_id=experiment, producer=PRODUCER)
    await _send(bootstrap, topics.DATASET_ACQUIRED.name, experiment, encode(acquired))
    await page.wait_for_selector("tr[data-stage=acquire] .status-finished", timeout=20_000)

    # The list shows it with its stage timeline.
    await page.goto(f"{gw.url}/dashboard/#/experiments")
    row = page.locator(f"#experiments tr[data-id='{experiment}']")
    await row.wait_for(timeout=10_000)
    assert "running" in await row.inner_text()
    assert await row.locator(".timeline .seg.finished").count() == 1
    await page.screenshot(path=str(SCREENSHOTS / "experiments.png"), full_page=True)

    # A dead letter of this experiment: profile's output that failed downstream.
    profiled = new_envelope(topics.DATASET_PROFILED,
                            DatasetProfiled(spec=ExperimentSpec(project=project), target="y"),
                            experiment_id=experiment, producer=PRODUCER)
    letter = DeadLetter(source_topic=topics.DATASET_PROFILED.name, consumer_group="mlmesh.prep",
                        error_type="ValueError", error_message="target 'y' is constant",
                        stack="Traceback: ...", attempt=3, original_key=experiment.encode(),
                        original_value=encode(profiled), experiment_id=experiment,
                        event_id=profiled.event_id)
    letter.failed_at.GetCurrentTime()
    await _send(bootstrap, topics.DATASET_PROFILED.dlq, experiment, letter.SerializeToString())
    await _until(lambda: bool(ledger.list_dead_letters(experiment_id=experiment)))
    [recorded] = ledger.list_dead_letters(experiment_id=experiment)

    await page.goto(f"{gw.url}/dashboard/#/dlq")
    letter_row = page.locator(f"#dead-letters tr[data-id='{recorded.id}']")
    await letter_row.wait_for(timeout=10_000)
    assert "constant" in await letter_row.inner_text()
    await page.screenshot(path=str(SCREENSHOTS / "dlq-before-replay.png"), full_page=True)
    await letter_row.locator("button.replay").click()
    await letter_row.wait_for(state="detached", timeout=10_000)  # no longer open
    assert ledger.get_dead_letter(recorded.id).status == "replayed"
    # The replayed event reached its topic again: the projection finishes the profile stage.
    await _until(lambda: any(s.name == "profile" and s.status == "finished"
                             for s in ledger.get_stages(experiment)))
    await page.select_option("#dlq-status", "replayed")
    await page.locator(f"#dead-letters tr[data-id='{recorded.id}']").wait_for(timeout=10_000)
    await page.screenshot(path=str(SCREENSHOTS / "dlq-after-replay.png"), full_page=True)
    audit = ledger.list_audit(action="dlq.replay")
    assert audit and audit[0].target == recorded.id and audit[0].outcome == "ok"

    # Ops: service health, consumer lag per group and topic, DLQ counts.
    await page.goto(f"{gw.url}/dashboard/#/ops")
    await page.wait_for_selector("#services tr[data-service=gateway]", timeout=20_000)
    await page.wait_for_selector("#lag tbody tr", timeout=20_000)
    lag_text = await page.inner_text("#lag")
    assert "mlmesh.dataset.profiled.v1" in lag_text and "prep" in lag_text
    await page.screenshot(path=str(SCREENSHOTS / "ops.png"), full_page=True)
    assert page.errors == [], page.errors


async def test_dashboard_asks_for_a_key_and_refuses_a_bad_one(idle_gateway: LiveGateway,
                                                              browser_page) -> None:
    page = browser_page
    response = await page.goto(f"{idle_gateway.url}/dashboard/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    await page.wait_for_selector("#login:not([hidden])")
    await page.fill("#api-key", "mlm_0123456789ab_" + "x" * 43)
    await page.click("#login-form button")
    await page.wait_for_selector("#login-error:has-text('401')", timeout=10_000)
    assert await page.evaluate("sessionStorage.getItem('mlmesh.apiKey')") is None
    await page.screenshot(path=str(SCREENSHOTS / "login-refused.png"))
