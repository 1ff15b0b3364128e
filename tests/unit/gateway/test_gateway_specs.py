from __future__ import annotations

import pytest

from mlmesh.events.v1.common_pb2 import ProblemType
from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh_gateway.specs import InvalidSpec, validate_spec


def test_defaults_are_filled_in() -> None:
    spec = validate_spec(ExperimentSpec(dataset_uri=" file:///d.csv "), 300, 20)
    assert spec.dataset_uri == "file:///d.csv" and spec.project == "default"
    assert spec.time_budget_s == 300 and spec.max_trials == 20
    assert list(spec.stages) == ["tune", "docs", "git", "publish"]


@pytest.mark.parametrize("uri", [
    "file:///d.csv", "https://h/d.csv", "s3://bucket/d.parquet", "kaggle://owner/dataset",
    "hf://datasets/owner/name/default/train", "openml://61", "uci://53",
])
def test_every_acquire_scheme_is_accepted(uri: str) -> None:
    assert validate_spec(ExperimentSpec(dataset_uri=uri), 300, 20).dataset_uri == uri


def test_gateway_schemes_match_what_acquire_fetches() -> None:
    from mlmesh_acquire.sources import supported_schemes
    from mlmesh_gateway.specs import SUPPORTED_SCHEMES

    assert set(SUPPORTED_SCHEMES) == set(supported_schemes())


@pytest.mark.parametrize("spec, field", [
    (ExperimentSpec(), "dataset_uri"),
    (ExperimentSpec(dataset_uri="ftp://h/x.csv"), "dataset_uri"),
    (ExperimentSpec(dataset_uri="https://user:pw@h/x.csv"), "dataset_uri"),
    (ExperimentSpec(dataset_uri="file:///x", dataset_sha256="abc"), "dataset_sha256"),
    (ExperimentSpec(dataset_uri="file:///x", project="Bad Name"), "project"),
    (ExperimentSpec(dataset_uri="file:///x", time_budget_s=5), "time_budget_s"),
    (ExperimentSpec(dataset_uri="file:///x", stages=["deploy"]), "stages"),
    (ExperimentSpec(dataset_uri="file:///x", source_options={"api_key": "k"}),
     "source_options"),
    (ExperimentSpec(dataset_uri="file:///x", metric="rmse",
                    problem_type=ProblemType.PROBLEM_TYPE_BINARY), "metric"),
])
def test_each_problem_is_named(spec: ExperimentSpec, field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        validate_spec(spec, 300, 20)
    assert field in info.value.errors
