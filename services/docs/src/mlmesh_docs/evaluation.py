"""Evaluate the stored winner on the stored test split: the facts behind the report's plots.

Everything here is computed from the selected model (``model.joblib``) and the prepared
test split; nothing is copied from earlier stages except what it is compared against.
The result holds JSON-ready facts (``Evaluation.facts``) and the raw arrays the figures
are drawn from (``Evaluation.curves``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance

from mlmesh_common.modeling import (
    MeshModel,
    greater_is_better,
    metrics_for,
    needs_proba,
    score,
)

#: Bootstrap resamples for the test-metric confidence intervals.
N_BOOTSTRAP = 500
#: Permutation-importance repeats per feature.
N_PERMUTATION_REPEATS = 5
#: Rows shown in the error analysis.
N_WORST_ROWS = 10


class EvaluationError(ValueError):
    """The stored model cannot be evaluated on the stored test split."""


@dataclass
class Evaluation:
    """Facts (JSON-ready) and curves (arrays for the figures) of the winner on test."""

    problem_type: str
    metric: str
    facts: dict[str, Any]
    curves: dict[str, Any] = field(repr=False, default_factory=dict)


def evaluate(
    model: MeshModel,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    metric: str,
    *,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
) -> Evaluation:
    """Score ``model`` on the test split with every metric of its problem type, bootstrap
    95% confidence intervals, and the curves/tables for the report's figures."""
    if len(X_test) < 2:
        raise EvaluationError(
            f"the test split has {len(X_test)} row(s); at least 2 are needed to evaluate"
        )
    problem_type = model.problem_type
    y = np.asarray(y_test)
    rng = np.random.default_rng(seed)
    pred = model.predict(X_test)
    proba = model.predict_proba(X_test) if problem_type != "regression" else None
    labels = list(model.classes_) if proba is not None else None

    metrics = [m for m in metrics_for(problem_type)]
    if metric not in metrics:
        metrics.insert(0, metric)
    point = {m: _score(m, y, pred, proba, labels) for m in metrics}
    intervals = _bootstrap(metrics, y, pred, proba, labels, rng, n_bootstrap)
    facts: dict[str, Any] = {
        "n_test": int(len(y)),
        "metric": metric,
        "greater_is_better": greater_is_better(metric),
        "test_metrics": point,
        "confidence_intervals": intervals,
        "n_bootstrap": n_bootstrap,
        "importance": _importance(model, X_test, y_test, metric, seed),
    }
    curves: dict[str, Any] = {}
    if problem_type == "regression":
        _regression_facts(facts, curves, X_test, y, pred)
    else:
        _classification_facts(facts, curves, X_test, y, pred, proba, labels)
    return Evaluation(problem_type=problem_type, metric=metric, facts=facts, curves=curves)


def _score(metric: str, y: np.ndarray, pred: Any, proba: Any, labels: Any) -> float | None:
    try:
        if needs_proba(metric):
            return float(score(metric, y, y_proba=proba, labels=labels))
        return float(score(metric, y, y_pred=pred))
    except ValueError:  # e.g. roc_auc on a resample holding a single class
        return None


def _bootstrap(
    metrics: list[str],
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    labels: list[Any] | None,
    rng: np.random.Generator,
    n_bootstrap: int,
) -> dict[str, dict[str, float | None]]:
    """Percentile bootstrap 95% interval of each metric over resampled test rows.

    Metrics with a vectorised form (``fast_metric``) are computed from per-row statistics;
    the others call ``score`` on each resample.
    """
    n = len(y)
    samples = rng.integers(0, n, (n_bootstrap, n))
    out: dict[str, dict[str, float | None]] = {}
    for m in metrics:
        fast = fast_metric(m, y, pred, proba, labels, samples)
        if fast is not None:
            values = fast[np.isfinite(fast)]
        else:
            draws = []
            for idx in samples:
                sub_proba = proba[idx] if proba is not None else None
                value = _score(m, y[idx], pred[idx], sub_proba, labels)
                if value is not None and np.isfinite(value):
                    draws.append(value)
            values = np.asarray(draws, dtype=float)
        if len(values) < max(10, n_bootstrap // 10):
            out[m] = {"low": None, "high": None, "std": None}
            continue
        out[m] = {
            "low": float(np.percentile(values, 2.5)),
            "high": float(np.percentile(values, 97.5)),
            "std": float(values.std(ddof=1)),
        }
    return out


def fast_metric(
    metric: str,
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    labels: list[Any] | None,
    samples: np.ndarray,
) -> np.ndarray | None:
    """``metric`` on every resample (rows of ``samples`` index the test rows), vectorised;
    None for metrics without a vectorised form here. Matches ``score`` on each resample."""
    if metric in ("rmse", "mae", "r2"):
        err = y.astype(float) - pred.astype(float)
        if metric == "rmse":
            return np.sqrt(np.mean(err[samples] ** 2, axis=1))
        if metric == "mae":
            return np.mean(np.abs(err[samples]), axis=1)
        ys = y.astype(float)[samples]
        sst = np.sum((ys - ys.mean(axis=1, keepdims=True)) ** 2, axis=1)
        sse = np.sum(err[samples] ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sst > 0, 1 - sse / sst, np.nan)
    if metric == "accuracy":
        return np.mean((pred == y)[samples], axis=1)
    if metric == "log_loss" and proba is not None and labels is not None:
        index = {label: i for i, label in enumerate(labels)}
        if any(v not in index for v in y):
            return None
        true_col = np.array([index[v] for v in y])
        eps = np.finfo(proba.dtype).eps
        p_true = np.clip(proba[np.arange(len(y)), true_col], eps, 1 - eps)
        return np.mean(-np.log(p_true)[samples], axis=1)
    if metric in ("balanced_accuracy", "f1_macro"):
        classes = np.unique(np.concatenate([y, pred]))
        k = len(classes)
        t = np.searchsorted(classes, y)
        p = np.searchsorted(classes, pred)
        cells = (t * k + p)[samples]  # (B, n) cell of the confusion matrix per row
        counts = np.zeros((len(samples), k * k))
        np.add.at(counts, (np.arange(len(samples))[:, None], cells), 1)
        cm = counts.reshape(len(samples), k, k)
        tp = np.diagonal(cm, axis1=1, axis2=2)
        actual = cm.sum(axis=2)
        predicted = cm.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            if metric == "balanced_accuracy":
                present = actual > 0
                recall = np.where(present, tp / np.where(present, actual, 1), 0.0)
                return recall.sum(axis=1) / present.sum(axis=1)
            used = (actual + predicted) > 0
            f1 = np.where(used, 2 * tp / np.where(used, actual + predicted, 1), 0.0)
            return f1.sum(axis=1) / used.sum(axis=1)
    return None


def _importance(
    model: MeshModel, X: pd.DataFrame, y: pd.Series, metric: str, seed: int
) -> list[dict[str, Any]]:
    """Permutation importance of each input column on the test split, largest first."""
    sign = 1.0 if greater_is_better(metric) else -1.0

    def scorer(estimator: MeshModel, X_: pd.DataFrame, y_: Any) -> float:
        y_arr = np.asarray(y_)
        if needs_proba(metric):
            value = score(metric, y_arr, y_proba=estimator.predict_proba(X_),
                          labels=estimator.classes_)
        else:
            value = score(metric, y_arr, y_pred=estimator.predict(X_))
        return sign * float(value)

    features = X[list(model.feature_columns)]
    result = permutation_importance(
        model, features, y, scoring=scorer, n_repeats=N_PERMUTATION_REPEATS,
        random_state=seed, n_jobs=1,
    )
    rows = [
        {"feature": str(name), "mean": float(mean), "std": float(std)}
        for name, mean, std in zip(
            features.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(rows, key=lambda r: -r["mean"])


def _classification_facts(
    facts: dict[str, Any],
    curves: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray,
    labels: list[Any],
) -> None:
    label_strs = [str(c) for c in labels]
    matrix = skm.confusion_matrix(y, pred, labels=labels)
    facts["classes"] = label_strs
    facts["confusion_matrix"] = matrix.tolist()
    per_class = []
    for i, label in enumerate(label_strs):
        support = int(matrix[i].sum())
        correct = int(matrix[i, i])
        predicted = int(matrix[:, i].sum())
        per_class.append({
            "label": label,
            "support": support,
            "errors": support - correct,
            "error_rate": (support - correct) / support if support else None,
            "precision": correct / predicted if predicted else None,
            "recall": correct / support if support else None,
        })
    facts["per_class"] = per_class
    roc, pr = [], []
    for i, label in enumerate(label_strs):
        if len(labels) == 2 and i == 0:
            continue  # binary: one curve for the positive class
        truth = (y == labels[i]).astype(int)
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = skm.roc_curve(truth, proba[:, i])
        precision, recall, _ = skm.precision_recall_curve(truth, proba[:, i])
        roc.append({"label": label, "fpr": fpr, "tpr": tpr,
                    "auc": float(skm.auc(fpr, tpr))})
        pr.append({"label": label, "precision": precision, "recall": recall,
                   "ap": float(skm.average_precision_score(truth, proba[:, i])),
                   "prevalence": float(truth.mean())})
    curves["roc"], curves["pr"] = roc, pr
    facts["roc_auc_by_class"] = {c["label"]: c["auc"] for c in roc}
    facts["average_precision_by_class"] = {c["label"]: c["ap"] for c in pr}
    # Calibration: the positive-class probability (binary) or every class probability
    # one-vs-rest (multiclass) against how often that class is the actual one.
    onehot = (np.asarray(labels, dtype=object)[None, :] == y.astype(object)[:, None])
    if len(labels) == 2:
        predicted_p, observed_y = proba[:, 1], onehot[:, 1].astype(int)
    else:
        predicted_p, observed_y = proba.ravel(), onehot.ravel().astype(int)
    n_bins = max(2, min(10, len(y) // 10))
    if observed_y.min() != observed_y.max():
        observed, predicted = calibration_curve(observed_y, predicted_p, n_bins=n_bins,
                                                strategy="quantile")
        curves["calibration"] = {"observed": observed, "predicted": predicted}
    confidence = proba.max(axis=1)
    correct = (pred == y).astype(int)
    facts["expected_calibration_error"] = _ece(confidence, correct, n_bins)
    facts["brier_score"] = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    true_index = np.array([labels.index(v) if v in labels else -1 for v in y])
    p_true = np.where(true_index >= 0, proba[np.arange(len(y)), np.maximum(true_index, 0)], 0.0)
    order = np.argsort(p_true)[:N_WORST_ROWS]
    facts["worst_rows"] = [
        {"row": int(i), "actual": str(y[i]), "predicted": str(pred[i]),
         "p_actual": float(p_true[i]), "confidence": float(confidence[i]),
         "features": _row_features(X, int(i))}
        for i in order if pred[i] != y[i]
    ]


def _ece(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def _regression_facts(
    facts: dict[str, Any], curves: dict[str, Any], X: pd.DataFrame, y: np.ndarray,
    pred: np.ndarray,
) -> None:
    y = y.astype(float)
    residuals = y - pred
    curves["residuals"] = {"predicted": pred, "actual": y, "residuals": residuals}
    facts["residuals"] = {
        "mean": float(residuals.mean()),
        "std": float(residuals.std(ddof=1)) if len(residuals) > 1 else 0.0,
        "median_abs": float(np.median(np.abs(residuals))),
        "max_abs": float(np.abs(residuals).max()),
    }
    # Calibration for regression: mean actual value per decile of the prediction.
    n_bins = max(2, min(10, len(y) // 10))
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, n_bins + 1)))
    if len(edges) > 2:
        bins = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, len(edges) - 2)
        groups = [bins == b for b in range(len(edges) - 1) if (bins == b).any()]
        curves["calibration"] = {
            "predicted": np.array([pred[g].mean() for g in groups]),
            "observed": np.array([y[g].mean() for g in groups]),
        }
    order = np.argsort(-np.abs(residuals))[:N_WORST_ROWS]
    facts["worst_rows"] = [
        {"row": int(i), "actual": float(y[i]), "predicted": float(pred[i]),
         "residual": float(residuals[i]), "features": _row_features(X, int(i))}
        for i in order
    ]


def _row_features(X: pd.DataFrame, position: int, limit: int = 6) -> str:
    row = X.iloc[position]
    parts = [f"{name}={_short(row[name])}" for name in list(X.columns)[:limit]]
    if len(X.columns) > limit:
        parts.append("…")
    return ", ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if np.isnan(value) else f"{value:.4g}"
    return str(value)[:24]
