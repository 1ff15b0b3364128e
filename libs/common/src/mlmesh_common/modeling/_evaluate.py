"""Cross-validation on the prepared folds and refit-then-score on held-out splits."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._data import PreparedData
from ._metrics import needs_proba, score
from ._model import MeshModel


@dataclass
class CVResult:
    """Scores of one family/params pair over the prepared CV folds.

    ``oof`` holds out-of-fold predictions for every train row: class probabilities
    (columns follow ``classes``) for classification, values for regression. When the time
    budget stopped CV early (``truncated``), rows of unscored folds are NaN.
    """

    metric: str
    fold_scores: list[float]
    mean: float
    std: float
    oof: np.ndarray
    fit_seconds: float
    n_folds: int
    classes: list[Any] | None = None
    truncated: bool = False

    @property
    def folds_completed(self) -> int:
        """Number of folds actually fitted and scored."""
        return len(self.fold_scores)


def score_model(model: MeshModel, X: pd.DataFrame, y: Any, metric: str) -> float:
    """Score a fitted MeshModel on ``(X, y)`` with ``metric``."""
    if needs_proba(metric):
        return score(metric, np.asarray(y), y_proba=model.predict_proba(X), labels=model.classes_)
    return score(metric, np.asarray(y), y_pred=model.predict(X))


def score_model_many(
    model: MeshModel, X: pd.DataFrame, y: Any, metrics: Sequence[str]
) -> dict[str, float]:
    """Score a fitted MeshModel with several metrics, predicting only once per kind."""
    y_arr = np.asarray(y)
    pred = proba = None
    out: dict[str, float] = {}
    for metric in metrics:
        if needs_proba(metric):
            if proba is None:
                proba = model.predict_proba(X)
            out[metric] = score(metric, y_arr, y_proba=proba, labels=model.classes_)
        else:
            if pred is None:
                pred = model.predict(X)
            out[metric] = score(metric, y_arr, y_pred=pred)
    return out


def _new_model(
    data: PreparedData, family: str, params: dict[str, Any], device: str, seed: int, n_jobs: int
) -> MeshModel:
    return MeshModel(
        data.preprocessor,
        family,
        data.problem_type,
        data.feature_columns,
        dict(params),
        device=device,
        seed=seed,
        n_jobs=n_jobs,
    )


def cross_validate(
    data: PreparedData,
    family: str,
    params: dict[str, Any],
    *,
    device: str,
    seed: int,
    time_budget_s: float | None = None,
    metric: str | None = None,
    n_jobs: int = 1,
) -> CVResult:
    """Cross-validate ``family`` with ``params`` on the train split using ``data.folds``.

    Each fold fits a fresh MeshModel (its own preprocessor clone) on the other folds and is
    scored with ``metric`` (default: the experiment's metric). With ``time_budget_s``, no
    new fold starts once the budget is spent; at least one fold always runs.
    """
    metric = metric or data.metric
    classification = data.problem_type != "regression"
    classes = np.unique(np.asarray(data.y_train)).tolist() if classification else None
    n = len(data.X_train)
    oof = np.full((n, len(classes)) if classes else n, np.nan, dtype=float)
    fold_ids = np.unique(data.folds)
    fold_scores: list[float] = []
    start = time.perf_counter()
    truncated = False
    for fold in fold_ids:
        if (
            time_budget_s is not None
            and fold_scores
            and time.perf_counter() - start >= time_budget_s
        ):
            truncated = True
            break
        held = data.folds == fold
        model = _new_model(data, family, params, device, seed, n_jobs)
        model.fit(data.X_train[~held], data.y_train[~held])
        X_held, y_held = data.X_train[held], data.y_train[held]
        if classification:
            proba = model.predict_proba(X_held)
            cols = [classes.index(c) for c in model.classes_]
            oof[np.ix_(np.flatnonzero(held), cols)] = proba
            oof[np.flatnonzero(held)] = np.nan_to_num(oof[np.flatnonzero(held)], nan=0.0)
            if needs_proba(metric):
                fold_score = score(metric, y_held, y_proba=proba, labels=model.classes_)
            else:
                fold_score = score(metric, y_held, y_pred=model.predict(X_held))
        else:
            pred = model.predict(X_held)
            oof[held] = pred
            fold_score = score(metric, y_held, y_pred=pred)
        fold_scores.append(fold_score)
    elapsed = time.perf_counter() - start
    return CVResult(
        metric=metric,
        fold_scores=fold_scores,
        mean=float(np.mean(fold_scores)),
        std=float(np.std(fold_scores)),
        oof=oof,
        fit_seconds=elapsed,
        n_folds=int(fold_ids.size),
        classes=classes,
        truncated=truncated,
    )


def fit_and_score(
    data: PreparedData,
    family: str,
    params: dict[str, Any],
    *,
    device: str,
    seed: int,
    fit_on: Sequence[str] = ("train", "valid"),
    eval_on: str = "test",
    metric: str | None = None,
    n_jobs: int = 1,
) -> tuple[MeshModel, float]:
    """Fit a MeshModel on the splits ``fit_on`` and score it on ``eval_on``."""
    metric = metric or data.metric
    X_fit, y_fit = data.combined(tuple(fit_on))
    X_eval, y_eval = data.split(eval_on)
    model = _new_model(data, family, params, device, seed, n_jobs).fit(X_fit, y_fit)
    return model, score_model(model, X_eval, y_eval, metric)
