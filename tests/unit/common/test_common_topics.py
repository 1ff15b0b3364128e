from __future__ import annotations

import re

import pytest

from mlmesh_common import topics


def test_names_follow_the_convention_and_are_unique() -> None:
    names = [t.name for t in topics.TOPICS]
    assert len(names) == len(set(names)) == 21
    for name in names:
        assert re.fullmatch(r"mlmesh\.[a-z_.]+\.v1", name), name


def test_every_topic_has_a_producer_and_a_consumer() -> None:
    for topic in topics.TOPICS:
        assert topic.producers, topic.name
        assert topic.consumer_groups or topic.broadcast, topic.name


def test_every_consumer_group_belongs_to_a_service() -> None:
    for group in topics.CONSUMER_GROUPS:
        assert group.service in topics.ALL_SERVICES
        assert group.group_id == f"mlmesh.{group.name}"
        for name in group.topics:
            assert group.name in topics.topic_by_name(name).consumer_groups
        assert set(dict(group.topic_group_ids)) <= set(group.topics)


def test_the_monitor_commits_model_published_under_its_faust_group() -> None:
    monitor = topics.group("monitor")
    assert monitor.topics_by_group_id() == {
        topics.MONITOR_MODELS_GROUP_ID: (topics.MODEL_PUBLISHED.name,),
        "mlmesh.monitor": (topics.PREDICTION_LOGGED.name, topics.GROUND_TRUTH_LOGGED.name),
    }
    tune = topics.group("tune-worker")
    assert tune.topics_by_group_id() == {"mlmesh.tune-worker": tune.topics}


def test_fan_out_topics_are_keyed_by_work_item() -> None:
    assert topics.TRAIN_JOB.key is topics.Key.JOB
    assert topics.TUNE_TRIAL.key is topics.Key.TRIAL
    assert topics.PREDICTION_LOGGED.key is topics.Key.MODEL


def test_all_topic_names_include_dlqs() -> None:
    names = topics.all_topic_names()
    assert len(names) == 42 and "mlmesh.train.job.v1.dlq" in names


def test_spread_partition_shares_an_experiments_items_evenly_between_workers() -> None:
    partitions = topics.TRAIN_JOB.partitions
    for experiment in ("exp-a", "exp-b", "0f3c9e2a71d84b55"):
        placed = [topics.spread_partition(experiment, i, partitions) for i in range(13)]
        assert placed == [topics.spread_partition(experiment, i, partitions)
                          for i in range(13)]  # a redo lands where the first emit did
        assert all(0 <= p < partitions for p in placed)
        assert len(set(placed[:partitions])) == partitions  # no two share a partition
        for workers in (2, 3, 4):
            # The round-robin assignor deals partition p to member p % workers.
            loads = [sum(1 for p in placed if p % workers == w) for w in range(workers)]
            assert max(loads) - min(loads) <= 1, (experiment, workers, loads)
            # Heaviest first: the first `workers` items go to different workers.
            assert len({p % workers for p in placed[:workers]}) == workers


def test_spread_partition_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="partitions"):
        topics.spread_partition("exp", 0, 0)
    with pytest.raises(ValueError, match="index"):
        topics.spread_partition("exp", -1, 6)


def test_idle_worker_partition_hands_work_to_a_worker_with_nothing_queued() -> None:
    # Six partitions, two workers: the round-robin assignor gives 0, 2, 4 to the first.
    lags = {0: 2, 1: 0, 2: 1, 3: 0, 4: 0, 5: 0}
    assert topics.idle_worker_partition(lags, 2, here=0) == 1  # the idle worker's first
    assert topics.idle_worker_partition(lags, 2, here=2) == 1
    # The other worker is busy with one item and has nothing queued: it gets this one.
    assert topics.idle_worker_partition({0: 2, 1: 0, 2: 0, 3: 1}, 2, here=0) == 1
    lags = {0: 1, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0}
    assert topics.idle_worker_partition(lags, 2, here=0) is None  # nothing waits behind it
    lags = {0: 3, 1: 2, 2: 0, 3: 0, 4: 0, 5: 0}
    assert topics.idle_worker_partition(lags, 2, here=0) is None  # the other one has a queue
    assert topics.idle_worker_partition({0: 3, 1: 0}, 1, here=0) is None  # one worker
    assert topics.idle_worker_partition({}, 0, here=0) is None  # the broker did not say
    # Three workers own {0, 3}, {1, 4}, {2, 5}: the idle third beats the busy second.
    lags = {0: 2, 1: 1, 2: 0, 3: 0, 4: 0, 5: 0}
    assert topics.idle_worker_partition(lags, 3, here=0) == 2
    # More workers than partitions: a worker without partitions cannot take anything.
    assert topics.idle_worker_partition({0: 2, 1: 2}, 3, here=0) is None
