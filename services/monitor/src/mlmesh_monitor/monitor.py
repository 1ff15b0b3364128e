"""The monitor's state and checks, free of Kafka: windows per model version, the ground
truth join, and the evaluation of a closed window (data drift, prediction drift,
performance decay).

Served rows arrive in batches (one batch per poll of the broker, many events each);
``Monitor.add_predictions`` turns a batch into one frame and appends it to the model
version's tumbling window, so the per-row cost is a dict insertion and a column append.
Drift is computed once per closed window by ``check_window`` (vectorised tests of
``mlmesh_monitor.stattests``); ``check_performance`` scores a window of joined outcomes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from mlmesh_monitor.performance import DecayResult, JoinBuffer, assess_decay, joined_frame
from mlmesh_monitor.policy import DATA_DRIFT, PERFORMANCE_DECAY, PREDICTION_DRIFT
from mlmesh_monitor.reference import PREDICTION, prediction_columns, proba_column
from mlmesh_monitor.stattests import ColumnDrift, ReferenceTable, TableDrift
from mlmesh_monitor.windows import ModelWindows

ModelKey = tuple[str, str]  # (model name, model version)


@dataclass
class ModelReference:
    """Everything a model version is compared with, summarised for fast window checks."""

    model: str
    version: str
    problem_type: str
    metric: str
    features: list[str]
    classes: list[str]
    feature_frame: pd.DataFrame
    prediction_frame: pd.DataFrame | None = None
    reference_scores: dict[str, float] = field(default_factory=dict)
    drift_share: float = 0.5
    features_table: ReferenceTable = field(init=False)
    predictions_table: ReferenceTable | None = field(init=False)

    def __post_init__(self) -> None:
        self.features_table = ReferenceTable(self.feature_frame, self.features,
                                             drift_share_threshold=self.drift_share)
        self.predictions_table = None
        if self.prediction_frame is not None:
            columns = prediction_columns(self.prediction_frame)
            if columns:
                self.predictions_table = ReferenceTable(self.prediction_frame, columns)


@dataclass
class WindowCheck:
    """What one closed window showed."""

    window_id: str
    model: str
    version: str
    start: float
    end: float
    rows: int
    data: TableDrift | None = None
    prediction: TableDrift | None = None
    decay: DecayResult | None = None

    @property
    def prediction_drift(self) -> bool:
        return bool(self.prediction and self.prediction.drifted_columns)

    @property
    def prediction_column(self) -> ColumnDrift | None:
        """The prediction test that decided: the first drifted one, else the label's."""
        if not self.prediction or not self.prediction.per_column:
            return None
        tests = self.prediction.per_column
        drifted = self.prediction.drifted_columns
        return tests[drifted[0]] if drifted else tests.get(PREDICTION,
                                                             next(iter(tests.values())))

    @property
    def kinds(self) -> list[str]:
        kinds = []
        if self.data is not None and self.data.dataset_drift:
            kinds.append(DATA_DRIFT)
        if self.prediction_drift:
            kinds.append(PREDICTION_DRIFT)
        if self.decay is not None and self.decay.decayed:
            kinds.append(PERFORMANCE_DECAY)
        return kinds

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (for the report artifact)."""
        def table(t: TableDrift | None) -> dict[str, Any] | None:
            if t is None:
                return None
            return {"share_drifted": t.share_drifted, "dataset_drift": t.dataset_drift,
                    "drift_share_threshold": t.drift_share_threshold,
                    "drifted_columns": t.drifted_columns, "skipped_columns": t.skipped_columns,
                    "per_column": {k: v.to_dict() for k, v in t.per_column.items()}}
        return {"window_id": self.window_id, "model": self.model, "version": self.version,
                "window_start": self.start, "window_end": self.end, "rows": self.rows,
                "kinds": self.kinds, "data_drift": table(self.data),
                "prediction_drift": table(self.prediction),
                "performance": self.decay.to_dict() if self.decay else None}


def check_window(reference: ModelReference, window: pd.DataFrame, window_id: str,
                 drift_share: float | None = None) -> WindowCheck:
    """Data drift of the window's features (drifted when the share of drifted features
    reaches ``drift_share``, default the reference's) and drift of its predictions."""
    check = _check(reference, window, window_id)
    check.data = reference.features_table.test(window)
    if drift_share is not None:
        check.data = replace(check.data, drift_share_threshold=drift_share)
    if reference.predictions_table is not None:
        present = [c for c in reference.predictions_table.columns if c in window.columns]
        if present:
            check.prediction = reference.predictions_table.test(window)
    return check


def check_performance(reference: ModelReference, window: pd.DataFrame, window_id: str,
                      decay_threshold: float) -> WindowCheck:
    """The window's score on joined outcomes against the test score."""
    check = _check(reference, window, window_id)
    check.decay = assess_decay(window, problem_type=reference.problem_type,
                               metric=reference.metric,
                               reference_scores=reference.reference_scores,
                               classes=reference.classes, threshold=decay_threshold)
    return check


def _check(reference: ModelReference, window: pd.DataFrame, window_id: str) -> WindowCheck:
    return WindowCheck(window_id, reference.model, reference.version,
                       float(window.attrs.get("window_start") or 0.0),
                       float(window.attrs.get("window_end") or 0.0), len(window))


def probability_rows(probabilities: Sequence[Mapping[str, float] | None],
                     classes: Sequence[str]) -> list[tuple | None]:
    """{class: p} per row -> tuples in ``classes`` order (None where a row has none)."""
    return [None if not p else tuple(float(p.get(c, np.nan)) for c in classes)
            for p in probabilities]


@dataclass
class ClosedWindow:
    """A window ready to check: drift (served rows) or performance (joined outcomes)."""

    kind: str  # "drift" or "performance"
    key: ModelKey
    window_id: str
    frame: pd.DataFrame


class Monitor:
    """Windows and joins of every model version this worker serves (not thread-safe: call
    from the event loop, hand closed windows to threads)."""

    def __init__(self, *, window_rows: int | None, window_seconds: float | None,
                 decay_window_rows: int | None, join_window_s: float,
                 join_max_pending: int) -> None:
        self.windows = ModelWindows(size=window_rows, seconds=window_seconds)
        self.outcomes = ModelWindows(size=decay_window_rows, seconds=window_seconds)
        self.join_window_s = join_window_s
        self.join_max_pending = join_max_pending
        self.joins: dict[ModelKey, JoinBuffer] = {}
        self._sequence: dict[tuple[Hashable, str], int] = {}

    def add_predictions(self, key: ModelKey, rows: list[dict[str, Any]],
                        predictions: list[Any], probabilities: list[Any] | None,
                        request_ids: list[str], classes: Sequence[str], now: float,
                        features: Sequence[str] | None = None) -> list[ClosedWindow]:
        """Append a batch of served rows of one model version; returns closed windows."""
        if len(predictions) != len(rows):
            raise ValueError(f"{len(rows)} rows but {len(predictions)} predictions; a served "
                             "batch needs one prediction per row")
        frame = pd.DataFrame.from_records(rows, columns=list(features) if features else None)
        frame[PREDICTION] = predictions
        proba_rows = None
        if probabilities and classes and len(probabilities) == len(rows):
            proba_rows = probability_rows(probabilities, classes)
            if all(p is not None for p in proba_rows):
                matrix = np.asarray(proba_rows, dtype=np.float64)
                for i, label in enumerate(classes):
                    frame[proba_column(label)] = matrix[:, i]
        if request_ids:
            join = self.joins.get(key)
            if join is None:
                join = self.joins[key] = JoinBuffer(self.join_window_s, self.join_max_pending)
            ids = request_ids if len(request_ids) == len(rows) else [""] * len(rows)
            join.add(ids, predictions, proba_rows, now)
        return [self._closed("drift", key, w) for w in self.windows.add(key, frame, now)]

    def add_outcomes(self, key: ModelKey, request_ids: list[str], outcomes: list[Any],
                     classes: Sequence[str], now: float) -> tuple[list[ClosedWindow], int, int]:
        """Join outcomes with pending predictions; returns closed performance windows, the
        number matched and the number that found no prediction."""
        if len(request_ids) != len(outcomes):
            raise ValueError(f"{len(request_ids)} request ids but {len(outcomes)} outcomes; "
                             "send one outcome per request id")
        join = self.joins.get(key)
        if join is None:
            return [], 0, len(request_ids)
        join.expire(now)
        matched, unmatched = join.match(request_ids, outcomes)
        if not matched:
            return [], 0, unmatched
        frame = joined_frame(matched, classes)
        closed = [self._closed("performance", key, w)
                  for w in self.outcomes.add(key, frame, now)]
        return closed, len(matched), unmatched

    def poll(self, now: float) -> list[ClosedWindow]:
        """Windows whose time is up, and expiry of old pending predictions."""
        for join in self.joins.values():
            join.expire(now)
        closed = [self._closed("drift", key, w) for key, frames in self.windows.poll(now).items()
                  for w in frames]
        closed += [self._closed("performance", key, w)
                   for key, frames in self.outcomes.poll(now).items() for w in frames]
        return closed

    def pending_joins(self, key: ModelKey) -> int:
        join = self.joins.get(key)
        return len(join) if join else 0

    def _closed(self, kind: str, key: Any, frame: pd.DataFrame) -> ClosedWindow:
        seq = self._sequence.get((key, kind), 0) + 1
        self._sequence[(key, kind)] = seq
        start = int(float(frame.attrs.get("window_start") or 0.0) * 1000)
        tag = "w" if kind == "drift" else "p"
        return ClosedWindow(kind, key, f"{key[0]}:{key[1]}:{tag}{start}-{seq:06d}", frame)
