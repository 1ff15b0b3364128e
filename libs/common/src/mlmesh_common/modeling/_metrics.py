"""Scoring functions keyed by metric name, with their direction and input needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

PROBLEM_TYPES = ("binary", "multiclass", "regression")


class UnknownMetricError(ValueError):
    """A metric name that this module does not implement."""


class MetricInputError(ValueError):
    """Predictions or probabilities missing, misshaped or inconsistent for a metric."""


class UnknownProblemTypeError(ValueError):
    """A problem type other than binary, multiclass or regression."""


@dataclass(frozen=True)
class _MetricInfo:
    greater_is_better: bool
    needs_proba: bool
    problem_types: tuple[str, ...]


_METRICS: dict[str, _MetricInfo] = {
    "roc_auc": _MetricInfo(True, True, ("binary",)),
    "accuracy": _MetricInfo(True, False, ("binary", "multiclass")),
    "balanced_accuracy": _MetricInfo(True, False, ("binary", "multiclass")),
    "f1_macro": _MetricInfo(True, False, ("binary", "multiclass")),
    "log_loss": _MetricInfo(False, True, ("binary", "multiclass")),
    "rmse": _MetricInfo(False, False, ("regression",)),
    "mae": _MetricInfo(False, False, ("regression",)),
    "r2": _MetricInfo(True, False, ("regression",)),
}

METRICS: tuple[str, ...] = tuple(_METRICS)

_DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def _info(metric: str) -> _MetricInfo:
    try:
        return _METRICS[metric]
    except KeyError:
        raise UnknownMetricError(
            f"unknown metric {metric!r}; use one of {', '.join(METRICS)}"
        ) from None


def check_problem_type(problem_type: str) -> str:
    """Return ``problem_type`` unchanged, or raise UnknownProblemTypeError."""
    if problem_type not in PROBLEM_TYPES:
        raise UnknownProblemTypeError(
            f"unknown problem type {problem_type!r}; use one of {', '.join(PROBLEM_TYPES)}"
        )
    return problem_type


def greater_is_better(metric: str) -> bool:
    """True when a larger value of ``metric`` means a better model."""
    return _info(metric).greater_is_better


def needs_proba(metric: str) -> bool:
    """True when ``metric`` is computed from class probabilities rather than predictions."""
    return _info(metric).needs_proba


def default_metric(problem_type: str) -> str:
    """The headline metric of a problem type (roc_auc, accuracy or rmse)."""
    return _DEFAULT_METRIC[check_problem_type(problem_type)]


def metrics_for(problem_type: str) -> tuple[str, ...]:
    """All metrics that apply to ``problem_type``, headline metric first."""
    check_problem_type(problem_type)
    head = _DEFAULT_METRIC[problem_type]
    rest = [m for m, info in _METRICS.items() if problem_type in info.problem_types and m != head]
    return (head, *rest)


def _positive_proba(y_proba: np.ndarray) -> np.ndarray:
    if y_proba.ndim == 1:
        return y_proba
    if y_proba.ndim == 2 and y_proba.shape[1] == 2:
        return y_proba[:, 1]
    raise MetricInputError(
        f"roc_auc needs the positive-class probability as a 1-D array or an (n, 2) array; "
        f"got shape {y_proba.shape}"
    )


def score(
    metric: str,
    y_true: Any,
    y_pred: Any = None,
    y_proba: Any = None,
    labels: Sequence[Any] | None = None,
) -> float:
    """Compute ``metric`` for one set of predictions.

    ``y_pred`` holds predicted labels/values; ``y_proba`` holds class probabilities whose
    columns follow ``labels`` (for roc_auc, ``labels[1]`` is the positive class; a 1-D
    ``y_proba`` is the positive-class probability). Metrics that need probabilities
    (``needs_proba``) require ``y_proba``; the others require ``y_pred``.
    """
    info = _info(metric)
    y_true = np.asarray(y_true)
    if y_true.ndim != 1 or y_true.size == 0:
        raise MetricInputError(f"y_true must be a non-empty 1-D array; got shape {y_true.shape}")

    if info.needs_proba:
        if y_proba is None:
            raise MetricInputError(f"metric {metric!r} needs y_proba (class probabilities)")
        proba = np.asarray(y_proba, dtype=float)
        if proba.shape[0] != y_true.shape[0]:
            raise MetricInputError(
                f"y_proba has {proba.shape[0]} rows but y_true has {y_true.shape[0]}"
            )
        label_list = list(labels) if labels is not None else None
        if metric == "roc_auc":
            positive = _positive_proba(proba)
            if label_list is not None:
                if len(label_list) != 2:
                    raise MetricInputError(
                        f"roc_auc is for binary problems; got {len(label_list)} labels"
                    )
                y_bin = (y_true == label_list[1]).astype(int)
            else:
                y_bin = y_true
            if np.unique(y_bin).size < 2:
                raise MetricInputError(
                    "roc_auc is undefined when y_true holds a single class; "
                    "use larger or stratified evaluation sets"
                )
            return float(skm.roc_auc_score(y_bin, positive))
        # log_loss
        if proba.ndim == 1:
            proba = np.column_stack([1.0 - proba, proba])
        if label_list is not None and proba.shape[1] != len(label_list):
            raise MetricInputError(
                f"y_proba has {proba.shape[1]} columns but {len(label_list)} labels were given"
            )
        return float(skm.log_loss(y_true, proba, labels=label_list))

    if y_pred is None:
        raise MetricInputError(f"metric {metric!r} needs y_pred (predicted labels or values)")
    y_pred = np.asarray(y_pred)
    if y_pred.shape[0] != y_true.shape[0]:
        raise MetricInputError(
            f"y_pred has {y_pred.shape[0]} rows but y_true has {y_true.shape[0]}"
        )
    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if metric == "balanced_accuracy":
        return float(skm.balanced_accuracy_score(y_true, y_pred))
    if metric == "f1_macro":
        return float(skm.f1_score(y_true, y_pred, average="macro"))
    y_true_f = y_true.astype(float)
    y_pred_f = y_pred.astype(float)
    if metric == "rmse":
        return float(skm.root_mean_squared_error(y_true_f, y_pred_f))
    if metric == "mae":
        return float(skm.mean_absolute_error(y_true_f, y_pred_f))
    if metric == "r2":
        return float(skm.r2_score(y_true_f, y_pred_f))
    raise AssertionError(f"metric {metric!r} is registered but not implemented")  # pragma: no cover
