"""Domain logic of the acquire service: fetch a dataset and convert it to Parquet."""

from mlmesh_acquire.fetch import (
    AcquiredTable,
    ChecksumMismatchError,
    FetchedFile,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    TransientSourceError,
    UnsupportedSourceError,
    acquire,
    fetch_source,
    sha256_file,
)
from mlmesh_acquire.tables import TableInfo, UnreadableTableError, detect_format, to_parquet

__all__ = [
    "AcquiredTable",
    "ChecksumMismatchError",
    "FetchedFile",
    "SourceError",
    "SourceNotFoundError",
    "SourceTooLargeError",
    "TableInfo",
    "TransientSourceError",
    "UnreadableTableError",
    "UnsupportedSourceError",
    "acquire",
    "detect_format",
    "fetch_source",
    "sha256_file",
    "to_parquet",
]
