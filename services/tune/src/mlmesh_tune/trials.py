"""Evaluating one tuning trial: cross-validation with per-fold reports (for pruning), and the
inference latency and size of the last fold's model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmesh_common.modeling import (
    CVResult,
    PreparedData,
    cross_validate,
    load_prepared,
)


@dataclass
class TrialOutcome:
    """CV result of one trial; ``value`` is the mean fold score that Optuna optimises.

    ``latency_ms``/``size_bytes`` describe the last fold's model (mean ms per row predicting
    a batch on one core; joblib size) when measured; ``cv`` keeps the out-of-fold
    predictions.
    """

    family: str
    params: dict[str, Any]
    metric: str
    value: float
    cv_std: float
    fold_scores: list[float]
    truncated: bool
    fit_seconds: float
    device: str
    latency_ms: float | None = None
    size_bytes: int | None = None
    cv: CVResult | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the candidate fields; no OOF array)."""
        return {
            "family": self.family,
            "params": dict(self.params),
            "metric": self.metric,
            "cv_mean": self.value,
            "cv_std": self.cv_std,
            "fold_scores": list(self.fold_scores),
            "truncated": self.truncated,
            "fit_seconds": self.fit_seconds,
            "device": self.device,
            "latency_ms": self.latency_ms,
            "size_bytes": self.size_bytes,
        }


def _data(prepared: Path | str | PreparedData) -> PreparedData:
    return prepared if isinstance(prepared, PreparedData) else load_prepared(Path(prepared))


def evaluate_trial(
    prepared: Path | str | PreparedData,
    family: str,
    params: dict[str, Any],
    *,
    seed: int,
    device: str,
    time_budget_s: float | None = None,
    n_jobs: int = 1,
    on_fold: Callable[[int, float], None] | None = None,
    measure: bool = True,
) -> TrialOutcome:
    """Cross-validate ``family`` with ``params`` on the PREPARED folder (or loaded data).

    ``on_fold(fold_index, score)`` runs after each fold; an exception from it (e.g.
    optuna.TrialPruned) stops CV and propagates, like any fitting error. With ``measure``
    the last fold's model is timed and sized.
    """
    data = _data(prepared)
    cv = cross_validate(
        data,
        family,
        params,
        device=device,
        seed=seed,
        time_budget_s=time_budget_s,
        n_jobs=n_jobs,
        on_fold=on_fold,
        measure=measure,
    )
    return TrialOutcome(
        family=family,
        params=dict(params),
        metric=cv.metric,
        value=cv.mean,
        cv_std=cv.std,
        fold_scores=list(cv.fold_scores),
        truncated=cv.truncated,
        fit_seconds=cv.fit_seconds,
        device=cv.device,
        latency_ms=cv.latency_ms,
        size_bytes=cv.size_bytes,
        cv=cv,
    )


def worth_keeping(
    value: float, completed_values: Sequence[float], *, maximize: bool, keep: int
) -> bool:
    """Whether a finished trial with score ``value`` is among the ``keep`` best so far.

    Later trials can only push a trial down, so one outside the top ``keep`` when it
    finishes can never become a kept candidate: its OOF predictions need not be stored.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1; got {keep}")
    better = sum(1 for v in completed_values if (v > value if maximize else v < value))
    return better < keep
