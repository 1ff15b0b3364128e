"""What a model is compared with: its training features (data drift), its predictions on
the test split (prediction drift) and its scores on the test split (performance decay).

Publish stores the training features (``reference.parquet``). The test-split predictions
are computed here, once per published version, from the model the test split scored (the
published one, or its train+valid fit when select published a refit on every row, whose
test predictions would be in-sample) and the prepared test split, and stored next to the
drift reports; the scores are computed from the same
predictions with ``mlmesh_common.modeling.score`` so a window's score and the reference
score are always the same metric computed the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlmesh_common.modeling import metrics_for, score

#: Reserved column names of the prediction side of a window or reference frame.
PREDICTION = "__prediction__"
PROBA_PREFIX = "__proba__:"
TARGET = "__target__"


class ReferenceDataError(ValueError):
    """The model or the test split cannot produce reference predictions."""


def scored_model_file(selection: Mapping[str, Any], stored: Collection[str]) -> str | None:
    """The file of select's folder (``stored`` lists them) holding the model its test split
    scored, when that is not the published model (select published the winner refitted on
    every row); None when the published model is the scored one."""
    evaluated = str(selection.get("evaluated_model_path") or "")
    published = str(selection.get("model_path") or "model.joblib")
    if not evaluated or evaluated == published:
        return None
    if evaluated not in stored:
        raise ReferenceDataError(
            f"selection.json names {evaluated} as the model its test split scored, but the "
            "select folder lacks it; re-run the select stage"
        )
    return evaluated


def proba_column(label: Any) -> str:
    """The frame column holding the probability of class ``label``."""
    return f"{PROBA_PREFIX}{label}"


def prediction_columns(frame: pd.DataFrame) -> list[str]:
    """The prediction column and the probability columns ``frame`` has, in order."""
    return [c for c in frame.columns if c == PREDICTION or str(c).startswith(PROBA_PREFIX)]


def labels_as_text(values: Any) -> np.ndarray:
    """Class labels as strings (served labels arrive through JSON, so 1, 1.0 and "1" must
    compare equal): integral floats lose their ``.0``."""
    out = []
    for value in np.asarray(values, dtype=object).ravel():
        if isinstance(value, float | np.floating) and float(value).is_integer():
            value = int(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out.append(None if value is None else str(value))
    return np.asarray(out, dtype=object)


def reference_predictions(model: Any, X: pd.DataFrame, y: Any,
                          problem_type: str) -> tuple[pd.DataFrame, dict[str, float], list[str]]:
    """The model's predictions on ``X`` (the test split) as a frame with PREDICTION, the
    class probabilities (classifiers) and TARGET; every applicable metric on them; and the
    class labels (as text, in the order of the probability columns)."""
    if len(X) == 0:
        raise ReferenceDataError("the test split has no rows; cannot compute reference predictions")
    try:
        predicted = np.asarray(model.predict(X)).ravel()
    except Exception as exc:
        raise ReferenceDataError(f"the published model cannot predict its test split: {exc}"
                              ) from exc
    frame = pd.DataFrame(index=range(len(X)))
    classes: list[str] = []
    proba = None
    if problem_type == "regression":
        frame[PREDICTION] = predicted.astype(np.float64)
        frame[TARGET] = np.asarray(y, dtype=np.float64)
    else:
        frame[PREDICTION] = labels_as_text(predicted)
        frame[TARGET] = labels_as_text(y)
        if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
            classes = [str(c) for c in labels_as_text(model.classes_)]
            proba = np.asarray(model.predict_proba(X), dtype=np.float64)
            for i, label in enumerate(classes):
                frame[proba_column(label)] = proba[:, i]
    scores = window_scores(problem_type, frame[TARGET].to_numpy(), frame[PREDICTION].to_numpy(),
                           proba, classes)
    return frame, scores, classes


def window_scores(problem_type: str, y_true: Any, y_pred: Any, proba: np.ndarray | None,
                  classes: Sequence[str]) -> dict[str, float]:
    """Every metric of ``problem_type`` that the inputs allow (probability metrics need
    ``proba``; roc_auc needs both classes present); the others are left out."""
    scores: dict[str, float] = {}
    for metric in metrics_for(problem_type):
        try:
            value = score(metric, y_true, y_pred, proba, labels=list(classes) or None)
        except (ValueError, TypeError):
            continue
        if np.isfinite(value):
            scores[metric] = float(value)
    return scores
