"""Data quality: duplicates, outliers, missingness, class imbalance, leakage and redundant
columns."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlmesh_profile._common import as_float, is_listlike_cell, num, share
from mlmesh_profile._sampling import sample_positions

#: Classes whose smallest is below this share of the largest are imbalanced.
IMBALANCE_RATIO = 0.1
#: z-score beyond which a value is an outlier.
Z_THRESHOLD = 3.0
IQR_FACTOR = 1.5
#: Rows and columns the isolation forest looks at, at most.
ISOLATION_SAMPLE = 20_000
ISOLATION_MAX_COLUMNS = 100
#: Rows with an isolation-forest anomaly score at or above this are flagged (scores near
#: 0.5 are ordinary rows, near 1 clear anomalies; Liu, Ting and Zhou, 2008).
ANOMALY_SCORE = 0.6
#: Columns whose missing cells overlap at least this much (Jaccard) go missing together.
CO_MISSING = 0.9
#: Missingness patterns look at this many columns (the most often missing) at most, and at
#: the sample instead of every row when rows x columns exceeds this many cells.
MISSING_MAX_COLUMNS = 500
MISSING_MAX_CELLS = 60_000_000
#: Leakage checks: rows and features looked at, folds, and the scores that flag a feature
#: that predicts the target almost perfectly on its own, out of fold.
LEAKAGE_SAMPLE = 20_000
LEAKAGE_MAX_FEATURES = 200
LEAKAGE_MIN_ROWS = 30
LEAKAGE_FOLDS = 3
LEAKAGE_THRESHOLDS = {"roc_auc": 0.995, "balanced_accuracy": 0.99, "r2": 0.99}
#: Classes smaller than this are left out of the constant-within-class check.
MIN_CLASS_ROWS = 5
#: Pearson beyond which two numeric features carry the same information.
REDUNDANT_CORRELATION = 0.99999
LEAKAGE_KINDS = frozenset({"numeric", "boolean", "categorical"})


# --- duplicates ------------------------------------------------------------------------


def _cell_hashes(s: pd.Series) -> np.ndarray:
    """A 64-bit hash per cell (lists and other unhashable cells by their text)."""
    try:
        return pd.util.hash_pandas_object(s, index=False).to_numpy()
    except TypeError:
        return pd.util.hash_pandas_object(s.astype(str), index=False).to_numpy()


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _mix(acc: np.ndarray, cells: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        acc = (acc ^ cells) * _FNV_PRIME
        return acc ^ (acc >> np.uint64(29))


def duplicates(df: pd.DataFrame, target: str) -> dict[str, Any]:
    """Rows that repeat earlier rows, and rows whose features repeat with another target.

    Rows are compared by a 64-bit hash of their cells, built one column at a time (a
    false match is about as likely as one in 10^7 for a million rows).
    """
    n = len(df)
    rows = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    feature_rows = rows.copy()
    target_cells = None
    for name in df.columns:
        cells = _cell_hashes(df[name])
        rows = _mix(rows, cells)
        if name == target:
            target_cells = cells
        else:
            feature_rows = _mix(feature_rows, cells)
    duplicate_rows = int(pd.Series(rows).duplicated().sum())
    out = {"duplicate_rows": duplicate_rows, "duplicate_share": share(duplicate_rows, n),
           "feature_duplicate_rows": 0, "conflicting_rows": 0, "conflicting_groups": 0}
    if target_cells is not None and df.shape[1] > 1:
        out["feature_duplicate_rows"] = int(pd.Series(feature_rows).duplicated().sum())
        if out["feature_duplicate_rows"]:
            frame = pd.DataFrame({"features": feature_rows, "target": target_cells})
            targets_per_group = frame.groupby("features", sort=False)["target"].nunique()
            conflicting = targets_per_group[targets_per_group > 1]
            out["conflicting_groups"] = int(conflicting.size)
            out["conflicting_rows"] = int(frame["features"].isin(conflicting.index).sum())
    return out


# --- outliers --------------------------------------------------------------------------


def outliers(
    df: pd.DataFrame,
    columns: dict[str, dict[str, Any]],
    numeric_features: list[str],
    sample: pd.DataFrame,
    seed: int,
) -> dict[str, Any]:
    """Outliers per numeric column (IQR and z-score rules, over every row) and rows an
    isolation forest isolates quickly (on a sample of at most 20,000 rows)."""
    iqr, zscore = {}, {}
    for name in numeric_features:
        col = columns[name]
        if col["q25"] is None or col["std"] is None:
            continue
        values = as_float(df[name])
        values = values[np.isfinite(values)]
        spread = col["q75"] - col["q25"]
        low, high = col["q25"] - IQR_FACTOR * spread, col["q75"] + IQR_FACTOR * spread
        n_iqr = int(np.count_nonzero((values < low) | (values > high)))
        iqr[name] = {"count": n_iqr, "share": share(n_iqr, values.size),
                     "low": num(low), "high": num(high)}  # fmt: skip
        if col["std"] > 0:
            z = np.abs(values - col["mean"]) / col["std"]
            n_z = int(np.count_nonzero(z > Z_THRESHOLD))
            zscore[name] = {"count": n_z, "share": share(n_z, values.size),
                            "max_abs_z": num(z.max(), 3)}  # fmt: skip
    return {
        "iqr": {"factor": IQR_FACTOR, "columns": iqr},
        "zscore": {"threshold": Z_THRESHOLD, "columns": zscore},
        "isolation_forest": _isolation_forest(sample, numeric_features, seed),
    }


def _isolation_forest(sample: pd.DataFrame, numeric: list[str], seed: int) -> dict[str, Any]:
    used = numeric[:ISOLATION_MAX_COLUMNS]
    if not used or len(sample) < 20:
        return {"checked": False, "reason": "needs at least one numeric feature and 20 rows"}
    rows = sample.iloc[sample_positions(len(sample), ISOLATION_SAMPLE, seed)]
    x = np.column_stack([as_float(rows[c]) for c in used])
    x[~np.isfinite(x)] = np.nan
    medians = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    x = np.where(np.isnan(x), medians, x)
    forest = IsolationForest(n_estimators=100, random_state=seed)
    scores = forest.fit(x).score_samples(x)  # minus the anomaly score of Liu et al.
    flagged = scores <= -ANOMALY_SCORE
    worst = np.argsort(scores)[:10]
    return {
        "checked": True,
        "rows_checked": int(len(rows)),
        "columns": used,
        "anomaly_score_threshold": ANOMALY_SCORE,
        "flagged": int(flagged.sum()),
        "share": share(int(flagged.sum()), len(rows)),
        "most_anomalous_rows": [
            {"row": int(rows.index[i]), "anomaly_score": num(-scores[i], 4)} for i in worst
        ],
    }


# --- missingness -----------------------------------------------------------------------


def missingness(
    df: pd.DataFrame, sample: pd.DataFrame, columns: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Rows with missing values, the most common patterns of missing columns, and groups
    of columns that go missing together (Jaccard overlap of their missing cells >= 0.9)."""
    with_missing = sorted((c for c in columns.values() if c["missing"]),
                          key=lambda c: -c["missing"])[:MISSING_MAX_COLUMNS]  # fmt: skip
    names = [c["name"] for c in with_missing]
    out: dict[str, Any] = {
        "columns_with_missing": len([c for c in columns.values() if c["missing"]]),
        "missing_cells": int(sum(c["missing"] for c in columns.values())),
        "rows_checked": int(len(df)),
        "rows_with_missing": 0,
        "complete_rows": int(len(df)),
        "patterns": [],
        "co_missing_groups": [],
    }
    if not names:
        return out
    frame = df if len(df) * len(names) <= MISSING_MAX_CELLS else sample
    mask = frame[names].isna().to_numpy()
    n = mask.shape[0]
    any_missing = mask.any(axis=1)
    out.update(rows_checked=int(n), rows_with_missing=int(any_missing.sum()),
               complete_rows=int(n - any_missing.sum()))  # fmt: skip
    packed = np.packbits(mask, axis=1)
    patterns, counts = np.unique(packed, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:10]
    for i in order:
        bits = np.unpackbits(patterns[i])[: len(names)].astype(bool)
        missing_cols = [name for name, b in zip(names, bits, strict=True) if b]
        out["patterns"].append({"missing": missing_cols, "rows": int(counts[i]),
                                "share": share(int(counts[i]), n)})  # fmt: skip
    as_float32 = mask.astype(np.float32)
    overlap = as_float32.T @ as_float32
    per_column = np.diag(overlap)
    union = per_column[:, None] + per_column[None, :] - overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        jaccard = np.where(union > 0, overlap / union, 0.0)
    out["co_missing_groups"] = _groups_from_matrix(names, jaccard, CO_MISSING)
    return out


def _groups_from_matrix(names: list[str], matrix: np.ndarray, threshold: float) -> list[dict]:
    parent = list(range(len(names)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows, cols = np.nonzero(np.triu(matrix >= threshold, k=1))
    for i, j in zip(rows, cols, strict=True):
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(names)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) > 1:
            sub = matrix[np.ix_(members, members)]
            off = sub[~np.eye(len(members), dtype=bool)]
            out.append({"columns": [names[i] for i in members],
                        "min_overlap": num(off.min(), 4)})  # fmt: skip
    return sorted(out, key=lambda g: -len(g["columns"]))


# --- class imbalance -------------------------------------------------------------------


def class_imbalance(class_balance: dict[str, int]) -> dict[str, Any] | None:
    """Majority and minority classes, their ratio, and the normalised entropy (1 = even)."""
    if len(class_balance) < 2:
        return None
    counts = np.array(list(class_balance.values()), dtype=np.float64)
    labels = list(class_balance)
    probabilities = counts / counts.sum()
    entropy = float(-(probabilities * np.log(probabilities)).sum() / np.log(len(counts)))
    ratio = float(counts.min() / counts.max())
    return {
        "n_classes": len(counts),
        "majority_class": labels[int(counts.argmax())],
        "minority_class": labels[int(counts.argmin())],
        "minority_to_majority": round(ratio, 6),
        "normalised_entropy": round(entropy, 6),
        "imbalanced": ratio < IMBALANCE_RATIO,
    }


# --- leakage ---------------------------------------------------------------------------


def leakage(
    df: pd.DataFrame,
    sample: pd.DataFrame,
    y_sample: pd.Series,
    full_target: Callable[[], pd.Series],
    kinds: dict[str, str],
    target: str,
    problem_type: str,
    seed: int,
) -> dict[str, Any]:
    """Features that give the target away.

    Each numeric, boolean or categorical feature alone predicts the target out of fold
    (3 folds on a sample of at most 20,000 rows): a shallow decision tree for numbers
    (depth 4 for classes, 6 for regression), a per-value lookup for categories and
    booleans stored as text. Scores: ROC AUC (binary), balanced accuracy (multiclass), R²
    (regression); at or above :data:`LEAKAGE_THRESHOLDS` the feature is flagged. For
    classification, a feature constant within every class (and not overall) is flagged
    too, confirmed on every row; identifiers are always flagged. ``y_sample`` is the
    sample's target as trained classes; ``full_target`` returns the whole column's
    (called only to confirm a finding).
    """
    features = [c for c in sample.columns if c != target and kinds[c] in LEAKAGE_KINDS]
    features = features[:LEAKAGE_MAX_FEATURES]
    labelled = y_sample.notna()
    if problem_type == "regression":
        labelled &= np.isfinite(as_float(y_sample.where(labelled, 0.0)))
    rows = sample.loc[labelled]
    y = y_sample.loc[labelled]
    if len(rows) > LEAKAGE_SAMPLE:
        keep = sample_positions(len(rows), LEAKAGE_SAMPLE, seed)
        rows, y = rows.iloc[keep], y.iloc[keep]
    measure = {"binary": "roc_auc", "multiclass": "balanced_accuracy",
               "regression": "r2"}[problem_type]  # fmt: skip
    result: dict[str, Any] = {"checked": False, "rows_checked": int(len(rows)),
                              "measure": measure, "threshold": LEAKAGE_THRESHOLDS[measure],
                              "scores": [], "flags": []}  # fmt: skip
    for name in sample.columns:
        if kinds[name] == "id" and name != target:
            result["flags"].append({
                "column": name, "check": "id", "score": None,
                "reason": (f"'{name}' is an identifier: it carries no signal of its own, yet a "
                           "model can learn the row order or how the source grouped records"),
            })  # fmt: skip
    if len(rows) < LEAKAGE_MIN_ROWS or not features:
        result["reason"] = (f"needs at least {LEAKAGE_MIN_ROWS} labelled rows and one usable "
                            "feature")  # fmt: skip
        return result
    result["checked"] = True
    if problem_type == "regression":
        target_values = as_float(y)
        folds = list(KFold(LEAKAGE_FOLDS, shuffle=True, random_state=seed).split(rows))
    else:
        target_values = pd.factorize(y.astype(str), sort=True)[0]
        smallest = np.bincount(target_values).min()
        splitter = (StratifiedKFold(LEAKAGE_FOLDS, shuffle=True, random_state=seed)
                    if smallest >= LEAKAGE_FOLDS
                    else KFold(LEAKAGE_FOLDS, shuffle=True, random_state=seed))  # fmt: skip
        folds = list(splitter.split(rows, target_values))

    scores = []
    for name in features:
        score = _single_feature_score(rows[name], kinds[name], target_values, problem_type,
                                      folds, seed)  # fmt: skip
        if score is not None:
            scores.append({"column": name, "score": num(score, 4)})
    scores.sort(key=lambda s: -s["score"])
    result["scores"] = scores[:20]
    threshold = LEAKAGE_THRESHOLDS[measure]
    for s in scores:
        if s["score"] >= threshold:
            result["flags"].append({
                "column": s["column"], "check": "single_feature", "score": s["score"],
                "reason": (f"'{s['column']}' alone predicts the target almost perfectly "
                           f"({measure} {s['score']:.4f} out of fold on {len(rows)} rows); it "
                           "is probably derived from the target or recorded after it"),
            })  # fmt: skip
    if problem_type != "regression":
        flagged = {f["column"] for f in result["flags"]}
        for name in _constant_within_classes(df, rows, y, features, full_target):
            if name not in flagged:
                result["flags"].append({
                    "column": name, "check": "constant_within_target", "score": None,
                    "reason": (f"'{name}' has a single value within each target class, so "
                               "it is a function of the target"),
                })  # fmt: skip
    return result


def _single_feature_score(
    values: pd.Series,
    kind: str,
    y: np.ndarray,
    problem_type: str,
    folds: list[tuple[np.ndarray, np.ndarray]],
    seed: int,
) -> float | None:
    n_classes = 0 if problem_type == "regression" else int(y.max()) + 1
    oof = np.zeros((len(y), max(n_classes, 1)))
    if kind == "categorical" or not pd.api.types.is_numeric_dtype(values):
        codes = _category_codes(values)
        for train, test in folds:
            oof[test] = _lookup_predict(codes[train], y[train], codes[test], n_classes)
    else:
        x = as_float(values.astype("float64") if pd.api.types.is_bool_dtype(values) else values)
        x = np.where(np.isfinite(x), x, np.nan).reshape(-1, 1)
        if np.all(np.isnan(x)):
            return None
        for train, test in folds:
            if problem_type == "regression":
                model = DecisionTreeRegressor(max_depth=6, random_state=seed)
                oof[test, 0] = model.fit(x[train], y[train]).predict(x[test])
            else:
                model = DecisionTreeClassifier(max_depth=4, random_state=seed)
                model.fit(x[train], y[train])
                oof[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if problem_type == "regression":
            return float(r2_score(y, oof[:, 0]))
        if problem_type == "binary":
            if np.unique(y).size < 2:
                return None
            return float(roc_auc_score(y, oof[:, 1]))
        return float(balanced_accuracy_score(y, oof.argmax(axis=1)))


def _category_codes(values: pd.Series) -> np.ndarray:
    try:
        codes = pd.factorize(values, use_na_sentinel=False)[0]
    except TypeError:
        codes = pd.factorize(values.astype(str), use_na_sentinel=False)[0]
    return codes.astype(np.int64)


def _lookup_predict(
    train_codes: np.ndarray, y: np.ndarray, test_codes: np.ndarray, n_classes: int
) -> np.ndarray:
    """Out-of-fold predictions of a per-category table: class shares or the mean."""
    size = int(max(train_codes.max(initial=0), test_codes.max(initial=0))) + 1
    counts = np.bincount(train_codes, minlength=size).astype(np.float64)
    seen = counts[test_codes] > 0
    if n_classes == 0:
        sums = np.bincount(train_codes, weights=y, minlength=size)
        means = np.divide(sums, counts, out=np.full(size, y.mean()), where=counts > 0)
        return np.where(seen, means[test_codes], y.mean())[:, None]
    table = np.zeros((size, n_classes))
    np.add.at(table, (train_codes, y), 1.0)
    prior = np.bincount(y, minlength=n_classes) / len(y)
    shares = np.divide(table, counts[:, None], out=np.tile(prior, (size, 1)),
                       where=counts[:, None] > 0)  # fmt: skip
    return np.where(seen[:, None], shares[test_codes], prior)


def _constant_within_classes(
    df: pd.DataFrame,
    rows: pd.DataFrame,
    y: pd.Series,
    features: list[str],
    full_target: Callable[[], pd.Series],
) -> list[str]:
    """Features with one value inside each class (a function of the target).

    Only classes with at least :data:`MIN_CLASS_ROWS` rows count (in a class of one row
    every feature is constant), and they must hold 90% of the rows; candidates found on
    the sample are confirmed on every row.
    """
    classes = y.astype(str).to_numpy()
    sizes = pd.Series(classes).value_counts()
    counted = sizes[sizes >= MIN_CLASS_ROWS].index
    if counted.size < 2 or sizes[counted].sum() < 0.9 * len(classes):
        return []
    keep = np.isin(classes, counted)
    frame = rows.loc[keep, features].copy()
    for name in features:
        if pd.api.types.is_object_dtype(frame[name]) and frame[name].map(is_listlike_cell).any():
            frame[name] = frame[name].astype(str)
    frame["__classes__"] = classes[keep]
    per_class = frame.groupby("__classes__", sort=False)[features].nunique(dropna=False)
    overall = frame[features].nunique(dropna=False)
    candidates = [c for c in features if per_class[c].max() == 1 and overall[c] > 1]
    if not candidates:
        return []
    whole_target = full_target()
    whole_classes = whole_target.astype(str).where(whole_target.notna())
    whole_sizes = whole_classes.value_counts()
    in_counted = whole_classes.isin(whole_sizes[whole_sizes >= MIN_CLASS_ROWS].index)
    confirmed = []
    for name in candidates:  # confirm on every row of the counted classes
        whole = pd.DataFrame({"v": df[name].astype(str), "t": whole_classes})[in_counted]
        if whole.groupby("t", sort=False)["v"].nunique(dropna=False).max() == 1:
            confirmed.append(name)
    return confirmed


# --- redundant columns -----------------------------------------------------------------


def redundant_columns(
    df: pd.DataFrame, high_pairs: list[dict[str, Any]], target: str
) -> list[dict[str, Any]]:
    """Feature pairs that carry the same information, confirmed on every row: numbers
    with |Pearson| >= 0.99999, categories that map one to one. The later column of each
    pair is the one to drop."""
    out: list[dict[str, Any]] = []
    dropped: set[str] = set()
    position = {name: i for i, name in enumerate(df.columns)}
    for pair in high_pairs:
        a, b = sorted((pair["a"], pair["b"]), key=position.__getitem__)
        if target in (a, b) or b in dropped or a in dropped:
            continue
        if pair["measure"] == "pearson" and abs(pair["value"]) >= REDUNDANT_CORRELATION:
            x, z = as_float(df[a]), as_float(df[b])
            both = np.isfinite(x) & np.isfinite(z)
            if both.sum() > 2 and np.array_equal(np.isnan(x), np.isnan(z)):
                r = float(np.corrcoef(x[both], z[both])[0, 1])
                if abs(r) >= REDUNDANT_CORRELATION:
                    out.append({"column": b, "same_as": a, "measure": "pearson",
                                "value": num(r, 6)})  # fmt: skip
                    dropped.add(b)
        elif pair["measure"] == "cramers_v" and pair["value"] >= 0.95:
            if _one_to_one(df[a], df[b]):
                out.append({"column": b, "same_as": a, "measure": "one_to_one", "value": 1.0})
                dropped.add(b)
    return out


def _one_to_one(a: pd.Series, b: pd.Series) -> bool:
    frame = pd.DataFrame({"a": a.astype(str).where(a.notna(), "<NA>"),
                          "b": b.astype(str).where(b.notna(), "<NA>")})  # fmt: skip
    pairs = frame.drop_duplicates()
    return bool(len(pairs) == frame["a"].nunique() == frame["b"].nunique())
