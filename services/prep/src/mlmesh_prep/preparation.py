"""Prepare a profiled table for modelling: clean, split, assign folds, fit preprocessors.

:func:`prepare` writes the PREPARED folder (``train/valid/test.parquet``,
``folds.parquet``, ``preprocessor.joblib``, ``preprocessor_trees.joblib``, ``prep.json``)
and returns prep.json's dict. The splits keep the original feature values; the fitted
preprocessors turn them into numeric matrices, and consumers ``sklearn.base.clone()`` one
per CV fold and fit it on that fold's train rows with the target (target encoding fits
inside ``fit``). ``preprocessor.joblib`` is dense and scaled (linear, SVM, KNN, MLP);
``preprocessor_trees.joblib`` is unscaled with low-cardinality categories as integer codes
(output indices in prep.json ``tree_categorical_features``).

The preprocessors use scikit-learn and :mod:`mlmesh_common.preprocessing` only, so loading
them does not need this package installed.

Prep reads the profile's ``recommendations`` (when present) and carries out the automatic
ones: ``drop`` (a feature, e.g. one that leaks the target; the profile's reason goes into
``dropped_columns``), ``drop_duplicate_rows``, ``split_by_time`` (a chronological split
and contiguous folds, for time-series forecasting) and ``encode_target`` (label sets of a
multilabel target become one class each). The rest is advice and is left alone.

How each column is imputed and encoded is chosen from the train split (see
:mod:`mlmesh_prep.features`); generated features are kept only where cross-validation
shows they help (see :mod:`mlmesh_prep.engineering`).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.preprocessing import LabelEncoder

from mlmesh_prep.engineering import FE_TIME_BUDGET_S, engineer_features
from mlmesh_prep.features import (
    MAX_ONE_HOT_CATEGORIES,
    ColumnChoice,
    FeaturePlan,
    plan_columns,
)
from mlmesh_prep.splitting import STRATEGIES, NotEnoughRowsError, SplitError, split_rows

PROBLEM_TYPES = ("binary", "multiclass", "regression")
FILES = ("train.parquet", "valid.parquet", "test.parquet", "folds.parquet",
         "preprocessor.joblib", "preprocessor_trees.joblib", "prep.json")  # fmt: skip
#: Why columns of each kind are left out of the features.
DROP_REASONS = {
    "id": "identifier: a distinct value per row carries no signal",
    "constant": "constant: at most one distinct value",
}
NUMERIC_KINDS = frozenset({"numeric"})
CATEGORICAL_KINDS = frozenset({"categorical", "boolean"})
OTHER_FEATURE_KINDS = frozenset({"datetime", "text"})
#: Profile recommendations prep carries out; other actions are advice for people.
APPLIED_ACTIONS = frozenset({"drop", "drop_duplicate_rows", "split_by_time", "encode_target"})

__all__ = ["MAX_ONE_HOT_CATEGORIES", "NotEnoughRowsError"]


class PrepError(ValueError):
    """Base of preparation errors that retrying cannot fix."""


class InvalidProfileError(PrepError):
    """The profile dict lacks fields or has values prep does not understand."""


class ProfileMismatchError(PrepError):
    """The profile describes a different table than the one given."""


class InvalidSplitError(PrepError, SplitError):
    """The split sizes, fold count, strategy or its group/time column are unusable."""


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
    split_strategy: str = "",
    group_column: str = "",
    time_column: str = "",
    feature_engineering: bool = True,
    fe_time_budget_s: float = FE_TIME_BUDGET_S,
    outliers: str = "auto",
) -> dict[str, Any]:
    """Write the PREPARED folder for ``df`` into ``out_dir`` and return prep.json's dict.

    Rows without a target are dropped; id and constant columns are left out with a
    reason, and so are the features the profile recommends dropping. ``split_strategy``
    is ``stratified`` (the classification default; random, with a warning, when a class
    is too small), ``random``, ``group`` (``group_column``'s values never cross a split or
    a fold; the column is not a feature) or ``time`` (chronological on ``time_column``, or
    the profile's recommended time column when empty); empty or ``auto`` picks the
    profile's time split when it recommends one, else the default. ``n_folds`` fold
    numbers go to the train rows. Imputation, encodings and outlier treatment
    (``outliers``: auto, clip or none) are chosen per column on the train split; with
    ``feature_engineering`` generated features are tried within ``fe_time_budget_s``
    seconds and kept where cross-validation shows a gain. Same inputs and seed give the
    same files.
    """
    started = time.monotonic()
    timings: dict[str, float] = {}
    _check_sizes(test_size, valid_size, n_folds)
    strategy = _check_strategy(split_strategy, group_column, time_column)
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

    group = group_column if strategy == "group" else ""
    if group and group not in data.columns:
        raise InvalidSplitError(
            f"group_column '{group}' is not a column of the table (columns: "
            f"{', '.join(data.columns)}); name the column whose rows must stay together"
        )
    if group == target:
        raise InvalidSplitError(f"group_column '{group}' is the target; name another column")
    feature_kinds, dropped_columns = _select_features(
        data, kinds, target, actions.get("drop", []), applied, notes, group
    )
    data = _clean_features(data, feature_kinds, notes)
    feature_columns = list(feature_kinds)

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

    strategy, time_col = _resolve_strategy(
        strategy, time_column, actions, data, target, problem_type, applied, notes
    )
    try:
        split = split_rows(
            len(data), strategy, labels=strat_labels,
            groups=data[group] if group else None,
            times=data[time_col] if time_col else None, seed=seed, test_size=test_size,
            valid_size=valid_size, n_folds=n_folds, notes=notes,
        )  # fmt: skip
    except NotEnoughRowsError:
        raise
    except SplitError as exc:
        raise InvalidSplitError(str(exc)) from exc
    train = data.iloc[split.train].reset_index(drop=True)
    valid = data.iloc[split.valid].reset_index(drop=True)
    test = data.iloc[split.test].reset_index(drop=True)
    timings["split"] = time.monotonic() - started

    mark = time.monotonic()
    choices = plan_columns(train[feature_columns], train[target], feature_kinds, problem_type,
                           outliers=outliers)  # fmt: skip
    plan = FeaturePlan(choices, problem_type, seed)
    timings["plan"] = time.monotonic() - mark

    mark = time.monotonic()
    provenance: list[dict[str, Any]] = []
    if feature_engineering:
        try:
            engineered = engineer_features(
                plan, train[feature_columns], train[target], split.folds,
                problem_type=problem_type, seed=seed, forward=split.fold_order == "time",
                time_budget_s=fe_time_budget_s,
            )  # fmt: skip
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:
            # Feature engineering is an optional improvement: the plain plan still works.
            notes.append(f"feature engineering failed ({type(exc).__name__}: {exc}); skipped")
            fe_summary = {"enabled": False, "skipped": f"failed: {type(exc).__name__}: {exc}",
                          "steps": []}  # fmt: skip
        else:
            plan, provenance = engineered.plan, engineered.provenance
            fe_summary = engineered.summary
    else:
        fe_summary = {"enabled": False, "skipped": "feature engineering turned off", "steps": []}
    fe_summary["generated_kept"] = len(plan.generated)
    timings["feature_engineering"] = time.monotonic() - mark
    for name in plan.excluded:
        if name not in plan.raw_columns():
            dropped_columns[name] = "feature selection: " + _selection_reason(fe_summary)
    feature_columns = plan.raw_columns()

    mark = time.monotonic()
    dense = plan.dense()
    trees, tree_categorical = plan.trees()
    y_fit = _fit_target(train[target], problem_type)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dense.fit(train[feature_columns], y_fit)
        trees.fit(train[feature_columns], y_fit)
    notes.extend(f"preprocessor: {w.message}" for w in caught
                 if not issubclass(w.category, DeprecationWarning))  # fmt: skip
    n_transformed = int(dense.transform(valid[feature_columns]).shape[1])
    n_tree = int(trees.transform(valid[feature_columns]).shape[1])
    timings["fit"] = time.monotonic() - mark

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(feature_columns) | {target} | ({group} if group else set())
    keep = [c for c in data.columns if c in wanted]
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        part[keep].to_parquet(out_dir / f"{name}.parquet", engine="pyarrow", index=False)
    pd.DataFrame({"fold": split.folds}).to_parquet(out_dir / "folds.parquet", index=False)
    joblib.dump(dense, out_dir / "preprocessor.joblib")
    joblib.dump(trees, out_dir / "preprocessor_trees.joblib")

    used = {c.name: c for c in plan.columns if c.name in set(feature_columns)}
    numeric_columns = [c for c in feature_columns if used[c].kind == "numeric"]
    categorical_columns = [c for c in feature_columns
                           if used[c].kind in ("categorical", "boolean")]  # fmt: skip
    timings["total"] = time.monotonic() - started
    prep = {
        "target": target,
        "problem_type": problem_type,
        "metric": metric,
        "feature_columns": feature_columns,
        "numeric_columns": numeric_columns,
        "categorical_columns": categorical_columns,
        "datetime_columns": [c for c in feature_columns if used[c].kind == "datetime"],
        "text_columns": [c for c in feature_columns if used[c].kind == "text"],
        "dropped_columns": dropped_columns,
        "n_folds": n_folds,
        "seed": seed,
        "split_sizes": {"train": len(train), "valid": len(valid), "test": len(test)},
        "class_labels": class_labels,
        "rows_in": rows_in,
        "rows_dropped_missing_target": dropped_rows,
        "test_size": test_size,
        "valid_size": valid_size,
        "stratified": split.stratified,
        "fold_strategy": split.fold_strategy,
        "fold_order": split.fold_order,
        "n_transformed_features": n_transformed,
        "n_tree_features": n_tree,
        "tree_categorical_features": tree_categorical,
        "warnings": notes,
        "files": list(FILES),
        "split_strategy": split.strategy,
        "group_column": group or None,
        "time_column": time_col,
        "rows_dropped_duplicates": duplicates_dropped,
        "target_encoding": target_encoding,
        "recommendations_applied": applied,
        "feature_kinds": {c: used[c].kind for c in feature_columns},
        "columns": {c: used[c].to_json() for c in feature_columns},
        "imputation": {c: _imputation_label(used[c]) for c in feature_columns},
        "encoding": {c: {"dense": used[c].encoding, "trees": used[c].tree_encoding}
                     for c in feature_columns},  # fmt: skip
        "outlier_treatment": {
            "mode": outliers,
            "clipped_columns": [c for c in feature_columns if used[c].outliers == "clip"],
            "quantiles": [0.01, 0.99],
            "applies_to": "preprocessor.joblib only (trees are insensitive to outliers)",
        },
        "generated_features": provenance,
        "n_generated_features": len(plan.generated),
        "generated_feature_specs": plan.generated,
        "feature_engineering": fe_summary,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    (out_dir / "prep.json").write_text(json.dumps(prep, indent=2, allow_nan=False) + "\n")
    return prep


def build_preprocessor(numeric_columns: list[str], categorical_columns: list[str]) -> Any:
    """An unfitted dense preprocessor with the simplest choices for the given columns.

    Numbers: median imputation then standard scaling. Categories: cast to strings,
    most-frequent imputation, one-hot encoding that ignores unseen categories.
    """
    columns = [
        ColumnChoice(c, "numeric", 0.0, 0, "median", False, "standard_scale", "number")
        for c in numeric_columns
    ] + [
        ColumnChoice(c, "categorical", 0.0, 0, "most_frequent", False, "one_hot", "code")
        for c in categorical_columns
    ]  # fmt: skip
    return FeaturePlan(columns, "binary").dense()


def _imputation_label(choice: ColumnChoice) -> str:
    label = choice.imputation
    return f"{label} + indicator" if choice.missing_indicator else label


def _selection_reason(summary: dict[str, Any]) -> str:
    for step in summary.get("steps", []):
        if step.get("step") == "selection" and step.get("kept"):
            return f"{step.get('best_method')} subset cross-validated better without it"
    return "not selected"


def _fit_target(y: pd.Series, problem_type: str) -> np.ndarray:
    """The target as models see it: label codes for classes, floats for regression."""
    if problem_type == "regression":
        return y.to_numpy(dtype=np.float64)
    return LabelEncoder().fit_transform(y.astype(str).to_numpy())


def _check_strategy(strategy: str, group_column: str, time_column: str) -> str:
    strategy = (strategy or "").strip().lower()
    strategy = "" if strategy == "auto" else strategy
    if strategy and strategy not in STRATEGIES:
        raise InvalidSplitError(
            f"split_strategy={strategy!r} is not one of auto, {', '.join(STRATEGIES)}"
        )
    if strategy == "group" and not group_column:
        raise InvalidSplitError(
            "split_strategy=group needs group_column: the column whose rows must stay together"
        )
    if time_column and strategy not in ("", "time"):
        raise InvalidSplitError(
            f"time_column is only used with split_strategy=time, not {strategy!r}"
        )
    return strategy


def _resolve_strategy(
    strategy: str,
    time_column: str,
    actions: dict[str, list[dict[str, Any]]],
    data: pd.DataFrame,
    target: str,
    problem_type: str,
    applied: list[dict[str, Any]],
    notes: list[str],
) -> tuple[str, str | None]:
    """The split strategy to use and its time column (None unless the split is by time)."""
    if time_column and not strategy:
        strategy = "time"
    if strategy == "time":
        if time_column:
            if time_column not in data.columns or time_column == target:
                raise InvalidSplitError(
                    f"time_column '{time_column}' is not a feature column of the table "
                    f"(columns: {', '.join(data.columns)}); name the column that orders rows"
                )
            return "time", time_column
        recommended = _time_column(actions, data, target, notes)
        if recommended is None:
            raise InvalidSplitError(
                "split_strategy=time needs time_column (the profile recommends none); name "
                "the column that orders the rows in time"
            )
        applied.append(actions["split_by_time"][0])
        return "time", recommended
    if not strategy:
        recommended = _time_column(actions, data, target, notes)
        if recommended is not None:
            applied.append(actions["split_by_time"][0])
            return "time", recommended
        strategy = "random" if problem_type == "regression" else "stratified"
    if strategy == "stratified" and problem_type == "regression":
        notes.append("split_strategy=stratified needs classes; a regression split is random")
        strategy = "random"
    return strategy, None


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
    group_column: str = "",
) -> tuple[dict[str, str], dict[str, str]]:
    """Feature columns with their feature kind, and the dropped columns with a reason."""
    features: dict[str, str] = {}
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
        if name == group_column:
            dropped[name] = "group column: keeps rows together across splits, not a feature"
        elif kind in DROP_REASONS:
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
                features[name] = "numeric"
            else:  # profiled as numeric but stored otherwise: treat the values as labels
                features[name] = "categorical"
        elif kind in CATEGORICAL_KINDS or kind in OTHER_FEATURE_KINDS:
            features[name] = kind
        else:
            raise InvalidProfileError(f"column '{name}' has unknown kind {kind!r} in the profile")
    if not features:
        raise NoFeaturesError(
            "no feature columns are left after dropping "
            + ", ".join(f"'{k}' ({v})" for k, v in dropped.items())
            + "; add usable numeric, categorical, datetime or text columns to the dataset"
        )
    return features, dropped


def _clean_features(
    data: pd.DataFrame, feature_kinds: dict[str, str], notes: list[str]
) -> pd.DataFrame:
    """Infinite numbers become missing; mixed-type category columns become strings."""
    data = data.copy()
    for name, kind in feature_kinds.items():
        values = data[name]
        if kind == "numeric" and pd.api.types.is_float_dtype(values):
            infinite = np.isinf(values.to_numpy(dtype=np.float64, na_value=np.nan))
            if infinite.any():
                data[name] = values.mask(infinite)
                notes.append(
                    f"column '{name}': {int(infinite.sum())} infinite values set to missing"
                )
        elif kind in CATEGORICAL_KINDS and pd.api.types.is_object_dtype(values):
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


# --- split -----------------------------------------------------------------------------


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
