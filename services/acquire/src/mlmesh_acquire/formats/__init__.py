"""Table format readers: one :class:`TableReader` per format, all writing to a
:class:`ParquetSink`.

Formats (``detect_format`` names): ``csv``, ``tsv``, ``json``, ``jsonl``, ``parquet`` (a file
or a partitioned folder), ``xlsx``, ``xls``, ``feather`` (Feather v1/v2, Arrow IPC file),
``arrow`` (Arrow IPC stream), ``arff`` and ``hdf5``. Each reader's module says what it
detects and which ``source_options`` it honours.
"""

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._detect import (
    COMPRESSION_MAGICS,
    COMPRESSION_SUFFIXES,
    CONTAINERS,
    HEAD_BYTES,
    describe_binary,
    format_from_extension,
    is_parquet_folder,
    sniff_kind,
    strip_compression_suffix,
    zip_is_workbook,
)
from mlmesh_acquire.formats._errors import SourceOptionError, UnreadableTableError
from mlmesh_acquire.formats._options import OPTION_KEYS, ReadOptions
from mlmesh_acquire.formats._registry import (
    ALIASES,
    READERS,
    TABLE_EXTENSIONS,
    canonical_format_name,
    reader_for,
)
from mlmesh_acquire.formats._sink import ParquetSink, SinkResult, unify_types

__all__ = [
    "ALIASES",
    "COMPRESSION_MAGICS",
    "COMPRESSION_SUFFIXES",
    "CONTAINERS",
    "HEAD_BYTES",
    "OPTION_KEYS",
    "READERS",
    "TABLE_EXTENSIONS",
    "ParquetSink",
    "ReadOptions",
    "SinkResult",
    "SourceOptionError",
    "TableReader",
    "UnreadableTableError",
    "canonical_format_name",
    "describe_binary",
    "format_from_extension",
    "is_parquet_folder",
    "reader_for",
    "sniff_kind",
    "strip_compression_suffix",
    "unify_types",
    "zip_is_workbook",
]
