"""Numeric imputation with a strategy per column and optional missing indicators."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (registers the class)
from sklearn.impute import IterativeImputer, KNNImputer
from sklearn.utils.validation import check_is_fitted

#: Strategies :class:`NumericImputer` knows.
NUMERIC_STRATEGIES = ("median", "mean", "knn", "iterative")
INDICATOR_SUFFIX = "__missing"


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(np.asarray(X))


def _as_float(frame: pd.DataFrame) -> np.ndarray:
    return frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


class NumericImputer(TransformerMixin, BaseEstimator):
    """Fill missing numbers column by column and append missing indicators.

    ``strategies`` maps a column name to ``median`` (default), ``mean``, ``knn`` (KNNImputer
    on standardised columns, so every column weighs the same in the distance) or
    ``iterative`` (IterativeImputer: each column regressed on the others). KNN and iterative
    columns are imputed from all input columns; values come back in the original scale.
    ``indicators`` names the columns that also get a 0/1 ``<name>__missing`` column,
    appended after the imputed columns in that order.
    """

    def __init__(
        self,
        strategies: Mapping[str, str] | None = None,
        indicators: Sequence[str] = (),
        n_neighbors: int = 5,
        max_iter: int = 10,
        random_state: int = 0,
    ) -> None:
        self.strategies = strategies
        self.indicators = indicators
        self.n_neighbors = n_neighbors
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> NumericImputer:
        """Learn fill values (and the KNN / iterative models) from ``X``."""
        frame = _as_frame(X)
        names = [str(c) for c in frame.columns]
        strategies = dict(self.strategies or {})
        unknown = {s for s in strategies.values() if s not in NUMERIC_STRATEGIES}
        if unknown:
            raise ValueError(
                f"unknown imputation strategies {sorted(unknown)}; use {NUMERIC_STRATEGIES}"
            )
        missing_ind = [c for c in self.indicators if c not in names]
        if missing_ind:
            raise ValueError(f"indicator columns {missing_ind} are not among the inputs {names}")
        values = _as_float(frame)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        with np.errstate(all="ignore"):
            medians = np.nanmedian(values, axis=0) if len(values) else np.zeros(len(names))
            means = np.nanmean(values, axis=0) if len(values) else np.zeros(len(names))
            stds = np.nanstd(values, axis=0) if len(values) else np.ones(len(names))
        self.medians_ = np.nan_to_num(medians, nan=0.0)
        self.means_ = np.nan_to_num(means, nan=0.0)
        self.scales_ = np.where(np.isfinite(stds) & (stds > 0), stds, 1.0)
        self.strategy_per_column_ = [strategies.get(n, "median") for n in names]
        self.indicator_positions_ = [names.index(c) for c in self.indicators]
        z = (values - self.means_) / self.scales_
        self.knn_ = None
        self.iterative_ = None
        if "knn" in self.strategy_per_column_:
            k = max(1, min(self.n_neighbors, len(values) - 1))
            self.knn_ = KNNImputer(n_neighbors=k, keep_empty_features=True).fit(z)
        if "iterative" in self.strategy_per_column_:
            with warnings.catch_warnings():  # stopping early is fine for imputation
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.iterative_ = IterativeImputer(
                    max_iter=self.max_iter,
                    random_state=self.random_state,
                    keep_empty_features=True,
                ).fit(z)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """The imputed columns followed by the missing indicators."""
        check_is_fitted(self, "medians_")
        frame = _as_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(
                f"NumericImputer was fitted on {self.n_features_in_} columns; got {frame.shape[1]}"
            )
        values = _as_float(frame)
        missing = np.isnan(values)
        out = values.copy()
        strategies = np.asarray(self.strategy_per_column_, dtype=object)
        if missing.any():
            z = (values - self.means_) / self.scales_
            for model, name in ((self.knn_, "knn"), (self.iterative_, "iterative")):
                cols = np.flatnonzero(strategies == name)
                if model is None or not cols.size or not missing[:, cols].any():
                    continue
                filled = model.transform(z) * self.scales_ + self.means_
                out[:, cols] = np.where(missing[:, cols], filled[:, cols], values[:, cols])
            fill = np.where(strategies == "mean", self.means_, self.medians_)
            still = np.isnan(out)
            out[still] = np.broadcast_to(fill, out.shape)[still]
        indicators = missing[:, self.indicator_positions_].astype(np.float64)
        return np.hstack([out, indicators])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input names, then ``<name>__missing`` for each indicator."""
        check_is_fitted(self, "medians_")
        names = list(self.feature_names_in_)
        extra = [f"{names[i]}{INDICATOR_SUFFIX}" for i in self.indicator_positions_]
        return np.asarray(names + extra, dtype=object)
