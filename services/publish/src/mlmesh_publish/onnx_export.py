"""Export a fitted model (preprocessor + estimator, or an ensemble of them) to ONNX and
verify it against the model.

The graph takes two inputs: ``numeric`` (float64, one column per numeric feature, NaN =
missing) and ``categorical`` (string, one column per categorical feature, ``MISSING`` =
missing; values are ``str()`` of the raw value, as pandas' ``astype("string")`` writes
them). The preprocessor part (median imputation, quantile clipping, standard scaling,
most-frequent or constant imputation, one-hot and ordinal encoding with infrequent
categories) is built node by node from the fitted ``ColumnTransformer``, because skl2onnx
cannot convert the prep stage's ``FunctionTransformer(astype("string"))`` and ``pd.NA``
imputer. The estimator part comes from :mod:`mlmesh_publish.onnx_estimators` and the two
graphs are chained with ``onnx.compose``. An ensemble's graph holds every member's graph
and blends them as the ensemble does (Caruana weights, or the stacking meta-learner on the
members' logits). Label decoding stays outside the graph: the class labels are stored in
the JSON sidecar written next to the model.

Supported: MeshModel of every family but dummy, autogluon and gaussian_process, an
EnsembleModel of those, and a scikit-learn ``Pipeline([ColumnTransformer, estimator])``.
Anything else raises :class:`OnnxUnsupportedError` with the reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlmesh_common.preprocessing import GROUP_OPS, MISSING_GROUP_KEY, ROW_OPS
from mlmesh_publish.onnx_estimators import ConverterError, estimator_graph, route

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
    #: False when onnxruntime serves this graph slower than the sklearn backend: a KNN graph
    #: computes the distance to every training row in a Scan (37 ms against 3.5 ms for one
    #: row with 20,000 training rows). The serving app then defaults to sklearn.
    preferred: bool = True


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

    if hasattr(model, "preprocessor_") and hasattr(model, "estimator_"):
        problem = str(model.problem_type)
        if getattr(model, "family", "") == "dummy":
            raise OnnxUnsupportedError(
                "family 'dummy' has no ONNX converter (a constant baseline needs no "
                "runtime); serve it with the sklearn backend"
            )
        if model.preprocessor_ is None:
            raise OnnxUnsupportedError(
                f"family {model.family!r} is fitted on the raw columns (no preprocessor) and "
                "has no ONNX converter; serve it with the sklearn backend"
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
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

    from mlmesh_common.preprocessing import NumericImputer, QuantileClipper

    return (SimpleImputer, NumericImputer, QuantileClipper, StandardScaler, OneHotEncoder,
            OrdinalEncoder, TargetEncoder)  # fmt: skip


_TRANSLATED_STEPS = _translated_steps()


def _classify_columns(preprocessor: Any) -> tuple[_Columns, list[tuple[str, list[str], list]]]:
    """Which columns are numeric/categorical, and each transformer's (kind, columns, steps)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    if isinstance(preprocessor, Pipeline):
        raise OnnxUnsupportedError(
            "the preprocessor runs "
            + ", ".join(type(s).__name__ for _, s in preprocessor.steps)
            + "; only a FeatureGenerator followed by a ColumnTransformer is translated"
        )
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
        encoders = (OneHotEncoder, OrdinalEncoder, TargetEncoder)
        kind = ("categorical" if any(_is_string_cast(s) or isinstance(s, encoders) for s in steps)
                else "numeric")  # fmt: skip
        untranslatable = [
            type(s).__name__
            for s in steps
            if not (_is_string_cast(s) or isinstance(s, _TRANSLATED_STEPS))
        ]
        if untranslatable:
            raise OnnxUnsupportedError(
                f"transformer {name!r} uses {', '.join(untranslatable)}, which has no ONNX "
                "translation here (imputation by a constant or statistic with missing "
                "indicators, clipping, scaling, one-hot, ordinal and target encoding do)"
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
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

    from mlmesh_common.preprocessing import NumericImputer, QuantileClipper

    generator, transformer = _split_generator(preprocessor)
    columns, blocks = _classify_columns(transformer)
    specs = {s["name"]: s for s in generator.specs_} if generator is not None else {}
    columns.numeric = [c for c in columns.numeric if c not in specs]
    for spec in specs.values():  # the raw columns the generated features read
        keys = spec["inputs"][:1] if spec["op"] in GROUP_OPS else []
        numbers = spec["inputs"][1:] if spec["op"] in GROUP_OPS else spec["inputs"]
        columns.categorical.extend(c for c in keys if c not in columns.categorical)
        columns.numeric.extend(c for c in numbers if c not in columns.numeric)
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

    made: dict[str, str] = {}

    def number(column: str) -> str:
        """A numeric column (N x 1, float64): raw input or generated feature."""
        if column not in specs:
            return take("numeric", columns.numeric.index(column))
        if column not in made:
            made[column] = _generated(
                specs[column], generator, number,
                lambda c: take("categorical", columns.categorical.index(c)), node, const,
            )  # fmt: skip
        return made[column]

    outputs: list[str] = []
    for kind, cols, steps in blocks:
        for column, position, indicator in _lanes(cols, steps):
            if kind == "numeric":
                value, value_type = number(column), TensorProto.DOUBLE
            else:
                value = take("categorical", columns.categorical.index(column))
                value_type = TensorProto.STRING
            at = [position]  # the lane's columns in the current step's input
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
                    if value_type == TensorProto.DOUBLE:
                        if stat is None or (isinstance(stat, float) and math.isnan(stat)):
                            raise OnnxUnsupportedError(f"column {column!r} was all missing")
                        value = node(
                            "Where", [node("IsNaN", [value]), const([[float(stat)]]), value]
                        )
                    else:
                        imputed = str(stat)
                elif isinstance(step, NumericImputer) and value_type == TensorProto.DOUBLE:
                    if indicator:
                        value = node("Cast", [node("IsNaN", [value])], to=TensorProto.DOUBLE)
                        continue
                    strategy = step.strategy_per_column_[position]
                    if strategy not in ("median", "mean"):
                        raise OnnxUnsupportedError(
                            f"{strategy} imputation of column {column!r} has no ONNX "
                            "translation here (median and mean do)"
                        )
                    fill = (step.means_ if strategy == "mean" else step.medians_)[position]
                    value = node("Where", [node("IsNaN", [value]), const([[fill]]), value])
                elif isinstance(step, QuantileClipper) and value_type == TensorProto.DOUBLE:
                    clipped = list(step.positions_)
                    if at[0] in clipped:
                        where = clipped.index(at[0])
                        low = float(step.lower_bounds_[where])
                        high = float(step.upper_bounds_[where])
                        value = node("Min", [node("Max", [value, const([[low]])]),
                                             const([[high]])])  # fmt: skip
                elif isinstance(step, StandardScaler) and value_type == TensorProto.DOUBLE:
                    if step.with_mean:
                        value = node("Sub", [value, const([step.mean_[at]])])
                    if step.with_std and step.scale_ is not None:
                        value = node("Div", [value, const([step.scale_[at]])])
                elif isinstance(step, OneHotEncoder) and value_type == TensorProto.STRING:
                    value = _one_hot(step, position, column, value, imputed, node, const)
                    value_type = TensorProto.BOOL
                elif isinstance(step, OrdinalEncoder) and value_type == TensorProto.STRING:
                    value = node("Cast", [_ordinal(step, position, column, value, imputed,
                                                   node)], to=TensorProto.DOUBLE)  # fmt: skip
                    value_type = TensorProto.DOUBLE
                elif isinstance(step, TargetEncoder) and value_type == TensorProto.STRING:
                    value, at = _target_encoded(step, position, column, value, imputed, node,
                                                const)  # fmt: skip
                    value_type = TensorProto.DOUBLE
                else:
                    raise OnnxUnsupportedError(
                        f"{type(step).__name__} on column {column!r} has no ONNX translation here"
                    )
            if value_type == TensorProto.STRING:
                raise OnnxUnsupportedError(
                    f"categorical column {column!r} is not encoded (no one-hot, ordinal or "
                    "target encoding step)"
                )
            if value_type != features_type:
                value = node("Cast", [value], to=features_type)  # computed in float64
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


def _lanes(cols: list[str], steps: list[Any]) -> list[tuple[str, int, bool]]:
    """(column, position, is a missing indicator) for each output column of a block: its
    columns, then the missing indicators a NumericImputer appends after them."""
    from mlmesh_common.preprocessing import NumericImputer

    lanes = [(column, position, False) for position, column in enumerate(cols)]
    for step in steps:
        if isinstance(step, NumericImputer):
            lanes += [(cols[p], len(cols) + j, True)
                      for j, p in enumerate(step.indicator_positions_)]  # fmt: skip
    return lanes


def _target_encoded(
    step: Any, position: int, column: str, value: str, imputed: str, node, const
) -> tuple[str, list[int]]:
    """Target encoding of one string column (N x 1, or N x classes for a multiclass target)
    and its output positions; unseen categories get the target mean, as in scikit-learn."""
    categories = [str(c) for c in step.categories_[position]]
    slots = {c: i for i, c in enumerate(categories)}
    if imputed != MISSING and imputed in slots:
        slots[MISSING] = slots[imputed]
    index = node(
        "LabelEncoder", [value], domain="ai.onnx.ml", keys_strings=list(slots),
        values_int64s=list(slots.values()), default_int64=len(categories),
    )  # fmt: skip
    if step.target_type_ != "multiclass":
        table = np.append(np.asarray(step.encodings_[position], dtype=np.float64),
                          float(step.target_mean_))  # fmt: skip
        return node("Gather", [const(table), index], axis=0), [position]
    k = len(step.classes_)
    columns = [np.asarray(step.encodings_[position * k + j], dtype=np.float64) for j in range(k)]
    table = np.vstack([np.column_stack(columns), np.asarray(step.target_mean_).reshape(1, k)])
    flat = node("Reshape", [index, const([-1], np.int64)])
    return node("Gather", [const(table), flat], axis=0), [position * k + j for j in range(k)]


def _split_generator(preprocessor: Any) -> tuple[Any, Any]:
    """(FeatureGenerator or None, ColumnTransformer) of prep's preprocessor."""
    from sklearn.pipeline import Pipeline

    from mlmesh_common.preprocessing import FeatureGenerator

    if isinstance(preprocessor, Pipeline) and len(preprocessor.steps) == 2:
        first, second = (step for _, step in preprocessor.steps)
        if isinstance(first, FeatureGenerator):
            return first, second
    return None, preprocessor


def _generated(spec: dict[str, Any], generator: Any, number, key, node, const) -> str:
    """One FeatureGenerator column (N x 1, float64) computed as ``generator.transform`` does:
    row operations with NaN for undefined results, group statistics looked up by category
    (unseen ones get the overall value) and principal components of standardised inputs."""
    from onnx import TensorProto

    op, inputs, name = spec["op"], list(spec["inputs"]), spec["name"]
    nan = const([[np.nan]])
    if op in ROW_OPS:
        a = number(inputs[0])
        b = number(inputs[1]) if len(inputs) > 1 else a
        if op in ("mul", "add", "sub"):
            out = node(op.capitalize(), [a, b])
        elif op == "square":
            out = node("Mul", [a, a])
        elif op == "abs":
            out = node("Abs", [a])
        elif op == "div":
            nonzero = node("Not", [node("Equal", [b, const([[0.0]])])])
            safe = node("Where", [nonzero, b, const([[1.0]])])
            out = node("Where", [nonzero, node("Div", [a, safe]), nan])
        else:  # log (a > 0) or sqrt (a >= 0)
            valid = node("Greater" if op == "log" else "GreaterOrEqual", [a, const([[0.0]])])
            safe = node("Where", [valid, a, const([[1.0]])])
            out = node("Where", [valid, node("Log" if op == "log" else "Sqrt", [safe]), nan])
        return node("Where", [node("IsInf", [out]), nan, out])
    if op in GROUP_OPS:
        table, overall = generator.group_stats_[name]
        keys = [MISSING if k == MISSING_GROUP_KEY else k for k in table]
        index = node(
            "LabelEncoder", [key(inputs[0])], domain="ai.onnx.ml", keys_strings=keys,
            values_int64s=list(range(len(keys))), default_int64=len(keys),
        )  # fmt: skip
        return node("Gather", [const([*table.values(), overall]), index], axis=0)
    med, mean, std, pca = generator.pca_[tuple(inputs)]
    component = int(spec.get("component", 0))
    if component >= pca.components_.shape[0]:
        raise OnnxUnsupportedError(f"generated feature {name!r} asks for a missing component")
    values = node("Concat", [number(c) for c in inputs], axis=1)
    filled = node("Where", [node("IsNaN", [values]), const([med]), values])
    scaled = node("Div", [node("Sub", [filled, const([mean])]), const([std])])
    centred = node("Sub", [scaled, const([pca.mean_])])
    weights = const(pca.components_[component].reshape(-1, 1))
    out = node("MatMul", [centred, weights])
    return node("Cast", [out], to=TensorProto.DOUBLE)


def _category_slots(
    step: Any, position: int, column: str, imputed: str, unknown_to_infrequent: bool
) -> tuple[dict[str, int], int, int | None]:
    """(category -> slot, number of slots, slot of unknown categories or None) of an encoder.

    Frequent categories take slots in the encoder's order, infrequent ones share the slot
    after them. Missing values (``MISSING``) take the imputed category's slot.
    """
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
    unknown = len(frequent) if rare and unknown_to_infrequent else None
    if imputed != MISSING and imputed in slots:
        slots[MISSING] = slots[imputed]
    elif imputed != MISSING and unknown is not None:
        slots[MISSING] = unknown
    return slots, len(frequent) + (1 if rare else 0), unknown


def _one_hot(step: Any, position: int, column: str, value: str, imputed: str, node, const) -> str:
    """One-hot columns for one string column: LabelEncoder to a slot, then Equal per slot.

    Unknown categories get no slot (all zeros) unless handle_unknown='infrequent_if_exist'
    sends them to the infrequent slot.
    """
    if step.drop is not None:
        raise OnnxUnsupportedError("OneHotEncoder(drop=...) is not supported")
    if step.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise OnnxUnsupportedError(f"OneHotEncoder(handle_unknown={step.handle_unknown!r})")
    slots, n_slots, unknown = _category_slots(
        step, position, column, imputed, step.handle_unknown == "infrequent_if_exist"
    )
    index = node(
        "LabelEncoder",
        [value],
        domain="ai.onnx.ml",
        keys_strings=list(slots),
        values_int64s=list(slots.values()),
        default_int64=-1 if unknown is None else unknown,
    )
    return node("Equal", [index, const([list(range(n_slots))], np.int64)])


def _ordinal(step: Any, position: int, column: str, value: str, imputed: str, node) -> str:
    """Ordinal codes (float32, exact for small integers) for one string column.

    Unknown categories take ``unknown_value`` (NaN or a number), as the encoder does with
    handle_unknown='use_encoded_value', and missing ones ``encoded_missing_value`` unless
    an imputer came first.
    """
    if step.handle_unknown != "use_encoded_value":
        raise OnnxUnsupportedError(
            f"OrdinalEncoder(handle_unknown={step.handle_unknown!r}) on column {column!r}; "
            "only 'use_encoded_value' is translated"
        )
    slots: dict[str, float] = dict(_category_slots(step, position, column, imputed, False)[0])
    if imputed == MISSING:  # no imputer before the encoder: missing is encoded as such
        slots[MISSING] = float(step.encoded_missing_value)
    return node(
        "LabelEncoder",
        [value],
        domain="ai.onnx.ml",
        keys_strings=list(slots),
        values_floats=[float(v) for v in slots.values()],
        default_float=float(step.unknown_value),
    )


# --- one model: preprocessor graph chained to the estimator graph -------------------------

#: Opsets of every exported graph (estimator graphs below 13 are converted first).
OPSETS = {"": 17, "ai.onnx.ml": 3}


@dataclass
class _Graph:
    """A graph from (numeric, categorical) inputs to its converter's outputs."""

    model: Any
    columns: _Columns
    problem: str
    classes: list[Any]
    label_output: str
    family: str


def _single_graph(model: Any) -> _Graph:
    import onnx
    from onnx import compose, version_converter

    preprocessor, estimator, problem, classes, label_output = _parts(model)
    try:
        kind = route(estimator)
        n_features = _n_features(preprocessor)
        converted = estimator_graph(estimator, n_features)
    except ConverterError as exc:
        raise OnnxUnsupportedError(str(exc)) from exc
    except Exception as exc:  # converters raise RuntimeError/NotImplementedError/KeyError
        raise OnnxUnsupportedError(
            f"the {kind} converter failed on {type(estimator).__name__}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    est_model = converted.model
    if {o.domain: o.version for o in est_model.opset_import}.get("", 13) < 13:
        est_model = version_converter.convert_version(est_model, 13)  # string Equal, Where
    est_model.ir_version = max(est_model.ir_version, 8)
    _set_opsets(est_model, OPSETS)
    pre_model, columns = _preprocessor_graph(
        preprocessor, OPSETS, est_model.ir_version, n_features, converted.input_type
    )
    est_model = compose.add_prefix(est_model, "est_")
    est_input = est_model.graph.input[0].name
    merged = compose.merge_models(pre_model, est_model, io_map=[("features", est_input)])
    onnx.checker.check_model(merged)
    family = str(getattr(model, "family", "") or kind)
    return _Graph(merged, columns, problem, classes, label_output, family)


def _set_opsets(model: Any, opsets: dict[str, int]) -> None:
    from onnx import helper

    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())


# --- ensembles: every member's graph in one, blended ---------------------------------------


class _Builder:
    """Nodes and constants of a graph under construction, with unique names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, kind: str) -> str:
        self._count += 1
        return f"{self.prefix}{kind}_{self._count}"

    def const(self, values: Any, dtype: Any = np.float64) -> str:
        from onnx import numpy_helper

        key = self.name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), key))
        return key

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = output or self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out


def _ensemble_graph(ensemble: Any) -> _Graph:
    """One graph computing every member and blending them as ``ensemble`` does."""
    import onnx
    from onnx import TensorProto, compose, helper

    members = list(getattr(ensemble, "members_", []))
    if not members:
        raise OnnxUnsupportedError("the ensemble is not fitted (no members_)")
    problem = str(ensemble.problem_type)
    classes = list(ensemble.classes_) if problem != "regression" else []
    graphs = []
    for index, member in enumerate(members):
        try:
            graph = _single_graph(member)
        except OnnxUnsupportedError as exc:
            raise OnnxUnsupportedError(
                f"ensemble member {index} ({getattr(member, 'family', '?')}): {exc}"
            ) from exc
        if problem != "regression" and list(graph.classes) != classes:
            raise OnnxUnsupportedError(
                f"ensemble member {index} knows classes {graph.classes}, the ensemble "
                f"{classes}; ONNX export needs every member to know every class"
            )
        graphs.append(graph)
    numeric = _union(g.columns.numeric for g in graphs)
    categorical = _union(g.columns.categorical for g in graphs)
    head, b = _Builder("ens_in_"), _Builder("ens_")
    nodes, initializers, outputs = [], [], []
    for index, graph in enumerate(graphs):
        member = compose.add_prefix(graph.model, f"m{index}_")
        for source, pool, own in (
            ("numeric", numeric, graph.columns.numeric),
            ("categorical", categorical, graph.columns.categorical),
        ):
            indices = head.const([pool.index(c) for c in own], np.int64)
            head.node("Gather", [source, indices], output=f"m{index}_{source}", axis=1)
        outputs.append(_member_output(member, problem, b))
        nodes.extend(member.graph.node)
        initializers.extend(member.graph.initializer)
    blended = (_stacked(ensemble, outputs, classes, problem, b) if ensemble.kind == "stacking"
               else _weighted(ensemble.normalized_weights, outputs, b))  # fmt: skip
    if problem == "regression":
        b.node("Identity", [blended], output="value")
        graph_outputs = [helper.make_tensor_value_info("value", TensorProto.DOUBLE, [None, 1])]
    else:
        total = b.node("ReduceSum", [blended, b.const([1], np.int64)], keepdims=1)
        b.node("Div", [blended, total], output="probabilities")
        b.node("ArgMax", ["probabilities"], output="label", axis=1, keepdims=0)
        graph_outputs = [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info(
                "probabilities", TensorProto.DOUBLE, [None, len(classes)]
            ),
        ]
    graph = helper.make_graph(
        head.nodes + nodes + b.nodes,
        "mlmesh_ensemble",
        [helper.make_tensor_value_info("numeric", TensorProto.DOUBLE, [None, len(numeric)]),
         helper.make_tensor_value_info("categorical", TensorProto.STRING,
                                       [None, len(categorical)])],
        graph_outputs,
        head.initializers + initializers + b.initializers,
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()]
    )
    model.ir_version = max(g.model.ir_version for g in graphs)
    onnx.checker.check_model(model)
    family = f"ensemble ({ensemble.kind}: {', '.join(g.family for g in graphs)})"
    return _Graph(model, _Columns(numeric, categorical), problem, classes, "index", family)


def _union(lists: Any) -> list[str]:
    out: list[str] = []
    for columns in lists:
        out.extend(c for c in columns if c not in out)
    return out


def _member_output(member: Any, problem: str, b: _Builder) -> str:
    """A member's probabilities (N x classes, rows summing to 1) or values (N x 1), float64."""
    from onnx import TensorProto

    if problem == "regression":
        value = b.node("Cast", [member.graph.output[0].name], to=TensorProto.DOUBLE)
        return b.node("Reshape", [value, b.const([-1, 1], np.int64)])
    raw = member.graph.output[1].name
    for node in list(member.graph.node):
        if node.op_type == "ZipMap" and node.output[0] == raw:  # CatBoost: take its tensor
            raw = node.input[0]
            member.graph.node.remove(node)
    proba = b.node("Cast", [raw], to=TensorProto.DOUBLE)
    total = b.node("ReduceSum", [proba, b.const([1], np.int64)], keepdims=1)
    return b.node("Div", [proba, total])


def _weighted(weights: Any, outputs: list[str], b: _Builder) -> str:
    terms = [
        b.node("Mul", [out, b.const(float(w))]) for w, out in zip(weights, outputs, strict=True)
    ]
    return terms[0] if len(terms) == 1 else b.node("Sum", terms)


def _stacked(
    ensemble: Any, outputs: list[str], classes: list[Any], problem: str, b: _Builder
) -> str:
    """The meta-learner on ``stack_features`` of the members' outputs."""
    from onnx import compose

    from mlmesh_common.modeling._ensemble import _EPS

    order = [classes.index(c) for c in ensemble.meta_classes] if classes else []
    columns = []
    for out in outputs:
        if problem == "regression":
            columns.append(out)
            continue
        aligned = b.node("Gather", [out, b.const(order, np.int64)], axis=1)
        if problem == "binary":
            last = b.node("Gather", [aligned, b.const([len(order) - 1], np.int64)], axis=1)
            p = b.node("Clip", [last, b.const(_EPS), b.const(1 - _EPS)])
            odds = b.node("Div", [p, b.node("Sub", [b.const(1.0), p])])
            columns.append(b.node("Log", [odds]))
        else:
            columns.append(b.node("Log", [b.node("Clip", [aligned, b.const(_EPS),
                                                          b.const(1.0)])]))  # fmt: skip
    features = b.node("Concat", columns, axis=1)
    meta = ensemble.meta
    try:
        converted = estimator_graph(meta, _width(ensemble, problem, len(outputs)))
    except Exception as exc:  # ConverterError or a converter's own error
        raise OnnxUnsupportedError(
            f"the stacking meta-learner {type(meta).__name__} did not convert: {exc}"
        ) from exc
    _set_opsets(converted.model, OPSETS)
    meta_model = compose.add_prefix(converted.model, "meta_")
    if converted.input_type != 11:  # TensorProto.DOUBLE
        features = b.node("Cast", [features], to=converted.input_type)
    b.node("Identity", [features], output=meta_model.graph.input[0].name)
    b.nodes.extend(meta_model.graph.node)
    b.initializers.extend(meta_model.graph.initializer)
    if problem == "regression":
        return _member_output(meta_model, problem, b)
    proba = _member_output(meta_model, problem, b)
    meta_order = [list(meta.classes_).index(c) for c in classes]
    return b.node("Gather", [proba, b.const(meta_order, np.int64)], axis=1)


def _width(ensemble: Any, problem: str, n_members: int) -> int:
    if problem == "multiclass":
        return n_members * len(ensemble.meta_classes)
    return n_members


# --- the public surface ----------------------------------------------------------------------


def export_onnx(model: Any, path: Path) -> OnnxSpec:
    """Write ``model`` as one ONNX graph to ``path`` and its spec to ``path + .json``.

    Raises OnnxUnsupportedError naming the part that cannot be converted.
    """
    import onnx

    if getattr(model, "family", "") == "ensemble":
        graph = _ensemble_graph(model)
    else:
        graph = _single_graph(model)
    path = Path(path)
    onnx.save(graph.model, str(path))
    spec = OnnxSpec(
        numeric_columns=graph.columns.numeric,
        categorical_columns=graph.columns.categorical,
        problem_type=graph.problem,
        classes=[_native(c) for c in graph.classes],
        label_output=graph.label_output,
        family=graph.family,
        preferred="knn" not in re.findall(r"[a-z_]+", graph.family),
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
