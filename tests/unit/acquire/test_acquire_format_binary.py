"""Parquet folders, Feather / Arrow IPC and HDF5 sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import tables

from mlmesh_acquire import UnreadableTableError, detect_format, to_parquet


def _frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"id": np.arange(n), "value": np.linspace(0, 1, n),
                         "region": np.array(["north", "south", "east"])[np.arange(n) % 3],
                         "year": 2020 + np.arange(n) % 2})


def test_hive_partitioned_parquet_folder(tmp_path: Path) -> None:
    folder = tmp_path / "sales"
    pq.write_to_dataset(pa.Table.from_pandas(_frame(), preserve_index=False), folder,
                        partition_cols=["year", "region"])
    (folder / "_SUCCESS").write_text("")
    (folder / ".hidden.crc").write_text("x")
    assert detect_format(folder) == "parquet"
    info = to_parquet(folder, tmp_path / "t.parquet")
    assert info.n_rows == 60 and sorted(info.columns) == ["id", "region", "value", "year"]
    back = pd.read_parquet(tmp_path / "t.parquet").sort_values("id", ignore_index=True)
    assert back["region"].tolist() == _frame()["region"].tolist()
    assert back["year"].astype(int).tolist() == _frame()["year"].tolist()


def test_parquet_folder_with_parts_that_differ(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.table({"a": pa.array([1, 2], pa.int32())}), folder / "part-0.parquet")
    pq.write_table(pa.table({"a": pa.array([3], pa.int64()), "b": ["x"]}),
                   folder / "part-1.parquet")
    info = to_parquet(folder, tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert info.n_rows == 3 and table.schema.field("a").type == pa.int64()
    assert sorted(table.column("a").to_pylist()) == [1, 2, 3]


def test_folder_without_parquet_files(tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "readme.md").write_text("hi")
    with pytest.raises(UnreadableTableError, match="folder without Parquet files"):
        to_parquet(folder, tmp_path / "t.parquet")


def test_feather_v2_v1_and_arrow_stream(tmp_path: Path) -> None:
    frame = _frame()
    v2 = tmp_path / "a.feather"
    feather.write_feather(frame, v2, compression="zstd", chunksize=16)
    v1 = tmp_path / "old.feather"
    feather.write_feather(frame, v1, version=1)
    stream = tmp_path / "s.arrows"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(stream), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=25):
            writer.write_batch(batch)
    for path, fmt in ((v2, "feather"), (v1, "feather"), (stream, "arrow")):
        info = to_parquet(path, tmp_path / f"{path.name}.parquet")
        assert (info.format, info.n_rows) == (fmt, 60)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"{path.name}.parquet"), frame,
                                      check_dtype=False)
    broken = tmp_path / "broken.feather"
    broken.write_bytes(v2.read_bytes()[:100])
    with pytest.raises(UnreadableTableError, match="Feather / Arrow IPC.*corrupt"):
        to_parquet(broken, tmp_path / "b.parquet")


def test_hdf5_table_and_fixed_keys(tmp_path: Path) -> None:
    src = tmp_path / "store.h5"
    frame = _frame()
    frame.to_hdf(src, key="b_table", format="table")
    frame.set_index("id").to_hdf(src, key="a_fixed")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.columns == ["id", "value", "region", "year"]  # index 'id' kept as a column
    assert any("read '/a_fixed'" in w for w in info.warnings)
    info = to_parquet(src, tmp_path / "k.parquet", options={"key": "b_table"})
    back = pd.read_parquet(tmp_path / "k.parquet")
    assert info.n_rows == 60 and back["region"].tolist() == frame["region"].tolist()
    with pytest.raises(UnreadableTableError, match="no key 'c'; its keys are /a_fixed"):
        to_parquet(src, tmp_path / "c.parquet", options={"key": "c"})


def test_hdf5_without_pandas_tables(tmp_path: Path) -> None:
    src = tmp_path / "raw.h5"
    with tables.open_file(str(src), "w") as h5:
        h5.create_array("/", "matrix", np.arange(10))
    with pytest.raises(UnreadableTableError, match="holds no pandas tables"):
        to_parquet(src, tmp_path / "t.parquet")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(src.read_bytes()[:64])
    with pytest.raises(UnreadableTableError, match="HDF5"):
        to_parquet(cut, tmp_path / "u.parquet")
