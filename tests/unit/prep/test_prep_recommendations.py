"""prepare reads the profile's recommendations: leaky and redundant columns, duplicate
rows, chronological splits for forecasting, label sets for multilabel targets."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins

from mlmesh_common.modeling import load_prepared
from mlmesh_prep import InvalidProfileError
from mlmesh_prep import prepare as prepare_with_fe
from mlmesh_prep.preparation import encode_label_sets
from mlmesh_profile import profile_table

#: These tests are about splits, cleaning and recommendations; feature engineering (slow,
#: tested in test_prep_engineering.py) stays off.
prepare = partial(prepare_with_fe, feature_engineering=False)


def _leaky(n: int = 1_200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=n)
    y = np.where(signal + rng.normal(size=n) > 0, "won", "lost")
    df = pd.DataFrame({
        "signal": signal,
        "plan": rng.choice(["basic", "pro"], n),
        "refund_amount": np.where(y == "won", rng.uniform(10, 50, n), 0.0),
        "celsius": rng.normal(20, 5, n),
        "target": y,
    })  # fmt: skip
    df["fahrenheit"] = df["celsius"] * 9 / 5 + 32
    return pd.concat([df, df.iloc[:30]], ignore_index=True)  # 30 repeated records


def test_leaky_redundant_columns_and_duplicate_rows_are_dropped(tmp_path: Path) -> None:
    df = _leaky()
    profile = profile_table(df)
    prep = prepare(df, profile, tmp_path)
    dropped = prep["dropped_columns"]
    assert set(dropped) == {"refund_amount", "fahrenheit"}
    assert dropped["refund_amount"].startswith("profile (leakage): 'refund_amount' alone predicts")
    assert dropped["fahrenheit"].startswith("profile (redundant): carries the same information")
    assert prep["feature_columns"] == ["signal", "plan", "celsius"]
    assert prep["rows_dropped_duplicates"] == 30
    assert sum(prep["split_sizes"].values()) == len(df) - 30 == prep["rows_in"] - 30
    assert {r["action"] for r in prep["recommendations_applied"]} == {"drop",
                                                                      "drop_duplicate_rows"}
    assert any("dropped 30 duplicate rows" in w for w in prep["warnings"])
    splits = [pd.read_parquet(tmp_path / f"{name}.parquet") for name in ("train", "valid", "test")]
    rows = pd.concat(splits)
    assert not rows.duplicated().any()  # no record on both sides of a split
    assert "refund_amount" not in rows.columns


def test_profiles_without_recommendations_still_work(tmp_path: Path) -> None:
    df = _leaky()
    profile = profile_table(df)
    legacy = {k: v for k, v in profile.items() if k != "recommendations"}
    prep = prepare(df, legacy, tmp_path)
    assert set(prep["dropped_columns"]) == set()
    assert prep["rows_dropped_duplicates"] == 0 and prep["recommendations_applied"] == []
    assert prep["split_strategy"] == "stratified"


def test_unusable_or_odd_recommendations(tmp_path: Path) -> None:
    penguins = load_penguins()
    profile = profile_table(penguins)
    with pytest.raises(InvalidProfileError, match="recommendations must be a list"):
        prepare(penguins, {**profile, "recommendations": [{"column": "sex"}]}, tmp_path)
    odd = {**profile, "recommendations": [
        {"action": "drop", "column": "species", "check": "x", "reason": "r"},
        {"action": "drop", "column": "wingspan", "check": "x", "reason": "r"},
        {"action": "drop", "column": "year", "check": "manual", "reason": "not wanted"},
        {"action": "transform", "column": "body_mass_g", "check": "skew", "reason": "r"},
    ]}  # fmt: skip
    prep = prepare(penguins, odd, tmp_path / "odd")
    assert prep["dropped_columns"] == {"year": "profile (manual): not wanted"}
    assert prep["target"] == "species"
    text = " | ".join(prep["warnings"])
    assert "dropping the target 'species'; ignored" in text
    assert "'wingspan', which is not in the table" in text
    assert [r["column"] for r in prep["recommendations_applied"]] == ["year"]


def _series(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "day": pd.date_range("2022-01-01", periods=n, freq="D"),
        "temperature": rng.normal(15, 5, n),
        "promo": rng.choice(["yes", "no"], n),
    })  # fmt: skip
    df["sales"] = 100 + np.arange(n) * 0.1 + df["temperature"] + rng.normal(size=n)
    return df


def test_forecasting_gets_a_chronological_split_and_contiguous_folds(tmp_path: Path) -> None:
    df = _series()
    profile = profile_table(df)
    assert profile["task"]["kind"] == "time_series_forecasting"
    prep = prepare(df, profile, tmp_path, seed=3)
    assert (prep["split_strategy"], prep["time_column"]) == ("time", "day")
    assert prep["stratified"] is False and prep["fold_strategy"].startswith("KFold (contiguous")
    assert prep["fold_order"] == "time"
    day_of = dict(zip(df["temperature"], df["day"], strict=True))
    days = {name: pd.read_parquet(tmp_path / f"{name}.parquet")["temperature"].map(day_of)
            for name in ("train", "valid", "test")}  # fmt: skip
    assert days["train"].is_monotonic_increasing
    assert days["train"].max() < days["valid"].min() <= days["valid"].max() < days["test"].min()
    assert len(days["test"]) == 90 and days["test"].max() == df["day"].max()
    folds = pd.read_parquet(tmp_path / "folds.parquet")["fold"]
    assert folds.is_monotonic_increasing and sorted(folds.unique()) == list(range(5))
    data = load_prepared(tmp_path)
    assert data.X_train.shape == (len(days["train"]), 3)  # the day is a feature too

    shuffled = df.sample(frac=1, random_state=0).reset_index(drop=True)
    again = prepare(shuffled, {**profile}, tmp_path / "shuffled", seed=3)
    assert pd.read_parquet(tmp_path / "shuffled" / "test.parquet").equals(
        pd.read_parquet(tmp_path / "test.parquet")
    )  # the split follows time, not row order
    assert again["split_sizes"] == prep["split_sizes"]


def test_multilabel_targets_are_encoded_as_label_sets(tmp_path: Path) -> None:
    n = 900
    rng = np.random.default_rng(2)
    labels = ["action", "comedy", "drama", "horror"]
    genres = [", ".join(rng.choice(labels, rng.integers(1, 3), replace=False)) for _ in range(n)]
    df = pd.DataFrame({"budget": rng.normal(size=n), "year": rng.integers(1990, 2020, n),
                       "genres": genres})  # fmt: skip
    df.loc[:9, "genres"] = None
    profile = profile_table(df, target_hint="genres")
    prep = prepare(df, profile, tmp_path)
    assert prep["problem_type"] == "multiclass" and prep["target_encoding"] == "label_powerset"
    assert prep["class_labels"] == sorted(profile["class_balance"])
    assert "action|comedy" in prep["class_labels"] and "comedy|action" not in prep["class_labels"]
    assert prep["rows_dropped_missing_target"] == 10
    train = pd.read_parquet(tmp_path / "train.parquet")
    assert train["genres"].isin(prep["class_labels"]).all()
    assert load_prepared(tmp_path).y_train.nunique() == len(prep["class_labels"])


def test_encode_label_sets() -> None:
    cells = pd.Series(["b; a", "a;b;a", None, ["z", "y"], np.array(["q"]), " "], dtype=object)
    encoded = encode_label_sets(cells, ";")
    assert encoded[[0, 1, 3, 4]].tolist() == ["a|b", "a|b", "y|z", "q"]
    assert encoded[[2, 5]].isna().all()  # missing, and a set with no label


def test_a_datetime_index_is_read_like_the_profile_reads_it(tmp_path: Path) -> None:
    indexed = _series().set_index("day")
    profile = profile_table(indexed)
    prep = prepare(indexed, profile, tmp_path)
    assert (prep["split_strategy"], prep["time_column"]) == ("time", "day")
    assert prep["dropped_columns"] == {}
    assert prep["columns"]["day"]["encoding"] == "datetime_parts"
