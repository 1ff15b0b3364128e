"""Profile a table: column statistics and kinds, the target, the problem type and metric.

:func:`profile_table` returns the PROFILE dict shared with prep and docs. It is plain
JSON: ints, floats, strings, lists, dicts and ``None`` (never NaN or infinity).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

PROBLEM_TYPES = ("binary", "multiclass", "regression")
DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "f1_macro", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
COLUMN_KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "id", "constant")

#: Column names that usually hold the target, most telling first (compared lower-cased,
#: with spaces and dashes read as underscores).
TARGET_NAMES = (
    "target",
    "label",
    "class",
    "y",
    "outcome",
    "species",
    "response",
    "result",
    "survived",
    "churn",
    "diagnosis",
    "default",
    "is_fraud",
    "fraud",
    "quality",
    "saleprice",
    "price",
)
#: A numeric target with at most this many distinct integer values (and fewer than
#: :data:`MAX_CLASS_FRACTION` of the rows) is read as class labels.
MAX_INTEGER_CLASSES = 20
MAX_CLASS_FRACTION = 0.05
TOP_VALUES = 5
#: Strings longer than this (on average) are free text rather than categories.
TEXT_MIN_MEAN_LENGTH = 50
#: Sample size for checks that parse values (datetime, numbers stored as text).
PARSE_SAMPLE = 500
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key|index|idx)$|^row_?(id|num|number)$|^unnamed_0$")
_ID_CAMEL = re.compile(r"[a-z0-9](Id|ID)$")
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})


class ProfileError(ValueError):
    """Base of profiling errors that retrying cannot fix."""


class EmptyTableError(ProfileError):
    """The table has no rows or no columns."""


class TargetNotFoundError(ProfileError):
    """The requested target column is not in the table."""


class UnusableTargetError(ProfileError):
    """The target column cannot be learned (all missing, one class, a class per row...)."""


class InvalidProblemTypeError(ProfileError):
    """The problem-type hint is unknown or contradicts the target's values."""


class InvalidMetricError(ProfileError):
    """The metric hint is unknown or does not fit the problem type."""


def profile_table(
    df: pd.DataFrame,
    *,
    target_hint: str | None = None,
    problem_type_hint: str | None = None,
    metric_hint: str | None = None,
) -> dict[str, Any]:
    """Profile ``df`` and return the PROFILE dict.

    The target is ``target_hint`` if given, else the first column whose name is a usual
    target name (:data:`TARGET_NAMES`), else the last usable column; the reasons for the
    choice are in ``target_reasons``. ``problem_type_hint`` is ``binary``, ``multiclass``,
    ``regression`` or ``classification`` (binary or multiclass by class count).
    ``metric_hint`` must fit the problem type.
    """
    if df.shape[1] == 0:
        raise EmptyTableError("the table has no columns; give a table with at least two")
    if df.shape[0] == 0:
        raise EmptyTableError(
            f"the table has columns {list(map(str, df.columns))[:10]} but no rows; "
            "check that the dataset was exported completely"
        )
    df = _with_string_names(df)
    columns = [_profile_column(df[name]) for name in df.columns]
    by_name = {col["name"]: col for col in columns}

    target, reasons = _choose_target(df, by_name, target_hint)
    y = df[target]
    problem_type = _problem_type(y, problem_type_hint, target)
    metric = _metric(problem_type, metric_hint)
    class_balance: dict[str, int] = {}
    if problem_type != "regression":
        counts = y.dropna().value_counts()
        class_balance = {str(label): int(count) for label, count in counts.items()}

    warnings = _warnings(df, columns, target, problem_type, class_balance)
    return {
        "n_rows": int(df.shape[0]),
        "n_columns": int(df.shape[1]),
        "target": target,
        "target_reasons": reasons,
        "problem_type": problem_type,
        "metric": metric,
        "class_balance": class_balance,
        "columns": columns,
        "duplicate_rows": _duplicate_rows(df),
        "warnings": warnings,
    }


def allowed_metrics(problem_type: str) -> tuple[str, ...]:
    """The metrics that fit ``problem_type``."""
    if problem_type not in PROBLEM_TYPES:
        raise InvalidProblemTypeError(
            f"unknown problem type {problem_type!r}; use one of {', '.join(PROBLEM_TYPES)}"
        )
    return REGRESSION_METRICS if problem_type == "regression" else CLASSIFICATION_METRICS


# --- columns ---------------------------------------------------------------------------


def _with_string_names(df: pd.DataFrame) -> pd.DataFrame:
    names = [str(c) for c in df.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise EmptyTableError(
            f"column names {dupes} appear more than once; give every column a distinct name"
        )
    if names != list(df.columns):
        df = df.set_axis(names, axis=1)
    return df


def _profile_column(s: pd.Series) -> dict[str, Any]:
    non_null = s.dropna()
    count = int(non_null.size)
    unique = _nunique(non_null)
    col: dict[str, Any] = {
        "name": str(s.name),
        "dtype": str(s.dtype),
        "kind": column_kind(s),
        "count": count,
        "missing": int(s.size - count),
        "unique": unique,
    }
    col.update(_numeric_stats(non_null))
    col["top_values"] = _top_values(non_null)
    return col


def column_kind(s: pd.Series) -> str:
    """Classify a column as one of :data:`COLUMN_KINDS`.

    In order: ``constant`` (at most one distinct value), ``boolean`` (bool dtype, or two
    values that read as true/false, yes/no or 0/1), ``datetime`` (datetime dtype or
    strings that parse as dates), ``id`` (a distinct value in every row, and an id-like
    name, a run of integers or short strings), ``text`` (long free strings), then
    ``numeric`` for numbers and ``categorical`` for the rest.
    """
    non_null = s.dropna()
    n_unique = _nunique(non_null)
    if n_unique <= 1:
        return "constant"
    if _is_boolean(s, non_null, n_unique):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(s) or _strings_are_dates(s, non_null):
        return "datetime"
    numeric = pd.api.types.is_numeric_dtype(s)
    if _is_id(s, non_null, n_unique, numeric):
        return "id"
    if not numeric and _is_text(non_null, n_unique):
        return "text"
    return "numeric" if numeric else "categorical"


def _nunique(non_null: pd.Series) -> int:
    try:
        return int(non_null.nunique())
    except TypeError:  # unhashable cells (lists, dicts)
        return int(non_null.astype(str).nunique())


def _is_string_like(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)


def _is_boolean(s: pd.Series, non_null: pd.Series, n_unique: int) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return True
    if n_unique != 2:
        return False
    if pd.api.types.is_numeric_dtype(s):
        return set(non_null.unique().tolist()) <= {0, 1}
    values = {str(v).strip().lower() for v in non_null.unique()}
    return values <= _BOOL_WORDS and len(values) == 2


def _strings_are_dates(s: pd.Series, non_null: pd.Series) -> bool:
    if not _is_string_like(s) or non_null.empty:
        return False
    sample = non_null.astype(str).head(PARSE_SAMPLE)
    if sample.str.match(_DATE_LIKE).mean() < 0.95:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def _is_id(s: pd.Series, non_null: pd.Series, n_unique: int, numeric: bool) -> bool:
    n = s.size
    if n_unique != n or non_null.size != n or n < 2:
        return False
    name = re.sub(r"[\s\-]+", "_", str(s.name).strip()).lower()
    if _ID_NAME.search(name) or _ID_CAMEL.search(str(s.name).strip()):
        return True
    if numeric:
        if not pd.api.types.is_integer_dtype(s):
            return False
        values = np.sort(non_null.to_numpy(dtype=np.int64))
        return bool(values[-1] - values[0] + 1 == n)  # a run of consecutive integers
    if not _is_string_like(s) or n < 20:
        return False
    lengths = non_null.astype(str).str.len()
    return bool(lengths.mean() < TEXT_MIN_MEAN_LENGTH)


def _is_text(non_null: pd.Series, n_unique: int) -> bool:
    strings = non_null.astype(str)
    if strings.empty:
        return False
    mean_length = strings.str.len().mean()
    words = strings.str.split().str.len().mean()
    unique_ratio = n_unique / strings.size
    return bool(mean_length > TEXT_MIN_MEAN_LENGTH or (words >= 5 and unique_ratio >= 0.5))


def _numeric_stats(non_null: pd.Series) -> dict[str, float | None]:
    keys = ("mean", "std", "min", "q25", "median", "q75", "max")
    if (
        not pd.api.types.is_numeric_dtype(non_null)
        or pd.api.types.is_bool_dtype(non_null)
        or non_null.empty
    ):
        return dict.fromkeys(keys)
    values = non_null.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return dict.fromkeys(keys)
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75])
    std = float(np.std(finite, ddof=1)) if finite.size > 1 else None
    return {
        "mean": _num(finite.mean()),
        "std": _num(std),
        "min": _num(finite.min()),
        "q25": _num(q25),
        "median": _num(median),
        "q75": _num(q75),
        "max": _num(finite.max()),
    }


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _top_values(non_null: pd.Series) -> list[list[Any]]:
    try:
        counts = non_null.value_counts()
    except TypeError:
        counts = non_null.astype(str).value_counts()
    return [[_short(str(v)), int(c)] for v, c in counts.head(TOP_VALUES).items()]


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duplicate_rows(df: pd.DataFrame) -> int:
    try:
        return int(df.duplicated().sum())
    except TypeError:
        return int(df.astype(str).duplicated().sum())


# --- target, problem type, metric ------------------------------------------------------

_UNUSABLE_TARGET_KINDS = {
    "id": "an identifier",
    "constant": "constant",
    "text": "free text",
    "datetime": "a date/time",
}


def _choose_target(
    df: pd.DataFrame, by_name: dict[str, dict[str, Any]], hint: str | None
) -> tuple[str, list[str]]:
    names = list(df.columns)
    if hint is not None:
        if hint in by_name:
            return hint, [f"column '{hint}' was given as the target"]
        folded = [n for n in names if n.strip().lower() == hint.strip().lower()]
        if len(folded) == 1:
            return folded[0], [
                f"column '{folded[0]}' matches the given target '{hint}' ignoring case/spaces"
            ]
        raise TargetNotFoundError(
            f"target column '{hint}' is not in the table; available columns: {', '.join(names)}"
        )

    reasons: list[str] = []
    normalised = {n: re.sub(r"[\s\-]+", "_", n.strip()).lower() for n in names}
    for pattern in TARGET_NAMES:
        for name in names:
            if normalised[name] != pattern:
                continue
            kind = by_name[name]["kind"]
            if kind in _UNUSABLE_TARGET_KINDS:
                reasons.append(
                    f"column '{name}' is named like a target but is "
                    f"{_UNUSABLE_TARGET_KINDS[kind]}, so it was skipped"
                )
                continue
            reasons.append(f"column name '{name}' is a usual target name ('{pattern}')")
            return name, reasons
    for name in reversed(names):
        kind = by_name[name]["kind"]
        if kind in _UNUSABLE_TARGET_KINDS:
            reasons.append(
                f"column '{name}' is {_UNUSABLE_TARGET_KINDS[kind]}, so it cannot be the target"
            )
            continue
        reasons.append(
            f"no column has a usual target name, so the last usable column '{name}' was taken "
            "(the common convention); pass a target to choose another"
        )
        return name, reasons
    raise UnusableTargetError(
        "no column can serve as the target (all are identifiers, constant, text or dates); "
        f"pass a target explicitly. Columns: {', '.join(names)}"
    )


def _problem_type(y: pd.Series, hint: str | None, target: str) -> str:
    labels = y.dropna()
    if labels.empty:
        raise UnusableTargetError(
            f"target column '{target}' is empty (every value is missing); choose another target"
        )
    n_classes = _nunique(labels)
    if n_classes < 2:
        raise UnusableTargetError(
            f"target column '{target}' has a single value ({labels.iloc[0]!r}); there is "
            "nothing to learn, so choose another target or add rows of other classes"
        )
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)

    if hint is not None:
        wanted = hint.strip().lower()
        allowed = (*PROBLEM_TYPES, "classification")
        if wanted not in allowed:
            raise InvalidProblemTypeError(
                f"unknown problem type {hint!r}; use one of {', '.join(allowed)}"
            )
        if wanted == "regression":
            if not numeric:
                raise InvalidProblemTypeError(
                    f"problem type 'regression' needs a numeric target, but '{target}' holds "
                    f"{y.dtype} values; use 'classification' or choose a numeric target"
                )
            return "regression"
        found = "binary" if n_classes == 2 else "multiclass"
        if wanted != "classification" and wanted != found:
            raise InvalidProblemTypeError(
                f"problem type {wanted!r} was asked for, but target '{target}' has "
                f"{n_classes} classes, which makes it {found}; use '{found}' or "
                "'classification'"
            )
        _check_classes(labels, target)
        return found

    if not numeric:
        kind = "binary" if n_classes == 2 else "multiclass"
    elif n_classes == 2:
        kind = "binary"
    elif (
        _integer_valued(labels)
        and n_classes <= MAX_INTEGER_CLASSES
        and n_classes < MAX_CLASS_FRACTION * y.size
    ):
        kind = "multiclass"
    else:
        kind = "regression"
    if kind != "regression":
        _check_classes(labels, target)
    return kind


def _integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values):
        return True
    arr = values.to_numpy(dtype=np.float64)
    return bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))


def _check_classes(labels: pd.Series, target: str) -> None:
    counts = labels.value_counts()
    if counts.max() == 1:
        raise UnusableTargetError(
            f"target column '{target}' has a different value in every row ({counts.size} "
            "classes of one row each), so no class can be learned; choose another target "
            "or ask for regression if it is a number"
        )


def _metric(problem_type: str, hint: str | None) -> str:
    if hint is None:
        return DEFAULT_METRICS[problem_type]
    metric = hint.strip().lower()
    allowed = allowed_metrics(problem_type)
    if metric not in allowed:
        everything = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
        why = "does not fit" if metric in everything else "is not a known metric for"
        raise InvalidMetricError(
            f"metric {hint!r} {why} a {problem_type} problem; use one of {', '.join(allowed)}"
        )
    return metric


# --- warnings --------------------------------------------------------------------------


def _warnings(
    df: pd.DataFrame,
    columns: list[dict[str, Any]],
    target: str,
    problem_type: str,
    class_balance: dict[str, int],
) -> list[str]:
    out: list[str] = []
    n = df.shape[0]
    if n < 100:
        out.append(f"only {n} rows: scores will be noisy and models may not generalise")
    duplicates = _duplicate_rows(df)
    if duplicates:
        out.append(f"{duplicates} duplicate rows ({duplicates / n:.1%} of the table)")
    target_missing = int(df[target].isna().sum())
    if target_missing:
        out.append(f"target '{target}' is missing in {target_missing} rows; they will be dropped")
    for col in columns:
        name, kind = col["name"], col["kind"]
        if name == target:
            continue
        if col["missing"] and col["missing"] / n > 0.5:
            out.append(f"column '{name}' is {col['missing'] / n:.0%} missing")
        if kind in ("id", "constant", "text", "datetime"):
            out.append(f"column '{name}' is {kind}-like and will not be used as a feature")
        if kind == "categorical" and col["unique"] > 50 and col["unique"] > 0.5 * col["count"]:
            out.append(
                f"column '{name}' has {col['unique']} categories, many of them rare "
                "(high cardinality)"
            )
        if kind == "categorical" and _numbers_as_text(df[name]):
            out.append(
                f"column '{name}' holds numbers stored as text; it is treated as categorical"
            )
        if pd.api.types.is_float_dtype(df[name]) and np.isinf(df[name].to_numpy()).any():
            out.append(f"column '{name}' contains infinite values; they are treated as missing")
    if class_balance:
        counts = sorted(class_balance.values())
        if counts[0] / counts[-1] < 0.1:
            smallest = min(class_balance, key=lambda k: class_balance[k])
            out.append(
                f"imbalanced classes: '{smallest}' has {counts[0]} rows against "
                f"{counts[-1]} for the largest class"
            )
        rare = [label for label, c in class_balance.items() if c < 5]
        if rare:
            out.append(f"classes with fewer than 5 rows: {', '.join(rare)}")
    if problem_type == "regression":
        y = df[target].to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(y).any():
            out.append(f"target '{target}' contains infinite values; those rows will be dropped")
    return out


def _numbers_as_text(s: pd.Series) -> bool:
    sample = s.dropna().astype(str).head(PARSE_SAMPLE)
    if sample.empty:
        return False
    parsed = pd.to_numeric(sample.str.strip(), errors="coerce")
    return bool(parsed.notna().mean() >= 0.95)
