"""profile_table on real datasets (penguins, breast cancer, diabetes) and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_diabetes

from mlmesh_profile import (
    EmptyTableError,
    InvalidMetricError,
    InvalidProblemTypeError,
    TargetNotFoundError,
    UnusableTargetError,
    column_kind,
    profile_table,
)

PROFILE_KEYS = {
    "n_rows",
    "n_columns",
    "target",
    "target_reasons",
    "problem_type",
    "metric",
    "class_balance",
    "columns",
    "duplicate_rows",
    "warnings",
}
COLUMN_KEYS = {
    "name",
    "dtype",
    "kind",
    "count",
    "missing",
    "unique",
    "mean",
    "std",
    "min",
    "q25",
    "median",
    "q75",
    "max",
    "top_values",
}


def _strict_json(profile: dict) -> dict:
    return json.loads(json.dumps(profile, allow_nan=False))


def test_penguins_is_multiclass_on_species() -> None:
    df = load_penguins()
    profile = profile_table(df)

    assert PROFILE_KEYS <= set(profile)  # the original keys stay; later versions add
    assert _strict_json(profile) == profile
    assert (profile["n_rows"], profile["n_columns"]) == (344, 8)
    assert profile["target"] == "species"
    assert "species" in profile["target_reasons"][0]
    assert profile["problem_type"] == "multiclass"
    assert profile["metric"] == "accuracy"
    assert profile["class_balance"] == {"Adelie": 152, "Gentoo": 124, "Chinstrap": 68}
    assert profile["duplicate_rows"] == 0

    cols = {c["name"]: c for c in profile["columns"]}
    assert all(COLUMN_KEYS <= set(c) for c in profile["columns"])
    assert [c["name"] for c in profile["columns"]] == list(df.columns)
    assert cols["island"]["kind"] == "categorical"
    assert cols["island"]["top_values"][0] == ["Biscoe", 168]
    assert cols["island"]["mean"] is None
    bill = cols["bill_length_mm"]
    assert bill["kind"] == "numeric"
    assert (bill["count"], bill["missing"]) == (342, 2)
    assert bill["mean"] == pytest.approx(df["bill_length_mm"].mean())
    assert bill["std"] == pytest.approx(df["bill_length_mm"].std())
    assert bill["median"] == pytest.approx(df["bill_length_mm"].median())
    assert (bill["min"], bill["max"]) == (32.1, 59.6)
    assert bill["q25"] <= bill["median"] <= bill["q75"]
    assert cols["sex"]["missing"] == 11
    assert cols["year"]["unique"] == 3


def test_penguins_hints_override() -> None:
    profile = profile_table(load_penguins(), target_hint="island", metric_hint="f1_macro")
    assert profile["target"] == "island"
    assert profile["target_reasons"] == ["column 'island' was given as the target"]
    assert (profile["problem_type"], profile["metric"]) == ("multiclass", "f1_macro")
    regression = profile_table(load_penguins(), target_hint="body_mass_g")
    assert (regression["problem_type"], regression["metric"]) == ("regression", "rmse")
    assert regression["class_balance"] == {}
    assert any("missing in 2 rows" in w for w in regression["warnings"])


def test_breast_cancer_is_binary_roc_auc() -> None:
    profile = profile_table(load_breast_cancer(as_frame=True).frame)
    assert profile["target"] == "target"
    assert (profile["problem_type"], profile["metric"]) == ("binary", "roc_auc")
    assert profile["class_balance"] == {"1": 357, "0": 212}
    kinds = {c["name"]: c["kind"] for c in profile["columns"]}
    assert kinds["mean radius"] == "numeric"
    assert kinds["target"] == "boolean"
    assert _strict_json(profile) == profile


def test_diabetes_is_regression_and_metric_hints_are_checked() -> None:
    df = load_diabetes(as_frame=True).frame
    profile = profile_table(df)
    assert (profile["problem_type"], profile["metric"]) == ("regression", "rmse")
    assert profile_table(df, metric_hint="MAE")["metric"] == "mae"
    with pytest.raises(InvalidMetricError, match="use one of rmse, mae, r2"):
        profile_table(df, metric_hint="accuracy")
    with pytest.raises(InvalidMetricError, match="not a known metric"):
        profile_table(df, metric_hint="gini")
    with pytest.raises(InvalidProblemTypeError, match="2 classes|binary"):
        profile_table(df, target_hint="sex", problem_type_hint="multiclass")
    # a numeric target can be forced to classification and vice versa
    forced = profile_table(df, target_hint="sex", problem_type_hint="classification")
    assert forced["problem_type"] == "binary"
    assert (
        profile_table(df, target_hint="sex", problem_type_hint="regression")["problem_type"]
        == "regression"
    )


def _rng_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "age": rng.integers(18, 80, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "score": rng.normal(0, 1, n),
        }
    )


def test_target_detection_by_name_case_and_separator_insensitive() -> None:
    df = _rng_frame()
    df.insert(1, "Outcome", np.random.default_rng(0).choice(["won", "lost"], len(df)))
    profile = profile_table(df)
    assert profile["target"] == "Outcome"
    assert profile["problem_type"] == "binary"


def test_target_priority_and_skipping_unusable_named_columns() -> None:
    df = _rng_frame()
    df["label"] = "same"  # named like a target, but constant
    df["y"] = np.random.default_rng(1).integers(0, 3, len(df))
    profile = profile_table(df)
    assert profile["target"] == "y"
    assert "constant" in profile["target_reasons"][0]
    assert profile["problem_type"] == "multiclass"  # 3 integer values in 400 rows


def test_target_falls_back_to_last_usable_column() -> None:
    df = _rng_frame()
    df["row_id"] = np.arange(len(df))
    profile = profile_table(df)
    assert profile["target"] == "score"
    assert "row_id" in profile["target_reasons"][0]
    assert "last usable column 'score'" in profile["target_reasons"][-1]
    assert profile["problem_type"] == "regression"


def test_integer_target_with_many_values_is_regression() -> None:
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=300), "target": rng.integers(0, 60, 300)})
    assert profile_table(df)["problem_type"] == "regression"
    df["target"] = rng.integers(0, 6, 300).astype(float)  # integral floats, few values
    assert profile_table(df)["problem_type"] == "multiclass"
    df["target"] = rng.choice([3.0, 7.0], 300)
    assert profile_table(df)["problem_type"] == "binary"


def test_column_kinds() -> None:
    n = 60
    rng = np.random.default_rng(9)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    df = pd.DataFrame(
        {
            "OrderId": rng.permutation(10_000)[:n],
            "sku": [f"SKU-{i:04d}" for i in rng.permutation(n)],
            "index": np.arange(n) + 100,
            "country": "NO",
            "empty": np.nan,
            "subscribed": rng.choice(["Yes", "No"], n),
            "flag01": rng.integers(0, 2, n),
            "active": rng.choice([True, False], n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="D"),
            "signup_text": [f"2024-02-{(i % 28) + 1:02d} 10:{i % 60:02d}" for i in range(n)],
            "review": [" ".join(rng.choice(words, 12)) for _ in range(n)],
            "colour": rng.choice(["red", "blue"], n),
            "size": rng.choice(["S", "M", "L"], n),
            "weight": rng.normal(5, 1, n),
            "count": rng.integers(0, 1000, n),
            "target": rng.choice(["a", "b"], n),
        }
    )
    kinds = {c["name"]: c["kind"] for c in profile_table(df)["columns"]}
    assert kinds == {
        "OrderId": "id",
        "sku": "id",
        "index": "id",
        "country": "constant",
        "empty": "constant",
        "subscribed": "boolean",
        "flag01": "boolean",
        "active": "boolean",
        "signup": "datetime",
        "signup_text": "datetime",
        "review": "text",
        "colour": "categorical",
        "size": "categorical",
        "weight": "numeric",
        "count": "numeric",
        "target": "categorical",
    }
    # a permutation of 0..n-1 under a neutral name is still an id; unique floats are not
    assert column_kind(pd.Series(rng.permutation(n), name="k")) == "id"
    assert column_kind(pd.Series(rng.normal(size=n), name="k")) == "numeric"


def test_nan_and_infinity_become_none_and_warnings_are_raised() -> None:
    n = 200
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {
            "mostly_missing": np.where(rng.random(n) < 0.8, np.nan, rng.normal(size=n)),
            "with_inf": np.r_[np.inf, rng.normal(size=n - 1)],
            "as_text": [str(v) for v in rng.integers(0, 30, n)],
            "target": np.r_[["rare"] * 3, rng.choice(["a", "b"], n - 3)],
        }
    )
    df = pd.concat([df, df.iloc[-4:]], ignore_index=True)  # 4 duplicate rows
    profile = profile_table(df)
    assert _strict_json(profile) == profile
    cols = {c["name"]: c for c in profile["columns"]}
    assert cols["with_inf"]["max"] < np.inf
    assert profile["duplicate_rows"] == 4
    text = " | ".join(profile["warnings"])
    assert "4 duplicate rows" in text
    assert "'mostly_missing' is" in text and "missing" in text
    assert "'with_inf' contains infinite values" in text
    assert "'as_text' holds numbers stored as text" in text
    assert "imbalanced classes: 'rare'" in text
    assert "fewer than 5 rows: rare" in text


def test_all_nan_numeric_column_has_null_stats() -> None:
    df = pd.DataFrame({"x": [np.nan] * 30, "target": ["a", "b"] * 15})
    col = profile_table(df)["columns"][0]
    assert col["kind"] == "constant"
    assert all(col[k] is None for k in ("mean", "std", "min", "max"))
    assert col["top_values"] == []


def test_errors() -> None:
    df = _rng_frame(50)
    with pytest.raises(TargetNotFoundError, match="customer_id, age, plan, score"):
        profile_table(df, target_hint="churned")
    assert profile_table(df, target_hint="PLAN")["target"] == "plan"

    df["target"] = np.nan
    with pytest.raises(UnusableTargetError, match="every value is missing"):
        profile_table(df, target_hint="target")
    assert profile_table(df)["target"] == "score"  # auto-detection skips the empty column
    df["target"] = "only"
    with pytest.raises(UnusableTargetError, match="single value"):
        profile_table(df, target_hint="target")
    with pytest.raises(UnusableTargetError, match="different value in every row"):
        profile_table(df, target_hint="customer_id")
    with pytest.raises(InvalidProblemTypeError, match="needs a numeric target"):
        profile_table(df, target_hint="plan", problem_type_hint="regression")
    with pytest.raises(InvalidProblemTypeError, match="use one of binary, multiclass"):
        profile_table(df, target_hint="plan", problem_type_hint="clustering")
    with pytest.raises(EmptyTableError, match="no rows"):
        profile_table(df.iloc[:0])
    with pytest.raises(EmptyTableError, match="no columns"):
        profile_table(pd.DataFrame())
    for error in (TargetNotFoundError, UnusableTargetError, InvalidMetricError):
        assert issubclass(error, ValueError)
