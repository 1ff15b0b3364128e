"""Prepare a profiled table for modelling: clean, split, assign folds, fit a preprocessor.

:func:`prepare` writes the PREPARED folder (``train/valid/test.parquet``,
``folds.parquet``, ``preprocessor.joblib``, ``prep.json``) and returns prep.json's dict.
The splits keep the original feature values; the fitted ``ColumnTransformer`` is what
turns them into a numeric matrix, and consumers ``sklearn.base.clone()`` it per CV fold.

The preprocessor uses only scikit-learn, pandas and the standard library, so loading it
does not need this package installed.

Prep reads the profile's ``recommendations`` (when present) and carries out the automatic
ones: ``drop`` (a feature, e.g. one that leaks the target; the profile's reason goes into
``dropped_columns``), ``drop_duplicate_rows``, ``split_by_time`` (a chronological split
and contiguous folds, for time-series forecasting) and ``encode_target`` (label sets of a
multilabel target become one class each). The rest is advice and is left alone.
"""

from __future__ import annotations

import json
import math
import operator
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

PROBLEM_TYPES = ("binary", "multiclass", "regression")
FILES = ("train.parquet", "valid.parquet", "test.parquet", "folds.parquet",
         "preprocessor.joblib", "prep.json")  # fmt: skip
#: One-hot columns per categorical feature at most; rarer categories share one column.
MAX_ONE_HOT_CATEGORIES = 50
#: Why columns of each kind are left out of the features.
DROP_REASONS = {
    "id": "identifier: a distinct value per row carries no signal",
    "constant": "constant: at most one distinct value",
    "text": "free text: text features are not supported yet",
    "datetime": "datetime features arrive with issue 4",
}
NUMERIC_KINDS = frozenset({"numeric"})
CATEGORICAL_KINDS = frozenset({"categorical", "boolean"})
#: Profile recommendations prep carries out; other actions are advice for people.
APPLIED_ACTIONS = frozenset({"drop", "drop_duplicate_rows", "split_by_time", "encode_target"})


class PrepError(ValueError):
    """Base of preparation errors that retrying cannot fix."""


class InvalidProfileError(PrepError):
    """The profile dict lacks fields or has values prep does not understand."""


class ProfileMismatchError(PrepError):
    """The profile describes a different table than the one given."""


class InvalidSplitError(PrepError):
    """The split sizes or fold count are out of range."""


class NotEnoughRowsError(PrepError):
    """Too few usable rows to make non-empty splits and folds."""


class UnusableTargetError(PrepError):
    """After dropping missing targets, the target cannot be learned."""


class NoFeaturesError(PrepError):
    """Every column was dropped, so there is nothing to learn from."""


def prepare(
    df: pd.DataFrame,
    profile: dict[str, Any],
    out_dir: Path,
    *,
    seed: int = 42,
    test_size: float = 0.15,
    valid_size: float = 0.15,
    n_folds: int = 5,
) -> dict[str, Any]:
    """Write the PREPARED folder for ``df`` into ``out_dir`` and return prep.json's dict.

    Rows without a target are dropped; id, constant, text and datetime columns are left
    out with a reason, and so are the features the profile recommends dropping; the split
    is seeded and stratified for classification (plain random, with a warning, when a
    class is too small), or chronological when the profile recommends it; ``n_folds``
    fold numbers are assigned to the train rows; the ``ColumnTransformer`` (median impute +
    scale for numbers, most-frequent impute + one-hot for categories and booleans) is
    fitted on the train features only. Same inputs and seed give the same files.
    """
    _check_sizes(test_size, valid_size, n_folds)
    target, problem_type, metric, kinds = _read_profile(profile)
    actions = _read_recommendations(profile)
    df = _with_string_names(df)
    _check_columns(df, kinds, target)
    notes: list[str] = []
    applied: list[dict[str, Any]] = []

    rows_in = len(df)
    target_encoding = None
    if "encode_target" in actions:
        rec = actions["encode_target"][0]
        df = df.assign(**{target: encode_label_sets(df[target], rec.get("separator"))})
        target_encoding = str(rec.get("encoding") or "label_powerset")
        applied.append(rec)
        notes.append(f"target '{target}': label sets encoded as one class each "
                     "(labels sorted, joined by '|')")
    duplicates_dropped = 0
    if "drop_duplicate_rows" in actions:
        repeated = _duplicated_rows(df)
        duplicates_dropped = int(repeated.sum())
        if duplicates_dropped:
            df = df.loc[~repeated].reset_index(drop=True)
            notes.append(f"dropped {duplicates_dropped} duplicate rows (profile: "
                         f"{actions['drop_duplicate_rows'][0]['reason']})")
        applied.append(actions["drop_duplicate_rows"][0])
    y_all = df[target]
    usable = y_all.notna()
    if problem_type == "regression":
        if not pd.api.types.is_numeric_dtype(y_all) or pd.api.types.is_bool_dtype(y_all):
            raise ProfileMismatchError(
                f"the profile says regression but target '{target}' holds {y_all.dtype} "
                "values; profile the table again or give a numeric target"
            )
        usable &= np.isfinite(y_all.to_numpy(dtype=np.float64, na_value=np.nan))
    dropped_rows = int(rows_in - usable.sum())
    if dropped_rows:
        notes.append(f"dropped {dropped_rows} rows whose target '{target}' is missing")
    data = df.loc[usable].reset_index(drop=True)

    feature_columns, numeric_columns, categorical_columns, dropped_columns = _select_features(
        data, kinds, target, actions.get("drop", []), applied, notes
    )
    data = _clean_features(data, numeric_columns, categorical_columns, notes)

    y = data[target]
    class_labels: list[str] = []
    strat_labels: pd.Series | None = None
    if problem_type != "regression":
        strat_labels = y.astype(str)
        counts = strat_labels.value_counts()
        if counts.size < 2:
            raise UnusableTargetError(
                f"after dropping rows without a target, '{target}' has a single class "
                f"({counts.index[0]!r}); there is nothing to learn"
            )
        if problem_type == "binary" and counts.size != 2:
            raise ProfileMismatchError(
                f"the profile says binary but target '{target}' has {counts.size} classes; "
                "profile the table again"
            )
        class_labels = _class_labels(y)

    time_column = _time_column(actions, data, target, notes)
    if time_column is not None:
        applied.append(actions["split_by_time"][0])
        train_idx, valid_idx, test_idx = _chronological_split(
            data[time_column], test_size, valid_size, n_folds
        )
        stratified, split_strategy = False, "chronological"
    else:
        train_idx, valid_idx, test_idx, stratified = _split(
            len(data), strat_labels, seed, test_size, valid_size, n_folds, notes
        )
        split_strategy = "stratified" if stratified else "random"
    train = data.iloc[train_idx].reset_index(drop=True)
    valid = data.iloc[valid_idx].reset_index(drop=True)
    test = data.iloc[test_idx].reset_index(drop=True)
    if time_column is not None:
        folds, fold_strategy = _contiguous_folds(len(train), n_folds)
    else:
        train_labels = None if strat_labels is None else strat_labels.iloc[train_idx]
        folds, fold_strategy = _assign_folds(len(train), train_labels, n_folds, seed, notes)

    preprocessor = build_preprocessor(numeric_columns, categorical_columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preprocessor.fit(train[feature_columns])
    notes.extend(f"preprocessor: {w.message}" for w in caught)
    n_transformed = int(preprocessor.transform(valid[feature_columns]).shape[1])

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = [c for c in data.columns if c in set(feature_columns) or c == target]
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        part[keep].to_parquet(out_dir / f"{name}.parquet", engine="pyarrow", index=False)
    pd.DataFrame({"fold": folds}).to_parquet(out_dir / "folds.parquet", index=False)
    joblib.dump(preprocessor, out_dir / "preprocessor.joblib")

    prep = {
        "target": target,
        "problem_type": problem_type,
        "metric": metric,
        "feature_columns": feature_columns,
        "numeric_columns": numeric_columns,
        "categorical_columns": categorical_columns,
        "dropped_columns": dropped_columns,
        "n_folds": n_folds,
        "seed": seed,
        "split_sizes": {"train": len(train), "valid": len(valid), "test": len(test)},
        "class_labels": class_labels,
        "rows_in": rows_in,
        "rows_dropped_missing_target": dropped_rows,
        "test_size": test_size,
        "valid_size": valid_size,
        "stratified": stratified,
        "fold_strategy": fold_strategy,
        "n_transformed_features": n_transformed,
        "warnings": notes,
        "files": list(FILES),
        "split_strategy": split_strategy,
        "time_column": time_column,
        "rows_dropped_duplicates": duplicates_dropped,
        "target_encoding": target_encoding,
        "recommendations_applied": applied,
    }
    (out_dir / "prep.json").write_text(json.dumps(prep, indent=2, allow_nan=False) + "\n")
    return prep


def build_preprocessor(
    numeric_columns: list[str], categorical_columns: list[str]
) -> ColumnTransformer:
    """An unfitted ``ColumnTransformer`` for the given numeric and categorical columns.

    Numbers: median imputation then standard scaling. Categories and booleans: cast to
    pandas strings (so mixed types work, missing stays missing), most-frequent
    imputation, then one-hot encoding that ignores unseen categories.
    """
    transformers: list[tuple[str, Pipeline, list[str]]] = []
    if numeric_columns:
        numeric = Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
            ]
        )
        transformers.append(("num", numeric, list(numeric_columns)))
    if categorical_columns:
        categorical = Pipeline(
            [
                (
                    "as_str",
                    FunctionTransformer(
                        operator.methodcaller("astype", "string"), feature_names_out="one-to-one"
                    ),
                ),
                ("impute", SimpleImputer(strategy="most_frequent", missing_values=pd.NA)),
                (
                    "onehot",
                    OneHotEncoder(
                        handle_unknown="ignore",
                        sparse_output=False,
                        max_categories=MAX_ONE_HOT_CATEGORIES,
                    ),
                ),
            ]
        )
        transformers.append(("cat", categorical, list(categorical_columns)))
    return ColumnTransformer(transformers, remainder="drop")


# --- validation ------------------------------------------------------------------------


def _check_sizes(test_size: float, valid_size: float, n_folds: int) -> None:
    if not (0 < test_size < 1 and 0 < valid_size < 1 and test_size + valid_size < 1):
        raise InvalidSplitError(
            f"test_size={test_size} and valid_size={valid_size} must each be between 0 and 1 "
            "and leave rows for training (their sum below 1), e.g. 0.15 and 0.15"
        )
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise InvalidSplitError(f"n_folds={n_folds!r} must be an integer of at least 2")


def _read_profile(profile: dict[str, Any]) -> tuple[str, str, str, dict[str, str]]:
    missing = [k for k in ("target", "problem_type", "metric", "columns") if k not in profile]
    if missing:
        raise InvalidProfileError(
            f"the profile lacks {', '.join(missing)}; pass the dict profile_table produced"
        )
    problem_type = profile["problem_type"]
    if problem_type not in PROBLEM_TYPES:
        raise InvalidProfileError(
            f"profile problem_type {problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}"
        )
    try:
        kinds = {str(c["name"]): str(c["kind"]) for c in profile["columns"]}
    except (KeyError, TypeError) as exc:
        raise InvalidProfileError(
            f"profile columns must be a list of dicts with 'name' and 'kind' ({exc!r})"
        ) from exc
    return str(profile["target"]), problem_type, str(profile["metric"]), kinds


def _read_recommendations(profile: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The profile's automatic recommendations by action (none for older profiles)."""
    raw = profile.get("recommendations") or []
    if not isinstance(raw, list) or not all(
        isinstance(r, dict) and isinstance(r.get("action"), str) for r in raw
    ):
        raise InvalidProfileError(
            "profile recommendations must be a list of dicts with an 'action'; pass the dict "
            "profile_table produced"
        )
    by_action: dict[str, list[dict[str, Any]]] = {}
    for rec in raw:
        if rec["action"] in APPLIED_ACTIONS:
            by_action.setdefault(rec["action"], []).append(rec)
    return by_action


def _with_string_names(df: pd.DataFrame) -> pd.DataFrame:
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ProfileMismatchError(f"column names {dupes} appear more than once")
    df = df.set_axis(names, axis=1) if names != list(df.columns) else df
    return _with_default_index(df)


def _with_default_index(df: pd.DataFrame) -> pd.DataFrame:
    """A 0..n-1 index; a datetime or named index becomes a column first (the profile's
    rule, so both see the same columns)."""
    index = df.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return df
    names = [str(n) if n is not None else "index" for n in index.names]
    keep = isinstance(index, pd.DatetimeIndex) or any(n is not None for n in index.names)
    if keep and not set(names) & set(df.columns):
        df = df.reset_index()
        return df.set_axis([str(c) for c in df.columns], axis=1)
    return df.reset_index(drop=True)


def _check_columns(df: pd.DataFrame, kinds: dict[str, str], target: str) -> None:
    if target not in df.columns:
        raise ProfileMismatchError(
            f"target '{target}' from the profile is not in the table (columns: "
            f"{', '.join(df.columns)}); profile this table again"
        )
    extra = [c for c in df.columns if c not in kinds]
    absent = [c for c in kinds if c not in df.columns]
    if extra or absent:
        raise ProfileMismatchError(
            "the profile was made for a different table: "
            + "; ".join(
                part
                for part in (
                    f"columns not in the profile: {extra}" if extra else "",
                    f"profiled columns missing from the table: {absent}" if absent else "",
                )
                if part
            )
            + "; profile this table again"
        )


# --- features --------------------------------------------------------------------------


def _select_features(
    data: pd.DataFrame,
    kinds: dict[str, str],
    target: str,
    drops: list[dict[str, Any]],
    applied: list[dict[str, Any]],
    notes: list[str],
) -> tuple[list[str], list[str], list[str], dict[str, str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    dropped: dict[str, str] = {}
    recommended: dict[str, dict[str, Any]] = {}
    for rec in drops:
        column = rec.get("column")
        if column == target:
            notes.append(f"profile recommends dropping the target '{target}'; ignored")
        elif column not in data.columns:
            notes.append(f"profile recommends dropping '{column}', which is not in the table; "
                         "ignored")
        else:
            recommended.setdefault(str(column), rec)
    for name in data.columns:
        if name == target:
            continue
        kind = kinds[name]
        if kind in DROP_REASONS:
            dropped[name] = DROP_REASONS[kind]
            if name in recommended:
                applied.append(recommended[name])
        elif name in recommended:
            rec = recommended[name]
            check = rec.get("check", "recommendation")
            dropped[name] = f"profile ({check}): {rec.get('reason', '')}"
            applied.append(rec)
        elif kind in NUMERIC_KINDS:
            series = data[name]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                numeric.append(name)
            else:  # profiled as numeric but stored otherwise: treat the values as labels
                categorical.append(name)
        elif kind in CATEGORICAL_KINDS:
            categorical.append(name)
        else:
            raise InvalidProfileError(f"column '{name}' has unknown kind {kind!r} in the profile")
    features = [c for c in data.columns if c in set(numeric) | set(categorical)]
    if not features:
        raise NoFeaturesError(
            "no feature columns are left after dropping "
            + ", ".join(f"'{k}' ({v})" for k, v in dropped.items())
            + "; add usable numeric or categorical columns to the dataset"
        )
    return features, numeric, categorical, dropped


def _clean_features(
    data: pd.DataFrame, numeric: list[str], categorical: list[str], notes: list[str]
) -> pd.DataFrame:
    """Infinite numbers become missing; mixed-type category columns become strings."""
    data = data.copy()
    for name in numeric:
        values = data[name]
        if pd.api.types.is_float_dtype(values):
            infinite = np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan))
            if infinite.any():
                data[name] = values.mask(infinite)
                notes.append(
                    f"column '{name}': {int(infinite.sum())} infinite values set to missing"
                )
    for name in categorical:
        values = data[name]
        if pd.api.types.is_object_dtype(values):
            types = {type(v) for v in values.dropna()}
            if len(types) > 1:
                data[name] = values.astype("string").astype(object).where(values.notna(), None)
                type_names = ", ".join(sorted(t.__name__ for t in types))
                notes.append(f"column '{name}' mixes value types ({type_names}); stored as strings")
    return data


def encode_label_sets(y: pd.Series, separator: str | None) -> pd.Series:
    """Each label set as one class: its labels sorted and joined by ``|``.

    Cells are lists (``separator`` None) or text with labels joined by ``separator``;
    missing cells and empty sets are missing.
    """

    def encode(cell: Any) -> Any:
        if isinstance(cell, list | tuple | set | frozenset | np.ndarray):
            labels = {str(v).strip() for v in cell}
        elif cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA:
            return None
        elif separator is None:
            labels = {str(cell).strip()}
        else:
            labels = {part.strip() for part in str(cell).split(separator)}
        return "|".join(sorted(label for label in labels if label)) or None

    return y.map(encode).astype(object)


def _duplicated_rows(df: pd.DataFrame) -> pd.Series:
    """Rows that repeat an earlier row (cells that cannot be hashed compare as text)."""
    try:
        return df.duplicated()
    except TypeError:
        return df.astype(str).duplicated()


def _class_labels(y: pd.Series) -> list[str]:
    values = list(pd.unique(y))
    try:
        values = sorted(values)
    except TypeError:
        values = sorted(values, key=str)
    return [str(v) for v in values]


# --- split and folds -------------------------------------------------------------------


def _split(
    n: int,
    labels: pd.Series | None,
    seed: int,
    test_size: float,
    valid_size: float,
    n_folds: int,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    n_test = math.ceil(test_size * n)
    n_valid = math.ceil(valid_size / (1 - test_size) * (n - n_test))
    n_train = n - n_test - n_valid
    if n_test < 1 or n_valid < 1 or n_train < max(n_folds, 2):
        raise NotEnoughRowsError(
            f"{n} usable rows are too few for test_size={test_size}, valid_size={valid_size} "
            f"and {n_folds} folds (train would get {n_train}); give more rows or fewer folds"
        )
    positions = np.arange(n)
    stratified = labels is not None
    if labels is not None:
        smallest = labels.value_counts()
        if smallest.min() < 3:
            rare = ", ".join(map(str, smallest[smallest < 3].index))
            notes.append(
                f"class(es) {rare} have fewer than 3 rows, too few to appear in every split; "
                "the split is random, not stratified"
            )
            stratified = False

    def cut(idx: np.ndarray, size: float, strat: np.ndarray | None) -> tuple[np.ndarray, ...]:
        nonlocal stratified
        if stratified and strat is not None:
            try:
                return tuple(
                    train_test_split(idx, test_size=size, random_state=seed, stratify=strat)
                )
            except ValueError as exc:
                notes.append(f"stratified split impossible ({exc}); the split is random")
                stratified = False
        return tuple(train_test_split(idx, test_size=size, random_state=seed))

    strat_all = None if labels is None else labels.to_numpy()
    rest, test_idx = cut(positions, n_test, strat_all)
    strat_rest = None if strat_all is None else strat_all[rest]
    train_idx, valid_idx = cut(rest, n_valid, strat_rest)
    return np.sort(train_idx), np.sort(valid_idx), np.sort(test_idx), stratified


def _time_column(
    actions: dict[str, list[dict[str, Any]]], data: pd.DataFrame, target: str, notes: list[str]
) -> str | None:
    if "split_by_time" not in actions:
        return None
    column = actions["split_by_time"][0].get("column")
    if column not in data.columns or column == target:
        notes.append(f"profile recommends a chronological split on '{column}', which is not a "
                     "column of the table; the split is random")
        return None
    return str(column)


def _chronological_split(
    times: pd.Series, test_size: float, valid_size: float, n_folds: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test = the latest rows, valid = the ones before, train = the rest (oldest first).

    Rows whose time is missing or unreadable count as the oldest.
    """
    n = len(times)
    n_test = math.ceil(test_size * n)
    n_valid = math.ceil(valid_size / (1 - test_size) * (n - n_test))
    n_train = n - n_test - n_valid
    if n_test < 1 or n_valid < 1 or n_train < max(n_folds, 2):
        raise NotEnoughRowsError(
            f"{n} usable rows are too few for test_size={test_size}, valid_size={valid_size} "
            f"and {n_folds} folds (train would get {n_train}); give more rows or fewer folds"
        )
    if not pd.api.types.is_datetime64_any_dtype(times):
        times = pd.to_datetime(times.astype(str).where(times.notna()), errors="coerce",
                               format="mixed")  # fmt: skip
    order = np.argsort(times.to_numpy(dtype="datetime64[ns]").astype(np.int64), kind="stable")
    return order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]


def _contiguous_folds(n_train: int, n_folds: int) -> tuple[np.ndarray, str]:
    """Folds as consecutive blocks of the time-ordered train rows (no shuffling)."""
    folds = np.empty(n_train, dtype=np.int64)
    blocks = KFold(n_splits=n_folds, shuffle=False).split(np.zeros(n_train))
    for fold, (_, idx) in enumerate(blocks):
        folds[idx] = fold
    return folds, "KFold (contiguous blocks in time order)"


def _assign_folds(
    n_train: int, labels: pd.Series | None, n_folds: int, seed: int, notes: list[str]
) -> tuple[np.ndarray, str]:
    folds = np.full(n_train, -1, dtype=np.int64)
    placeholder = np.zeros(n_train)
    if labels is not None:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for fold, (_, idx) in enumerate(splitter.split(placeholder, labels.to_numpy())):
                    folds[idx] = fold
            notes.extend(f"folds: {w.message}" for w in caught)
            return folds, "StratifiedKFold"
        except ValueError as exc:
            notes.append(f"stratified folds impossible ({exc}); folds are random")
    splitter_plain = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, idx) in enumerate(splitter_plain.split(placeholder)):
        folds[idx] = fold
    return folds, "KFold"
