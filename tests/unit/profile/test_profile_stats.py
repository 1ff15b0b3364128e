"""Per-column statistics and kinds: exact against pandas/scipy, exact under sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mlmesh_profile import column_kind, profile_table, sample_table


def _cols(profile: dict) -> dict[str, dict]:
    return {c["name"]: c for c in profile["columns"]}


def test_numeric_statistics_match_pandas_and_scipy() -> None:
    rng = np.random.default_rng(0)
    n = 5_000
    skewed = rng.lognormal(0, 1, n)
    skewed[:50] = np.nan
    skewed[50:53] = np.inf
    signed = rng.normal(-1, 2, n)
    signed[100:140] = 0.0
    df = pd.DataFrame({"skewed": skewed, "signed": signed, "target": rng.choice(["a", "b"], n)})
    cols = _cols(profile_table(df))

    finite = pd.Series(skewed[np.isfinite(skewed)])
    col = cols["skewed"]
    assert (col["count"], col["missing"], col["infinite"]) == (n - 50, 50, 3)
    assert col["missing_share"] == pytest.approx(0.01)
    assert col["mean"] == pytest.approx(finite.mean())
    assert col["std"] == pytest.approx(finite.std())
    assert col["skew"] == pytest.approx(finite.skew())
    assert col["skew"] == pytest.approx(sps.skew(finite, bias=False))
    assert col["kurtosis"] == pytest.approx(finite.kurt())
    assert col["kurtosis"] == pytest.approx(sps.kurtosis(finite, bias=False))
    for key, q in (("q01", 0.01), ("q05", 0.05), ("q25", 0.25), ("median", 0.5),
                   ("q75", 0.75), ("q95", 0.95), ("q99", 0.99)):  # fmt: skip
        assert col[key] == pytest.approx(finite.quantile(q)), key
    assert (col["min"], col["max"]) == (finite.min(), finite.max())
    assert col["skew"] > 2  # lognormal is right-skewed
    assert cols["signed"]["zeros"] == 40
    assert cols["signed"]["negatives"] == int((signed < 0).sum())
    assert cols["signed"]["skew"] == pytest.approx(pd.Series(signed).skew())


def test_counts_and_statistics_stay_exact_when_the_table_is_sampled() -> None:
    rng = np.random.default_rng(1)
    n = 120_000
    values = rng.normal(10, 3, n)
    values[rng.random(n) < 0.07] = np.nan
    df = pd.DataFrame({
        "value": values,
        "city": rng.choice([f"city{i}" for i in range(300)], n),
        "target": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
    })  # fmt: skip
    profile = profile_table(df, max_sample_rows=2_000, seed=5)
    cols = _cols(profile)
    assert profile["sampling"] == {
        "n_rows": n, "sample_rows": 2_000, "seed": 5, "sampled": True,
        "exact": profile["sampling"]["exact"], "on_sample": profile["sampling"]["on_sample"],
    }  # fmt: skip
    assert "column statistics" in profile["sampling"]["exact"]
    assert "relations" in profile["sampling"]["on_sample"]
    assert profile["relations"]["sample_rows"] == 2_000
    assert cols["value"]["missing"] == int(np.isnan(values).sum())
    assert cols["value"]["mean"] == pytest.approx(np.nanmean(values))
    assert cols["value"]["median"] == pytest.approx(np.nanmedian(values))
    assert cols["city"]["unique"] == df["city"].nunique()
    top = df["city"].value_counts().head(5)
    assert cols["city"]["top_values"] == [[k, int(v)] for k, v in top.items()]
    assert profile["class_balance"] == df["target"].value_counts().to_dict()
    assert profile["duplicate_rows"] == int(df.duplicated().sum())


def test_sample_table_is_seeded_bounded_and_keeps_row_order() -> None:
    df = pd.DataFrame({"i": np.arange(10_000)})
    a, b, c = (sample_table(df, 500, 1), sample_table(df, 500, 1), sample_table(df, 500, 2))
    assert len(a) == 500 and a.equals(b) and not a.equals(c)
    assert a["i"].is_monotonic_increasing
    assert (a.index == a["i"]).all()  # the index still names the row's position
    assert sample_table(df, 20_000, 1) is df
    with pytest.raises(ValueError, match="at least 1"):
        sample_table(df, 0, 1)


def test_string_datetime_and_list_columns() -> None:
    n = 200
    rng = np.random.default_rng(2)
    df = pd.DataFrame({
        "word": rng.choice(["ab", "abcd", "abcdef"], n),
        "when": pd.date_range("2021-03-01", periods=n, freq="D").to_series().sample(
            frac=1, random_state=0).to_numpy(),
        "when_text": [f"2022-01-{(i % 28) + 1:02d}" for i in range(n)],
        "tags": [list(rng.choice(["x", "y", "z"], 2, replace=False)) for _ in range(n)],
        "target": rng.choice(["a", "b"], n),
    })  # fmt: skip
    cols = _cols(profile_table(df))
    assert (cols["word"]["length_min"], cols["word"]["length_max"]) == (2, 6)
    assert cols["word"]["length_mean"] == pytest.approx(df["word"].str.len().mean())
    assert cols["when"]["kind"] == "datetime"
    assert cols["when"]["datetime_min"] == "2021-03-01T00:00:00"
    assert cols["when"]["datetime_max"] == (pd.Timestamp("2021-03-01")
                                            + pd.Timedelta(days=n - 1)).isoformat()  # fmt: skip
    assert cols["when"]["mean"] is None  # numeric keys stay numeric-only
    assert cols["when_text"]["kind"] == "datetime"
    assert cols["when_text"]["datetime_min"] == "2022-01-01T00:00:00"
    assert cols["tags"]["kind"] == "categorical"  # lists are label sets, not free text
    assert cols["tags"]["unique"] == 6
    assert cols["tags"]["length_mean"] is None


def test_id_like_columns_by_name_even_with_repeats() -> None:
    rng = np.random.default_rng(3)
    n = 400
    ids = np.arange(n)
    ids[:20] = ids[20:40]  # a few repeat customers
    zips = rng.integers(0, 380, n)
    assert column_kind(pd.Series(ids, name="customer_id")) == "id"
    assert column_kind(pd.Series(ids, name="amount")) == "numeric"  # repeats, neutral name
    assert column_kind(pd.Series(zips, name="zip")) == "numeric"
    assert column_kind(pd.Series([f"u{i}" for i in ids], name="UserId")) == "id"
    half = pd.Series(rng.integers(0, n // 2, n), name="order_id")  # many repeats: not an id
    assert column_kind(half) == "numeric"
