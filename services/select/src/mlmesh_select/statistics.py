"""Honest comparisons: paired tests across folds, McNemar on a holdout, Holm correction,
bootstrap confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    NaN entries (tests that could not run) stay NaN and do not count in the family.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    running = 0.0
    for rank, i in enumerate(valid[np.argsort(p[valid], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided paired t-test of fold scores ``a`` vs ``b``: (statistic, p-value).

    Identical score vectors give (0, 1); fewer than two pairs give NaNs.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size < 2:
        return math.nan, math.nan
    d = a - b
    if np.allclose(d, d[0]):
        if np.isclose(d[0], 0.0):
            return 0.0, 1.0
        return math.copysign(math.inf, d[0]), 0.0
    res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def wilcoxon_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired fold scores: (statistic, p-value).

    All-zero differences give (0, 1). With k folds the smallest attainable p-value is
    2 / 2**k (0.0625 for 5 folds), so it alone cannot reach 0.05 on 5 folds.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size < 2:
        return math.nan, math.nan
    d = a - b
    if np.allclose(d, 0.0):
        return 0.0, 1.0
    res = stats.wilcoxon(a, b, zero_method="zsplit")
    return float(res.statistic), float(res.pvalue)


def mcnemar(y_true: Any, pred_a: Any, pred_b: Any) -> dict[str, float]:
    """McNemar's test of two classifiers' errors on the same rows.

    ``b`` = rows only A gets right, ``c`` = rows only B gets right. Exact binomial test
    when b + c < 25, else the chi-square statistic with continuity correction.
    """
    y, a, bb = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    right_a, right_b = a == y, bb == y
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    n = b + c
    if n == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p_value": 1.0, "exact": True}
    if n < 25:
        p = stats.binomtest(min(b, c), n, 0.5).pvalue
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": float(p), "exact": True}
    stat = (abs(b - c) - 1) ** 2 / n
    return {
        "b": b,
        "c": c,
        "statistic": float(stat),
        "p_value": float(stats.chi2.sf(stat, 1)),
        "exact": False,
    }


def compare_to_winner(
    winner: dict[str, Any],
    others: Sequence[dict[str, Any]],
    *,
    greater_is_better: bool,
    holdout: dict[str, Any] | None = None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Paired tests of the winner against every other candidate, Holm-corrected.

    Entries are dicts with ``name`` and ``fold_scores`` (same folds, same order; a CV the
    time budget cut short has fewer, and a pair is compared on the folds both scored,
    reported as ``shared_folds``); with ``holdout`` ({"y": labels, "predictions": {name:
    labels}}) McNemar runs on it too.
    The verdict of a comparison uses the Holm-adjusted paired t-test (the primary test);
    Wilcoxon and McNemar get their own Holm families and are reported alongside.
    """
    rows = []
    for other in others:
        shared = min(len(winner["fold_scores"]), len(other["fold_scores"]))
        mine, theirs = winner["fold_scores"][:shared], other["fold_scores"][:shared]
        t_stat, t_p = paired_t_test(mine, theirs)
        w_stat, w_p = wilcoxon_test(mine, theirs)
        diff = float(np.mean(mine) - np.mean(theirs)) if shared else math.nan
        row = {
            "candidate": other["name"],
            "shared_folds": shared,
            "mean_difference": diff,
            "t_statistic": t_stat,
            "t_p_value": t_p,
            "wilcoxon_statistic": w_stat,
            "wilcoxon_p_value": w_p,
        }
        if holdout is not None:
            preds = holdout["predictions"]
            if other["name"] in preds and winner["name"] in preds:
                m = mcnemar(holdout["y"], preds[winner["name"]], preds[other["name"]])
                row.update(
                    {
                        "mcnemar_b": m["b"],
                        "mcnemar_c": m["c"],
                        "mcnemar_statistic": m["statistic"],
                        "mcnemar_p_value": m["p_value"],
                    }
                )
        rows.append(row)
    for key in ("t_p_value", "wilcoxon_p_value", "mcnemar_p_value"):
        if any(key in r for r in rows):
            adjusted = holm([r.get(key, math.nan) for r in rows])
            for r, adj in zip(rows, adjusted, strict=True):
                r[key.replace("p_value", "p_adjusted")] = adj
    for r in rows:
        r["verdict"] = _verdict(r, greater_is_better, alpha)
    return {
        "winner": winner["name"],
        "alpha": alpha,
        "correction": "holm",
        "primary_test": "paired t-test across CV folds",
        "n_folds": len(winner["fold_scores"]),
        "comparisons": rows,
    }


def _verdict(row: dict[str, Any], greater_is_better: bool, alpha: float) -> str:
    p, diff = row.get("t_p_adjusted", math.nan), row["mean_difference"]
    if math.isnan(p) or math.isnan(diff):
        return "not testable (fold scores missing or misaligned)"
    if p >= alpha:
        return "no significant difference"
    better = diff > 0 if greater_is_better else diff < 0
    return "winner significantly better" if better else "winner significantly worse"


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    n_rows: int,
    *,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile bootstrap interval of ``statistic(row_indices)`` over ``n_rows`` rows.

    Resamples that make the statistic undefined (e.g. one class only for ROC AUC) are
    skipped; ``n_valid`` says how many counted.
    """
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n_rows, n_rows)
        try:
            values.append(float(statistic(idx)))
        except ValueError:
            continue
    if not values:
        return {"low": math.nan, "high": math.nan, "std": math.nan, "n_valid": 0, "level": level}
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {
        "low": float(low),
        "high": float(high),
        "std": float(np.std(values)),
        "n_valid": len(values),
        "level": level,
    }
