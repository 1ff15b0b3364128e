"""Fast per-column drift tests that reproduce evidently's default choices, on numpy arrays.

evidently's ``DataDriftPreset`` takes ~1 s per window of a ten-column table; a monitor
that ingests tens of thousands of rows a second must test every window in milliseconds.
This module applies the same statistical tests with the same selection rules and
thresholds as evidently 0.7 (``evidently.legacy.calculations.stattests.registry``):

- reference with at most 1000 values: numerical columns with more than 5 distinct values
  get the two-sample Kolmogorov-Smirnov test (drift when p <= 0.05); other columns the
  chi-square test (more than 2 distinct values) or the two-proportion z-test (drift when
  p < 0.05);
- larger references: numerical columns with more than 5 distinct values get the
  Wasserstein distance normed by the reference's standard deviation (drift when >= 0.1),
  other columns the Jensen-Shannon distance (drift when >= 0.1).

Missing and infinite values are dropped first, as evidently does. The reference side is
summarised once (``ReferenceColumn``) and reused for every window. evidently itself still
renders the report artifact of a drifted window (``mlmesh_monitor.drift``); a unit test
checks that both agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

SMALL_REFERENCE = 1000
P_VALUE_THRESHOLD = 0.05
DISTANCE_THRESHOLD = 0.1
NUMERICAL = "numerical"
CATEGORICAL = "categorical"


class StatTestInputError(ValueError):
    """A column that cannot be tested (no values, or the wrong kind of values)."""


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: evidently's stattest name, the score (p-value or distance), the
    threshold and the verdict."""

    column: str
    column_type: str
    stattest: str
    score: float
    threshold: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TableDrift:
    """Drift of a window's columns: per column, the drifted share and the verdict."""

    per_column: dict[str, ColumnDrift]
    drift_share_threshold: float
    skipped_columns: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, result in self.per_column.items() if result.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_columns) / len(self.per_column) if self.per_column else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.per_column) and self.share_drifted >= self.drift_share_threshold


def _clean_numeric(values: Any) -> np.ndarray:
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64,
                                                                        na_value=np.nan)
    return array[np.isfinite(array)]


def _clean_categorical(values: Any) -> np.ndarray:
    series = pd.Series(values)
    series = series[series.notna()]
    return series.astype(str).to_numpy(dtype=object)


def _counts(values: np.ndarray) -> dict[Any, int]:
    keys, counts = np.unique(values, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


class ReferenceColumn:
    """One reference column, summarised once: cleaned values, distinct values, counts."""

    def __init__(self, name: str, values: Any, column_type: str) -> None:
        if column_type not in (NUMERICAL, CATEGORICAL):
            raise StatTestInputError(f"column type {column_type!r} is not {NUMERICAL} or "
                                     f"{CATEGORICAL}")
        self.name = name
        self.column_type = column_type
        self.values = (_clean_numeric(values) if column_type == NUMERICAL
                       else _clean_categorical(values))
        if self.values.size == 0:
            raise StatTestInputError(f"reference column {name!r} has no values to compare with")
        self.n = int(self.values.size)
        numeric = column_type == NUMERICAL
        if numeric:
            self.values = np.sort(self.values)
            self.n_distinct = int(np.count_nonzero(np.diff(self.values)) + 1)
        else:
            self.n_distinct = len(set(self.values.tolist()))
        # Counts are needed only where a test compares frequencies (categorical columns,
        # numerical ones with few distinct values).
        self.counts = _counts(self.values) if not numeric or self.n_distinct <= 20 else {}
        self.std = float(np.std(self.values)) if numeric else 0.0

    def test(self, current: Any) -> ColumnDrift:
        """Test ``current`` (a window's values of this column) against the reference."""
        numeric = self.column_type == NUMERICAL
        cur = _clean_numeric(current) if numeric else _clean_categorical(current)
        if cur.size == 0:
            raise StatTestInputError(f"column {self.name!r} has no values in the window")
        if numeric and self.n_distinct > 5:  # more than 5 distinct values whatever cur holds
            return self._continuous(cur)
        cur_counts = _counts(cur)
        keys = list(dict.fromkeys([*(self.counts or _counts(self.values)), *cur_counts]))
        if numeric and len(keys) > 5:
            return self._continuous(cur)
        if self.n <= SMALL_REFERENCE:
            if len(keys) > 2:
                return self._chi_square(keys, cur_counts, int(cur.size))
            return self._z_test(keys, cur, cur_counts)
        return self._jensen_shannon(keys, cur, cur_counts)

    # ------------------------------------------------------------------ the tests

    def _continuous(self, cur: np.ndarray) -> ColumnDrift:
        if self.n <= SMALL_REFERENCE:
            p = float(stats.ks_2samp(self.values, cur)[1])
            return self._result("ks", p, P_VALUE_THRESHOLD, p <= P_VALUE_THRESHOLD)
        norm = max(self.std, 0.001)
        d = float(stats.wasserstein_distance(self.values, cur) / norm)
        return self._result("wasserstein", d, DISTANCE_THRESHOLD, d >= DISTANCE_THRESHOLD)

    def _result(self, stattest: str, score: float, threshold: float,
                drifted: bool) -> ColumnDrift:
        return ColumnDrift(self.name, self.column_type, stattest, score, threshold,
                           bool(drifted))

    def _chi_square(self, keys: list, cur_counts: Mapping, n_cur: int) -> ColumnDrift:
        k_norm = n_cur / self.n
        expected = np.array([self.counts.get(k, 0) * k_norm for k in keys])
        observed = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = float(stats.chisquare(observed, expected)[1])
        p = 0.0 if np.isnan(p) else p  # a value the reference never had: maximal drift
        return self._result("chisquare", p, P_VALUE_THRESHOLD, p < P_VALUE_THRESHOLD)

    def _z_test(self, keys: list, cur: np.ndarray, cur_counts: Mapping) -> ColumnDrift:
        if len(keys) == 1:  # one and the same value on both sides
            return self._result("z", 1.0, P_VALUE_THRESHOLD, False)
        first = sorted(keys)[0]
        n1, n2 = self.n, int(cur.size)
        p1 = 1.0 - self.counts.get(first, 0) / n1  # share of values other than `first`
        p2 = 1.0 - cur_counts.get(first, 0) / n2
        pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
        denominator = np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (p1 - p2) / denominator
        p = float(2 * (1 - stats.norm.cdf(np.abs(z))))
        p = 1.0 if np.isnan(p) else p
        return self._result("z", p, P_VALUE_THRESHOLD, p < P_VALUE_THRESHOLD)

    def _jensen_shannon(self, keys: list, cur: np.ndarray, cur_counts: Mapping) -> ColumnDrift:
        if self.column_type == NUMERICAL and self.n_distinct > 20:
            bins = np.histogram_bin_edges(np.concatenate([self.values, cur]), bins="sturges")
            ref_p = np.histogram(self.values, bins)[0] / self.n
            cur_p = np.histogram(cur, bins)[0] / cur.size
        else:
            ref_p = np.array([self.counts.get(k, 0) / self.n for k in keys])
            cur_p = np.array([cur_counts.get(k, 0) / cur.size for k in keys])
        d = float(distance.jensenshannon(ref_p, cur_p))
        return self._result("jensenshannon", d, DISTANCE_THRESHOLD, d >= DISTANCE_THRESHOLD)


def column_type_of(series: pd.Series) -> str | None:
    """numerical, categorical, or None for a column that is not tested (datetimes)."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return NUMERICAL
    return CATEGORICAL


class ReferenceTable:
    """A reference frame summarised column by column, tested against window frames."""

    def __init__(self, reference: pd.DataFrame, columns: Sequence[str] | None = None,
                 drift_share_threshold: float = 0.5) -> None:
        if not 0 < drift_share_threshold <= 1:
            raise StatTestInputError(
                f"drift_share_threshold {drift_share_threshold} must be in (0, 1]: the share "
                "of drifted columns at which a window counts as drifted")
        if len(reference) == 0:
            raise StatTestInputError("the reference data has no rows; drift needs rows")
        names = list(reference.columns) if columns is None else list(dict.fromkeys(columns))
        missing = [c for c in names if c not in reference.columns]
        if missing:
            raise StatTestInputError(f"the reference data lacks the columns {missing}; pass "
                                     "the model's feature columns")
        self.drift_share_threshold = drift_share_threshold
        self.columns: dict[str, ReferenceColumn] = {}
        self.skipped: dict[str, str] = {}
        for name in names:
            kind = column_type_of(reference[name])
            if kind is None:
                self.skipped[name] = "datetime columns are not tested for drift"
                continue
            try:
                self.columns[name] = ReferenceColumn(name, reference[name], kind)
            except StatTestInputError:
                self.skipped[name] = "no values in the reference data"
        if not self.columns:
            raise StatTestInputError(f"no column can be tested for drift: {self.skipped}")

    @property
    def numerical(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.column_type == NUMERICAL]

    @property
    def categorical(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.column_type == CATEGORICAL]

    def test(self, window: pd.DataFrame) -> TableDrift:
        """Drift of every reference column present in ``window``."""
        per_column: dict[str, ColumnDrift] = {}
        skipped = dict(self.skipped)
        for name, reference in self.columns.items():
            if name not in window.columns:
                skipped[name] = "not in the window"
                continue
            try:
                per_column[name] = reference.test(window[name])
            except StatTestInputError:
                skipped[name] = "no values in the current data"
        return TableDrift(per_column, self.drift_share_threshold, skipped)
