"""The autoscaler's decision: KEDA's formula per consumer group, bounds, cooldown, steps."""

from __future__ import annotations

import math
import sys

import pytest

from mlmesh_cli import runner
from mlmesh_cli.runner import (
    SCALABLE,
    Autoscaler,
    Child,
    MeshConfig,
    Supervisor,
    decide_replicas,
    desired_for_group,
    group_partitions,
)
from mlmesh_common import topics


@pytest.mark.parametrize(("lag", "threshold", "partitions", "most", "want"), [
    (0, 4, 12, 8, 1), (1, 4, 12, 8, 1), (4, 4, 12, 8, 1), (5, 4, 12, 8, 2), (30, 4, 12, 8, 8),
    (30, 4, 6, 8, 6), (100, 5, 6, 3, 3), (-3, 5, 6, 3, 1), (9, 2, 12, 4, 4)])
def test_keda_formula_is_bounded_by_max_and_partitions(lag: int, threshold: int,
                                                       partitions: int, most: int,
                                                       want: int) -> None:
    assert desired_for_group(lag, threshold, partitions, most) == want


def test_partitions_are_those_of_the_widest_input_topic() -> None:
    assert group_partitions(topics.group("tune-worker")) == 12
    assert group_partitions(topics.group("select")) == 6


def test_the_busiest_group_of_the_service_decides() -> None:
    # tune-worker: threshold 4, 12 partitions; tune-coordinator: threshold 5.
    lags = {"tune-worker": 13, "tune-coordinator": 0}
    assert decide_replicas("tune", 1, lags, max_replicas=8, now=100, last_change_at=0,
                           cooldown_s=30) == math.ceil(13 / 4)
    assert decide_replicas("tune", 1, {}, max_replicas=8, now=100, last_change_at=0,
                           cooldown_s=30) == 1


def test_cooldown_holds_and_scale_down_steps_one_at_a_time() -> None:
    busy, idle = {"tune-worker": 40}, {"tune-worker": 0}
    assert decide_replicas("tune", 1, busy, max_replicas=3, now=10, last_change_at=0,
                           cooldown_s=30) == 1  # within the cooldown
    assert decide_replicas("tune", 1, busy, max_replicas=3, now=31, last_change_at=0,
                           cooldown_s=30) == 3
    assert decide_replicas("tune", 3, idle, max_replicas=3, now=100, last_change_at=0,
                           cooldown_s=30) == 2
    assert decide_replicas("tune", 2, idle, max_replicas=3, now=100, last_change_at=0,
                           cooldown_s=30) == 1
    assert decide_replicas("tune", 1, idle, max_replicas=3, now=100, last_change_at=0,
                           cooldown_s=30) == 1


def test_only_pipeline_services_scale() -> None:
    assert not {"gateway", "monitor", "watchdog"} & set(SCALABLE)
    assert {"tune", "train-gpu", "acquire", "publish"} <= set(SCALABLE)


def test_autoscaler_step_scales_through_the_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_lag(bootstrap: str, groups: list) -> dict[str, int]:
        return {g.name: (20 if g.name == "train-gpu-worker" else 0) for g in groups}

    monkeypatch.setattr(runner, "group_lag", fake_lag)
    counts = {"train-gpu": 1, "select": 1}
    scaler = Autoscaler("unused:1", ("train-gpu", "select"), current=counts.__getitem__,
                        scale=counts.__setitem__, max_replicas=4, cooldown_s=60)
    assert scaler.step(now=1000) == {"train-gpu": 4}  # ceil(20 / 2) capped at 4
    assert counts == {"train-gpu": 4, "select": 1}
    assert scaler.step(now=1010) == {}  # cooldown


def test_scale_to_starts_and_retires_replicas(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = Supervisor(MeshConfig(home=tmp_path))

    def sleeper(name: str, index: int) -> Child:
        return Child(f"{name}-{index}", [sys.executable, "-c", "import time; time.sleep(60)"],
                     {}, tmp_path / f"{name}-{index}.log")

    monkeypatch.setattr(supervisor, "service_child", sleeper)
    supervisor.children.append(sleeper("tune", 0))
    supervisor.children[0].start()
    try:
        supervisor.scale_to("tune", 3)
        assert supervisor.replica_count("tune") == 3
        assert sorted(c.name for c in supervisor.children) == ["tune-0", "tune-1", "tune-2"]
        supervisor.scale_to("tune", 1)
        assert supervisor.replica_count("tune") == 1
        retired = [c for c in supervisor.children if c.retired]
        assert sorted(c.name for c in retired) == ["tune-1", "tune-2"]
        for child in retired:
            assert child.proc.wait(10) == -15  # SIGTERM, not restarted
    finally:
        for child in supervisor.children:
            if child.alive():
                child.proc.kill()
                child.proc.wait()
