"""Export a fitted model (preprocessor + estimator) to ONNX and verify it against the model.

The graph takes two inputs: ``numeric`` (float64, one column per numeric feature, NaN =
missing) and ``categorical`` (string, one column per categorical feature, ``MISSING`` =
missing; values are ``str()`` of the raw value, as pandas' ``astype("string")`` writes
them). The preprocessor part (median imputation, standard scaling, most-frequent
imputation, one-hot encoding with infrequent categories) is built node by node from the
fitted ``ColumnTransformer``, because skl2onnx cannot convert the prep stage's
``FunctionTransformer(astype("string"))`` and ``pd.NA`` imputer. The estimator part comes
from skl2onnx (linear), onnxmltools (LightGBM, XGBoost) or CatBoost's own exporter, and
the two graphs are chained with ``onnx.compose``. Label decoding stays outside the graph:
the class labels are stored in the JSON sidecar written next to the model.

Supported: MeshModel (families linear, lightgbm, xgboost, catboost) and a scikit-learn
``Pipeline([ColumnTransformer, estimator])`` of those estimators. ``dummy`` models and
other transformers raise :class:`OnnxUnsupportedError` with the reason.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MISSING = "\u0000missing"
SIDECAR_SUFFIX = ".json"
PROBA_TOLERANCE = 1e-4
REGRESSION_RELATIVE_TOLERANCE = 1e-4


class OnnxUnsupportedError(ValueError):
    """The model holds a part that this exporter cannot express in ONNX."""


@dataclass
class OnnxSpec:
    """What a runtime needs besides the graph: input columns, labels and output names."""

    numeric_columns: list[str]
    categorical_columns: list[str]
    problem_type: str
    classes: list[Any]
    label_output: str  # "index" (labels index ``classes``), "value" or "none" (regression)
    family: str
    verified: bool = False
    verification: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OnnxVerification:
    """Comparison of ONNX and in-process predictions on the same rows."""

    passed: bool
    rows: int
    label_mismatches: int
    max_proba_diff: float
    max_relative_diff: float
    reason: str


# --- model anatomy -----------------------------------------------------------------------


def _parts(model: Any) -> tuple[Any, Any, str, list[Any], str]:
    """(preprocessor, estimator, problem_type, classes, label_output) of a supported model."""
    from sklearn.pipeline import Pipeline

    if getattr(model, "family", "") == "ensemble":
        members = [getattr(m, "family", "?") for m in getattr(model, "members_", [])]
        raise OnnxUnsupportedError(
            f"the model is a {getattr(model, 'kind', '')} ensemble of {', '.join(members)}; "
            "ONNX export covers single models only - serve it with the sklearn backend "
            "(model.joblib)"
        )
    if hasattr(model, "preprocessor_") and hasattr(model, "estimator_"):
        problem = str(model.problem_type)
        if getattr(model, "family", "") == "dummy":
            raise OnnxUnsupportedError(
                "family 'dummy' has no ONNX converter (a constant baseline needs no "
                "runtime); serve it with the sklearn backend"
            )
        classes = list(model.classes_) if problem != "regression" else []
        return model.preprocessor_, model.estimator_, problem, classes, "index"
    if isinstance(model, Pipeline) and len(model.steps) == 2:
        estimator = model.steps[-1][1]
        classes = list(getattr(estimator, "classes_", []))
        problem = "regression" if not classes else ("binary" if len(classes) == 2 else "multiclass")
        return model.steps[0][1], estimator, problem, classes, "value" if classes else "none"
    raise OnnxUnsupportedError(
        f"{type(model).__name__} is neither a MeshModel nor a Pipeline([ColumnTransformer, "
        "estimator]); ONNX export supports only those"
    )


def _family(estimator: Any) -> str:
    module = type(estimator).__module__.split(".")[0]
    if module in ("lightgbm", "xgboost", "catboost"):
        return module
    name = type(estimator).__name__
    if name in ("LogisticRegression", "Ridge", "LinearRegression"):
        return "linear"
    raise OnnxUnsupportedError(
        f"estimator {name} ({module}) has no ONNX converter here; supported: "
        "LogisticRegression, Ridge, LinearRegression, LightGBM, XGBoost, CatBoost"
    )


# --- preprocessor graph ------------------------------------------------------------------


@dataclass
class _Columns:
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)


def _steps(transformer: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    return [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]


def _is_string_cast(step: Any) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    return (
        isinstance(step, FunctionTransformer)
        and "astype" in repr(step.func)
        and ("string" in repr(step.func) or "str" in repr(step.func))
    )


def _translated_steps() -> tuple[type, ...]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return (SimpleImputer, StandardScaler, OneHotEncoder)


_TRANSLATED_STEPS = _translated_steps()


def _classify_columns(preprocessor: Any) -> tuple[_Columns, list[tuple[str, list[str], list]]]:
    """Which columns are numeric/categorical, and each transformer's (kind, columns, steps)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    if not isinstance(preprocessor, ColumnTransformer):
        raise OnnxUnsupportedError(
            f"preprocessor is a {type(preprocessor).__name__}; expected a ColumnTransformer"
        )
    columns = _Columns()
    blocks = []
    for name, transformer, cols in preprocessor.transformers_:
        if transformer == "drop" or (name == "remainder" and not len(cols)):
            continue
        if transformer == "passthrough" or not isinstance(cols, list | tuple):
            raise OnnxUnsupportedError(
                f"transformer {name!r} ({transformer!r}) with columns {cols!r} is not supported; "
                "use pipelines over named columns and remainder='drop'"
            )
        steps = _steps(transformer)
        kind = "categorical" if any(isinstance(s, OneHotEncoder) for s in steps) else "numeric"
        untranslatable = [type(s).__name__ for s in steps
                          if not (_is_string_cast(s) or isinstance(s, _TRANSLATED_STEPS))]
        if untranslatable:
            raise OnnxUnsupportedError(
                f"transformer {name!r} uses {', '.join(untranslatable)}, which has no ONNX "
                "translation here (only imputation, scaling and one-hot encoding do)"
            )
        getattr(columns, kind).extend(str(c) for c in cols)
        blocks.append((kind, [str(c) for c in cols], steps))
    return columns, blocks


def _preprocessor_graph(
    preprocessor: Any,
    opsets: dict[str, int],
    ir_version: int,
    n_features: int,
    features_type: int,
):
    """An ONNX model mapping (numeric, categorical) inputs to the ``features`` tensor."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns, blocks = _classify_columns(preprocessor)
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = iter(range(1_000_000))

    def name(prefix: str) -> str:
        return f"pre_{prefix}_{next(counter)}"

    def const(values: Any, dtype: Any = np.float64) -> str:
        key = name("c")
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), key))
        return key

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def take(source: str, index: int) -> str:
        return node("Gather", [source, const([index], np.int64)], axis=1)

    outputs: list[str] = []
    for kind, cols, steps in blocks:
        source = "numeric" if kind == "numeric" else "categorical"
        pool = columns.numeric if kind == "numeric" else columns.categorical
        for position, column in enumerate(cols):
            value = take(source, pool.index(column))
            imputed = MISSING
            for step in steps:
                if _is_string_cast(step):
                    continue
                if isinstance(step, SimpleImputer):
                    stat = step.statistics_[position]
                    if step.strategy not in ("median", "mean", "most_frequent", "constant"):
                        raise OnnxUnsupportedError(f"SimpleImputer strategy {step.strategy}")
                    if getattr(step, "add_indicator", False):
                        raise OnnxUnsupportedError("SimpleImputer(add_indicator=True)")
                    if kind == "numeric":
                        if stat is None or (isinstance(stat, float) and math.isnan(stat)):
                            raise OnnxUnsupportedError(f"column {column!r} was all missing")
                        value = node(
                            "Where", [node("IsNaN", [value]), const([[float(stat)]]), value]
                        )
                    else:
                        imputed = str(stat)
                elif isinstance(step, StandardScaler) and kind == "numeric":
                    if step.with_mean:
                        value = node("Sub", [value, const([[step.mean_[position]]])])
                    if step.with_std and step.scale_ is not None:
                        value = node("Div", [value, const([[step.scale_[position]]])])
                elif isinstance(step, OneHotEncoder):
                    value = _one_hot(step, position, column, value, imputed, node, const)
                else:
                    raise OnnxUnsupportedError(
                        f"{type(step).__name__} on column {column!r} has no ONNX translation here"
                    )
            if kind == "numeric" and features_type != TensorProto.DOUBLE:
                value = node("Cast", [value], to=features_type)  # computed in float64
            elif kind != "numeric":
                value = node("Cast", [value], to=features_type)
            outputs.append(value)
    nodes.append(helper.make_node("Concat", outputs, ["features"], axis=1))
    graph = helper.make_graph(
        nodes,
        "mlmesh_preprocessor",
        [
            helper.make_tensor_value_info(
                "numeric", TensorProto.DOUBLE, [None, len(columns.numeric)]
            ),
            helper.make_tensor_value_info(
                "categorical", TensorProto.STRING, [None, len(columns.categorical)]
            ),
        ],
        [helper.make_tensor_value_info("features", features_type, [None, n_features])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    return model, columns


def _one_hot(step: Any, position: int, column: str, value: str, imputed: str, node, const) -> str:
    """One-hot columns for one string column: LabelEncoder to a slot, then Equal per slot.

    Missing values (``MISSING``) take the imputed category's slot; infrequent categories
    share the last slot; unknown categories get no slot (all zeros) unless
    handle_unknown='infrequent_if_exist' sends them to the infrequent slot.
    """
    if step.drop is not None:
        raise OnnxUnsupportedError("OneHotEncoder(drop=...) is not supported")
    if step.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise OnnxUnsupportedError(f"OneHotEncoder(handle_unknown={step.handle_unknown!r})")
    categories = list(step.categories_[position])
    if not all(isinstance(c, str) for c in categories):
        raise OnnxUnsupportedError(
            f"column {column!r} has non-string categories; cast categories to strings in prep"
        )
    infrequent = getattr(step, "infrequent_categories_", None)
    rare = (
        set(infrequent[position])
        if infrequent is not None and infrequent[position] is not None
        else set()
    )
    frequent = [c for c in categories if c not in rare]
    slots = {c: i for i, c in enumerate(frequent)}
    slots.update({c: len(frequent) for c in rare})
    n_slots = len(frequent) + (1 if rare else 0)
    unknown = len(frequent) if rare and step.handle_unknown == "infrequent_if_exist" else -1
    if imputed != MISSING:
        slots[MISSING] = slots.get(imputed, unknown)
    index = node(
        "LabelEncoder",
        [value],
        domain="ai.onnx.ml",
        keys_strings=list(slots),
        values_int64s=list(slots.values()),
        default_int64=unknown,
    )
    return node("Equal", [index, const([list(range(n_slots))], np.int64)])


# --- estimator graph ---------------------------------------------------------------------


def _estimator_graph(estimator: Any, family: str, n_features: int):
    import onnx
    from onnxmltools.convert.common.data_types import FloatTensorType as MlFloat
    from skl2onnx.common.data_types import FloatTensorType

    if family == "linear":
        from skl2onnx import convert_sklearn

        options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "classes_") else None
        return convert_sklearn(
            estimator,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options,
            target_opset={"": 15, "ai.onnx.ml": 3},
        )
    if family == "lightgbm":
        from onnxmltools import convert_lightgbm

        return convert_lightgbm(
            estimator,
            initial_types=[("input", MlFloat([None, n_features]))],
            zipmap=False,
            target_opset=15,
        )
    if family == "xgboost":
        from onnxmltools import convert_xgboost

        return convert_xgboost(
            estimator, initial_types=[("input", MlFloat([None, n_features]))], target_opset=15
        )
    with tempfile.TemporaryDirectory() as folder:  # catboost's own exporter
        path = Path(folder) / "catboost.onnx"
        estimator.save_model(str(path), format="onnx")
        return onnx.load(str(path))


def _lightgbm_double_thresholds(model: Any, estimator: Any) -> None:
    """Give the LightGBM tree nodes LightGBM's own float64 thresholds and take float64 input.

    onnxmltools stores thresholds as float32, so a value between float32(t) and t goes the
    other way than in LightGBM (which compares in float64). Each float32 threshold is mapped
    back to the float64 one of the same feature (ai.onnx.ml v3 ``nodes_values_as_tensor``).
    """
    from onnx import TensorProto, helper, numpy_helper

    lookup: dict[tuple[int, float], float] = {}

    def walk(tree: dict) -> None:
        if "threshold" in tree and "split_feature" in tree:
            value = float(tree["threshold"])
            lookup.setdefault((int(tree["split_feature"]), float(np.float32(value))), value)
            walk(tree["left_child"])
            walk(tree["right_child"])

    for tree in estimator.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    for onnx_node in model.graph.node:
        if not onnx_node.op_type.startswith("TreeEnsemble"):
            continue
        attributes = {a.name: a for a in onnx_node.attribute}
        modes = list(attributes["nodes_modes"].strings)
        features = list(attributes["nodes_featureids"].ints)
        values = [
            lookup.get((feature, value), value) if mode != b"LEAF" else 0.0
            for value, mode, feature in zip(
                attributes["nodes_values"].floats, modes, features, strict=True
            )
        ]
        onnx_node.attribute.remove(attributes["nodes_values"])
        onnx_node.attribute.append(
            helper.make_attribute(
                "nodes_values_as_tensor", numpy_helper.from_array(np.asarray(values, np.float64))
            )
        )
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE


def _align_opsets(model: Any) -> Any:
    """Upgrade the estimator graph's default opset to at least 13 (string Equal, Where)."""
    from onnx import version_converter

    default = {o.domain: o.version for o in model.opset_import}.get("", 13)
    if default < 13:
        model = version_converter.convert_version(model, 13)
    return model


def _set_opsets(model: Any, opsets: dict[str, int]) -> None:
    from onnx import helper

    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())


def export_onnx(model: Any, path: Path) -> OnnxSpec:
    """Write ``model`` as one ONNX graph to ``path`` and its spec to ``path + .json``.

    Raises OnnxUnsupportedError naming the part that cannot be converted.
    """
    import onnx
    from onnx import compose

    preprocessor, estimator, problem, classes, label_output = _parts(model)
    family = _family(estimator)
    if family == "xgboost" and getattr(estimator, "device", "cpu") != "cpu":
        estimator.set_params(device="cpu")
    try:
        est_model = _estimator_graph(estimator, family, _n_features(preprocessor))
    except Exception as exc:  # converters raise RuntimeError/NotImplementedError/KeyError
        raise OnnxUnsupportedError(
            f"the {family} converter failed: {type(exc).__name__}: {exc}"
        ) from exc
    features_type = 1  # TensorProto.FLOAT
    if family == "lightgbm":
        _lightgbm_double_thresholds(est_model, estimator)
        features_type = 11  # TensorProto.DOUBLE
    est_model = _align_opsets(est_model)
    est_model.ir_version = max(est_model.ir_version, 8)
    opsets = {o.domain or "": o.version for o in est_model.opset_import}
    opsets[""] = max(opsets.get("", 15), 15)
    opsets["ai.onnx.ml"] = max(opsets.get("ai.onnx.ml", 2), 3 if family == "lightgbm" else 2)
    _set_opsets(est_model, opsets)
    pre_model, columns = _preprocessor_graph(
        preprocessor, opsets, est_model.ir_version, _n_features(preprocessor), features_type
    )
    est_model = compose.add_prefix(est_model, "est_")
    est_input = est_model.graph.input[0].name
    merged = compose.merge_models(pre_model, est_model, io_map=[("features", est_input)])
    onnx.checker.check_model(merged)
    path = Path(path)
    onnx.save(merged, str(path))
    spec = OnnxSpec(
        numeric_columns=columns.numeric,
        categorical_columns=columns.categorical,
        problem_type=problem,
        classes=[_native(c) for c in classes],
        label_output=label_output,
        family=family,
    )
    write_spec(spec, path)
    return spec


def _n_features(preprocessor: Any) -> int:
    names = preprocessor.get_feature_names_out()
    return len(names)


# --- running and verifying ---------------------------------------------------------------


def write_spec(spec: OnnxSpec, onnx_path: Path) -> Path:
    """Write the sidecar JSON next to the graph and return its path."""
    target = Path(str(onnx_path) + SIDECAR_SUFFIX)
    target.write_text(json.dumps(asdict(spec), indent=2, default=str) + "\n")
    return target


def read_spec(onnx_path: Path) -> OnnxSpec:
    """Read the sidecar JSON of an exported graph."""
    return OnnxSpec(**json.loads(Path(str(onnx_path) + SIDECAR_SUFFIX).read_text()))


def onnx_inputs(frame: pd.DataFrame, spec: OnnxSpec) -> dict[str, np.ndarray]:
    """The graph's inputs for a frame of raw feature values."""
    numeric = frame[spec.numeric_columns].apply(pd.to_numeric, errors="coerce")
    categorical = frame[spec.categorical_columns].astype("string").fillna(MISSING)
    return {
        "numeric": numeric.to_numpy(dtype=np.float64).reshape(len(frame), -1),
        "categorical": categorical.to_numpy(dtype=object).reshape(len(frame), -1),
    }


def decode_outputs(outputs: list[Any], spec: OnnxSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions, probabilities or None) from the graph's outputs, labels decoded."""
    if spec.problem_type == "regression":
        return np.asarray(outputs[0], dtype=np.float64).ravel(), None
    labels = np.asarray(outputs[0]).ravel()
    raw = outputs[1]
    if isinstance(raw, list):  # a sequence of {class: p} maps (CatBoost)
        keys = sorted(raw[0]) if raw else []
        raw = [[row[k] for k in keys] for row in raw]
    proba = np.asarray(raw, dtype=np.float64).reshape(len(labels), -1)
    proba = proba / proba.sum(axis=1, keepdims=True)
    if spec.label_output == "index":
        labels = np.asarray(spec.classes, dtype=object)[labels.astype(np.int64)]
    return labels, proba


def predict_onnx(onnx_path: Path, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the exported graph on ``frame`` with onnxruntime."""
    import onnxruntime as ort

    spec = read_spec(onnx_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return decode_outputs(session.run(None, onnx_inputs(frame, spec)), spec)


def verify_onnx(onnx_path: Path, model: Any, frame: pd.DataFrame) -> OnnxVerification:
    """Compare ONNX with ``model`` on ``frame``; record the outcome in the sidecar JSON.

    Passes when labels are equal and probabilities differ by at most 1e-4 (classifiers),
    or values agree within 1e-4 relative (regression).
    """
    spec = read_spec(onnx_path)
    labels, proba = predict_onnx(onnx_path, frame)
    expected = np.asarray(model.predict(frame))
    rows = len(frame)
    if spec.problem_type == "regression":
        scale = np.maximum(np.abs(expected.astype(np.float64)), 1.0)
        relative = float(np.max(np.abs(labels - expected) / scale)) if rows else 0.0
        passed = relative <= REGRESSION_RELATIVE_TOLERANCE
        result = OnnxVerification(
            passed,
            rows,
            0,
            0.0,
            relative,
            ""
            if passed
            else f"regression outputs differ by {relative:.3g} relative "
            f"(> {REGRESSION_RELATIVE_TOLERANCE})",
        )
    else:
        mismatches = int(np.sum(np.asarray(labels, dtype=object) != expected.astype(object)))
        diff = float(np.max(np.abs(proba - model.predict_proba(frame)))) if rows else 0.0
        passed = mismatches == 0 and diff <= PROBA_TOLERANCE
        reasons = []
        if mismatches:
            reasons.append(f"{mismatches} of {rows} labels differ")
        if diff > PROBA_TOLERANCE:
            reasons.append(f"probabilities differ by up to {diff:.3g} (> {PROBA_TOLERANCE})")
        result = OnnxVerification(passed, rows, mismatches, diff, 0.0, "; ".join(reasons))
    spec.verified = result.passed
    spec.verification = asdict(result)
    write_spec(spec, onnx_path)
    return result


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
