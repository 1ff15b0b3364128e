"""Parquet (a file or a partitioned folder) and Arrow IPC (Feather v1/v2, IPC streams)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._detect import FEATHER_V1_MAGIC
from mlmesh_acquire.formats._errors import UnreadableTableError
from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink

#: Rows per batch read from Parquet and Arrow sources.
BATCH_ROWS = 65_536
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError,
                 pa.ArrowIOError, OSError)


class ParquetReader(TableReader):
    """Apache Parquet: one file, or a folder of files (hive ``key=value`` partitions become
    columns; files starting with ``.`` or ``_`` are ignored)."""

    name = "parquet"
    extensions = (".parquet", ".pq", ".parq")
    media_type = "application/vnd.apache.parquet"
    title = "Parquet"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        if path.is_dir():
            self._convert_folder(path, sink, label)
            return
        try:
            source = pq.ParquetFile(path)
            if source.metadata.num_columns == 0:
                raise UnreadableTableError(f"{label} is a Parquet file without columns")
            wrote = False
            for batch in source.iter_batches(batch_size=BATCH_ROWS):
                sink.write(batch)
                wrote = True
            if not wrote:
                sink.write(source.schema_arrow.empty_table())
        except _ARROW_ERRORS as exc:
            raise UnreadableTableError(
                f"{label} starts like a Parquet file but cannot be read ({exc}); the file is "
                "probably truncated or corrupt, so download or export it again"
            ) from exc

    def _convert_folder(self, path: Path, sink: ParquetSink, label: str) -> None:
        try:
            dataset = pads.dataset(path, format="parquet", partitioning="hive",
                                   exclude_invalid_files=False)
            files = dataset.files
            if not files:
                raise UnreadableTableError(
                    f"{label} is a folder without Parquet files; point at the data file or at "
                    "a folder of Parquet parts"
                )
            schemas = [fragment.physical_schema for fragment in dataset.get_fragments()]
            unified = pa.unify_schemas([*schemas, dataset.schema],
                                       promote_options="permissive")
            dataset = pads.dataset(path, schema=unified, format="parquet",
                                   partitioning="hive")
            wrote = False
            for batch in dataset.to_batches(batch_size=BATCH_ROWS):
                sink.write(batch)
                wrote = True
            if not wrote:
                sink.write(unified.empty_table())
        except _ARROW_ERRORS as exc:
            raise UnreadableTableError(
                f"{label} is a folder of Parquet files that cannot be read together ({exc}); "
                "check that every part is a complete Parquet file with compatible columns"
            ) from exc


class FeatherReader(TableReader):
    """Feather v2 / Arrow IPC files (and Feather v1)."""

    name = "feather"
    extensions = (".feather", ".arrow", ".ipc")
    media_type = "application/vnd.apache.arrow.file"
    title = "Feather / Arrow IPC"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        try:
            with open(path, "rb") as fh:
                v1 = fh.read(4) == FEATHER_V1_MAGIC
            if v1:  # the old format has no record batches to stream
                sink.write(feather.read_table(path))
                return
            with pa.memory_map(str(path)) as source:
                reader = ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    sink.write(reader.get_batch(i))
                if reader.num_record_batches == 0:
                    sink.write(reader.schema.empty_table())
        except _ARROW_ERRORS as exc:
            raise UnreadableTableError(
                f"{label} starts like a Feather / Arrow IPC file but cannot be read ({exc}); "
                "it is probably truncated or corrupt, so export it again"
            ) from exc


class ArrowStreamReader(TableReader):
    """Arrow IPC streams (``.arrows``)."""

    name = "arrow"
    extensions = (".arrows",)
    media_type = "application/vnd.apache.arrow.stream"
    title = "Arrow IPC stream"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        try:
            with pa.OSFile(str(path), "rb") as source:
                reader = ipc.open_stream(source)
                wrote = False
                for batch in reader:
                    sink.write(batch)
                    wrote = True
                if not wrote:
                    sink.write(reader.schema.empty_table())
        except _ARROW_ERRORS as exc:
            raise UnreadableTableError(
                f"{label} starts like an Arrow IPC stream but cannot be read ({exc}); it is "
                "probably truncated or corrupt"
            ) from exc
