"""Unit tests for the ground-truth join, decay and the window checks of mlmesh_monitor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmesh_monitor.monitor import ModelReference, Monitor, check_performance, check_window
from mlmesh_monitor.performance import JoinBuffer, JoinConfigError, relative_loss
from mlmesh_monitor.policy import DATA_DRIFT, PERFORMANCE_DECAY, PREDICTION_DRIFT
from mlmesh_monitor.reference import (
    PREDICTION,
    TARGET,
    ReferenceDataError,
    labels_as_text,
    proba_column,
    reference_predictions,
    scored_model_file,
)


class _Model:
    """A fixed binary classifier: class "1" when x > 0."""

    classes_ = np.array([0, 1])

    def predict(self, X):
        return (X["x"].to_numpy() > 0).astype(int)

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-4 * X["x"].to_numpy()))
        return np.column_stack([1 - p, p])


def _reference(rng) -> ModelReference:
    X = pd.DataFrame({"x": rng.normal(size=600), "k": rng.choice(["a", "b", "c"], 600)})
    y = (X["x"] + rng.normal(scale=0.3, size=600) > 0).astype(int)
    frame, scores, classes = reference_predictions(_Model(), X, y, "binary")
    return ModelReference("m", "1", "binary", "roc_auc", ["x", "k"], classes, X, frame, scores)


def test_reference_predictions_hold_labels_probabilities_target_and_scores():
    ref = _reference(np.random.default_rng(0))
    frame = ref.prediction_frame
    assert ref.classes == ["0", "1"]
    assert list(frame.columns) == [PREDICTION, TARGET, proba_column("0"), proba_column("1")]
    assert set(frame[PREDICTION]) == {"0", "1"}
    assert ref.reference_scores["roc_auc"] > 0.9 and "accuracy" in ref.reference_scores
    assert list(labels_as_text([1.0, 2, "x", None, np.int64(3)])) == ["1", "2", "x", None, "3"]


def test_join_buffer_matches_once_and_expires_by_time_and_size():
    join = JoinBuffer(window_s=10, max_pending=3)
    join.add(["a", "b", ""], ["1", "0", "1"], None, now=0)  # a row without id is not kept
    assert len(join) == 2
    matched, unmatched = join.match(["a", "zz"], ["1", "0"])
    assert matched == [("1", "1", None)] and unmatched == 1
    assert join.match(["a"], ["1"]) == ([], 1)  # each prediction joins once
    join.add(["c", "d", "e"], ["1", "1", "1"], [(0.1, 0.9)] * 3, now=5)
    assert len(join) == 3 and join.evicted == 1  # b fell out: at most 3 pending
    join.expire(now=15.5)
    assert len(join) == 0
    with pytest.raises(JoinConfigError):
        JoinBuffer(window_s=0, max_pending=1)


def test_relative_loss_follows_the_metric_direction():
    assert relative_loss("accuracy", 0.72, 0.8) == pytest.approx(0.1)
    assert relative_loss("rmse", 11.0, 10.0) == pytest.approx(0.1)
    assert relative_loss("rmse", 9.0, 10.0) == pytest.approx(-0.1)


def test_windows_detect_data_and_prediction_drift_once_per_closed_window():
    rng = np.random.default_rng(3)
    ref = _reference(rng)
    monitor = Monitor(window_rows=300, window_seconds=None, decay_window_rows=100,
                      join_window_s=60, join_max_pending=10_000)
    model = _Model()

    def serve(shift: float, n: int, now: float):
        rows = pd.DataFrame({"x": rng.normal(shift, 1, n), "k": rng.choice(["a", "b", "c"], n)})
        probs = model.predict_proba(rows)
        return monitor.add_predictions(
            ("m", "1"), rows.to_dict("records"), list(labels_as_text(model.predict(rows))),
            [{"0": p[0], "1": p[1]} for p in probs], [f"r{now}-{i}" for i in range(n)],
            ref.classes, now)

    assert serve(0.0, 200, now=1) == []  # still open
    closed = serve(0.0, 200, now=2)
    assert len(closed) == 1 and closed[0].kind == "drift" and len(closed[0].frame) == 300
    calm = check_window(ref, closed[0].frame, closed[0].window_id)
    assert calm.kinds == [] and calm.data.share_drifted < 0.5
    shifted = serve(2.0, 300, now=3)
    check = check_window(ref, shifted[0].frame, shifted[0].window_id)
    assert DATA_DRIFT in check.kinds and PREDICTION_DRIFT in check.kinds
    assert "x" in check.data.drifted_columns
    assert check.prediction_column.drifted
    assert closed[0].window_id != shifted[0].window_id
    assert monitor.pending_joins(("m", "1")) == 700


def test_ground_truth_join_scores_windows_and_flags_decay():
    rng = np.random.default_rng(2)
    ref = _reference(rng)
    monitor = Monitor(window_rows=10_000, window_seconds=None, decay_window_rows=200,
                      join_window_s=60, join_max_pending=10_000)
    x = rng.normal(size=400)
    rows = [{"x": v, "k": "a"} for v in x]
    model = _Model()
    frame = pd.DataFrame(rows)
    probs = model.predict_proba(frame)
    ids = [f"r{i}" for i in range(400)]
    monitor.add_predictions(("m", "1"), rows, list(labels_as_text(model.predict(frame))),
                            [{"0": p[0], "1": p[1]} for p in probs], ids, ref.classes, now=1)
    truth = (x > 0).astype(int).astype(str)
    good, matched, unmatched = monitor.add_outcomes(("m", "1"), ids[:200] + ["nope"],
                                                    [*truth[:200], "1"], ref.classes, now=2)
    assert (len(good), matched, unmatched) == (1, 200, 1)
    healthy = check_performance(ref, good[0].frame, good[0].window_id, decay_threshold=0.1)
    assert healthy.decay.metric == "roc_auc" and not healthy.decay.decayed
    flipped = np.where(truth[200:] == "1", "0", "1")  # the world changed: labels inverted
    bad, _, _ = monitor.add_outcomes(("m", "1"), ids[200:], list(flipped), ref.classes, now=3)
    decayed = check_performance(ref, bad[0].frame, bad[0].window_id, decay_threshold=0.1)
    assert decayed.kinds == [PERFORMANCE_DECAY]
    assert decayed.decay.window_score < decayed.decay.reference_score
    assert decayed.decay.labeled_rows == 200
    summary = decayed.to_dict()
    assert summary["performance"]["decayed"] is True and summary["kinds"] == [PERFORMANCE_DECAY]


def test_the_reference_comes_from_the_model_the_test_split_scored():
    refit = {"model_path": "model.joblib", "evaluated_model_path": "evaluated_model.joblib"}
    stored = {"model.joblib", "evaluated_model.joblib", "selection.json"}
    assert scored_model_file(refit, stored) == "evaluated_model.joblib"
    same = {"model_path": "model.joblib", "evaluated_model_path": "model.joblib"}
    assert scored_model_file(same, stored) is None
    assert scored_model_file({"model_path": "model.joblib"}, stored) is None  # older select
    with pytest.raises(ReferenceDataError, match="lacks it; re-run the select stage"):
        scored_model_file(refit, {"model.joblib", "selection.json"})
