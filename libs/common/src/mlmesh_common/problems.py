"""Problem types: the names the domain code uses and the protobuf enum on the wire."""

from __future__ import annotations

from mlmesh.events.v1.common_pb2 import ProblemType

#: Metrics a spec may ask for, per kind of problem, and each problem type's default.
CLASSIFICATION_METRICS = ("roc_auc", "accuracy", "balanced_accuracy", "f1_macro", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2")
DEFAULT_METRICS = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
#: Model families train-gpu can train (mlmesh_common.modeling builds them).
MODEL_FAMILIES = ("dummy", "linear", "svm_linear", "svm_rbf", "knn", "gaussian_process",
                  "random_forest", "extra_trees", "hist_gb", "xgboost", "lightgbm", "catboost",
                  "mlp", "autogluon")
#: How prep may split rows; "auto" is stratified for classification, random otherwise.
SPLIT_STRATEGIES = ("auto", "random", "stratified", "group", "time")
#: Tuning objectives, samplers and pruners a spec may name.
OBJECTIVES = ("score", "latency")
SAMPLERS = ("auto", "tpe", "random", "grid")
PRUNERS = ("median", "successive_halving", "hyperband", "none")

_TO_PROTO = {"binary": ProblemType.PROBLEM_TYPE_BINARY,
             "multiclass": ProblemType.PROBLEM_TYPE_MULTICLASS,
             "regression": ProblemType.PROBLEM_TYPE_REGRESSION}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}


def to_proto(name: str) -> int:
    """'binary' -> PROBLEM_TYPE_BINARY; '' -> UNSPECIFIED; anything else is a ValueError."""
    if not name:
        return ProblemType.PROBLEM_TYPE_UNSPECIFIED
    try:
        return _TO_PROTO[name]
    except KeyError:
        raise ValueError(f"unknown problem type {name!r}; use one of {sorted(_TO_PROTO)}") from None


def from_proto(value: int) -> str:
    """PROBLEM_TYPE_BINARY -> 'binary'; UNSPECIFIED -> ''."""
    return _FROM_PROTO.get(value, "")
