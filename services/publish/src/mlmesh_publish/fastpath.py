"""Compiled scoring for the generated app's in-process (sklearn) backend.

Scoring one request through a fitted scikit-learn preprocessor costs milliseconds of
pandas and validation overhead per transformer, whatever the number of rows. This module
turns the fitted preprocessing of a model (ColumnTransformer, Pipeline, SimpleImputer,
StandardScaler, OrdinalEncoder, OneHotEncoder, string casts and mlmesh's FeatureGenerator,
NumericImputer and QuantileClipper) into numpy code working on the request's columns,
and runs the model's own estimator (and, for MeshModel / EnsembleModel, the model's own
predict / predict_proba logic) on the result. Encoders are turned into lookup tables built
by the fitted encoder itself, so unseen and infrequent categories behave as they do in
scikit-learn. A ColumnTransformer block that cannot be compiled runs its own transform
on a DataFrame of its columns.

The generated app checks the compiled scorer against the model on probe rows at startup
and keeps the plain path when they disagree. The file is copied next to ``app.py`` and
needs numpy, pandas and scikit-learn (plus mlmesh_common, which a model holding mlmesh
transformers needs to be unpickled at all).
"""

from __future__ import annotations

import copy
import inspect
import math
import operator
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Marks a missing value in an object (categorical) column, as the model's frames do.
MISSING = np.nan
_UNKNOWN = "\x00mlmesh-unseen-category"
#: FeatureGenerator's group key for a missing category.
_GROUP_MISSING = "__missing__"


class Unsupported(Exception):
    """A model or transformer this module cannot compile (the app keeps the plain path)."""


class Columns:
    """The named 1-D input columns of one request; ``len`` is the number of rows.

    Numeric columns are float64 with NaN for missing; other columns are object arrays
    with NaN for missing (as in the DataFrame the plain path builds). ``cache`` keeps
    per-request results (a preprocessor's output) so predict and predict_proba share them.
    """

    __slots__ = ("cache", "data", "n")

    def __init__(self, data: Mapping[str, np.ndarray], n: int) -> None:
        self.data = dict(data)
        self.n = n
        self.cache: dict[Any, Any] = {}

    def __len__(self) -> int:
        return self.n

    def frame(self, names: Sequence[str]) -> pd.DataFrame:
        """A DataFrame of ``names`` (for transformers that run uncompiled)."""
        return pd.DataFrame({c: self.data[c] for c in names}, columns=list(names))


def is_missing(value: Any) -> bool:
    """None, NaN or pd.NA."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _default_output(estimator: Any) -> None:
    config = getattr(estimator, "_sklearn_output_config", None) or {}
    if config.get("transform") not in (None, "default"):
        raise Unsupported(f"{type(estimator).__name__} has set_output({config})")


# --- array steps (2-D array in, 2-D array out) ------------------------------------------

ArrayFn = Callable[[np.ndarray], np.ndarray]


def _as_float(X: np.ndarray) -> np.ndarray:
    if X.dtype == np.float64:
        return X
    if X.dtype != object:
        return X.astype(np.float64)
    out = np.empty(X.shape, dtype=np.float64)
    for index, value in np.ndenumerate(X):
        out[index] = np.nan if is_missing(value) else float(value)
    return out


def _string_cast(X: np.ndarray) -> np.ndarray:
    """DataFrame.astype("string") as an object array (NaN marks pd.NA)."""
    out = np.empty(X.shape, dtype=object)
    for index, value in np.ndenumerate(X):
        out[index] = MISSING if is_missing(value) else (
            value if isinstance(value, str) else str(value))
    return out


def _compile_function(step: Any, first: bool) -> ArrayFn:
    func = getattr(step, "func", None)
    if (
        first
        and isinstance(func, operator.methodcaller)
        and repr(func) == "operator.methodcaller('astype', 'string')"
        and not step.kw_args
        and not step.validate
    ):
        return _string_cast
    raise Unsupported(f"FunctionTransformer({func!r})")


def _compile_simple_imputer(step: Any) -> ArrayFn:
    if step.add_indicator:
        raise Unsupported("SimpleImputer(add_indicator=True)")
    marker = step.missing_values
    if not (marker is pd.NA or (isinstance(marker, float) and math.isnan(marker))):
        raise Unsupported(f"SimpleImputer(missing_values={marker!r})")
    stats = np.asarray(step.statistics_)
    if not step.keep_empty_features:
        if any(is_missing(s) for s in stats.tolist()):
            raise Unsupported("SimpleImputer drops columns without observed values")
    fill_dtype = np.dtype(getattr(step, "_fill_dtype", stats.dtype))
    numeric_stats = stats.astype(fill_dtype) if fill_dtype.kind in "fiub" else None

    def impute(X: np.ndarray) -> np.ndarray:
        if X.dtype.kind == "f":
            mask = np.isnan(X)
            out = X.copy()
            if mask.any():
                fill = numeric_stats if numeric_stats is not None else stats
                out[mask] = np.broadcast_to(fill, X.shape)[mask]
            return out
        if X.dtype != object:
            raise Unsupported(f"SimpleImputer on {X.dtype}")
        out = X.copy()
        for (i, j), value in np.ndenumerate(X):
            if is_missing(value):
                out[i, j] = stats[j]
        return out

    return impute


def _compile_scaler(step: Any) -> ArrayFn:
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None

    def scale_fn(X: np.ndarray) -> np.ndarray:
        out = np.array(_as_float(X), dtype=np.float64, copy=True)
        if mean is not None:
            out -= mean
        if scale is not None:
            out /= scale
        return out

    return scale_fn


def _compile_clipper(step: Any) -> ArrayFn:
    positions, low, high = step.positions_, step.lower_bounds_, step.upper_bounds_

    def clip(X: np.ndarray) -> np.ndarray:
        out = np.array(_as_float(X), dtype=np.float64, copy=True)
        if positions.size:
            out[:, positions] = np.clip(out[:, positions], low, high)
        return out

    return clip


def _compile_numeric_imputer(step: Any) -> ArrayFn:
    strategies = np.asarray(step.strategy_per_column_, dtype=object)
    fill = np.where(strategies == "mean", step.means_, step.medians_)
    models = [(m, np.flatnonzero(strategies == name))
              for m, name in ((step.knn_, "knn"), (step.iterative_, "iterative"))]
    positions = list(step.indicator_positions_)

    def impute(X: np.ndarray) -> np.ndarray:
        values = _as_float(X)
        if values.shape[1] != step.n_features_in_:
            raise ValueError(f"NumericImputer was fitted on {step.n_features_in_} columns")
        missing = np.isnan(values)
        out = values.copy()
        if missing.any():
            z = (values - step.means_) / step.scales_
            for model, cols in models:
                if model is None or not cols.size or not missing[:, cols].any():
                    continue
                filled = model.transform(z) * step.scales_ + step.means_
                out[:, cols] = np.where(missing[:, cols], filled[:, cols], values[:, cols])
            still = np.isnan(out)
            out[still] = np.broadcast_to(fill, out.shape)[still]
        return np.hstack([out, missing[:, positions].astype(np.float64)])

    return impute


def _compile_encoder(step: Any) -> ArrayFn:
    """Ordinal/one-hot encoding through lookup tables made by the fitted encoder."""
    kind = type(step).__name__  # sparse one-hot output is densified by the dense CT anyway
    categories = step.categories_
    if any(np.asarray(c).dtype != object for c in categories):
        raise Unsupported(f"{kind} fitted on non-object columns")
    k = len(categories)
    if kind == "OneHotEncoder":
        widths = [int(w) for w in step._n_features_outs]
    else:
        widths = [1] * k
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    raises_on_unknown = step.handle_unknown == "error"
    tables: list[dict[Any, np.ndarray]] = []
    missing_rows: list[np.ndarray | None] = []
    unknown_rows: list[np.ndarray | None] = []
    base = [cats[0] for cats in categories]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j, cats in enumerate(categories):
            values = list(cats) + ([] if raises_on_unknown else [_UNKNOWN])
            probe = np.empty((len(values), k), dtype=object)
            probe[:] = base
            probe[:, j] = values
            out = np.asarray(_dense(step.transform(probe)), dtype=np.float64)
            block = out[:, offsets[j]:offsets[j + 1]]
            table: dict[Any, np.ndarray] = {}
            missing_row = None
            for value, row in zip(cats.tolist(), block, strict=False):
                if is_missing(value):
                    missing_row = row
                else:
                    table[value] = row
            tables.append(table)
            unknown = None if raises_on_unknown else block[-1]
            unknown_rows.append(unknown)
            missing_rows.append(missing_row if missing_row is not None else unknown)
    dtype = np.dtype(step.dtype)
    width = int(offsets[-1])

    def encode(X: np.ndarray) -> np.ndarray:
        if X.shape[1] != k:
            raise ValueError(f"{kind} was fitted on {k} columns; got {X.shape[1]}")
        out = np.empty((X.shape[0], width), dtype=np.float64)
        for j in range(k):
            table, start, stop = tables[j], offsets[j], offsets[j + 1]
            for i, value in enumerate(X[:, j].tolist()):
                row = missing_rows[j] if is_missing(value) else table.get(value)
                if row is None:
                    row = unknown_rows[j]
                if row is None:
                    raise ValueError(f"Found unknown category {value!r} in column {j} "
                                     "during transform")
                out[i, start:stop] = row
        return out.astype(dtype, copy=False)

    return encode


def _compile_array_step(step: Any, first: bool) -> ArrayFn:
    _default_output(step)
    name = type(step).__name__
    if name == "Pipeline":
        return _compile_array_pipeline(step, first)
    if name == "FunctionTransformer":
        return _compile_function(step, first)
    if name == "SimpleImputer":
        return _compile_simple_imputer(step)
    if name == "StandardScaler":
        return _compile_scaler(step)
    if name == "QuantileClipper":
        return _compile_clipper(step)
    if name == "NumericImputer":
        return _compile_numeric_imputer(step)
    if name in ("OrdinalEncoder", "OneHotEncoder"):
        return _compile_encoder(step)
    raise Unsupported(name)


def _compile_array_pipeline(pipeline: Any, first: bool) -> ArrayFn:
    functions = [_compile_array_step(step, first and i == 0)
                 for i, (_, step) in enumerate(s for s in pipeline.steps
                                               if s[1] not in (None, "passthrough"))]

    def run(X: np.ndarray) -> np.ndarray:
        for function in functions:
            X = function(X)
        return X

    return run


# --- table steps (named columns in) -----------------------------------------------------

TableFn = Callable[[Columns], Any]


def _numbers(columns: Columns, name: str) -> np.ndarray:
    values = columns.data[name]
    if values.dtype == np.float64:
        return values
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)


def _compile_generator(step: Any) -> Callable[[Columns], Columns]:
    from mlmesh_common.preprocessing import GROUP_OPS, ROW_OPS, row_op

    specs = list(step.specs_)

    def generate(columns: Columns) -> Columns:
        new: dict[str, np.ndarray] = {}
        components: dict[tuple[str, ...], np.ndarray] = {}
        for spec in specs:
            op, inputs, name = spec["op"], list(spec["inputs"]), spec["name"]
            if op in ROW_OPS:
                a = _numbers(columns, inputs[0])
                b = _numbers(columns, inputs[1]) if len(inputs) > 1 else None
                new[name] = row_op(op, a, b)
            elif op in GROUP_OPS:
                table, overall = step.group_stats_[name]
                keys = columns.data[inputs[0]].tolist()
                new[name] = np.array([
                    table.get(_GROUP_MISSING if is_missing(v) else str(v), overall) for v in keys
                ], dtype=np.float64)
            else:
                key = tuple(inputs)
                if key not in components:
                    med, mean, std, pca = step.pca_[key]
                    values = np.column_stack([_numbers(columns, c) for c in inputs])
                    filled = np.where(np.isnan(values), med, values)
                    components[key] = pca.transform((filled - mean) / std)
                comp = int(spec.get("component", 0))
                scores = components[key]
                new[name] = scores[:, comp] if comp < scores.shape[1] else np.zeros(len(columns))
        out = Columns(columns.data, columns.n)
        out.data.update(new)
        return out

    return generate


def _block_input(columns: Columns, names: Sequence[str]) -> np.ndarray:
    arrays = [columns.data[c] for c in names]
    if all(a.dtype == np.float64 for a in arrays):
        return np.column_stack(arrays) if arrays else np.empty((len(columns), 0))
    out = np.empty((len(columns), len(arrays)), dtype=object)
    for j, a in enumerate(arrays):
        out[:, j] = a
    return out


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def _compile_column_transformer(ct: Any) -> TableFn:
    _default_output(ct)
    if getattr(ct, "sparse_output_", True):
        raise Unsupported("ColumnTransformer with sparse output")
    blocks: list[Callable[[Columns], np.ndarray]] = []
    for name, transformer, selection in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        if name == "remainder":
            if len(selection):
                raise Unsupported("ColumnTransformer remainder other than drop")
            continue
        if not isinstance(selection, list | tuple) or not all(
                isinstance(c, str) for c in selection):
            raise Unsupported(f"ColumnTransformer columns {selection!r}")
        names = list(selection)
        if not names:
            continue
        if isinstance(transformer, str):
            raise Unsupported(f"ColumnTransformer {transformer!r} block")
        try:
            function = _compile_array_step(transformer, first=True)
            blocks.append(lambda c, f=function, n=names: f(_block_input(c, n)))
        except Unsupported:
            blocks.append(lambda c, t=transformer, n=names: _dense(t.transform(c.frame(n))))

    def transform(columns: Columns) -> np.ndarray:
        return np.hstack([block(columns) for block in blocks])

    return transform


def compile_preprocessor(preprocessor: Any) -> TableFn:
    """A function from :class:`Columns` to what ``preprocessor.transform`` returns."""
    _default_output(preprocessor)
    name = type(preprocessor).__name__
    if name == "ColumnTransformer":
        return _compile_column_transformer(preprocessor)
    if name != "Pipeline":
        raise Unsupported(name)
    steps = [s for _, s in preprocessor.steps if s not in (None, "passthrough")]
    tables: list[Callable[[Columns], Columns]] = []
    while steps and type(steps[0]).__name__ == "FeatureGenerator":
        tables.append(_compile_generator(steps.pop(0)))
    if not steps or type(steps[0]).__name__ != "ColumnTransformer":
        raise Unsupported("a Pipeline without a ColumnTransformer after its generators")
    columns_fn = _compile_column_transformer(steps.pop(0))
    arrays = [_compile_array_step(s, first=False) for s in steps]

    def transform(columns: Columns) -> np.ndarray:
        for table in tables:
            columns = table(columns)
        X = columns_fn(columns)
        for function in arrays:
            X = function(X)
        return X

    return transform


class CompiledPreprocessor:
    """``transform(columns)`` of a fitted preprocessor, cached per request."""

    def __init__(self, preprocessor: Any) -> None:
        self.function = compile_preprocessor(preprocessor)

    def transform(self, columns: Columns) -> np.ndarray:
        key = id(self)
        if key not in columns.cache:
            columns.cache[key] = self.function(columns)
        return columns.cache[key]


# --- models -----------------------------------------------------------------------------


class _CachedMember:
    """An ensemble member whose outputs are computed once per request."""

    def __init__(self, member: Any) -> None:
        self.member = member
        self.classes_ = getattr(member, "classes_", None)
        self.family = getattr(member, "family", None)

    def predict(self, columns: Columns) -> np.ndarray:
        key = (id(self), "predict")
        if key not in columns.cache:
            columns.cache[key] = self.member.predict(columns)
        return columns.cache[key]

    def predict_proba(self, columns: Columns) -> np.ndarray:
        key = (id(self), "proba")
        if key not in columns.cache:
            columns.cache[key] = self.member.predict_proba(columns)
        return columns.cache[key]


class _FrameMember:
    """An ensemble member that cannot be compiled: a DataFrame through its own methods."""

    def __init__(self, member: Any) -> None:
        self.member = member
        self.classes_ = getattr(member, "classes_", None)
        self.columns = list(member.feature_columns)

    def predict(self, columns: Columns) -> np.ndarray:
        return self.member.predict(columns.frame(self.columns))

    def predict_proba(self, columns: Columns) -> np.ndarray:
        return self.member.predict_proba(columns.frame(self.columns))


def _compile_member(member: Any) -> Any:
    try:
        return compile_model(member)
    except Unsupported:
        return _FrameMember(member)


class _CompiledPipeline:
    """An sklearn Pipeline: compiled transform steps, then its own final estimator."""

    def __init__(self, pipeline: Any) -> None:
        *steps, (_, final) = pipeline.steps
        pre = type(pipeline)(steps) if len(steps) != 1 else steps[0][1]
        self.pre = CompiledPreprocessor(pre)
        self.final = final
        self.classes_ = getattr(pipeline, "classes_", None)

    def predict(self, columns: Columns) -> np.ndarray:
        return self.final.predict(self.pre.transform(columns))

    def predict_proba(self, columns: Columns) -> np.ndarray:
        return self.final.predict_proba(self.pre.transform(columns))


def _identity(X: Any) -> Any:
    return X


def _equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays among the arguments
        return False


def _memoise_proba(estimator: Any) -> Any:
    """A shallow copy of ``estimator`` whose predict_proba remembers its last answer (per
    thread, for the same input object and arguments): estimators whose predict calls
    predict_proba (LightGBM) then score a request once for both calls."""
    method = getattr(type(estimator), "predict_proba", None)
    if method is None or not callable(getattr(estimator, "predict_proba", None)):
        return estimator
    fast = copy.copy(estimator)
    bound = method.__get__(fast)
    signature = inspect.signature(bound)
    local = threading.local()

    def predict_proba(X: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(X, *args, **kwargs)
        call.apply_defaults()
        key = {k: v for k, v in call.arguments.items() if v is not X}
        last = getattr(local, "last", None)
        if last is not None and last[0] is X and _equal(last[1], key):
            return last[2]
        result = bound(X, *args, **kwargs)
        local.last = (X, key, result)
        return result

    fast.predict_proba = predict_proba
    return fast


def compile_model(model: Any) -> Any:
    """An object with ``predict`` / ``predict_proba`` taking :class:`Columns`.

    MeshModel: a shallow copy whose preprocessor is compiled (its own predict logic,
    label decoding and estimator). EnsembleModel: a shallow copy whose members are
    compiled (a member that cannot be, e.g. AutoGluon, gets a DataFrame), each scored once
    per request. sklearn Pipeline: compiled steps then its final estimator.
    Raises Unsupported for anything else.
    """
    if hasattr(model, "members_") and hasattr(model, "_blend"):
        fast = copy.copy(model)
        fast.members_ = [_CachedMember(_compile_member(m)) for m in model.members_]
        return fast
    if hasattr(model, "estimator_") and hasattr(model, "preprocessor_") and hasattr(
            model, "_estimator_input"):
        if getattr(model, "uses_raw_features", False) or model.preprocessor_ is None:
            raise Unsupported(f"{model.family} is fitted on raw columns")
        fast = copy.copy(model)
        fast.preprocessor_ = CompiledPreprocessor(model.preprocessor_)
        fast._features = _identity
        fast.estimator_ = _memoise_proba(model.estimator_)
        return fast
    if type(model).__name__ == "Pipeline" and len(model.steps) >= 2:
        _default_output(model)
        return _CompiledPipeline(model)
    raise Unsupported(type(model).__name__)
