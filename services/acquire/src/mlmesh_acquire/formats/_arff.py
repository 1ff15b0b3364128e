"""ARFF (Weka's Attribute-Relation File Format), as OpenML serves it, parsed in chunks.

The header's ``@attribute`` lines give the columns: ``numeric``/``real`` become floats,
``integer`` integers, nominal ``{a, b, c}`` and ``string`` attributes text (nominal values
decoded to their labels), ``date`` timestamps (text when they do not parse). ``?`` is a
missing value, ``%`` starts a comment, values may be quoted with ``'`` or ``"``, and sparse
rows (``{0 1.5, 3 x}``) are expanded (omitted values are 0, or the first label of a nominal
attribute). Relational attributes are refused.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._errors import UnreadableTableError
from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink, unique_column_names
from mlmesh_acquire.formats._text import check_text, detect_encoding, read_head

#: Data rows per chunk handed to the sink.
ROWS_PER_CHUNK = 50_000

_TOKEN = re.compile(r"""\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^,]*?)\s*(,|$)""")
_ATTRIBUTE = re.compile(
    r"""@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s+(.*)$""", re.I)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


@dataclass
class Attribute:
    """One ``@attribute`` line."""

    name: str
    kind: str  # numeric, integer, nominal, string, date
    labels: list[str] = field(default_factory=list)


class ArffReader(TableReader):
    """ARFF files (dense and sparse)."""

    name = "arff"
    extensions = (".arff",)
    media_type = "text/x-arff"
    option_keys = ("encoding",)
    title = "ARFF"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        sample = read_head(path)
        encoding = options.encoding or detect_encoding(sample)
        check_text(label, sample, encoding, self.title)
        py_encoding = "utf-8-sig" if encoding == "utf-8" else encoding
        with open(path, "rb") as raw:
            lines = io.TextIOWrapper(raw, encoding=py_encoding, errors="replace")
            numbered = enumerate(lines, start=1)
            attributes = _read_header(numbered, label)
            names = unique_column_names([a.name for a in attributes])
            wrote = False
            for rows in _data_chunks(numbered, attributes, label):
                sink.write(_to_table(rows, attributes, names, sink))
                wrote = True
            if not wrote:
                sink.write(_to_table([], attributes, names, sink))


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), token[1:-1])
    return token


def _split_values(text: str) -> list[str | None]:
    """Comma-separated ARFF values; ``?`` (unquoted) is ``None``."""
    values: list[str | None] = []
    pos = 0
    while True:
        match = _TOKEN.match(text, pos)
        if match is None:  # cannot happen: the pattern matches the empty string
            break
        token = match.group(1)
        quoted = token[:1] in ("'", '"')
        values.append(None if token == "?" and not quoted else _unquote(token))
        if match.group(2) != ",":
            break
        pos = match.end()
    return values


def _read_header(numbered: Iterator[tuple[int, str]], label: str) -> list[Attribute]:
    attributes: list[Attribute] = []
    for number, line in numbered:
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        lowered = stripped.lower()
        if lowered.startswith("@relation"):
            continue
        if lowered.startswith("@attribute"):
            attributes.append(_parse_attribute(stripped, number, label))
            continue
        if lowered.startswith("@data"):
            if not attributes:
                raise UnreadableTableError(f"{label} has @data but no @attribute lines")
            return attributes
        if lowered.startswith("@end"):
            raise UnreadableTableError(
                f"{label} line {number}: relational attributes are not supported; flatten "
                "the data set or export it as CSV"
            )
        raise UnreadableTableError(
            f"{label} line {number} is not an ARFF header line ({stripped[:60]!r}); expected "
            "@relation, @attribute or @data"
        )
    raise UnreadableTableError(f"{label} has no @data section; the ARFF file is incomplete")


def _parse_attribute(line: str, number: int, label: str) -> Attribute:
    match = _ATTRIBUTE.match(line)
    if match is None:
        raise UnreadableTableError(f"{label} line {number}: cannot read attribute {line[:80]!r}")
    name, spec = _unquote(match.group(1)), match.group(2).strip()
    lowered = spec.lower()
    if spec.startswith("{"):
        inner = spec[1:spec.rfind("}")] if "}" in spec else spec[1:]
        labels = [v for v in _split_values(inner) if v is not None]
        return Attribute(name, "nominal", labels)
    if lowered in ("numeric", "real"):
        return Attribute(name, "numeric")
    if lowered == "integer":
        return Attribute(name, "integer")
    if lowered == "string":
        return Attribute(name, "string")
    if lowered.startswith("date"):
        return Attribute(name, "date")
    if lowered.startswith("relational"):
        raise UnreadableTableError(
            f"{label} line {number}: relational attribute {name!r} is not supported; flatten "
            "the data set or export it as CSV"
        )
    raise UnreadableTableError(
        f"{label} line {number}: attribute {name!r} has unknown type {spec[:40]!r}"
    )


def _data_chunks(numbered: Iterator[tuple[int, str]], attributes: list[Attribute],
                 label: str) -> Iterator[list[list[str | None]]]:
    width = len(attributes)
    rows: list[list[str | None]] = []
    for number, line in numbered:
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        if stripped.startswith("{"):
            row = _sparse_row(stripped, attributes, number, label)
        else:
            row = _split_values(stripped)
        if len(row) != width:
            raise UnreadableTableError(
                f"{label} line {number} has {len(row)} values but {width} attributes are "
                "declared; the data section does not match the header"
            )
        rows.append(row)
        if len(rows) >= ROWS_PER_CHUNK:
            yield rows
            rows = []
    if rows:
        yield rows


def _sparse_row(line: str, attributes: list[Attribute], number: int,
                label: str) -> list[str | None]:
    row: list[str | None] = [
        (a.labels[0] if a.labels else None) if a.kind == "nominal"
        else ("0" if a.kind in ("numeric", "integer") else None)
        for a in attributes
    ]
    body = line[1:line.rfind("}")] if "}" in line else line[1:]
    for item in _split_values(body):
        if item is None or not item.strip():
            continue
        index, _, value = item.strip().partition(" ")
        try:
            position = int(index)
            row[position] = None if value.strip() == "?" else _unquote(value.strip())
        except (ValueError, IndexError) as exc:
            raise UnreadableTableError(
                f"{label} line {number}: bad sparse entry {item[:40]!r}"
            ) from exc
    return row


def _to_table(rows: list[list[str | None]], attributes: list[Attribute], names: list[str],
              sink: ParquetSink) -> pa.Table:
    arrays = []
    for i, attribute in enumerate(attributes):
        values = [row[i] for row in rows]
        arrays.append(_column(attribute, names[i], values, sink))
    return pa.Table.from_arrays(arrays, names=names)


def _column(attribute: Attribute, name: str, values: list[str | None],
            sink: ParquetSink) -> pa.Array:
    text = pa.array(values, type=pa.string())
    if attribute.kind in ("numeric", "integer"):
        try:
            numbers = pc.cast(text, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            sink.warn(f"attribute {name!r} is declared numeric but holds text; stored as text")
            return text
        if attribute.kind == "integer":
            try:
                return pc.cast(numbers, pa.int64())
            except pa.ArrowInvalid:
                return numbers
        return numbers
    if attribute.kind == "date":
        try:
            parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")
            return pa.Array.from_pandas(parsed)
        except (ValueError, TypeError):
            sink.warn(f"date attribute {name!r} does not parse as ISO dates; stored as text")
            return text
    return text
