"""MeshModel: a preprocessor and an estimator fitted together, with label encoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._families import build_estimator, check_family, effective_device
from ._metrics import check_problem_type


class MissingFeaturesError(ValueError):
    """Input rows that lack feature columns the model was built for."""


class TargetError(ValueError):
    """A target that cannot be learned: missing values, one class only, or non-numeric."""


def _is_classifier(model: MeshModel) -> bool:
    return model.problem_type != "regression"


class MeshModel(BaseEstimator):
    """A clone of the prep stage's preprocessor plus a ``family`` estimator, fitted together.

    Classification labels are encoded internally, so ``predict`` returns the original labels
    (strings stay strings) and ``predict_proba`` columns follow ``classes_``. Inputs are
    DataFrames holding at least ``feature_columns``; extra columns are ignored.
    """

    def __init__(
        self,
        preprocessor: Any,
        family: str,
        problem_type: str,
        feature_columns: Sequence[str],
        params: dict[str, Any] | None = None,
        *,
        device: str = "cpu",
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.preprocessor = preprocessor
        self.family = family
        self.problem_type = problem_type
        self.feature_columns = feature_columns
        self.params = params
        self.device = device
        self.seed = seed
        self.n_jobs = n_jobs

    def _features(self, X: Any) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise MissingFeaturesError(
                f"MeshModel needs a pandas DataFrame with columns {list(self.feature_columns)}; "
                f"got {type(X).__name__}"
            )
        missing = [c for c in self.feature_columns if c not in X.columns]
        if missing:
            raise MissingFeaturesError(
                f"input lacks feature columns {missing}; send every column the model was "
                f"trained on ({list(self.feature_columns)})"
            )
        return X[list(self.feature_columns)]

    def _transform(self, X: Any) -> Any:
        Xt = self.preprocessor_.transform(self._features(X))
        if self.family == "catboost" and sparse.issparse(Xt):
            Xt = Xt.toarray()
        return Xt

    def fit(self, X: pd.DataFrame, y: Any) -> MeshModel:
        """Fit a fresh clone of the preprocessor and a fresh estimator on ``(X, y)``."""
        check_family(self.family)
        check_problem_type(self.problem_type)
        if not self.feature_columns:
            raise MissingFeaturesError("feature_columns is empty; name the model's inputs")
        Xf = self._features(X)
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or len(y_arr) != len(Xf):
            raise TargetError(
                f"y must be 1-D with one value per row of X ({len(Xf)}); got shape {y_arr.shape}"
            )
        if pd.isna(pd.Series(y_arr)).any():
            raise TargetError("y holds missing values; drop those rows before fitting")

        if _is_classifier(self):
            encoder = LabelEncoder().fit(y_arr)
            if len(encoder.classes_) < 2:
                raise TargetError(
                    f"y holds a single class ({encoder.classes_[0]!r}); a classifier needs "
                    "at least two"
                )
            y_fit = encoder.transform(y_arr)
            self.label_encoder_ = encoder
            self.classes_ = encoder.classes_
        else:
            try:
                y_fit = y_arr.astype(float)
            except (TypeError, ValueError) as exc:
                raise TargetError(
                    f"regression target must be numeric; got dtype {y_arr.dtype}"
                ) from exc

        self.preprocessor_ = clone(self.preprocessor)
        Xt = self.preprocessor_.fit_transform(Xf, y_fit)
        if self.family == "catboost" and sparse.issparse(Xt):
            Xt = Xt.toarray()
        self.estimator_ = build_estimator(
            self.family,
            self.problem_type,
            dict(self.params or {}),
            device=self.device,
            seed=self.seed,
            n_jobs=self.n_jobs,
        )
        self.estimator_.fit(Xt, y_fit)
        self.device_ = effective_device(self.family, self.device)
        self.n_features_in_ = len(self.feature_columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted original labels (classification) or values (regression)."""
        check_is_fitted(self, "estimator_")
        raw = np.asarray(self.estimator_.predict(self._transform(X))).ravel()
        if _is_classifier(self):
            return self.label_encoder_.inverse_transform(raw.astype(np.int64))
        return raw.astype(float)

    @available_if(_is_classifier)
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``."""
        check_is_fitted(self, "estimator_")
        proba = np.asarray(self.estimator_.predict_proba(self._transform(X)), dtype=np.float64)
        # Some libraries compute in float32; renormalise so rows sum to 1 in float64.
        return proba / proba.sum(axis=1, keepdims=True)

    def to_cpu(self) -> MeshModel:
        """Make a GPU-fitted model predict on the CPU (for serving where no GPU exists)."""
        check_is_fitted(self, "estimator_")
        if self.family == "xgboost":
            self.estimator_.set_params(device="cpu")
            self.device_ = "cpu"
        return self
