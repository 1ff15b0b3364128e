"""Fixtures for the publish unit tests: real fitted pipelines pickled like the select stage."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

IRIS_NUMERIC = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal_width"]
IRIS_CATEGORICAL = ["colour class"]


def _iris_frame() -> tuple[pd.DataFrame, pd.Series]:
    data = load_iris(as_frame=True)
    frame = data.data.rename(columns={"petal width (cm)": "petal_width"})
    # a categorical feature derived from the data (so it carries signal), with gaps
    frame["colour class"] = np.where(frame["petal length (cm)"] > 4.0, "dark", "pale")
    rng = np.random.default_rng(0)
    frame.loc[rng.choice(len(frame), 10, replace=False), "sepal width (cm)"] = np.nan
    frame.loc[rng.choice(len(frame), 10, replace=False), "colour class"] = np.nan
    target = pd.Series(np.asarray(data.target_names)[data.target], name="species")
    return frame, target


def _preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )


@pytest.fixture(scope="session")
def iris_data() -> tuple[pd.DataFrame, pd.Series]:
    return _iris_frame()


@pytest.fixture(scope="session")
def iris_model_path(tmp_path_factory: pytest.TempPathFactory, iris_data) -> Path:
    """A fitted multiclass Pipeline with string labels, saved with joblib."""
    frame, target = iris_data
    features = IRIS_NUMERIC + IRIS_CATEGORICAL
    model = Pipeline(
        [
            ("prep", _preprocessor(IRIS_NUMERIC, IRIS_CATEGORICAL)),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame[features], target)
    model.feature_columns = features
    path = tmp_path_factory.mktemp("models") / "iris.joblib"
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="session")
def iris_schema() -> list[dict]:
    return [{"name": n, "kind": "numeric", "dtype": "float64"} for n in IRIS_NUMERIC] + [
        {"name": n, "kind": "categorical", "dtype": "str"} for n in IRIS_CATEGORICAL
    ]


@pytest.fixture(scope="session")
def diabetes_model_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A fitted regression Pipeline with an integer and a boolean feature."""
    data = load_diabetes(as_frame=True)
    frame = data.data[["age", "bmi", "bp"]].copy()
    frame["visits"] = (np.arange(len(frame)) % 7).astype("int64")
    # booleans as object dtype: SimpleImputer rejects dtype bool, so prep feeds them this way
    frame["smoker"] = (data.data["s1"] > 0).astype(object)
    model = Pipeline(
        [("prep", _preprocessor(["age", "bmi", "bp", "visits"], ["smoker"])), ("reg", Ridge())]
    ).fit(frame, data.target)
    model.feature_columns = list(frame.columns)
    path = tmp_path_factory.mktemp("models") / "diabetes.joblib"
    joblib.dump(model, path)
    return path, frame


@pytest.fixture(scope="session")
def mesh_binary_model(tmp_path_factory: pytest.TempPathFactory):
    """A LightGBM MeshModel on breast-cancer columns plus a string category with gaps,
    built with prep's preprocessor: (model path, test rows, feature schema)."""
    from sklearn.datasets import load_breast_cancer

    from mlmesh_common.modeling import MeshModel
    from mlmesh_prep.preparation import build_preprocessor

    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:, :6].copy()
    rng = np.random.default_rng(3)
    frame["site"] = np.where(frame["mean radius"] > 14, "north", "south")
    frame.loc[rng.choice(len(frame), 15, replace=False), "site"] = np.nan
    frame.loc[rng.choice(len(frame), 15, replace=False), "mean texture"] = np.nan
    target = np.where(data.target == 1, "benign", "malignant")
    numeric = list(frame.columns[:6])
    model = MeshModel(build_preprocessor(numeric, ["site"]), "lightgbm", "binary",
                      list(frame.columns), {"n_estimators": 60}).fit(frame, target)
    path = tmp_path_factory.mktemp("mesh") / "model.joblib"
    joblib.dump(model, path)
    schema = [{"name": c, "kind": "numeric", "dtype": "float64"} for c in numeric] + [
        {"name": "site", "kind": "categorical", "dtype": "object"}]
    return path, frame.sample(40, random_state=1), schema
