"""Turn a downloaded data file (CSV, gzip-compressed CSV or Parquet) into one Parquet file.

The format is detected from the file's first bytes (``PAR1`` for Parquet, ``1f 8b`` for
gzip) and only then from its extension, because dataset hosts often serve files under
names that do not match their content.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"

#: Formats :func:`detect_format` can return; ``unknown`` means "not a table we read".
TABLE_FORMATS = ("csv", "csv.gz", "parquet")

#: Bytes of (decompressed) text looked at to pick the encoding and the delimiter.
SNIFF_BYTES = 64 * 1024
#: Delimiters the sniffer may choose from.
CANDIDATE_DELIMITERS = ",;\t|"

_MEDIA_TYPES = {
    "csv": "text/csv",
    "csv.gz": "application/gzip",
    "parquet": "application/vnd.apache.parquet",
    "zip": "application/zip",
    "unknown": "application/octet-stream",
}

# Other binary formats worth naming in an error, by their first bytes.
_KNOWN_BINARY = {
    b"\x89PNG": "a PNG image",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "a legacy Office (XLS) document",
    b"SQLite format 3": "an SQLite database",
    b"\x28\xb5\x2f\xfd": "a Zstandard archive",
    b"BZh": "a bzip2 archive",
    b"\xfd7zXZ": "an XZ archive",
}


class UnreadableTableError(ValueError):
    """The file is not a table we can read (empty, binary, malformed, no columns)."""


@dataclass(frozen=True)
class TableInfo:
    """What :func:`to_parquet` wrote: the table's shape and the detected input format."""

    n_rows: int
    n_columns: int
    columns: list[str]
    format: str


def detect_format(path: Path, head: bytes | None = None) -> str:
    """Guess a file's format: ``parquet``, ``csv.gz``, ``zip``, ``csv`` or ``unknown``.

    Magic bytes win over the extension; the extension decides only for files whose
    first bytes say nothing (text). ``head`` may pass the file's first bytes when the
    caller already has them.
    """
    if head is None:
        with open(path, "rb") as fh:
            head = fh.read(16)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        return "csv.gz"
    if head.startswith(ZIP_MAGIC):
        return "zip"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".parquet"] or suffixes[-1:] == [".pq"]:
        return "parquet"
    if suffixes[-1:] == [".gz"]:
        return "csv.gz"
    if any(head.startswith(magic) for magic in _KNOWN_BINARY):
        return "unknown"
    return "csv"


def media_type_for(fmt: str) -> str:
    """The IANA media type matching a :func:`detect_format` result."""
    return _MEDIA_TYPES.get(fmt, _MEDIA_TYPES["unknown"])


def to_parquet(path: Path, out_path: Path) -> TableInfo:
    """Read ``path`` (CSV, gzip CSV or Parquet) and write it as Parquet to ``out_path``.

    CSV: the encoding is UTF-8 (a byte-order mark is dropped) or, failing that, Latin-1;
    the delimiter is sniffed from a sample among ``, ; TAB |``; the first row is the
    header. Parquet input is re-written batch by batch, which checks that it is readable.

    Raises :class:`UnreadableTableError` when the file is empty, binary, malformed, has no
    columns or no data rows; the message says what to fix.
    """
    path = Path(path)
    out_path = Path(out_path)
    if not path.is_file():
        raise FileNotFoundError(f"no file to convert at {path}")
    size = path.stat().st_size
    if size == 0:
        raise UnreadableTableError(
            f"{path.name} is empty (0 bytes); check that the source URL points at the data "
            "file itself and that the upload finished"
        )
    with open(path, "rb") as fh:
        head = fh.read(16)
    fmt = detect_format(path, head)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        return _parquet_to_parquet(path, out_path)
    if fmt in ("csv", "csv.gz"):
        return _csv_to_parquet(path, out_path, gzipped=fmt == "csv.gz")
    if fmt == "zip":
        raise UnreadableTableError(
            f"{path.name} is a ZIP archive; archives are not unpacked yet, so point the "
            "experiment at the CSV or Parquet file inside it"
        )
    what = next((name for magic, name in _KNOWN_BINARY.items() if head.startswith(magic)), None)
    raise UnreadableTableError(
        f"{path.name} is {what or 'not a table'}; give a CSV, gzip-compressed CSV or Parquet file"
    )


def _parquet_to_parquet(path: Path, out_path: Path) -> TableInfo:
    tmp = out_path.with_name(out_path.name + ".part")
    n_rows = 0
    try:
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in source.iter_batches():
                writer.write_batch(batch)
                n_rows += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        tmp.unlink(missing_ok=True)
        raise UnreadableTableError(
            f"{path.name} starts like a Parquet file but cannot be read ({exc}); "
            "the file is probably truncated or corrupt, so download or export it again"
        ) from exc
    columns = [str(name) for name in schema.names]
    _check_shape(path, n_rows, columns, tmp)
    tmp.replace(out_path)
    return TableInfo(n_rows=n_rows, n_columns=len(columns), columns=columns, format="parquet")


def _csv_to_parquet(path: Path, out_path: Path, *, gzipped: bool) -> TableInfo:
    try:
        with _open_binary(path, gzipped) as fh:
            sample = fh.read(SNIFF_BYTES)
    except (gzip.BadGzipFile, EOFError) as exc:
        raise UnreadableTableError(
            f"{path.name} looks gzip-compressed but cannot be decompressed ({exc}); "
            "download it again or give the uncompressed CSV"
        ) from exc
    if not sample.strip():
        raise UnreadableTableError(
            f"{path.name} holds no data (only blank space); give a CSV with a header row"
        )
    encoding = _detect_encoding(sample)
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    if encoding != "utf-16" and _looks_binary(sample):
        raise UnreadableTableError(
            f"{path.name} is binary, not CSV text; check that the source really is a CSV "
            "or Parquet file and not, say, an Excel workbook or another binary format"
        )
    if text.lstrip().startswith("<"):
        raise UnreadableTableError(
            f"{path.name} is HTML or XML, not CSV; the URL probably returns a web page "
            "(a login or download page) instead of the file itself"
        )
    delimiter = _sniff_delimiter(text, truncated=len(sample) == SNIFF_BYTES)
    pandas_encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        df = pd.read_csv(
            path,
            sep=delimiter,
            encoding=pandas_encoding,
            compression="gzip" if gzipped else None,
            # ';'-separated files come from locales where the comma is the decimal mark
            decimal="," if delimiter == ";" else ".",
            low_memory=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise UnreadableTableError(
            f"{path.name} has no columns to parse; give a CSV whose first row names the columns"
        ) from exc
    except (gzip.BadGzipFile, EOFError) as exc:
        raise UnreadableTableError(
            f"{path.name} is a damaged gzip file ({exc}); download it again"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise UnreadableTableError(
            f"{path.name} is not valid CSV with delimiter {delimiter!r} ({exc}); check for "
            "rows with extra fields or unbalanced quotes"
        ) from exc
    df.columns = [str(c).strip() for c in df.columns]
    columns = list(df.columns)
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise UnreadableTableError(
            f"{path.name} repeats column names {dupes}; give every column a distinct name"
        )
    tmp = out_path.with_name(out_path.name + ".part")
    _check_shape(path, len(df), columns, None)
    try:
        df.to_parquet(tmp, engine="pyarrow", index=False)
    except (pa.ArrowException, TypeError) as exc:
        tmp.unlink(missing_ok=True)
        raise UnreadableTableError(
            f"{path.name} parsed as CSV but a column mixes incompatible values ({exc}); "
            "clean that column in the source"
        ) from exc
    tmp.replace(out_path)
    fmt = "csv.gz" if gzipped else "csv"
    return TableInfo(n_rows=len(df), n_columns=len(columns), columns=columns, format=fmt)


def _check_shape(path: Path, n_rows: int, columns: list[str], tmp: Path | None) -> None:
    problem = None
    if not columns:
        problem = "has no columns; give a table whose first row names the columns"
    elif n_rows == 0:
        problem = (
            f"has a header ({len(columns)} columns) but no data rows; check that the export "
            "or download is complete"
        )
    if problem:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise UnreadableTableError(f"{path.name} {problem}")


def _open_binary(path: Path, gzipped: bool) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _looks_binary(sample: bytes) -> bool:
    """NUL bytes or many control characters mean the bytes are not delimited text."""
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > 0.01 * len(sample)


def _detect_encoding(sample: bytes) -> str:
    """UTF-16 by its byte-order mark, else UTF-8 when the sample decodes, else Latin-1."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            sample[: len(sample) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return "utf-8"
    return "latin-1"


def _sniff_delimiter(text: str, *, truncated: bool) -> str:
    lines = text.splitlines()
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut mid-field
    lines = [line for line in lines if line.strip()][:200]
    if not lines:
        return ","
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=CANDIDATE_DELIMITERS)
        return dialect.delimiter
    except csv.Error:
        pass
    # The sniffer gives up on irregular files; take the candidate that splits the header
    # most (a single-column file has none of them and keeps the comma).
    header = lines[0]
    counts = {d: header.count(d) for d in CANDIDATE_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","
