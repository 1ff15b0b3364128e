"""Categorical encoders (string cast, hashing, cross-fitted target encoding) and clipping."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction import FeatureHasher
from sklearn.preprocessing import FunctionTransformer, TargetEncoder
from sklearn.utils.validation import check_is_fitted

#: The category that stands for a missing value when missingness is kept as information.
MISSING_CATEGORY = "__missing__"


def string_cast() -> FunctionTransformer:
    """Cast columns to pandas strings (mixed types become text, missing stays missing)."""
    return FunctionTransformer(
        operator.methodcaller("astype", "string"), feature_names_out="one-to-one"
    )


def _names(X: Any, n: int) -> list[str]:
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(n)]


class HashingEncoder(TransformerMixin, BaseEstimator):
    """Hash ``column=value`` tokens of every input column into ``n_features`` signed columns.

    For very high cardinality: the width does not grow with the number of categories and
    unseen categories need no special case. Stateless apart from the input names.
    """

    def __init__(self, n_features: int = 32) -> None:
        self.n_features = n_features

    def fit(self, X: Any, y: Any = None) -> HashingEncoder:
        """Remember the input column names."""
        array = np.asarray(X, dtype=object)
        self.feature_names_in_ = np.asarray(_names(X, array.shape[1]), dtype=object)
        self.n_features_in_ = array.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Dense hashed counts, one row per input row."""
        check_is_fitted(self, "n_features_in_")
        array = np.asarray(X, dtype=object)
        names = list(self.feature_names_in_)
        tokens = ([f"{names[j]}={row[j]}" for j in range(len(names))] for row in array)
        hasher = FeatureHasher(n_features=self.n_features, input_type="string")
        return hasher.transform(tokens).toarray()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``hash_0 .. hash_{n_features-1}``."""
        return np.asarray([f"hash_{i}" for i in range(self.n_features)], dtype=object)


class CrossFitTargetEncoder(TargetEncoder):
    """scikit-learn's TargetEncoder, refusing to fit without a target.

    ``fit_transform`` (what a Pipeline calls while fitting) encodes each training row with
    statistics from the other cross-fitting folds, so a model never sees its own row's
    target; ``transform`` (validation, test, serving) uses statistics of all fitted rows.
    """

    def fit(self, X: Any, y: Any = None) -> CrossFitTargetEncoder:  # type: ignore[override]
        """Learn per-category target statistics; ``y`` is required."""
        _need_target(y)
        return super().fit(X, y)

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> np.ndarray:  # type: ignore[override]
        """Cross-fitted encodings of the training rows; ``y`` is required."""
        _need_target(y)
        return super().fit_transform(X, y)


def _need_target(y: Any) -> None:
    if y is None:
        raise ValueError(
            "this preprocessor target-encodes high-cardinality categories and must be fitted "
            "with the target: call fit(X, y) / fit_transform(X, y)"
        )


class QuantileClipper(TransformerMixin, BaseEstimator):
    """Clip the chosen columns to their ``lower`` / ``upper`` training quantiles.

    ``columns`` are positions in the input (None: every column); missing values stay
    missing. An outlier treatment for models that are sensitive to extreme values.
    """

    def __init__(
        self, lower: float = 0.01, upper: float = 0.99, columns: Sequence[int] | None = None
    ) -> None:
        self.lower = lower
        self.upper = upper
        self.columns = columns

    def fit(self, X: Any, y: Any = None) -> QuantileClipper:
        """Learn the bounds."""
        values = np.asarray(X, dtype=np.float64)
        self.n_features_in_ = values.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        cols = list(range(values.shape[1])) if self.columns is None else list(self.columns)
        self.positions_ = np.asarray(cols, dtype=np.int64)
        with np.errstate(all="ignore"):
            sub = values[:, self.positions_]
            has = ~np.isnan(sub).all(axis=0) if len(sub) else np.zeros(len(cols), bool)
            lo = np.full(len(cols), -np.inf)
            hi = np.full(len(cols), np.inf)
            if has.any():
                lo[has] = np.nanquantile(sub[:, has], self.lower, axis=0)
                hi[has] = np.nanquantile(sub[:, has], self.upper, axis=0)
        self.lower_bounds_, self.upper_bounds_ = lo, hi
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``X`` with the chosen columns clipped."""
        check_is_fitted(self, "positions_")
        values = np.array(X, dtype=np.float64, copy=True)
        if self.positions_.size:
            values[:, self.positions_] = np.clip(
                values[:, self.positions_], self.lower_bounds_, self.upper_bounds_
            )
        return values

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input names, unchanged."""
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = [f"x{i}" for i in range(self.n_features_in_)]
        return np.asarray(names, dtype=object)
