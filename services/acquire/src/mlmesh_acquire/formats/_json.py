"""JSON documents and JSON Lines; nested objects are flattened to ``parent.child`` columns.

A JSON document is read whole (it cannot be parsed in pieces), so it is limited to
:data:`JSON_DOCUMENT_MAX_BYTES`; JSON Lines streams line by line in chunks. The records of a
document are found this way: a top-level array is the records (objects, or rows given as
arrays, or plain values in one ``value`` column); in a top-level object, source option
``record_path`` (dotted keys, e.g. ``response.items``) names the array, else the only array
of objects, else the one under ``data``, ``records``, ``rows``, ``items``, ``results``,
``values`` or ``entries``, else the longest array of objects; an object of equally long
arrays is read column-wise, an object of objects row-wise (the key in column ``key``) and
an object of plain values is one record.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._delimited import looks_like_header
from mlmesh_acquire.formats._errors import UnreadableTableError
from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink, unique_column_names
from mlmesh_acquire.formats._text import check_text, detect_encoding, read_head
from mlmesh_acquire.formats._values import frame_to_table

#: JSON documents larger than this are refused (they are parsed in memory); use JSON Lines.
JSON_DOCUMENT_MAX_BYTES = 512 * 1024**2
#: Records per chunk handed to the sink.
RECORDS_PER_CHUNK = 50_000
#: Keys that usually hold the records of a JSON API answer, in order of preference.
RECORD_KEYS = ("data", "records", "rows", "items", "results", "values", "entries")


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


class JsonReader(TableReader):
    """A JSON document holding an array of records (see the module docstring)."""

    name = "json"
    extensions = (".json",)
    media_type = "application/json"
    option_keys = ("encoding", "record_path")
    title = "JSON"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        size = path.stat().st_size
        if size > JSON_DOCUMENT_MAX_BYTES:
            raise UnreadableTableError(
                f"{label} is a {size / 1e6:.0f} MB JSON document; documents over "
                f"{JSON_DOCUMENT_MAX_BYTES // 1024**2} MiB are not read (they are parsed in "
                "memory): give it as JSON Lines (one record per line), CSV or Parquet"
            )
        sample = read_head(path)
        encoding = options.encoding or detect_encoding(sample)
        check_text(label, sample, encoding, self.title)
        text = path.read_bytes().decode(_python_encoding(encoding), errors="replace")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data" and text.lstrip().startswith("{"):
                del text
                sink.warn(f"{label} holds one JSON object per line; read it as JSON Lines")
                JsonLinesReader().convert(path, sink, options, chunk_bytes=chunk_bytes)
                return
            raise UnreadableTableError(
                f"{label} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                f"{exc.colno}); the file is probably cut short or not JSON"
            ) from exc
        del text
        records = find_records(document, options.record_path, label, sink)
        if not records:
            raise UnreadableTableError(
                f"{label} holds an empty array: no records to read; check the export"
            )
        for start in range(0, len(records), RECORDS_PER_CHUNK):
            sink.write(records_to_table(records[start:start + RECORDS_PER_CHUNK], sink))


class JsonLinesReader(TableReader):
    """JSON Lines: one object per line, streamed in chunks."""

    name = "jsonl"
    extensions = (".jsonl", ".ndjson")
    media_type = "application/x-ndjson"
    option_keys = ("encoding",)
    title = "JSON Lines"

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        sample = read_head(path)
        encoding = options.encoding or detect_encoding(sample)
        check_text(label, sample, encoding, self.title)
        for chunk in _line_chunks(path, encoding, chunk_bytes, label):
            sink.write(records_to_table(chunk, sink))


def _line_chunks(path: Path, encoding: str, chunk_bytes: int,
                 label: str) -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    size = 0
    with open(path, "rb") as raw:
        lines = io.TextIOWrapper(raw, encoding=_python_encoding(encoding), errors="replace")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UnreadableTableError(
                    f"{label} line {number} is not valid JSON ({exc.msg} at column "
                    f"{exc.colno}); JSON Lines needs one complete object per line"
                ) from exc
            if not isinstance(value, dict):
                raise UnreadableTableError(
                    f"{label} line {number} holds a JSON {type(value).__name__}, not an "
                    "object; JSON Lines needs one object (a record) per line"
                )
            records.append(value)
            size += len(line)
            if len(records) >= RECORDS_PER_CHUNK or size >= chunk_bytes:
                yield records
                records, size = [], 0
    if records:
        yield records


def find_records(document: Any, record_path: str | None, label: str,
                 sink: ParquetSink) -> list[Any]:
    """The list of records in a parsed JSON document (rules in the module docstring)."""
    if record_path:
        node = document
        for key in record_path.split("."):
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                keys = sorted(node)[:20] if isinstance(node, dict) else []
                raise UnreadableTableError(
                    f"{label} has no {key!r} on the source option record_path={record_path!r}"
                    + (f"; keys there: {', '.join(map(repr, keys))}" if keys else "")
                )
        if not isinstance(node, list):
            raise UnreadableTableError(
                f"{label}: record_path={record_path!r} leads to a {type(node).__name__}, not "
                "an array of records"
            )
        return _rows_as_records(node, sink)
    if isinstance(document, list):
        return _rows_as_records(document, sink)
    if not isinstance(document, dict):
        raise UnreadableTableError(
            f"{label} holds a single JSON {type(document).__name__}, not records; give an "
            "array of objects (or an object holding one)"
        )
    arrays = {k: v for k, v in document.items()
              if isinstance(v, list) and v and all(isinstance(x, dict) for x in v[:100])}
    if len(arrays) == 1:
        key = next(iter(arrays))
    elif arrays:
        key = next((k for k in RECORD_KEYS if k in arrays),
                   max(arrays, key=lambda k: len(arrays[k])))
        sink.warn(f"{label} holds several arrays of records ({', '.join(sorted(arrays))}); "
                  f"read {key!r} (pass source option record_path= to choose)")
    else:
        key = None
    if key is not None:
        return arrays[key]
    values = list(document.values())
    if values and all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        return [dict(zip(document, row, strict=True)) for row in zip(*values, strict=True)]
    if values and all(isinstance(v, dict) for v in values):
        return [{"key": k, **v} for k, v in document.items()]
    if values and not any(isinstance(v, (dict, list)) for v in values):
        return [document]
    raise UnreadableTableError(
        f"{label} is a JSON object without an array of records (keys: "
        f"{', '.join(map(repr, list(document)[:20]))}); name the array with source option "
        "record_path="
    )


def _rows_as_records(rows: list[Any], sink: ParquetSink) -> list[Any]:
    if not rows:
        return rows
    if all(isinstance(r, dict) or r is None for r in rows):
        return [r or {} for r in rows]
    if all(isinstance(r, list) for r in rows):
        text_rows = [["" if v is None else str(v) for v in r] for r in rows[:200]]
        has_header = looks_like_header(text_rows) and all(isinstance(v, str) for v in rows[0])
        width = max(len(r) for r in rows)
        names = (unique_column_names([str(v) for v in rows[0]]) if has_header else [])
        names += [f"column_{i + 1}" for i in range(len(names), width)]
        return [dict(zip(names, r, strict=False)) for r in rows[1 if has_header else 0:]]
    if not any(isinstance(r, (dict, list)) for r in rows):
        return [{"value": r} for r in rows]
    sink.warn("the JSON array mixes records and other values; non-records are stored as text")
    return [r if isinstance(r, dict) else {"value": json.dumps(r)} for r in rows]


def records_to_table(records: list[Any], sink: ParquetSink) -> pa.Table:
    """A chunk of records flattened with ``pandas.json_normalize`` as an Arrow table."""
    frame = pd.json_normalize(records, sep=".")
    return frame_to_table(frame, sink)
