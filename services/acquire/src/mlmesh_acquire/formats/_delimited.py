"""CSV and TSV: dialect sniffing and a streaming conversion with pyarrow's CSV reader.

What is detected from a sample of the file (each overridable by a source option):

- ``encoding``: byte-order mark (UTF-8/16/32), UTF-16 without one, UTF-8, else
  Windows-1252, else Latin-1; a file that turns out not to be UTF-8 further down is read
  again in Windows-1252 (then Latin-1), with a warning.
- ``delimiter``: among ``, ; TAB |`` (TSV files default to TAB).
- ``quotechar``: ``"`` unless given; quoted fields may span lines.
- ``header``: the first row is data, not names, only when some column is numeric in the
  following rows *and* in the first row, and no numeric column has text in the first row.
- ``decimal``: ``,`` when the delimiter is not a comma and numbers in the sample use a decimal
  comma and never a decimal point.

Column types are inferred from the first :data:`TYPE_SAMPLE_BYTES` of the file, then the
file is streamed in blocks of ``chunk_bytes`` (pyarrow queues up to 32 blocks ahead of the
reader, so the block size, not the file size, bounds memory). When a later block does not
fit the types (a column empty so far then holding text, integers then a fraction, ...), the
conversion starts over with that column widened (null -> int -> float -> text) and a
warning says so; after :data:`MAX_ATTEMPTS` such restarts every column is read as text.
Rows with the wrong number of fields are skipped and reported when they are at most 0.1% of
the rows; more make the file unreadable (the delimiter is probably wrong).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._errors import UnreadableTableError
from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink, unique_column_names
from mlmesh_acquire.formats._text import SNIFF_BYTES, check_text, detect_encoding, read_head

#: Delimiters the sniffer may choose from.
CANDIDATE_DELIMITERS = ",;\t|"
#: Bytes of the file's start used to infer the column types.
TYPE_SAMPLE_BYTES = 16 * 1024**2
#: Conversion attempts (each after widening a column) before reading every column as text.
MAX_ATTEMPTS = 12
#: Share of rows with a wrong field count that is skipped with a warning rather than fatal.
MAX_BAD_ROW_SHARE = 0.001
#: Rows looked at for the header and decimal-mark guesses.
SAMPLE_ROWS = 500
#: The largest block tried when a single row is longer than a block.
MAX_BLOCK_BYTES = 1024**3

_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
_COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
_POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error to (\w+)(?:\[[^\]]*\])?: "
    r"invalid value '(.*)'",
    re.S,
)
_TYPE_WORDS = {
    "null": "nothing", "int64": "integers", "double": "decimal numbers",
    "bool": "true/false values", "timestamp": "timestamps", "date32": "dates",
    "string": "text",
}
_FALLBACK_ENCODINGS = {"utf-8": "cp1252", "cp1252": "latin-1"}

csv.field_size_limit(2**31 - 1)


class DelimitedTextReader(TableReader):
    """Comma- (or otherwise-) separated values."""

    name = "csv"
    extensions = (".csv", ".txt", ".data", ".dat")
    media_type = "text/csv"
    option_keys = ("delimiter", "quotechar", "encoding", "decimal", "header")
    title = "CSV"
    default_delimiter: ClassVar[str | None] = None

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        sample = read_head(path, SNIFF_BYTES)
        encoding = options.encoding or detect_encoding(sample)
        text = check_text(label, sample, encoding, self.title)
        truncated = len(sample) == SNIFF_BYTES
        delimiter = options.delimiter or self.default_delimiter or sniff_delimiter(
            text, truncated=truncated)
        quotechar = '"' if options.quotechar is None else options.quotechar
        rows = sample_rows(text, delimiter, quotechar, truncated=truncated)
        header = options.header if options.header is not None else looks_like_header(rows)
        decimal = options.decimal or sniff_decimal(rows[1 if header else 0:], delimiter)
        dialect = _Dialect(delimiter, quotechar, decimal, header,
                           delimiter_given=options.delimiter is not None)
        names = self._column_names(path, encoding, dialect, label, sink)
        _stream(path, sink, names, encoding, dialect, chunk_bytes,
                encoding_given=options.encoding is not None, label=label, title=self.title)

    def _column_names(self, path: Path, encoding: str, dialect: _Dialect, label: str,
                      sink: ParquetSink) -> list[str]:
        first = _first_row(path, encoding, dialect, label)
        if not first or all(not cell.strip() for cell in first):
            raise UnreadableTableError(
                f"{label} has an empty first row; give a {self.title} whose first row names "
                "the columns"
            )
        if dialect.header:
            names = unique_column_names(first)
            renamed = [f"{raw!r} -> {new!r}" for raw, new in zip(first, names, strict=True)
                       if raw.strip() != new]
            if renamed:
                sink.warn("blank or repeated column names were renamed: "
                          + ", ".join(renamed[:10]) + (" ..." if len(renamed) > 10 else ""))
            return names
        return [f"column_{i + 1}" for i in range(len(first))]


class TabSeparatedReader(DelimitedTextReader):
    """Tab-separated values (the delimiter defaults to TAB)."""

    name = "tsv"
    extensions = (".tsv", ".tab")
    media_type = "text/tab-separated-values"
    title = "TSV"
    default_delimiter = "\t"


class _Dialect:
    def __init__(self, delimiter: str, quotechar: str, decimal: str, header: bool,
                 *, delimiter_given: bool) -> None:
        self.delimiter = delimiter
        self.quotechar = quotechar
        self.decimal = decimal
        self.header = header
        self.delimiter_given = delimiter_given


class _BadRows:
    """pyarrow's invalid-row handler: skip rows with a wrong field count, remember them."""

    def __init__(self, sink: ParquetSink) -> None:
        self.sink = sink
        self.count = 0
        self.example: tuple[int, int, str] | None = None

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.count += 1
        if self.example is None:
            self.example = (row.expected_columns, row.actual_columns, row.text or "")
        # A runaway share of bad rows means the dialect is wrong: stop reading early.
        if self.count > 1000 and self.count > 0.01 * (self.sink.n_rows + self.count):
            return "error"
        return "skip"


def _stream(path: Path, sink: ParquetSink, names: list[str], encoding: str, dialect: _Dialect,
            chunk_bytes: int, *, encoding_given: bool, label: str, title: str) -> None:
    overrides = _infer_types(path, names, encoding, dialect)
    block = max(int(chunk_bytes), 64 * 1024)
    seen: pa.Schema | None = None
    for attempt in range(MAX_ATTEMPTS):
        all_text = attempt == MAX_ATTEMPTS - 1
        if all_text:
            sink.warn(f"column types kept changing along the file; every column of {label} "
                      "was read as text")
        bad = _BadRows(sink)
        sink.reset()
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(
                    use_threads=True, block_size=block, column_names=names,
                    skip_rows=1 if dialect.header else 0, encoding=_arrow_encoding(encoding)),
                parse_options=pacsv.ParseOptions(
                    delimiter=dialect.delimiter, quote_char=dialect.quotechar or False,
                    newlines_in_values=bool(dialect.quotechar), invalid_row_handler=bad),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names} if all_text else overrides,
                    strings_can_be_null=True, quoted_strings_can_be_null=True,
                    decimal_point=dialect.decimal),
            )
            seen = reader.schema
            for batch in reader:
                if any(pa.types.is_binary(t) for t in batch.schema.types):
                    raise _NotEncoded
                sink.write(batch)
        except _NotEncoded:
            previous, encoding = encoding, _next_encoding(encoding, encoding_given, label)
            sink.warn(f"{label} is not valid {previous}; read it as {encoding} (pass source "
                      "option encoding= to choose)")
            continue
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "invalid UTF8" in message or "UnicodeDecodeError" in message or (
                    "codec can't decode" in message):
                encoding = _next_encoding(encoding, encoding_given, label)
                sink.warn(f"{label} is not entirely valid in the encoding first guessed; read "
                          f"it as {encoding} (pass source option encoding= to choose)")
                continue
            if "straddl" in message and block < MAX_BLOCK_BYTES:
                block = min(block * 4, MAX_BLOCK_BYTES)
                continue
            drift = _CONVERSION_ERROR.search(message)
            if drift is not None and not all_text:
                index, target, value = int(drift.group(1)), drift.group(2), drift.group(3)
                name = names[index] if index < len(names) else str(index)
                current = seen.field(name).type if seen is not None and name in seen.names \
                    else None
                new_type = _widen(current, value, dialect)
                overrides[name] = new_type
                shown = value if len(value) <= 40 else value[:40] + "..."
                sink.warn(
                    f"column {name!r} held {_TYPE_WORDS.get(target, target)} in the first "
                    f"rows but {shown!r} further down; it is stored as "
                    f"{_TYPE_WORDS.get(str(new_type), str(new_type))}"
                )
                continue
            if bad.count:
                raise _bad_rows_error(label, bad, sink.n_rows, dialect) from exc
            raise UnreadableTableError(
                f"{label} is not valid {title} ({message.splitlines()[0][:300]}); check for "
                "unbalanced quotes or pass source options delimiter=/quotechar="
            ) from exc
        except UnicodeDecodeError as exc:
            encoding = _next_encoding(encoding, encoding_given, label)
            sink.warn(f"{label} is not entirely valid in the encoding first guessed ({exc}); "
                      f"read it as {encoding}")
            continue
        break
    else:  # pragma: no cover - needs more restarts than any file has shown
        raise UnreadableTableError(
            f"{label} could not be read consistently after {MAX_ATTEMPTS} attempts (its "
            "encoding or column types keep changing); pass source options encoding= and "
            "delimiter=, or clean the file"
        )
    if sink.schema is None:  # a header and no rows: let the sink say so
        sink.write(pa.Table.from_arrays([pa.nulls(0)] * len(names), names=names))
    total = sink.n_rows + bad.count
    if bad.count > MAX_BAD_ROW_SHARE * total:
        raise _bad_rows_error(label, bad, sink.n_rows, dialect)
    if bad.count:
        expected, actual, _text = bad.example or (0, 0, "")
        sink.warn(f"skipped {bad.count} of {total} rows whose field count differs from the "
                  f"header's {expected}")


def _infer_types(path: Path, names: list[str], encoding: str,
                 dialect: _Dialect) -> dict[str, pa.DataType]:
    """Column types pyarrow infers from the file's first :data:`TYPE_SAMPLE_BYTES`."""
    with open(path, "rb") as fh:
        raw = fh.read(TYPE_SAMPLE_BYTES)
    text = raw.decode(_python_encoding(encoding), errors="replace")
    if len(raw) == TYPE_SAMPLE_BYTES and "\n" in text:
        text = text[: text.rfind("\n") + 1]  # whole lines only
    data = text.encode("utf-8")
    try:
        reader = pacsv.open_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=len(data) + 1, column_names=names,
                skip_rows=1 if dialect.header else 0),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter, quote_char=dialect.quotechar or False,
                newlines_in_values=bool(dialect.quotechar),
                invalid_row_handler=lambda _row: "skip"),
            convert_options=pacsv.ConvertOptions(
                strings_can_be_null=True, quoted_strings_can_be_null=True,
                decimal_point=dialect.decimal),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return {}
    return {f.name: f.type for f in reader.schema if not pa.types.is_null(f.type)}


class _NotEncoded(Exception):
    """Bytes that are not valid in the current encoding (pyarrow read them as binary)."""


def _next_encoding(encoding: str, given: bool, label: str) -> str:
    nxt = _FALLBACK_ENCODINGS.get(encoding.lower().replace("_", "-"))
    if given or nxt is None:
        raise UnreadableTableError(
            f"{label} is not valid {encoding} text; pass the right source option encoding= "
            "(e.g. utf-8, cp1252, latin-1, utf-16)"
        )
    return nxt


def _bad_rows_error(label: str, bad: _BadRows, good_rows: int,
                    dialect: _Dialect) -> UnreadableTableError:
    expected, actual, text = bad.example or (0, 0, "")
    shown = text if len(text) <= 80 else text[:80] + "..."
    where = "from source_options" if dialect.delimiter_given else "sniffed"
    return UnreadableTableError(
        f"{label}: {bad.count} row(s) (of at least {good_rows + bad.count}) have a different "
        f"number of fields than the header's {expected}, e.g. {shown!r} with {actual}; the "
        f"delimiter {dialect.delimiter!r} ({where}) is probably wrong or fields hold unquoted "
        "delimiters: pass source option delimiter= or fix those rows"
    )


def _widen(current: pa.DataType | None, value: str, dialect: _Dialect) -> pa.DataType:
    """The next type up that holds ``value`` (null -> int64 -> float64 -> string)."""
    stripped = value.strip()
    number = stripped.replace(dialect.decimal, ".") if dialect.decimal != "." else stripped
    is_int = bool(_INTEGER.fullmatch(stripped))
    try:
        float(number)
        is_float = bool(_NUMBER.fullmatch(stripped))
    except ValueError:
        is_float = False
    if current is None or pa.types.is_null(current):
        if is_int:
            return pa.int64()
        if is_float:
            return pa.float64()
        return pa.string()
    if pa.types.is_integer(current) and is_float:
        return pa.float64()
    return pa.string()


def _arrow_encoding(encoding: str) -> str:
    plain = encoding.lower().replace("-", "").replace("_", "")
    return "utf8" if plain in ("utf8", "utf8sig") else encoding


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _first_row(path: Path, encoding: str, dialect: _Dialect, label: str) -> list[str]:
    """The first row, parsed from at most :data:`TYPE_SAMPLE_BYTES` (memory stays bounded)."""
    with open(path, "rb") as raw:
        head = raw.read(TYPE_SAMPLE_BYTES)
        complete = len(head) < TYPE_SAMPLE_BYTES
    text = head.decode(_python_encoding(encoding), errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""),
                        **_csv_kwargs(dialect.delimiter, dialect.quotechar))
    try:
        row = next(reader, [])
    except csv.Error:
        row = []
    try:
        ended = bool(row) and (complete or next(reader, None) is not None)
    except csv.Error:  # the second row is cut inside quotes: the first one did end
        ended = True
    if not ended and not complete:
        raise UnreadableTableError(
            f"{label}: the first row does not end within the first "
            f"{TYPE_SAMPLE_BYTES // 1024**2} MiB; this is not delimited text with rows (or "
            "an opening quote is never closed: pass source option quotechar=none)"
        )
    return [cell.lstrip("\ufeff") for cell in row]


def _csv_kwargs(delimiter: str, quotechar: str) -> dict[str, object]:
    if quotechar:
        return {"delimiter": delimiter, "quotechar": quotechar}
    return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE}


def sample_rows(text: str, delimiter: str, quotechar: str, *, truncated: bool) -> list[list[str]]:
    """Up to :data:`SAMPLE_ROWS` parsed rows of the sample (a cut last line dropped)."""
    if truncated and "\n" in text:
        text = text[: text.rfind("\n") + 1]
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), **_csv_kwargs(delimiter, quotechar))
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append(row)
            if len(rows) >= SAMPLE_ROWS:
                break
    except csv.Error:
        pass
    return rows


def sniff_delimiter(text: str, *, truncated: bool) -> str:
    """The most likely delimiter among :data:`CANDIDATE_DELIMITERS` (``,`` if none)."""
    lines = text.splitlines()
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut mid-field
    lines = [line for line in lines if line.strip()][:200]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=CANDIDATE_DELIMITERS).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on irregular files; take the candidate that splits the header
    # most (a single-column file has none of them and keeps the comma).
    counts = {d: lines[0].count(d) for d in CANDIDATE_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _is_number(value: str) -> bool:
    return bool(_NUMBER.fullmatch(value.strip()))


def looks_like_header(rows: list[list[str]]) -> bool:
    """Whether the first sampled row names the columns (see the module docstring)."""
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    data_votes = 0
    for i, value in enumerate(first):
        column = [r[i] for r in rest if i < len(r) and r[i].strip()]
        if not column or not all(_is_number(v) for v in column):
            continue
        if _is_number(value):
            data_votes += 1
        elif value.strip():
            return True
    return data_votes == 0


def sniff_decimal(rows: list[list[str]], delimiter: str) -> str:
    """``,`` when the sample's numbers use a decimal comma and never a point, else ``.``."""
    if delimiter == ",":
        return "."
    comma = point = 0
    for row in rows:
        for cell in row:
            cell = cell.strip()
            if _COMMA_DECIMAL.fullmatch(cell):
                comma += 1
            elif _POINT_DECIMAL.fullmatch(cell):
                point += 1
    return "," if comma and not point else "."
