"""Per-column choices (imputation, encodings, outliers, datetime, text) and the two
preprocessors built from them: shapes, codes, cloning, pickling, no target leakage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlmesh_prep import FeaturePlan, plan_columns, prepare
from mlmesh_profile import profile_table


def _choices(frame: pd.DataFrame, y: pd.Series, kinds: dict[str, str], problem: str = "binary"):
    return {c.name: c for c in plan_columns(frame, y, kinds, problem)}


def _missing_frame(n: int = 500) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    base = rng.normal(size=n)
    frame = pd.DataFrame({
        "complete": rng.normal(size=n),
        "few_gaps": rng.normal(size=n),
        "strong": base + rng.normal(scale=0.2, size=n),   # correlated with 'anchor'
        "moderate": base + rng.normal(scale=1.5, size=n),  # |rho| about 0.4
        "unrelated": rng.normal(size=n),
        "sparse": rng.normal(size=n),
        "anchor": base,
        "informative": rng.normal(size=n),
    })  # fmt: skip
    y = pd.Series(rng.integers(0, 2, n))
    frame.loc[rng.random(n) < 0.02, "few_gaps"] = np.nan
    for col in ("strong", "moderate", "unrelated"):
        frame.loc[rng.random(n) < 0.2, col] = np.nan
    frame.loc[rng.random(n) < 0.7, "sparse"] = np.nan
    frame.loc[(y == 1) & (rng.random(n) < 0.06), "informative"] = np.nan  # only when y=1
    return frame, y


def test_imputation_is_chosen_by_missing_share_and_pattern() -> None:
    frame, y = _missing_frame()
    chosen = _choices(frame, y, dict.fromkeys(frame.columns, "numeric"))
    got = {n: (c.imputation, c.missing_indicator) for n, c in chosen.items()}
    assert got["complete"] == ("median", False)
    assert got["few_gaps"] == ("median", False)
    assert got["strong"] == ("iterative", True)  # 20% missing: indicator as well
    assert got["moderate"] == ("knn", True)
    assert got["unrelated"] == ("median", True)
    assert got["sparse"] == ("median", True)  # 70% missing: too sparse to model
    assert got["informative"] == ("median", True)
    assert "informative about the target" in " ".join(chosen["informative"].reasons)


def test_encoders_are_chosen_by_cardinality() -> None:
    rng = np.random.default_rng(0)
    n = 3_000
    frame = pd.DataFrame({
        "low": rng.choice(list("abcde"), n),
        "mid": rng.integers(0, 40, n).astype(str),
        "high": rng.integers(0, 300, n).astype(str),
        "huge": [f"k{i}" for i in rng.integers(0, 2_500, n)],
        "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L"],
                               ordered=True),
        "flag": rng.choice([True, False], n),
    })  # fmt: skip
    kinds = {**dict.fromkeys(frame.columns, "categorical"), "flag": "boolean"}
    chosen = _choices(frame, pd.Series(rng.integers(0, 2, n)), kinds)
    got = {name: (c.encoding, c.tree_encoding) for name, c in chosen.items()}
    assert got == {
        "low": ("one_hot", "code"), "mid": ("target", "code"), "high": ("target", "target"),
        "huge": ("hashing", "target"), "size": ("ordinal", "ordinal"), "flag": ("one_hot", "code"),
    }  # fmt: skip
    assert chosen["size"].categories == ["S", "M", "L"]


def _mixed(n: int = 240, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "when": pd.date_range("2021-01-01", periods=n, freq="37h").astype(str),
        "note": [" ".join(rng.choice(["late", "fast", "broken", "fine", "again"], 5))
                 for _ in range(n)],
        "city": rng.choice([f"c{i}" for i in range(30)], n),
        "plan": rng.choice(["basic", "pro", None], n),
        "spend": np.r_[rng.lognormal(3, 1, n - 5), [1e6] * 5],
        "age": rng.normal(40, 10, n),
    })  # fmt: skip
    df["label"] = np.where(df["age"] + rng.normal(0, 5, n) > 40, "yes", "no")
    return df


@pytest.fixture(scope="module")
def mixed_prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    df = _mixed()
    out = tmp_path_factory.mktemp("mixed")
    return prepare(df, profile_table(df), out, feature_engineering=False, n_folds=3), out


def test_datetime_text_and_outlier_choices_are_recorded(mixed_prepared: tuple[dict, Path]) -> None:
    prep, _ = mixed_prepared
    assert prep["feature_kinds"] == {"when": "datetime", "note": "text", "city": "categorical",
                                     "plan": "categorical", "spend": "numeric",
                                     "age": "numeric"}  # fmt: skip
    when = prep["columns"]["when"]
    assert when["encoding"] == "datetime_parts"
    assert {"year", "month", "weekday", "hour", "elapsed_days"} <= set(when["datetime_parts"])
    assert prep["columns"]["note"]["encoding"] == "tfidf"
    assert prep["columns"]["note"]["tree_encoding"] == "tfidf_svd"
    assert prep["encoding"]["city"] == {"dense": "target", "trees": "code"}
    assert prep["imputation"]["plan"] == "missing_category"  # a third is missing
    assert prep["outlier_treatment"]["clipped_columns"] == ["spend"]
    assert prep["columns"]["age"]["outliers"] == "none"
    assert prep["feature_engineering"]["enabled"] is False


def test_both_preprocessors_transform_clone_and_keep_codes_first(
    mixed_prepared: tuple[dict, Path],
) -> None:
    prep, out = mixed_prepared
    assert "preprocessor_trees.joblib" in prep["files"]
    train = pd.read_parquet(out / "train.parquet")
    valid = pd.read_parquet(out / "valid.parquet")
    features = prep["feature_columns"]
    y = (train["label"] == "yes").astype(int).to_numpy()
    dense = joblib.load(out / "preprocessor.joblib")
    trees = joblib.load(out / "preprocessor_trees.joblib")
    xd, xt = dense.transform(valid[features]), trees.transform(valid[features])
    assert xd.shape == (len(valid), prep["n_transformed_features"])
    assert xt.shape == (len(valid), prep["n_tree_features"])
    assert np.isfinite(xd).all()
    codes = prep["tree_categorical_features"]
    assert codes == [0, 1]  # city and plan, placed first
    assert (xt[:, codes][~np.isnan(xt[:, codes])] % 1 == 0).all()
    fit_xt = trees.transform(train[features])
    assert not np.isnan(fit_xt[:, codes]).any() and fit_xt[:, codes].min() >= 0
    # dense: scaled (train mean ~0 on the numbers); trees: raw values
    names = list(trees.get_feature_names_out())
    age = names.index("num__age")
    assert np.allclose(fit_xt[:, age], train["age"])
    for pre in (dense, trees):
        fresh = clone(pre).fit(train[features].head(120), y[:120])
        assert fresh.transform(valid[features]).shape[0] == len(valid)
    with pytest.raises(ValueError, match="fitted with the target"):
        clone(dense).fit(train[features])


def test_preprocessors_load_with_only_mlmesh_common(mixed_prepared: tuple[dict, Path]) -> None:
    prep, out = mixed_prepared
    code = (
        "import joblib, sys, pandas as pd\n"
        f"df = pd.read_parquet({str(out / 'valid.parquet')!r})\n"
        "for name in ('preprocessor.joblib', 'preprocessor_trees.joblib'):\n"
        f"    pre = joblib.load({str(out)!r} + '/' + name)\n"
        "    print(pre.transform(df).shape[1], end=' ')\n"
        "assert 'mlmesh_prep' not in sys.modules, 'unpickling imported mlmesh_prep'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(prep["n_transformed_features"]),
                                   str(prep["n_tree_features"])]  # fmt: skip
    assert json.loads((out / "prep.json").read_text()) == prep


def test_plan_builds_without_generated_features_as_a_column_transformer() -> None:
    frame, y = _missing_frame(100)
    plan = FeaturePlan(plan_columns(frame, y, dict.fromkeys(frame.columns, "numeric"),
                                    "binary"), "binary")  # fmt: skip
    assert type(plan.dense()).__name__ == "ColumnTransformer"
    with_generated = plan.with_changes(
        generated=[{"name": "p", "op": "mul", "inputs": ["anchor", "strong"]}]
    )
    pre = with_generated.dense()
    assert type(pre).__name__ == "Pipeline"
    assert pre.fit_transform(frame, y).shape[1] == plan.dense().fit_transform(frame).shape[1] + 1
