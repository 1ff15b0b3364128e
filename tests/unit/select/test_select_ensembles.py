"""Caruana selection and stacking on synthetic OOF; EnsembleModel predict and pickling."""

import joblib
import numpy as np
import pandas as pd
import pytest

from mlmesh_common.modeling import EnsembleError, EnsembleModel, MeshModel, load_prepared
from mlmesh_select.ensembles import (
    EnsembleInputError,
    OOFPool,
    best_single_cv,
    caruana_cv,
    caruana_weights,
    pool_positions,
    stacking_cv,
)


def _regression_pool(seed=0):
    """Three noisy views of y: a and b carry independent noise (their mean is best), c is
    bad. The best mix is a and b with equal weight."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=600)
    a = y + rng.normal(scale=1.0, size=600)
    b = y + rng.normal(scale=1.0, size=600)
    c = y + rng.normal(scale=3.0, size=600)
    folds = np.arange(600) % 3
    return OOFPool([0, 1, 2], [a, b, c], y, folds, None, "regression", "rmse")


def test_caruana_recovers_the_known_best_mix():
    pool = _regression_pool()
    w = caruana_weights(pool.outputs, pool.y, "rmse", None, iterations=40)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(0.5, abs=0.1) and w[1] == pytest.approx(0.5, abs=0.1)
    assert w[2] < 0.1
    fit = caruana_cv(pool)
    singles = [np.sqrt(np.mean((o - pool.y) ** 2)) for o in pool.outputs]
    assert fit.cv_mean < min(singles) * 0.8  # honest fold scores still beat any single one


def test_caruana_on_classification_picks_the_informative_model():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(scale=0.2, size=400), 0.01, 0.99)
    noise = rng.uniform(size=400)
    outputs = [np.column_stack([1 - p, p]) for p in (noise, good)]
    w = caruana_weights(outputs, y, "roc_auc", [0, 1])
    assert w[1] > 0.8


def test_the_pool_takes_each_family_best_before_a_runner_up():
    families = ["xgboost", "xgboost", "xgboost", "catboost", "xgboost", "linear", "mlp"]
    assert pool_positions(families, 4) == [0, 3, 5, 6]
    assert pool_positions(families, 5) == [0, 1, 3, 5, 6]  # then the next best by rank
    assert pool_positions(families, 10) == list(range(7))
    assert pool_positions(["a", "a"], 1) == [0]
    with pytest.raises(EnsembleInputError, match="at least 1"):
        pool_positions(families, 0)


def test_picking_the_best_single_is_scored_per_fold_like_the_ensembles():
    """Two members, each right on half of the folds: whichever is best overall, picking it
    on the other folds picks the one that is wrong on the held fold."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=400)
    folds = np.arange(400) % 4
    good_on = {0: (0, 1), 1: (2, 3)}
    outputs = []
    for member in (0, 1):
        noise = np.where(np.isin(folds, good_on[member]), 0.2, 1.5)
        outputs.append(y + rng.normal(size=400) * noise)
    pool = OOFPool([0, 1], outputs, y, folds, None, "regression", "rmse")
    own = [np.mean([np.sqrt(np.mean((o[folds == f] - y[folds == f]) ** 2)) for f in range(4)])
           for o in outputs]
    picked = best_single_cv(pool)
    assert picked.kind == "single" and len(picked.fold_scores) == 4
    assert picked.cv_mean > min(own) + 0.3  # worse than the best member's own CV says
    clear = OOFPool([0, 1], [y + 0.1, y + 2.0], y, folds, None, "regression", "rmse")
    assert best_single_cv(clear).cv_mean == pytest.approx(0.1)  # a clear best is kept


def test_stacking_scores_honestly_and_learns_weights():
    pool = _regression_pool(2)
    fit = stacking_cv(pool)
    coef = fit.meta.coef_
    assert coef[0] > 0.3 and coef[1] > 0.3 and abs(coef[2]) < coef[0]
    assert len(fit.fold_scores) == 3
    assert fit.cv_mean < np.sqrt(np.mean((pool.outputs[0] - pool.y) ** 2))


def test_ensemble_model_predicts_and_pickles(cancer_prepared, tmp_path):
    data = load_prepared(cancer_prepared)
    members = [
        MeshModel(data.preprocessor, fam, "binary", data.feature_columns, params, seed=0)
        for fam, params in (("linear", {}), ("knn", {}))
    ]
    model = EnsembleModel(members, [0.75, 0.25]).fit(data.X_train, data.y_train)
    assert model.family == "ensemble" and model.feature_columns == data.feature_columns
    proba = model.predict_proba(data.X_test)
    parts = [m.predict_proba(data.X_test) for m in model.members_]
    np.testing.assert_allclose(proba, 0.75 * parts[0] + 0.25 * parts[1])
    assert set(model.predict(data.X_test)) <= set(model.classes_)
    joblib.dump(model.to_cpu(), tmp_path / "m.joblib")
    restored = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_allclose(restored.predict_proba(data.X_test), proba)

    from sklearn.linear_model import LogisticRegression

    from mlmesh_common.modeling import stack_features

    meta = LogisticRegression().fit(stack_features(parts, "binary"), data.y_test)
    stacked = EnsembleModel(members, kind="stacking", meta=meta).fit(data.X_train, data.y_train)
    sp = stacked.predict_proba(data.X_test)
    assert sp.shape == proba.shape and np.allclose(sp.sum(axis=1), 1.0)


def test_ensemble_model_rejects_bad_members(cancer_prepared):
    data = load_prepared(cancer_prepared)
    m = MeshModel(data.preprocessor, "linear", "binary", data.feature_columns, {})
    with pytest.raises(EnsembleError, match="weight"):
        EnsembleModel([m, m], [1.0]).fit(data.X_train, data.y_train)
    with pytest.raises(EnsembleError, match="meta-learner"):
        EnsembleModel([m], kind="stacking").fit(data.X_train, data.y_train)
    with pytest.raises(EnsembleError, match="kind"):
        EnsembleModel([m], [1.0], kind="bagging").fit(pd.DataFrame(), [])
