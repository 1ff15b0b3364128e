"""Excel workbooks: ``.xlsx``/``.xlsm`` (openpyxl, streamed) and legacy ``.xls`` (xlrd).

The sheet is source option ``sheet`` (a name, matched exactly then ignoring case, or a
0-based position), else the first sheet holding any value. Blank rows are skipped; the first
non-blank row names the columns (header detection and ``header=`` as for CSV). Excel error
values (``#N/A``, ``#DIV/0!``, ...) become missing values; formulas give their cached result.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlmesh_acquire.formats._base import TableReader
from mlmesh_acquire.formats._delimited import looks_like_header
from mlmesh_acquire.formats._errors import UnreadableTableError
from mlmesh_acquire.formats._options import ReadOptions
from mlmesh_acquire.formats._sink import ParquetSink, unique_column_names
from mlmesh_acquire.formats._values import values_to_array

#: Cells (rows x columns) per chunk handed to the sink.
CELLS_PER_CHUNK = 2_000_000
#: Rows looked at to decide whether the first row is a header.
HEADER_SAMPLE_ROWS = 200
EXCEL_ERRORS = frozenset(
    {"#N/A", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA",
     "#SPILL!", "#CALC!"}
)

RowsOf = Callable[[str], Iterable[tuple[Any, ...]]]


class _WorkbookReader(TableReader):
    option_keys = ("sheet", "header")

    def convert(
        self, path: Path, sink: ParquetSink, options: ReadOptions, *, chunk_bytes: int
    ) -> None:
        label = self.label(path)
        with self._open(path, label) as (sheet_names, rows_of):
            name, rows = _choose_sheet(label, sheet_names, rows_of, options.sheet, sink)
            _write_rows(label, rows, sink, options.header)

    @abstractmethod
    def _open(self, path: Path, label: str) -> _Workbook:
        """The workbook's sheet names and a function giving a sheet's rows."""


class _Workbook:
    """Context manager holding an open workbook."""

    def __init__(self, names: list[str], rows_of: RowsOf, close: Callable[[], None]) -> None:
        self.names, self.rows_of, self._close = names, rows_of, close

    def __enter__(self) -> tuple[list[str], RowsOf]:
        return self.names, self.rows_of

    def __exit__(self, *exc: object) -> None:
        self._close()


class XlsxReader(_WorkbookReader):
    """Office Open XML workbooks (.xlsx, .xlsm), read row by row."""

    name = "xlsx"
    extensions = (".xlsx", ".xlsm")
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    title = "Excel workbook"

    def _open(self, path: Path, label: str) -> _Workbook:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError,
                TypeError) as exc:
            raise UnreadableTableError(
                f"{label} looks like an Excel workbook but cannot be opened ({exc}); "
                "save it again as .xlsx or export the sheet as CSV"
            ) from exc

        def rows_of(name: str) -> Iterable[tuple[Any, ...]]:
            sheet = book[name]
            if not hasattr(sheet, "iter_rows"):  # a chart sheet
                return iter(())
            return sheet.iter_rows(values_only=True)

        return _Workbook(list(book.sheetnames), rows_of, book.close)


class XlsReader(_WorkbookReader):
    """Legacy Excel 97-2003 workbooks (.xls)."""

    name = "xls"
    extensions = (".xls",)
    media_type = "application/vnd.ms-excel"
    title = "Excel 97-2003 workbook"

    def _open(self, path: Path, label: str) -> _Workbook:
        import xlrd

        try:
            book = xlrd.open_workbook(path, on_demand=True)
        except (xlrd.XLRDError, xlrd.compdoc.CompDocError, OSError, ValueError, KeyError,
                IndexError, AssertionError) as exc:
            raise UnreadableTableError(
                f"{label} is a legacy Office file but not a readable Excel workbook ({exc}); "
                "save it as .xlsx or CSV"
            ) from exc

        def rows_of(name: str) -> Iterator[tuple[Any, ...]]:
            sheet = book.sheet_by_name(name)
            for r in range(sheet.nrows):
                yield tuple(_xls_value(cell, book.datemode) for cell in sheet.row(r))

        return _Workbook(book.sheet_names(), rows_of, book.release_resources)


def _xls_value(cell: Any, datemode: int) -> Any:
    import xlrd

    kind, value = cell.ctype, cell.value
    if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    if kind == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(value, datemode)
        except (xlrd.xldate.XLDateError, ValueError, OverflowError):
            return value
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if kind == xlrd.XL_CELL_NUMBER and float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _clean_row(row: tuple[Any, ...]) -> list[Any]:
    cells = [None if (isinstance(v, str) and (v.strip() == "" or v.strip() in EXCEL_ERRORS))
             else v for v in row]
    while cells and cells[-1] is None:
        cells.pop()
    return cells


def _non_blank_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[list[Any]]:
    for row in rows:
        cells = _clean_row(row)
        if cells:
            yield cells


def _choose_sheet(label: str, names: list[str], rows_of: RowsOf, wanted: str | None,
                  sink: ParquetSink) -> tuple[str, Iterator[list[Any]]]:
    if not names:
        raise UnreadableTableError(f"{label} has no sheets")
    if wanted is not None:
        name = _match_sheet(label, names, wanted)
        rows = _non_blank_rows(rows_of(name))
        first = next(rows, None)
        if first is None:
            raise UnreadableTableError(
                f"{label} sheet {name!r} is empty; choose a sheet that holds the table "
                f"(sheets: {', '.join(map(repr, names))})"
            )
        return name, chain([first], rows)
    for name in names:
        rows = _non_blank_rows(rows_of(name))
        first = next(rows, None)
        if first is not None:
            if len(names) > 1:
                sink.warn(f"{label} has {len(names)} sheets; read {name!r}, the first that is "
                          "not empty (pass source option sheet= to choose another)")
            return name, chain([first], rows)
    raise UnreadableTableError(
        f"{label} has only empty sheets ({', '.join(map(repr, names))}); put the table on a "
        "sheet or export it as CSV"
    )


def _match_sheet(label: str, names: list[str], wanted: str) -> str:
    if wanted in names:
        return wanted
    folded = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    if wanted.strip().isdigit() and int(wanted) < len(names):
        return names[int(wanted)]
    raise UnreadableTableError(
        f"{label} has no sheet {wanted!r}; its sheets are {', '.join(map(repr, names))} "
        "(source option sheet= takes a name or a 0-based position)"
    )


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


def _write_rows(label: str, rows: Iterator[list[Any]], sink: ParquetSink,
                header_option: bool | None) -> None:
    head = list(islice(rows, HEADER_SAMPLE_ROWS))
    text_rows = [[_cell_text(v) for v in row] for row in head]
    header = header_option if header_option is not None else looks_like_header(text_rows)
    names = unique_column_names(text_rows[0]) if header else []
    body = chain(head[1:] if header else head, rows)
    wrote = False
    while True:
        width = max(len(names), 1)
        chunk = list(islice(body, max(1000, CELLS_PER_CHUNK // width)))
        if not chunk:
            break
        width = max(width, max(len(r) for r in chunk))
        if len(names) < width:
            names = names + [f"column_{i + 1}" for i in range(len(names), width)]
        arrays = [
            values_to_array(names[i], [r[i] if i < len(r) else None for r in chunk], sink)
            for i in range(width)
        ]
        sink.write(pa.Table.from_arrays(arrays, names=names[:width]))
        wrote = True
    if not wrote and names:  # a header and no data: let the sink say so
        sink.write(pa.Table.from_arrays([pa.nulls(0)] * len(names), names=names))
