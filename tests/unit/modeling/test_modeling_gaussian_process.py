"""The gaussian_process family: kernel fitted on a subsample, conditioned on every row."""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_friedman1
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from mlmesh_common.modeling import (
    GaussianProcessEstimator,
    InvalidParamsError,
    build_estimator,
    score,
)
from mlmesh_common.modeling import _gaussian_process as gp_module


@pytest.fixture(scope="module")
def friedman():
    X, y = make_friedman1(n_samples=700, n_features=8, noise=1.0, random_state=3)
    X = StandardScaler().fit_transform(X)
    return X[:500], y[:500], X[500:], y[500:]


@pytest.fixture(scope="module")
def fitted(friedman):
    X, y, _, _ = friedman
    return GaussianProcessEstimator("regression", optimize_rows=150, seed=0).fit(X, y)


def test_kernel_is_fitted_on_a_subsample_and_conditioned_on_every_row(fitted):
    assert fitted.optimized_on_rows_ == 150
    assert fitted.process_.X_train_.shape == (500, 8)
    assert fitted.process_.optimizer is None  # the refit keeps the learned kernel
    assert fitted.process_.kernel_ == fitted.kernel_


def test_it_beats_a_linear_model_on_a_smooth_nonlinear_target(fitted, friedman):
    X, y, X_test, y_test = friedman
    gp_rmse = score("rmse", y_test, y_pred=fitted.predict(X_test))
    ridge_rmse = score("rmse", y_test, y_pred=Ridge().fit(X, y).predict(X_test))
    assert gp_rmse < 0.65 * ridge_rmse, (gp_rmse, ridge_rmse)


def test_length_scales_switch_irrelevant_features_off(fitted):
    # friedman1 uses features 0-4; 5-7 are noise and get much longer length scales
    scales = fitted.kernel_.k1.k2.length_scale
    assert scales.shape == (8,)
    assert scales[5:].min() > 5 * scales[:2].max(), scales


def test_prediction_in_blocks_equals_one_pass(fitted, friedman, monkeypatch):
    _, _, X_test, _ = friedman
    whole = fitted.process_.predict(X_test)
    monkeypatch.setattr(gp_module, "PREDICT_BLOCK_ROWS", 7)
    np.testing.assert_allclose(fitted.predict(X_test), whole)
    assert not hasattr(fitted, "classes_")
    with pytest.raises(AttributeError, match="regression"):
        fitted.predict_proba(X_test)


def test_many_features_share_one_length_scale():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 12)), rng.normal(size=80)
    est = GaussianProcessEstimator("regression", ard_max_features=10).fit(X, y)
    assert np.ndim(est.kernel_.k1.k2.length_scale) == 0


def test_multiclass_probabilities_with_a_subsampled_kernel_fit():
    X, y = make_classification(n_samples=240, n_features=5, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, class_sep=2.0,
                               random_state=1)
    est = GaussianProcessEstimator("multiclass", kernel="matern", optimize_rows=90).fit(
        X[:180], y[:180]
    )
    proba = est.predict_proba(X[180:])
    assert proba.shape == (60, 3) and list(est.classes_) == [0, 1, 2]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (est.predict(X[180:]) == y[180:]).mean() > 0.8
    assert est.optimized_on_rows_ == 90


def test_bad_params_are_named():
    with pytest.raises(InvalidParamsError, match="kernel must be one of rbf, matern"):
        build_estimator("gaussian_process", "regression", {"kernel": "linear"},
                        device="cpu", seed=0)
    with pytest.raises(InvalidParamsError, match="optimize_rows must be at least 10"):
        build_estimator("gaussian_process", "binary", {"optimize_rows": 3},
                        device="cpu", seed=0)
