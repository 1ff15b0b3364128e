"""Write a table to one Parquet file chunk by chunk, unifying column types across chunks.

Readers hand the sink Arrow chunks as they read them, so memory stays bounded by one chunk.
Chunks need not agree on their schema: a column that is empty (null) in the first chunk
and numbers later takes the numbers' type, integers widen to floats, and a column whose
chunks disagree otherwise (numbers then text, say) becomes text, with a warning. While
chunks agree they go straight into the open file; a chunk that widens the schema starts a
new segment file, and :meth:`ParquetSink.close` re-writes the segments into the final file
under the widest schema (batch by batch, so that pass is bounded too). Chunks are buffered up
to :data:`ROW_GROUP_ROWS` rows or :data:`ROW_GROUP_BYTES` bytes and written as one row group.

Nested values are flattened on the way in: struct fields become ``parent.child`` columns,
lists and maps become JSON text, dictionary-encoded columns are decoded and decimals become
floats, so every column is a plain scalar the later stages can profile.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlmesh_acquire.formats._errors import UnreadableTableError

log = logging.getLogger(__name__)

#: Rows per batch when segments are merged into the final file.
MERGE_BATCH_ROWS = 65_536
#: Chunks are buffered and written as one row group once they reach this many rows or bytes.
ROW_GROUP_ROWS = 256 * 1024
ROW_GROUP_BYTES = 64 * 1024**2


@dataclass
class SinkResult:
    """What the sink wrote."""

    n_rows: int
    columns: list[str]
    warnings: list[str] = field(default_factory=list)


class ParquetSink:
    """Accepts Arrow chunks and writes them as one Parquet file at ``out_path``.

    ``label`` names the source in error messages. Use as a context manager: leaving the
    block with an exception removes every partial file.
    """

    def __init__(self, out_path: Path, label: str) -> None:
        self.out_path = Path(out_path)
        self.label = label
        self.warnings: list[str] = []
        self.n_rows = 0
        self._schema: pa.Schema | None = None
        self._writer: pq.ParquetWriter | None = None
        self._segments: list[Path] = []
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    # -- public API -------------------------------------------------------------------------

    def warn(self, message: str) -> None:
        """Record a warning about the conversion (each distinct message once)."""
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s: %s", self.label, message)

    @property
    def schema(self) -> pa.Schema | None:
        """The schema written so far (``None`` before the first chunk)."""
        return self._schema

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Append a chunk; its columns are unified with what was written before."""
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        table = self._normalise(table)
        if table.num_columns == 0:
            return
        if self._schema is None:
            self._open_segment(table.schema)
        else:
            unified = self._unify(self._schema, table.schema)
            if not unified.equals(self._schema):
                self._open_segment(unified)
        assert self._schema is not None
        conformed = self._conform(table, self._schema)
        self._pending.append(conformed)
        self._pending_rows += conformed.num_rows
        self._pending_bytes += conformed.nbytes
        self.n_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def reset(self) -> None:
        """Discard everything written so far (a reader starting over)."""
        self._discard()
        self.n_rows = 0
        self._schema = None

    def close(self) -> SinkResult:
        """Finish the file and move it to ``out_path``; raises if the table is empty."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        columns = list(self._schema.names) if self._schema is not None else []
        if not columns:
            self._discard()
            raise UnreadableTableError(
                f"{self.label} has no columns; give a table whose first row names the columns"
            )
        if self.n_rows == 0:
            self._discard()
            raise UnreadableTableError(
                f"{self.label} has {len(columns)} column(s) but no data rows; check that the "
                "export or download is complete"
            )
        assert self._schema is not None
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        if len(self._segments) == 1:
            self._segments[0].replace(self.out_path)
        else:
            merged = self.out_path.with_name(self.out_path.name + ".part")
            with pq.ParquetWriter(merged, self._schema) as writer:
                for segment in self._segments:
                    source = pq.ParquetFile(segment)
                    for batch in source.iter_batches(batch_size=MERGE_BATCH_ROWS):
                        writer.write_table(
                            self._conform(pa.Table.from_batches([batch]), self._schema)
                        )
                    source.close()
            merged.replace(self.out_path)
            for segment in self._segments:
                segment.unlink(missing_ok=True)
        self._segments = []
        return SinkResult(n_rows=self.n_rows, columns=columns, warnings=list(self.warnings))

    def abort(self) -> None:
        """Remove every partial file."""
        self._discard()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()

    # -- internals --------------------------------------------------------------------------

    def _flush(self) -> None:
        """Write the buffered chunks as one row group."""
        if self._pending and self._writer is not None:
            self._writer.write_table(pa.concat_tables(self._pending))
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def _open_segment(self, schema: pa.Schema) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
        path = self.out_path.with_name(f"{self.out_path.name}.part{len(self._segments)}")
        self._segments.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(path, schema)
        self._schema = schema

    def _discard(self) -> None:
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, pa.ArrowException):
                pass
            self._writer = None
        for segment in self._segments:
            segment.unlink(missing_ok=True)
        self.out_path.with_name(self.out_path.name + ".part").unlink(missing_ok=True)
        self._segments = []

    def _normalise(self, table: pa.Table) -> pa.Table:
        table = table.replace_schema_metadata(None)
        while any(pa.types.is_struct(f.type) for f in table.schema):
            table = table.flatten()
        raw = [str(n) for n in table.column_names]
        names = _unique_names(raw)
        if names != table.column_names:
            renamed = [f"{r!r} -> {n!r}" for r, n in zip(raw, names, strict=True)
                       if r.strip() != n]
            if renamed:
                self.warn("blank or repeated column names were renamed: "
                          + ", ".join(renamed[:10]) + (" ..." if len(renamed) > 10 else ""))
            table = table.rename_columns(names)
        columns = []
        for name, column in zip(table.column_names, table.columns, strict=True):
            columns.append(self._plain_column(name, column))
        return pa.table(columns, names=table.column_names)

    def _plain_column(self, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
        kind = column.type
        if isinstance(kind, pa.ExtensionType):
            column = pa.chunked_array([c.storage for c in column.chunks], type=kind.storage_type)
            kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if _is(kind, "is_large_string", "is_string_view"):
            return column.cast(pa.string())
        if _is(kind, "is_large_binary", "is_binary_view"):
            return column.cast(pa.binary())
        if pa.types.is_decimal(kind):
            self.warn(f"column {name!r} holds decimals; stored as 64-bit floats")
            return column.cast(pa.float64(), safe=False)
        if pa.types.is_float16(kind):
            return column.cast(pa.float32())
        if _is(kind, "is_list", "is_large_list", "is_map", "is_fixed_size_list", "is_list_view",
               "is_large_list_view", "is_union"):
            self.warn(f"column {name!r} holds lists; stored as JSON text")
            return pa.chunked_array(
                [pa.array([_to_json(v) for v in column.to_pylist()], type=pa.string())],
                type=pa.string(),
            )
        return column

    def _unify(self, current: pa.Schema, incoming: pa.Schema) -> pa.Schema:
        fields = []
        incoming_types = {f.name: f.type for f in incoming}
        for f in current:
            other = incoming_types.get(f.name)
            if other is None or other.equals(f.type):
                fields.append(f)
                continue
            unified = unify_types(f.type, other)
            textual = (pa.types.is_string(t) or pa.types.is_null(t) for t in (f.type, other))
            if pa.types.is_string(unified) and not all(textual):
                self.warn(
                    f"column {f.name!r} changes type from {f.type} to {other} after row "
                    f"{self.n_rows}; stored as text"
                )
            fields.append(pa.field(f.name, unified))
        known = set(current.names)
        for f in incoming:
            if f.name not in known:
                fields.append(f)
        return pa.schema(fields)

    def _conform(self, table: pa.Table, schema: pa.Schema) -> pa.Table:
        if table.schema.equals(schema):
            return table
        arrays = []
        for f in schema:
            if f.name not in table.column_names:
                arrays.append(pa.nulls(table.num_rows, type=f.type))
                continue
            column = table[f.name]
            if not column.type.equals(f.type):
                column = _cast(column, f.type)
            arrays.append(column)
        return pa.table(arrays, schema=schema)


def unify_types(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The narrowest type holding values of both ``a`` and ``b`` (text when nothing else does)."""
    if a.equals(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a

    def numeric(t: pa.DataType) -> bool:
        return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)

    if numeric(a) and numeric(b):
        if pa.types.is_floating(a) or pa.types.is_floating(b):
            return pa.float64()
        if pa.types.is_uint64(a) or pa.types.is_uint64(b):
            return pa.float64()
        return pa.int64()
    temporal = (pa.types.is_timestamp, pa.types.is_date)
    if any(t(a) for t in temporal) and any(t(b) for t in temporal):
        tz = {getattr(t, "tz", None) for t in (a, b) if pa.types.is_timestamp(t)}
        if len(tz) == 1:
            return pa.timestamp("us", tz.pop())
    return pa.string()


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_null(column.type):
        return pa.chunked_array([pa.nulls(len(column), type=target)], type=target)
    try:
        return pc.cast(column, target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        if not pa.types.is_string(target):
            raise
    values = [None if v is None else _to_text(v) for v in column.to_pylist()]
    return pa.chunked_array([pa.array(values, type=pa.string())], type=pa.string())


def _is(kind: pa.DataType, *predicates: str) -> bool:
    """Whether any of the named ``pyarrow.types`` predicates (those this pyarrow has) holds."""
    return any(getattr(pa.types, name, lambda _t: False)(kind) for name in predicates)


def _to_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _to_json(value: object) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=str, ensure_ascii=False)


def _unique_names(names: list[str]) -> list[str]:
    """Blank names become ``column_<n>``; repeats get ``.1``, ``.2`` (pandas' convention)."""
    out: list[str] = []
    seen: set[str] = set()
    cleaned = [n.strip() or f"column_{i + 1}" for i, n in enumerate(names)]
    taken = set(cleaned)
    for name in cleaned:
        candidate, n = name, 0
        while candidate in seen or (n > 0 and candidate in taken):
            n += 1
            candidate = f"{name}.{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def unique_column_names(names: list[str]) -> list[str]:
    """Column names made usable: stripped, blanks named ``column_<n>``, repeats numbered."""
    return _unique_names([str(n) for n in names])
