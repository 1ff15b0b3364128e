"""Generated features computed from raw columns inside a fitted preprocessor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

#: Operations of one row's numbers (no fitting).
ROW_OPS = {
    "mul": 2, "add": 2, "sub": 2, "div": 2,
    "square": 1, "log": 1, "sqrt": 1, "abs": 1,
}  # fmt: skip
#: Operations that learn statistics per category of ``inputs[0]`` at fit time.
GROUP_OPS = ("group_mean", "group_std", "group_frequency")
#: A principal component of the standardised numeric ``inputs``.
PCA_OP = "pca"
OPS = (*ROW_OPS, *GROUP_OPS, PCA_OP)
#: The category key a missing value has in the group statistics.
MISSING_GROUP_KEY = "__missing__"


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def row_op(op: str, a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """One generated row-wise feature (`op` in ROW_OPS) from columns `a` and `b`."""
    with np.errstate(all="ignore"):
        if op == "mul":
            out = a * b
        elif op == "add":
            out = a + b
        elif op == "sub":
            out = a - b
        elif op == "div":
            out = np.where(b != 0, a / np.where(b != 0, b, 1.0), np.nan)
        elif op == "square":
            out = a * a
        elif op == "log":
            out = np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), np.nan)
        elif op == "sqrt":
            out = np.where(a >= 0, np.sqrt(np.where(a >= 0, a, 0.0)), np.nan)
        else:  # abs
            out = np.abs(a)
    return np.where(np.isfinite(out), out, np.nan)


def _group_keys(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype("string").fillna(MISSING_GROUP_KEY)


class FeatureGenerator(TransformerMixin, BaseEstimator):
    """Append generated numeric columns to a DataFrame.

    ``specs`` is a list of dicts ``{"name", "op", "inputs", ...}``: row operations
    (:data:`ROW_OPS`: products, sums, differences, ratios, squares, log, sqrt, abs of raw
    numbers), group aggregations (:data:`GROUP_OPS`: the mean / std of ``inputs[1]`` per
    category of ``inputs[0]``, or the category's share of rows; learnt at fit, unseen
    categories get the overall value) and principal components (``op="pca"`` with
    ``component``: PCA of the median-imputed, standardised ``inputs``, learnt at fit).
    The output is the input DataFrame plus one column per spec, in order, so a
    ColumnTransformer after it can pick raw and generated columns by name.
    """

    def __init__(self, specs: Sequence[dict[str, Any]] = ()) -> None:
        self.specs = specs

    def _check(self) -> list[dict[str, Any]]:
        specs = [dict(s) for s in self.specs]
        for spec in specs:
            op = spec.get("op")
            if op not in OPS or not spec.get("name") or not spec.get("inputs"):
                raise ValueError(f"bad generated feature spec {spec!r}: need name, inputs and "
                                 f"an op among {OPS}")  # fmt: skip
            if op in ROW_OPS and len(spec["inputs"]) != ROW_OPS[op]:
                raise ValueError(f"{op} needs {ROW_OPS[op]} inputs; spec {spec!r}")
        return specs

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureGenerator:
        """Learn group statistics and principal components from ``X``."""
        if not isinstance(X, pd.DataFrame):
            raise ValueError("FeatureGenerator needs a pandas DataFrame with named columns")
        specs = self._check()
        names = [str(c) for c in X.columns]
        needed = sorted({c for s in specs for c in s["inputs"]} - set(names))
        if needed:
            raise ValueError(f"generated features need columns {needed} that X lacks")
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.group_stats_: dict[str, tuple[dict[str, float], float]] = {}
        self.pca_: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray, PCA]] = {}
        for spec in specs:
            op, inputs = spec["op"], list(spec["inputs"])
            if op in GROUP_OPS:
                keys = _group_keys(X, inputs[0])
                if op == "group_frequency":
                    table = keys.value_counts(normalize=True)
                    overall = 0.0
                else:
                    values = pd.Series(_numbers(X, inputs[1]), index=X.index)
                    grouped = values.groupby(keys)
                    table = grouped.mean() if op == "group_mean" else grouped.std(ddof=0)
                    overall = float(values.mean() if op == "group_mean" else values.std(ddof=0))
                self.group_stats_[spec["name"]] = (
                    {str(k): float(v) for k, v in table.items() if pd.notna(v)},
                    overall if np.isfinite(overall) else 0.0,
                )
            elif op == PCA_OP:
                key = tuple(inputs)
                if key in self.pca_:
                    continue
                values = np.column_stack([_numbers(X, c) for c in inputs])
                with np.errstate(all="ignore"):
                    med = np.nan_to_num(np.nanmedian(values, axis=0), nan=0.0)
                    filled = np.where(np.isnan(values), med, values)
                    mean = filled.mean(axis=0)
                    std = filled.std(axis=0)
                std = np.where(std > 0, std, 1.0)
                n = max(int(s.get("component", 0)) + 1 for s in specs
                        if s["op"] == PCA_OP and tuple(s["inputs"]) == key)  # fmt: skip
                n = min(n, len(inputs), len(filled))
                pca = PCA(n_components=n, random_state=0).fit((filled - mean) / std)
                self.pca_[key] = (med, mean, std, pca)
        self.specs_ = specs
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """``X`` with the generated columns appended."""
        check_is_fitted(self, "specs_")
        if not isinstance(X, pd.DataFrame):
            raise ValueError("FeatureGenerator needs a pandas DataFrame with named columns")
        new: dict[str, np.ndarray] = {}
        components: dict[tuple[str, ...], np.ndarray] = {}
        for spec in self.specs_:
            op, inputs, name = spec["op"], list(spec["inputs"]), spec["name"]
            if op in ROW_OPS:
                a = _numbers(X, inputs[0])
                b = _numbers(X, inputs[1]) if len(inputs) > 1 else None
                new[name] = row_op(op, a, b)
            elif op in GROUP_OPS:
                table, overall = self.group_stats_[name]
                keys = _group_keys(X, inputs[0])
                new[name] = keys.map(table).astype("float64").fillna(overall).to_numpy()
            else:
                key = tuple(inputs)
                if key not in components:
                    med, mean, std, pca = self.pca_[key]
                    values = np.column_stack([_numbers(X, c) for c in inputs])
                    filled = np.where(np.isnan(values), med, values)
                    components[key] = pca.transform((filled - mean) / std)
                comp = int(spec.get("component", 0))
                scores = components[key]
                new[name] = scores[:, comp] if comp < scores.shape[1] else np.zeros(len(X))
        if not new:
            return X
        extra = pd.DataFrame(new, index=X.index)
        return pd.concat([X.drop(columns=[c for c in new if c in X.columns]), extra], axis=1)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input names followed by the generated names."""
        check_is_fitted(self, "specs_")
        return np.asarray([*self.feature_names_in_, *(s["name"] for s in self.specs_)],
                          dtype=object)  # fmt: skip
