"""Final evaluation of the selected model: calibration, importance, SHAP, error analysis,
fairness, and their plots. Every function is bounded in time and returns JSON-ready dicts."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmesh_common.modeling import greater_is_better, needs_proba, score

TREE_FAMILIES = ("random_forest", "extra_trees", "hist_gb", "xgboost", "lightgbm", "catboost")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------- calibration


def expected_calibration_error(y_bin: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE: row-weighted mean |accuracy - confidence| over equal-width probability bins."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.mean() * abs(y_bin[mask].mean() - p[mask].mean())
    return float(total)


def _platt_cv_log_loss(p_valid: np.ndarray, y_valid: np.ndarray, seed: int) -> float:
    """Log loss of Platt scaling fitted on half of valid and applied to the other half."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    z = np.log(np.clip(p_valid, 1e-6, 1 - 1e-6) / np.clip(1 - p_valid, 1e-6, 1)).reshape(-1, 1)
    out = np.zeros_like(p_valid)
    for fit, held in StratifiedKFold(2, shuffle=True, random_state=seed).split(z, y_valid):
        out[held] = LogisticRegression().fit(z[fit], y_valid[fit]).predict_proba(z[held])[:, 1]
    return float(log_loss(y_valid, out, labels=[0, 1]))


def calibration_report(
    proba_test: np.ndarray,
    y_test: np.ndarray,
    classes: Sequence[Any],
    *,
    proba_valid: np.ndarray | None = None,
    y_valid: np.ndarray | None = None,
    out_dir: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Reliability curve, Brier score and ECE on the test split (binary: positive class;
    multiclass: top-class confidence). With valid predictions of a model fitted without
    valid, says whether Platt scaling (sigmoid, as CalibratedClassifierCV does) would lower
    the valid log loss (estimated with a 2-fold split of valid so it is not optimistic)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, log_loss

    classes = list(classes)
    y_test = np.asarray(y_test)
    if len(classes) == 2:
        y_bin, p = (y_test == classes[1]).astype(int), proba_test[:, 1]
        brier = float(brier_score_loss(y_bin, p))
        what = f"probability of class {classes[1]}"
    else:
        pred = np.asarray(classes)[np.argmax(proba_test, axis=1)]
        y_bin, p = (pred == y_test).astype(int), proba_test.max(axis=1)
        onehot = (y_test.reshape(-1, 1) == np.asarray(classes).reshape(1, -1)).astype(float)
        brier = float(np.mean(np.sum((proba_test - onehot) ** 2, axis=1)))
        what = "top-class confidence"
    frac, mean_pred = calibration_curve(y_bin, p, n_bins=10, strategy="uniform")
    report: dict[str, Any] = {
        "of": what,
        "brier_score": brier,
        "ece": expected_calibration_error(y_bin, p),
        "curve": {"mean_predicted": mean_pred.tolist(), "fraction_positive": frac.tolist()},
        "log_loss": float(log_loss(y_test, proba_test, labels=classes)),
        "applied": False,
    }
    if proba_valid is not None and y_valid is not None and len(classes) == 2:
        yv = (np.asarray(y_valid) == classes[1]).astype(int)
        if 0 < yv.sum() < len(yv) and min(yv.sum(), len(yv) - yv.sum()) >= 2:
            raw = float(log_loss(yv, proba_valid[:, 1], labels=[0, 1]))
            platt = _platt_cv_log_loss(proba_valid[:, 1], yv, seed)
            report["valid_log_loss"] = raw
            report["valid_log_loss_platt"] = platt
            report["platt_would_improve"] = platt < raw
            report["note"] = (
                "Platt scaling lowers the valid log loss; not applied: the refit model uses "
                "valid for training, so a calibrator would need a further holdout"
                if platt < raw
                else "Platt scaling does not lower the valid log loss; kept raw"
            )
    if out_dir is not None:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
        ax.plot(mean_pred, frac, "o-", label="model")
        ax.set_xlabel(f"mean predicted ({what})")
        ax.set_ylabel("observed frequency")
        ax.set_title(f"Reliability (ECE {report['ece']:.3f}, Brier {brier:.3f})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "calibration.png", dpi=100)
        plt.close(fig)
        report["plot"] = "plots/calibration.png"
    return report


# ------------------------------------------------------------------------- importance


def permutation_report(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    metric: str,
    *,
    seed: int = 0,
    n_repeats: int = 3,
    max_rows: int = 300,
    time_budget_s: float = 20.0,
    max_batch_rows: int = 50_000,
    out_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Permutation importance of every input column on (a sample of) the test split: the
    drop in ``metric`` (sign-adjusted so that larger means more important) when the
    column's values are shuffled, averaged over ``n_repeats`` shuffles.

    Every shuffled copy is stacked into one frame and predicted in a few large calls (per
    call costs, e.g. a forest's per-tree dispatch, are paid once, not once per column).
    Repeats are cut (to at least one) when the base prediction's timing says they would
    not fit in ``time_budget_s``.
    """
    rng = np.random.default_rng(seed)
    if len(X) > max_rows:
        idx = rng.choice(len(X), max_rows, replace=False)
        X, y = X.iloc[idx].reset_index(drop=True), np.asarray(y)[idx]
    X = X.reset_index(drop=True)
    y = np.asarray(y)
    proba = needs_proba(metric)
    sign = 1.0 if greater_is_better(metric) else -1.0
    classes = list(model.classes_) if proba else None

    def outputs(frame: pd.DataFrame) -> np.ndarray:
        parts = [model.predict_proba(frame.iloc[i : i + max_batch_rows]) if proba
                 else np.asarray(model.predict(frame.iloc[i : i + max_batch_rows]))
                 for i in range(0, len(frame), max_batch_rows)]
        return np.concatenate(parts) if parts else np.empty(0)

    def scored(out: np.ndarray) -> float:
        if proba:
            return sign * score(metric, y, y_proba=out, labels=classes)
        return sign * score(metric, y, y_pred=out)

    clock = time.perf_counter()
    base = scored(outputs(X))
    per_row_s = (time.perf_counter() - clock) / max(len(X), 1)
    columns = list(X.columns)
    affordable = time_budget_s / max(per_row_s * len(X) * max(len(columns), 1), 1e-9)
    repeats = int(max(1, min(n_repeats, math.floor(affordable))))
    copies = []
    for column in columns:
        for _ in range(repeats):
            shuffled = X.copy()
            shuffled[column] = X[column].to_numpy()[rng.permutation(len(X))]
            copies.append(shuffled)
    stacked = outputs(pd.concat(copies, ignore_index=True)) if copies else np.empty(0)
    n = len(X)
    rows = []
    for c, column in enumerate(columns):
        drops = [base - scored(stacked[(c * repeats + r) * n : (c * repeats + r + 1) * n])
                 for r in range(repeats)]
        rows.append({"feature": str(column), "importance": float(np.mean(drops)),
                     "std": float(np.std(drops)), "repeats": repeats})
    rows.sort(key=lambda r: -r["importance"])
    if out_dir is not None and rows:
        _bar(
            rows[:15],
            "importance",
            "permutation importance (score drop)",
            out_dir / "permutation_importance.png",
        )
    return rows


def _bar(rows: list[dict[str, Any]], key: str, title: str, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(rows) + 1.2))
    ax.barh([r["feature"] for r in rows][::-1], [r[key] for r in rows][::-1])
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def shap_report(
    model: Any,
    X: pd.DataFrame,
    *,
    seed: int = 0,
    max_rows: int = 100,
    time_budget_s: float = 30.0,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Mean |SHAP| per feature: TreeExplainer on the transformed features for a single tree
    model (summed back per input column where names allow), else KernelExplainer on
    the raw columns with a small background, bounded by ``max_rows`` and ``time_budget_s``."""
    import shap

    start = time.perf_counter()
    sample = X.sample(min(max_rows, len(X)), random_state=seed).reset_index(drop=True)
    family = getattr(model, "family", "")
    classifier = getattr(model, "problem_type", "regression") != "regression"
    try:
        if family in TREE_FAMILIES and hasattr(model, "preprocessor_"):
            Xt = model.preprocessor_.transform(sample[list(model.feature_columns)])
            Xt = Xt.toarray() if hasattr(Xt, "toarray") else np.asarray(Xt)
            values = shap.TreeExplainer(model.estimator_).shap_values(Xt)
            try:
                names = [str(n) for n in model.preprocessor_.get_feature_names_out()]
            except Exception:  # noqa: BLE001 - a transformer without feature names
                names = [f"x{i}" for i in range(Xt.shape[1])]
            method = "tree"
        else:
            columns = list(model.feature_columns)
            encoded, categories = _numeric_codes(sample[columns])

            def f(rows: np.ndarray) -> np.ndarray:
                frame = _decode(rows, columns, categories, sample.dtypes)
                if classifier:
                    return model.predict_proba(frame)[:, -1]
                return model.predict(frame)

            # KernelExplainer needs no JIT compilation (the Permutation explainer's maskers
            # compile with numba for tens of seconds on first use).
            explainer = shap.KernelExplainer(f, encoded[: min(10, len(encoded))])
            chunks = []
            for lo in range(0, min(30, len(encoded)), 10):  # until the time budget is spent
                chunks.append(
                    np.asarray(
                        explainer.shap_values(
                            encoded[lo : lo + 10], nsamples=2 * len(columns) + 50, silent=True
                        )
                    )
                )
                if time.perf_counter() - start > time_budget_s:
                    break
            values = np.concatenate(chunks)
            names, method = columns, "kernel"
    except Exception as exc:  # noqa: BLE001 - SHAP is best effort; the reason is recorded
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 3:  # (rows, features, classes) -> mean over classes
        arr = np.abs(arr).mean(axis=2)
    mean_abs = np.abs(arr).mean(axis=0)
    by_feature: dict[str, float] = {}
    for name, v in zip(names, mean_abs, strict=False):
        base = name.split("__", 1)[-1]
        matched = next(
            (c for c in model.feature_columns if base == c or base.startswith(f"{c}_")), base
        )
        by_feature[matched] = by_feature.get(matched, 0.0) + float(v)
    rows = sorted(
        ({"feature": k, "mean_abs_shap": v} for k, v in by_feature.items()),
        key=lambda r: -r["mean_abs_shap"],
    )
    if out_dir is not None and rows:
        _bar(rows[:15], "mean_abs_shap", f"mean |SHAP| ({method})", out_dir / "shap.png")
    return {
        "status": "ok",
        "method": method,
        "n_rows": int(arr.shape[0]),
        "seconds": round(time.perf_counter() - start, 3),
        "features": rows,
    }


def _numeric_codes(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
    """Raw columns as floats for SHAP's maskers: categoricals become integer codes."""
    out = np.zeros(frame.shape, dtype=float)
    categories: dict[str, Any] = {}
    for j, column in enumerate(frame.columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[:, j] = values.to_numpy(dtype=float)
        else:
            cat = pd.Categorical(values)
            categories[column] = cat.categories
            out[:, j] = np.where(cat.codes < 0, np.nan, cat.codes)
    return out, categories


def _decode(
    rows: np.ndarray, columns: list[str], categories: dict[str, Any], dtypes: pd.Series
) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column, cats in categories.items():
        codes = frame[column].to_numpy()
        known = ~np.isnan(codes)
        values = np.full(len(codes), None, dtype=object)
        values[known] = np.asarray(cats, dtype=object)[codes[known].astype(int)]
        frame[column] = pd.Series(values).astype(dtypes[column], errors="ignore")
    return frame


# ------------------------------------------------------------------------- errors


def _segments(X: pd.DataFrame, column: str, bins: int = 4) -> pd.Series:
    values = X[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > bins:
        return pd.qcut(values, bins, duplicates="drop").astype(str)
    top = values.astype(str).value_counts().index[:8]
    return values.astype(str).where(values.astype(str).isin(top), "other")


def error_analysis(
    X: pd.DataFrame,
    y: Any,
    pred: Any,
    *,
    problem_type: str,
    classes: Sequence[Any] | None,
    min_rows: int = 10,
    top: int = 8,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Worst feature segments by error (error rate, or mean |residual| for regression),
    the confusion matrix (classification) and residuals by feature bins (regression)."""
    y, pred = np.asarray(y), np.asarray(pred)
    if problem_type == "regression":
        err = np.abs(y.astype(float) - pred.astype(float))
        what = "mean absolute residual"
    else:
        err = (y != pred).astype(float)
        what = "error rate"
    overall = float(err.mean())
    segments = []
    for column in X.columns:
        seg = _segments(X, column)
        for value, idx in seg.groupby(seg, observed=True).groups.items():
            if len(idx) >= min_rows:
                segments.append(
                    {
                        "feature": str(column),
                        "segment": str(value),
                        "n": int(len(idx)),
                        "error": float(err[np.asarray(idx)].mean()),
                    }
                )
    segments.sort(key=lambda s: -s["error"])
    out: dict[str, Any] = {"measure": what, "overall": overall, "worst_segments": segments[:top]}
    if problem_type != "regression":
        from sklearn.metrics import confusion_matrix

        labels = list(classes or [])
        cm = confusion_matrix(y, pred, labels=labels)
        out["confusion_matrix"] = {"labels": [str(c) for c in labels], "matrix": cm.tolist()}
        if out_dir is not None:
            plt = _plt()
            fig, ax = plt.subplots(figsize=(4, 4))
            ax.imshow(cm, cmap="Blues")
            for (i, j), v in np.ndenumerate(cm):
                ax.text(j, i, str(v), ha="center", va="center")
            ax.set_xticks(range(len(labels)), [str(c) for c in labels])
            ax.set_yticks(range(len(labels)), [str(c) for c in labels])
            ax.set_xlabel("predicted")
            ax.set_ylabel("actual")
            fig.tight_layout()
            fig.savefig(out_dir / "confusion_matrix.png", dpi=100)
            plt.close(fig)
            out["plot"] = "plots/confusion_matrix.png"
    else:
        residual = y.astype(float) - pred.astype(float)
        out["residuals"] = {"mean": float(residual.mean()), "std": float(residual.std())}
        if out_dir is not None:
            plt = _plt()
            fig, ax = plt.subplots(figsize=(4.5, 4))
            ax.scatter(pred, residual, s=8, alpha=0.6)
            ax.axhline(0, color="grey")
            ax.set_xlabel("predicted")
            ax.set_ylabel("residual")
            fig.tight_layout()
            fig.savefig(out_dir / "residuals.png", dpi=100)
            plt.close(fig)
            out["plot"] = "plots/residuals.png"
    return out


# ------------------------------------------------------------------------- fairness


def fairness_report(
    y: Any,
    pred: Any,
    sensitive: pd.DataFrame,
    *,
    problem_type: str,
    classes: Sequence[Any] | None,
) -> dict[str, Any]:
    """Per-group metrics (fairlearn MetricFrame) for each sensitive column, with demographic
    parity and equalized odds differences for binary problems (positive class: the second
    of ``classes``)."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score, mean_absolute_error, recall_score

    y, pred = np.asarray(y), np.asarray(pred)
    out: dict[str, Any] = {}
    for column in sensitive.columns:
        groups = sensitive[column].astype(str).fillna("missing").to_numpy()
        if problem_type == "regression":
            frame = MetricFrame(
                metrics={"mae": mean_absolute_error},
                y_true=y.astype(float),
                y_pred=pred.astype(float),
                sensitive_features=groups,
            )
            entry: dict[str, Any] = {}
        elif problem_type == "binary":
            positive = list(classes)[1]
            yb, pb = (y == positive).astype(int), (pred == positive).astype(int)
            frame = MetricFrame(
                metrics={
                    "accuracy": accuracy_score,
                    "selection_rate": selection_rate,
                    "true_positive_rate": lambda a, b: recall_score(a, b, zero_division=0),
                },
                y_true=yb,
                y_pred=pb,
                sensitive_features=groups,
            )
            entry = {
                "positive_class": str(positive),
                "demographic_parity_difference": float(
                    demographic_parity_difference(yb, pb, sensitive_features=groups)
                ),
                "equalized_odds_difference": float(
                    equalized_odds_difference(yb, pb, sensitive_features=groups)
                ),
            }
        else:
            frame = MetricFrame(
                metrics={"accuracy": accuracy_score},
                y_true=y,
                y_pred=pred,
                sensitive_features=groups,
            )
            entry = {}
        by_group = frame.by_group
        entry["by_group"] = {
            str(g): {k: _f(v) for k, v in row.items()} for g, row in by_group.iterrows()
        }
        entry["group_sizes"] = {str(g): int(n) for g, n in pd.Series(groups).value_counts().items()}
        entry["difference"] = {k: _f(v) for k, v in frame.difference().items()}
        out[str(column)] = entry
    return out


def _f(value: Any) -> float | None:
    v = float(value)
    return None if math.isnan(v) else v


def pareto_plot(points: list[dict[str, Any]], metric: str, path: Path) -> None:
    """Score against latency, Pareto-optimal candidates highlighted."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for p in points:
        if p.get("latency_ms") is None:
            continue
        ax.scatter(p["latency_ms"], p["cv_mean"], c="C3" if p["pareto_optimal"] else "C0")
        ax.annotate(p["name"], (p["latency_ms"], p["cv_mean"]), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms per row)")
    ax.set_ylabel(f"CV {metric}")
    ax.set_title("Pareto front (red)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
