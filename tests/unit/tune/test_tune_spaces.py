"""Search spaces: every tunable family samples params build_estimator accepts and fits."""

import numpy as np
import optuna
import pytest
from threadpoolctl import threadpool_limits

from mlmesh_common.modeling import build_estimator
from mlmesh_common.problems import MODEL_FAMILIES
from mlmesh_tune import (
    SPACES,
    TUNABLE_FAMILIES,
    UntunableFamilyError,
    grid_search_space,
    grid_size,
    suggest_params,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
PROBLEMS = ("binary", "multiclass", "regression")


def _tiny(problem_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    if problem_type == "binary":
        return X, (X[:, 0] > 0).astype(int)
    if problem_type == "multiclass":
        return X, np.digitize(X[:, 0], [-0.4, 0.4])
    return X, 2 * X[:, 0] + rng.normal(size=60)


def test_every_family_but_dummy_and_autogluon_has_a_space():
    assert set(TUNABLE_FAMILIES) == set(MODEL_FAMILIES) - {"dummy", "autogluon"}
    for family in ("dummy", "autogluon"):
        with pytest.raises(UntunableFamilyError, match="no search space"):
            suggest_params(optuna.create_study().ask(), family, "binary")


@pytest.mark.parametrize("family", TUNABLE_FAMILIES)
def test_space_samples_valid_params_that_fit(family):
    """Random and grid samples build on cpu and cuda, pass their params through, and fit."""
    for problem_type in PROBLEMS:
        X, y = _tiny(problem_type)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
        grid = optuna.create_study(
            sampler=optuna.samplers.GridSampler(grid_search_space(family, problem_type), seed=0)
        )
        samples = [
            suggest_params(study.ask(), family, problem_type, max_trees=15) for _ in range(4)
        ]
        grid_trial = grid.ask()
        samples.append(suggest_params(grid_trial, family, problem_type, grid=True, max_trees=15))
        assert set(grid_trial.params) <= set(grid_search_space(family, problem_type))
        for params in samples:
            for device in ("cpu", "cuda"):
                build_estimator(family, problem_type, params, device=device, seed=0)
        with threadpool_limits(1):
            est = build_estimator(family, problem_type, samples[0], device="cpu", seed=0)
            est.fit(X, y)
        assert np.asarray(est.predict(X)).size == 60


def test_log_scales_and_ranges():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        p = suggest_params(trial, "lightgbm", "binary", max_trees=300)
        assert 50 <= p["n_estimators"] <= 300 and p["subsample_freq"] == 1
        assert 0.01 <= p["learning_rate"] <= 0.3 and 8 <= p["num_leaves"] <= 256
        dist = trial.distributions
        assert dist["lightgbm.learning_rate"].log and dist["lightgbm.reg_lambda"].log
        assert not dist["lightgbm.subsample"].log
        svm = study.ask()
        s = suggest_params(svm, "svm_rbf", "binary")
        assert svm.distributions["svm_rbf.C"].log and svm.distributions["svm_rbf.gamma"].log
        assert set(s) == {"C", "gamma"}  # epsilon is for regression only
        knn = suggest_params(study.ask(), "knn", "regression")
        assert 1 <= knn["n_neighbors"] <= 50 and knn["weights"] in ("uniform", "distance")
        mlp = suggest_params(study.ask(), "mlp", "multiclass")
        sizes = mlp["hidden_layer_sizes"]
        assert 1 <= len(sizes) <= 3 and sizes == sorted(sizes, reverse=True)


def test_l1_ratio_only_for_elastic_net():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        p = suggest_params(trial, "linear", "binary")
        seen.add(p["penalty"])
        assert ("l1_ratio" in p) == (p["penalty"] == "elasticnet")
        assert ("linear.l1_ratio" in trial.params) == (p["penalty"] == "elasticnet")
        assert "alpha" not in p and 1e-4 <= p["C"] <= 1e2
    assert seen == {"l1", "l2", "elasticnet"}
    fixed = optuna.trial.FixedTrial({"linear.alpha": 0.5, "linear.penalty": "l2"})
    assert suggest_params(fixed, "linear", "regression") == {"alpha": 0.5, "penalty": "l2"}


def test_grids():
    assert grid_size("knn", "binary") == 6 * 2 * 2
    assert grid_size("linear", "binary") == 6 * 3  # l1_ratio has one grid value
    assert grid_size("svm_rbf", "regression") == 5 * 4
    space = grid_search_space("linear", "regression")
    assert "linear.C" not in space and space["linear.alpha"][0] == 1e-3
    assert all(SPACES[f].small for f in ("linear", "svm_linear", "svm_rbf", "knn"))
    assert not SPACES["lightgbm"].small


def test_bad_input():
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match="unknown model family"):
        suggest_params(trial, "svm", "binary")
    with pytest.raises(ValueError, match="unknown problem type"):
        suggest_params(trial, "linear", "ranking")
    with pytest.raises(ValueError, match="max_trees"):
        suggest_params(trial, "xgboost", "binary", max_trees=2)
