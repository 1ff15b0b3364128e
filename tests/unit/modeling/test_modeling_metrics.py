"""Metrics: values agree with scikit-learn, directions and input checks."""

import numpy as np
import pytest
from sklearn import metrics as skm

from mlmesh_common.modeling import (
    METRICS,
    MetricInputError,
    UnknownMetricError,
    UnknownProblemTypeError,
    default_metric,
    greater_is_better,
    metrics_for,
    needs_proba,
    score,
)


def test_label_metrics_match_sklearn():
    y = np.array(["a", "b", "c", "a", "b", "c", "a"])
    p = np.array(["a", "b", "b", "a", "c", "c", "b"])
    assert score("accuracy", y, y_pred=p) == pytest.approx(4 / 7)
    assert score("balanced_accuracy", y, y_pred=p) == pytest.approx(
        skm.balanced_accuracy_score(y, p)
    )
    assert score("f1_macro", y, y_pred=p) == pytest.approx(skm.f1_score(y, p, average="macro"))


def test_regression_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 4.0])
    assert score("rmse", y, y_pred=p) == pytest.approx(np.sqrt((0.25 + 0 + 1 + 0) / 4))
    assert score("mae", y, y_pred=p) == pytest.approx(1.5 / 4)
    assert score("r2", y, y_pred=p) == pytest.approx(1 - 1.25 / 5.0)


def test_roc_auc_uses_second_label_as_positive_class():
    y = np.array(["no", "yes", "no", "yes", "yes"])
    p_yes = np.array([0.1, 0.8, 0.3, 0.35, 0.9])
    # labels[1] ("yes") is the positive class; 1-D and (n, 2) inputs agree.
    expected = skm.roc_auc_score(y == "yes", p_yes)
    assert score("roc_auc", y, y_proba=p_yes, labels=["no", "yes"]) == pytest.approx(expected)
    two_col = np.column_stack([1 - p_yes, p_yes])
    assert score("roc_auc", y, y_proba=two_col, labels=["no", "yes"]) == pytest.approx(expected)
    # Reversed labels make the same scores rank the other class.
    assert score("roc_auc", y, y_proba=p_yes, labels=["yes", "no"]) == pytest.approx(1 - expected)


def test_log_loss_with_labels():
    y = np.array(["a", "c", "b"])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    expected = -np.mean(np.log([0.7, 0.8, 0.6]))
    assert score("log_loss", y, y_proba=proba, labels=["a", "b", "c"]) == pytest.approx(expected)


def test_directions_and_needs():
    assert greater_is_better("roc_auc") and greater_is_better("r2")
    assert not greater_is_better("rmse") and not greater_is_better("log_loss")
    assert needs_proba("roc_auc") and needs_proba("log_loss")
    assert not needs_proba("accuracy") and not needs_proba("mae")
    assert set(METRICS) == {
        "roc_auc",
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "log_loss",
        "rmse",
        "mae",
        "r2",
    }


def test_metric_sets_per_problem_type():
    assert default_metric("binary") == "roc_auc"
    assert default_metric("multiclass") == "accuracy"
    assert default_metric("regression") == "rmse"
    assert metrics_for("binary")[0] == "roc_auc"
    assert "roc_auc" not in metrics_for("multiclass")
    assert set(metrics_for("regression")) == {"rmse", "mae", "r2"}
    with pytest.raises(UnknownProblemTypeError, match="binary, multiclass, regression"):
        metrics_for("ranking")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(UnknownMetricError, match="use one of"):
        score("auc_pr", [0, 1], y_pred=[0, 1])
    with pytest.raises(MetricInputError, match="needs y_proba"):
        score("roc_auc", [0, 1], y_pred=[0, 1])
    with pytest.raises(MetricInputError, match="needs y_pred"):
        score("accuracy", [0, 1])
    with pytest.raises(MetricInputError, match="rows"):
        score("rmse", [1.0, 2.0], y_pred=[1.0])
    with pytest.raises(MetricInputError, match="single class"):
        score("roc_auc", [1, 1], y_proba=[0.2, 0.9])
    with pytest.raises(MetricInputError, match="binary"):
        score("roc_auc", [0, 1, 2], y_proba=[0.2, 0.9, 0.5], labels=[0, 1, 2])
    assert issubclass(MetricInputError, ValueError)
