"""Test helper: build PREPARED folders (as the prep stage writes them) from real datasets.

Shared by the modeling, train-gpu, tune and select unit tests; those folders' conftest.py
files load this module by path and re-export its fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def make_prepared(
    folder: Path,
    frame: pd.DataFrame,
    target: str,
    problem_type: str,
    *,
    n_folds: int = 3,
    seed: int = 0,
    trees: bool = False,
) -> Path:
    """Write a PREPARED folder for ``frame`` into ``folder`` and return it.

    With ``trees``, also write ``preprocessor_trees.joblib`` (numeric columns passed
    through with their NaNs, categoricals as ordinal codes, -1 = missing or unknown) and
    list the code columns in prep.json ``tree_categorical_features``, as prep does.
    """
    folder.mkdir(parents=True, exist_ok=True)
    classification = problem_type != "regression"
    strat = frame[target] if classification else None
    train, rest = train_test_split(frame, test_size=0.4, random_state=seed, stratify=strat)
    strat = rest[target] if classification else None
    valid, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=strat)

    features = [c for c in frame.columns if c != target]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    preprocessor = ColumnTransformer(
        [
            (
                "num",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            ),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    preprocessor.fit(train[features])

    splitter = (
        StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        if classification
        else KFold(n_folds, shuffle=True, random_state=seed)
    )
    folds = np.zeros(len(train), dtype=np.int64)
    for i, (_, held) in enumerate(splitter.split(train[features], train[target])):
        folds[held] = i

    for name, part in (("train", train), ("valid", valid), ("test", test)):
        part.reset_index(drop=True).to_parquet(folder / f"{name}.parquet")
    pd.DataFrame({"fold": folds}).to_parquet(folder / "folds.parquet")
    joblib.dump(preprocessor, folder / "preprocessor.joblib")
    spec = {
        "target": target,
        "problem_type": problem_type,
        "metric": METRIC[problem_type],
        "feature_columns": features,
        "numeric_columns": numeric,
        "categorical_columns": categorical,
        "dropped_columns": {},
        "n_folds": n_folds,
        "seed": seed,
        "split_sizes": {"train": len(train), "valid": len(valid), "test": len(test)},
    }
    if trees:
        tree_preprocessor = ColumnTransformer(
            [
                ("num", "passthrough", numeric),
                (
                    "cat",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        encoded_missing_value=-1,
                    ),
                    categorical,
                ),
            ]
        )
        tree_preprocessor.fit(train[features])
        joblib.dump(tree_preprocessor, folder / "preprocessor_trees.joblib")
        spec["tree_categorical_features"] = list(
            range(len(numeric), len(numeric) + len(categorical))
        )
    if classification:
        spec["class_labels"] = sorted(str(v) for v in frame[target].unique())
    (folder / "prep.json").write_text(json.dumps(spec, indent=2))
    return folder


def penguins_frame() -> pd.DataFrame:
    """Palmer penguins: multiclass string target ``species``, missing values, categoricals."""
    from palmerpenguins import load_penguins

    return load_penguins()


def breast_cancer_frame() -> pd.DataFrame:
    """Breast cancer: binary integer target ``target`` (0 malignant, 1 benign)."""
    return load_breast_cancer(as_frame=True).frame


def diabetes_frame() -> pd.DataFrame:
    """Diabetes: regression target ``target``."""
    return load_diabetes(as_frame=True).frame


@pytest.fixture(scope="session")
def penguins_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PREPARED folder for penguins (multiclass)."""
    return make_prepared(
        tmp_path_factory.mktemp("penguins"), penguins_frame(), "species", "multiclass"
    )


@pytest.fixture(scope="session")
def penguins_prepared_trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PREPARED folder for penguins with a tree preprocessor (categorical codes)."""
    return make_prepared(
        tmp_path_factory.mktemp("penguins_trees"),
        penguins_frame(),
        "species",
        "multiclass",
        trees=True,
    )


@pytest.fixture(scope="session")
def cancer_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PREPARED folder for breast cancer (binary)."""
    return make_prepared(
        tmp_path_factory.mktemp("cancer"), breast_cancer_frame(), "target", "binary"
    )


@pytest.fixture(scope="session")
def diabetes_prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PREPARED folder for diabetes (regression)."""
    return make_prepared(
        tmp_path_factory.mktemp("diabetes"), diabetes_frame(), "target", "regression"
    )
