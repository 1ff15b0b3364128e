"""Profile a table: columns and kinds, relations, target, task and metric, data quality,
recommendations; and the profile folder (profile.json, PNG plots, HTML report).

:func:`profile_table` returns the PROFILE dict shared with prep and docs. It is plain
JSON: ints, floats, strings, lists, dicts and ``None`` (never NaN or infinity).
:func:`build_profile` also writes the folder the profile service stores.

Large tables are sampled (seeded, row order kept) for the parts whose cost grows with
the rows and whose answer does not need every row: relations, leakage checks, the
isolation forest, plots and string shapes. Row counts, missing counts, column
statistics, top values, duplicates, outlier counts and the class balance are exact.

profile.json (version 2) keeps every version-1 key (``n_rows``, ``n_columns``,
``target``, ``target_reasons``, ``problem_type``, ``metric``, ``class_balance``,
``columns``, ``duplicate_rows``, ``warnings``) and adds:

- ``columns[]``: ``missing_share``, ``unique_share``, ``q01``, ``q05``, ``q95``, ``q99``,
  ``skew``, ``kurtosis`` (excess), ``zeros``, ``negatives``, ``infinite``,
  ``length_min/mean/max`` (strings), ``datetime_min/max`` (ISO 8601).
- ``profile_version``; ``sampling`` (``n_rows``, ``sample_rows``, ``seed``, ``sampled``,
  ``exact``, ``on_sample``); ``kind_counts``.
- ``target_candidates`` (column, score, why); ``task``: ``kind`` (binary, multiclass,
  multilabel, regression, time_series_forecasting), ``trained_as`` (= ``problem_type``,
  the wire value), ``reasons``, and for multilabel ``separator``, ``labels``,
  ``label_counts``, ``label_cardinality``, ``n_label_sets``, for a time order
  ``time_column``, ``time_order``, ``frequency``, ``start``, ``end``...;
  ``metric_reason``; ``class_imbalance``.
- ``relations``: ``pearson`` / ``spearman`` / ``cramers_v`` (columns + matrix),
  ``correlation_ratio`` (categorical x numeric), ``high_pairs``, ``correlated_groups``,
  ``target_associations``, ``sample_rows``, ``columns_considered``, ``columns_left_out``.
- ``duplicates`` (duplicate, feature-duplicate and conflicting rows), ``outliers``
  (``iqr``, ``zscore`` per column, ``isolation_forest``), ``missingness`` (patterns,
  co-missing groups), ``leakage`` (measure, threshold, scores, flags),
  ``redundant_columns``.
- ``recommendations``: ``{action, column, check, reason, automatic, ...}``; prep applies
  the automatic ones (drop, drop_duplicate_rows, split_by_time, encode_target).
- ``artifacts`` (written by :func:`build_profile`): ``profile``, ``report``, ``plots``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from mlmesh_profile._advice import recommendations, warnings_for
from mlmesh_profile._common import (
    CLASSIFICATION_METRICS,
    COLUMN_KINDS,
    DEFAULT_METRICS,
    DEFAULT_SAMPLE_ROWS,
    DEFAULT_SEED,
    PROBLEM_TYPES,
    REGRESSION_METRICS,
    TASK_KINDS,
    EmptyTableError,
    InvalidMetricError,
    InvalidProblemTypeError,
    ProfileError,
    StepCallback,
    TargetNotFoundError,
    UnusableTargetError,
    is_plain_numeric,
)
from mlmesh_profile._kinds import ColumnFacts, column_facts, column_kind, kind_of
from mlmesh_profile._plots import render_plots
from mlmesh_profile._quality import (
    class_imbalance,
    duplicates,
    leakage,
    missingness,
    outliers,
    redundant_columns,
)
from mlmesh_profile._relations import compute_relations
from mlmesh_profile._report import write_report
from mlmesh_profile._sampling import sample_table
from mlmesh_profile._stats import column_stats
from mlmesh_profile._target import (
    allowed_metrics,
    choose_metric,
    choose_target,
    class_labels,
    decide_task,
    find_time_order,
)

__all__ = [
    "CLASSIFICATION_METRICS", "COLUMN_KINDS", "DEFAULT_METRICS", "DEFAULT_SAMPLE_ROWS",
    "PROBLEM_TYPES", "PROFILE_FILE", "PROFILE_VERSION", "REGRESSION_METRICS", "REPORT_FILE",
    "TASK_KINDS", "EmptyTableError", "InvalidMetricError", "InvalidProblemTypeError",
    "ProfileError", "TargetNotFoundError", "UnusableTargetError", "allowed_metrics",
    "build_profile", "column_kind", "profile_table", "with_default_index",
]  # fmt: skip

#: Version of profile.json's layout; 2 added everything after ``warnings``.
PROFILE_VERSION = 2
PROFILE_FILE = "profile.json"
REPORT_FILE = "report.html"
PLOTS_DIR = "plots"
EXACT_PARTS = (
    "row and missing counts", "column statistics", "top values", "duplicates",
    "outlier counts (IQR, z-score)", "missingness patterns", "class balance",
)  # fmt: skip
SAMPLED_PARTS = ("relations", "leakage checks", "isolation forest", "plots",
                 "string lengths")  # fmt: skip


def profile_table(
    df: pd.DataFrame,
    *,
    target_hint: str | None = None,
    problem_type_hint: str | None = None,
    metric_hint: str | None = None,
    max_sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """Profile ``df`` and return the PROFILE dict.

    The target is ``target_hint`` if given, else the first usable column with a usual
    target name, else the usable column that scores best on position and cardinality
    (the reasons are in ``target_reasons``). ``problem_type_hint`` is ``binary``,
    ``multiclass``, ``regression``, ``classification``, ``multilabel`` or
    ``time_series_forecasting``; ``metric_hint`` must fit the problem type. ``on_step``
    is called between steps with the fraction done and the next step's name (it may
    raise to stop the work, e.g. on cancellation).
    """
    profile, _ = _profile(df, target_hint, problem_type_hint, metric_hint, max_sample_rows,
                          seed, on_step or _silent)  # fmt: skip
    return profile


def build_profile(
    df: pd.DataFrame,
    out_dir: Path,
    *,
    target_hint: str | None = None,
    problem_type_hint: str | None = None,
    metric_hint: str | None = None,
    max_sample_rows: int = DEFAULT_SAMPLE_ROWS,
    seed: int = DEFAULT_SEED,
    on_step: StepCallback | None = None,
) -> dict[str, Any]:
    """Profile ``df`` and write ``out_dir``: profile.json, plots/*.png and report.html.

    Returns the profile, whose ``artifacts`` key names the files (relative to
    ``out_dir``). Arguments as for :func:`profile_table`.
    """
    step = on_step or _silent
    profile, sample = _profile(df, target_hint, problem_type_hint, metric_hint,
                               max_sample_rows, seed, step)  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    step(0.8, "drawing plots")
    plots = render_plots(sample, profile, out_dir / PLOTS_DIR)
    profile["artifacts"] = {
        "profile": PROFILE_FILE,
        "report": REPORT_FILE,
        "plots": {name: f"{PLOTS_DIR}/{file}" for name, file in plots.items()},
    }
    step(0.9, "writing the HTML report")
    write_report(profile, {name: out_dir / PLOTS_DIR / file for name, file in plots.items()},
                 out_dir / REPORT_FILE)  # fmt: skip
    (out_dir / PROFILE_FILE).write_text(json.dumps(profile, indent=2, allow_nan=False) + "\n")
    return profile


def _silent(fraction: float, message: str) -> None:
    """The default step callback: report nothing."""


def _profile(
    df: pd.DataFrame,
    target_hint: str | None,
    problem_type_hint: str | None,
    metric_hint: str | None,
    max_sample_rows: int,
    seed: int,
    step: StepCallback,
) -> tuple[dict[str, Any], pd.DataFrame]:
    df = _checked(df)
    n = len(df)
    sample = sample_table(df, max_sample_rows, seed)

    step(0.02, f"describing {df.shape[1]} columns")
    columns, datetime_facts = _describe_columns(df, seed, step)
    by_name = {c["name"]: c for c in columns}
    kinds = {c["name"]: c["kind"] for c in columns}

    step(0.4, "choosing the target and the task")
    target, reasons, candidates = choose_target(list(df.columns), by_name, target_hint)
    time_order = find_time_order(datetime_facts, kinds, target)
    problem_type, task = decide_task(df[target], target, problem_type_hint, time_order)
    class_balance: dict[str, int] = {}
    if problem_type != "regression":
        counts = class_labels(df[target], task).value_counts()
        class_balance = {str(label): int(count) for label, count in counts.items()}
    imbalance = class_imbalance(class_balance)
    metric, metric_reason = choose_metric(problem_type, task, metric_hint,
                                          bool(imbalance and imbalance["imbalanced"]))  # fmt: skip

    step(0.45, "relating columns")
    y_sample = _trained_target(sample[target], task, problem_type)
    relation_frame = sample.assign(**{target: y_sample})
    relations = compute_relations(relation_frame, kinds, target, problem_type == "regression")

    step(0.55, "checking duplicates, outliers and missing values")
    dup = duplicates(df, target)
    numeric_features = [c for c in df.columns if kinds[c] == "numeric" and c != target]
    outlier_report = outliers(df, by_name, numeric_features, sample, seed)
    missing_report = missingness(df, sample, by_name)

    step(0.65, "checking for leakage")
    leak = leakage(df, sample, y_sample, lambda: _trained_target(df[target], task, problem_type),
                   kinds, target, problem_type, seed)  # fmt: skip
    redundant = redundant_columns(df, relations["high_pairs"], target)

    profile: dict[str, Any] = {
        "n_rows": n,
        "n_columns": int(df.shape[1]),
        "target": target,
        "target_reasons": reasons,
        "problem_type": problem_type,
        "metric": metric,
        "class_balance": class_balance,
        "columns": columns,
        "duplicate_rows": dup["duplicate_rows"],
        "warnings": [],
        "profile_version": PROFILE_VERSION,
        "sampling": {
            "n_rows": n,
            "sample_rows": int(len(sample)),
            "seed": seed,
            "sampled": len(sample) < n,
            "exact": list(EXACT_PARTS),
            "on_sample": list(SAMPLED_PARTS),
        },
        "target_candidates": candidates,
        "task": task,
        "metric_reason": metric_reason,
        "class_imbalance": imbalance,
        "kind_counts": dict(Counter(kinds.values()).most_common()),
        "relations": relations,
        "duplicates": dup,
        "outliers": outlier_report,
        "missingness": missing_report,
        "leakage": leak,
        "redundant_columns": redundant,
    }
    step(0.75, "writing recommendations")
    profile["recommendations"] = recommendations(profile)
    profile["warnings"] = warnings_for(profile, df)
    return profile, sample


def _checked(df: pd.DataFrame) -> pd.DataFrame:
    if df.shape[1] == 0:
        raise EmptyTableError("the table has no columns; give a table with at least two")
    if df.shape[0] == 0:
        raise EmptyTableError(
            f"the table has columns {list(map(str, df.columns))[:10]} but no rows; "
            "check that the dataset was exported completely"
        )
    names = [str(c) for c in df.columns]
    counts = Counter(names)
    dupes = sorted(n for n, c in counts.items() if c > 1)
    if dupes:
        raise EmptyTableError(
            f"column names {dupes[:20]} appear more than once; give every column a distinct name"
        )
    if names != list(df.columns):
        df = df.set_axis(names, axis=1)
    return with_default_index(df)


def with_default_index(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a 0..n-1 index; a datetime or named index becomes a column first.

    Prep applies the same rule, so both see the same columns; a datetime index that
    orders the rows then makes the table a time series.
    """
    index = df.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return df
    names = [str(n) if n is not None else "index" for n in index.names]
    keep = isinstance(index, pd.DatetimeIndex) or any(n is not None for n in index.names)
    if keep and not set(names) & {str(c) for c in df.columns}:
        df = df.reset_index()
        return df.set_axis([str(c) for c in df.columns], axis=1)
    return df.reset_index(drop=True)


def _describe_columns(
    df: pd.DataFrame, seed: int, step: StepCallback
) -> tuple[list[dict[str, Any]], dict[str, ColumnFacts]]:
    columns: list[dict[str, Any]] = []
    datetime_facts: dict[str, ColumnFacts] = {}
    total = df.shape[1]
    every = max(1, total // 10)
    for i, name in enumerate(df.columns):
        facts = column_facts(df[name], seed)
        kind = kind_of(facts)
        columns.append(column_stats(facts, kind))
        if kind == "datetime":
            datetime_facts[name] = facts
        if (i + 1) % every == 0 and i + 1 < total:
            step(0.02 + 0.38 * (i + 1) / total, f"described {i + 1} of {total} columns")
    return columns, datetime_facts


def _trained_target(y: pd.Series, task: dict[str, Any], problem_type: str) -> pd.Series:
    """The target as it is trained: numbers for regression, class names otherwise."""
    if problem_type == "regression":
        return y
    classes = class_labels(y, task)
    if task["kind"] == "multilabel" or not is_plain_numeric(y):
        return classes.reindex(y.index).astype(object).astype(str).where(y.notna())
    return y
