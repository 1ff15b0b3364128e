"""Loading a PREPARED folder (the prep stage's output) into memory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer

from ._families import TREE_FAMILIES, check_family
from ._metrics import check_problem_type, default_metric

PREPARED_FILES = (
    "train.parquet",
    "valid.parquet",
    "test.parquet",
    "folds.parquet",
    "preprocessor.joblib",
    "prep.json",
)
TREE_PREPROCESSOR_FILE = "preprocessor_trees.joblib"
"""Optional: the tree families' preprocessor (no scaling, categoricals as integer codes)."""
SPLITS = ("train", "valid", "test")
_REQUIRED_SPEC_KEYS = ("target", "problem_type", "feature_columns")


class PreparedDataError(ValueError):
    """A PREPARED folder that is incomplete or inconsistent with its prep.json."""


@dataclass
class PreparedData:
    """The train/valid/test splits, CV folds and fitted preprocessor of one experiment."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_valid: pd.DataFrame
    y_valid: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    folds: np.ndarray
    preprocessor: ColumnTransformer
    spec: dict[str, Any] = field(repr=False)
    preprocessor_trees: Any = field(default=None, repr=False)

    @property
    def tree_categorical_features(self) -> list[int]:
        """Output columns of ``preprocessor_trees`` holding categorical codes (prep.json)."""
        if self.preprocessor_trees is None:
            return []
        return [int(i) for i in self.spec.get("tree_categorical_features") or []]

    def preprocessor_for(self, family: str) -> Any:
        """The preprocessor ``family`` is fitted with: the tree one for tree families when
        the PREPARED folder has it, else the dense one."""
        check_family(family)
        if family in TREE_FAMILIES and self.preprocessor_trees is not None:
            return self.preprocessor_trees
        return self.preprocessor

    def categorical_features_for(self, family: str) -> list[int]:
        """Categorical-code columns of :meth:`preprocessor_for`'s output (empty if none)."""
        check_family(family)
        if family in TREE_FAMILIES and self.preprocessor_trees is not None:
            return self.tree_categorical_features
        return []

    @property
    def target(self) -> str:
        """Name of the target column."""
        return str(self.spec["target"])

    @property
    def problem_type(self) -> str:
        """binary, multiclass or regression."""
        return str(self.spec["problem_type"])

    @property
    def metric(self) -> str:
        """The experiment's headline metric (prep.json ``metric``, else the type's default)."""
        return str(self.spec.get("metric") or default_metric(self.problem_type))

    @property
    def feature_columns(self) -> list[str]:
        """The feature columns models are fitted on, in order."""
        return [str(c) for c in self.spec["feature_columns"]]

    @property
    def n_folds(self) -> int:
        """Number of distinct CV folds in ``folds``."""
        return int(np.unique(self.folds).size)

    def split(self, name: str) -> tuple[pd.DataFrame, pd.Series]:
        """Return ``(X, y)`` of the split ``name`` (train, valid or test)."""
        if name not in SPLITS:
            raise PreparedDataError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        return getattr(self, f"X_{name}"), getattr(self, f"y_{name}")

    def combined(self, names: tuple[str, ...] | list[str]) -> tuple[pd.DataFrame, pd.Series]:
        """Concatenate the splits ``names`` (e.g. ``("train", "valid")``) into one ``(X, y)``."""
        if not names:
            raise PreparedDataError("name at least one split to combine (train, valid, test)")
        parts = [self.split(n) for n in names]
        X = pd.concat([p[0] for p in parts], ignore_index=True)
        y = pd.concat([p[1] for p in parts], ignore_index=True)
        return X, y


def _read_spec(folder: Path) -> dict[str, Any]:
    try:
        spec = json.loads((folder / "prep.json").read_text())
    except json.JSONDecodeError as exc:
        raise PreparedDataError(
            f"{folder / 'prep.json'} is not valid JSON ({exc}); re-run the prep stage"
        ) from exc
    if not isinstance(spec, dict):
        raise PreparedDataError(f"{folder / 'prep.json'} must hold a JSON object")
    missing = [k for k in _REQUIRED_SPEC_KEYS if k not in spec]
    if missing:
        raise PreparedDataError(
            f"{folder / 'prep.json'} lacks {', '.join(missing)}; re-run the prep stage"
        )
    try:
        check_problem_type(spec["problem_type"])
    except ValueError as exc:
        raise PreparedDataError(f"{folder / 'prep.json'}: {exc}") from exc
    return spec


def _split_xy(
    frame: pd.DataFrame, name: str, target: str, features: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise PreparedDataError(
            f"{name}.parquet lacks columns named in prep.json: {', '.join(missing)}"
        )
    y = frame[target]
    if y.isna().any():
        raise PreparedDataError(
            f"{name}.parquet has {int(y.isna().sum())} rows with a missing target "
            f"{target!r}; prep must drop them"
        )
    return frame[features].reset_index(drop=True), y.reset_index(drop=True)


def load_prepared(folder: Path | str) -> PreparedData:
    """Read a PREPARED folder (splits, folds, fitted preprocessor(s), prep.json).

    ``preprocessor_trees.joblib`` is optional: without it every family uses
    ``preprocessor.joblib``.

    Raises PreparedDataError when a file is missing or the files disagree with each other.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PreparedDataError(f"prepared folder {folder} does not exist or is not a folder")
    missing = [f for f in PREPARED_FILES if not (folder / f).is_file()]
    if missing:
        raise PreparedDataError(
            f"prepared folder {folder} lacks {', '.join(missing)}; re-run the prep stage"
        )
    spec = _read_spec(folder)
    target = str(spec["target"])
    features = [str(c) for c in spec["feature_columns"]]
    if not features:
        raise PreparedDataError(f"{folder / 'prep.json'} lists no feature_columns")

    splits = {}
    for name in SPLITS:
        splits[name] = _split_xy(
            pd.read_parquet(folder / f"{name}.parquet"), name, target, features
        )

    folds_frame = pd.read_parquet(folder / "folds.parquet")
    if "fold" not in folds_frame.columns:
        raise PreparedDataError("folds.parquet must hold an int column named 'fold'")
    folds = folds_frame["fold"].to_numpy()
    if len(folds) != len(splits["train"][0]):
        raise PreparedDataError(
            f"folds.parquet has {len(folds)} rows but train.parquet has "
            f"{len(splits['train'][0])}; they must be row-aligned"
        )
    if np.unique(folds).size < 2:
        raise PreparedDataError("folds.parquet must define at least 2 folds")
    if not np.issubdtype(folds.dtype, np.integer) or folds.min() < 0:
        raise PreparedDataError("folds.parquet 'fold' must hold non-negative integers")

    preprocessor = joblib.load(folder / "preprocessor.joblib")
    if not hasattr(preprocessor, "fit_transform"):
        raise PreparedDataError(
            f"preprocessor.joblib holds a {type(preprocessor).__name__}, not a "
            "scikit-learn transformer"
        )
    trees = None
    if (folder / TREE_PREPROCESSOR_FILE).is_file():
        trees = joblib.load(folder / TREE_PREPROCESSOR_FILE)
        if not hasattr(trees, "fit_transform"):
            raise PreparedDataError(
                f"{TREE_PREPROCESSOR_FILE} holds a {type(trees).__name__}, not a "
                "scikit-learn transformer"
            )
        cats = spec.get("tree_categorical_features") or []
        if not isinstance(cats, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in cats
        ):
            raise PreparedDataError(
                f"{folder / 'prep.json'}: tree_categorical_features must be a list of "
                f"non-negative column indices; got {cats!r}"
            )
    return PreparedData(
        X_train=splits["train"][0],
        y_train=splits["train"][1],
        X_valid=splits["valid"][0],
        y_valid=splits["valid"][1],
        X_test=splits["test"][0],
        y_test=splits["test"][1],
        folds=folds.astype(np.int64),
        preprocessor=preprocessor,
        spec=spec,
        preprocessor_trees=trees,
    )
