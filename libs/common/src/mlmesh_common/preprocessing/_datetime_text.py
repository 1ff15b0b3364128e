"""Datetime parts and TF-IDF text features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

#: Calendar parts :class:`DatetimeParts` can extract, plus ``elapsed_days``.
DATETIME_PARTS = ("year", "quarter", "month", "day", "weekday", "dayofyear", "hour", "minute")
ELAPSED = "elapsed_days"
_NS_PER_DAY = 86_400 * 10**9


def to_datetime(values: pd.Series) -> pd.Series:
    """Parse ``values`` as naive UTC timestamps; unreadable or missing cells become NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    text = values.astype("string")
    parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None)


def calendar_parts(times: pd.Series) -> dict[str, pd.Series]:
    """Every part of :data:`DATETIME_PARTS` of parsed ``times`` (float, NaN where NaT)."""
    dt = times.dt
    parts = {
        "year": dt.year, "quarter": dt.quarter, "month": dt.month, "day": dt.day,
        "weekday": dt.weekday, "dayofyear": dt.dayofyear, "hour": dt.hour, "minute": dt.minute,
    }  # fmt: skip
    return {k: v.astype("float64") for k, v in parts.items()}


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Calendar parts of datetime columns plus days elapsed since the earliest fitted time.

    ``parts`` maps each input column to the parts it yields (a subset of
    :data:`DATETIME_PARTS` and ``elapsed_days``); fixed when the preprocessor is built, so
    every refit yields the same columns. Strings are parsed; unreadable values become NaN.
    """

    def __init__(self, parts: dict[str, Sequence[str]] | None = None) -> None:
        self.parts = parts

    def fit(self, X: pd.DataFrame, y: Any = None) -> DatetimeParts:
        """Learn each column's reference time (its earliest value)."""
        frame = pd.DataFrame(X)
        names = [str(c) for c in frame.columns]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        parts = dict(self.parts or {})
        bad = {p for ps in parts.values() for p in ps if p not in (*DATETIME_PARTS, ELAPSED)}
        if bad:
            raise ValueError(f"unknown datetime parts {sorted(bad)}; use {DATETIME_PARTS}")
        self.parts_ = {n: list(parts.get(n, (*DATETIME_PARTS[:6], ELAPSED))) for n in names}
        self.reference_ = {}
        for name in names:
            times = to_datetime(frame[name])
            earliest = times.min()
            self.reference_[name] = None if pd.isna(earliest) else int(earliest.value)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """One float column per (column, part); NaN where the time is missing."""
        check_is_fitted(self, "parts_")
        frame = pd.DataFrame(X)
        blocks = []
        for i, name in enumerate(self.feature_names_in_):
            times = to_datetime(frame.iloc[:, i])
            calendar = calendar_parts(times)
            for part in self.parts_[name]:
                if part == ELAPSED:
                    ref = self.reference_[name]
                    ns = times.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(float)
                    ns[times.isna().to_numpy()] = np.nan
                    blocks.append((ns - (ref or 0)) / _NS_PER_DAY if ref is not None
                                  else np.full(len(frame), np.nan))  # fmt: skip
                else:
                    blocks.append(calendar[part].to_numpy(dtype=np.float64))
        if not blocks:
            return np.zeros((len(frame), 0))
        return np.column_stack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<column>_<part>`` names."""
        check_is_fitted(self, "parts_")
        return np.asarray(
            [f"{n}_{p}" for n in self.feature_names_in_ for p in self.parts_[n]], dtype=object
        )


class TextVectorizer(TransformerMixin, BaseEstimator):
    """TF-IDF of one text column (vocabulary capped at ``max_features``), dense.

    With ``svd_components`` the TF-IDF matrix is reduced by TruncatedSVD to exactly that
    many columns (zero-padded when the vocabulary is smaller), so the width is fixed.
    Missing texts are empty; a column with no usable word yields one zero column.
    """

    def __init__(
        self,
        max_features: int = 200,
        svd_components: int | None = None,
        min_df: int = 2,
        random_state: int = 0,
    ) -> None:
        self.max_features = max_features
        self.svd_components = svd_components
        self.min_df = min_df
        self.random_state = random_state

    @staticmethod
    def _texts(X: Any) -> list[str]:
        series = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.ravel(X))
        return series.astype("string").fillna("").tolist()

    def fit(self, X: Any, y: Any = None) -> TextVectorizer:
        """Learn the vocabulary (and the SVD)."""
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> np.ndarray:
        """Learn the vocabulary and return the training rows' features."""
        texts = self._texts(X)
        self.column_ = str(X.columns[0]) if isinstance(X, pd.DataFrame) else "text"
        self.feature_names_in_ = np.asarray([self.column_], dtype=object)
        self.n_features_in_ = 1
        min_df = self.min_df if len(texts) >= 10 * self.min_df else 1
        self.tfidf_ = TfidfVectorizer(
            max_features=self.max_features, min_df=min_df, sublinear_tf=True,
            token_pattern=r"(?u)\b\w\w+\b",
        )  # fmt: skip
        try:
            matrix = self.tfidf_.fit_transform(texts)
        except ValueError:  # empty vocabulary: no word appears often enough
            self.tfidf_ = None
            self.svd_ = None
            return np.zeros((len(texts), self._width()))
        self.svd_ = None
        if self.svd_components and matrix.shape[1] > self.svd_components:
            self.svd_ = TruncatedSVD(self.svd_components, random_state=self.random_state)
            return self.svd_.fit_transform(matrix)
        return self._pad(matrix.toarray())

    def _width(self) -> int:
        if self.svd_components:
            return int(self.svd_components)
        return 1 if self.tfidf_ is None else len(self.tfidf_.vocabulary_)

    def _pad(self, dense: np.ndarray) -> np.ndarray:
        width = self._width()
        if dense.shape[1] < width:
            dense = np.hstack([dense, np.zeros((dense.shape[0], width - dense.shape[1]))])
        return dense

    def transform(self, X: Any) -> np.ndarray:
        """TF-IDF (or its SVD components) of each row's text."""
        check_is_fitted(self, "column_")
        texts = self._texts(X)
        if self.tfidf_ is None:
            return np.zeros((len(texts), self._width()))
        matrix = self.tfidf_.transform(texts)
        if self.svd_ is not None:
            return self.svd_.transform(matrix)
        return self._pad(matrix.toarray())

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<column>_svd<i>`` or ``<column>_tfidf_<term>`` names."""
        check_is_fitted(self, "column_")
        if self.svd_components:
            return np.asarray(
                [f"{self.column_}_svd{i}" for i in range(self.svd_components)], dtype=object
            )
        if self.tfidf_ is None:
            return np.asarray([f"{self.column_}_tfidf_empty"], dtype=object)
        terms = self.tfidf_.get_feature_names_out()
        return np.asarray([f"{self.column_}_tfidf_{t}" for t in terms], dtype=object)
