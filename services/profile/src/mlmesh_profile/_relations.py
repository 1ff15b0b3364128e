"""Relations between columns: Pearson, Spearman, Cramér's V, the correlation ratio, and
groups of highly related features. Computed on the profile's row sample."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from mlmesh_profile._common import num

#: Columns that take part in the relations at most (the target first, then table order).
MAX_RELATION_COLUMNS = 60
#: Categories per column kept apart in Cramér's V and the correlation ratio; rarer ones
#: are counted together.
MAX_LEVELS = 50
#: A pair at or above this strength is "highly related".
HIGH_ASSOCIATION = 0.9
#: Pairs compared need at least this many rows where both values are present.
MIN_PAIR_ROWS = 10
NUMERIC_RELATION_KINDS = frozenset({"numeric"})
CATEGORICAL_RELATION_KINDS = frozenset({"categorical", "boolean"})


def compute_relations(
    frame: pd.DataFrame, kinds: dict[str, str], target: str, target_is_numeric: bool
) -> dict[str, Any]:
    """Pairwise relations between the numeric and categorical columns of ``frame``.

    ``frame`` is the row sample, with the target as the classes that are trained.
    Pearson and Spearman between numbers (pairwise complete rows; Spearman is Pearson on
    ranks taken once per column), Cramér's V with Bergsma's bias correction between
    categories, the correlation ratio (eta) from a category to a number; pairs at or
    above :data:`HIGH_ASSOCIATION`, the connected groups they form among the features,
    and every feature's association with the target, strongest first.
    """
    numeric, categorical, left_out = _pick_columns(frame, kinds, target, target_is_numeric)
    x = np.column_stack([_finite(frame[c]) for c in numeric]) if numeric else np.empty((0, 0))
    pearson = _pairwise_pearson(x)
    ranks = (np.column_stack([_ranks(x[:, j]) for j in range(x.shape[1])])
             if numeric else x)  # fmt: skip
    spearman = _pairwise_pearson(ranks)
    codes = [_codes(frame[c]) for c in categorical]
    cramers = np.eye(len(categorical))
    for i, j in combinations(range(len(categorical)), 2):
        cramers[i, j] = cramers[j, i] = _cramers_v(*codes[i], *codes[j])
    eta = np.full((len(categorical), len(numeric)), np.nan)
    for i, (code, levels) in enumerate(codes):
        for j in range(len(numeric)):
            eta[i, j] = _correlation_ratio(code, levels, x[:, j])

    pairs = _high_pairs(numeric, categorical, pearson, spearman, cramers, eta)
    features = {c for c in (*numeric, *categorical) if c != target}
    feature_pairs = [p for p in pairs if p["a"] in features and p["b"] in features]
    return {
        "sample_rows": int(len(frame)),
        "columns_considered": [*numeric, *categorical],
        "columns_left_out": left_out,
        "pearson": {"columns": numeric, "matrix": _matrix(pearson)},
        "spearman": {"columns": numeric, "matrix": _matrix(spearman)},
        "cramers_v": {"columns": categorical, "matrix": _matrix(cramers)},
        "correlation_ratio": {"categorical": categorical, "numeric": numeric,
                              "matrix": _matrix(eta)},  # fmt: skip
        "high_pairs": feature_pairs[:100],
        "correlated_groups": _groups(feature_pairs),
        "target_associations": _target_associations(
            target, numeric, categorical, pearson, spearman, cramers, eta
        ),
    }


def _pick_columns(
    frame: pd.DataFrame, kinds: dict[str, str], target: str, target_is_numeric: bool
) -> tuple[list[str], list[str], int]:
    def role(name: str) -> str | None:
        if name == target:
            return "numeric" if target_is_numeric else "categorical"
        if kinds[name] in NUMERIC_RELATION_KINDS:
            return "numeric"
        if kinds[name] in CATEGORICAL_RELATION_KINDS:
            return "categorical"
        return None

    ordered = [target, *(c for c in frame.columns if c != target)]
    eligible = [c for c in ordered if role(c) is not None]
    kept = eligible[:MAX_RELATION_COLUMNS]
    numeric = [c for c in frame.columns if c in kept and role(c) == "numeric"]
    categorical = [c for c in frame.columns if c in kept and role(c) == "categorical"]
    return numeric, categorical, len(eligible) - len(kept)


def _finite(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        values = s.astype("float64").to_numpy()
    else:
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def _ranks(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank(method="average", na_option="keep").to_numpy()


def _pairwise_pearson(x: np.ndarray) -> np.ndarray:
    """Pearson correlations between the columns of ``x`` over pairwise complete rows."""
    k = x.shape[1]
    if k == 0:
        return np.empty((0, 0))
    if not np.isnan(x).any():
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.corrcoef(x, rowvar=False) if x.shape[0] > 1 else np.full((k, k), np.nan)
        out = np.atleast_2d(out)
    else:
        out = pd.DataFrame(x).corr(method="pearson", min_periods=MIN_PAIR_ROWS).to_numpy(copy=True)
    np.fill_diagonal(out, 1.0)
    return np.clip(out, -1.0, 1.0)


def _codes(s: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes (missing = -1) with the rarest categories beyond MAX_LEVELS merged."""
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError:
        codes, uniques = pd.factorize(s.astype(str).where(s.notna()), use_na_sentinel=True)
    if len(uniques) > MAX_LEVELS:
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        keep = np.argsort(-counts, kind="stable")[:MAX_LEVELS]
        remap = np.full(len(uniques), MAX_LEVELS, dtype=np.int64)
        remap[keep] = np.arange(MAX_LEVELS)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        return codes, MAX_LEVELS + 1
    return codes.astype(np.int64), max(len(uniques), 1)


def _cramers_v(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> float:
    both = (a >= 0) & (b >= 0)
    n = int(both.sum())
    if n < MIN_PAIR_ROWS:
        return np.nan
    table = np.bincount(a[both] * kb + b[both], minlength=ka * kb).reshape(ka, kb)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, k = table.shape
    if r < 2 or k < 2:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    phi2 = chi2 / n
    phi2_corrected = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_corrected = r - (r - 1) ** 2 / (n - 1)
    k_corrected = k - (k - 1) ** 2 / (n - 1)
    denominator = min(k_corrected - 1, r_corrected - 1)
    if denominator <= 0:
        return 0.0
    return float(min(1.0, np.sqrt(phi2_corrected / denominator)))


def _correlation_ratio(codes: np.ndarray, levels: int, values: np.ndarray) -> float:
    both = (codes >= 0) & ~np.isnan(values)
    if int(both.sum()) < MIN_PAIR_ROWS:
        return np.nan
    c, v = codes[both], values[both]
    total = float(((v - v.mean()) ** 2).sum())
    if total <= 0:
        return np.nan
    counts = np.bincount(c, minlength=levels)
    sums = np.bincount(c, weights=v, minlength=levels)
    present = counts > 0
    means = sums[present] / counts[present]
    between = float((counts[present] * (means - v.mean()) ** 2).sum())
    return float(min(1.0, np.sqrt(between / total)))


def _matrix(values: np.ndarray) -> list[list[float | None]]:
    return [[num(v, 4) for v in row] for row in values]


def _high_pairs(
    numeric: list[str],
    categorical: list[str],
    pearson: np.ndarray,
    spearman: np.ndarray,
    cramers: np.ndarray,
    eta: np.ndarray,
) -> list[dict[str, Any]]:
    pairs: list[dict[str, Any]] = []
    for i, j in combinations(range(len(numeric)), 2):
        for measure, matrix in (("pearson", pearson), ("spearman", spearman)):
            value = matrix[i, j]
            if np.isfinite(value) and abs(value) >= HIGH_ASSOCIATION:
                pairs.append({"a": numeric[i], "b": numeric[j], "measure": measure,
                              "value": num(value, 4)})  # fmt: skip
    for i, j in combinations(range(len(categorical)), 2):
        value = cramers[i, j]
        if np.isfinite(value) and value >= HIGH_ASSOCIATION:
            pairs.append({"a": categorical[i], "b": categorical[j], "measure": "cramers_v",
                          "value": num(value, 4)})  # fmt: skip
    for i, cat in enumerate(categorical):
        for j, number in enumerate(numeric):
            value = eta[i, j]
            if np.isfinite(value) and value >= HIGH_ASSOCIATION:
                pairs.append({"a": cat, "b": number, "measure": "correlation_ratio",
                              "value": num(value, 4)})  # fmt: skip
    pairs.sort(key=lambda p: -abs(p["value"]))
    return pairs


def _groups(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        parent[find(p["a"])] = find(p["b"])
    members: dict[str, list[str]] = {}
    for name in parent:
        members.setdefault(find(name), []).append(name)
    groups = []
    for cols in members.values():
        if len(cols) < 2:
            continue
        inside = [abs(p["value"]) for p in pairs if p["a"] in cols and p["b"] in cols]
        groups.append({"columns": sorted(cols), "min_value": min(inside),
                       "max_value": max(inside)})  # fmt: skip
    return sorted(groups, key=lambda g: (-len(g["columns"]), g["columns"]))


def _target_associations(
    target: str,
    numeric: list[str],
    categorical: list[str],
    pearson: np.ndarray,
    spearman: np.ndarray,
    cramers: np.ndarray,
    eta: np.ndarray,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if target in numeric:
        t = numeric.index(target)
        for j, name in enumerate(numeric):
            if name != target:
                out.append({"column": name, "measure": "spearman", "value": num(spearman[t, j], 4),
                            "pearson": num(pearson[t, j], 4)})  # fmt: skip
        for i, name in enumerate(categorical):
            out.append({"column": name, "measure": "correlation_ratio",
                        "value": num(eta[i, t], 4)})  # fmt: skip
    elif target in categorical:
        t = categorical.index(target)
        for i, name in enumerate(categorical):
            if name != target:
                out.append({"column": name, "measure": "cramers_v", "value": num(cramers[t, i], 4)})
        for j, name in enumerate(numeric):
            out.append({"column": name, "measure": "correlation_ratio",
                        "value": num(eta[t, j], 4)})  # fmt: skip
    return sorted(out, key=lambda a: -abs(a["value"]) if a["value"] is not None else 1.0)
