"""Hyperparameter search spaces per model family, sampled through an Optuna trial."""

from __future__ import annotations

from typing import Any

import optuna

from mlmesh_common.modeling import check_family, check_problem_type

TUNABLE_FAMILIES: tuple[str, ...] = ("linear", "lightgbm", "xgboost", "catboost")


class UntunableFamilyError(ValueError):
    """A family with no search space (e.g. dummy, the baseline)."""


def suggest_params(
    trial: optuna.Trial, family: str, problem_type: str, *, max_trees: int = 800
) -> dict[str, Any]:
    """Sample estimator params for ``family`` from its search space.

    Learning rates and regularisation strengths are log-scaled. Trial parameter names are
    prefixed with the family (``lightgbm.learning_rate``) so one study can hold several
    families; the returned dict uses the estimator's own names and includes fixed settings.
    """
    check_family(family)
    classification = check_problem_type(problem_type) != "regression"
    if family not in TUNABLE_FAMILIES:
        raise UntunableFamilyError(
            f"family {family!r} has no search space; tune one of {', '.join(TUNABLE_FAMILIES)}"
        )
    if max_trees < 50:
        raise ValueError(f"max_trees must be at least 50; got {max_trees}")

    def p(name: str) -> str:
        return f"{family}.{name}"

    if family == "linear":
        if classification:
            return {"C": trial.suggest_float(p("C"), 1e-4, 1e2, log=True), "max_iter": 2000}
        return {"alpha": trial.suggest_float(p("alpha"), 1e-4, 1e3, log=True)}
    if family == "lightgbm":
        return {
            "n_estimators": trial.suggest_int(p("n_estimators"), 50, max_trees, log=True),
            "learning_rate": trial.suggest_float(p("learning_rate"), 1e-2, 0.3, log=True),
            "num_leaves": trial.suggest_int(p("num_leaves"), 8, 256, log=True),
            "max_depth": trial.suggest_int(p("max_depth"), 3, 12),
            "min_child_samples": trial.suggest_int(p("min_child_samples"), 5, 100, log=True),
            "subsample": trial.suggest_float(p("subsample"), 0.5, 1.0),
            "subsample_freq": 1,
            "colsample_bytree": trial.suggest_float(p("colsample_bytree"), 0.5, 1.0),
            "reg_alpha": trial.suggest_float(p("reg_alpha"), 1e-8, 10.0, log=True),
            "reg_lambda": trial.suggest_float(p("reg_lambda"), 1e-8, 10.0, log=True),
        }
    if family == "xgboost":
        return {
            "n_estimators": trial.suggest_int(p("n_estimators"), 50, max_trees, log=True),
            "learning_rate": trial.suggest_float(p("learning_rate"), 1e-2, 0.3, log=True),
            "max_depth": trial.suggest_int(p("max_depth"), 2, 10),
            "min_child_weight": trial.suggest_float(p("min_child_weight"), 1e-2, 20.0, log=True),
            "subsample": trial.suggest_float(p("subsample"), 0.5, 1.0),
            "colsample_bytree": trial.suggest_float(p("colsample_bytree"), 0.5, 1.0),
            "gamma": trial.suggest_float(p("gamma"), 1e-8, 5.0, log=True),
            "reg_alpha": trial.suggest_float(p("reg_alpha"), 1e-8, 10.0, log=True),
            "reg_lambda": trial.suggest_float(p("reg_lambda"), 1e-8, 10.0, log=True),
        }
    return {
        "iterations": trial.suggest_int(p("iterations"), 50, max_trees, log=True),
        "learning_rate": trial.suggest_float(p("learning_rate"), 1e-2, 0.3, log=True),
        "depth": trial.suggest_int(p("depth"), 3, 8),
        "l2_leaf_reg": trial.suggest_float(p("l2_leaf_reg"), 1.0, 30.0, log=True),
        "random_strength": trial.suggest_float(p("random_strength"), 1e-3, 10.0, log=True),
        "bagging_temperature": trial.suggest_float(p("bagging_temperature"), 0.0, 1.0),
    }
