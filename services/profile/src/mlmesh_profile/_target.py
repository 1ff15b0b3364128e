"""The target column, the task (problem type) and the metric."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlmesh_profile._common import (
    CLASSIFICATION_METRICS,
    DEFAULT_METRICS,
    PROBLEM_TYPES,
    REGRESSION_METRICS,
    InvalidMetricError,
    InvalidProblemTypeError,
    TargetNotFoundError,
    UnusableTargetError,
    is_listlike_cell,
    is_plain_numeric,
    is_string_like,
)
from mlmesh_profile._kinds import ColumnFacts, normalised_name, parse_dates

#: Column names that usually hold the target, most telling first (compared lower-cased,
#: with spaces and dashes read as underscores).
TARGET_NAMES = (
    "target", "label", "class", "y", "outcome", "species", "response", "result", "survived",
    "churn", "diagnosis", "default", "is_fraud", "fraud", "quality", "saleprice", "price",
)  # fmt: skip
#: A numeric target with at most this many distinct integer values (and fewer than
#: :data:`MAX_CLASS_FRACTION` of the rows) is read as class labels.
MAX_INTEGER_CLASSES = 20
MAX_CLASS_FRACTION = 0.05
#: Label separators tried, in order, when a text target may hold several labels per row.
LABEL_SEPARATORS = ("|", ";", ",")
#: A multilabel target has at most this many distinct labels.
MAX_LABELS = 200
#: A datetime column orders the rows when it is at most this share missing and has at
#: least this many distinct values.
TIME_MAX_MISSING_SHARE = 0.01
TIME_MIN_DISTINCT = 10
#: Classes whose smallest is below this share of the largest are imbalanced.
IMBALANCE_RATIO = 0.1
#: Hints accepted besides :data:`PROBLEM_TYPES`, and what they mean.
PROBLEM_TYPE_ALIASES = {
    "classification": "classification",
    "multilabel": "multilabel",
    "multi_label": "multilabel",
    "time_series_forecasting": "time_series_forecasting",
    "time_series": "time_series_forecasting",
    "timeseries": "time_series_forecasting",
    "forecasting": "time_series_forecasting",
}

_UNUSABLE_TARGET_KINDS = {
    "id": "an identifier",
    "constant": "constant",
    "text": "free text",
    "datetime": "a date/time",
}
#: Reasons listed for skipped columns at most (wide tables would list thousands).
_MAX_SKIP_REASONS = 10


# --- target ----------------------------------------------------------------------------


def choose_target(
    names: list[str], columns: dict[str, dict[str, Any]], hint: str | None
) -> tuple[str, list[str], list[dict[str, Any]]]:
    """The target column, the reasons for it, and the scored candidates.

    The hint wins when given (matched exactly, then ignoring case and spaces). Otherwise a
    usable column with a usual target name (:data:`TARGET_NAMES`, most telling first);
    otherwise the best-scored usable column on position (the last column is the common
    convention, the first column is the other) and cardinality (a handful of classes
    reads like labels, thousands of categories do not).
    """
    if hint is not None:
        if hint in columns:
            return hint, [f"column '{hint}' was given as the target"], []
        folded = [n for n in names if n.strip().lower() == hint.strip().lower()]
        if len(folded) == 1:
            return folded[0], [
                f"column '{folded[0]}' matches the given target '{hint}' ignoring case/spaces"
            ], []
        shown = ", ".join(names[:50]) + (f", ... ({len(names)} in all)" if len(names) > 50 else "")
        raise TargetNotFoundError(
            f"target column '{hint}' is not in the table; available columns: {shown}"
        )

    reasons: list[str] = []
    normalised = {n: normalised_name(n) for n in names}
    for pattern in TARGET_NAMES:
        for name in names:
            if normalised[name] != pattern:
                continue
            kind = columns[name]["kind"]
            if kind in _UNUSABLE_TARGET_KINDS:
                reasons.append(
                    f"column '{name}' is named like a target but is "
                    f"{_UNUSABLE_TARGET_KINDS[kind]}, so it was skipped"
                )
                continue
            reasons.append(f"column name '{name}' is a usual target name ('{pattern}')")
            return name, reasons, [{"column": name, "score": None, "why": reasons[-1:]}]

    usable = [n for n in names if columns[n]["kind"] not in _UNUSABLE_TARGET_KINDS]
    skipped = [n for n in reversed(names) if columns[n]["kind"] in _UNUSABLE_TARGET_KINDS]
    for name in skipped[:_MAX_SKIP_REASONS]:
        reasons.append(
            f"column '{name}' is {_UNUSABLE_TARGET_KINDS[columns[name]['kind']]}, "
            "so it cannot be the target"
        )
    if len(skipped) > _MAX_SKIP_REASONS:
        reasons.append(f"... and {len(skipped) - _MAX_SKIP_REASONS} more such columns")
    if not usable:
        raise UnusableTargetError(
            "no column can serve as the target (all are identifiers, constant, text or dates); "
            f"pass a target explicitly. Columns: {', '.join(names[:50])}"
        )
    candidates = sorted(
        (_score_candidate(name, columns[name], name == usable[-1], name == names[0])
         for name in usable),
        key=lambda c: -c["score"],
    )  # fmt: skip
    best = candidates[0]
    if best["score"] <= 0:
        raise TargetNotFoundError(
            "no column looks like a target: none has a usual target name, and every usable "
            "column has too many distinct values or too many missing values to be labels "
            f"({'; '.join(best['why'])} for the best, '{best['column']}'); pass the target "
            "column explicitly (unsupervised work is not supported)"
        )
    name = best["column"]
    if name == usable[-1]:
        reasons.append(
            f"no column has a usual target name, so the last usable column '{name}' was taken "
            "(the common convention); pass a target to choose another"
        )
    else:
        reasons.append(
            f"no column has a usual target name; '{name}' scored highest on position and "
            f"cardinality ({'; '.join(best['why'])}); pass a target to choose another"
        )
    return name, reasons, candidates[:5]


def _score_candidate(
    name: str, col: dict[str, Any], is_last: bool, is_first: bool
) -> dict[str, Any]:
    score, why = 0.0, []
    if is_last:
        score += 3
        why.append("it is the last usable column")
    elif is_first:
        score += 1
        why.append("it is the first column")
    unique, count, kind = col["unique"], max(col["count"], 1), col["kind"]
    if kind == "boolean" or (kind == "categorical" and unique <= MAX_INTEGER_CLASSES):
        score += 1
        why.append(f"{unique} distinct values, like class labels")
    elif kind == "numeric":
        score += 0.5
        why.append("numbers, like a regression target")
    elif kind == "categorical" and (unique > 1000 or (unique > 50 and unique > 0.5 * count)):
        score -= 4
        why.append(f"{unique} distinct categories, too many to be classes")
    if col["missing_share"] > 0.5:
        score -= 2
        why.append(f"{col['missing_share']:.0%} missing")
    return {"column": name, "score": score, "why": why}


# --- task ------------------------------------------------------------------------------


def find_time_order(
    facts: dict[str, ColumnFacts], kinds: dict[str, str], target: str
) -> dict[str, Any] | None:
    """The first datetime column whose values order the rows, or None.

    A column qualifies when it is at most 1% missing, has at least 10 distinct values and
    never goes back in time (or never forward: newest first) down the rows. Datetime
    columns are checked over the whole column, dates stored as text over their sample
    (which keeps row order).
    """
    for name, kind in kinds.items():
        if kind != "datetime" or name == target:
            continue
        f = facts[name]
        if f.missing > TIME_MAX_MISSING_SHARE * f.n or f.unique < TIME_MIN_DISTINCT:
            continue
        if pd.api.types.is_datetime64_any_dtype(f.series):
            values, exact = f.non_null, True
        else:
            values = f.parsed_dates if f.parsed_dates is not None else parse_dates(f.shape_sample)
            values, exact = values.dropna(), False
        if values.is_monotonic_increasing:
            order = "ascending"
        elif values.is_monotonic_decreasing:
            order = "descending"
        else:
            continue
        distinct = pd.Series(values.unique()).sort_values()
        return {
            "time_column": name,
            "time_order": order,
            "time_order_checked_on": "all rows" if exact else f"a sample of {values.size} rows",
            "distinct_timestamps": f.unique,
            "rows_per_timestamp": round(f.count / max(f.unique, 1), 3),
            "start": distinct.iloc[0].isoformat(),
            "end": distinct.iloc[-1].isoformat(),
            "frequency": _frequency(distinct),
        }
    return None


def _frequency(distinct: pd.Series) -> str | None:
    head = pd.DatetimeIndex(distinct.head(1000))
    if head.size >= 3:
        try:
            freq = pd.infer_freq(head)
        except (TypeError, ValueError):
            freq = None
        if freq:
            return freq
        steps = np.diff(head.asi8)
        return f"irregular, median step {pd.Timedelta(int(np.median(steps)), unit='ns')}"
    return None


def decide_task(
    y: pd.Series,
    target: str,
    hint: str | None,
    time_order: dict[str, Any] | None,
) -> tuple[str, dict[str, Any]]:
    """The trainable problem type (binary, multiclass, regression) and the task details.

    ``task.kind`` is what the data is: binary, multiclass, multilabel (several labels per
    row, as lists or joined by ``|``, ``;`` or ``,``), regression, or
    time_series_forecasting (a numeric target on rows that a datetime column orders).
    Multilabel is trained as classes over label sets (label powerset): multiclass, or
    binary with two label sets. Forecasting is trained as regression.
    """
    labels = y.dropna()
    if labels.empty:
        raise UnusableTargetError(
            f"target column '{target}' is empty (every value is missing); choose another target"
        )
    wanted = _read_hint(hint)
    numeric = is_plain_numeric(y)
    label_sets = None
    if not numeric and wanted in (None, "multilabel"):
        label_sets = multilabel_sets(labels)
        if wanted == "multilabel" and label_sets is None:
            raise InvalidProblemTypeError(
                f"problem type 'multilabel' was asked for, but target '{target}' holds one "
                f"label per row (no lists and no labels joined by "
                f"{' '.join(repr(s) for s in LABEL_SEPARATORS)}); use 'classification'"
            )
    if wanted == "multilabel" and numeric:
        raise InvalidProblemTypeError(
            f"problem type 'multilabel' needs label sets, but '{target}' holds numbers"
        )
    if label_sets is not None:
        return _multilabel_task(label_sets, target)

    n_classes = _nunique(labels)
    if n_classes < 2:
        raise UnusableTargetError(
            f"target column '{target}' has a single value ({labels.iloc[0]!r}); there is "
            "nothing to learn, so choose another target or add rows of other classes"
        )
    found = "binary" if n_classes == 2 else "multiclass"
    if wanted in ("regression", "time_series_forecasting"):
        if not numeric:
            raise InvalidProblemTypeError(
                f"problem type {wanted!r} needs a numeric target, but '{target}' holds "
                f"{y.dtype} values; use 'classification' or choose a numeric target"
            )
        if wanted == "time_series_forecasting" and time_order is None:
            raise InvalidProblemTypeError(
                "problem type 'time_series_forecasting' needs a datetime column that orders "
                "the rows, and none does; sort the table by its time column or ask for "
                "'regression'"
            )
        return "regression", _regression_task(time_order, "asked for")
    if wanted is not None:
        if wanted not in ("classification", found):
            raise InvalidProblemTypeError(
                f"problem type {wanted!r} was asked for, but target '{target}' has "
                f"{n_classes} classes, which makes it {found}; use '{found}' or "
                "'classification'"
            )
        _check_classes(labels, target)
        return found, _classification_task(found, time_order, f"{n_classes} classes, asked for")

    if not numeric or n_classes == 2:
        kind = found
        why = f"{n_classes} distinct {'values' if numeric else 'labels'}"
    elif (
        _integer_valued(labels)
        and n_classes <= MAX_INTEGER_CLASSES
        and n_classes < MAX_CLASS_FRACTION * y.size
    ):
        kind = "multiclass"
        why = (f"{n_classes} distinct whole numbers (at most {MAX_INTEGER_CLASSES} and under "
               f"{MAX_CLASS_FRACTION:.0%} of the rows), read as class labels")  # fmt: skip
    else:
        return "regression", _regression_task(time_order, f"numbers with {n_classes} values")
    _check_classes(labels, target)
    return kind, _classification_task(kind, time_order, why)


def _read_hint(hint: str | None) -> str | None:
    if hint is None:
        return None
    wanted = hint.strip().lower().replace("-", "_").replace(" ", "_")
    if wanted in PROBLEM_TYPES:
        return wanted
    if wanted in PROBLEM_TYPE_ALIASES:
        return PROBLEM_TYPE_ALIASES[wanted]
    allowed = (*PROBLEM_TYPES, "classification", "multilabel", "time_series_forecasting")
    raise InvalidProblemTypeError(f"unknown problem type {hint!r}; use one of {', '.join(allowed)}")


def _regression_task(time_order: dict[str, Any] | None, why: str) -> dict[str, Any]:
    if time_order is None:
        return {"kind": "regression", "trained_as": "regression", "reasons": [why]}
    reason = (f"a numeric target on rows ordered by '{time_order['time_column']}' "
              f"({time_order['time_order']}): forecasting, trained as regression on the "
              "wire with a chronological split")  # fmt: skip
    return {"kind": "time_series_forecasting", "trained_as": "regression",
            "reasons": [why, reason], **time_order}  # fmt: skip


def _classification_task(
    kind: str, time_order: dict[str, Any] | None, why: str
) -> dict[str, Any]:
    task: dict[str, Any] = {"kind": kind, "trained_as": kind, "reasons": [why]}
    if time_order is not None:
        task["reasons"].append(
            f"the rows are ordered by '{time_order['time_column']}'; the split stays random and "
            "stratified, so scores may be optimistic if the classes drift over time"
        )
        task.update(time_order)
    return task


def multilabel_sets(labels: pd.Series) -> dict[str, Any] | None:
    """The label sets of a target that holds several labels per row, or None.

    Cells that are lists hold label sets. Text holds them when one separator
    (:data:`LABEL_SEPARATORS`) joins labels in at least 10% of the rows, the labels are
    short and few (at most :data:`MAX_LABELS`, and fewer than the distinct cell values),
    and each label is used in at least five rows on average.
    """
    head = labels.head(1000)
    if head.map(is_listlike_cell).any():
        if not labels.map(is_listlike_cell).all():
            return None
        sets = labels.map(lambda cell: tuple(sorted({str(v).strip() for v in cell} - {""})))
        return _label_summary(sets, separator=None)
    if not is_string_like(labels):
        return None
    counts = labels.astype(str).value_counts()
    if counts.size < 3:
        return None
    distinct = pd.Series(counts.index, dtype=object)
    weights = counts.to_numpy()
    for sep in LABEL_SEPARATORS:
        joined = distinct.str.contains(sep, regex=False).to_numpy()
        if weights[joined].sum() < 0.1 * weights.sum():
            continue
        tokens = distinct.str.split(sep, regex=False).map(
            lambda parts: tuple(sorted({p.strip() for p in parts if p.strip()}))
        )
        vocabulary: dict[str, int] = {}
        for token_set, weight in zip(tokens, weights, strict=True):
            for token in token_set:
                vocabulary[token] = vocabulary.get(token, 0) + int(weight)
        if not 2 <= len(vocabulary) <= MAX_LABELS or len(vocabulary) >= counts.size:
            continue
        if np.mean([len(t) for t in vocabulary]) > 30 or tokens.map(len).max() > 20:
            continue
        if np.mean(list(vocabulary.values())) < 5:
            continue
        canonical = dict(zip(counts.index, tokens, strict=True))
        sets = labels.astype(str).map(canonical)
        return _label_summary(sets, separator=sep)
    return None


def canonical_label_set(labels: tuple[str, ...]) -> str | None:
    """The class name of a label set: its labels sorted and joined by ``|`` (None when
    the set is empty, which counts as a missing target)."""
    return "|".join(labels) if labels else None


def _label_summary(sets: pd.Series, separator: str | None) -> dict[str, Any]:
    label_counts: dict[str, int] = {}
    for label_set, n in sets.value_counts().items():
        for label in label_set:
            label_counts[label] = label_counts.get(label, 0) + int(n)
    ordered = dict(sorted(label_counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return {
        "separator": separator,
        "classes": sets.map(canonical_label_set),
        "labels": list(ordered),
        "label_counts": ordered,
        "label_cardinality": round(float(sets.map(len).mean()), 4),
    }


def _multilabel_task(label_sets: dict[str, Any], target: str) -> tuple[str, dict[str, Any]]:
    classes: pd.Series = label_sets["classes"]
    n_sets = int(classes.nunique())
    if n_sets < 2:
        raise UnusableTargetError(
            f"target column '{target}' holds the same label set ({classes.iloc[0]!r}) in "
            "every row; there is nothing to learn"
        )
    _check_classes(classes, target)
    trained_as = "binary" if n_sets == 2 else "multiclass"
    where = ("lists" if label_sets["separator"] is None
             else f"labels joined by '{label_sets['separator']}'")  # fmt: skip
    task = {
        "kind": "multilabel",
        "trained_as": trained_as,
        "reasons": [
            f"the target holds {where}: {len(label_sets['labels'])} labels, "
            f"{label_sets['label_cardinality']} per row on average",
            f"trained as {trained_as} over the {n_sets} distinct label sets (label powerset), "
            "each set's labels sorted and joined by '|'",
        ],
        "separator": label_sets["separator"],
        "labels": label_sets["labels"][:MAX_LABELS],
        "label_counts": label_sets["label_counts"],
        "label_cardinality": label_sets["label_cardinality"],
        "n_label_sets": n_sets,
    }
    return trained_as, task


def class_labels(y: pd.Series, task: dict[str, Any]) -> pd.Series:
    """The non-missing target values as the classes that are trained (label sets joined)."""
    labels = y.dropna()
    if task["kind"] != "multilabel":
        return labels
    sep = task["separator"]
    if sep is None:
        classes = labels.map(lambda cell: canonical_label_set(
            tuple(sorted({str(v).strip() for v in cell} - {""}))))
    else:
        classes = labels.astype(str).map(lambda text: canonical_label_set(
            tuple(sorted({p.strip() for p in text.split(sep) if p.strip()}))))
    return classes.dropna()


def _nunique(values: pd.Series) -> int:
    try:
        return int(values.nunique())
    except TypeError:
        return int(values.astype(str).nunique())


def _integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values):
        return True
    arr = values.to_numpy(dtype=np.float64)
    return bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))


def _check_classes(labels: pd.Series, target: str) -> None:
    try:
        counts = labels.value_counts()
    except TypeError:
        counts = labels.astype(str).value_counts()
    if counts.max() == 1:
        raise UnusableTargetError(
            f"target column '{target}' has a different value in every row ({counts.size} "
            "classes of one row each), so no class can be learned; choose another target "
            "or ask for regression if it is a number"
        )


# --- metric ----------------------------------------------------------------------------


def allowed_metrics(problem_type: str) -> tuple[str, ...]:
    """The metrics that fit ``problem_type``."""
    if problem_type not in PROBLEM_TYPES:
        raise InvalidProblemTypeError(
            f"unknown problem type {problem_type!r}; use one of {', '.join(PROBLEM_TYPES)}"
        )
    return REGRESSION_METRICS if problem_type == "regression" else CLASSIFICATION_METRICS


def choose_metric(
    problem_type: str, task: dict[str, Any], hint: str | None, imbalanced: bool
) -> tuple[str, str]:
    """The metric and why: the hint if it fits, else the default for the task."""
    if hint is not None:
        metric = hint.strip().lower()
        allowed = allowed_metrics(problem_type)
        if metric not in allowed:
            everything = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
            why = "does not fit" if metric in everything else "is not a known metric for"
            raise InvalidMetricError(
                f"metric {hint!r} {why} a {problem_type} problem; use one of {', '.join(allowed)}"
            )
        return metric, "given in the experiment"
    kind = task["kind"]
    if kind == "multilabel":
        return "accuracy", ("multilabel trained over label sets: accuracy is the exact-match "
                            "ratio, the share of rows whose whole label set is right")  # fmt: skip
    if kind == "time_series_forecasting":
        return "mae", ("forecasting: the mean absolute error reads in the target's units and "
                       "is not dominated by the occasional spike")  # fmt: skip
    if problem_type == "multiclass" and imbalanced:
        return "balanced_accuracy", ("imbalanced classes: balanced accuracy weighs every "
                                     "class equally, so the majority class cannot hide "
                                     "the rest")  # fmt: skip
    reasons = {
        "binary": "binary: ROC AUC does not depend on a threshold or on the class balance",
        "multiclass": "multiclass with reasonably balanced classes: accuracy",
        "regression": "regression: root mean squared error, in the target's units",
    }
    return DEFAULT_METRICS[problem_type], reasons[problem_type]
