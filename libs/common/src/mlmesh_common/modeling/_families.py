"""Model families: default hyperparameters and estimator construction per problem type."""

from __future__ import annotations

from typing import Any

from ._device import DEVICES
from ._metrics import check_problem_type

FAMILIES: tuple[str, ...] = ("dummy", "linear", "lightgbm", "xgboost", "catboost")
GPU_FAMILIES: tuple[str, ...] = ("xgboost", "catboost")
"""Families that train on the GPU when ``device="cuda"``; the others always use the CPU."""

# Keys the builder sets itself from its keyword arguments; a params dict must not set them.
RESERVED_PARAMS: frozenset[str] = frozenset(
    {
        "random_state",
        "random_seed",
        "seed",
        "n_jobs",
        "nthread",
        "num_threads",
        "thread_count",
        "device",
        "device_type",
        "task_type",
        "devices",
        "verbose",
        "verbosity",
        "logging_level",
        "silent",
        "allow_writing_files",
        "train_dir",
        "tree_method",
    }
)

_CATBOOST_ALIASES = {
    "n_estimators": "iterations",
    "num_boost_round": "iterations",
    "num_trees": "iterations",
    "eta": "learning_rate",
    "max_depth": "depth",
    "reg_lambda": "l2_leaf_reg",
}


class UnknownFamilyError(ValueError):
    """A model family name that is not one of FAMILIES."""


class InvalidParamsError(ValueError):
    """Hyperparameters that the family's estimator does not accept."""


class UnknownDeviceError(ValueError):
    """A device other than cpu or cuda."""


def check_family(family: str) -> str:
    """Return ``family`` unchanged, or raise UnknownFamilyError naming the known ones."""
    if family not in FAMILIES:
        raise UnknownFamilyError(
            f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}"
        )
    return family


def effective_device(family: str, device: str) -> str:
    """The device ``family`` actually trains on when asked for ``device``."""
    check_family(family)
    if device not in DEVICES:
        raise UnknownDeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    return device if family in GPU_FAMILIES else "cpu"


def default_params(family: str, problem_type: str) -> dict[str, Any]:
    """Quick, sensible hyperparameters for ``family`` on ``problem_type``."""
    check_family(family)
    classification = check_problem_type(problem_type) != "regression"
    if family == "dummy":
        return {"strategy": "prior" if classification else "mean"}
    if family == "linear":
        return {"C": 1.0, "max_iter": 2000} if classification else {"alpha": 1.0}
    if family == "lightgbm":
        return {
            "n_estimators": 300,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 0.9,
            "subsample_freq": 1,
            "colsample_bytree": 0.9,
        }
    if family == "xgboost":
        return {
            "n_estimators": 300,
            "learning_rate": 0.1,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
        }
    return {"iterations": 300, "learning_rate": 0.1, "depth": 6, "l2_leaf_reg": 3.0}


def _merge_params(family: str, problem_type: str, params: dict[str, Any]) -> dict[str, Any]:
    reserved = sorted(RESERVED_PARAMS.intersection(params))
    if reserved:
        raise InvalidParamsError(
            f"params for {family} must not set {', '.join(reserved)}: the builder sets them "
            "from its device/seed/n_jobs arguments; remove them from params"
        )
    given = dict(params)
    if family == "catboost":
        given = {_CATBOOST_ALIASES.get(k, k): v for k, v in given.items()}
    return {**default_params(family, problem_type), **given}


def build_estimator(
    family: str,
    problem_type: str,
    params: dict[str, Any],
    *,
    device: str,
    seed: int,
    n_jobs: int = 1,
) -> Any:
    """Build an unfitted scikit-learn-compatible estimator of ``family``.

    ``params`` override :func:`default_params`. On ``device="cuda"`` XGBoost uses
    ``device="cuda"`` and CatBoost ``task_type="GPU"``; other families stay on the CPU.
    Classifiers expect integer-encoded labels (MeshModel encodes them).
    """
    check_family(family)
    check_problem_type(problem_type)
    if device not in DEVICES:
        raise UnknownDeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if n_jobs < 1:
        raise InvalidParamsError(f"n_jobs must be >= 1; got {n_jobs}")
    merged = _merge_params(family, problem_type, params)
    classification = problem_type != "regression"
    gpu = device == "cuda"
    try:
        if family == "dummy":
            from sklearn.dummy import DummyClassifier, DummyRegressor

            if classification:
                return DummyClassifier(random_state=seed, **merged)
            return DummyRegressor(**merged)
        if family == "linear":
            from sklearn.linear_model import LogisticRegression, Ridge

            if classification:
                return LogisticRegression(random_state=seed, **merged)
            return Ridge(random_state=seed, **merged)
        if family == "lightgbm":
            from lightgbm import LGBMClassifier, LGBMRegressor

            cls = LGBMClassifier if classification else LGBMRegressor
            return cls(random_state=seed, n_jobs=n_jobs, verbose=-1, **merged)
        if family == "xgboost":
            from xgboost import XGBClassifier, XGBRegressor

            cls = XGBClassifier if classification else XGBRegressor
            return cls(
                random_state=seed,
                n_jobs=n_jobs,
                tree_method="hist",
                device="cuda" if gpu else "cpu",
                verbosity=0,
                **merged,
            )
        from catboost import CatBoostClassifier, CatBoostRegressor

        cls = CatBoostClassifier if classification else CatBoostRegressor
        return cls(
            random_seed=seed,
            thread_count=n_jobs,
            task_type="GPU" if gpu else "CPU",
            verbose=0,
            allow_writing_files=False,
            **merged,
        )
    except TypeError as exc:
        raise InvalidParamsError(
            f"{family} ({problem_type}) rejected params {sorted(merged)}: {exc}"
        ) from exc
