"""Target detection, task (multilabel, time series) and metric choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine

from mlmesh_profile import (
    InvalidProblemTypeError,
    TargetNotFoundError,
    UnusableTargetError,
    profile_table,
)
from mlmesh_profile._common import PROBLEM_TYPES


def test_first_column_wins_when_the_last_has_too_many_categories() -> None:
    # UCI-style: the class first, then features, then a free-form code column
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({
        "kind": rng.choice(["e", "p"], n),
        "width": rng.normal(size=n),
        "height": rng.normal(size=n),
        "batch_code": rng.choice([f"B{i:04d}" for i in range(350)], n),
    })  # fmt: skip
    profile = profile_table(df)
    assert profile["target"] == "kind"
    assert "first column" in profile["target_reasons"][-1]
    scores = {c["column"]: c["score"] for c in profile["target_candidates"]}
    assert scores["kind"] > scores["height"] > scores["batch_code"]
    assert any("too many" in why for c in profile["target_candidates"] for why in c["why"])


def test_no_target_found_is_a_clear_failure() -> None:
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({
        "first": rng.choice([f"f{i}" for i in range(250)], n),
        "last": rng.choice([f"l{i}" for i in range(250)], n),
    })  # fmt: skip
    with pytest.raises(TargetNotFoundError, match="no column looks like a target.*pass the target"):
        profile_table(df)
    assert profile_table(df, target_hint="first")["target"] == "first"


def test_wine_and_iris_targets_are_found_by_name() -> None:
    for frame in (load_wine(as_frame=True).frame, load_iris(as_frame=True).frame):
        profile = profile_table(frame)
        assert (profile["target"], profile["problem_type"]) == ("target", "multiclass")
        assert profile["task"] == {"kind": "multiclass", "trained_as": "multiclass",
                                   "reasons": profile["task"]["reasons"]}  # fmt: skip


def _genres(n: int, sep: str, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    labels = ["action", "comedy", "drama", "horror", "romance", "sci-fi"]
    return [sep.join(rng.choice(labels, rng.integers(1, 4), replace=False)) for _ in range(n)]


def test_multilabel_text_target_is_trained_as_multiclass_over_label_sets() -> None:
    n = 800
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"budget": rng.normal(size=n), "runtime": rng.normal(size=n),
                       "genres": _genres(n, " | ")})  # fmt: skip
    profile = profile_table(df, target_hint="genres")
    task = profile["task"]
    assert task["kind"] == "multilabel" and task["trained_as"] == "multiclass"
    assert profile["problem_type"] == "multiclass" and profile["problem_type"] in PROBLEM_TYPES
    assert task["separator"] == "|"
    assert sorted(task["labels"]) == ["action", "comedy", "drama", "horror", "romance", "sci-fi"]
    assert task["label_cardinality"] == pytest.approx(2.0, abs=0.1)
    # "comedy | action" and "action | comedy" are one class
    assert all(label == "|".join(sorted(label.split("|"))) for label in profile["class_balance"])
    assert sum(profile["class_balance"].values()) == n
    assert task["n_label_sets"] == len(profile["class_balance"])
    assert task["label_counts"]["drama"] == sum(" drama" in f" {g}" for g in df["genres"])
    assert profile["metric"] == "accuracy" and "exact-match" in profile["metric_reason"]
    assert any("label sets" in w for w in profile["warnings"])
    encode = [r for r in profile["recommendations"] if r["action"] == "encode_target"]
    assert encode == [{"action": "encode_target", "column": "genres", "check": "multilabel",
                       "reason": encode[0]["reason"], "automatic": True,
                       "encoding": "label_powerset", "separator": "|"}]  # fmt: skip


def test_multilabel_list_cells_and_hints() -> None:
    n = 300
    rng = np.random.default_rng(3)
    tags = [list(rng.choice(["red", "green", "blue"], rng.integers(1, 3), replace=False))
            for _ in range(n)]  # fmt: skip
    df = pd.DataFrame({"x": rng.normal(size=n), "tags": tags})
    profile = profile_table(df, target_hint="tags")
    assert profile["task"]["kind"] == "multilabel" and profile["task"]["separator"] is None
    assert set(profile["class_balance"]) <= {"red", "green", "blue", "blue|green", "blue|red",
                                             "green|red"}  # fmt: skip
    # asked for plain classes: the raw values are the classes
    plain = profile_table(pd.DataFrame({"x": range(n), "genres": _genres(n, ",")}),
                          target_hint="genres", problem_type_hint="multiclass")  # fmt: skip
    assert plain["task"]["kind"] == "multiclass"
    with pytest.raises(InvalidProblemTypeError, match="one label per row"):
        profile_table(df.assign(tags=rng.choice(["a", "b"], n)), target_hint="tags",
                      problem_type_hint="multilabel")


def test_comma_in_single_labels_is_not_multilabel() -> None:
    rng = np.random.default_rng(4)
    cities = [f"{c}, {s}" for c, s in zip(["Seattle", "Portland", "Austin", "Boston", "Denver"],
                                          ["WA", "OR", "TX", "MA", "CO"], strict=True)]  # fmt: skip
    df = pd.DataFrame({"x": rng.normal(size=500), "target": rng.choice(cities, 500)})
    profile = profile_table(df)
    assert profile["task"]["kind"] == "multiclass"
    assert "Seattle, WA" in profile["class_balance"]


def _series(n: int = 500, ascending: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    times = pd.date_range("2022-01-01", periods=n, freq="D")
    load = 100 + 10 * np.sin(np.arange(n) / 7) + rng.normal(size=n)
    df = pd.DataFrame({"date": times, "temperature": rng.normal(15, 5, n), "load": load})
    return df if ascending else df.iloc[::-1].reset_index(drop=True)


def test_time_ordered_numeric_target_is_forecasting_trained_as_regression() -> None:
    profile = profile_table(_series())
    task = profile["task"]
    assert profile["target"] == "load"
    assert (task["kind"], task["trained_as"], profile["problem_type"]) == (
        "time_series_forecasting", "regression", "regression")
    assert (task["time_column"], task["time_order"]) == ("date", "ascending")
    assert task["frequency"] == "D"
    assert task["time_order_checked_on"] == "all rows"
    assert (task["start"], task["end"]) == ("2022-01-01T00:00:00", "2023-05-15T00:00:00")
    assert profile["metric"] == "mae"
    split = [r for r in profile["recommendations"] if r["action"] == "split_by_time"]
    assert split[0]["column"] == "date" and split[0]["automatic"] is True
    newest_first = profile_table(_series(ascending=False))["task"]
    assert (newest_first["kind"], newest_first["time_order"]) == (
        "time_series_forecasting", "descending")


def test_time_order_from_dates_stored_as_text_and_unordered_dates() -> None:
    df = _series()
    df["date"] = df["date"].dt.strftime("%d/%m/%Y")
    task = profile_table(df)["task"]
    assert task["kind"] == "time_series_forecasting"
    assert task["time_order_checked_on"].startswith("a sample of")
    shuffled = _series().sample(frac=1, random_state=0).reset_index(drop=True)
    assert profile_table(shuffled)["task"]["kind"] == "regression"
    with pytest.raises(InvalidProblemTypeError, match="needs a datetime column that orders"):
        profile_table(shuffled, problem_type_hint="time_series_forecasting")
    assert profile_table(df, metric_hint="rmse")["metric"] == "rmse"


def test_time_ordered_classification_keeps_its_type_and_warns() -> None:
    df = _series()
    df["target"] = np.where(df["load"] > 100, "high", "low")
    profile = profile_table(df.drop(columns=["load"]))
    assert profile["task"]["kind"] == "binary" and profile["task"]["time_column"] == "date"
    assert not any(r["action"] == "split_by_time" for r in profile["recommendations"])
    assert any("ordered by 'date'" in w for w in profile["warnings"])


def test_metric_follows_class_balance() -> None:
    rng = np.random.default_rng(6)
    n = 2_000
    classes = rng.choice(["common", "usual", "rare"], n, p=[0.6, 0.37, 0.03])
    df = pd.DataFrame({"x": rng.normal(size=n), "target": classes})
    profile = profile_table(df)
    assert profile["class_imbalance"]["imbalanced"] is True
    assert profile["class_imbalance"]["minority_class"] == "rare"
    assert profile["metric"] == "balanced_accuracy"
    assert "imbalanced" in profile["metric_reason"]
    assert profile_table(df, metric_hint="f1_macro")["metric"] == "f1_macro"
    rebalance = [r for r in profile["recommendations"] if r["action"] == "rebalance"]
    assert rebalance and rebalance[0]["automatic"] is False
    binary = profile_table(df.assign(target=np.where(classes == "rare", "yes", "no")))
    assert binary["metric"] == "roc_auc"  # threshold-free, fine with imbalance


def test_unusable_targets_fail_with_reasons() -> None:
    df = pd.DataFrame({"x": np.arange(50.0), "target": ["a"] * 50})
    with pytest.raises(UnusableTargetError, match="single value"):
        profile_table(df, target_hint="target")
    with pytest.raises(InvalidProblemTypeError, match="unknown problem type 'clustering'"):
        profile_table(df.assign(target=["a", "b"] * 25), problem_type_hint="clustering")


def test_a_datetime_index_that_orders_the_rows_makes_a_time_series() -> None:
    indexed = _series().set_index("date")
    profile = profile_table(indexed)
    assert profile["task"]["kind"] == "time_series_forecasting"
    assert profile["task"]["time_column"] == "date"
    assert [c["name"] for c in profile["columns"]] == ["date", "temperature", "load"]
    plain = profile_table(_series().drop(columns=["date"]).set_index(np.arange(500) * 2))
    assert plain["n_columns"] == 2 and plain["task"]["kind"] == "regression"
