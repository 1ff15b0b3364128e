"""ARFF: attribute types, quoting, missing values, sparse rows; checked against scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy.io import arff as scipy_arff

from mlmesh_acquire import UnreadableTableError, detect_format, to_parquet

DENSE = """% Iris-like sample
@RELATION 'flowers'

@ATTRIBUTE sepal_length NUMERIC
@ATTRIBUTE 'sepal width' REAL
@ATTRIBUTE petals INTEGER
@ATTRIBUTE class {Iris-setosa,Iris-versicolor,Iris-virginica}

@DATA
5.1,3.5,2,Iris-setosa
4.9,?,3,Iris-versicolor
% a comment inside the data
6.3,3.3,?,Iris-virginica
"""


def test_dense_arff_matches_scipy(tmp_path: Path) -> None:
    src = tmp_path / "flowers.arff"
    src.write_text(DENSE)
    assert detect_format(src) == "arff"
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.columns == ["sepal_length", "sepal width", "petals", "class"]
    back = pd.read_parquet(tmp_path / "t.parquet")
    data, _meta = scipy_arff.loadarff(src)
    expected = pd.DataFrame(data)
    np.testing.assert_allclose(back["sepal_length"], expected["sepal_length"])
    np.testing.assert_allclose(back["sepal width"], expected["sepal width"])
    assert back["class"].tolist() == [v.decode() for v in expected["class"]]
    assert str(pq.read_schema(tmp_path / "t.parquet").field("petals").type) == "int64"
    assert pd.isna(back["petals"].iloc[2]) and back["petals"].iloc[1] == 3


def test_string_date_and_sparse_rows_without_extension(tmp_path: Path) -> None:
    src = tmp_path / "download"
    src.write_text(
        "@relation r\n@attribute a numeric\n@attribute b {x,y}\n@attribute note string\n"
        "@attribute day date 'yyyy-MM-dd'\n@data\n"
        "1,y,'it\\'s, quoted',2024-01-02\n"
        "2,x,\"double \\\"q\\\"\",?\n"
        "{0 5, 2 sparse}\n"
    )
    info = to_parquet(src, tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert info.format == "arff" and info.n_rows == 3
    assert back["a"].tolist() == [1.0, 2.0, 5.0]
    assert back["b"].tolist() == ["y", "x", "x"]  # omitted sparse nominal -> first label
    assert back["note"].tolist() == ["it's, quoted", 'double "q"', "sparse"]
    assert back["day"].iloc[0] == pd.Timestamp("2024-01-02") and pd.isna(back["day"].iloc[1])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("@relation r\n@attribute a numeric\n@data\n1,2\n", "has 2 values but 1 attributes"),
        ("@relation r\n@attribute a relational\n@data\n", "relational"),
        ("@relation r\n@attribute a numeric\n", "no @data"),
        ("@relation r\n@attribute a numeric\n@data\n", "no data rows"),
        ("@relation r\n@attribute a blob\n@data\n1\n", "unknown type"),
    ],
)
def test_unreadable_arff(tmp_path: Path, content: str, reason: str) -> None:
    src = tmp_path / "bad.arff"
    src.write_text(content)
    with pytest.raises(UnreadableTableError, match=reason):
        to_parquet(src, tmp_path / "t.parquet")
