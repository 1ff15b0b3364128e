"""ParquetSink: chunks with drifting schemas unified into one file, nested values flattened."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmesh_acquire.formats import ParquetSink, UnreadableTableError, _sink, unify_types


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (pa.null(), pa.string(), pa.string()),
        (pa.int64(), pa.null(), pa.int64()),
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.bool_(), pa.int64(), pa.int64()),
        (pa.uint64(), pa.int64(), pa.float64()),
        (pa.timestamp("s"), pa.timestamp("ns"), pa.timestamp("us")),
        (pa.date32(), pa.timestamp("ms"), pa.timestamp("us")),
        (pa.timestamp("s", "UTC"), pa.timestamp("s"), pa.string()),
        (pa.int64(), pa.string(), pa.string()),
        (pa.float64(), pa.bool_(), pa.float64()),
    ],
)
def test_unify_types(a: pa.DataType, b: pa.DataType, expected: pa.DataType) -> None:
    assert unify_types(a, b) == expected
    assert unify_types(b, a) == expected


def test_drifting_chunks_are_merged_under_the_widest_schema(tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    with ParquetSink(out, "drift.jsonl") as sink:
        sink.write(pa.table({"a": [1, 2], "b": pa.nulls(2), "c": [1, 2]}))
        sink.write(pa.table({"a": [3, 4], "b": ["x", None], "c": [1.5, 2.5]}))
        sink.write(pa.table({"a": [5], "c": ["text"], "d": [True]}))
        result = sink.close()
    assert result.n_rows == 5 and result.columns == ["a", "b", "c", "d"]
    table = pq.read_table(out)
    assert table.schema.types == [pa.int64(), pa.string(), pa.string(), pa.bool_()]
    assert table.column("b").to_pylist() == [None, None, "x", None, None]
    assert table.column("c").to_pylist() == ["1", "2", "1.5", "2.5", "text"]
    assert table.column("d").to_pylist() == [None, None, None, None, True]
    assert any("'c' changes type" in w and "stored as text" in w for w in result.warnings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]


def test_agreeing_chunks_are_buffered_into_row_groups(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sink, "ROW_GROUP_ROWS", 40)
    with ParquetSink(tmp_path / "t.parquet", "t") as sink:
        for start in range(0, 100, 10):
            sink.write(pa.record_batch({"n": list(range(start, start + 10))}))
        result = sink.close()
    assert result.warnings == [] and result.n_rows == 100
    source = pq.ParquetFile(tmp_path / "t.parquet")
    assert [source.metadata.row_group(i).num_rows for i in range(3)] == [40, 40, 20]
    assert source.read().column("n").to_pylist() == list(range(100))


def test_nested_values_are_flattened(tmp_path: Path) -> None:
    table = pa.table({
        "user": pa.array([{"name": "a", "geo": {"lat": 1.0}}, {"name": "b", "geo": None}]),
        "tags": pa.array([["x", "y"], None]),
        "kind": pa.array(["p", "q"]).dictionary_encode(),
        "price": pa.array([1, 2], type=pa.decimal128(10, 2)),
        "note": pa.array(["n1", "n2"], type=pa.large_string()),
    })
    with ParquetSink(tmp_path / "t.parquet", "t") as sink:
        sink.write(table)
        result = sink.close()
    back = pq.read_table(tmp_path / "t.parquet")
    assert result.columns == ["user.name", "user.geo.lat", "tags", "kind", "price", "note"]
    assert back.column("user.geo.lat").to_pylist() == [1.0, None]
    assert back.column("tags").to_pylist() == ['["x", "y"]', None]
    assert back.schema.field("kind").type == pa.string()
    assert back.schema.field("price").type == pa.float64()
    assert back.schema.field("note").type == pa.string()
    assert any("'tags' holds lists" in w for w in result.warnings)


def test_repeated_and_blank_names_are_renamed(tmp_path: Path) -> None:
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2]), pa.array([3])],
                                 names=["x", "x", " "])
    with ParquetSink(tmp_path / "t.parquet", "t") as sink:
        sink.write(table)
        assert sink.close().columns == ["x", "x.1", "column_3"]


def test_empty_results_raise_and_leave_no_files(tmp_path: Path) -> None:
    with pytest.raises(UnreadableTableError, match="2 column\\(s\\) but no data rows"):
        with ParquetSink(tmp_path / "t.parquet", "t.csv") as sink:
            sink.write(pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())}))
            sink.close()
    with pytest.raises(UnreadableTableError, match="has no columns"):
        with ParquetSink(tmp_path / "t.parquet", "t.csv") as sink:
            sink.close()
    assert list(tmp_path.iterdir()) == []


def test_leaving_with_an_error_removes_partial_segments(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ParquetSink(tmp_path / "t.parquet", "t") as sink:
        sink.write(pa.table({"a": [1]}))
        sink.write(pa.table({"a": ["x"]}))  # second segment
        raise RuntimeError("reader failed")
    assert list(tmp_path.iterdir()) == []


def test_reset_discards_what_was_written(tmp_path: Path) -> None:
    with ParquetSink(tmp_path / "t.parquet", "t") as sink:
        sink.write(pa.table({"a": [1, 2, 3]}))
        sink.reset()
        sink.write(pa.table({"a": ["x"]}))
        result = sink.close()
    assert result.n_rows == 1
    assert pq.read_table(tmp_path / "t.parquet").column("a").to_pylist() == ["x"]
