"""Quality checks on frames with planted problems, and no false alarms on real datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine

from mlmesh_profile import profile_table


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _actions(profile: dict, action: str) -> dict:
    return {r["column"]: r for r in profile["recommendations"] if r["action"] == action}


def test_duplicates_and_conflicting_rows() -> None:
    rng = _rng(1)
    n = 1_000
    df = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n),
                       "target": rng.choice(["yes", "no"], n)})  # fmt: skip
    df.loc[5, "x"] = np.nan
    copies = df.iloc[[0, 1, 2, 5]]  # a row with a missing value repeats too
    flipped = df.iloc[[10, 11]].assign(target=lambda d: d["target"].map({"yes": "no", "no": "yes"}))
    df = pd.concat([df, copies, flipped], ignore_index=True)
    profile = profile_table(df)
    dup = profile["duplicates"]
    assert profile["duplicate_rows"] == dup["duplicate_rows"] == int(df.duplicated().sum()) == 4
    assert dup["feature_duplicate_rows"] == 6
    assert (dup["conflicting_rows"], dup["conflicting_groups"]) == (4, 2)
    rec = _actions(profile, "drop_duplicate_rows")[None]
    assert rec["automatic"] is True and "'x'" in rec["reason"]
    assert any(r["check"] == "duplicates" and r["column"] == "target"
               for r in profile["recommendations"])  # fmt: skip
    assert any("same features as rows with another target" in w for w in profile["warnings"])


def test_duplicates_of_discrete_rows_are_only_reviewed() -> None:
    rng = _rng(2)
    df = pd.DataFrame({"size": rng.choice(["S", "M", "L"], 500),
                       "target": rng.choice(["a", "b"], 500)})  # fmt: skip
    profile = profile_table(df)
    assert profile["duplicate_rows"] == int(df.duplicated().sum()) > 0
    assert "drop_duplicate_rows" not in {r["action"] for r in profile["recommendations"]}
    assert any(r["action"] == "review" and r["check"] == "duplicates"
               for r in profile["recommendations"])  # fmt: skip


def test_outliers_by_iqr_zscore_and_isolation_forest() -> None:
    rng = _rng(3)
    n = 3_000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                       "target": rng.choice(["x", "y"], n)})  # fmt: skip
    planted = [17, 500, 2_222]
    df.loc[planted, "a"] = [15.0, -20.0, 25.0]
    df.loc[planted, "b"] = [-18.0, 22.0, 19.0]
    profile = profile_table(df)
    a = df["a"].to_numpy()
    q25, q75 = np.quantile(a, [0.25, 0.75])
    iqr = profile["outliers"]["iqr"]["columns"]["a"]
    expected = int(((a < q25 - 1.5 * (q75 - q25)) | (a > q75 + 1.5 * (q75 - q25))).sum())
    assert iqr["count"] == expected and iqr["count"] >= 3
    z = profile["outliers"]["zscore"]["columns"]["a"]
    assert z["count"] == int((np.abs(a - a.mean()) / a.std(ddof=1) > 3).sum())
    assert z["max_abs_z"] > 10
    forest = profile["outliers"]["isolation_forest"]
    assert forest["checked"] and forest["columns"] == ["a", "b"]
    assert {r["row"] for r in forest["most_anomalous_rows"][:3]} == set(planted)
    assert 3 <= forest["flagged"] < 0.05 * n
    clip = _actions(profile, "clip")
    assert set(clip) == {"a", "b"} and clip["a"]["automatic"] is False


def test_missingness_patterns_and_co_missing_groups() -> None:
    rng = _rng(4)
    n = 2_000
    df = pd.DataFrame({"sensor_1": rng.normal(size=n), "sensor_2": rng.normal(size=n),
                       "survey": rng.choice(["a", "b", None], n, p=[0.45, 0.45, 0.1]),
                       "mostly_gone": np.where(rng.random(n) < 0.97, np.nan, rng.normal(size=n)),
                       "target": rng.choice(["p", "q"], n)})  # fmt: skip
    offline = rng.random(n) < 0.15
    df.loc[offline, ["sensor_1", "sensor_2"]] = np.nan
    profile = profile_table(df)
    miss = profile["missingness"]
    assert miss["rows_checked"] == n
    assert miss["rows_with_missing"] == int(df.isna().any(axis=1).sum())
    assert miss["missing_cells"] == int(df.isna().sum().sum())
    groups = [g["columns"] for g in miss["co_missing_groups"]]
    assert sorted(groups[0]) == ["sensor_1", "sensor_2"] and len(groups) == 1
    top = miss["patterns"][0]
    mask = df[["mostly_gone"]].isna()["mostly_gone"] & ~df["survey"].isna() & ~offline
    assert top == {"missing": ["mostly_gone"], "rows": int(mask.sum()),
                   "share": pytest.approx(mask.mean(), abs=1e-6)}  # fmt: skip
    drops = _actions(profile, "drop")
    assert drops["mostly_gone"]["check"] == "missing"
    impute = _actions(profile, "impute")
    assert impute["sensor_1"]["strategy"] == "median"
    assert impute["survey"]["strategy"] == "most_frequent"


def test_leakage_single_feature_and_categorical_copy() -> None:
    rng = _rng(5)
    n = 3_000
    signal = rng.normal(size=n)
    y = (signal + rng.normal(size=n) > 0).astype(int)
    df = pd.DataFrame({
        "signal": signal,
        "refund_amount": np.where(y == 1, rng.uniform(10, 50, n), 0.0),  # recorded after
        "status_code": np.where(y == 1, "closed_won", "closed_lost"),
        "noise": rng.normal(size=n),
        "target": y,
    })  # fmt: skip
    profile = profile_table(df)
    leak = profile["leakage"]
    assert leak["checked"] and leak["measure"] == "roc_auc"
    flagged = {f["column"]: f for f in leak["flags"]}
    assert set(flagged) == {"refund_amount", "status_code"}
    assert flagged["refund_amount"]["score"] >= 0.995
    scores = {s["column"]: s["score"] for s in leak["scores"]}
    assert 0.6 < scores["signal"] < 0.9 and scores["noise"] < 0.6
    drops = _actions(profile, "drop")
    assert drops["refund_amount"]["check"] == "leakage" and drops["refund_amount"]["automatic"]
    assert any(w.startswith("possible leakage: 'refund_amount'") for w in profile["warnings"])


def test_leakage_constant_within_target_and_regression() -> None:
    rng = _rng(6)
    n = 1_500
    species = rng.choice(["adelie", "gentoo", "chinstrap"], n)
    df = pd.DataFrame({
        "mass": rng.normal(size=n),
        # one value per class, shared by two classes: not a perfect predictor on its own
        "is_gentoo": np.where(species == "gentoo", "yes", "no"),
        "target": species,
    })  # fmt: skip
    leak = profile_table(df)["leakage"]
    assert [(f["column"], f["check"]) for f in leak["flags"]] == [
        ("is_gentoo", "constant_within_target")
    ]

    x = rng.normal(size=n)
    reg = pd.DataFrame({"x": x, "price_in_cents": 0, "other": rng.normal(size=n)})
    reg["price"] = 3 * x + rng.normal(scale=1.0, size=n)
    reg["price_in_cents"] = reg["price"] * 100 + rng.normal(scale=0.01, size=n)
    profile = profile_table(reg, target_hint="price")
    assert profile["leakage"]["measure"] == "r2"
    assert [f["column"] for f in profile["leakage"]["flags"]] == ["price_in_cents"]


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes", "penguins"])
def test_no_leakage_or_automatic_drops_on_real_datasets(name: str) -> None:
    frames = {
        "iris": lambda: load_iris(as_frame=True).frame,
        "wine": lambda: load_wine(as_frame=True).frame,
        "breast_cancer": lambda: load_breast_cancer(as_frame=True).frame,
        "diabetes": lambda: load_diabetes(as_frame=True).frame,
        "penguins": load_penguins,
    }
    profile = profile_table(frames[name]())
    assert profile["leakage"]["checked"] and profile["leakage"]["flags"] == []
    assert [r for r in profile["recommendations"] if r["automatic"]] == []


def test_redundant_columns_are_dropped_once() -> None:
    rng = _rng(7)
    n = 800
    celsius = rng.normal(20, 5, n)
    plan = rng.choice(["basic", "pro", "team"], n)
    df = pd.DataFrame({"celsius": celsius, "fahrenheit": celsius * 9 / 5 + 32,
                       "plan": plan, "plan_code": pd.Series(plan).map({"basic": "B", "pro": "P",
                                                                       "team": "T"}),
                       "target": rng.choice(["a", "b"], n)})  # fmt: skip
    profile = profile_table(df)
    same = {r["column"]: r["same_as"] for r in profile["redundant_columns"]}
    assert same == {"fahrenheit": "celsius", "plan_code": "plan"}
    drops = _actions(profile, "drop")
    assert drops["fahrenheit"]["check"] == "redundant"
    assert "celsius" in drops["fahrenheit"]["reason"]
    review = [r for r in profile["recommendations"] if r["check"] == "correlation"]
    assert review == []  # the group is settled by the drop


def test_recommendations_for_ids_constants_skew_cardinality_and_dates() -> None:
    rng = _rng(8)
    n = 1_000
    df = pd.DataFrame({
        "order_id": np.arange(n) + 1000,
        "country": "NO",
        "income": rng.lognormal(10, 1, n),
        "merchant": rng.choice([f"m{i}" for i in range(400)], n),
        "signup": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
        "note": [" ".join(rng.choice(["late", "parcel", "again", "very", "ok"], 12))
                 for _ in range(n)],
        "target": rng.choice(["a", "b"], n),
    })  # fmt: skip
    profile = profile_table(df)
    by_column = {}
    for r in profile["recommendations"]:
        by_column.setdefault(r["column"], []).append((r["action"], r["check"]))
    assert by_column["order_id"] == [("drop", "id")]
    assert [(f["column"], f["check"]) for f in profile["leakage"]["flags"]] == [("order_id", "id")]
    assert not any(w.startswith("possible leakage") for w in profile["warnings"])
    assert by_column["country"] == [("drop", "constant")]
    assert ("transform", "skew") in by_column["income"]
    assert by_column["merchant"] == [("encode", "cardinality")]
    assert by_column["signup"] == [("extract", "datetime")]
    assert by_column["note"] == [("extract", "text")]
    assert all(set(r) >= {"action", "column", "check", "reason", "automatic"}
               for r in profile["recommendations"])  # fmt: skip
