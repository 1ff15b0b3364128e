"""Model selection: leaderboard over train and tune candidates, refit of the winner."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib

from mlmesh_common.modeling import (
    EnsembleModel,
    MeshModel,
    check_family,
    effective_device,
    fit_and_score,
    greater_is_better,
    load_prepared,
    metrics_for,
    score_model_many,
)

SOURCES = ("train", "tune")
_REQUIRED = ("family", "params", "source", "cv_mean", "metric")


class CandidateError(ValueError):
    """A candidate dict that is incomplete or inconsistent with the others."""


class NoCandidatesError(ValueError):
    """No candidate with a usable score: nothing to select."""


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(candidate: dict[str, Any], index: int) -> None:
    missing = [k for k in _REQUIRED if k not in candidate]
    if missing:
        raise CandidateError(f"candidate #{index} lacks {', '.join(missing)}")
    if candidate["source"] not in SOURCES:
        raise CandidateError(
            f"candidate #{index} has source {candidate['source']!r}; use one of {SOURCES}"
        )
    if not isinstance(candidate["params"], dict):
        raise CandidateError(f"candidate #{index} params must be a dict")
    try:
        check_family(candidate["family"])
    except ValueError as exc:
        raise CandidateError(f"candidate #{index}: {exc}") from exc


MIN_SHARED_FOLDS = 2
"""Folds a candidate with truncated CV must have scored to be ranked against full CVs."""


def most_folds(candidates: Sequence[dict[str, Any]]) -> int:
    """The fold count of a complete CV: the most ``fold_scores`` any candidate has."""
    return max((len(c.get("fold_scores") or ()) for c in candidates), default=0)


def cv_cut_short(candidate: dict[str, Any], complete_folds: int) -> bool:
    """Whether the time budget stopped ``candidate``'s CV before its last fold."""
    return 0 < len(candidate.get("fold_scores") or ()) < complete_folds


def _beats_on_shared_folds(truncated: dict, complete: dict, higher: bool) -> bool:
    mine = list(truncated.get("fold_scores") or ())
    theirs = list(complete.get("fold_scores") or ())[: len(mine)]
    if len(mine) < MIN_SHARED_FOLDS or len(theirs) < len(mine):
        return False
    return all((a > b) if higher else (a < b) for a, b in zip(mine, theirs, strict=True))


def _place_truncated(ranked: list[dict], complete_folds: int, higher: bool) -> list[dict]:
    """``ranked`` (complete CVs first) with each truncated CV moved ahead of the first
    complete candidate it beats on every fold both scored."""
    pending = [c for c in ranked if cv_cut_short(c, complete_folds)]
    placed: list[dict] = []
    for c in (c for c in ranked if not cv_cut_short(c, complete_folds)):
        ahead = [p for p in pending if _beats_on_shared_folds(p, c, higher)]
        pending = [p for p in pending if not any(p is a for a in ahead)]
        placed += [*ahead, c]
    return placed + pending


def build_leaderboard(candidates: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank candidates best first by ``cv_mean`` and add ``rank`` (1 = winner).

    Each candidate has family, params, source ("train" or "tune"), cv_mean, cv_std and
    metric; all must share one metric. Candidates whose cross-validation the time budget
    cut short (fewer ``fold_scores`` than the most complete candidate) are compared with
    complete ones on the folds they did score (every candidate uses the same folds, in
    order): one goes ahead of a complete candidate only when it scored at least
    :data:`MIN_SHARED_FOLDS` folds and beat it on each of them; otherwise it ranks after
    every complete one (a mean over fewer folds must not beat a full CV by luck).
    Ties go to the lower cv_std, then to tuned candidates, then to the family name.
    Candidates without a finite cv_mean are left out, and duplicates (same family and
    params) keep only their best entry.
    """
    if not candidates:
        raise NoCandidatesError("no candidates to rank; training and tuning produced none")
    for i, c in enumerate(candidates):
        _check(c, i)
    metrics = {c["metric"] for c in candidates}
    if len(metrics) != 1:
        raise CandidateError(
            f"candidates mix metrics {sorted(metrics)}; score every candidate with one metric"
        )
    higher = greater_is_better(metrics.pop())
    complete_folds = most_folds(candidates)

    def key(c: dict[str, Any]) -> tuple[int, float, float, int, str]:
        std = c.get("cv_std")
        return (
            1 if cv_cut_short(c, complete_folds) else 0,
            -c["cv_mean"] if higher else c["cv_mean"],
            std if _finite(std) else math.inf,
            0 if c["source"] == "tune" else 1,
            str(c["family"]),
        )

    usable = sorted((dict(c) for c in candidates if _finite(c["cv_mean"])), key=key)
    if not usable:
        raise NoCandidatesError(f"none of the {len(candidates)} candidates has a finite cv_mean")
    usable = _place_truncated(usable, complete_folds, higher)
    seen: set[tuple[str, str]] = set()
    board: list[dict[str, Any]] = []
    for c in usable:
        ident = (c["family"], json.dumps(c["params"], sort_keys=True, default=str))
        if ident in seen:
            continue
        seen.add(ident)
        c["rank"] = len(board) + 1
        board.append(c)
    return board


@dataclass
class SelectionResult:
    """The refitted winner and how it and the dummy baseline score on the test split."""

    model: MeshModel = field(repr=False)
    family: str
    params: dict[str, Any]
    metric: str
    greater_is_better: bool
    test_score: float
    baseline_test_score: float
    test_metrics: dict[str, float]
    baseline_test_metrics: dict[str, float]
    n_test: int
    fit_seconds: float
    device: str

    @property
    def beats_baseline(self) -> bool:
        """True when the winner scores strictly better than the dummy baseline on test."""
        if self.greater_is_better:
            return self.test_score > self.baseline_test_score
        return self.test_score < self.baseline_test_score

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary without the model (for the model.selected event)."""
        return {
            "family": self.family,
            "params": dict(self.params),
            "metric": self.metric,
            "greater_is_better": self.greater_is_better,
            "test_score": self.test_score,
            "baseline_test_score": self.baseline_test_score,
            "beats_baseline": self.beats_baseline,
            "test_metrics": dict(self.test_metrics),
            "baseline_test_metrics": dict(self.baseline_test_metrics),
            "n_test": self.n_test,
            "fit_seconds": self.fit_seconds,
            "device": self.device,
        }


def refit_winner(
    prepared_folder: Path | str,
    winner: dict[str, Any],
    *,
    seed: int,
    device: str,
    n_jobs: int = 1,
) -> SelectionResult:
    """Refit ``winner`` (a leaderboard entry) on train+valid and score it on test.

    The dummy family is refitted the same way as the baseline. ``test_metrics`` holds every
    metric of the problem type (see ``metrics_for``).
    """
    _check(winner, 0)
    data = load_prepared(Path(prepared_folder))
    metric = data.metric
    if winner["metric"] != metric:
        raise CandidateError(
            f"winner was ranked by {winner['metric']!r} but the experiment metric is {metric!r}"
        )
    all_metrics = metrics_for(data.problem_type)
    start = time.perf_counter()
    model, test_score = fit_and_score(
        data, winner["family"], winner["params"], device=device, seed=seed, n_jobs=n_jobs
    )
    fit_seconds = time.perf_counter() - start
    baseline, baseline_score = fit_and_score(data, "dummy", {}, device="cpu", seed=seed)
    return SelectionResult(
        model=model,
        family=winner["family"],
        params=dict(winner["params"]),
        metric=metric,
        greater_is_better=greater_is_better(metric),
        test_score=test_score,
        baseline_test_score=baseline_score,
        test_metrics=score_model_many(model, data.X_test, data.y_test, all_metrics),
        baseline_test_metrics=score_model_many(baseline, data.X_test, data.y_test, all_metrics),
        n_test=len(data.X_test),
        fit_seconds=fit_seconds,
        device=effective_device(winner["family"], device),
    )


def save_model(model: MeshModel | EnsembleModel, path: Path | str) -> Path:
    """Write ``model`` with joblib (GPU-fitted parts switched to CPU prediction)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.to_cpu(), path)
    return path


def load_model(path: Path | str) -> MeshModel | EnsembleModel:
    """Read a model written by :func:`save_model`."""
    model = joblib.load(Path(path))
    if not isinstance(model, MeshModel | EnsembleModel):
        raise TypeError(f"{path} holds a {type(model).__name__}, not a MeshModel")
    return model
