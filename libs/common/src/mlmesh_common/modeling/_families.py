"""Model families: default hyperparameters, estimator construction and family-aware fitting.

Every family in :data:`FAMILIES` (``problems.MODEL_FAMILIES``) builds for binary,
multiclass and regression problems. Params are plain JSON values; a few keys are *meta*
params (:data:`META_PARAMS`) that :class:`~mlmesh_common.modeling.MeshModel` consumes
itself rather than passing to the estimator:

- ``max_train_rows`` (svm_rbf, knn, gaussian_process): subsample the training rows above this count
  (stratified for classification) and record it on the fitted model.
- ``early_stopping_rounds`` (xgboost, lightgbm, catboost): stop adding trees when the
  score on an inner validation slice of the training rows has not improved for this many
  rounds, then refit on all training rows with the best number of rounds (so the final
  estimator is a plain native model, exportable as-is). 0 disables it. hist_gb and mlp use
  scikit-learn's own ``early_stopping`` / ``validation_fraction`` instead.

Native categoricals: tree families receive the PREPARED folder's tree preprocessor output,
whose categorical columns hold integer codes (negative = missing). lightgbm gets them as
``categorical_feature``, catboost as ``cat_features`` (as int columns of a DataFrame),
hist_gb as ``categorical_features`` (columns with fewer than 255 codes; others stay
numeric). XGBoost treats the codes as ordered numbers: its native categorical support needs
a pandas ``category`` frame whose categories must match between fit and predict, which
adds a failure mode for little gain over ordinal codes with deep trees; random_forest and
extra_trees (no native support in scikit-learn) do the same.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..problems import MODEL_FAMILIES
from ._device import DEVICES
from ._metrics import check_problem_type

FAMILIES: tuple[str, ...] = tuple(MODEL_FAMILIES)
GPU_FAMILIES: tuple[str, ...] = ("xgboost", "catboost", "autogluon")
"""Families that train on the GPU when ``device="cuda"``; the others always use the CPU."""
TREE_FAMILIES: tuple[str, ...] = (
    "random_forest",
    "extra_trees",
    "hist_gb",
    "xgboost",
    "lightgbm",
    "catboost",
)
"""Families that get the tree preprocessor (no scaling, categorical codes) when it exists."""
NATIVE_CATEGORICAL_FAMILIES: tuple[str, ...] = ("hist_gb", "lightgbm", "catboost")
"""Tree families that are told which columns are categorical codes."""
RAW_FEATURE_FAMILIES: tuple[str, ...] = ("autogluon",)
"""Families fitted on the raw feature columns (they do their own preprocessing)."""
EARLY_STOPPING_FAMILIES: tuple[str, ...] = ("xgboost", "lightgbm", "catboost", "hist_gb", "mlp")
"""Families that stop adding trees/epochs on an inner validation slice of the train rows."""
TIME_LIMITED_FAMILIES: tuple[str, ...] = ("autogluon",)
"""Families with a ``time_limit`` param that cross-validation sets from its budget."""

META_PARAMS: frozenset[str] = frozenset({"max_train_rows", "early_stopping_rounds"})
"""Params MeshModel consumes itself (row cap, early stopping) instead of the estimator."""

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
        "num_gpus",
        "num_cpus",
        "path",
        "categorical_feature",
        "categorical_features",
        "cat_features",
        "problem_type",
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
_PENALTIES = ("l2", "l1", "elasticnet")
#: Rows below which the boosters skip early stopping (the inner slice would be too small).
MIN_ROWS_FOR_EARLY_STOPPING = 200
#: Round cap of the boosters when early stopping was asked for but skipped (too few rows).
SMALL_DATA_ROUNDS = 200
_HGB_MAX_CATEGORIES = 255
_log = logging.getLogger(__name__)


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
    """The device ``family`` trains on when asked for ``device`` (before any fallback)."""
    check_family(family)
    if device not in DEVICES:
        raise UnknownDeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    return device if family in GPU_FAMILIES else "cpu"


def default_params(family: str, problem_type: str) -> dict[str, Any]:
    """Quick, sensible hyperparameters for ``family`` on ``problem_type`` (JSON values)."""
    check_family(family)
    classification = check_problem_type(problem_type) != "regression"
    if family == "dummy":
        return {"strategy": "prior" if classification else "mean"}
    if family == "linear":
        if classification:
            return {"penalty": "l2", "C": 1.0, "max_iter": 2000}
        return {"penalty": "l2", "alpha": 1.0}
    if family == "svm_linear":
        return {"C": 1.0, "max_iter": 5000}
    if family == "svm_rbf":
        return {"C": 1.0, "gamma": "scale", "max_train_rows": 10_000}
    if family == "knn":
        return {"n_neighbors": 15, "weights": "distance", "p": 2, "max_train_rows": 50_000}
    if family in ("random_forest", "extra_trees"):
        return {
            "n_estimators": 300,
            "max_features": "sqrt" if classification else 1.0,
            "min_samples_leaf": 1,
        }
    if family == "hist_gb":
        return {
            "max_iter": 500,
            "learning_rate": 0.05,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 0.0,
            "early_stopping": True,
            "validation_fraction": 0.1,
            "n_iter_no_change": 20,
        }
    if family == "lightgbm":
        return {
            "n_estimators": 1000,
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "early_stopping_rounds": 50,
        }
    if family == "xgboost":
        return {
            "n_estimators": 1000,
            "learning_rate": 0.05,
            "max_depth": 6,
            "min_child_weight": 1.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "early_stopping_rounds": 50,
        }
    if family == "catboost":
        return {
            "iterations": 1000,
            "learning_rate": 0.08,
            "depth": 6,
            "l2_leaf_reg": 3.0,
            "early_stopping_rounds": 50,
        }
    if family == "gaussian_process":
        return {"kernel": "rbf", "ard": True, "optimize_rows": 250, "max_train_rows": 3000}
    if family == "mlp":
        return {
            "hidden_layer_sizes": [128, 64],
            "alpha": 1e-4,
            "learning_rate_init": 1e-3,
            "max_iter": 300,
            "early_stopping": True,
            "validation_fraction": 0.1,
            "n_iter_no_change": 10,
        }
    # autogluon: cross-validation sets time_limit per fold from its budget; without a budget
    # (a final refit) AutoGluonEstimator's own default applies unless params set one.
    return {"presets": "medium_quality"}


def split_params(family: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``params`` into (estimator params, meta params MeshModel consumes)."""
    meta = {k: v for k, v in params.items() if k in META_PARAMS}
    rest = {k: v for k, v in params.items() if k not in META_PARAMS}
    return rest, meta


def _merge_params(family: str, problem_type: str, params: dict[str, Any]) -> dict[str, Any]:
    reserved = sorted(RESERVED_PARAMS.intersection(params))
    if reserved:
        raise InvalidParamsError(
            f"params for {family} must not set {', '.join(reserved)}: the builder sets them "
            "from its device/seed/n_jobs arguments and the data; remove them from params"
        )
    given = dict(params)
    if family == "catboost":
        given = {_CATBOOST_ALIASES.get(k, k): v for k, v in given.items()}
    return {**default_params(family, problem_type), **given}


def _check_penalty(penalty: Any) -> str:
    if penalty not in _PENALTIES:
        raise InvalidParamsError(
            f"linear penalty must be one of {', '.join(_PENALTIES)}; got {penalty!r}"
        )
    return str(penalty)


def _linear(problem_type: str, p: dict[str, Any], seed: int, n_jobs: int) -> Any:
    penalty = _check_penalty(p.pop("penalty", "l2"))
    l1_ratio = p.pop("l1_ratio", 0.5)
    if problem_type != "regression":
        from sklearn.linear_model import LogisticRegression

        ratio = {"l2": 0.0, "l1": 1.0, "elasticnet": l1_ratio}[penalty]
        # lbfgs handles l2; l1 needs liblinear (binary only) or saga; elastic net needs saga.
        default_solver = (
            "lbfgs"
            if penalty == "l2"
            else ("liblinear" if penalty == "l1" and problem_type == "binary" else "saga")
        )
        p.setdefault("solver", default_solver)
        return LogisticRegression(random_state=seed, l1_ratio=ratio, **p)
    if penalty == "l2":
        from sklearn.linear_model import Ridge

        return Ridge(random_state=seed, **p)
    if penalty == "l1":
        from sklearn.linear_model import Lasso

        p.setdefault("max_iter", 5000)
        return Lasso(random_state=seed, **p)
    from sklearn.linear_model import ElasticNet

    p.setdefault("max_iter", 5000)
    return ElasticNet(random_state=seed, l1_ratio=l1_ratio, **p)


def _scaled_target(regressor: Any) -> Any:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    # SVMs and MLPs assume a target of unit scale (epsilon, initialisation, step sizes).
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def _calibrated(classifier: Any, p: dict[str, Any]) -> Any:
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(
        classifier,
        method=p.pop("calibration", "sigmoid"),
        cv=int(p.pop("calibration_cv", 3)),
        ensemble=bool(p.pop("calibration_ensemble", False)),
    )


def build_estimator(
    family: str,
    problem_type: str,
    params: dict[str, Any],
    *,
    device: str,
    seed: int,
    n_jobs: int = 1,
    categorical_features: Sequence[int] | None = None,
) -> Any:
    """A fresh, unfitted estimator of ``family`` for ``problem_type``.

    ``params`` override :func:`default_params`; meta params (:data:`META_PARAMS`) are
    ignored here (MeshModel applies them). On ``device="cuda"`` XGBoost uses
    ``device="cuda"``, CatBoost ``task_type="GPU"`` and AutoGluon ``num_gpus=1``; other
    families stay on the CPU (LightGBM's pip build has no GPU support). Classifiers expect
    integer-encoded labels (MeshModel encodes them). ``categorical_features`` are column
    indices holding integer codes: catboost and hist_gb take them at construction, lightgbm
    at fit (see :func:`fit_estimator`).
    """
    check_family(family)
    check_problem_type(problem_type)
    if device not in DEVICES:
        raise UnknownDeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if n_jobs < 1:
        raise InvalidParamsError(f"n_jobs must be >= 1; got {n_jobs}")
    merged, _meta = split_params(family, _merge_params(family, problem_type, params))
    classification = problem_type != "regression"
    gpu = device == "cuda"
    cats = [int(i) for i in categorical_features or ()]
    try:
        return _build(family, problem_type, classification, merged, gpu, seed, n_jobs, cats)
    except TypeError as exc:
        raise InvalidParamsError(
            f"{family} ({problem_type}) rejected params {sorted(merged)}: {exc}"
        ) from exc


def _build(
    family: str,
    problem_type: str,
    classification: bool,
    p: dict[str, Any],
    gpu: bool,
    seed: int,
    n_jobs: int,
    cats: list[int],
) -> Any:
    if family == "dummy":
        from sklearn.dummy import DummyClassifier, DummyRegressor

        if classification:
            return DummyClassifier(random_state=seed, **p)
        return DummyRegressor(**p)
    if family == "linear":
        return _linear(problem_type, p, seed, n_jobs)
    if family == "svm_linear":
        from sklearn.svm import LinearSVC, LinearSVR

        if classification:
            calib = {k: p.pop(k) for k in list(p) if k.startswith("calibration")}
            return _calibrated(LinearSVC(random_state=seed, **p), calib)
        return _scaled_target(LinearSVR(random_state=seed, **p))
    if family == "svm_rbf":
        from sklearn.svm import SVC, SVR

        if classification:
            calib = {k: p.pop(k) for k in list(p) if k.startswith("calibration")}
            return _calibrated(SVC(kernel="rbf", random_state=seed, **p), calib)
        return _scaled_target(SVR(kernel="rbf", **p))
    if family == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsClassifier if classification else KNeighborsRegressor
        return cls(n_jobs=n_jobs, **p)
    if family in ("random_forest", "extra_trees"):
        from sklearn.ensemble import (
            ExtraTreesClassifier,
            ExtraTreesRegressor,
            RandomForestClassifier,
            RandomForestRegressor,
        )

        forest = {
            ("random_forest", True): RandomForestClassifier,
            ("random_forest", False): RandomForestRegressor,
            ("extra_trees", True): ExtraTreesClassifier,
            ("extra_trees", False): ExtraTreesRegressor,
        }[(family, classification)]
        return forest(random_state=seed, n_jobs=n_jobs, **p)
    if family == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return cls(random_state=seed, categorical_features=cats or None, **p)
    if family == "gaussian_process":
        from ._gaussian_process import GaussianProcessEstimator

        return GaussianProcessEstimator(problem_type, seed=seed, **p)
    if family == "mlp":
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        if "hidden_layer_sizes" in p:
            p["hidden_layer_sizes"] = tuple(int(u) for u in p["hidden_layer_sizes"])
        if classification:
            return MLPClassifier(random_state=seed, **p)
        return _scaled_target(MLPRegressor(random_state=seed, **p))
    if family == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        cls = LGBMClassifier if classification else LGBMRegressor
        return cls(random_state=seed, n_jobs=n_jobs, verbose=-1, **p)
    if family == "xgboost":
        from xgboost import XGBClassifier, XGBRegressor

        cls = XGBClassifier if classification else XGBRegressor
        return cls(
            random_state=seed,
            n_jobs=n_jobs,
            tree_method="hist",
            device="cuda" if gpu else "cpu",
            verbosity=0,
            **p,
        )
    if family == "catboost":
        from catboost import CatBoostClassifier, CatBoostRegressor

        cls = CatBoostClassifier if classification else CatBoostRegressor
        return cls(
            random_seed=seed,
            thread_count=n_jobs,
            task_type="GPU" if gpu else "CPU",
            verbose=0,
            allow_writing_files=False,
            cat_features=cats or None,
            **p,
        )
    from ._autogluon import AutoGluonEstimator

    return AutoGluonEstimator(
        problem_type=problem_type, num_gpus=1 if gpu else 0, num_cpus=n_jobs, seed=seed, **p
    )


# --- fitting ------------------------------------------------------------------------------


def hist_gb_categoricals(X: np.ndarray, categorical_features: Sequence[int]) -> list[int]:
    """The columns hist_gb can treat as categorical: codes below 255 (negative = missing)."""
    keep = []
    for i in categorical_features:
        col = np.asarray(X[:, i], dtype=float)
        finite = col[np.isfinite(col)]
        if finite.size == 0 or finite.max() < _HGB_MAX_CATEGORIES:
            keep.append(int(i))
    return keep


def _inner_split(
    n: int, y: np.ndarray, classification: bool, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Train/validation row indices for early stopping (10%, stratified), or None if too few."""
    if n < MIN_ROWS_FOR_EARLY_STOPPING:
        return None
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    strat = y if classification and np.bincount(y.astype(np.int64)).min() >= 2 else None
    try:
        tr, va = train_test_split(idx, test_size=0.1, random_state=seed, stratify=strat)
    except ValueError:
        return None
    if classification and np.unique(y[tr]).size < np.unique(y).size:
        return None
    return np.sort(tr), np.sort(va)


def _rows(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _best_rounds(family: str, estimator: Any) -> int | None:
    try:
        if family == "xgboost":
            return int(estimator.best_iteration) + 1
        if family == "lightgbm":
            best = int(estimator.best_iteration_)
            return best if best > 0 else None
        if family == "catboost":
            return int(estimator.get_best_iteration()) + 1
    except (AttributeError, TypeError, ValueError):
        return None
    return None


def fit_estimator(
    family: str,
    problem_type: str,
    estimator: Any,
    X: Any,
    y: np.ndarray,
    *,
    categorical_features: Sequence[int] = (),
    early_stopping_rounds: int | None = None,
    seed: int = 0,
) -> tuple[Any, dict[str, Any]]:
    """Fit ``estimator`` (from :func:`build_estimator`) on ``(X, y)`` the family's way.

    For xgboost, lightgbm and catboost with ``early_stopping_rounds`` and enough rows, a
    first fit on 90% of the rows watches the other 10% to find the best number of rounds,
    then a fresh copy is fitted on every row with that many rounds. With too few rows for
    that (< MIN_ROWS_FOR_EARLY_STOPPING) the rounds are capped at SMALL_DATA_ROUNDS.
    Returns ``(fitted estimator, info)``; info says what happened (``best_rounds``,
    ``early_stopped``), also for families without early stopping.
    """
    classification = problem_type != "regression"
    info: dict[str, Any] = {"early_stopped": False, "best_rounds": None}
    fit_kwargs: dict[str, Any] = {}
    if family == "lightgbm" and categorical_features:
        fit_kwargs["categorical_feature"] = [int(i) for i in categorical_features]
    rounds = int(early_stopping_rounds or 0)
    boosted = family in ("xgboost", "lightgbm", "catboost")
    cap_key = "iterations" if family == "catboost" else "n_estimators"
    split = None
    if rounds > 0 and boosted:
        split = _inner_split(len(y), y, classification, seed)
        if split is None:
            cap = int(estimator.get_params()[cap_key] or SMALL_DATA_ROUNDS)
            if cap > SMALL_DATA_ROUNDS:
                estimator.set_params(**{cap_key: SMALL_DATA_ROUNDS})
                info["rounds_cap"] = SMALL_DATA_ROUNDS
    if family in ("hist_gb", "mlp") and len(y) < MIN_ROWS_FOR_EARLY_STOPPING:
        # Too few rows for an inner validation slice: fit every iteration instead.
        key = "regressor__early_stopping" if hasattr(estimator, "regressor") else "early_stopping"
        estimator.set_params(**{key: False})
    if split is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have valid feature names.*")
            estimator.fit(X, y, **fit_kwargs)
        _record_iterations(family, estimator, info)
        return estimator, info

    from sklearn.base import clone

    tr, va = split
    X_tr, y_tr, X_va, y_va = _rows(X, tr), y[tr], _rows(X, va), y[va]
    cap = int(estimator.get_params()[cap_key] or 1000)
    # CatBoost's get_params does not round-trip through sklearn's clone; it has copy().
    final = estimator.copy() if family == "catboost" else clone(estimator)
    if family == "xgboost":
        estimator.set_params(early_stopping_rounds=rounds)
        estimator.fit(X_tr, y_tr, eval_set=[(X_va, y_va)], verbose=False)
    elif family == "lightgbm":
        import lightgbm

        estimator.fit(
            X_tr,
            y_tr,
            eval_X=(X_va,),
            eval_y=(y_va,),
            callbacks=[lightgbm.early_stopping(rounds, verbose=False)],
            **fit_kwargs,
        )
    else:
        estimator.set_params(early_stopping_rounds=rounds)
        estimator.fit(X_tr, y_tr, eval_set=(X_va, y_va))
    best = _best_rounds(family, estimator) or cap
    info.update(early_stopped=best < cap, best_rounds=best, rounds_cap=cap)
    # Refit on every row with the best number of rounds: a plain native model.
    final.set_params(**{cap_key: max(1, best)})
    final.fit(X, y, **fit_kwargs)
    return final, info


def _record_iterations(family: str, estimator: Any, info: dict[str, Any]) -> None:
    inner = getattr(estimator, "regressor_", estimator)
    if family in ("hist_gb", "mlp") and hasattr(inner, "n_iter_"):
        info["best_rounds"] = int(inner.n_iter_)
        limit = inner.get_params().get("max_iter")
        info["early_stopped"] = bool(limit and inner.n_iter_ < limit)


def xgboost_trained_device(estimator: Any) -> str:
    """The device an XGBoost model actually trained on (it silently uses the CPU without
    a usable GPU)."""
    try:
        config = json.loads(estimator.get_booster().save_config())
        return str(config["learner"]["generic_param"].get("device", "cpu")).split(":")[0]
    except (AttributeError, KeyError, ValueError, TypeError):
        return "cpu"
