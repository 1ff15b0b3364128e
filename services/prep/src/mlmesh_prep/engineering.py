"""Feature engineering kept only where cross-validation shows it helps.

A small LightGBM model (the judge) is cross-validated on the train split with the shared
folds (forward chaining for time-ordered folds) through the tree preprocessor that a plan
builds, so what is judged is exactly what is shipped. Steps, each kept only when the mean
paired gain over the folds beats both :data:`MIN_GAIN` and its standard error:

1. interaction (products) and polynomial (squares) terms of the most important numbers,
   filtered by the judge's gain importance;
2. group aggregations: mean / std of important numbers per category, category frequency;
3. Featuretools deep feature synthesis (single-table transform primitives), filtered by
   importance and computed at serving time by
   :class:`~mlmesh_common.preprocessing.FeatureGenerator`;
4. PCA components of the standardised numbers;
5. feature selection: subsets by mutual information, L1, tree importance and recursive
   feature elimination; the best subset is kept only if it beats using every column by
   two standard errors (several subsets compete, and they were chosen on all train rows).

Scores are ``neg_log_loss`` (classification) or ``r2`` (regression): higher is better.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.feature_selection import RFE, mutual_info_classif, mutual_info_regression
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn.metrics import log_loss, r2_score
from sklearn.preprocessing import LabelEncoder

from mlmesh_common.preprocessing import FeatureGenerator
from mlmesh_prep.features import ColumnChoice, FeaturePlan

#: Train rows used for feature engineering at most (a seeded sample above that).
FE_MAX_ROWS = 20_000
#: Feature columns above which feature engineering is skipped.
FE_MAX_COLUMNS = 200
#: Train rows below which cross-validation cannot tell a gain from noise.
FE_MIN_ROWS = 60
FE_TIME_BUDGET_S = 30.0
MIN_GAIN = 0.001
TOP_NUMERIC = 5
TOP_GROUP_NUMERIC = 3
TOP_GROUP_CATEGORIES = 3
GROUP_MAX_CATEGORIES = 50
MAX_KEPT_PER_STEP = 8
DFS_PRIMITIVES = {
    "AddNumeric": "add", "SubtractNumeric": "sub", "MultiplyNumeric": "mul",
    "DivideNumeric": "div", "NaturalLogarithm": "log", "SquareRoot": "sqrt",
    "Absolute": "abs",
}  # fmt: skip
PCA_MAX_COMPONENTS = 5
SELECTION_MIN_COLUMNS = 6
#: Several subsets compete and the best is kept, so its gain must beat 2 standard errors.
SELECTION_SE_FACTOR = 2.0
STEPS = ("interaction", "group_aggregation", "dfs", "pca", "selection")
JUDGE = "lightgbm (60 trees, 15 leaves, learning rate 0.15, 63 bins)"


@dataclass
class Engineered:
    """The plan after feature engineering, each generated feature's provenance, a summary."""

    plan: FeaturePlan
    provenance: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _judge(problem_type: str, seed: int) -> Any:
    import lightgbm as lgb

    params = dict(n_estimators=60, learning_rate=0.15, num_leaves=15, min_child_samples=10,
                  max_bin=63, n_jobs=1, random_state=seed, verbose=-1)  # fmt: skip
    if problem_type == "regression":
        return lgb.LGBMRegressor(**params)
    return lgb.LGBMClassifier(**params)


class _Evaluator:
    """Cross-validates plans with the judge on (a sample of) the train split."""

    def __init__(
        self, X: pd.DataFrame, y: pd.Series, folds: np.ndarray, problem_type: str, seed: int,
        forward: bool,
    ) -> None:  # fmt: skip
        self.X = X.reset_index(drop=True)
        self.problem_type = problem_type
        self.seed = seed
        if problem_type == "regression":
            self.y = y.to_numpy(dtype=np.float64)
            self.n_classes = 0
        else:
            self.y = LabelEncoder().fit_transform(y.astype(str).to_numpy())
            self.n_classes = int(self.y.max()) + 1
        self.splits = []
        ids = np.unique(folds)
        for k in ids:
            train = (folds < k) if forward else (folds != k)
            if forward and not train.any():
                continue
            self.splits.append((np.flatnonzero(train), np.flatnonzero(folds == k)))
        self.evaluations = 0

    def _fit(self, plan: FeaturePlan, rows: np.ndarray) -> tuple[Any, Any, list[int]]:
        pre, cats = plan.trees()
        X = self.X.iloc[rows][plan.raw_columns()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Xt = pre.fit_transform(X, self.y[rows])
            model = _judge(self.problem_type, self.seed)
            model.fit(Xt, self.y[rows], categorical_feature=cats or "auto")
        return pre, model, cats

    def scores(self, plan: FeaturePlan) -> np.ndarray:
        """The judge's score on each fold."""
        self.evaluations += 1
        out = []
        for train, valid in self.splits:
            pre, model, _ = self._fit(plan, train)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Xv = pre.transform(self.X.iloc[valid][plan.raw_columns()])
                if self.problem_type == "regression":
                    out.append(r2_score(self.y[valid], model.predict(Xv)))
                    continue
                proba = np.full((len(valid), self.n_classes), 1e-6)
                proba[:, model.classes_] = model.predict_proba(Xv)
            proba /= proba.sum(axis=1, keepdims=True)
            out.append(-log_loss(self.y[valid], proba, labels=list(range(self.n_classes))))
        return np.asarray(out, dtype=np.float64)

    def importances(self, plan: FeaturePlan) -> dict[str, float]:
        """Gain importance per preprocessor output column, keyed by its name sans prefix."""
        pre, model, _ = self._fit(plan, np.arange(len(self.X)))
        names = [str(n).split("__", 1)[-1] for n in pre.get_feature_names_out()]
        gains = model.booster_.feature_importance(importance_type="gain")
        out: dict[str, float] = {}
        for name, gain in zip(names, gains, strict=True):
            out[name] = out.get(name, 0.0) + float(gain)
        return out


def _gain(new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    diff = new - old
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return float(diff.mean()), se


def engineer_features(
    plan: FeaturePlan,
    X: pd.DataFrame,
    y: pd.Series,
    folds: np.ndarray,
    *,
    problem_type: str,
    seed: int = 0,
    forward: bool = False,
    time_budget_s: float = FE_TIME_BUDGET_S,
    max_rows: int = FE_MAX_ROWS,
    steps: tuple[str, ...] = STEPS,
) -> Engineered:
    """Try each step of :data:`STEPS` on the train split ``(X, y)`` with ``folds``; keep
    the ones cross-validation shows help. ``forward`` means folds are in time order."""
    started = time.monotonic()
    summary: dict[str, Any] = {
        "enabled": True, "judge": JUDGE,
        "metric": "r2" if problem_type == "regression" else "neg_log_loss",
        "rows_used": int(len(X)), "time_budget_s": time_budget_s, "steps": [],
        "skipped": None,
    }  # fmt: skip
    n_columns = len(plan.columns)
    if n_columns > FE_MAX_COLUMNS:
        summary.update(
            enabled=False,
            skipped=f"{n_columns} feature columns (> "
            f"{FE_MAX_COLUMNS}): feature engineering skipped to keep prep fast",
        )
        return Engineered(plan, [], summary)
    if len(X) < FE_MIN_ROWS:
        summary.update(enabled=False, skipped=f"{len(X)} train rows (< {FE_MIN_ROWS}): too few "
                       "for cross-validation to tell a gain from noise")  # fmt: skip
        return Engineered(plan, [], summary)
    if len(X) > max_rows:
        n_rows = len(X)
        rows = np.sort(np.random.default_rng(seed).choice(n_rows, max_rows, replace=False))
        X, y, folds = X.iloc[rows], y.iloc[rows], np.asarray(folds)[rows]
        summary["rows_used"] = max_rows
        summary["sampled"] = f"{max_rows} of {n_rows} train rows sampled (seeded) for speed"
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True)
    ev = _Evaluator(X, y, np.asarray(folds), problem_type, seed, forward)
    base = ev.scores(plan)
    summary["cv_before"] = round(float(base.mean()), 6)
    current = base
    provenance: list[dict[str, Any]] = []

    for step in steps:
        entry: dict[str, Any] = {"step": step}
        summary["steps"].append(entry)
        if time.monotonic() - started > time_budget_s:
            entry.update(tried=0, kept=0, outcome="skipped: time budget spent")
            continue
        if step == "selection":
            plan, current = _selection(plan, X, ev, current, entry, seed)
            continue
        candidates = _candidates(step, plan, X, ev)
        entry["tried"] = len(candidates)
        if not candidates:
            entry.update(kept=0, outcome="nothing to try")
            continue
        if step != "pca":
            imp = ev.importances(plan.with_changes(generated=[*plan.generated, *candidates]))
            ranked = sorted(candidates, key=lambda s: -imp.get(s["name"], 0.0))
            candidates = [s for s in ranked if imp.get(s["name"], 0.0) > 0][:MAX_KEPT_PER_STEP]
            for spec in candidates:
                spec["importance"] = round(imp.get(spec["name"], 0.0), 4)
            entry["after_importance_filter"] = len(candidates)
            if not candidates:
                entry.update(kept=0, outcome="rejected: no candidate used by the judge")
                continue
        trial = plan.with_changes(generated=[*plan.generated, *candidates])
        scores = ev.scores(trial)
        gain, se = _gain(scores, current)
        kept = gain > max(MIN_GAIN, se)
        entry.update(cv_before=round(float(current.mean()), 6),
                     cv_after=round(float(scores.mean()), 6), gain=round(gain, 6),
                     gain_se=round(se, 6), kept=len(candidates) if kept else 0,
                     outcome="kept" if kept else "rejected: no cross-validated gain")  # fmt: skip
        if kept:
            plan, current = trial, scores
            for spec in candidates:
                provenance.append({"name": spec["name"], "kind": spec["kind"],
                                   "inputs": list(spec["inputs"]), "op": spec["op"],
                                   "cv_gain": round(gain, 6),
                                   **({"primitive": spec["primitive"]} if "primitive" in spec
                                      else {})})  # fmt: skip
    summary["cv_after"] = round(float(current.mean()), 6)
    summary["evaluations"] = ev.evaluations
    summary["time_s"] = round(time.monotonic() - started, 3)
    plan = plan.with_changes(generated=[_clean(s) for s in plan.generated])
    kept_names = {s["name"] for s in plan.generated}
    provenance = [p for p in provenance if p["name"] in kept_names]
    return Engineered(plan, provenance, summary)


def _clean(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the FeatureGenerator needs it (bookkeeping keys removed)."""
    return {k: v for k, v in spec.items() if k in ("name", "op", "inputs", "component")}


# --- candidates --------------------------------------------------------------------------


def _numeric(plan: FeaturePlan) -> list[ColumnChoice]:
    return [c for c in plan.used if c.kind == "numeric"]


def _top(names: list[str], imp: dict[str, float], k: int) -> list[str]:
    return sorted(names, key=lambda n: -imp.get(n, 0.0))[:k]


def _existing(plan: FeaturePlan) -> set[tuple[str, tuple[str, ...]]]:
    out = set()
    for s in plan.generated:
        inputs = tuple(s["inputs"])
        out.add((s["op"], tuple(sorted(inputs)) if s["op"] in ("mul", "add") else inputs))
    return out


def _candidates(
    step: str, plan: FeaturePlan, X: pd.DataFrame, ev: _Evaluator
) -> list[dict[str, Any]]:
    numeric = [c.name for c in _numeric(plan)]
    if step == "pca":
        if len(numeric) < 3:
            return []
        k = min(PCA_MAX_COMPONENTS, len(numeric) - 1)
        return [{"name": f"pca_{i + 1}", "op": "pca", "inputs": numeric, "component": i,
                 "kind": "pca"} for i in range(k)]  # fmt: skip
    imp = ev.importances(plan)
    seen = _existing(plan)
    names = {s["name"] for s in plan.generated} | set(X.columns)
    out: list[dict[str, Any]] = []

    def add(spec: dict[str, Any]) -> None:
        inputs = tuple(spec["inputs"])
        key = (spec["op"], tuple(sorted(inputs)) if spec["op"] in ("mul", "add") else inputs)
        if key in seen or spec["name"] in names:
            return
        seen.add(key)
        names.add(spec["name"])
        out.append(spec)

    if step == "interaction":
        top = _top(numeric, imp, TOP_NUMERIC)
        for i, a in enumerate(top):
            for b in top[i + 1 :]:
                add({"name": f"{a} * {b}", "op": "mul", "inputs": [a, b], "kind": "interaction"})
            add({"name": f"{a}^2", "op": "square", "inputs": [a], "kind": "polynomial"})
    elif step == "group_aggregation":
        cats = [c.name for c in plan.used if c.kind in ("categorical", "boolean")
                and 2 <= c.n_unique <= GROUP_MAX_CATEGORIES]  # fmt: skip
        for cat in _top(cats, imp, TOP_GROUP_CATEGORIES):
            add({"name": f"frequency({cat})", "op": "group_frequency", "inputs": [cat],
                 "kind": "group_aggregation"})  # fmt: skip
            for num in _top(numeric, imp, TOP_GROUP_NUMERIC):
                for stat in ("mean", "std"):
                    add({"name": f"{stat}({num} by {cat})", "op": f"group_{stat}",
                         "inputs": [cat, num], "kind": "group_aggregation"})  # fmt: skip
    elif step == "dfs":
        for spec in dfs_candidates(X, _top(numeric, imp, TOP_NUMERIC + 1)):
            add(spec)
    return out


def dfs_candidates(X: pd.DataFrame, numeric: list[str]) -> list[dict[str, Any]]:
    """Featuretools deep feature synthesis (depth 1, transform primitives) over ``numeric``
    columns, as FeatureGenerator specs (the primitive named in each)."""
    if not numeric:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import featuretools as ft

        frame = X[numeric].head(200).astype("float64").reset_index(drop=True)
        index = "__row__"
        while index in frame.columns:
            index += "_"
        frame[index] = np.arange(len(frame))
        es = ft.EntitySet("prep")
        es.add_dataframe(dataframe_name="rows", dataframe=frame, index=index)
        primitives = ["add_numeric", "subtract_numeric", "multiply_numeric", "divide_numeric",
                      "natural_logarithm", "square_root", "absolute"]  # fmt: skip
        definitions = ft.dfs(entityset=es, target_dataframe_name="rows",
                             trans_primitives=primitives, max_depth=1,
                             features_only=True)  # fmt: skip
    nonneg = {c for c in numeric if (X[c].dropna() >= 0).all()}
    out = []
    for feature in definitions:
        primitive = type(feature.primitive).__name__
        op = DFS_PRIMITIVES.get(primitive)
        inputs = [b.get_name() for b in feature.base_features]
        if op is None or not all(i in numeric for i in inputs):
            continue
        if op == "abs" and inputs[0] in nonneg:
            continue  # the identity on this column
        out.append({"name": feature.get_name(), "op": op, "inputs": inputs, "kind": "dfs",
                    "primitive": primitive})  # fmt: skip
    return out


# --- selection ---------------------------------------------------------------------------


def _selection_matrix(plan: FeaturePlan, X: pd.DataFrame) -> tuple[list[str], np.ndarray,
                                                                    np.ndarray]:  # fmt: skip
    """One column per selectable feature (numbers, categories as codes, generated)."""
    generated = FeatureGenerator(plan.generated).fit(X[plan.raw_columns()]) if plan.generated \
        else None  # fmt: skip
    frame = generated.transform(X[plan.raw_columns()]) if generated else X
    names, columns, discrete = [], [], []
    for c in plan.used:
        if c.kind == "numeric":
            values = pd.to_numeric(frame[c.name], errors="coerce").astype("float64")
            columns.append(values.fillna(values.median()).fillna(0).to_numpy())
            discrete.append(False)
        elif c.kind in ("categorical", "boolean"):
            columns.append(pd.factorize(frame[c.name].astype("string"))[0].astype(float))
            discrete.append(True)
        else:
            continue
        names.append(c.name)
    for s in plan.generated:
        values = frame[s["name"]].astype("float64")
        columns.append(values.fillna(values.median()).fillna(0).to_numpy())
        names.append(s["name"])
        discrete.append(False)
    return names, np.column_stack(columns), np.asarray(discrete)


def _subsets(
    names: list[str], M: np.ndarray, discrete: np.ndarray, y: np.ndarray, problem_type: str,
    seed: int,
) -> dict[str, list[str]]:  # fmt: skip
    z = (M - M.mean(axis=0)) / np.where(M.std(axis=0) > 0, M.std(axis=0), 1.0)
    subsets: dict[str, list[str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if problem_type == "regression":
            mi = mutual_info_regression(M, y, discrete_features=discrete, random_state=seed)
            l1 = np.abs(Lasso(alpha=0.01 * np.std(y), max_iter=5_000).fit(z, y).coef_)
        else:
            mi = mutual_info_classif(M, y, discrete_features=discrete, random_state=seed)
            l1_model = LogisticRegression(l1_ratio=1.0, solver="saga", C=0.1, max_iter=500)
            l1 = np.abs(np.atleast_2d(l1_model.fit(z, y).coef_)).sum(axis=0)
        judge = _judge(problem_type, seed).fit(M, y)
        tree = judge.booster_.feature_importance(importance_type="gain")
        n_keep = max(1, math.ceil(len(names) / 2))
        rfe = RFE(clone(judge).set_params(n_estimators=30), n_features_to_select=n_keep,
                  step=0.25).fit(M, y)  # fmt: skip
    subsets["mutual_information"] = [n for n, s in zip(names, mi, strict=True)
                                     if s >= mi.mean() and s > 0]  # fmt: skip
    subsets["l1"] = [n for n, s in zip(names, l1, strict=True) if s > 1e-8]
    subsets["tree_importance"] = [n for n, s in zip(names, tree, strict=True)
                                  if s >= tree.mean() and s > 0]  # fmt: skip
    subsets["rfe"] = [n for n, keep in zip(names, rfe.support_, strict=True) if keep]
    return subsets


def _selection(
    plan: FeaturePlan, X: pd.DataFrame, ev: _Evaluator, current: np.ndarray,
    entry: dict[str, Any], seed: int,
) -> tuple[FeaturePlan, np.ndarray]:  # fmt: skip
    names, M, discrete = _selection_matrix(plan, X)
    if len(names) < SELECTION_MIN_COLUMNS:
        entry.update(tried=0, kept=0, outcome=f"nothing to try: {len(names)} selectable "
                     f"features (< {SELECTION_MIN_COLUMNS})")  # fmt: skip
        return plan, current
    subsets = _subsets(names, M, discrete, ev.y, ev.problem_type, seed)
    generated_names = {s["name"] for s in plan.generated}
    results = {}
    tried: set[tuple[str, ...]] = set()
    best: tuple[str, FeaturePlan, np.ndarray] | None = None
    for method, chosen in subsets.items():
        key = tuple(chosen)
        if not chosen or len(chosen) == len(names) or key in tried:
            results[method] = {
                "n_selected": len(chosen),
                "cv": None,
                "note": "same as another subset, empty, or everything",
            }
            continue
        tried.add(key)
        keep = set(chosen)
        trial = plan.with_changes(
            excluded=sorted({n for n in names if n not in keep and n not in generated_names}
                            | set(plan.excluded)),
            generated=[s for s in plan.generated if s["name"] in keep],
        )  # fmt: skip
        scores = ev.scores(trial)
        results[method] = {"n_selected": len(chosen), "cv": round(float(scores.mean()), 6)}
        if best is None or scores.mean() > best[2].mean():
            best = (method, trial, scores)
    entry.update(tried=len(tried), methods=results, cv_before=round(float(current.mean()), 6))
    if best is None:
        entry.update(kept=0, outcome="nothing to try: every method kept every feature")
        return plan, current
    gain, se = _gain(best[2], current)
    kept = gain > max(MIN_GAIN, SELECTION_SE_FACTOR * se)
    entry.update(best_method=best[0], cv_after=round(float(best[2].mean()), 6),
                 gain=round(gain, 6), gain_se=round(se, 6))  # fmt: skip
    if not kept:
        entry.update(kept=0, outcome="rejected: no cross-validated gain over all features")
        return plan, current
    dropped = [n for n in names if n not in set(subsets[best[0]])]
    entry.update(kept=1, dropped=dropped, outcome=f"kept: {best[0]} subset")
    return best[1], best[2]
