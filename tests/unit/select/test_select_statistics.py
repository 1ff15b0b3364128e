"""Paired tests, Holm correction, McNemar and bootstrap intervals on constructed data."""

import math

import numpy as np
import pytest
from scipy import stats

from mlmesh_select.statistics import (
    bootstrap_ci,
    compare_to_winner,
    holm,
    mcnemar,
    paired_t_test,
    wilcoxon_test,
)


def test_holm_matches_the_textbook_example():
    # p sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06 (monotone), 0.04*1 -> max(0.06, 0.04)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert math.isnan(holm([0.5, float("nan"), 0.01])[1])  # NaN stays NaN
    assert holm([0.5, float("nan"), 0.01])[2] == pytest.approx(0.02)
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def test_paired_tests_on_constructed_fold_scores():
    winner = [0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97]
    clearly_worse = [
        s - 0.05 + d
        for s, d in zip(winner, [0, 0.002, -0.002, 0.001, 0, -0.001, 0.002, -0.002], strict=True)
    ]
    t, p = paired_t_test(winner, clearly_worse)
    assert t > 0 and p < 1e-6
    assert p == pytest.approx(stats.ttest_rel(winner, clearly_worse).pvalue)
    assert paired_t_test(winner, winner) == (0.0, 1.0)
    w, pw = wilcoxon_test(winner, clearly_worse)
    assert pw == pytest.approx(2 / 2**8)  # all 8 differences positive: the exact minimum

    tie = [
        s + d
        for s, d in zip(winner, [0.01, -0.01, 0.01, -0.01, 0.01, -0.01, 0.01, -0.01], strict=True)
    ]
    report = compare_to_winner(
        {"name": "w", "fold_scores": winner},
        [{"name": "worse", "fold_scores": clearly_worse}, {"name": "tie", "fold_scores": tie}],
        greater_is_better=True,
    )
    verdicts = {r["candidate"]: r["verdict"] for r in report["comparisons"]}
    assert verdicts == {"worse": "winner significantly better", "tie": "no significant difference"}
    rows = {r["candidate"]: r for r in report["comparisons"]}
    assert rows["worse"]["t_p_adjusted"] == pytest.approx(2 * rows["worse"]["t_p_value"])
    lower = compare_to_winner(
        {"name": "w", "fold_scores": clearly_worse},
        [{"name": "x", "fold_scores": winner}],
        greater_is_better=False,
    )
    assert lower["comparisons"][0]["verdict"] == "winner significantly better"


def test_a_truncated_cv_is_compared_on_the_folds_both_scored():
    report = compare_to_winner(
        {"name": "gp", "fold_scores": [0.97, 0.98, 0.96]},  # the budget stopped it at 3 folds
        [{"name": "lgbm", "fold_scores": [1.20, 1.25, 1.18, 1.22, 1.21]}],
        greater_is_better=False,
    )
    row = report["comparisons"][0]
    assert row["shared_folds"] == 3
    assert row["mean_difference"] == pytest.approx(0.97 - 1.21)
    assert 0 <= row["t_p_value"] < 0.01


def test_mcnemar_exact_and_chi_square():
    y = np.zeros(100, dtype=int)
    a = y.copy()
    b = y.copy()
    b[:10] = 1  # b wrong on 10 rows where a is right
    exact = mcnemar(y, a, b)
    assert (exact["b"], exact["c"]) == (10, 0) and exact["exact"]
    assert exact["p_value"] == pytest.approx(2 * 0.5**10)
    b[:40] = 1
    a[40:45] = 1
    chi = mcnemar(y, a, b)
    assert not chi["exact"] and chi["statistic"] == pytest.approx((35 - 1) ** 2 / 45)
    assert mcnemar(y, a, a)["p_value"] == 1.0


def test_bootstrap_interval_covers_the_true_mean():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(40):
        x = rng.normal(loc=1.0, size=200)
        ci = bootstrap_ci(lambda idx, x=x: float(x[idx].mean()), len(x), n_boot=200, seed=trial)
        covered += ci["low"] <= 1.0 <= ci["high"]
        assert ci["high"] - ci["low"] == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.3)
    assert covered >= 34  # nominal 95% of 40 = 38; allow sampling slack

    def undefined(idx):
        raise ValueError("one class only")

    assert bootstrap_ci(undefined, 10, n_boot=5)["n_valid"] == 0
