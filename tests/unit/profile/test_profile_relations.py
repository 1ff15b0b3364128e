"""Relations on generated frames with planted dependencies, checked against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.stats.contingency import association

from mlmesh_profile import profile_table

N = 3_000


def _planted() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    a = rng.normal(size=N)
    colour = rng.choice(["red", "green", "blue", "black"], N)
    # 'shade' follows 'colour' except for 3% of the rows
    shade = pd.Series(colour).map({"red": "warm", "green": "cool", "blue": "cool",
                                   "black": "dark"}).to_numpy()  # fmt: skip
    flip = rng.random(N) < 0.03
    shade[flip] = rng.choice(["warm", "cool", "dark"], flip.sum())
    weight = pd.Series(colour).map({"red": 10.0, "green": 20.0, "blue": 30.0,
                                    "black": 40.0}).to_numpy() + rng.normal(0, 1, N)  # fmt: skip
    doubled = 2 * a + rng.normal(0, 0.05, N)
    doubled[rng.random(N) < 0.05] = np.nan  # pairwise-complete rows
    return pd.DataFrame({
        "a": a,
        "doubled": doubled,
        "exp_a": np.exp(a),                       # monotone, not linear
        "independent": rng.normal(size=N),
        "colour": colour,
        "shade": shade,
        "weight": weight,
        "coin": rng.choice(["heads", "tails"], N),
        "target": (a + rng.normal(size=N) > 0).astype(int),
    })  # fmt: skip


@pytest.fixture(scope="module")
def relations() -> dict:
    return profile_table(_planted())["relations"]


def _cell(block: dict, row: str, col: str, rows_key: str = "columns", cols_key: str = "columns"):
    return block["matrix"][block[rows_key].index(row)][block[cols_key].index(col)]


def test_pearson_and_spearman_match_scipy(relations: dict) -> None:
    df = _planted()
    pearson, spearman = relations["pearson"], relations["spearman"]
    assert pearson["columns"] == ["a", "doubled", "exp_a", "independent", "weight"]
    both = df[["a", "doubled"]].dropna()
    assert _cell(pearson, "a", "doubled") == pytest.approx(
        sps.pearsonr(both["a"], both["doubled"]).statistic, abs=1e-4
    )
    assert _cell(spearman, "a", "exp_a") == pytest.approx(1.0)
    assert _cell(pearson, "a", "exp_a") < 0.9  # the relation is not linear
    assert _cell(spearman, "a", "independent") == pytest.approx(
        sps.spearmanr(df["a"], df["independent"]).statistic, abs=1e-4
    )
    assert abs(_cell(pearson, "a", "independent")) < 0.06
    assert _cell(pearson, "a", "a") == 1.0


def test_cramers_v_and_correlation_ratio(relations: dict) -> None:
    df = _planted()
    cramers = relations["cramers_v"]
    # the target is a class label here, so it joins the categorical side
    assert cramers["columns"] == ["colour", "shade", "coin", "target"]
    table = pd.crosstab(df["colour"], df["shade"]).to_numpy()
    plain_v = association(table, method="cramer")
    assert _cell(cramers, "colour", "shade") == pytest.approx(plain_v, abs=0.01)
    assert _cell(cramers, "colour", "shade") > 0.9
    independent = _cell(cramers, "colour", "coin")
    noisy_v = association(pd.crosstab(df["colour"], df["coin"]).to_numpy(), method="cramer")
    assert independent < noisy_v < 0.1  # the bias correction pulls chance association down

    eta_block = relations["correlation_ratio"]
    eta = _cell(eta_block, "colour", "weight", "categorical", "numeric")
    means = df.groupby("colour")["weight"].transform("mean")
    expected = np.sqrt(((means - df["weight"].mean()) ** 2).sum()
                       / ((df["weight"] - df["weight"].mean()) ** 2).sum())  # fmt: skip
    assert eta == pytest.approx(expected, abs=1e-4)
    assert _cell(eta_block, "coin", "a", "categorical", "numeric") < 0.05


def test_groups_of_highly_related_features_and_target_associations(relations: dict) -> None:
    groups = [g["columns"] for g in relations["correlated_groups"]]
    assert ["a", "doubled", "exp_a"] in groups
    assert ["colour", "shade", "weight"] in groups
    assert not any("independent" in g or "coin" in g or "target" in g for g in groups)
    measures = {(p["a"], p["b"]): p["measure"] for p in relations["high_pairs"]}
    assert measures[("a", "exp_a")] == "spearman"
    assert measures[("colour", "weight")] == "correlation_ratio"
    assoc = relations["target_associations"]
    order = [a["column"] for a in assoc]
    assert set(order[:3]) == {"a", "doubled", "exp_a"}  # the target was planted on 'a'
    by_column = {a["column"]: a["value"] for a in assoc}
    assert by_column["a"] > 0.5
    assert by_column["independent"] < 0.1 and by_column["coin"] < 0.1
    values = [a["value"] for a in assoc]
    assert values == sorted(values, reverse=True)
    assert {a["measure"] for a in assoc} == {"cramers_v", "correlation_ratio"}


def test_numeric_target_relates_by_spearman() -> None:
    df = _planted().drop(columns=["target"])
    df["price"] = df["a"] * 3 + np.random.default_rng(0).normal(size=N)
    profile = profile_table(df)
    assert profile["problem_type"] == "regression"
    top = profile["relations"]["target_associations"][0]
    assert top["column"] in {"a", "doubled", "exp_a"} and top["measure"] == "spearman"
    assert "price" in profile["relations"]["pearson"]["columns"]


def test_wide_tables_relate_a_bounded_number_of_columns() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(300, 150)), columns=[f"x{i}" for i in range(150)])
    df["target"] = rng.choice(["a", "b"], 300)
    relations = profile_table(df)["relations"]
    assert len(relations["columns_considered"]) == 60
    assert relations["columns_left_out"] == 91
    assert "target" in relations["columns_considered"]
    assert len(relations["pearson"]["matrix"]) == 59
