"""What a model costs: prediction latency per row and serialized size once fitted, and the
expected time of a fit from its cross-validation."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Mapping
from typing import Any

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

#: Rows of the batch predicted when measuring latency (fewer if X has fewer).
LATENCY_BATCH_ROWS = 1000


class LatencyInputError(ValueError):
    """Rows to measure latency on that are empty or not a DataFrame."""


def _predict(model: Any, X: pd.DataFrame) -> Any:
    if getattr(model, "problem_type", "regression") != "regression" and hasattr(
        model, "predict_proba"
    ):
        return model.predict_proba(X)
    return model.predict(X)


def measure_latency_ms(
    model: Any, X: pd.DataFrame, *, batch_rows: int = LATENCY_BATCH_ROWS, repeats: int = 3
) -> float:
    """Mean milliseconds per row when ``model`` predicts a batch of rows of ``X``.

    Predicts ``predict_proba`` for classifiers (what serving and selection use), else
    ``predict``, on a batch of ``batch_rows`` rows of X (repeated cyclically when X is
    shorter, so tiny inputs still give a stable number), with native thread pools limited
    to one thread (the proto's "one core"). One warm-up call, then the best of ``repeats``
    timed calls divided by the batch size.
    """
    if not isinstance(X, pd.DataFrame) or len(X) == 0:
        raise LatencyInputError("measure_latency_ms needs a non-empty DataFrame of input rows")
    reps = max(1, int(repeats))
    rows = max(1, int(batch_rows))
    batch = X.iloc[np.resize(np.arange(len(X)), rows)]
    with threadpool_limits(limits=1):
        _predict(model, batch.iloc[: min(10, len(batch))])
        best = float("inf")
        for _ in range(reps):
            start = time.perf_counter()
            _predict(model, batch)
            best = min(best, time.perf_counter() - start)
    return 1000.0 * best / len(batch)


def model_size_bytes(model: Any) -> int:
    """Bytes of ``model`` serialized with joblib (what publish stores and serving loads)."""
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return buf.getbuffer().nbytes


def expected_fit_s(candidate: Mapping[str, Any], n_folds: int, rows_factor: float = 1.0) -> float:
    """Seconds a fit of ``candidate`` (a leaderboard dict) on the whole train split should
    take, times ``rows_factor`` for more rows: its CV seconds per fold it scored, scaled from
    a fold's (k-1)/k of the rows to all of them (0 when unknown)."""
    scored = len(candidate.get("fold_scores") or [])
    seconds = candidate.get("fit_seconds")
    if not scored or not seconds or not math.isfinite(float(seconds)):
        return 0.0
    return float(seconds) / scored * n_folds / max(1, n_folds - 1) * rows_factor
