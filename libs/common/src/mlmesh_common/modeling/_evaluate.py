"""Cross-validation on the prepared folds and refit-then-score on held-out splits."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._autogluon import MIN_TIME_LIMIT_S
from ._cost import measure_latency_ms, model_size_bytes
from ._data import PreparedData
from ._families import TIME_LIMITED_FAMILIES
from ._metrics import needs_proba, score
from ._model import MeshModel

OnFold = Callable[[int, float], None]
#: Share of a time-limited family's per-fold budget it may use (the rest: predict, score).
_TIME_LIMIT_SHARE = 0.85


@dataclass
class CVResult:
    """Scores of one family/params pair over the prepared CV folds.

    ``oof`` holds out-of-fold predictions for every train row: class probabilities
    (columns follow ``classes``) for classification, values for regression. When the time
    budget stopped CV early (``truncated``), rows of unscored folds are NaN.

    ``device`` is where the folds really trained (``"cpu"`` after a GPU fallback, with
    ``device_fallback_reason``). With ``measure=True``, ``latency_ms`` and ``size_bytes``
    describe the last fold's fitted model (see measure_latency_ms / model_size_bytes).
    ``fit_info`` is the last fold model's ``fit_info_`` (early stopping, subsampling).
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
    device: str = "cpu"
    device_fallback_reason: str = ""
    latency_ms: float | None = None
    size_bytes: int | None = None
    fit_info: dict[str, Any] = field(default_factory=dict)

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


def new_model(
    data: PreparedData,
    family: str,
    params: dict[str, Any],
    *,
    device: str,
    seed: int,
    n_jobs: int = 1,
) -> MeshModel:
    """An unfitted MeshModel of ``family`` wired to ``data``: the right preprocessor for the
    family (tree or dense), its categorical-code columns and, for AutoGluon, the
    experiment's metric as ``eval_metric`` unless params name one."""
    return MeshModel(
        data.preprocessor_for(family),
        family,
        data.problem_type,
        data.feature_columns,
        _with_run_settings(family, params, data.metric, None),
        device=device,
        seed=seed,
        n_jobs=n_jobs,
        categorical_features=data.categorical_features_for(family) or None,
    )


def _with_run_settings(
    family: str, params: dict[str, Any], metric: str, time_limit_s: float | None
) -> dict[str, Any]:
    """Params plus what a time-limited family (AutoGluon) takes from the run: the metric to
    optimise and the fold's time limit (never above the params' own ``time_limit``)."""
    if family not in TIME_LIMITED_FAMILIES:
        return dict(params)
    out = dict(params)
    out.setdefault("eval_metric", metric)
    if time_limit_s is not None:
        own = float(out.get("time_limit", time_limit_s))
        out["time_limit"] = max(MIN_TIME_LIMIT_S, min(own, time_limit_s))
    return out


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
    on_fold: OnFold | None = None,
    measure: bool = False,
) -> CVResult:
    """Cross-validate ``family`` with ``params`` on the train split using ``data.folds``.

    Each fold fits a fresh MeshModel (its own preprocessor clone) on the other folds and is
    scored with ``metric`` (default: the experiment's metric). With ``time_budget_s``, no
    new fold starts once the budget is spent; at least one fold always runs; AutoGluon gets
    an even share of the remaining budget per remaining fold as its ``time_limit``.
    ``on_fold(fold_index, score)`` is called after each fold; an exception it raises stops
    CV and propagates (tune raises optuna.TrialPruned from it). When a fold's GPU fit falls
    back to the CPU, the remaining folds go straight to the CPU. ``measure=True`` fills
    ``latency_ms`` and ``size_bytes`` from the last fold's model.
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
    used_device, reason = device, ""
    model: MeshModel | None = None
    X_held = None
    for position, fold in enumerate(fold_ids):
        elapsed = time.perf_counter() - start
        if time_budget_s is not None and fold_scores and elapsed >= time_budget_s:
            truncated = True
            break
        fold_limit = None
        if time_budget_s is not None:
            left = max(0.0, time_budget_s - elapsed)
            fold_limit = _TIME_LIMIT_SHARE * left / (len(fold_ids) - position)
        held = data.folds == fold
        fold_params = _with_run_settings(family, params, metric, fold_limit)
        model = new_model(data, family, fold_params, device=used_device, seed=seed, n_jobs=n_jobs)
        model.fit(data.X_train[~held], data.y_train[~held])
        if model.device_fallback_reason_:
            used_device, reason = "cpu", model.device_fallback_reason_
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
        if on_fold is not None:
            on_fold(int(position), float(fold_score))
    elapsed = time.perf_counter() - start
    latency = size = None
    if measure and model is not None:
        latency = measure_latency_ms(model, X_held)
        size = model_size_bytes(model)
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
        device=model.device_ if model is not None else device,
        device_fallback_reason=reason,
        latency_ms=latency,
        size_bytes=size,
        fit_info=dict(model.fit_info_) if model is not None else {},
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
    fit_params = _with_run_settings(family, params, metric, None)
    model = new_model(data, family, fit_params, device=device, seed=seed, n_jobs=n_jobs)
    model.fit(X_fit, y_fit)
    return model, score_model(model, X_eval, y_eval, metric)
