from __future__ import annotations

import pytest

from mlmesh_common import problems
from mlmesh_common.modeling import METRICS, default_metric, metrics_for


def test_every_requestable_metric_can_be_scored() -> None:
    assert set(problems.CLASSIFICATION_METRICS) <= set(metrics_for("binary"))
    assert set(problems.REGRESSION_METRICS) <= set(metrics_for("regression"))
    assert set(problems.CLASSIFICATION_METRICS + problems.REGRESSION_METRICS) <= set(METRICS)


@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_defaults_agree_with_modeling(problem_type: str) -> None:
    assert problems.DEFAULT_METRICS[problem_type] == default_metric(problem_type)


def test_proto_round_trip() -> None:
    for name in ("binary", "multiclass", "regression"):
        assert problems.from_proto(problems.to_proto(name)) == name
    with pytest.raises(ValueError, match="unknown problem type"):
        problems.to_proto("clustering")
