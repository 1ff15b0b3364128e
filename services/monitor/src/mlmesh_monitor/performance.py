"""Performance decay: predictions joined with their ground truth, scored per window.

``JoinBuffer`` keeps each served row's prediction by request id until its outcome arrives,
bounded in time (the join window) and in size (oldest first out). It lives in memory: a
changelog write per served row would cap ingestion far below what the monitor must
sustain, so predictions still waiting for their outcome are lost when a worker restarts
(counted as unmatched outcomes). ``assess_decay`` compares a window's score with the
model's score on its test split.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlmesh_common.modeling import greater_is_better, needs_proba
from mlmesh_monitor.reference import (
    PREDICTION,
    PROBA_PREFIX,
    TARGET,
    labels_as_text,
    window_scores,
)


class JoinConfigError(ValueError):
    """The join window or the pending limit is not positive."""


class JoinBuffer:
    """Predictions waiting for ground truth: request id -> (time, prediction, probabilities)."""

    def __init__(self, window_s: float, max_pending: int) -> None:
        if not window_s > 0 or max_pending < 1:
            raise JoinConfigError(f"join window {window_s!r} s and max pending {max_pending!r} "
                                  "must both be positive")
        self.window_s = float(window_s)
        self.max_pending = int(max_pending)
        self._pending: OrderedDict[str, tuple[float, Any, tuple | None]] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, request_ids: Sequence[str], predictions: Sequence[Any],
            probabilities: Sequence[tuple] | None, now: float) -> None:
        """Remember a batch of served rows (ids, predictions and optional probability rows
        aligned with each other); rows without a request id are not joinable and skipped."""
        if probabilities is None:
            items = ((rid, (now, p, None)) for rid, p in zip(request_ids, predictions,
                                                              strict=True) if rid)
        else:
            items = ((rid, (now, p, q)) for rid, p, q in zip(request_ids, predictions,
                                                              probabilities, strict=True) if rid)
        self._pending.update(items)
        self.expire(now)

    def expire(self, now: float) -> int:
        """Drop predictions older than the join window or beyond the size limit."""
        dropped = 0
        horizon = now - self.window_s
        pending = self._pending
        while pending and (len(pending) > self.max_pending
                           or next(iter(pending.values()))[0] < horizon):
            pending.popitem(last=False)
            dropped += 1
        self.evicted += dropped
        return dropped

    def match(self, request_ids: Sequence[str], outcomes: Sequence[Any],
              ) -> tuple[list[tuple[Any, Any, tuple | None]], int]:
        """(outcome, prediction, probabilities) for every request id still pending (each
        joins once), and how many outcomes found no prediction."""
        matched = []
        pop = self._pending.pop
        for rid, outcome in zip(request_ids, outcomes, strict=True):
            hit = pop(rid, None)
            if hit is not None:
                matched.append((outcome, hit[1], hit[2]))
        return matched, len(request_ids) - len(matched)


def joined_frame(matched: Sequence[tuple[Any, Any, tuple | None]],
                 classes: Sequence[str]) -> pd.DataFrame:
    """Joined rows as a frame: TARGET, PREDICTION and (when logged) the probabilities."""
    frame = pd.DataFrame({TARGET: [m[0] for m in matched],
                          PREDICTION: [m[1] for m in matched]})
    if classes and matched and all(m[2] is not None and len(m[2]) == len(classes)
                                   for m in matched):
        proba = np.asarray([m[2] for m in matched], dtype=np.float64)
        for i, label in enumerate(classes):
            frame[f"{PROBA_PREFIX}{label}"] = proba[:, i]
    return frame


@dataclass(frozen=True)
class DecayResult:
    """A window's score against the reference score; ``decay`` is the relative loss."""

    metric: str
    window_score: float
    reference_score: float
    decay: float
    threshold: float
    decayed: bool
    labeled_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_loss(metric: str, current: float, reference: float) -> float:
    """How much worse ``current`` is than ``reference``, relative to it (0.1 = 10% worse,
    negative when better), in the metric's direction."""
    scale = max(abs(reference), 1e-12)
    if greater_is_better(metric):
        return (reference - current) / scale
    return (current - reference) / scale


def assess_decay(window: pd.DataFrame, *, problem_type: str, metric: str,
                 reference_scores: dict[str, float], classes: Sequence[str],
                 threshold: float) -> DecayResult | None:
    """Score the joined rows of ``window`` and compare with the reference score.

    Uses ``metric`` (the experiment's) when the window allows it (probability metrics need
    logged probabilities, roc_auc both classes), else the first metric of the problem type
    that both sides have. None when no metric can be computed on the window.
    """
    if len(window) == 0:
        return None
    if problem_type == "regression":
        y_true = pd.to_numeric(window[TARGET], errors="coerce").to_numpy(dtype=np.float64)
        y_pred = pd.to_numeric(window[PREDICTION], errors="coerce").to_numpy(dtype=np.float64)
        keep = np.isfinite(y_true) & np.isfinite(y_pred)
        proba = None
    else:
        y_true = labels_as_text(window[TARGET])
        y_pred = labels_as_text(window[PREDICTION])
        keep = np.array([v is not None for v in y_true])
        proba_cols = [f"{PROBA_PREFIX}{c}" for c in classes]
        proba = (window[proba_cols].to_numpy(dtype=np.float64)[keep]
                 if classes and all(c in window.columns for c in proba_cols) else None)
    y_true, y_pred = y_true[keep], y_pred[keep]
    if len(y_true) == 0:
        return None
    current = window_scores(problem_type, y_true, y_pred, proba, classes)
    candidates = [metric] if metric else []
    candidates += [m for m in current if m != metric]
    for name in candidates:
        if name in current and name in reference_scores:
            if needs_proba(name) and proba is None:
                continue
            loss = relative_loss(name, current[name], reference_scores[name])
            return DecayResult(name, current[name], reference_scores[name], float(loss),
                               threshold, bool(loss >= threshold), int(len(y_true)))
    return None
