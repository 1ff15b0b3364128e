"""ONNX graphs for the fitted estimators of MeshModel's families (no preprocessing).

Each converter returns an ONNX model with one input (the preprocessor's output, float32 or
float64 as :class:`EstimatorGraph` says) and the converter's own outputs: for classifiers
a label and a probability tensor (CatBoost: a sequence of maps), for regressors a value.

Routes: skl2onnx for scikit-learn estimators (linear models, MLP, forests, histogram
gradient boosting, KNN, SVMs with their calibration, and a StandardScaler target
transform), onnxmltools for LightGBM and XGBoost, and CatBoost's own exporter. Three
converter defects are corrected on the produced graph, each checked by the publish
verification that compares the graph with the model:

- tree thresholds stored as float32 are given back the library's float64 thresholds for
  LightGBM and HistGradientBoosting, which compare in float64 (sklearn's forests cast
  their input to float32 themselves and stay in float32);
- forests' missing-value directions (``tree_.missing_go_to_left``) are copied onto the
  tree nodes (skl2onnx always sends NaN right);
- KNN's distance weights: skl2onnx (opset >= 11) negates TopK's distances, so every
  neighbour got the same weight.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FLOAT = 1  # onnx.TensorProto.FLOAT
DOUBLE = 11  # onnx.TensorProto.DOUBLE

LINEAR = ("LogisticRegression", "LogisticRegressionCV", "Ridge", "RidgeCV", "LinearRegression",
          "Lasso", "ElasticNet")  # fmt: skip
FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
           "ExtraTreesRegressor")  # fmt: skip
HIST_GB = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
SKLEARN = (
    *LINEAR, *FORESTS, *HIST_GB, "MLPClassifier", "MLPRegressor", "KNeighborsClassifier",
    "KNeighborsRegressor", "CalibratedClassifierCV", "SVR", "LinearSVR",
)  # fmt: skip
#: scikit-learn estimators whose graph takes float32: the forests cast their input to
#: float32 themselves, and onnxruntime's SVM operators exist for float32 only.
FLOAT_INPUT = (*FORESTS, "SVR", "SVC")


class ConverterError(ValueError):
    """The estimator has no converter here, or its converter refused it."""


@dataclass
class EstimatorGraph:
    """An estimator's ONNX model and the element type its ``input`` expects."""

    model: Any
    input_type: int
    route: str  # sklearn, lightgbm, xgboost or catboost


def route(estimator: Any) -> str:
    """Which converter handles ``estimator``; ConverterError names the supported ones."""
    module = type(estimator).__module__.split(".")[0]
    if module in ("lightgbm", "xgboost", "catboost"):
        return module
    name = type(estimator).__name__
    if name == "TransformedTargetRegressor":
        return route(estimator.regressor_)
    if module == "sklearn" and name in SKLEARN:
        return "sklearn"
    raise ConverterError(
        f"estimator {name} ({module}) has no ONNX converter here; supported: "
        f"{', '.join(SKLEARN)}, LightGBM, XGBoost, CatBoost"
    )


def estimator_graph(estimator: Any, n_features: int) -> EstimatorGraph:
    """The ONNX model of a fitted estimator taking ``n_features`` columns."""
    kind = route(estimator)
    if kind == "sklearn":
        return _sklearn(estimator, n_features)
    if kind == "lightgbm":
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        model = convert_lightgbm(
            estimator, initial_types=[("input", FloatTensorType([None, n_features]))],
            zipmap=False, target_opset=15,
        )  # fmt: skip
        _double_thresholds(model, _lightgbm_thresholds(estimator))
        return EstimatorGraph(model, DOUBLE, kind)
    if kind == "xgboost":
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        if getattr(estimator, "device", "cpu") != "cpu":
            estimator.set_params(device="cpu")
        model = convert_xgboost(
            estimator, initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=15,
        )  # fmt: skip
        return EstimatorGraph(model, FLOAT, kind)
    import onnx

    with tempfile.TemporaryDirectory() as folder:  # catboost's own exporter
        path = Path(folder) / "catboost.onnx"
        estimator.save_model(str(path), format="onnx")
        return EstimatorGraph(onnx.load(str(path)), FLOAT, kind)


# --- scikit-learn ------------------------------------------------------------------------


def _sklearn(estimator: Any, n_features: int) -> EstimatorGraph:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    inner, target_scaler = _target_transform(estimator)
    name = _base_name(inner)
    if name in HIST_GB and np.any(getattr(inner, "is_categorical_", None) is not None
                                  and inner.is_categorical_):  # fmt: skip
        raise ConverterError(
            f"{name} with native categorical splits has no ONNX converter (skl2onnx "
            "supports numeric splits only)"
        )
    input_type = FLOAT if name in FLOAT_INPUT or name in HIST_GB else DOUBLE
    tensor = FloatTensorType if input_type == FLOAT else DoubleTensorType
    options = {id(inner): {"zipmap": False}} if hasattr(inner, "classes_") else None
    with _hist_gb_leaf_flags():
        model = convert_sklearn(
            inner, initial_types=[("input", tensor([None, n_features]))], options=options,
            target_opset={"": 17, "ai.onnx.ml": 3},
        )  # fmt: skip
    if name in HIST_GB:
        _double_thresholds(model, _hist_gb_thresholds(inner))
        input_type = DOUBLE
    elif name in FORESTS:
        _forest_missing_directions(model, inner)
    elif name.startswith("KNeighbors"):
        _knn_positive_distances(model)
    if target_scaler is not None:
        _append_affine(model, target_scaler)
    return EstimatorGraph(model, input_type, "sklearn")


def _base_name(estimator: Any) -> str:
    name = type(estimator).__name__
    if name == "CalibratedClassifierCV":
        return type(estimator.calibrated_classifiers_[0].estimator).__name__
    return name


def _target_transform(estimator: Any) -> tuple[Any, Any]:
    """(regressor, fitted target StandardScaler or None) of a TransformedTargetRegressor."""
    if type(estimator).__name__ != "TransformedTargetRegressor":
        return estimator, None
    scaler = estimator.transformer_
    if type(scaler).__name__ != "StandardScaler":
        raise ConverterError(
            f"TransformedTargetRegressor with a {type(scaler).__name__} target transform has "
            "no ONNX translation here (only StandardScaler)"
        )
    return estimator.regressor_, scaler


def _append_affine(model: Any, scaler: Any) -> None:
    """Undo a StandardScaler target transform: ``value * scale + mean`` on the output."""
    from onnx import helper, numpy_helper

    output = model.graph.output[0]
    elem = output.type.tensor_type.elem_type
    dtype = np.float32 if elem == FLOAT else np.float64
    raw = f"{output.name}_scaled"
    for node in model.graph.node:
        node.output[:] = [raw if o == output.name else o for o in node.output]
        node.input[:] = [raw if i == output.name else i for i in node.input]
    scale = np.asarray(scaler.scale_ if scaler.scale_ is not None else [1.0], dtype=dtype)
    mean = np.asarray(scaler.mean_ if scaler.mean_ is not None else [0.0], dtype=dtype)
    model.graph.initializer.extend([
        numpy_helper.from_array(scale.reshape(1, -1), "target_scale"),
        numpy_helper.from_array(mean.reshape(1, -1), "target_mean"),
    ])  # fmt: skip
    model.graph.node.extend([
        helper.make_node("Mul", [raw, "target_scale"], [f"{raw}_times"]),
        helper.make_node("Add", [f"{raw}_times", "target_mean"], [output.name]),
    ])  # fmt: skip


@contextlib.contextmanager
def _hist_gb_leaf_flags() -> Iterator[None]:
    """skl2onnx 1.20 gives HistGradientBoosting leaves a Python ``False`` missing-value
    flag, which protobuf refuses in an int list; pass it as 0 while converting."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args: Any, **kwargs: Any) -> Any:
        flag = kwargs.get("nodes_missing_value_tracks_true")
        if flag is not None:
            kwargs["nodes_missing_value_tracks_true"] = int(flag)
        return original(*args, **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


# --- corrections on converted tree graphs -------------------------------------------------


def _tree_nodes(model: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            yield node, {a.name: a for a in node.attribute}


def _lightgbm_thresholds(estimator: Any) -> dict[tuple[int, float], float]:
    lookup: dict[tuple[int, float], float] = {}

    def walk(tree: dict) -> None:
        if "threshold" in tree and "split_feature" in tree:
            if tree.get("decision_type", "<=") == "<=":  # categorical ones list codes: "2||3"
                value = float(tree["threshold"])
                lookup.setdefault((int(tree["split_feature"]), float(np.float32(value))), value)
            walk(tree["left_child"])
            walk(tree["right_child"])

    for tree in estimator.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return lookup


def _hist_gb_thresholds(estimator: Any) -> dict[tuple[int, float], float]:
    lookup: dict[tuple[int, float], float] = {}
    for iteration in estimator._predictors:
        for predictor in iteration:
            for node in predictor.nodes:
                if not node["is_leaf"]:
                    value = float(node["num_threshold"])
                    lookup.setdefault((int(node["feature_idx"]), float(np.float32(value))), value)
    return lookup


def _double_thresholds(model: Any, lookup: dict[tuple[int, float], float]) -> None:
    """Give the tree nodes the library's own float64 thresholds and take float64 input.

    The converters store thresholds as float32, so a value between float32(t) and t goes
    the other way than in the library (which compares in float64). Each float32 threshold
    is mapped back to the float64 one of the same feature (ai.onnx.ml v3
    ``nodes_values_as_tensor``).
    """
    from onnx import helper, numpy_helper

    for node, attributes in _tree_nodes(model):
        modes = list(attributes["nodes_modes"].strings)
        features = list(attributes["nodes_featureids"].ints)
        values = [
            lookup.get((feature, value), value) if mode != b"LEAF" else 0.0
            for value, mode, feature in zip(
                attributes["nodes_values"].floats, modes, features, strict=True
            )
        ]
        node.attribute.remove(attributes["nodes_values"])
        node.attribute.append(
            helper.make_attribute(
                "nodes_values_as_tensor", numpy_helper.from_array(np.asarray(values, np.float64))
            )
        )
    model.graph.input[0].type.tensor_type.elem_type = DOUBLE


def _forest_missing_directions(model: Any, forest: Any) -> None:
    """Send NaN to the child scikit-learn sends it to (``tree_.missing_go_to_left``)."""
    from onnx import helper

    trees = [t.tree_ for t in forest.estimators_]
    if not all(hasattr(t, "missing_go_to_left") for t in trees):
        return
    for node, attributes in _tree_nodes(model):
        flags = [
            int(trees[tree].missing_go_to_left[index])
            for tree, index in zip(
                attributes["nodes_treeids"].ints, attributes["nodes_nodeids"].ints, strict=True
            )
        ]
        if "nodes_missing_value_tracks_true" in attributes:
            node.attribute.remove(attributes["nodes_missing_value_tracks_true"])
        node.attribute.append(helper.make_attribute("nodes_missing_value_tracks_true", flags))


def _knn_positive_distances(model: Any) -> None:
    """Undo skl2onnx's sign flip of TopK's (already positive) neighbour distances."""
    from onnx import numpy_helper

    topk_values = {n.output[0] for n in model.graph.node if n.op_type == "TopK"}
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Mul" or node.input[0] not in topk_values:
            continue
        constant = initializers.get(node.input[1])
        if constant is None:
            continue
        value = numpy_helper.to_array(constant)
        if value.size == 1 and float(value.ravel()[0]) == -1.0:
            constant.CopyFrom(numpy_helper.from_array(-value, constant.name))
