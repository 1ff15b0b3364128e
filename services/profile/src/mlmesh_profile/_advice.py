"""What the profile concludes: recommendations (which prep reads) and warnings."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlmesh_profile._kinds import PARSE_SAMPLE

#: Actions prep carries out; the others are advice for people and later stages.
AUTOMATIC_ACTIONS = frozenset({"drop", "drop_duplicate_rows", "split_by_time", "encode_target"})
#: A feature missing in at least this share of rows is recommended for dropping.
DROP_MISSING_SHARE = 0.95
#: Categorical features with more categories than this are high-cardinality.
HIGH_CARDINALITY = 50
#: Numbers whose skew is beyond this (and never negative) are worth a log transform.
SKEW_FOR_LOG = 2.0
#: Warnings about single columns, at most; the rest are counted in one line.
MAX_COLUMN_WARNINGS = 30

_UNUSED_KINDS = {
    "id": "identifier: a distinct value in (nearly) every row carries no signal and can "
          "leak the row order",
    "constant": "constant: at most one distinct value",
}  # fmt: skip


def recommendations(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Actions for the columns and rows, each with the check that led to it and a reason.

    ``automatic`` says whether prep applies it: ``drop`` (a column), ``drop_duplicate_rows``,
    ``split_by_time`` and ``encode_target``; ``impute``, ``encode``, ``transform``,
    ``clip``, ``rebalance``, ``extract`` and ``review`` are advice.
    """
    target = profile["target"]
    task = profile["task"]
    out: list[dict[str, Any]] = []
    dropped: set[str] = set()

    def add(action: str, column: str | None, check: str, reason: str, **extra: Any) -> None:
        if action == "drop":
            if column in dropped:
                return
            dropped.add(column)
        out.append({"action": action, "column": column, "check": check, "reason": reason,
                    "automatic": action in AUTOMATIC_ACTIONS, **extra})  # fmt: skip

    features = [c for c in profile["columns"] if c["name"] != target]
    for col in features:
        if col["kind"] in _UNUSED_KINDS:
            add("drop", col["name"], col["kind"], _UNUSED_KINDS[col["kind"]])
    for flag in profile["leakage"]["flags"]:
        add("drop", flag["column"], "leakage", flag["reason"])
    for col in features:
        if col["missing_share"] >= DROP_MISSING_SHARE:
            add("drop", col["name"], "missing",
                f"missing in {col['missing_share']:.1%} of the rows; too little is left to learn "
                "from")  # fmt: skip
    for same in profile["redundant_columns"]:
        add("drop", same["column"], "redundant",
            f"carries the same information as '{same['same_as']}' ({same['measure']} "
            f"{same['value']})")  # fmt: skip

    dup = profile["duplicates"]
    if dup["duplicate_rows"]:
        continuous = [c["name"] for c in features
                      if c["kind"] == "numeric" and c["unique_share"] > 0.5]  # fmt: skip
        if continuous:
            add("drop_duplicate_rows", None, "duplicates",
                f"{dup['duplicate_rows']} rows repeat earlier rows exactly; with continuous "
                f"columns such as '{continuous[0]}' that is almost surely the same record "
                "twice, and copies on both sides of the split would inflate test scores")
        else:
            add("review", None, "duplicates",
                f"{dup['duplicate_rows']} rows repeat earlier rows; every feature is discrete, "
                "so repeats may be genuine observations and are kept")
    if dup["conflicting_rows"]:
        add("review", target, "duplicates",
            f"{dup['conflicting_rows']} rows share their features with rows of another target "
            f"value ({dup['conflicting_groups']} groups): label noise or missing features")

    if task["kind"] == "time_series_forecasting":
        add("split_by_time", task["time_column"], "time_order",
            f"the rows are ordered by '{task['time_column']}'; a chronological split (test = "
            "the latest rows) keeps the future out of training")
    if task["kind"] == "multilabel":
        add("encode_target", target, "multilabel",
            "the target holds label sets; each set becomes one class, its labels sorted and "
            "joined by '|' (label powerset)",
            encoding="label_powerset", separator=task["separator"])

    imbalance = profile["class_imbalance"]
    if imbalance and imbalance["imbalanced"]:
        add("rebalance", target, "class_imbalance",
            f"class '{imbalance['minority_class']}' has {imbalance['minority_to_majority']:.1%} "
            f"of the rows of '{imbalance['majority_class']}'; weight classes by their inverse "
            f"frequency (class_weight='balanced'); the metric is {profile['metric']}",
            method="class_weight")  # fmt: skip

    outlier_z = profile["outliers"]["zscore"]["columns"]
    for col in features:
        name = col["name"]
        if name in dropped:
            continue
        kind = col["kind"]
        if 0 < col["missing_share"] < DROP_MISSING_SHARE and kind in ("numeric", "categorical",
                                                                       "boolean"):
            strategy = "median" if kind == "numeric" else "most_frequent"
            indicator = "" if col["missing_share"] < 0.2 else " and add a missing-value indicator"
            add("impute", name, "missing",
                f"missing in {col['missing_share']:.1%} of the rows; impute the "
                f"{strategy.replace('_', ' ')}{indicator}", strategy=strategy)
        if kind == "categorical" and col["unique"] > HIGH_CARDINALITY:
            add("encode", name, "cardinality",
                f"{col['unique']} categories: one-hot keeps the {HIGH_CARDINALITY} most frequent; "
                "frequency or target encoding would keep the rest", strategy="frequency")
        if kind == "numeric" and col["skew"] is not None and col["skew"] > SKEW_FOR_LOG \
                and col["min"] is not None and col["min"] >= 0:
            add("transform", name, "skew",
                f"skewed to the right (skew {col['skew']:.2f}, never negative); log1p would "
                "even it out for linear models", transform="log1p")
        z = outlier_z.get(name)
        if kind == "numeric" and z and 0 < z["share"] <= 0.01 and (z["max_abs_z"] or 0) > 10:
            add("clip", name, "outliers",
                f"{z['count']} values lie more than 3 standard deviations out (up to "
                f"{z['max_abs_z']:.0f}); clip to the 1st-99th percentiles for linear models",
                low=col["q01"], high=col["q99"])  # fmt: skip
        if kind == "datetime" and name != task.get("time_column"):
            add("extract", name, "datetime",
                "a date/time: its parts (year, month, weekday, hour) would be usable features; "
                "prep leaves it out for now")
        if kind == "text":
            add("extract", name, "text",
                "free text: prep leaves it out; text features (TF-IDF, embeddings) would use it")
    for group in profile["relations"]["correlated_groups"]:
        kept = [c for c in group["columns"] if c not in dropped]
        if len(kept) > 1:
            add("review", None, "correlation",
                f"features {', '.join(kept)} are highly related (>= {group['min_value']}); "
                "keep one for linear models, trees do not mind", columns=kept)
    return out


def warnings_for(profile: dict[str, Any], df: pd.DataFrame) -> list[str]:
    """The profile's warnings, most important first, one line each."""
    target = profile["target"]
    columns = profile["columns"]
    by_name = {c["name"]: c for c in columns}
    n = profile["n_rows"]
    out: list[str] = []
    if n < 100:
        out.append(f"only {n} rows: scores will be noisy and models may not generalise")
    for flag in profile["leakage"]["flags"]:
        if flag["check"] != "id":  # identifiers have their own warning below
            out.append(f"possible leakage: {flag['reason']}; the column will be dropped")
    dup = profile["duplicates"]
    if dup["duplicate_rows"]:
        out.append(f"{dup['duplicate_rows']} duplicate rows ({dup['duplicate_rows'] / n:.1%} of "
                   "the table)")  # fmt: skip
    if dup["conflicting_rows"]:
        out.append(f"{dup['conflicting_rows']} rows have the same features as rows with another "
                   "target value")  # fmt: skip
    target_missing = by_name[target]["missing"]
    if target_missing:
        out.append(f"target '{target}' is missing in {target_missing} rows; they will be dropped")
    task = profile["task"]
    if task["kind"] == "multilabel":
        out.append(
            f"target '{target}' holds label sets ({len(task['labels'])} labels, "
            f"{task['label_cardinality']} per row): trained as {task['trained_as']} over "
            f"{task['n_label_sets']} label sets"
        )
    if task["kind"] == "time_series_forecasting":
        out.append(f"rows are ordered by '{task['time_column']}': time-series forecasting, "
                   "trained as regression with a chronological split")  # fmt: skip
    elif task.get("time_column"):
        out.append(f"rows are ordered by '{task['time_column']}'; the split is random, so "
                   "scores may be optimistic if the classes drift over time")  # fmt: skip

    column_warnings: list[str] = []
    for col in columns:
        name, kind = col["name"], col["kind"]
        if name == target:
            continue
        if col["missing"] and col["missing"] / n > 0.5:
            column_warnings.append(f"column '{name}' is {col['missing'] / n:.0%} missing")
        if kind in ("id", "constant", "text", "datetime"):
            column_warnings.append(
                f"column '{name}' is {kind}-like and will not be used as a feature"
            )
        if kind == "categorical" and col["unique"] > 50 and col["unique"] > 0.5 * col["count"]:
            column_warnings.append(
                f"column '{name}' has {col['unique']} categories, many of them rare "
                "(high cardinality)"
            )
        if kind == "categorical" and _numbers_as_text(df[name]):
            column_warnings.append(
                f"column '{name}' holds numbers stored as text; it is treated as categorical"
            )
        if col["infinite"]:
            column_warnings.append(
                f"column '{name}' contains infinite values; they are treated as missing"
            )
    out.extend(column_warnings[:MAX_COLUMN_WARNINGS])
    if len(column_warnings) > MAX_COLUMN_WARNINGS:
        out.append(f"... and {len(column_warnings) - MAX_COLUMN_WARNINGS} more column warnings "
                   "(see profile.json's columns)")  # fmt: skip

    balance = profile["class_balance"]
    if balance:
        counts = sorted(balance.values())
        if counts[0] / counts[-1] < 0.1:
            smallest = min(balance, key=lambda k: balance[k])
            out.append(
                f"imbalanced classes: '{smallest}' has {counts[0]} rows against "
                f"{counts[-1]} for the largest class"
            )
        rare = [label for label, c in balance.items() if c < 5]
        if rare:
            shown = ", ".join(rare[:20]) + (f" (+{len(rare) - 20} more)" if len(rare) > 20 else "")
            out.append(f"classes with fewer than 5 rows: {shown}")
    if profile["problem_type"] == "regression" and by_name[target]["infinite"]:
        out.append(f"target '{target}' contains infinite values; those rows will be dropped")
    groups = profile["relations"]["correlated_groups"]
    if groups:
        shown = "; ".join(", ".join(g["columns"]) for g in groups[:3])
        more = f" (+{len(groups) - 3} more)" if len(groups) > 3 else ""
        out.append(f"{len(groups)} group(s) of highly related features: {shown}{more}")
    return out


def _numbers_as_text(s: pd.Series) -> bool:
    sample = s.dropna().head(PARSE_SAMPLE).astype(str)
    if sample.empty:
        return False
    parsed = pd.to_numeric(sample.str.strip(), errors="coerce")
    return bool(parsed.notna().mean() >= 0.95)
