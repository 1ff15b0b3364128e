"""prepare: penguins end to end through profile_table, plus cleaning, fallbacks and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.base import clone
from sklearn.datasets import load_diabetes

from mlmesh_prep import (
    FILES,
    InvalidSplitError,
    NoFeaturesError,
    NotEnoughRowsError,
    ProfileMismatchError,
)
from mlmesh_prep import (
    prepare as prepare_with_fe,
)
from mlmesh_profile import profile_table

#: These tests are about splits, cleaning and recommendations; feature engineering (slow,
#: tested in test_prep_engineering.py) stays off.
prepare = partial(prepare_with_fe, feature_engineering=False)


def _row_keys(df: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(df, index=False)


def _load(out: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    prep = json.loads((out / "prep.json").read_text())
    parts = [pd.read_parquet(out / f"{name}.parquet") for name in ("train", "valid", "test")]
    return prep, *parts, pd.read_parquet(out / "folds.parquet")


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return load_penguins()


@pytest.fixture(scope="module")
def penguins_prepared(
    penguins: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("prep") / "prepared"
    return prepare(penguins, profile_table(penguins), out), out


def test_penguins_files_and_prep_json(penguins_prepared: tuple[dict, Path]) -> None:
    result, out = penguins_prepared
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    prep, train, valid, test, folds = _load(out)
    assert prep == result
    assert (prep["target"], prep["problem_type"], prep["metric"]) == (
        "species",
        "multiclass",
        "accuracy",
    )
    assert prep["class_labels"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert set(prep["numeric_columns"]) == {
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    }
    assert prep["categorical_columns"] == ["island", "sex"]
    assert prep["feature_columns"] == [c for c in load_penguins().columns if c != "species"]
    assert prep["dropped_columns"] == {}
    assert (prep["n_folds"], prep["seed"]) == (5, 42)
    assert prep["stratified"] is True
    # original values and dtypes, features plus target, nothing encoded
    assert list(train.columns) == [*load_penguins().columns]
    assert train["species"].isin(["Adelie", "Chinstrap", "Gentoo"]).all()
    assert pd.api.types.is_float_dtype(train["bill_length_mm"])
    assert (
        train["bill_length_mm"].isna().sum()
        + valid["bill_length_mm"].isna().sum()
        + test["bill_length_mm"].isna().sum()
        == 2
    )


def test_penguins_splits_are_disjoint_and_sized(
    penguins: pd.DataFrame, penguins_prepared: tuple[dict, Path]
) -> None:
    prep, train, valid, test, _ = _load(penguins_prepared[1])
    sizes = prep["split_sizes"]
    assert (len(train), len(valid), len(test)) == (sizes["train"], sizes["valid"], sizes["test"])
    assert sum(sizes.values()) == len(penguins) == 344
    assert sizes["test"] == pytest.approx(0.15 * 344, abs=1)
    assert sizes["valid"] == pytest.approx(0.15 * 344, abs=1)
    keys = [set(_row_keys(part)) for part in (train, valid, test)]
    assert all(len(k) == len(p) for k, p in zip(keys, (train, valid, test), strict=True))
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert keys[0] | keys[1] | keys[2] == set(_row_keys(penguins))


def test_penguins_stratification_keeps_every_class_in_every_split(
    penguins: pd.DataFrame, penguins_prepared: tuple[dict, Path]
) -> None:
    _, train, valid, test, _ = _load(penguins_prepared[1])
    overall = penguins["species"].value_counts(normalize=True)
    for part in (train, valid, test):
        share = part["species"].value_counts(normalize=True)
        assert set(share.index) == set(overall.index)
        assert (share - overall).abs().max() < 0.03


def test_penguins_folds_are_balanced_and_stratified(penguins_prepared: tuple[dict, Path]) -> None:
    prep, train, _, _, folds = _load(penguins_prepared[1])
    assert list(folds.columns) == ["fold"]
    assert pd.api.types.is_integer_dtype(folds["fold"])
    assert len(folds) == len(train)
    sizes = folds["fold"].value_counts()
    assert sorted(sizes.index) == list(range(prep["n_folds"]))
    assert sizes.max() - sizes.min() <= 2
    per_class = pd.crosstab(train["species"], folds["fold"])
    assert (per_class.max(axis=1) - per_class.min(axis=1)).max() <= 1


def test_penguins_preprocessor_transforms_and_clones(penguins_prepared: tuple[dict, Path]) -> None:
    prep, train, valid, test, folds = _load(penguins_prepared[1])
    pre = joblib.load(penguins_prepared[1] / "preprocessor.joblib")
    features = prep["feature_columns"]
    x_valid = pre.transform(valid[features])
    assert x_valid.shape == (len(valid), prep["n_transformed_features"])
    assert prep["n_transformed_features"] == 5 + 3 + 2  # numbers + islands + sexes
    assert np.isfinite(x_valid).all()
    x_train = pre.transform(train[features])
    num = x_train[:, :5]
    assert np.allclose(num.mean(axis=0), 0, atol=1e-9)  # scaled on train
    # unseen categories and missing values are tolerated
    odd = test[features].head(2).copy()
    odd["island"] = ["Atlantis", None]
    odd["bill_length_mm"] = np.nan
    assert np.isfinite(pre.transform(odd)).all()
    # every CV fold fits its own copy
    fold_mask = folds["fold"].to_numpy() == 0
    fresh = clone(pre).fit(train.loc[~fold_mask, features])
    assert fresh.transform(train.loc[fold_mask, features]).shape[1] == x_valid.shape[1]


def test_preprocessor_loads_without_mlmesh_prep(penguins_prepared: tuple[dict, Path]) -> None:
    out = penguins_prepared[1]
    code = (
        "import joblib, pandas as pd, sys; "
        "assert 'mlmesh_prep' not in sys.modules; "
        f"pre = joblib.load({str(out / 'preprocessor.joblib')!r}); "
        f"df = pd.read_parquet({str(out / 'valid.parquet')!r}); "
        "print(pre.transform(df.drop(columns=['species'])).shape)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(52, 10)"


def test_same_seed_same_split_other_seed_different(penguins: pd.DataFrame, tmp_path: Path) -> None:
    profile = profile_table(penguins)
    prepare(penguins, profile, tmp_path / "a", seed=7)
    prepare(penguins, profile, tmp_path / "b", seed=7)
    prepare(penguins, profile, tmp_path / "c", seed=8)
    for name in ("train", "valid", "test", "folds"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "a" / f"{name}.parquet"),
            pd.read_parquet(tmp_path / "b" / f"{name}.parquet"),
        )
    a = set(_row_keys(pd.read_parquet(tmp_path / "a" / "test.parquet")))
    c = set(_row_keys(pd.read_parquet(tmp_path / "c" / "test.parquet")))
    assert a != c


def _messy_frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    df = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "signup": [f"2023-{(i % 12) + 1:02d}-{(i % 28) + 1:02d}" for i in range(n)],
            "note": [
                " ".join(rng.choice(["very", "late", "parcel", "again", "ok"], 10))
                for _ in range(n)
            ],
            "source": "web",
            "plan": pd.Series(rng.choice(["basic", "pro", "team"], n), dtype=object),
            "tenure": rng.normal(12, 4, n),
            "vip": rng.choice([True, False], n),
            "churn": pd.Series(rng.choice(["yes", "no"], n), dtype=object),
        }
    )
    df.loc[::10, "churn"] = None  # 30 rows without target
    df.loc[5, "tenure"] = np.inf
    df.loc[[1, 2, 3], "plan"] = [7, 8.5, None]  # mixed types
    return df


def test_dropped_columns_missing_targets_and_cleaning(tmp_path: Path) -> None:
    df = _messy_frame()
    profile = profile_table(df)
    assert profile["target"] == "churn"
    prep = prepare(df, profile, tmp_path / "out")
    assert prep["dropped_columns"] == {
        "customer_id": "identifier: a distinct value per row carries no signal",
        "source": "constant: at most one distinct value",
    }
    # datetime and free text are features now (calendar parts, TF-IDF)
    assert prep["feature_columns"] == ["signup", "note", "plan", "tenure", "vip"]
    assert prep["feature_kinds"] == {
        "signup": "datetime",
        "note": "text",
        "plan": "categorical",
        "tenure": "numeric",
        "vip": "boolean",
    }
    assert prep["datetime_columns"] == ["signup"] and prep["text_columns"] == ["note"]
    assert prep["numeric_columns"] == ["tenure"]
    assert prep["categorical_columns"] == ["plan", "vip"]
    assert prep["rows_dropped_missing_target"] == 30
    assert sum(prep["split_sizes"].values()) == 270
    assert prep["class_labels"] == ["no", "yes"]
    assert prep["problem_type"] == "binary"
    text = " | ".join(prep["warnings"])
    assert "dropped 30 rows" in text
    assert "'tenure': 1 infinite values set to missing" in text
    assert "'plan' mixes value types" in text
    _, train, valid, test, _ = _load(tmp_path / "out")
    assert list(train.columns) == ["signup", "note", "plan", "tenure", "vip", "churn"]
    whole = pd.concat([train, valid, test])
    assert whole["churn"].notna().all()
    assert not np.isinf(whole["tenure"].dropna()).any()
    pre = joblib.load(tmp_path / "out" / "preprocessor.joblib")
    assert np.isfinite(pre.transform(valid[prep["feature_columns"]])).all()


def test_regression_uses_plain_kfold(tmp_path: Path) -> None:
    df = load_diabetes(as_frame=True).frame
    prep = prepare(df, profile_table(df), tmp_path, n_folds=3, test_size=0.2, valid_size=0.1)
    assert prep["problem_type"] == "regression"
    assert (prep["stratified"], prep["fold_strategy"]) == (False, "KFold")
    assert prep["class_labels"] == []
    assert prep["categorical_columns"] == []
    assert prep["split_sizes"]["test"] == pytest.approx(0.2 * 442, abs=1)
    folds = pd.read_parquet(tmp_path / "folds.parquet")["fold"]
    assert sorted(folds.unique()) == [0, 1, 2]
    assert folds.value_counts().max() - folds.value_counts().min() <= 1


def test_tiny_class_falls_back_to_random_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {"x": rng.normal(size=200), "target": np.r_[["rare"] * 2, rng.choice(["a", "b"], 198)]}
    )
    prep = prepare(df, profile_table(df), tmp_path)
    assert prep["stratified"] is False
    assert any("fewer than 3 rows" in w for w in prep["warnings"])
    assert "rare" in prep["class_labels"]


def test_errors(penguins: pd.DataFrame, tmp_path: Path) -> None:
    profile = profile_table(penguins)
    with pytest.raises(InvalidSplitError, match="sum below 1"):
        prepare(penguins, profile, tmp_path, test_size=0.6, valid_size=0.5)
    with pytest.raises(InvalidSplitError, match="at least 2"):
        prepare(penguins, profile, tmp_path, n_folds=1)
    with pytest.raises(ProfileMismatchError, match=r"profiled columns missing.*'year'"):
        prepare(penguins.drop(columns=["year"]), profile, tmp_path)
    with pytest.raises(ProfileMismatchError, match="target 'species'"):
        prepare(penguins.rename(columns={"species": "kind"}), profile, tmp_path)
    with pytest.raises(NotEnoughRowsError, match="too few"):
        prepare(penguins.groupby("species").head(2), profile, tmp_path)
    only_id = pd.DataFrame({"row_id": range(50), "target": ["a", "b"] * 25})
    with pytest.raises(NoFeaturesError, match="'row_id'"):
        prepare(only_id, profile_table(only_id), tmp_path)
    assert not (tmp_path / "prep.json").exists()
