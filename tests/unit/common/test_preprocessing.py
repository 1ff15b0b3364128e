"""mlmesh_common.preprocessing: the transformers inside prep's fitted preprocessors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from mlmesh_common.preprocessing import (
    CrossFitTargetEncoder,
    DatetimeParts,
    FeatureGenerator,
    HashingEncoder,
    NumericImputer,
    QuantileClipper,
    TextVectorizer,
)


def _correlated(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    frame = pd.DataFrame({"a": a, "b": 3 * a + rng.normal(scale=0.1, size=n),
                          "noise": rng.normal(size=n)})  # fmt: skip
    truth = frame["b"].to_numpy().copy()
    frame.loc[rng.random(n) < 0.3, "b"] = np.nan
    return frame, truth


@pytest.mark.parametrize("strategy", ["knn", "iterative"])
def test_model_based_imputation_beats_the_median_on_correlated_columns(strategy: str) -> None:
    frame, truth = _correlated()
    gaps = frame["b"].isna().to_numpy()
    model = NumericImputer({"b": strategy}, ["b"]).fit(frame)
    median = NumericImputer({}, []).fit(frame)
    filled = model.transform(frame)
    err_model = np.abs(filled[gaps, 1] - truth[gaps]).mean()
    err_median = np.abs(median.transform(frame)[gaps, 1] - truth[gaps]).mean()
    assert err_model < 0.3 * err_median
    assert filled.shape == (len(frame), 4) and np.isfinite(filled).all()
    assert (filled[:, 3] == gaps).all()  # the indicator
    assert np.allclose(filled[~gaps, 1], truth[~gaps])  # observed values untouched
    assert list(model.get_feature_names_out()) == ["a", "b", "noise", "b__missing"]


def test_numeric_imputer_fills_unseen_gaps_and_survives_clone_and_pickle() -> None:
    frame, _ = _correlated()
    model = NumericImputer({"b": "iterative"}, ["b"]).fit(frame)
    odd = frame.head(3).copy()
    odd.loc[:, :] = np.nan  # every value missing at serving time
    out = pickle.loads(pickle.dumps(model)).transform(odd)
    assert np.isfinite(out).all() and (out[:, 3] == 1).all()
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(ValueError, match="unknown imputation"):
        NumericImputer({"a": "magic"}).fit(frame)


def test_cross_fit_target_encoder_needs_y_and_does_not_leak() -> None:
    rng = np.random.default_rng(1)
    n = 600
    codes = rng.integers(0, 300, n).astype(str).reshape(-1, 1)  # noise: unrelated to y
    y = rng.integers(0, 2, n)
    encoder = CrossFitTargetEncoder(target_type="binary")
    with pytest.raises(ValueError, match="fitted with the target"):
        encoder.fit(codes)
    crossfit = encoder.fit_transform(codes, y).ravel()
    naive = CrossFitTargetEncoder(target_type="binary").fit(codes, y).transform(codes).ravel()
    # in-sample encodings memorise the rows' own targets; cross-fitted ones do not
    assert abs(np.corrcoef(naive, y)[0, 1]) > 0.3
    assert abs(np.corrcoef(crossfit, y)[0, 1]) < 0.15


def test_hashing_encoder_has_a_fixed_width() -> None:
    values = np.array([["a", "x"], ["b", "y"], ["unseen", "z"]], dtype=object)
    enc = HashingEncoder(8).fit(values[:2])
    out = enc.transform(values)
    assert out.shape == (3, 8) and np.abs(out).sum(axis=1).min() > 0
    assert np.array_equal(out, HashingEncoder(8).fit(values).transform(values))


def test_quantile_clipper_clips_only_chosen_columns() -> None:
    column = np.r_[np.arange(999.0), 1e6]
    X = np.column_stack([column, column])
    out = QuantileClipper(0.01, 0.99, [0]).fit(X).transform(X)
    assert out[-1, 0] < 1e3 and out[-1, 1] == 1e6 and out[0, 0] == pytest.approx(9.99)


def test_datetime_parts() -> None:
    times = pd.DataFrame({"t": ["2024-01-31 10:00", "2024-03-01 23:30", None, "not a date"]})
    parts = DatetimeParts({"t": ["year", "month", "weekday", "hour", "elapsed_days"]})
    out = parts.fit(times).transform(times)
    assert out.shape == (4, 5)
    assert out[0].tolist() == [2024, 1, 2, 10, 0]  # 31 Jan 2024 was a Wednesday
    assert out[1, :4].tolist() == [2024, 3, 4, 23] and out[1, 4] == pytest.approx(30 + 13.5 / 24)
    assert np.isnan(out[2:]).all()
    assert list(parts.get_feature_names_out())[:2] == ["t_year", "t_month"]


def test_text_vectorizer_caps_the_vocabulary_and_fixes_the_svd_width() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    texts = pd.DataFrame({"note": [" ".join(rng.choice(words, 6)) for _ in range(120)]})
    texts.loc[0, "note"] = None
    tfidf = TextVectorizer(max_features=20).fit(texts)
    assert tfidf.transform(texts).shape == (120, 20)
    svd = TextVectorizer(max_features=20, svd_components=5)
    assert svd.fit_transform(texts).shape == (120, 5)
    assert svd.transform(texts.head(3)).shape == (3, 5)
    empty = TextVectorizer(svd_components=4).fit(pd.DataFrame({"note": ["", None] * 5}))
    assert empty.transform(pd.DataFrame({"note": ["hello"]})).tolist() == [[0.0] * 4]


def test_feature_generator_ops_groups_and_pca() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, -3.0, 4.0], "b": [2.0, 0.0, 1.0, np.nan],
                          "c": ["x", "x", "y", None]})  # fmt: skip
    specs = [
        {"name": "a*b", "op": "mul", "inputs": ["a", "b"]},
        {"name": "a/b", "op": "div", "inputs": ["a", "b"]},
        {"name": "log(a)", "op": "log", "inputs": ["a"]},
        {"name": "mean_a_by_c", "op": "group_mean", "inputs": ["c", "a"]},
        {"name": "freq_c", "op": "group_frequency", "inputs": ["c"]},
        {"name": "pc1", "op": "pca", "inputs": ["a", "b"], "component": 0},
    ]
    gen = FeatureGenerator(specs).fit(frame)
    out = gen.transform(frame)
    assert list(out.columns) == ["a", "b", "c", "a*b", "a/b", "log(a)", "mean_a_by_c", "freq_c",
                                 "pc1"]  # fmt: skip
    assert out["a*b"].tolist()[:3] == [2.0, 0.0, -3.0] and np.isnan(out["a*b"][3])
    assert np.isnan(out["a/b"][1])  # division by zero is missing, not infinite
    assert np.isnan(out["log(a)"][2])
    assert out["mean_a_by_c"].tolist() == [1.5, 1.5, -3.0, 4.0]
    assert out["freq_c"].tolist() == [0.5, 0.5, 0.25, 0.25]
    unseen = gen.transform(pd.DataFrame({"a": [1.0], "b": [1.0], "c": ["zzz"]}))
    assert unseen["mean_a_by_c"][0] == pytest.approx(1.0) and unseen["freq_c"][0] == 0.0
    assert np.isfinite(out["pc1"]).all()
    with pytest.raises(ValueError, match="lacks"):
        FeatureGenerator(specs).fit(frame.drop(columns=["c"]))
