"""MeshModel: a preprocessor and an estimator fitted together, with label encoding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ._families import (
    NATIVE_CATEGORICAL_FAMILIES,
    RAW_FEATURE_FAMILIES,
    InvalidParamsError,
    _merge_params,
    build_estimator,
    check_family,
    effective_device,
    fit_estimator,
    hist_gb_categoricals,
    split_params,
    xgboost_trained_device,
)
from ._metrics import check_problem_type

_DENSE_FAMILIES = ("catboost", "hist_gb")
_log = logging.getLogger(__name__)


class MissingFeaturesError(ValueError):
    """Input rows that lack feature columns the model was built for."""


class TargetError(ValueError):
    """A target that cannot be learned: missing values, one class only, or non-numeric."""


def _is_classifier(model: MeshModel) -> bool:
    return model.problem_type != "regression"


def _subsample(n: int, cap: int, y: np.ndarray, classification: bool, seed: int) -> np.ndarray:
    """Sorted indices of ``cap`` of ``n`` rows (stratified for classification when possible)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    strat = y if classification and np.bincount(y.astype(np.int64)).min() >= 2 else None
    try:
        keep, _ = train_test_split(idx, train_size=cap, random_state=seed, stratify=strat)
    except ValueError:
        keep = np.random.default_rng(seed).choice(n, size=cap, replace=False)
    return np.sort(keep)


def _normalise_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """None and pd.NA in text columns become NaN, as the imputers expect.

    Parquet gives None for a missing string (pandas 2) while CSV readers and the serving
    app give NaN; scikit-learn's imputers only see NaN as missing, so without this a model
    trained from Parquet would treat None as a category of its own and answer differently
    at serving time.
    """
    text = [c for c in frame.columns if frame[c].dtype == object]
    if not text:
        return frame
    frame = frame.copy()
    for column in text:
        values = frame[column]
        frame[column] = values.where(values.notna(), np.nan)
    return frame


class MeshModel(BaseEstimator):
    """A clone of the prep stage's preprocessor plus a ``family`` estimator, fitted together.

    Classification labels are encoded internally, so ``predict`` returns the original labels
    (strings stay strings) and ``predict_proba`` columns follow ``classes_``. Inputs are
    DataFrames holding at least ``feature_columns``; extra columns are ignored.

    ``preprocessor`` is the dense one for linear/svm/knn/mlp and, where the PREPARED folder
    has it, the tree one for tree families (``PreparedData.preprocessor_for`` picks);
    ``categorical_features`` are the output columns of that preprocessor holding integer
    codes, used natively by hist_gb, lightgbm and catboost. AutoGluon is fitted on the raw
    feature columns and ignores the preprocessor (``preprocessor_`` is None).

    After ``fit``: ``device_`` is the device the estimator really trained on; when a GPU fit
    failed (or XGBoost found no usable GPU) it is ``"cpu"`` and ``device_fallback_reason_``
    says why. ``fit_info_`` records early stopping (best rounds) and row subsampling.
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
        categorical_features: Sequence[int] | None = None,
    ) -> None:
        self.preprocessor = preprocessor
        self.family = family
        self.problem_type = problem_type
        self.feature_columns = feature_columns
        self.params = params
        self.device = device
        self.seed = seed
        self.n_jobs = n_jobs
        self.categorical_features = categorical_features

    @property
    def uses_raw_features(self) -> bool:
        """True for families fitted on the raw feature columns (no preprocessor)."""
        return self.family in RAW_FEATURE_FAMILIES

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
        return _normalise_missing(X[list(self.feature_columns)])

    def _estimator_input(self, Xt: Any, cats: Sequence[int]) -> Any:
        if self.family in _DENSE_FAMILIES or cats:
            if sparse.issparse(Xt):
                Xt = Xt.toarray()
        if self.family == "catboost" and cats:
            # CatBoost wants categorical columns as integers (or strings), never floats.
            values = np.asarray(Xt, dtype=float)
            frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(values.shape[1])])
            for i in cats:
                name = frame.columns[i]
                frame[name] = frame[name].fillna(-1).round().astype(np.int64)
            return frame
        return Xt

    def transform(self, X: pd.DataFrame) -> Any:
        """What the fitted estimator receives for rows ``X`` (raw columns for AutoGluon)."""
        check_is_fitted(self, "estimator_")
        Xf = self._features(X)
        if self.uses_raw_features:
            return Xf.reset_index(drop=True)
        cats = getattr(self, "categorical_features_", [])  # models pickled before it existed
        return self._estimator_input(self.preprocessor_.transform(Xf), cats)

    def _transform(self, X: Any) -> Any:
        return self.transform(X)

    def _native_categoricals(self, Xt: Any) -> list[int]:
        if self.family not in NATIVE_CATEGORICAL_FAMILIES or not self.categorical_features:
            return []
        n_out = Xt.shape[1]
        cats = sorted({int(i) for i in self.categorical_features if 0 <= int(i) < n_out})
        if self.family == "hist_gb" and cats:
            dense = Xt.toarray() if sparse.issparse(Xt) else np.asarray(Xt)
            cats = hist_gb_categoricals(dense, cats)
        return cats

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

        classification = _is_classifier(self)
        if classification:
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

        est_params, meta = split_params(
            self.family, _merge_params(self.family, self.problem_type, dict(self.params or {}))
        )
        if self.uses_raw_features:
            self.preprocessor_ = None
            Xt: Any = Xf.reset_index(drop=True)
        else:
            self.preprocessor_ = clone(self.preprocessor)
            Xt = self.preprocessor_.fit_transform(Xf, y_fit)
        cats = [] if self.uses_raw_features else self._native_categoricals(Xt)
        self.categorical_features_ = cats
        info: dict[str, Any] = {"train_rows": len(y_fit), "subsampled_from": None}
        cap = meta.get("max_train_rows")
        if cap is not None and int(cap) < len(y_fit):
            keep = _subsample(len(y_fit), int(cap), y_fit, classification, self.seed)
            Xt = Xt.iloc[keep] if hasattr(Xt, "iloc") else Xt[keep]
            y_fit = y_fit[keep]
            info.update(train_rows=len(keep), subsampled_from=len(y_arr))
        Xe = self._estimator_input(Xt, cats)

        requested = effective_device(self.family, self.device)
        reason = ""
        try:
            estimator, fit_info = self._fit_on(requested, est_params, Xe, y_fit, cats, meta)
            used = requested
        except InvalidParamsError:
            raise
        except Exception as exc:
            if requested != "cuda":
                raise
            reason = (
                f"{self.family} failed on the GPU ({type(exc).__name__}: "
                f"{str(exc).strip()[:300]}); trained on the CPU instead"
            )
            _log.warning("%s", reason)
            estimator, fit_info = self._fit_on("cpu", est_params, Xe, y_fit, cats, meta)
            used = "cpu"
        if used == "cuda" and self.family == "xgboost":
            if xgboost_trained_device(estimator) != "cuda":
                used = "cpu"
                reason = "XGBoost found no usable GPU and trained on the CPU instead"
                _log.warning("%s", reason)
        self.estimator_ = estimator
        self.device_ = used
        self.device_fallback_reason_ = reason
        self.fit_info_ = {**info, **fit_info}
        self.n_features_in_ = len(self.feature_columns)
        return self

    def _fit_on(
        self,
        device: str,
        est_params: dict[str, Any],
        Xe: Any,
        y_fit: np.ndarray,
        cats: list[int],
        meta: dict[str, Any],
    ) -> tuple[Any, dict[str, Any]]:
        if self.uses_raw_features:  # AutoGluon sizes its own workers (num_cpus)
            return self._build_and_fit(device, est_params, Xe, y_fit, cats, meta)
        # Keep OpenMP/BLAS pools (hist_gb, MLP, linear solvers) within n_jobs: on a busy
        # machine, spinning threads of an unbounded pool slow a fit down many times over.
        with threadpool_limits(limits=self.n_jobs):
            return self._build_and_fit(device, est_params, Xe, y_fit, cats, meta)

    def _build_and_fit(
        self,
        device: str,
        est_params: dict[str, Any],
        Xe: Any,
        y_fit: np.ndarray,
        cats: list[int],
        meta: dict[str, Any],
    ) -> tuple[Any, dict[str, Any]]:
        estimator = build_estimator(
            self.family,
            self.problem_type,
            est_params,
            device=device,
            seed=self.seed,
            n_jobs=self.n_jobs,
            categorical_features=cats,
        )
        return fit_estimator(
            self.family,
            self.problem_type,
            estimator,
            Xe,
            y_fit,
            categorical_features=cats,
            early_stopping_rounds=meta.get("early_stopping_rounds"),
            seed=self.seed,
        )

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
