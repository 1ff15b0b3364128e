"""A Gaussian process as one scikit-learn-style estimator (the ``gaussian_process`` family).

Kernel: a constant times an RBF (or Matern 5/2) kernel with one length scale per feature
(automatic relevance determination, up to ``ard_max_features`` features; one shared length
scale beyond) plus a white-noise term. Its hyperparameters are fitted by maximising the
marginal likelihood on at most ``optimize_rows`` rows (the optimiser costs O(n^3) per step);
the process is then conditioned on every training row with those hyperparameters fixed.
On small, smooth regression problems this is often the best model there is: the length
scales switch irrelevant features off and the noise term keeps it from overfitting.

Regression uses ``GaussianProcessRegressor`` (target normalised); classification uses
``GaussianProcessClassifier`` (Laplace approximation, one-vs-rest for multiclass).
Prediction runs in blocks of ``PREDICT_BLOCK_ROWS`` rows so that the kernel matrix between
test and training rows stays small.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

KERNELS = ("rbf", "matern")
PREDICT_BLOCK_ROWS = 2048
_LENGTH_SCALE_BOUNDS = (1e-2, 1e5)
_NOISE_BOUNDS = (1e-6, 1e1)


class GaussianProcessEstimator:
    """A Gaussian process whose kernel is fitted on a subsample and conditioned on all rows.

    ``problem_type`` is binary, multiclass or regression (labels integer-encoded for
    classification). ``kernel`` is ``rbf`` or ``matern``; ``ard`` gives each feature its own
    length scale; ``n_restarts_optimizer`` extra optimiser starts from random points.
    """

    def __init__(
        self,
        problem_type: str,
        *,
        kernel: str = "rbf",
        ard: bool = True,
        ard_max_features: int = 64,
        optimize_rows: int = 250,
        n_restarts_optimizer: int = 0,
        seed: int = 0,
    ) -> None:
        if kernel not in KERNELS:
            raise TypeError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")
        if int(optimize_rows) < 10:
            raise TypeError(f"optimize_rows must be at least 10; got {optimize_rows!r}")
        self.problem_type = problem_type
        self.kernel = kernel
        self.ard = bool(ard)
        self.ard_max_features = int(ard_max_features)
        self.optimize_rows = int(optimize_rows)
        self.n_restarts_optimizer = int(n_restarts_optimizer)
        self.seed = int(seed)

    # scikit-learn's estimator protocol (clone, get_params) without its BaseEstimator checks
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments, for ``sklearn.base.clone``."""
        return {
            "problem_type": self.problem_type,
            "kernel": self.kernel,
            "ard": self.ard,
            "ard_max_features": self.ard_max_features,
            "optimize_rows": self.optimize_rows,
            "n_restarts_optimizer": self.n_restarts_optimizer,
            "seed": self.seed,
        }

    def set_params(self, **params: Any) -> GaussianProcessEstimator:
        """Set constructor arguments (``sklearn.base.clone`` protocol)."""
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _initial_kernel(self, n_features: int) -> Any:
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

        per_feature = self.ard and n_features <= self.ard_max_features
        scale: Any = np.ones(n_features) if per_feature else 1.0
        if self.kernel == "rbf":
            shape = RBF(length_scale=scale, length_scale_bounds=_LENGTH_SCALE_BOUNDS)
        else:
            shape = Matern(length_scale=scale, length_scale_bounds=_LENGTH_SCALE_BOUNDS, nu=2.5)
        return ConstantKernel() * shape + WhiteKernel(noise_level_bounds=_NOISE_BOUNDS)

    def _process(self, kernel: Any, optimize: bool) -> Any:
        from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor

        optimizer = "fmin_l_bfgs_b" if optimize else None
        if self.problem_type == "regression":
            return GaussianProcessRegressor(
                kernel=kernel,
                normalize_y=True,
                optimizer=optimizer,
                n_restarts_optimizer=self.n_restarts_optimizer if optimize else 0,
                random_state=self.seed,
            )
        return GaussianProcessClassifier(
            kernel=kernel,
            optimizer=optimizer,
            n_restarts_optimizer=self.n_restarts_optimizer if optimize else 0,
            random_state=self.seed,
        )

    def fit(self, X: Any, y: np.ndarray) -> GaussianProcessEstimator:
        """Fit the kernel on a subsample of at most ``optimize_rows`` rows, then condition on
        every row of ``(X, y)`` with that kernel."""
        from sklearn.exceptions import ConvergenceWarning

        X_arr = np.asarray(X, dtype=float)
        y_arr = np.asarray(y)
        sample = _optimization_rows(y_arr, self.optimize_rows, self.problem_type, self.seed)
        with warnings.catch_warnings():
            # A length scale at its upper bound is the point of ARD (the feature is
            # switched off), not a failure; sklearn warns about it all the same.
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            fitted = self._process(self._initial_kernel(X_arr.shape[1]), optimize=True)
            fitted.fit(X_arr[sample], y_arr[sample])
            self.kernel_ = _learned_kernel(fitted)
            if len(sample) < len(y_arr):
                fitted = self._process(self.kernel_, optimize=False).fit(X_arr, y_arr)
        self.process_ = fitted
        self.optimized_on_rows_ = len(sample)
        self.n_features_in_ = X_arr.shape[1]
        if self.problem_type != "regression":
            self.classes_ = fitted.classes_
        return self

    def _blocks(self, X: Any) -> list[np.ndarray]:
        X_arr = np.asarray(X, dtype=float)
        return [X_arr[i : i + PREDICT_BLOCK_ROWS] for i in range(0, len(X_arr), PREDICT_BLOCK_ROWS)]

    def predict(self, X: Any) -> np.ndarray:
        """Posterior mean (regression) or most probable class index (classification)."""
        parts = [self.process_.predict(block) for block in self._blocks(X)]
        return np.concatenate(parts) if parts else np.empty(0)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (classification only)."""
        if self.problem_type == "regression":
            raise AttributeError("a regression Gaussian process has no predict_proba")
        parts = [self.process_.predict_proba(block) for block in self._blocks(X)]
        return np.vstack(parts) if parts else np.empty((0, len(self.classes_)))


def _learned_kernel(process: Any) -> Any:
    from sklearn.gaussian_process.kernels import CompoundKernel

    # A one-vs-rest multiclass classifier holds one kernel per class (a CompoundKernel);
    # the refit on every row uses the first class's for all of them.
    kernel = process.kernel_
    return kernel.kernels[0] if isinstance(kernel, CompoundKernel) else kernel


def _optimization_rows(y: np.ndarray, cap: int, problem_type: str, seed: int) -> np.ndarray:
    """Row indices the kernel is optimised on: all rows up to ``cap``, else a (stratified
    for classification) random subsample of ``cap`` rows, sorted."""
    n = len(y)
    if n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if problem_type == "regression":
        return np.sort(rng.choice(n, size=cap, replace=False))
    from sklearn.model_selection import train_test_split

    try:
        keep, _ = train_test_split(np.arange(n), train_size=cap, random_state=seed, stratify=y)
    except ValueError:  # a class too small to stratify
        keep = rng.choice(n, size=cap, replace=False)
    return np.sort(keep)
