"""Unit tests for mlmesh_monitor.drift (evidently DataDriftPreset)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlmesh_monitor.drift import DriftInputError, compute_drift, render_drift_html

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _sample(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "bill_length_mm": rng.normal(44.0, 5.5, n),
            "bill_depth_mm": rng.normal(17.0, 2.0, n),
            "flipper_length_mm": rng.normal(200.0, 14.0, n),
            "body_mass_g": rng.normal(4200.0, 800.0, n),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n, p=[0.5, 0.35, 0.15]),
            "sex": rng.choice(["male", "female"], n),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _sample(600, seed=1)


def test_same_distribution_has_no_drift(reference):
    current = _sample(400, seed=2)
    result = compute_drift(reference, current)

    assert result.dataset_drift is False
    assert result.drifted_columns == []
    assert result.share_drifted == 0.0
    assert set(result.per_column) == set(reference.columns)
    assert (result.n_reference, result.n_current) == (600, 400)
    for column in NUMERIC:
        entry = result.per_column[column]
        assert entry["column_type"] == "numerical"
        assert entry["stattest"]  # e.g. "K-S p_value"
        assert entry["drifted"] is False
    assert result.per_column["island"]["column_type"] == "categorical"
    json.dumps(result.to_dict())  # event-ready


def test_shifted_columns_are_named(reference):
    current = _sample(400, seed=3)
    shifted = ["bill_length_mm", "body_mass_g", "island"]
    current["bill_length_mm"] += 3 * 5.5
    current["body_mass_g"] += 3 * 800.0
    rng = np.random.default_rng(4)
    current["island"] = rng.choice(["Biscoe", "Dream", "Torgersen"], 400, p=[0.1, 0.1, 0.8])

    result = compute_drift(reference, current)

    assert sorted(result.drifted_columns) == sorted(shifted)
    assert result.share_drifted == pytest.approx(3 / 6)
    assert result.dataset_drift is True  # 0.5 >= default threshold 0.5
    assert compute_drift(reference, current, drift_share_threshold=0.6).dataset_drift is False
    for column in shifted:
        assert result.per_column[column]["drifted"] is True
    assert result.per_column["bill_length_mm"]["score"] < 0.05  # a p-value here
    assert result.per_column["sex"]["drifted"] is False


def test_selected_columns_and_skipped_ones(reference):
    current = _sample(300, seed=5)
    current["body_mass_g"] += 3 * 800.0
    reference = reference.assign(
        when=pd.Timestamp("2024-01-01"), comment=None, has_tag=reference["sex"] == "male"
    )
    current = current.assign(when=pd.Timestamp("2024-06-01"), comment="x", has_tag=True)
    result = compute_drift(
        reference, current, columns=["body_mass_g", "bill_depth_mm", "when", "comment", "has_tag"]
    )
    assert set(result.per_column) == {"body_mass_g", "bill_depth_mm", "has_tag"}
    assert result.skipped_columns == {
        "when": "datetime columns are not tested for drift",
        "comment": "no values in the reference data",
    }
    assert result.per_column["has_tag"]["column_type"] == "categorical"
    assert sorted(result.drifted_columns) == ["body_mass_g", "has_tag"]


def test_missing_values_and_large_windows_use_distance_tests():
    reference = _sample(1500, seed=6)
    current = _sample(1200, seed=7)
    current.loc[current.sample(frac=0.2, random_state=0).index, "bill_depth_mm"] = np.nan
    current["flipper_length_mm"] += 3 * 14.0
    result = compute_drift(reference, current, columns=NUMERIC)
    assert result.drifted_columns == ["flipper_length_mm"]
    assert "Wasserstein" in result.per_column["flipper_length_mm"]["stattest"]
    assert result.dataset_drift is False  # 1 of 4 columns


def test_html_report(tmp_path, reference):
    current = _sample(200, seed=8)
    html = render_drift_html(reference, current, columns=["bill_length_mm", "island"])
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "bill_length_mm" in html
    out = tmp_path / "drift.html"
    compute_drift(reference, current, columns=["island"], html_path=out)
    assert "island" in out.read_text(encoding="utf-8")


def test_bad_input_is_explained(reference):
    with pytest.raises(DriftInputError, match="current has no rows"):
        compute_drift(reference, reference.iloc[0:0])
    with pytest.raises(DriftInputError, match="missing"):
        compute_drift(reference, reference.drop(columns=["sex"]), columns=["sex"])
    with pytest.raises(DriftInputError, match="share no column"):
        compute_drift(reference, pd.DataFrame({"other": [1, 2]}))
    with pytest.raises(DriftInputError, match=r"must be in \(0, 1\]"):
        compute_drift(reference, reference, drift_share_threshold=0)
    with pytest.raises(DriftInputError, match="numeric in the reference data"):
        compute_drift(reference, reference.assign(body_mass_g="heavy"), columns=["body_mass_g"])
