"""Turn a downloaded data file (or a folder of Parquet parts) into one Parquet file.

The format is found from the file's first bytes (magic numbers, then text signatures such as
``@relation`` or a leading ``{``) and only then from its extension, because dataset hosts
often serve files under names that do not match their content. Compressed files and
archives are unpacked first (see :mod:`mlmesh_acquire.archives` for the main-table rule and
the zip-bomb and path-traversal limits). Conversion streams chunk by chunk into the Parquet
file, so memory stays bounded for CSV, JSON Lines, Parquet, Arrow, Excel (.xlsx), ARFF and
table-format HDF5 (JSON documents, .xls and fixed-format HDF5 are read whole).

Formats (:func:`detect_format` names; compressed ones get the layers appended, innermost
first, e.g. ``csv.gz``, ``csv.tar.gz``, ``parquet.zip``):

=========  =====================================================  ===========================
format     what                                                   source options it honours
=========  =====================================================  ===========================
csv        delimited text (delimiter sniffed among , ; TAB |)     delimiter quotechar encoding
                                                                  decimal header
tsv        tab-separated text                                     (as csv)
json       a document holding an array of records                 encoding record_path
jsonl      JSON Lines, one object per line                        encoding
parquet    a Parquet file, or a folder of parts (hive partitions)
xlsx       Excel workbook (.xlsx/.xlsm)                           sheet header
xls        Excel 97-2003 workbook                                 sheet header
feather    Feather v1/v2, Arrow IPC file
arrow      Arrow IPC stream
arff       Weka ARFF (dense or sparse)                            encoding
hdf5       pandas-written HDF5                                    key
=========  =====================================================  ===========================

``source_options`` keys (all strings; keys not listed here belong to the sources and are
ignored):

- ``format``: the table format, overriding detection (after unpacking): one of the names
  above, or ``excel``, ``ndjson``, ``h5``, ``ipc``.
- ``member``: which file of an archive to read (path, unique file name, Parquet folder, or
  ``inner.zip/file.csv`` for a nested archive); default: the main-table rule.
- ``sheet``: an Excel sheet name or 0-based position; default: the first non-empty sheet.
- ``delimiter``: one character, or ``tab``, ``comma``, ``semicolon``, ``pipe``, ``space``.
- ``quotechar``: one character (default ``"``), or ``none`` to turn quoting off.
- ``encoding``: any Python codec name (``utf-8``, ``cp1252``, ``latin-1``, ``utf-16``...).
- ``decimal``: ``.`` or ``,`` (``comma``/``dot`` also accepted).
- ``header``: ``true``/``false``/``auto`` — whether the first row names the columns.
- ``key``: the HDF5 key; default: the only (else first, alphabetically) table.
- ``record_path``: dotted keys to the array of records in a JSON document.

Column names are made usable (stripped; blanks become ``column_<n>``; repeats get ``.1``,
``.2``); anything noteworthy (a sheet or member chosen among several, a column stored as text
because its type changed along the file, skipped malformed rows) is in
:attr:`TableInfo.warnings`.
"""

from __future__ import annotations

import bz2
import lzma
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from mlmesh_acquire.archives import ArchiveLimits, resolve_table
from mlmesh_acquire.formats import (
    COMPRESSION_MAGICS,
    HEAD_BYTES,
    ParquetSink,
    ReadOptions,
    SourceOptionError,
    UnreadableTableError,
    describe_binary,
    is_parquet_folder,
    reader_for,
    sniff_kind,
    strip_compression_suffix,
    zip_is_workbook,
)

__all__ = [
    "TableInfo",
    "SourceOptionError",
    "UnreadableTableError",
    "detect_format",
    "media_type_for",
    "to_parquet",
]

_MEDIA_TYPES = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "feather": "application/vnd.apache.arrow.file",
    "arrow": "application/vnd.apache.arrow.stream",
    "arff": "text/x-arff",
    "hdf5": "application/x-hdf5",
    "gz": "application/gzip",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "zst": "application/zstd",
    "zip": "application/zip",
    "tar": "application/x-tar",
    "unknown": "application/octet-stream",
}


@dataclass(frozen=True)
class TableInfo:
    """What :func:`to_parquet` wrote: the table's shape and the detected input format."""

    n_rows: int
    n_columns: int
    columns: list[str]
    #: The table format plus unpacked layers, innermost first: ``csv``, ``csv.gz``,
    #: ``parquet.zip``, ``csv.tar.gz``.
    format: str
    #: The archive member read (``outer/inner`` when nested), ``None`` for a plain file.
    member: str | None = None
    #: Things a person may want to know about the conversion (see the module docstring).
    warnings: list[str] = field(default_factory=list)


def detect_format(path: Path, head: bytes | None = None) -> str:
    """The format of ``path``: a table format, possibly with container layers appended.

    E.g. ``csv``, ``parquet``, ``xlsx``, ``csv.gz``, ``tar.gz``, ``zip`` (the archive's
    members are not opened), or ``unknown`` for a recognised non-table file (PNG, PDF, ...).
    Magic bytes win over the extension; the extension decides only for text whose content
    says nothing. ``head`` may pass the file's first bytes; more are read from the file when
    it exists and more are needed.
    """
    path = Path(path)
    if path.is_dir():
        return "parquet" if is_parquet_folder(path) else "unknown"
    if (head is None or len(head) < HEAD_BYTES) and path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    return _layered_format(path.name, head or b"", path)


def media_type_for(fmt: str) -> str:
    """The IANA media type of a :func:`detect_format` result (its outermost layer)."""
    outer = fmt.rsplit(".", 1)[-1]
    return _MEDIA_TYPES.get(outer, _MEDIA_TYPES["unknown"])


def to_parquet(
    path: Path,
    out_path: Path,
    *,
    options: Mapping[str, str] | None = None,
    limits: ArchiveLimits | None = None,
    chunk_bytes: int | None = None,
) -> TableInfo:
    """Read ``path`` (any format above, a Parquet folder, compressed or archived) and write
    it as one Parquet file at ``out_path``.

    ``options`` are the experiment's ``source_options`` (see the module docstring);
    ``limits`` default to the ``MLMESH_ACQUIRE_ARCHIVE_*`` settings and ``chunk_bytes`` to
    ``MLMESH_ACQUIRE_CHUNK_BYTES``. The file is written under a ``.part`` name and renamed
    when complete; temporary files from unpacking live next to ``out_path`` and are removed.

    Raises :class:`UnreadableTableError` (empty, binary, malformed, no columns or rows; the
    message says what to fix), :class:`SourceOptionError` (a bad option value) and
    :class:`~mlmesh_acquire.archives.UnsafeArchiveError` (zip bomb, path traversal), all
    ``ValueError`` subclasses; ``FileNotFoundError`` when ``path`` does not exist.
    """
    read_options = ReadOptions.parse(options)
    path, out_path = Path(path), Path(out_path)
    if not path.exists():
        raise FileNotFoundError(f"no file to convert at {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise UnreadableTableError(
            f"{path.name} is empty (0 bytes); check that the source URL points at the data "
            "file itself and that the upload finished"
        )
    if limits is None or chunk_bytes is None:
        from mlmesh_common.settings import Settings

        settings = Settings()
        limits = limits or ArchiveLimits.from_settings(settings)
        chunk_bytes = chunk_bytes or settings.acquire_chunk_bytes
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=out_path.parent) as scratch:
        resolved = resolve_table(path, Path(scratch), member=read_options.member,
                                 limits=limits)
        label = path.name if resolved.member is None else f"{path.name}/{resolved.member}"
        fmt = read_options.format or _table_format(resolved.path, label)
        reader = reader_for(fmt, label)
        with ParquetSink(out_path, label) as sink:
            for warning in resolved.warnings:
                sink.warn(warning)
            try:
                reader.convert(resolved.path, sink, read_options, chunk_bytes=chunk_bytes)
            except UnreadableTableError as exc:
                if resolved.member is not None and label not in str(exc):
                    raise type(exc)(f"in {label}: {exc}") from exc
                raise
            result = sink.close()
    layers = ".".join(reversed(resolved.layers))
    return TableInfo(
        n_rows=result.n_rows,
        n_columns=len(result.columns),
        columns=result.columns,
        format=f"{fmt}.{layers}" if layers else fmt,
        member=resolved.member,
        warnings=result.warnings,
    )


def _table_format(path: Path, label: str) -> str:
    if path.is_dir():
        if not is_parquet_folder(path):
            raise UnreadableTableError(
                f"{label} is a folder without Parquet files; point at the data file"
            )
        return "parquet"
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head:
        raise UnreadableTableError(
            f"{label} is empty (0 bytes); check that the export or upload is complete"
        )
    kind = sniff_kind(path.name, head)
    if kind == "xlsx-or-zip":
        kind = zip_is_workbook(path) or "zip"
    if kind == "unknown":
        what = describe_binary(head) or "not a table"
        raise UnreadableTableError(
            f"{label} is {what}; give a CSV, JSON, Parquet, Excel, Feather, ARFF or HDF5 file"
        )
    return kind


def _layered_format(name: str, head: bytes, path: Path | None, depth: int = 0) -> str:
    kind = sniff_kind(name, head)
    if kind == "xlsx-or-zip":
        return (zip_is_workbook(path) or "zip") if path is not None else "zip"
    if kind in COMPRESSION_MAGICS and depth < 3:
        inner = _peek_decompressed(kind, head)
        if not inner:
            return kind
        return f"{_layered_format(strip_compression_suffix(name), inner, None, depth + 1)}.{kind}"
    return kind


def _peek_decompressed(kind: str, data: bytes) -> bytes:
    """The first decompressed bytes of a compressed head (empty when it cannot tell)."""
    try:
        if kind == "gz":
            return zlib.decompressobj(wbits=47).decompress(data, HEAD_BYTES)
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(data, HEAD_BYTES)
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(data, HEAD_BYTES)
        stream = pa.input_stream(pa.BufferReader(data), compression="zstd")
        return stream.read(HEAD_BYTES)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, pa.ArrowException, ValueError):
        return b""
