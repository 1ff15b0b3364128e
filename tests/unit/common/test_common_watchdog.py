"""The ledger's watchdog: which event re-drives a stuck experiment, with which id, and when."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from google.protobuf.message import Message

from mlmesh.events.v1.dataset_pb2 import DatasetAcquired, DatasetPrepared
from mlmesh.events.v1.delivery_pb2 import ModelPublished
from mlmesh.events.v1.experiment_pb2 import ExperimentRequested, ExperimentSpec
from mlmesh_common import topics
from mlmesh_common.envelope import derive_event_id, to_dict
from mlmesh_common.ledger import Ledger, open_ledger
from mlmesh_common.topics import Topic
from mlmesh_common.watchdog import PIPELINE, Watchdog, plan_redrive, rebuild

STAGES = [stage for stage, _, _ in PIPELINE]


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    led = open_ledger(url)
    yield led
    led.close()


SPEC = ExperimentSpec(dataset_uri="file:///d.csv", target="y", project="p",
                      families=["dummy", "linear"], stages=["tune"])


def log(ledger: Ledger, experiment: str, event_id: str, topic: Topic, payload: Message,
        at: float, stage: str = "", status: str = "") -> None:
    """What the gateway's projection writes for one event."""
    ledger.append_event(experiment, event_id, topic.event_type, stage, status, to_dict(payload),
                        at)
    if stage:
        ledger.upsert_stage(experiment, stage, status, 100.0, "done", at)


def started(ledger: Ledger, experiment: str = "x1", at: float = 1000.0) -> None:
    ledger.create_experiment(experiment, "p", to_dict(SPEC), status="running")
    log(ledger, experiment, f"{experiment}-req", topics.EXPERIMENT_REQUESTED,
        ExperimentRequested(spec=SPEC), at)


class Recorder:
    def __init__(self, lag: int = 0) -> None:
        self.sent: list[tuple[str, Message, str, str]] = []
        self.lag = lag
        self.asked: list[Sequence[str]] = []

    async def send(self, topic: Topic, payload: Message, experiment: str, event_id: str) -> None:
        self.sent.append((topic.name, payload, experiment, event_id))

    async def read_lag(self, groups: Sequence[str]) -> dict[str, int]:
        self.asked.append(groups)
        return {g: self.lag for g in groups}


def test_plan_picks_the_first_unfinished_stage_and_derives_a_new_id(ledger: Ledger) -> None:
    started(ledger)
    log(ledger, "x1", "acq-1", topics.DATASET_ACQUIRED, DatasetAcquired(n_rows=7), 1001,
        "acquire", "finished")
    plan = plan_redrive("x1", ledger.get_stages("x1"),
                        lambda t: ledger.latest_event("x1", t), 1)
    assert plan.stage == "profile" and plan.topic is topics.DATASET_ACQUIRED
    assert plan.source_event_id == "acq-1"
    assert plan.event_id == derive_event_id("acq-1", "watchdog", "1") != "acq-1"
    assert plan.groups == ("profile", "gateway") and plan.forget_group == ""
    assert rebuild(plan.topic, plan.payload) == DatasetAcquired(n_rows=7)


def test_fan_out_stages_wait_on_every_group_of_their_service(ledger: Ledger) -> None:
    started(ledger)
    for (stage, _, _), (_, topic, _) in zip(PIPELINE[:3], PIPELINE[1:4], strict=True):
        payload = DatasetPrepared(n_train=5) if topic is topics.DATASET_PREPARED else (
            topic.payload())
        log(ledger, "x1", f"{stage}-out", topic, payload, 1001, stage, "finished")
    plan = plan_redrive("x1", ledger.get_stages("x1"), lambda t: ledger.latest_event("x1", t), 2)
    assert plan.stage == "train" and plan.topic is topics.DATASET_PREPARED
    assert set(plan.groups) == {"train-gpu-planner", "train-gpu-worker", "gateway"}
    assert rebuild(plan.topic, plan.payload).n_train == 5


def test_lost_completion_is_redelivered_to_the_projection_only(ledger: Ledger) -> None:
    started(ledger)
    for stage, _, _ in PIPELINE:
        ledger.upsert_stage("x1", stage, "skipped" if stage == "docs" else "finished", 100, "",
                            1001)
    log(ledger, "x1", "pub-1", topics.MODEL_PUBLISHED, ModelPublished(model_version="3"), 1002)
    plan = plan_redrive("x1", ledger.get_stages("x1"), lambda t: ledger.latest_event("x1", t), 1)
    assert plan.stage == "" and plan.topic is topics.MODEL_PUBLISHED
    assert plan.event_id == plan.source_event_id == "pub-1"  # webhooks de-duplicate it
    assert plan.forget_group == "gateway" and plan.groups == ("gateway",)


async def test_sweep_redrives_idle_experiments_once_per_idle_period(ledger: Ledger) -> None:
    started(ledger, "x1", at=1000.0)
    started(ledger, "fresh", at=1990.0)
    started(ledger, "done", at=1000.0)
    ledger.set_status("done", "completed")
    rec = Recorder()
    dog = Watchdog(ledger, rec.send, rec.read_lag, idle_s=60, max_redrives=2)
    sent = await dog.sweep(now=2000.0)
    assert [r.experiment_id for r in sent] == ["x1"]
    topic, payload, experiment, event_id = rec.sent[0]
    assert topic == topics.EXPERIMENT_REQUESTED.name and experiment == "x1"
    assert payload.spec.families == ["dummy", "linear"]
    assert event_id == derive_event_id("x1-req", "watchdog", "1")
    assert await dog.sweep(now=2030.0) == []  # within idle_s of the last re-drive
    again = await dog.sweep(now=2070.0)
    assert [r.event_id for r in again if r.experiment_id == "x1"] == [
        derive_event_id("x1-req", "watchdog", "2")]
    # max_redrives reached: left to an operator
    assert [r for r in await dog.sweep(now=3000.0) if r.experiment_id == "x1"] == []
    assert ledger.state_get("watchdog:x1")["gave_up"] is True


async def test_no_redrive_while_the_stage_has_work_queued(ledger: Ledger) -> None:
    started(ledger)
    rec = Recorder(lag=3)
    dog = Watchdog(ledger, rec.send, rec.read_lag, idle_s=60)
    assert await dog.sweep(now=5000.0) == []
    assert rec.asked == [("acquire", "gateway")] and rec.sent == []
    rec.lag = 0
    assert len(await dog.sweep(now=5001.0)) == 1


async def test_completion_redrive_forgets_the_projection_mark(ledger: Ledger) -> None:
    started(ledger)
    for stage in STAGES:
        ledger.upsert_stage("x1", stage, "finished", 100, "", 1001)
    log(ledger, "x1", "pub-1", topics.MODEL_PUBLISHED, ModelPublished(), 1002)
    for group in ("gateway", "gateway-webhooks", "monitor"):
        ledger.mark_processed(group, "pub-1")
    rec = Recorder()
    await Watchdog(ledger, rec.send, rec.read_lag, idle_s=60).sweep(now=9000.0)
    assert [s[3] for s in rec.sent] == ["pub-1"]
    assert not ledger.has_processed("gateway", "pub-1")
    assert ledger.has_processed("gateway-webhooks", "pub-1")
    assert ledger.has_processed("monitor", "pub-1")


def test_idle_experiments_ignores_terminal_and_recent_ones(ledger: Ledger) -> None:
    started(ledger, "old", at=100.0)
    started(ledger, "new", at=900.0)
    started(ledger, "failed", at=100.0)
    ledger.set_status("failed", "failed", "x")
    assert ledger.idle_experiments(idle_before=500.0) == ["old"]
    assert ledger.latest_event("old", "mlmesh.experiment.requested").event_id == "old-req"
    assert ledger.latest_event("old", "mlmesh.dataset.acquired") is None
    assert ledger.forget_processed("g", "e") is False


async def test_a_request_lost_before_the_log_is_rebuilt_from_the_spec(ledger: Ledger) -> None:
    ledger.create_experiment("lost", "p", to_dict(SPEC))  # pending, nothing logged
    rec = Recorder()
    dog = Watchdog(ledger, rec.send, rec.read_lag, idle_s=60)
    assert await dog.sweep(now=ledger.get_experiment("lost").created_at + 30) == []
    (sent,) = await dog.sweep(now=ledger.get_experiment("lost").created_at + 61)
    assert sent.stage == "acquire" and sent.groups == ("acquire", "gateway")
    assert sent.event_id == derive_event_id("lost-requested", "watchdog", "1")
    topic, payload, experiment, _ = rec.sent[0]
    assert topic == topics.EXPERIMENT_REQUESTED.name and experiment == "lost"
    assert payload.spec == SPEC and payload.requested_by == "watchdog"
