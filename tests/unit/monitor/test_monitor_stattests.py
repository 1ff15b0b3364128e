"""Unit tests for mlmesh_monitor.stattests: evidently's choices, reproduced fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmesh_monitor.drift import compute_drift
from mlmesh_monitor.stattests import (
    CATEGORICAL,
    NUMERICAL,
    ReferenceColumn,
    ReferenceTable,
    StatTestInputError,
)

EVIDENTLY_NAMES = {"ks": "K-S p_value", "chisquare": "chi-square p_value", "z": "Z-test p_value",
                   "wasserstein": "Wasserstein distance (normed)",
                   "jensenshannon": "Jensen-Shannon distance"}


def _frame(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "a": rng.normal(shift, 1, n),
        "b": rng.exponential(1 + shift, n),
        "few": rng.integers(0, 4, n).astype(float),  # numeric with <= 5 values
        "k": rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1] if not shift else
                        [0.2, 0.3, 0.5]),
        "flag": rng.choice(["yes", "no"], n, p=[0.5, 0.5] if not shift else [0.8, 0.2]),
    })


@pytest.mark.parametrize("n_reference", [400, 1500])
def test_verdicts_and_scores_match_evidently(n_reference):
    rng = np.random.default_rng(7)
    reference = _frame(n_reference, rng)
    current = _frame(300, rng)
    shifted = _frame(300, rng, shift=0.6)
    current[["b", "k", "flag"]] = shifted[["b", "k", "flag"]]  # some columns drift
    ours = ReferenceTable(reference).test(current)
    theirs = compute_drift(reference, current)
    assert ours.drifted_columns == theirs.drifted_columns
    assert 0 < len(ours.drifted_columns) < len(current.columns)
    for column, result in theirs.per_column.items():
        assert EVIDENTLY_NAMES[ours.per_column[column].stattest] == result["stattest"]
        assert ours.per_column[column].score == pytest.approx(result["score"], abs=1e-9)
    assert ours.share_drifted == pytest.approx(theirs.share_drifted)


def test_picks_the_test_by_reference_size_and_distinct_values():
    rng = np.random.default_rng(0)
    small = {name: ReferenceColumn(name, values, kind).test(values).stattest
             for name, values, kind in [
                 ("num", rng.normal(size=100), NUMERICAL),
                 ("few", rng.integers(0, 3, 100).astype(float), NUMERICAL),
                 ("bin", rng.choice(["a", "b"], 100), CATEGORICAL)]}
    assert small == {"num": "ks", "few": "chisquare", "bin": "z"}
    large = {name: ReferenceColumn(name, values, kind).test(values[:50]).stattest
             for name, values, kind in [
                 ("num", rng.normal(size=2000), NUMERICAL),
                 ("cat", rng.choice(["a", "b", "c"], 2000), CATEGORICAL)]}
    assert large == {"num": "wasserstein", "cat": "jensenshannon"}


def test_missing_and_infinite_values_are_dropped_and_empty_columns_skipped():
    reference = pd.DataFrame({"a": [1.0, 2.0, np.inf, np.nan] * 50, "b": [np.nan] * 200,
                              "when": pd.date_range("2024-01-01", periods=200)})
    table = ReferenceTable(reference)
    assert table.skipped == {"b": "no values in the reference data",
                             "when": "datetime columns are not tested for drift"}
    result = table.test(pd.DataFrame({"a": [np.nan] * 10}))
    assert result.per_column == {} and "a" in result.skipped_columns
    assert not result.dataset_drift
    with pytest.raises(StatTestInputError, match="no column can be tested"):
        ReferenceTable(reference[["b"]])


def test_a_category_unseen_in_the_reference_is_drift():
    reference = ReferenceColumn("k", ["a", "b", "c"] * 100, CATEGORICAL)
    result = reference.test(["d"] * 50 + ["a"] * 50)
    assert result.stattest == "chisquare" and result.drifted and result.score == 0.0


def test_share_threshold_decides_dataset_drift():
    rng = np.random.default_rng(3)
    reference = _frame(500, rng)
    current = _frame(300, rng)
    current["a"] = current["a"] + 3  # one of five columns drifts
    assert not ReferenceTable(reference, drift_share_threshold=0.5).test(current).dataset_drift
    assert ReferenceTable(reference, drift_share_threshold=0.2).test(current).dataset_drift
    with pytest.raises(StatTestInputError, match="drift_share_threshold"):
        ReferenceTable(reference, drift_share_threshold=0)
