"""load_prepared: reading a PREPARED folder and rejecting broken ones."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from mlmesh_common.modeling import PreparedDataError, load_prepared


def test_loads_splits_folds_and_preprocessor(penguins_prepared):
    data = load_prepared(penguins_prepared)
    spec = json.loads((penguins_prepared / "prep.json").read_text())
    assert data.target == "species"
    assert data.problem_type == "multiclass"
    assert data.metric == "accuracy"
    assert data.feature_columns == spec["feature_columns"]
    assert list(data.X_train.columns) == spec["feature_columns"]
    sizes = spec["split_sizes"]
    assert (len(data.X_train), len(data.X_valid), len(data.X_test)) == (
        sizes["train"],
        sizes["valid"],
        sizes["test"],
    )
    assert len(data.y_train) == len(data.X_train)
    assert set(data.y_train) == {"Adelie", "Chinstrap", "Gentoo"}
    assert data.folds.shape == (len(data.X_train),)
    assert data.n_folds == 3
    # The preprocessor is fitted: it transforms without refitting.
    out = data.preprocessor.transform(data.X_valid)
    assert out.shape[0] == len(data.X_valid)
    assert not np.isnan(out).any()


def test_combined_concatenates_splits(penguins_prepared):
    data = load_prepared(penguins_prepared)
    X, y = data.combined(("train", "valid"))
    assert len(X) == len(data.X_train) + len(data.X_valid)
    assert list(y[: len(data.y_train)]) == list(data.y_train)
    with pytest.raises(PreparedDataError, match="unknown split"):
        data.split("holdout")


@pytest.fixture
def broken_copy(penguins_prepared, tmp_path):
    target = tmp_path / "prepared"
    shutil.copytree(penguins_prepared, target)
    return target


def test_missing_file(broken_copy):
    (broken_copy / "folds.parquet").unlink()
    with pytest.raises(PreparedDataError, match="lacks folds.parquet"):
        load_prepared(broken_copy)


def test_not_a_folder(tmp_path):
    with pytest.raises(PreparedDataError, match="does not exist"):
        load_prepared(tmp_path / "nope")


def test_misaligned_folds(broken_copy):
    pd.DataFrame({"fold": [0, 1, 2]}).to_parquet(broken_copy / "folds.parquet")
    with pytest.raises(PreparedDataError, match="row-aligned"):
        load_prepared(broken_copy)


def test_missing_feature_column(broken_copy):
    frame = pd.read_parquet(broken_copy / "test.parquet").drop(columns=["island"])
    frame.to_parquet(broken_copy / "test.parquet")
    with pytest.raises(PreparedDataError, match="test.parquet lacks columns .*island"):
        load_prepared(broken_copy)


def test_missing_target_values(broken_copy):
    frame = pd.read_parquet(broken_copy / "valid.parquet")
    frame.loc[0, "species"] = None
    frame.to_parquet(broken_copy / "valid.parquet")
    with pytest.raises(PreparedDataError, match="missing target"):
        load_prepared(broken_copy)


def test_bad_spec(broken_copy):
    spec = json.loads((broken_copy / "prep.json").read_text())
    spec["problem_type"] = "ranking"
    (broken_copy / "prep.json").write_text(json.dumps(spec))
    with pytest.raises(PreparedDataError, match="unknown problem type"):
        load_prepared(broken_copy)
    (broken_copy / "prep.json").write_text("{not json")
    with pytest.raises(PreparedDataError, match="not valid JSON"):
        load_prepared(broken_copy)
