"""Hyperparameter search spaces per model family, sampled through an Optuna trial.

Each family's space is data: a list of :class:`Dim` (range or choices, log scale, the
problem kinds it applies to, a condition on another dimension, and the coarse values a grid
search tries) plus a ``finish`` function that turns the sampled values into the estimator
params :func:`mlmesh_common.modeling.build_estimator` accepts (e.g. a penalty name into
``l1_ratio`` and a solver, or layer count and width into ``hidden_layer_sizes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from mlmesh_common.modeling import check_family, check_problem_type


class UntunableFamilyError(ValueError):
    """A family with no search space (dummy, the baseline, and AutoGluon, which tunes itself)."""


@dataclass(frozen=True)
class Dim:
    """One searched hyperparameter.

    ``choices`` makes it categorical; otherwise ``low``/``high`` bound a float (or an int
    when ``integer``), log-scaled when ``log``. ``task`` limits it to ``"classification"`` or
    ``"regression"``; ``when=(other, value)`` samples it only when dimension ``other`` took
    ``value``. ``grid`` lists the values a grid search tries; a dimension without grid
    values keeps the estimator default in grid search.
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()
    grid: tuple[Any, ...] = ()
    task: str = ""
    when: tuple[str, Any] | None = None

    def applies(self, classification: bool) -> bool:
        """Whether this dimension exists for the problem kind."""
        return not self.task or (self.task == "classification") == classification


Finish = Callable[[dict[str, Any], bool, int], dict[str, Any]]


@dataclass(frozen=True)
class Space:
    """The dimensions of one family and the function mapping samples to estimator params."""

    dims: tuple[Dim, ...]
    finish: Finish
    #: Whether the coarse grid covers the space well enough for "auto" to grid-search it.
    small: bool = False


def _keep(values: dict[str, Any], classification: bool, max_trees: int) -> dict[str, Any]:
    return values


def _finish_linear(values: dict[str, Any], classification: bool, max_trees: int) -> dict[str, Any]:
    # build_estimator maps the penalty to l1_ratio and picks the solver that supports it.
    values.setdefault("penalty", "l2")
    if values["penalty"] != "elasticnet":
        values.pop("l1_ratio", None)
    return values


def _finish_mlp(values: dict[str, Any], classification: bool, max_trees: int) -> dict[str, Any]:
    layers = int(values.pop("n_layers", 1))
    width = int(values.pop("width", 64))
    # Funnel: each hidden layer half as wide as the one before (at least 8 units).
    values["hidden_layer_sizes"] = [max(8, width // (2**i)) for i in range(layers)]
    return values


def _cap_trees(key: str) -> Finish:
    def finish(values: dict[str, Any], classification: bool, max_trees: int) -> dict[str, Any]:
        if key in values:
            values[key] = min(int(values[key]), max_trees)
        return values

    return finish


_LOG_C = Dim("C", 1e-3, 1e2, log=True, grid=(0.01, 0.1, 1.0, 10.0, 100.0))
_TREE_FEATURES = ("sqrt", "log2", 0.3, 0.5, 0.8, 1.0)

SPACES: dict[str, Space] = {
    "linear": Space(
        (
            Dim(
                "C",
                1e-4,
                1e2,
                log=True,
                task="classification",
                grid=(1e-3, 0.01, 0.1, 1.0, 10.0, 100.0),
            ),
            Dim("alpha", 1e-4, 1e2, log=True, task="regression", grid=(1e-3, 0.01, 0.1, 1.0, 10.0)),
            Dim("penalty", choices=("l2", "l1", "elasticnet"), grid=("l2", "l1", "elasticnet")),
            Dim("l1_ratio", 0.05, 0.95, when=("penalty", "elasticnet"), grid=(0.5,)),
        ),
        _finish_linear,
        small=True,
    ),
    "svm_linear": Space(
        (_LOG_C, Dim("epsilon", 1e-3, 1.0, log=True, task="regression", grid=(0.01, 0.1))),
        _keep,
        small=True,
    ),
    "svm_rbf": Space(
        (
            _LOG_C,
            Dim("gamma", 1e-4, 1.0, log=True, grid=(1e-3, 0.01, 0.1, 1.0)),
            Dim("epsilon", 1e-3, 1.0, log=True, task="regression", grid=(0.1,)),
        ),
        _keep,
        small=True,
    ),
    "gaussian_process": Space(
        (
            Dim("kernel", choices=("rbf", "matern"), grid=("rbf", "matern")),
            Dim("optimize_rows", 150, 600, log=True, integer=True, grid=(250, 500)),
        ),
        _keep,
        small=True,
    ),
    "knn": Space(
        (
            Dim("n_neighbors", 1, 50, log=True, integer=True, grid=(3, 5, 9, 15, 25, 41)),
            Dim("weights", choices=("uniform", "distance"), grid=("uniform", "distance")),
            Dim("p", choices=(1, 2), grid=(1, 2)),
        ),
        _keep,
        small=True,
    ),
    "random_forest": Space(
        (
            Dim("n_estimators", 100, 800, log=True, integer=True, grid=(300,)),
            Dim("max_features", choices=_TREE_FEATURES, grid=("sqrt", 0.5, 1.0)),
            Dim("min_samples_leaf", 1, 30, log=True, integer=True, grid=(1, 3, 10)),
            Dim("max_depth", 4, 40, log=True, integer=True),
            Dim("bootstrap", choices=(True, False)),
        ),
        _cap_trees("n_estimators"),
    ),
    "extra_trees": Space(
        (
            Dim("n_estimators", 100, 800, log=True, integer=True, grid=(300,)),
            Dim("max_features", choices=_TREE_FEATURES, grid=("sqrt", 0.5, 1.0)),
            Dim("min_samples_leaf", 1, 30, log=True, integer=True, grid=(1, 3, 10)),
            Dim("max_depth", 4, 40, log=True, integer=True),
        ),
        _cap_trees("n_estimators"),
    ),
    "hist_gb": Space(
        (
            Dim("learning_rate", 1e-2, 0.3, log=True, grid=(0.03, 0.1)),
            Dim("max_iter", 50, 1000, log=True, integer=True, grid=(300,)),
            Dim("max_leaf_nodes", 8, 128, log=True, integer=True, grid=(15, 31, 63)),
            Dim("min_samples_leaf", 5, 100, log=True, integer=True, grid=(10, 30)),
            Dim("l2_regularization", 1e-8, 10.0, log=True),
            Dim("max_features", 0.5, 1.0),
        ),
        _cap_trees("max_iter"),
    ),
    "xgboost": Space(
        (
            Dim("n_estimators", 50, 1000, log=True, integer=True, grid=(300,)),
            Dim("learning_rate", 1e-2, 0.3, log=True, grid=(0.03, 0.1)),
            # depth 1: boosted stumps, an additive model (strong on small, noisy tables)
            Dim("max_depth", 1, 10, integer=True, grid=(3, 6, 9)),
            Dim("min_child_weight", 1e-2, 20.0, log=True, grid=(1.0, 5.0)),
            Dim("subsample", 0.5, 1.0),
            Dim("colsample_bytree", 0.5, 1.0),
            Dim("gamma", 1e-8, 5.0, log=True),
            Dim("reg_alpha", 1e-8, 10.0, log=True),
            Dim("reg_lambda", 1e-8, 10.0, log=True),
        ),
        _cap_trees("n_estimators"),
    ),
    "lightgbm": Space(
        (
            Dim("n_estimators", 50, 1000, log=True, integer=True, grid=(300,)),
            Dim("learning_rate", 1e-2, 0.3, log=True, grid=(0.03, 0.1)),
            Dim("num_leaves", 8, 256, log=True, integer=True, grid=(15, 31, 63)),
            Dim("max_depth", 3, 12, integer=True),
            Dim("min_child_samples", 5, 100, log=True, integer=True, grid=(10, 30)),
            Dim("subsample", 0.5, 1.0),
            Dim("colsample_bytree", 0.5, 1.0),
            Dim("reg_alpha", 1e-8, 10.0, log=True),
            Dim("reg_lambda", 1e-8, 10.0, log=True),
        ),
        lambda v, c, m: {**_cap_trees("n_estimators")(v, c, m), "subsample_freq": 1},
    ),
    "catboost": Space(
        (
            Dim("iterations", 50, 1000, log=True, integer=True, grid=(300,)),
            Dim("learning_rate", 1e-2, 0.3, log=True, grid=(0.03, 0.1)),
            Dim("depth", 3, 8, integer=True, grid=(4, 6, 8)),
            Dim("l2_leaf_reg", 1.0, 30.0, log=True, grid=(3.0, 10.0)),
            Dim("random_strength", 1e-3, 10.0, log=True),
            Dim("bagging_temperature", 0.0, 1.0),
        ),
        _cap_trees("iterations"),
    ),
    "mlp": Space(
        (
            Dim("n_layers", 1, 3, integer=True, grid=(1, 2)),
            Dim("width", 16, 256, log=True, integer=True, grid=(64, 128)),
            Dim("alpha", 1e-6, 1e-1, log=True, grid=(1e-4, 1e-2)),
            Dim("learning_rate_init", 1e-4, 1e-2, log=True, grid=(1e-3,)),
        ),
        _finish_mlp,
    ),
}

TUNABLE_FAMILIES: tuple[str, ...] = tuple(SPACES)
"""Families with a search space: every model family except dummy and autogluon."""


def _space(family: str, problem_type: str) -> tuple[Space, bool]:
    check_family(family)
    classification = check_problem_type(problem_type) != "regression"
    if family not in SPACES:
        raise UntunableFamilyError(
            f"family {family!r} has no search space; tune one of {', '.join(TUNABLE_FAMILIES)}"
        )
    return SPACES[family], classification


def _suggest(trial: optuna.Trial, family: str, dim: Dim, grid: bool) -> Any:
    name = f"{family}.{dim.name}"
    if grid:
        return trial.suggest_categorical(name, list(dim.grid))
    if dim.choices:
        return trial.suggest_categorical(name, list(dim.choices))
    if dim.integer:
        return trial.suggest_int(name, int(dim.low), int(dim.high), log=dim.log)
    return trial.suggest_float(name, float(dim.low), float(dim.high), log=dim.log)


def suggest_params(
    trial: optuna.Trial,
    family: str,
    problem_type: str,
    *,
    max_trees: int = 1000,
    grid: bool = False,
) -> dict[str, Any]:
    """Sample estimator params for ``family`` from its search space.

    Trial parameter names are prefixed with the family (``lightgbm.learning_rate``); the
    returned dict uses the estimator's own names, with derived settings added (solver,
    hidden_layer_sizes...). With ``grid`` only the dimensions that have grid values are
    sampled (from those values), so the family's GridSampler covers the trial's space.
    ``max_trees`` caps the number of trees/boosting rounds.
    """
    space, classification = _space(family, problem_type)
    if max_trees < 10:
        raise ValueError(f"max_trees must be at least 10; got {max_trees}")
    values: dict[str, Any] = {}
    for dim in space.dims:
        if not dim.applies(classification) or (grid and not dim.grid):
            continue
        if dim.when is not None and values.get(dim.when[0]) != dim.when[1]:
            continue
        values[dim.name] = _suggest(trial, family, dim, grid)
    return space.finish(values, classification, max_trees)


def grid_search_space(family: str, problem_type: str) -> dict[str, list[Any]]:
    """The family's coarse grid as an Optuna GridSampler search space (prefixed names)."""
    space, classification = _space(family, problem_type)
    return {
        f"{family}.{dim.name}": list(dim.grid)
        for dim in space.dims
        if dim.grid and dim.applies(classification)
    }


def grid_size(family: str, problem_type: str) -> int:
    """Number of points in the family's coarse grid."""
    space, classification = _space(family, problem_type)
    return math.prod(len(d.grid) for d in space.dims if d.grid and d.applies(classification))


def is_small_space(family: str) -> bool:
    """Whether the family's coarse grid covers its space (so "auto" may grid-search it)."""
    return family in SPACES and SPACES[family].small
