"""Ensembles over out-of-fold predictions: Caruana selection and stacking, scored honestly.

Both are estimated with the prepared CV folds: for each fold the ensemble (weights or
meta-learner) is built on the OOF rows of the other folds and scored on that fold, so the
fold scores are not inflated by the choices the ensemble makes. The alternative they are
judged against is scored the same way (:func:`best_single_cv`): picking the best single
candidate is a choice too, and the best candidate's own CV mean, having been picked with
every fold, overstates what that choice delivers. The pool is diverse
(:func:`pool_positions`): each family's best candidate before a family's runner-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegressionCV, RidgeCV

from mlmesh_common.modeling import greater_is_better, load_oof, needs_proba, score, stack_features

CARUANA_ITERATIONS = 40


class EnsembleInputError(ValueError):
    """OOF predictions that cannot be combined (shapes, classes or rows disagree)."""


@dataclass
class OOFPool:
    """Aligned OOF outputs of several candidates on the train rows all of them scored."""

    keys: list[int]
    """Leaderboard index of each candidate in the pool."""
    outputs: list[np.ndarray]
    y: np.ndarray
    folds: np.ndarray
    classes: list[Any] | None
    problem_type: str
    metric: str
    dropped: dict[int, str] = field(default_factory=dict)
    """Leaderboard index -> why the candidate is not in the pool."""

    @property
    def greater_is_better(self) -> bool:
        return greater_is_better(self.metric)


def metric_of(
    metric: str, y: np.ndarray, output: np.ndarray, classes: Sequence[Any] | None
) -> float:
    """``metric`` of one output: probabilities (classification) or predictions."""
    if classes is None:
        return score(metric, y, y_pred=output)
    if needs_proba(metric):
        return score(metric, y, y_proba=output, labels=list(classes))
    return score(metric, y, y_pred=np.asarray(classes)[np.argmax(output, axis=1)])


def _align(arr: np.ndarray, got: list[Any] | None, want: list[Any] | None) -> np.ndarray:
    if want is None:
        return arr
    index = {str(c): j for j, c in enumerate(got or [])}
    missing = [c for c in want if str(c) not in index]
    if missing and len(missing) == len(want):
        raise EnsembleInputError(f"OOF classes {got} share none of {want}")
    out = np.zeros((arr.shape[0], len(want)))
    for i, c in enumerate(want):
        if str(c) in index:
            out[:, i] = arr[:, index[str(c)]]
    return out


def build_pool(
    oof_paths: dict[int, Path | None],
    y: Any,
    folds: np.ndarray,
    *,
    problem_type: str,
    metric: str,
) -> OOFPool:
    """Load and align the OOF files of leaderboard entries (index -> path or None).

    Classification columns are mapped to the sorted train classes. Candidates without a
    file, with a file of the wrong length, or covering less than half of the rows are
    dropped (with the reason); the rest keep the rows every one of them scored.
    """
    y = np.asarray(y)
    classes = None if problem_type == "regression" else sorted(np.unique(y).tolist())
    keys, outputs, dropped = [], [], {}
    for key, path in oof_paths.items():
        if path is None:
            dropped[key] = "no OOF predictions"
            continue
        try:
            arr, got = load_oof(path)
        except (OSError, ValueError) as exc:
            dropped[key] = f"unreadable OOF ({exc})"
            continue
        if arr.shape[0] != y.shape[0]:
            dropped[key] = f"OOF has {arr.shape[0]} rows, train has {y.shape[0]}"
            continue
        if (classes is None) != (got is None):
            dropped[key] = "OOF kind does not match the problem type"
            continue
        arr = _align(arr, got, classes)
        scored = ~np.isnan(arr).any(axis=1) if arr.ndim == 2 else ~np.isnan(arr)
        if scored.mean() < 0.5:
            dropped[key] = f"OOF covers only {scored.mean():.0%} of the rows"
            continue
        keys.append(key)
        outputs.append(arr)
    if outputs:
        rows = np.ones(y.shape[0], dtype=bool)
        for arr in outputs:
            rows &= ~np.isnan(arr).any(axis=1) if arr.ndim == 2 else ~np.isnan(arr)
        outputs = [a[rows] for a in outputs]
        y, folds = y[rows], np.asarray(folds)[rows]
    return OOFPool(keys, outputs, y, np.asarray(folds), classes, problem_type, metric, dropped)


def fold_scores(pool: OOFPool, output: np.ndarray) -> list[float]:
    """Per-fold scores of one OOF output on the pool's rows (fold order ascending)."""
    return [
        metric_of(pool.metric, pool.y[pool.folds == f], output[pool.folds == f], pool.classes)
        for f in np.unique(pool.folds)
    ]


def caruana_weights(
    outputs: Sequence[np.ndarray],
    y: np.ndarray,
    metric: str,
    classes: Sequence[Any] | None,
    *,
    iterations: int = CARUANA_ITERATIONS,
) -> np.ndarray:
    """Caruana et al. (2004) ensemble selection: greedy forward selection with replacement.

    Starts from the best single output, then repeatedly adds (again, possibly) the output
    whose addition gives the best score of the running average; returns the selection
    counts normalised to weights summing to 1. Stops early when no addition helps for
    ``iterations // 4`` rounds in a row.
    """
    sign = 1.0 if greater_is_better(metric) else -1.0
    n = len(outputs)
    counts = np.zeros(n)
    singles = [sign * metric_of(metric, y, o, classes) for o in outputs]
    best = int(np.argmax(singles))
    counts[best] = 1
    total = outputs[best].copy()
    best_score, stale = singles[best], 0
    for _ in range(iterations):
        k = counts.sum()
        trial = [sign * metric_of(metric, y, (total + o) / (k + 1), classes) for o in outputs]
        pick = int(np.argmax(trial))
        counts[pick] += 1
        total = total + outputs[pick]
        if trial[pick] > best_score + 1e-12:
            best_score, stale = trial[pick], 0
        else:
            stale += 1
            if stale >= max(2, iterations // 4):
                break
    return counts / counts.sum()


def _blend(outputs: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return sum(w * o for w, o in zip(weights, outputs, strict=True))


def new_meta_learner(problem_type: str, seed: int = 0) -> Any:
    """The stacking meta-learner: L2 logistic regression or ridge, C/alpha by inner CV."""
    if problem_type == "regression":
        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    # Five strengths and a loose tolerance: on many classes (one feature per member and
    # class) weakly regularised fits crawl, and the choice between close Cs barely matters.
    return LogisticRegressionCV(
        Cs=np.logspace(-3, 1, 5).tolist(), cv=3, max_iter=500, tol=1e-3, random_state=seed
    )


@dataclass
class EnsembleFit:
    """An ensemble built on the whole pool, with its honest per-fold scores."""

    kind: str
    fold_scores: list[float]
    weights: np.ndarray | None = None
    meta: Any = None

    @property
    def cv_mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def cv_std(self) -> float:
        return float(np.std(self.fold_scores))


def pool_positions(families: Sequence[str], size: int) -> list[int]:
    """Positions (in ``families``, best candidate first) of the ensemble pool: the best
    candidate of each family in rank order, then the best remaining ones, ``size`` in all.

    Near-copies of one family (tuning trials) add little to an ensemble; other families'
    errors differ more, which is what blending and stacking feed on.
    """
    if size < 1:
        raise EnsembleInputError(f"the ensemble pool needs a size of at least 1; got {size}")
    firsts: list[int] = []
    seen: set[str] = set()
    for i, family in enumerate(families):
        if family not in seen:
            seen.add(family)
            firsts.append(i)
    rest = [i for i in range(len(families)) if i not in firsts]
    return sorted((firsts + rest)[:size])


def best_single_cv(pool: OOFPool) -> EnsembleFit:
    """Picking the best single member, scored like the ensembles: for each fold, the member
    best on the other folds' rows, scored on that fold."""
    higher = greater_is_better(pool.metric)
    scores = []
    for f in np.unique(pool.folds):
        held = pool.folds == f
        inner = [metric_of(pool.metric, pool.y[~held], o[~held], pool.classes)
                 for o in pool.outputs]
        pick = int(np.argmax(inner) if higher else np.argmin(inner))
        scores.append(metric_of(pool.metric, pool.y[held], pool.outputs[pick][held],
                                pool.classes))
    return EnsembleFit("single", scores)


def caruana_cv(pool: OOFPool, *, iterations: int = CARUANA_ITERATIONS) -> EnsembleFit:
    """Caruana weights on the whole pool; fold scores from weights chosen without that fold."""
    scores = []
    for f in np.unique(pool.folds):
        held = pool.folds == f
        w = caruana_weights(
            [o[~held] for o in pool.outputs],
            pool.y[~held],
            pool.metric,
            pool.classes,
            iterations=iterations,
        )
        blended = _blend([o[held] for o in pool.outputs], w)
        scores.append(metric_of(pool.metric, pool.y[held], blended, pool.classes))
    weights = caruana_weights(
        pool.outputs, pool.y, pool.metric, pool.classes, iterations=iterations
    )
    return EnsembleFit("caruana", scores, weights=weights)


def _meta_output(meta: Any, features: np.ndarray, classes: list[Any] | None) -> np.ndarray:
    if classes is None:
        return np.asarray(meta.predict(features), dtype=float)
    proba = meta.predict_proba(features)
    out = np.zeros((features.shape[0], len(classes)))
    index = {str(c): i for i, c in enumerate(classes)}
    for j, c in enumerate(meta.classes_):
        out[:, index[str(c)]] = proba[:, j]
    return out


def stacking_cv(pool: OOFPool, *, seed: int = 0) -> EnsembleFit:
    """A regularized meta-learner on the OOF outputs; fold scores from metas fitted
    without that fold (its C/alpha picked by its own inner CV each time)."""
    features = stack_features(pool.outputs, pool.problem_type)
    scores = []
    for f in np.unique(pool.folds):
        held = pool.folds == f
        meta = new_meta_learner(pool.problem_type, seed).fit(features[~held], pool.y[~held])
        out = _meta_output(meta, features[held], pool.classes)
        scores.append(metric_of(pool.metric, pool.y[held], out, pool.classes))
    meta = new_meta_learner(pool.problem_type, seed).fit(features, pool.y)
    return EnsembleFit("stacking", scores, meta=meta)
