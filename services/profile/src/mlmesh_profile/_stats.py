"""Per-column statistics: counts, moments, quantiles, shape and top values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlmesh_profile._common import is_plain_numeric, is_string_like, num, share, short
from mlmesh_profile._kinds import ColumnFacts

TOP_VALUES = 5
#: Quantiles reported for numbers, by key.
QUANTILES = {"q01": 0.01, "q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75,
             "q95": 0.95, "q99": 0.99}  # fmt: skip
NUMERIC_KEYS = ("mean", "std", "min", "q01", "q05", "q25", "median", "q75", "q95", "q99",
                "max", "skew", "kurtosis")  # fmt: skip


def column_stats(f: ColumnFacts, kind: str) -> dict[str, Any]:
    """The profile entry of one column.

    Exact over the whole column: count, missing, unique, top values and every numeric
    statistic (mean, std, min, quantiles, max, skew, excess kurtosis, zeros, negatives,
    infinite values; infinities are left out of the moments and quantiles). String
    lengths and the range of dates stored as text come from the column's shape sample.
    """
    col: dict[str, Any] = {
        "name": f.name,
        "dtype": str(f.series.dtype),
        "kind": kind,
        "count": f.count,
        "missing": f.missing,
        "unique": f.unique,
    }
    numbers = _numeric_stats(f)
    col.update({k: numbers[k] for k in ("mean", "std", "min", "q25", "median", "q75", "max")})
    col["top_values"] = _top_values(f.top)
    col["missing_share"] = share(f.missing, f.n)
    col["unique_share"] = share(f.unique, f.count)
    col.update({k: numbers[k] for k in ("q01", "q05", "q95", "q99", "skew", "kurtosis")})
    col.update({k: numbers[k] for k in ("zeros", "negatives", "infinite")})
    col.update(_string_stats(f))
    col.update(_datetime_stats(f))
    return col


def _numeric_stats(f: ColumnFacts) -> dict[str, Any]:
    keys = (*NUMERIC_KEYS, "zeros", "negatives", "infinite")
    if not is_plain_numeric(f.non_null) or f.non_null.empty:
        return dict.fromkeys(keys)
    if f.sorted_values is not None:
        values = f.sorted_values.astype(np.float64, copy=False)
    else:
        values = np.sort(f.non_null.to_numpy(dtype=np.float64))
    # sorted: the finite values are one run between the infinities
    low = np.searchsorted(values, -np.inf, side="right")
    high = np.searchsorted(values, np.inf, side="left")
    finite = values[low:high]
    out: dict[str, Any] = dict.fromkeys(keys)
    out["infinite"] = int(values.size - finite.size)
    if finite.size == 0:
        return out
    out.update({k: num(_sorted_quantile(finite, q)) for k, q in QUANTILES.items()})
    mean = float(finite.mean())
    out.update(mean=num(mean), min=num(finite[0]), max=num(finite[-1]))
    negatives = int(np.searchsorted(finite, 0.0, side="left"))
    out["zeros"] = int(np.searchsorted(finite, 0.0, side="right")) - negatives
    out["negatives"] = negatives
    n = finite.size
    if n > 1:
        centred = finite - mean
        squared = centred * centred
        m2 = float(squared.mean())
        out["std"] = num(np.sqrt(m2 * n / (n - 1)))
        if m2 > 0 and n > 3:
            m3 = float((squared * centred).mean())
            m4 = float((squared * squared).mean())
            g1 = m3 / m2**1.5
            g2 = m4 / m2**2 - 3.0
            # the adjusted estimators pandas, Excel and SAS report
            out["skew"] = num(g1 * np.sqrt(n * (n - 1)) / (n - 2))
            out["kurtosis"] = num(((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3)))
        elif n > 3:
            out["skew"], out["kurtosis"] = 0.0, 0.0
    return out


def _sorted_quantile(values: np.ndarray, q: float) -> float:
    """Quantile ``q`` of sorted ``values`` by linear interpolation (numpy's default)."""
    position = q * (values.size - 1)
    below = int(np.floor(position))
    above = min(below + 1, values.size - 1)
    return float(values[below] + (values[above] - values[below]) * (position - below))


def _top_values(counts: pd.Series) -> list[list[Any]]:
    return [[short(str(v)), int(c)] for v, c in counts.head(TOP_VALUES).items()]


def _string_stats(f: ColumnFacts) -> dict[str, Any]:
    keys = ("length_min", "length_mean", "length_max")
    if not is_string_like(f.series) or f.shape_sample.empty or f.has_list_cells:
        return dict.fromkeys(keys)
    lengths = f.shape_sample.astype(str).str.len().to_numpy(dtype=np.float64)
    return {"length_min": int(lengths.min()), "length_mean": num(lengths.mean(), 3),
            "length_max": int(lengths.max())}  # fmt: skip


def _datetime_stats(f: ColumnFacts) -> dict[str, Any]:
    if pd.api.types.is_datetime64_any_dtype(f.series) and not f.non_null.empty:
        return {"datetime_min": f.non_null.min().isoformat(),
                "datetime_max": f.non_null.max().isoformat()}  # fmt: skip
    if f.parsed_dates is not None:
        parsed = f.parsed_dates.dropna()
        if not parsed.empty:
            return {"datetime_min": parsed.min().isoformat(),
                    "datetime_max": parsed.max().isoformat()}  # fmt: skip
    return {"datetime_min": None, "datetime_max": None}
