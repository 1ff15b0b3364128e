"""The dataset.acquired handler on a real HandlerContext and local artifact store (no
broker: progress is recorded instead of produced)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from mlmesh.events.v1.common_pb2 import ProblemType
from mlmesh.events.v1.dataset_pb2 import DatasetAcquired
from mlmesh.events.v1.envelope_pb2 import Producer
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec, StageProgress
from mlmesh_common import topics
from mlmesh_common.artifacts import sha256_file
from mlmesh_common.envelope import new_envelope
from mlmesh_common.errors import Cancelled
from mlmesh_common.runtime import HandlerContext, Service
from mlmesh_common.runtime._context import artifact_ref
from mlmesh_common.settings import Settings
from mlmesh_profile import service as profile_service


class Harness:
    """A profile Service with its handler, a store under tmp_path and recorded progress."""

    def __init__(self, tmp_path: Path) -> None:
        self.service = Service("profile", settings=Settings(home=tmp_path / "home"))
        self.progress: list[tuple[int, float, str]] = []
        self.cancel_on: str | None = None

        async def record(cause, stage, state, percent, message, **extra) -> None:
            self.progress.append((state, percent, message))
            if self.cancel_on and self.cancel_on in message:
                self.service._cancelled.add(cause.experiment_id)

        self.service.send_progress = record  # type: ignore[method-assign]
        self.tmp = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)

    async def run(self, df: pd.DataFrame, spec: ExperimentSpec) -> HandlerContext:
        local = self.tmp / "table.parquet"
        df.to_parquet(local, index=False)
        stored = self.service.store.put_file(local, "projects/t/experiments/e1/acquire/t.parquet")
        event = DatasetAcquired(spec=spec, table=artifact_ref(stored), n_rows=len(df))
        envelope = new_envelope(topics.DATASET_ACQUIRED, event, experiment_id="e1",
                                producer=Producer(service="test"))  # fmt: skip
        work = self.tmp / "work"
        work.mkdir(exist_ok=True)
        ctx = HandlerContext(self.service, "profile", topics.DATASET_ACQUIRED, envelope, 1, work)
        await profile_service.on_acquired(ctx, event)
        return ctx


async def test_profiled_event_points_at_profile_json_in_the_stored_folder(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ctx = await harness.run(load_penguins(), ExperimentSpec(project="t", seed=3))

    assert len(ctx.outputs) == 1 and ctx.outputs[0].topic is topics.DATASET_PROFILED
    event = ctx.outputs[0].payload
    assert (event.target, event.metric) == ("species", "accuracy")
    assert event.problem_type == ProblemType.PROBLEM_TYPE_MULTICLASS
    assert event.n_rows == 344 and [c.name for c in event.columns][0] == "species"
    assert re.search(r"/profile/[0-9a-f]{12}/profile\.json$", event.profile.uri)
    assert event.profile.media_type == "application/json"

    fetched = harness.service.store.get_file(event.profile.uri, tmp_path / "p.json",
                                             event.profile.sha256)  # fmt: skip
    profile = json.loads(fetched.read_text())
    assert profile["sampling"]["seed"] == 3
    folder_uri = event.profile.uri.rsplit("/", 1)[0]
    folder = harness.service.store.get_dir(folder_uri, tmp_path / "folder")
    assert (folder / "report.html").is_file() and (folder / "plots" / "target.png").is_file()
    assert sha256_file(folder / "profile.json") == event.profile.sha256

    states = [s for s, _, _ in harness.progress]
    percents = [p for _, p, _ in harness.progress]
    assert states[0] == StageProgress.STATE_STARTED and states[-1] == StageProgress.STATE_FINISHED
    assert percents == sorted(percents)
    messages = [m for _, _, m in harness.progress]
    assert "relating columns" in messages and "drawing plots" in messages
    assert "recommendations" in messages[-1]


async def test_multilabel_and_forecasting_travel_as_supported_wire_types(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    series = pd.DataFrame({"day": pd.date_range("2023-01-01", periods=n, freq="D"),
                           "sales": rng.normal(100, 10, n)})  # fmt: skip
    ctx = await Harness(tmp_path / "a").run(series, ExperimentSpec(project="t"))
    event = ctx.outputs[0].payload
    assert event.problem_type == ProblemType.PROBLEM_TYPE_REGRESSION and event.metric == "mae"
    assert any("forecasting" in w for w in event.warnings)

    labels = ["a", "b", "c", "d"]
    tags = [",".join(rng.choice(labels, rng.integers(1, 3), replace=False)) for _ in range(n)]
    frame = pd.DataFrame({"x": rng.normal(size=n), "tags": tags})
    ctx = await Harness(tmp_path / "b").run(frame, ExperimentSpec(project="t", target="tags"))
    event = ctx.outputs[0].payload
    assert event.problem_type == ProblemType.PROBLEM_TYPE_MULTICLASS
    assert any("label sets" in w for w in event.warnings)


async def test_cancellation_between_steps_stores_nothing(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.cancel_on = "relating columns"
    with pytest.raises(Cancelled):
        await harness.run(load_penguins(), ExperimentSpec(project="t"))
    root = Path(harness.service.settings.resolved_artifact_root)
    assert not list(root.rglob("profile.json"))


async def test_wide_table_event_stays_small(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(30, 1_500)), columns=[f"c{i}" for i in range(1_500)])
    df["target"] = rng.choice(["a", "b"], 30)
    ctx = await Harness(tmp_path).run(df, ExperimentSpec(project="t"))
    event = ctx.outputs[0].payload
    assert len(event.columns) == profile_service.MAX_EVENT_COLUMNS
    assert "first 1000 of 1501 columns" in event.warnings[0]
    assert event.ByteSize() < 200_000
