"""HDF5 files written by pandas (``DataFrame.to_hdf``), read through PyTables.

The table is source option ``key`` (``/name`` or ``name``), else the only one, else the
first in the file's (alphabetical) order, with a warning naming the others. ``table``-format
keys are read in chunks; ``fixed``-format keys can only be read whole. A named or non-default
index is kept as a column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._errors import UnreadableTableError
from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink
from mlmesh_acquire.formats._values import frame_to_table

#: Rows per chunk read from a table-format key.
ROWS_PER_CHUNK = 100_000


class Hdf5Reader(TableReader):
    """pandas-written HDF5 (PyTables) files."""

    name = "hdf5"
    extensions = (".h5", ".hdf5", ".hdf", ".he5")
    media_type = "application/x-hdf5"
    option_keys = ("key",)
    title = "HDF5"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        try:
            import tables  # noqa: F401 - pandas needs PyTables for HDF5
        except ImportError as exc:  # pragma: no cover - tables is a dependency
            raise UnreadableTableError(
                f"{label} is HDF5 but PyTables is not installed here; export it as Parquet"
            ) from exc
        try:
            store = pd.HDFStore(path, mode="r")
        except Exception as exc:  # PyTables raises many kinds for bad files
            raise UnreadableTableError(
                f"{label} starts like an HDF5 file but cannot be opened ({exc}); it is "
                "probably truncated or corrupt"
            ) from exc
        try:
            key = _choose_key(label, list(store.keys()), options.key, sink)
            storer = store.get_storer(key)
            keep_index: bool | None = None
            if getattr(storer, "is_table", False):
                chunks = store.select(key, chunksize=ROWS_PER_CHUNK)
            else:
                chunks = [store.get(key)]
            for frame in chunks:
                if isinstance(frame, pd.Series):
                    frame = frame.to_frame(name=frame.name or key.strip("/"))
                if keep_index is None:
                    keep_index = _meaningful_index(frame.index)
                if keep_index:
                    frame = frame.reset_index()
                sink.write(frame_to_table(frame, sink))
        except UnreadableTableError:
            raise
        except Exception as exc:  # PyTables raises many kinds for bad files
            raise UnreadableTableError(
                f"{label}: key {options.key or ''!r} cannot be read as a table ({exc}); export "
                "it with pandas.DataFrame.to_hdf or as Parquet"
            ) from exc
        finally:
            store.close()


def _choose_key(label: str, keys: list[str], wanted: str | None, sink: ParquetSink) -> str:
    if not keys:
        raise UnreadableTableError(
            f"{label} holds no pandas tables (it was not written by pandas.DataFrame.to_hdf); "
            "export the data as Parquet or CSV"
        )
    if wanted is not None:
        normalised = "/" + wanted.strip().strip("/")
        if normalised in keys:
            return normalised
        raise UnreadableTableError(
            f"{label} has no key {wanted!r}; its keys are {', '.join(keys[:20])}"
        )
    ordered = sorted(keys)
    if len(ordered) > 1:
        sink.warn(f"{label} holds {len(ordered)} tables ({', '.join(ordered[:10])}); read "
                  f"{ordered[0]!r} (pass source option key= to choose another)")
    return ordered[0]


def _meaningful_index(index: pd.Index) -> bool:
    if any(name is not None for name in index.names):
        return True
    if isinstance(index, pd.RangeIndex):
        return False
    return not pd.api.types.is_integer_dtype(index.dtype)
