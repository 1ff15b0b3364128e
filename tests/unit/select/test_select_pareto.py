"""Pareto front over score/latency/size and the spec's constraints."""

import pytest

from mlmesh_select.pareto import MB, ConstraintError, apply_constraints, pareto_optimal


def _c(family, cv, latency, size_mb, rank=1):
    return {
        "family": family,
        "cv_mean": cv,
        "latency_ms": latency,
        "size_bytes": size_mb * MB,
        "rank": rank,
    }


BOARD = [
    _c("catboost", 0.95, 0.50, 20, 1),
    _c("lightgbm", 0.94, 0.05, 2, 2),
    _c("linear", 0.90, 0.01, 0.01, 3),
    _c("knn", 0.89, 0.20, 5, 4),
]


def test_pareto_front():
    assert pareto_optimal(BOARD, greater_is_better=True) == [True, True, True, False]
    # rmse: lower is better, so the ranking of scores flips
    assert pareto_optimal(BOARD, greater_is_better=False) == [False, False, True, True]
    missing = [*BOARD[:1], {"family": "x", "cv_mean": 0.95, "latency_ms": None, "size_bytes": None}]
    assert pareto_optimal(missing, greater_is_better=True) == [True, False]


def test_constraints_filter_and_report():
    kept, report = apply_constraints(BOARD, max_latency_ms=0.1)
    assert [c["family"] for c in kept] == ["lightgbm", "linear"]
    assert {e["family"] for e in report["excluded"]} == {"catboost", "knn"}
    kept, _ = apply_constraints(BOARD, max_latency_ms=0.1, max_model_size_mb=1)
    assert [c["family"] for c in kept] == ["linear"]
    kept, report = apply_constraints(BOARD)
    assert len(kept) == 4 and report["excluded"] == []


def test_constraints_fail_clearly_when_nothing_fits():
    with pytest.raises(ConstraintError) as err:
        apply_constraints(BOARD, max_latency_ms=0.001, max_model_size_mb=0.001)
    text = str(err.value)
    assert "max_latency_ms=0.001 (fastest candidate: 0.01 ms)" in text
    assert "max_model_size_mb=0.001 (smallest candidate: 0.01 MB)" in text
    with pytest.raises(ConstraintError, match="none measured"):
        apply_constraints([{"family": "x", "cv_mean": 1.0}], max_latency_ms=1)
