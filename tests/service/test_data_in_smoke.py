"""The data-in stages on the real broker: a good table is prepared, a bad one fails clearly,
and the next experiment still runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from palmerpenguins import load_penguins

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec

pytestmark = pytest.mark.service


async def test_good_then_bad_then_good(data_in_mesh, tmp_path: Path) -> None:
    good = tmp_path / "penguins.csv"
    load_penguins().to_csv(good, index=False)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    first = await data_in_mesh.run(ExperimentSpec(dataset_uri=good.as_uri(), project="t"))
    assert first.status == "prepared", first.reason
    assert first.event.target == "species" and first.event.n_train > 200
    bad = await data_in_mesh.run(ExperimentSpec(dataset_uri=empty.as_uri(), project="t"))
    assert bad.status == "failed" and bad.stage == "acquire"
    assert "empty" in bad.reason.lower()
    again = await data_in_mesh.run(ExperimentSpec(dataset_uri=good.as_uri(), project="t"))
    assert again.status == "prepared", again.reason
