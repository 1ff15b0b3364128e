"""Every reader by format name, plus the names people use for them."""

from __future__ import annotations

from mlmesh_acquire.formats._arff import ArffReader
from mlmesh_acquire.formats._arrow import ArrowStreamReader, FeatherReader, ParquetReader
from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._delimited import DelimitedTextReader, TabSeparatedReader
from mlmesh_acquire.formats._errors import SourceOptionError, UnreadableTableError
from mlmesh_acquire.formats._excel import XlsReader, XlsxReader
from mlmesh_acquire.formats._hdf5 import Hdf5Reader
from mlmesh_acquire.formats._json import JsonLinesReader, JsonReader

#: Format name -> reader.
READERS: dict[str, TableReader] = {
    reader.name: reader
    for reader in (
        DelimitedTextReader(), TabSeparatedReader(), JsonReader(), JsonLinesReader(),
        ParquetReader(), XlsxReader(), XlsReader(), FeatherReader(), ArrowStreamReader(),
        ArffReader(), Hdf5Reader(),
    )
}
#: Other spellings accepted by source option ``format``.
ALIASES = {
    "text": "csv", "txt": "csv", "tab": "tsv", "excel": "xlsx", "xlsm": "xlsx",
    "ndjson": "jsonl", "jsonlines": "jsonl", "json-lines": "jsonl", "pq": "parquet",
    "ipc": "feather", "arrow-file": "feather", "arrow-stream": "arrow", "arrows": "arrow",
    "h5": "hdf5", "hdf": "hdf5",
}
#: Table formats that :func:`reader_for` refuses, with what to do instead.
UNSUPPORTED = {
    "ods": "an OpenDocument spreadsheet, which is not supported: save it as .xlsx or CSV",
    "unknown": "not a table format acquire reads",
}


def canonical_format_name(name: str) -> str:
    """The reader name for a ``format`` option value; raises for an unknown one."""
    key = name.strip().lower().lstrip(".")
    key = ALIASES.get(key, key)
    if key not in READERS:
        raise SourceOptionError(
            f"source option format={name!r} is not a format acquire reads; use one of "
            f"{', '.join(sorted(READERS))}"
        )
    return key


def reader_for(fmt: str, label: str) -> TableReader:
    """The reader for a detected format; unreadable ones raise with a reason."""
    reader = READERS.get(fmt)
    if reader is None:
        what = UNSUPPORTED.get(fmt, f"in format {fmt!r}, which acquire does not read")
        raise UnreadableTableError(
            f"{label} is {what}; give one of {', '.join(sorted(READERS))}"
        )
    return reader


#: Extensions of every table format (lower case, with the dot).
TABLE_EXTENSIONS = frozenset(ext for reader in READERS.values() for ext in reader.extensions)
