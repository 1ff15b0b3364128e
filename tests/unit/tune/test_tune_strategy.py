"""Sampler and pruner choice, objective directions."""

import optuna
import pytest

from mlmesh_tune import (
    StrategyError,
    make_pruner,
    make_sampler,
    objective_directions,
    resolve_sampler,
)


def test_objective_directions():
    assert objective_directions("roc_auc") == ["maximize"]
    assert objective_directions("rmse", ["score"]) == ["minimize"]
    assert objective_directions("accuracy", ["score", "latency"]) == ["maximize", "minimize"]
    with pytest.raises(StrategyError, match="unknown tuning objective"):
        objective_directions("rmse", ["size"])


@pytest.mark.parametrize(
    ("requested", "family", "trials", "n_obj", "expected"),
    [
        ("auto", "knn", 30, 1, "grid"),  # 24 grid points fit in 30 trials
        ("auto", "knn", 10, 1, "tpe"),  # they do not fit in 10
        ("", "svm_rbf", 20, 1, "grid"),
        ("auto", "lightgbm", 500, 1, "tpe"),  # large space: never grid on its own
        ("auto", "lightgbm", 100, 2, "nsga2"),  # long multi-objective search
        ("auto", "lightgbm", 20, 2, "tpe"),  # short one: multi-objective TPE
        ("random", "lightgbm", 20, 1, "random"),
        ("grid", "xgboost", 5, 1, "grid"),  # asked for: coarse grid even if it is larger
        ("tpe", "knn", 100, 1, "tpe"),
    ],
)
def test_resolve_sampler(requested, family, trials, n_obj, expected):
    got = resolve_sampler(requested, family, "binary", trials_for_family=trials, n_objectives=n_obj)
    assert got == expected


def test_make_sampler():
    tpe = make_sampler("tpe", "lightgbm", "binary", seed=1, trials_for_family=12)
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert tpe._multivariate and tpe._n_startup_trials == 4
    assert isinstance(
        make_sampler("random", "knn", "binary", seed=1), optuna.samplers.RandomSampler
    )
    assert isinstance(make_sampler("nsga2", "knn", "binary", seed=1), optuna.samplers.NSGAIISampler)
    grid = make_sampler("grid", "knn", "regression", seed=1)
    assert isinstance(grid, optuna.samplers.GridSampler) and len(grid._all_grids) == 24
    with pytest.raises(StrategyError, match="unknown sampler"):
        resolve_sampler("cmaes", "knn", "binary", trials_for_family=5, n_objectives=1)
    with pytest.raises(StrategyError, match="unknown sampler"):
        make_sampler("auto", "knn", "binary", seed=0)


def test_make_pruner():
    assert isinstance(make_pruner("median", 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("", 5), optuna.pruners.MedianPruner)
    sh = make_pruner("successive_halving", 5)
    assert isinstance(sh, optuna.pruners.SuccessiveHalvingPruner)
    hb = make_pruner("hyperband", 5)
    assert isinstance(hb, optuna.pruners.HyperbandPruner) and hb._max_resource == 5
    assert isinstance(make_pruner("none", 5), optuna.pruners.NopPruner)
    # No pruning with several objectives (Optuna cannot) or a single fold.
    assert isinstance(make_pruner("median", 5, n_objectives=2), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median", 1), optuna.pruners.NopPruner)
    with pytest.raises(StrategyError, match="unknown pruner"):
        make_pruner("patient", 5)
