"""cross_validate's on_fold callback, OOF files, serving cost, early stopping."""

import numpy as np
import pandas as pd
import pytest

from mlmesh_common.modeling import (
    OOF_FILE,
    CVResult,
    LatencyInputError,
    OOFFormatError,
    cross_validate,
    expected_fit_s,
    load_oof,
    load_prepared,
    measure_latency_ms,
    model_size_bytes,
    new_model,
    save_oof,
)


def test_on_fold_sees_every_fold_score(cancer_prepared):
    data = load_prepared(cancer_prepared)
    seen = []
    cv = cross_validate(
        data, "linear", {}, device="cpu", seed=0, on_fold=lambda i, s: seen.append((i, s))
    )
    assert [i for i, _ in seen] == [0, 1, 2]
    assert [s for _, s in seen] == pytest.approx(cv.fold_scores)


def test_an_exception_from_on_fold_stops_cv(cancer_prepared):
    data = load_prepared(cancer_prepared)
    calls = []

    class Pruned(Exception):
        pass

    def prune_after_first(index, score):
        calls.append(index)
        raise Pruned(f"fold {index} scored {score:.3f}")

    with pytest.raises(Pruned, match="fold 0"):
        cross_validate(data, "linear", {}, device="cpu", seed=0, on_fold=prune_after_first)
    assert calls == [0]


def test_oof_round_trip_classification(cancer_prepared, tmp_path):
    data = load_prepared(cancer_prepared)
    cv = cross_validate(data, "linear", {}, device="cpu", seed=0)
    path = save_oof(cv, tmp_path / OOF_FILE)
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["0", "1"] and len(frame) == len(data.X_train)
    oof, classes = load_oof(path)
    assert classes == [0, 1] and all(type(c) is int for c in classes)  # types survive
    np.testing.assert_array_equal(oof, cv.oof)
    assert load_oof(tmp_path)[1] == [0, 1]  # a folder holding oof.parquet works too


def test_oof_round_trip_string_classes_and_truncation(penguins_prepared, tmp_path):
    data = load_prepared(penguins_prepared)
    cv = cross_validate(data, "linear", {}, device="cpu", seed=0, time_budget_s=1e-9)
    assert cv.truncated
    oof, classes = load_oof(save_oof(cv, tmp_path / "p.parquet"))
    assert classes == ["Adelie", "Chinstrap", "Gentoo"]
    scored = data.folds == 0
    assert not np.isnan(oof[scored]).any() and np.isnan(oof[~scored]).all()


def test_oof_round_trip_regression(diabetes_prepared, tmp_path):
    data = load_prepared(diabetes_prepared)
    cv = cross_validate(data, "linear", {}, device="cpu", seed=0)
    oof, classes = load_oof(save_oof(cv, tmp_path / OOF_FILE))
    assert classes is None and oof.shape == (len(data.X_train),)
    assert list(pd.read_parquet(tmp_path / OOF_FILE).columns) == ["prediction"]
    np.testing.assert_allclose(oof, cv.oof)


def test_oof_shape_is_checked(tmp_path):
    bad = CVResult("accuracy", [1.0], 1.0, 0.0, np.zeros((4, 2)), 0.1, 2, classes=["a", "b", "c"])
    with pytest.raises(OOFFormatError, match="one column per class"):
        save_oof(bad, tmp_path / OOF_FILE)
    collide = CVResult("accuracy", [1.0], 1.0, 0.0, np.zeros((4, 2)), 0.1, 2, classes=[1, "1"])
    with pytest.raises(OOFFormatError, match="collide"):
        save_oof(collide, tmp_path / OOF_FILE)


def test_latency_and_size(cancer_prepared):
    data = load_prepared(cancer_prepared)
    small = new_model(data, "linear", {}, device="cpu", seed=0).fit(data.X_train, data.y_train)
    big = new_model(data, "random_forest", {"n_estimators": 100}, device="cpu", seed=0)
    big.fit(data.X_train, data.y_train)
    assert 0 < model_size_bytes(small) < model_size_bytes(big)
    lat_small = measure_latency_ms(small, data.X_test)
    lat_big = measure_latency_ms(big, data.X_test)
    assert 0 < lat_small < lat_big < 50
    assert measure_latency_ms(small, data.X_test.head(3)) > 0  # tiny input still measures
    with pytest.raises(LatencyInputError, match="non-empty DataFrame"):
        measure_latency_ms(small, data.X_test.head(0))


def test_cv_measures_when_asked(diabetes_prepared):
    data = load_prepared(diabetes_prepared)
    plain = cross_validate(data, "linear", {}, device="cpu", seed=0)
    assert plain.latency_ms is None and plain.size_bytes is None
    cv = cross_validate(data, "linear", {}, device="cpu", seed=0, measure=True)
    assert cv.latency_ms > 0 and cv.size_bytes > 1000


@pytest.mark.parametrize(
    "family,cap_key",
    [("xgboost", "n_estimators"), ("lightgbm", "n_estimators"), ("catboost", "iterations")],
)
def test_boosters_stop_early_and_refit_with_the_best_rounds(cancer_prepared, family, cap_key):
    data = load_prepared(cancer_prepared)
    params = {cap_key: 400, "learning_rate": 0.3, "early_stopping_rounds": 10}
    model = new_model(data, family, params, device="cpu", seed=0).fit(data.X_train, data.y_train)
    info = model.fit_info_
    assert info["early_stopped"] and info["rounds_cap"] == 400
    assert 1 <= info["best_rounds"] < 400
    # the final estimator is a plain model with exactly the best number of rounds
    assert model.estimator_.get_params()[cap_key] == info["best_rounds"]
    no_stop = {**params, cap_key: 30, "early_stopping_rounds": 0}
    off = new_model(data, family, no_stop, device="cpu", seed=0)
    assert off.fit(data.X_train, data.y_train).fit_info_["best_rounds"] is None


@pytest.mark.parametrize(
    "family,params", [("hist_gb", {"max_iter": 1000}), ("mlp", {"max_iter": 1000})]
)
def test_sklearn_early_stopping(cancer_prepared, family, params):
    data = load_prepared(cancer_prepared)
    model = new_model(data, family, params, device="cpu", seed=0).fit(data.X_train, data.y_train)
    assert model.fit_info_["early_stopped"] and model.fit_info_["best_rounds"] < 1000


def test_small_data_skips_early_stopping_with_a_round_cap(penguins_prepared):
    data = load_prepared(penguins_prepared)
    X, y = data.X_train.head(120), data.y_train.head(120)
    model = new_model(data, "lightgbm", {}, device="cpu", seed=0).fit(X, y)
    assert model.fit_info_["rounds_cap"] == 200 and not model.fit_info_["early_stopped"]
    assert model.estimator_.get_params()["n_estimators"] == 200
    hgb = new_model(data, "hist_gb", {"max_iter": 20}, device="cpu", seed=0).fit(X, y)
    assert hgb.estimator_.get_params()["early_stopping"] is False


def test_expected_fit_time_scales_the_seconds_per_fold_to_the_whole_train_split():
    assert expected_fit_s({"fit_seconds": 8.0, "fold_scores": [0.9] * 4}, 5) == 2.5
    assert expected_fit_s({"fit_seconds": 3.0, "fold_scores": [0.9]}, 5) == 3.75
    assert expected_fit_s({"fit_seconds": None, "fold_scores": [0.9]}, 5) == 0.0
    assert expected_fit_s({"fit_seconds": 3.0, "fold_scores": []}, 5) == 0.0
    assert expected_fit_s({"fit_seconds": 8.0, "fold_scores": [0.9] * 4}, 5, 1.2) == 3.0
