"""EnsembleModel: several MeshModels blended by weights (Caruana) or by a meta-learner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

ENSEMBLE_KINDS = ("caruana", "stacking")
_EPS = 1e-6


class EnsembleError(ValueError):
    """Members, weights or a meta-learner that do not make an ensemble."""


def stack_features(outputs: Sequence[np.ndarray], problem_type: str) -> np.ndarray:
    """Meta-learner inputs from the members' outputs (one array per member).

    Classification outputs are probability matrices (columns in one shared class order):
    binary problems use each member's positive-class logit, multiclass problems every
    class's log-probability. Regression outputs are predictions, used as they are.
    The same function builds the features from OOF predictions (fit) and at predict time.
    """
    if not outputs:
        raise EnsembleError("stack_features needs at least one member output")
    columns = []
    for out in outputs:
        arr = np.asarray(out, dtype=float)
        if problem_type == "regression":
            columns.append(arr.reshape(-1, 1))
        elif problem_type == "binary":
            p = np.clip(arr[:, -1] if arr.ndim == 2 else arr, _EPS, 1 - _EPS)
            columns.append(np.log(p / (1 - p)).reshape(-1, 1))
        else:
            columns.append(np.log(np.clip(arr, _EPS, 1.0)))
    return np.hstack(columns)


def _is_classifier(model: EnsembleModel) -> bool:
    return model.problem_type != "regression"


class EnsembleModel(BaseEstimator):
    """A weighted blend (``kind="caruana"``) or a stacked meta-learner (``"stacking"``).

    ``members`` are MeshModels (fitted or not); ``fit`` refits clones of them on ``(X, y)``
    (train+valid in select), while the stacking ``meta`` learner stays as given: it was
    fitted on the members' out-of-fold predictions, whose class columns follow
    ``meta_classes``. Exposes the MeshModel interface (predict, predict_proba, classes_,
    feature_columns, family, to_cpu) and pickles with joblib.
    """

    family = "ensemble"

    def __init__(
        self,
        members: Sequence[Any],
        weights: Sequence[float] | None = None,
        *,
        kind: str = "caruana",
        meta: Any = None,
        meta_classes: Sequence[Any] | None = None,
    ) -> None:
        self.members = members
        self.weights = weights
        self.kind = kind
        self.meta = meta
        self.meta_classes = meta_classes

    # -- construction ---------------------------------------------------------------------

    def _check(self) -> None:
        if self.kind not in ENSEMBLE_KINDS:
            raise EnsembleError(f"unknown ensemble kind {self.kind!r}; use {ENSEMBLE_KINDS}")
        if not self.members:
            raise EnsembleError("an ensemble needs at least one member")
        kinds = {m.problem_type for m in self.members}
        if len(kinds) != 1:
            raise EnsembleError(f"members mix problem types {sorted(kinds)}")
        columns = {tuple(m.feature_columns) for m in self.members}
        if len(columns) != 1:
            raise EnsembleError("members must share one list of feature_columns")
        if self.kind == "caruana":
            w = np.asarray(self.weights if self.weights is not None else [], dtype=float)
            if w.shape != (len(self.members),) or (w < 0).any() or w.sum() <= 0:
                raise EnsembleError(
                    f"caruana needs one non-negative weight per member ({len(self.members)}) "
                    f"with a positive sum; got {self.weights!r}"
                )
        elif self.meta is None:
            raise EnsembleError("stacking needs a meta-learner fitted on OOF predictions")

    @property
    def problem_type(self) -> str:
        """binary, multiclass or regression (the members')."""
        return str(self.members[0].problem_type)

    @property
    def feature_columns(self) -> list[str]:
        """The input columns (shared by every member)."""
        return list(self.members[0].feature_columns)

    @property
    def normalized_weights(self) -> np.ndarray | None:
        """Caruana weights summing to 1 (None for stacking)."""
        if self.weights is None:
            return None
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    def fit(self, X: pd.DataFrame, y: Any) -> EnsembleModel:
        """Refit a clone of every member on ``(X, y)``; the meta-learner is kept as is."""
        self._check()
        return self._set_members([clone(m).fit(X, y) for m in self.members])

    def from_fitted(self) -> EnsembleModel:
        """Use ``members`` as already fitted (no refit); returns self."""
        self._check()
        for m in self.members:
            check_is_fitted(m, "estimator_")
        return self._set_members(list(self.members))

    def _set_members(self, fitted: list[Any]) -> EnsembleModel:
        self.members_ = fitted
        if _is_classifier(self):
            labels: list[Any] = []
            for m in fitted:
                labels.extend(c for c in m.classes_ if c not in labels)
            self.classes_ = np.asarray(sorted(labels), dtype=object if any(
                isinstance(c, str) for c in labels) else None)
            if self.meta_classes is None:
                self.meta_classes = list(self.classes_)
        self.n_features_in_ = len(self.feature_columns)
        return self

    # -- prediction -----------------------------------------------------------------------

    def _aligned_proba(self, member: Any, X: pd.DataFrame, order: Sequence[Any]) -> np.ndarray:
        proba = member.predict_proba(X)
        out = np.zeros((len(X), len(order)))
        index = {c: i for i, c in enumerate(order)}
        for j, c in enumerate(member.classes_):
            if c in index:
                out[:, index[c]] = proba[:, j]
        return out

    def member_outputs(self, X: pd.DataFrame, order: Sequence[Any] | None = None) -> list[Any]:
        """Each member's probabilities (classes in ``order``) or predictions."""
        check_is_fitted(self, "members_")
        if not _is_classifier(self):
            return [np.asarray(m.predict(X), dtype=float) for m in self.members_]
        order = list(self.classes_) if order is None else list(order)
        return [self._aligned_proba(m, X, order) for m in self.members_]

    def _blend(self, X: pd.DataFrame) -> np.ndarray:
        if self.kind == "caruana":
            w = self.normalized_weights
            return sum(wi * out for wi, out in zip(w, self.member_outputs(X), strict=True))
        features = stack_features(self.member_outputs(X, self.meta_classes), self.problem_type)
        if not _is_classifier(self):
            return np.asarray(self.meta.predict(features), dtype=float)
        proba = self.meta.predict_proba(features)
        out = np.zeros((len(X), len(self.classes_)))
        index = {c: i for i, c in enumerate(self.classes_)}
        for j, c in enumerate(self.meta.classes_):
            out[:, index[c]] = proba[:, j]
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted original labels (classification) or values (regression)."""
        blended = self._blend(X)
        if _is_classifier(self):
            return np.asarray(self.classes_)[np.argmax(blended, axis=1)]
        return np.asarray(blended, dtype=float)

    @available_if(_is_classifier)
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_`` (rows sum to 1)."""
        proba = np.asarray(self._blend(X), dtype=float)
        return proba / proba.sum(axis=1, keepdims=True)

    def to_cpu(self) -> EnsembleModel:
        """Make GPU-fitted members predict on the CPU."""
        check_is_fitted(self, "members_")
        for m in self.members_:
            m.to_cpu()
        return self

    def describe(self) -> list[dict[str, Any]]:
        """One entry per member: family, params and weight (None for stacking)."""
        w = self.normalized_weights
        return [
            {"family": m.family, "params": dict(m.params or {}),
             "weight": float(w[i]) if w is not None else None}
            for i, m in enumerate(self.members)
        ]
