"""Vectorised bootstrap metrics agree with mlmesh_common.modeling.score on each resample."""

from __future__ import annotations

import numpy as np
import pytest

from mlmesh_common.modeling import score
from mlmesh_docs.evaluation import fast_metric


@pytest.fixture
def samples():
    return np.random.default_rng(0).integers(0, 60, (25, 60))


def test_classification_metrics_match_score(samples):
    rng = np.random.default_rng(1)
    labels = np.array(["a", "b", "c"])
    y = labels[rng.integers(0, 3, 60)]
    pred = np.where(rng.random(60) < 0.7, y, labels[rng.integers(0, 3, 60)])
    proba = rng.dirichlet([1, 1, 1], 60)
    for metric in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss"):
        fast = fast_metric(metric, y, pred, proba, list(labels), samples)
        assert fast is not None
        slow = [score(metric, y[i], y_pred=pred[i], y_proba=proba[i], labels=list(labels))
                for i in samples]
        np.testing.assert_allclose(fast, slow, rtol=1e-9, err_msg=metric)


def test_regression_metrics_match_score(samples):
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 60)
    pred = y + rng.normal(0, 1, 60)
    for metric in ("rmse", "mae", "r2"):
        fast = fast_metric(metric, y, pred, None, None, samples)
        slow = [score(metric, y[i], y_pred=pred[i]) for i in samples]
        np.testing.assert_allclose(fast, slow, rtol=1e-9, err_msg=metric)


def test_metrics_without_a_vectorised_form_return_none(samples):
    y = np.array([0, 1] * 30)
    assert fast_metric("roc_auc", y, y, np.full((60, 2), 0.5), [0, 1], samples) is None
