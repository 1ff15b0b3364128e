"""Permutation importance: every shuffled copy predicted in a few large calls."""

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlmesh_select.analysis import permutation_report


class Counting:
    """A fitted model that counts its prediction calls."""

    def __init__(self, model):
        self.model, self.calls = model, 0
        self.classes_ = getattr(model, "classes_", None)

    def predict(self, X):
        self.calls += 1
        return self.model.predict(X)

    def predict_proba(self, X):
        self.calls += 1
        return self.model.predict_proba(X)


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["strong", "weak", "noise", "zero"])
    X["zero"] = 0.0
    return X


def test_the_signal_ranks_first_and_rmse_drops_count_as_importance():
    X = _frame()
    y = 5 * X["strong"] + 0.5 * X["weak"]
    model = Counting(LinearRegression().fit(X, y))
    rows = permutation_report(model, X, y, "rmse", seed=1, n_repeats=3, max_rows=300)
    by = {r["feature"]: r for r in rows}
    assert [r["feature"] for r in rows][:2] == ["strong", "weak"]
    assert by["strong"]["importance"] > 10 * by["weak"]["importance"] > 0
    assert by["zero"]["importance"] == 0.0 and by["strong"]["repeats"] == 3
    assert model.calls == 2  # the base rows, then every shuffled copy at once


def test_probabilities_are_scored_and_batches_are_split():
    X = _frame()
    y = np.where(X["strong"] > 0, "yes", "no")
    model = Counting(LogisticRegression().fit(X, y))
    rows = permutation_report(model, X, y, "roc_auc", seed=1, n_repeats=2, max_rows=200,
                              max_batch_rows=500)
    assert rows[0]["feature"] == "strong" and rows[0]["importance"] > 0.3
    assert model.calls == 1 + 4  # 4 columns x 2 repeats x 200 rows in batches of 500


def test_repeats_are_cut_to_fit_the_time_budget():
    X = _frame()
    y = X["strong"]
    rows = permutation_report(LinearRegression().fit(X, y), X, y, "r2", n_repeats=5,
                              time_budget_s=0.0)
    assert {r["repeats"] for r in rows} == {1}
