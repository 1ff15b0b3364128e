"""Split strategies: groups never cross splits or folds, time order, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmesh_prep import InvalidSplitError, prepare, split_rows
from mlmesh_prep.service import fe_budget_s
from mlmesh_profile import profile_table


def _patients(n_patients: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 9, n_patients)
    patient = np.repeat([f"p{i:02d}" for i in range(n_patients)], sizes)
    n = len(patient)
    return pd.DataFrame({
        "patient": patient,
        "visit": pd.date_range("2020-01-01", periods=n, freq="D")[rng.permutation(n)],
        "dose": rng.normal(size=n),
        "outcome": rng.choice(["good", "bad"], n),
    })  # fmt: skip


def test_group_split_keeps_every_group_in_one_split_and_one_fold(tmp_path: Path) -> None:
    df = _patients()
    prep = prepare(df, profile_table(df, target_hint="outcome"), tmp_path, split_strategy="group",
                   group_column="patient", n_folds=4, feature_engineering=False)  # fmt: skip
    assert prep["split_strategy"] == "group" and prep["group_column"] == "patient"
    assert prep["fold_strategy"] in ("StratifiedGroupKFold", "GroupKFold")
    assert "patient" not in prep["feature_columns"]
    assert prep["dropped_columns"]["patient"].startswith("group column")
    parts = {n: pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("train", "valid", "test")}
    groups = {n: set(p["patient"]) for n, p in parts.items()}
    assert not (groups["train"] & groups["valid"] or groups["train"] & groups["test"]
                or groups["valid"] & groups["test"])  # fmt: skip
    assert sum(len(p) for p in parts.values()) == len(df)
    folds = pd.read_parquet(tmp_path / "folds.parquet")["fold"]
    per_group = parts["train"].assign(fold=folds.to_numpy()).groupby("patient")["fold"].nunique()
    assert (per_group == 1).all() and folds.nunique() == 4


def test_time_split_orders_rows_and_folds_by_the_named_column() -> None:
    df = _patients()
    notes: list[str] = []
    split = split_rows(len(df), "time", labels=None, groups=None, times=df["visit"], seed=0,
                       test_size=0.2, valid_size=0.1, n_folds=3, notes=notes)  # fmt: skip
    when = df["visit"].to_numpy()
    assert when[split.train].max() < when[split.valid].min()
    assert when[split.valid].max() < when[split.test].min()
    assert (np.diff(when[split.train].astype(np.int64)) > 0).all()  # train in time order
    assert (np.diff(split.folds) >= 0).all() and split.fold_order == "time"
    fold_ends = [when[split.train][split.folds == k].max() for k in range(3)]
    assert fold_ends == sorted(fold_ends)


def test_explicit_strategies_and_errors(tmp_path: Path) -> None:
    df = _patients()
    profile = profile_table(df, target_hint="outcome")
    prep = prepare(df, profile, tmp_path / "t", split_strategy="time", time_column="visit",
                   feature_engineering=False)  # fmt: skip
    assert (prep["split_strategy"], prep["time_column"], prep["fold_order"]) == (
        "time",
        "visit",
        "time",
    )
    train = pd.read_parquet(tmp_path / "t" / "train.parquet")
    test = pd.read_parquet(tmp_path / "t" / "test.parquet")
    assert train["visit"].max() < test["visit"].min()
    prep = prepare(df, profile, tmp_path / "r", split_strategy="random", feature_engineering=False)
    assert (prep["split_strategy"], prep["stratified"]) == ("random", False)
    with pytest.raises(InvalidSplitError, match="group_column 'ward' is not a column"):
        prepare(df, profile, tmp_path, split_strategy="group", group_column="ward")
    with pytest.raises(InvalidSplitError, match="needs group_column"):
        prepare(df, profile, tmp_path, split_strategy="group")
    with pytest.raises(InvalidSplitError, match="time_column 'when' is not"):
        prepare(df, profile, tmp_path, split_strategy="time", time_column="when")
    with pytest.raises(InvalidSplitError, match="needs time_column"):
        prepare(df, profile, tmp_path, split_strategy="time")
    with pytest.raises(InvalidSplitError, match="not one of"):
        prepare(df, profile, tmp_path, split_strategy="sideways")
    few = df[df["patient"].isin(["p00", "p01", "p02", "p03"])]
    with pytest.raises(InvalidSplitError, match="4 distinct groups"):
        prepare(few, profile, tmp_path, split_strategy="group", group_column="patient")
    assert not (tmp_path / "prep.json").exists()


def test_fe_budget_follows_the_experiment_budget() -> None:
    assert fe_budget_s(0) == 30.0
    assert fe_budget_s(60) == pytest.approx(6.0)
    assert fe_budget_s(3_600) == 30.0
