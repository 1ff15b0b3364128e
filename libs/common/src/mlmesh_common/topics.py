"""The topic registry of ARCHITECTURE.md §2 as code.

Services, the embedded runner, deploy/ and the contract tests all read this table,
so names, keys, payload types, producers and consumer groups cannot drift apart.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf.message import Message

from mlmesh.events.v1 import (
    dataset_pb2,
    delivery_pb2,
    envelope_pb2,
    experiment_pb2,
    monitoring_pb2,
    training_pb2,
)

ALL_SERVICES = ("acquire", "profile", "prep", "train-gpu", "tune", "select", "docs", "git",
                "publish", "monitor", "gateway")


class Key(StrEnum):
    """What a topic's message key is."""

    EXPERIMENT = "experiment"
    JOB = "job"
    TRIAL = "trial"
    MODEL = "model"


def spread_partition(experiment_id: str, index: int, partitions: int) -> int:
    """The partition of an experiment's ``index``-th parallel work item (a job or trial).

    Consecutive items of one experiment go to consecutive partitions from a start fixed by
    the experiment id. The runtime's consumers use the round-robin assignor, which deals
    partitions to a group's members in turn, so consecutive partitions belong to different
    workers and n items are shared by k workers as evenly as n/k allows. Deterministic, so a
    redone emit places an item on the partition it went to the first time.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1; got {partitions}")
    if index < 0:
        raise ValueError(f"index must not be negative; got {index}")
    return (zlib.crc32(experiment_id.encode()) + index) % partitions


def idle_worker_partition(lags: Mapping[int, int], members: int, here: int) -> int | None:
    """A partition of a worker with nothing queued, to hand the item on ``here`` to, or None.

    ``lags`` is the consuming group's lag per partition (items queued or being handled,
    the one on ``here`` included) and ``members`` its number of workers. The round-robin
    assignor deals a topic's sorted partitions to the members in turn, so the i-th belongs
    to worker ``i % members`` and a worker's load is the lag of its partitions. The item is
    handed over when its worker has at least one more item waiting behind it and another
    worker has nothing queued (at most the item it is working on): that worker would
    otherwise run dry while this one still has a queue, and queued items cannot move. The
    least loaded such worker's partition with the least lag is the answer.
    """
    ordered = sorted(lags)
    if members <= 1 or here not in lags:
        return None
    owner = {p: i % members for i, p in enumerate(ordered)}
    load = [0] * members
    for p in ordered:
        load[owner[p]] += lags[p]
    if load[owner[here]] < 2:
        return None
    candidates = [p for p in ordered if owner[p] != owner[here] and load[owner[p]] <= 1]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (load[owner[p]], lags[p], p))


@dataclass(frozen=True)
class Topic:
    """One versioned topic: name, key, payload type, producers and consumer groups."""

    subject: str
    major: int
    key: Key
    payload: type[Message]
    producers: tuple[str, ...]
    consumer_groups: tuple[str, ...]
    partitions: int = 6
    #: Every service instance reads it (not as a group), e.g. cancellation.
    broadcast: bool = False

    @property
    def name(self) -> str:
        return f"mlmesh.{self.subject}.v{self.major}"

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    @property
    def event_type(self) -> str:
        return f"mlmesh.{self.subject}"


@dataclass(frozen=True)
class ConsumerGroup:
    """A consumer group: the unit that scales by lag (one KEDA ScaledObject each)."""

    name: str
    service: str
    topics: tuple[str, ...]
    lag_threshold: int = 5
    #: (topic, Kafka group id) for topics the service reads under another group id than
    #: :attr:`group_id` (a second consumer in the same process, e.g. a faust app).
    topic_group_ids: tuple[tuple[str, str], ...] = ()

    @property
    def group_id(self) -> str:
        return f"mlmesh.{self.name}"

    def group_id_for(self, topic_name: str) -> str:
        """The Kafka group id whose committed offsets on ``topic_name`` are this group's."""
        return dict(self.topic_group_ids).get(topic_name, self.group_id)

    def topics_by_group_id(self) -> dict[str, tuple[str, ...]]:
        """This group's topics by the Kafka group id that commits on them."""
        out: dict[str, list[str]] = {}
        for topic_name in self.topics:
            out.setdefault(self.group_id_for(topic_name), []).append(topic_name)
        return {group_id: tuple(names) for group_id, names in out.items()}


def _t(subject: str, payload: type[Message], key: Key, producers: Iterable[str],
       groups: Iterable[str], **kw: object) -> Topic:
    return Topic(subject, 1, key, payload, tuple(producers), tuple(groups), **kw)  # type: ignore[arg-type]


E = Key.EXPERIMENT
EXPERIMENT_REQUESTED = _t("experiment.requested", experiment_pb2.ExperimentRequested, E,
                          ["gateway", "monitor"], ["acquire", "gateway"])
DATASET_ACQUIRED = _t("dataset.acquired", dataset_pb2.DatasetAcquired, E, ["acquire"],
                      ["profile", "gateway"])
DATASET_PROFILED = _t("dataset.profiled", dataset_pb2.DatasetProfiled, E, ["profile"],
                      ["prep", "gateway"])
DATASET_PREPARED = _t("dataset.prepared", dataset_pb2.DatasetPrepared, E, ["prep"],
                      ["train-gpu-planner", "gateway"])
TRAIN_JOB = _t("train.job", training_pb2.TrainJob, Key.JOB, ["train-gpu"],
               ["train-gpu-worker"], partitions=12)
TRAIN_JOB_COMPLETED = _t("train.job.completed", training_pb2.TrainJobCompleted, E,
                         ["train-gpu"], ["train-gpu-planner"])
TRAINING_COMPLETED = _t("training.completed", training_pb2.TrainingCompleted, E, ["train-gpu"],
                        ["tune-coordinator", "gateway"])
TUNE_TRIAL = _t("tune.trial", training_pb2.TuneTrial, Key.TRIAL, ["tune"], ["tune-worker"],
                partitions=12)
TUNE_TRIAL_COMPLETED = _t("tune.trial.completed", training_pb2.TuneTrialCompleted, E, ["tune"],
                          ["tune-coordinator"])
TUNING_COMPLETED = _t("tuning.completed", training_pb2.TuningCompleted, E, ["tune"],
                      ["select", "gateway"])
MODEL_SELECTED = _t("model.selected", training_pb2.ModelSelected, E, ["select"],
                    ["docs", "gateway"])
DOCS_GENERATED = _t("docs.generated", delivery_pb2.DocsGenerated, E, ["docs"], ["git", "gateway"])
EXPERIMENT_COMMITTED = _t("experiment.committed", delivery_pb2.ExperimentCommitted, E, ["git"],
                          ["publish", "gateway"])
MODEL_PUBLISHED = _t("model.published", delivery_pb2.ModelPublished, E, ["publish"],
                     ["monitor", "gateway", "gateway-webhooks"])
EXPERIMENT_COMPLETED = _t("experiment.completed", experiment_pb2.ExperimentCompleted, E,
                          ["gateway"], ["gateway", "gateway-webhooks"])
EXPERIMENT_FAILED = _t("experiment.failed", experiment_pb2.ExperimentFailed, E,
                       [s for s in ALL_SERVICES], ["gateway", "gateway-webhooks"])
EXPERIMENT_CANCEL = _t("experiment.cancel", experiment_pb2.ExperimentCancel, E, ["gateway"],
                       [], broadcast=True)
STAGE_PROGRESS = _t("stage.progress", experiment_pb2.StageProgress, E,
                    [s for s in ALL_SERVICES if s != "gateway"], ["gateway"])
PREDICTION_LOGGED = _t("prediction.logged", monitoring_pb2.PredictionLogged, Key.MODEL,
                       ["serving"], ["monitor"])
GROUND_TRUTH_LOGGED = _t("ground_truth.logged", monitoring_pb2.GroundTruthLogged, Key.MODEL,
                         ["other-systems"], ["monitor"])
DRIFT_DETECTED = _t("drift.detected", monitoring_pb2.DriftDetected, Key.MODEL, ["monitor"],
                    ["gateway", "gateway-webhooks"])

TOPICS: tuple[Topic, ...] = (
    EXPERIMENT_REQUESTED, DATASET_ACQUIRED, DATASET_PROFILED, DATASET_PREPARED, TRAIN_JOB,
    TRAIN_JOB_COMPLETED, TRAINING_COMPLETED, TUNE_TRIAL, TUNE_TRIAL_COMPLETED, TUNING_COMPLETED,
    MODEL_SELECTED, DOCS_GENERATED, EXPERIMENT_COMMITTED, MODEL_PUBLISHED, EXPERIMENT_COMPLETED,
    EXPERIMENT_FAILED, EXPERIMENT_CANCEL, STAGE_PROGRESS, PREDICTION_LOGGED, GROUND_TRUTH_LOGGED,
    DRIFT_DETECTED,
)

_GROUP_SERVICE = {"train-gpu-planner": "train-gpu", "train-gpu-worker": "train-gpu",
                  "tune-coordinator": "tune", "tune-worker": "tune",
                  "gateway-webhooks": "gateway"}
_LAG_THRESHOLDS = {"train-gpu-worker": 2, "tune-worker": 4}
MONITOR_MODELS_GROUP_ID = "mlmesh.monitor.models"
"""The monitor reads model.published with its faust app, whose consumer group (faust's own
assignor protocol) cannot be shared with the plain aiokafka consumer of served events."""
_TOPIC_GROUP_IDS = {"monitor": ((MODEL_PUBLISHED.name, MONITOR_MODELS_GROUP_ID),)}


def _groups() -> tuple[ConsumerGroup, ...]:
    names: dict[str, list[str]] = {}
    for topic in TOPICS:
        for group in topic.consumer_groups:
            names.setdefault(group, []).append(topic.name)
    return tuple(ConsumerGroup(name, _GROUP_SERVICE.get(name, name), tuple(topics),
                               _LAG_THRESHOLDS.get(name, 5), _TOPIC_GROUP_IDS.get(name, ()))
                 for name, topics in names.items())


CONSUMER_GROUPS: tuple[ConsumerGroup, ...] = _groups()
DLQ_CONSUMER = "gateway"  # lists, inspects and replays every <topic>.dlq

_BY_NAME = {t.name: t for t in TOPICS}
_BY_TYPE = {t.event_type: t for t in TOPICS}


def topic_by_name(name: str) -> Topic:
    """The registered topic called `name` (KeyError names the known topics otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known: {sorted(_BY_NAME)}") from None


def topic_by_event_type(event_type: str) -> Topic:
    """The topic that carries events of `event_type` (e.g. mlmesh.dataset.acquired)."""
    return _BY_TYPE[event_type]


def group(name: str) -> ConsumerGroup:
    """The consumer group called `name`."""
    for g in CONSUMER_GROUPS:
        if g.name == name:
            return g
    raise KeyError(f"unknown consumer group {name!r}; known: {[g.name for g in CONSUMER_GROUPS]}")


def groups_of(service: str) -> tuple[ConsumerGroup, ...]:
    """Consumer groups run by `service`."""
    return tuple(g for g in CONSUMER_GROUPS if g.service == service)


def all_topic_names(include_dlq: bool = True) -> list[str]:
    """Every topic name the mesh needs created, DLQs included by default."""
    names = [t.name for t in TOPICS]
    return names + [t.dlq for t in TOPICS] if include_dlq else names


DEAD_LETTER_TYPE = envelope_pb2.DeadLetter
