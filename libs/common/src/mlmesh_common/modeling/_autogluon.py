"""AutoGluon's TabularPredictor as one scikit-learn-style estimator (the ``autogluon`` family).

The predictor lives in a temporary folder while the estimator is alive; pickling packs that
folder into the pickle (a gzipped tar) and unpickling unpacks it into a fresh temporary
folder, so a MeshModel holding it pickles and unpickles with joblib like any other. Folders
are removed when the estimator is garbage-collected.

Cross-validation fits one predictor per fold of the PREPARED folds (each on the other
folds' rows), so AutoGluon's out-of-fold predictions use the same folds as every other
candidate; inside a fold AutoGluon holds out rows of its own for model weighting.
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

LABEL = "__mlmesh_target__"
#: Our metric names -> AutoGluon's eval_metric names.
EVAL_METRICS = {
    "roc_auc": "roc_auc",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced_accuracy",
    "f1_macro": "f1_macro",
    "log_loss": "log_loss",
    "rmse": "root_mean_squared_error",
    "mae": "mean_absolute_error",
    "r2": "r2",
}
MIN_TIME_LIMIT_S = 5.0
_log = logging.getLogger(__name__)


def _new_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlmesh-autogluon-"))


class AutoGluonEstimator:
    """A TabularPredictor fitted on raw feature columns with integer-encoded labels.

    ``time_limit`` (seconds) bounds the whole fit; ``presets`` defaults to
    ``medium_quality``; ``hyperparameters`` passes through to ``TabularPredictor.fit``
    (None = the preset's portfolio). ``eval_metric`` takes mlmesh metric names. ``seed``
    is recorded only: AutoGluon seeds its models itself (deterministically, from 0).
    """

    def __init__(
        self,
        problem_type: str,
        *,
        presets: str | list[str] = "medium_quality",
        time_limit: float = 120.0,
        eval_metric: str | None = None,
        hyperparameters: dict[str, Any] | str | None = None,
        num_gpus: int = 0,
        num_cpus: int = 1,
        seed: int = 0,
    ) -> None:
        if eval_metric is not None and eval_metric not in EVAL_METRICS:
            raise ValueError(
                f"autogluon eval_metric {eval_metric!r} is not an mlmesh metric; use one of "
                f"{', '.join(EVAL_METRICS)}"
            )
        if not float(time_limit) > 0:
            raise ValueError(f"autogluon time_limit must be positive seconds; got {time_limit}")
        self.problem_type = problem_type
        self.presets = presets
        self.time_limit = float(time_limit)
        self.eval_metric = eval_metric
        self.hyperparameters = hyperparameters
        self.num_gpus = int(num_gpus)
        self.num_cpus = int(num_cpus)
        self.seed = int(seed)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn convention)."""
        return {
            "problem_type": self.problem_type,
            "presets": self.presets,
            "time_limit": self.time_limit,
            "eval_metric": self.eval_metric,
            "hyperparameters": self.hyperparameters,
            "num_gpus": self.num_gpus,
            "num_cpus": self.num_cpus,
            "seed": self.seed,
        }

    def set_params(self, **params: Any) -> AutoGluonEstimator:
        """Set constructor arguments (scikit-learn convention)."""
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"AutoGluonEstimator has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def _adopt(self, folder: Path) -> None:
        self.path_ = folder
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(folder), True)

    def fit(self, X: pd.DataFrame, y: Any) -> AutoGluonEstimator:
        """Fit a TabularPredictor on ``X`` (raw features) and ``y`` within ``time_limit``."""
        from autogluon.tabular import TabularPredictor

        if not isinstance(X, pd.DataFrame):
            raise TypeError("AutoGluonEstimator needs a DataFrame of raw feature columns")
        train = X.reset_index(drop=True).copy()
        train[LABEL] = np.asarray(y)
        work = _new_folder()
        try:
            predictor = TabularPredictor(
                label=LABEL,
                problem_type=self.problem_type,
                eval_metric=EVAL_METRICS[self.eval_metric] if self.eval_metric else None,
                path=str(work / "fit"),
                verbosity=0,
            )
            predictor.fit(
                train,
                presets=self.presets,
                time_limit=max(MIN_TIME_LIMIT_S, self.time_limit),
                hyperparameters=self.hyperparameters,
                num_gpus=self.num_gpus,
                num_cpus=self.num_cpus,
                calibrate_decision_threshold=False,
            )
            # Keep only what the best model needs to predict (smaller pickle, faster load).
            folder = _new_folder()
            self.predictor_ = predictor.clone_for_deployment(
                path=str(folder / "predictor"), return_clone=True, dirs_exist_ok=True
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._adopt(folder)
        self.model_best_ = str(self.predictor_.model_best)
        if self.problem_type != "regression":
            self.classes_ = np.sort(np.unique(np.asarray(y)))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        proba = self.predictor_.predict_proba(X.reset_index(drop=True), as_multiclass=True)
        return proba.reindex(columns=list(self.classes_), fill_value=0.0).to_numpy(dtype=float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Encoded labels (argmax of the probabilities) or regression values."""
        if self.problem_type != "regression":
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        return self.predictor_.predict(X.reset_index(drop=True)).to_numpy(dtype=float)

    # --- pickling: the predictor's folder travels inside the pickle ----------------------

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("predictor_", "_finalizer")}
        if "path_" in self.__dict__:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                tar.add(str(self.path_ / "predictor"), arcname="predictor")
            state["packed_predictor_"] = buf.getvalue()
            del state["path_"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        packed = state.pop("packed_predictor_", None)
        self.__dict__.update(state)
        if packed is None:
            return
        from autogluon.tabular import TabularPredictor

        folder = _new_folder()
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            tar.extractall(folder, filter="data")
        self._adopt(folder)
        self.predictor_ = TabularPredictor.load(
            str(folder / "predictor"), verbosity=0, require_py_version_match=False
        )
