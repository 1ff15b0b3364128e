"""Excel workbooks: sheet choice, empty sheets, header and error cells, legacy .xls."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from mlmesh_acquire import UnreadableTableError, detect_format, to_parquet


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def _read(tmp_path: Path, src: Path, **options: str) -> tuple[object, pd.DataFrame]:
    out = tmp_path / (src.name + ".parquet")
    info = to_parquet(src, out, options=options or None)
    return info, pd.read_parquet(out)


def test_first_non_empty_sheet_with_blank_rows_and_error_cells(tmp_path: Path) -> None:
    src = _workbook(tmp_path / "book.xlsx", {
        "Cover": [],
        "Data": [[None], ["name", "amount", "when", None],
                 ["a", 1.5, dt.datetime(2024, 1, 2), None], [None, None],
                 ["b", "#DIV/0!", dt.datetime(2024, 3, 4)]],
        "Other": [["x"], [1]],
    })
    assert detect_format(src) == "xlsx"
    info, back = _read(tmp_path, src)
    assert info.columns == ["name", "amount", "when"] and info.n_rows == 2
    assert back["amount"].tolist()[0] == 1.5 and pd.isna(back["amount"].iloc[1])
    assert back["when"].iloc[1] == pd.Timestamp("2024-03-04")
    assert any("read 'Data', the first that is not empty" in w for w in info.warnings)


def test_sheet_option_by_name_case_or_position(tmp_path: Path) -> None:
    src = _workbook(tmp_path / "book.xlsx", {"Train": [["x"], [1], [2]], "Test": [["x"], [9]]})
    assert _read(tmp_path, src, sheet="Test")[1]["x"].tolist() == [9]
    assert _read(tmp_path, src, sheet="test")[1]["x"].tolist() == [9]
    assert _read(tmp_path, src, sheet="1")[1]["x"].tolist() == [9]
    with pytest.raises(UnreadableTableError,
                       match="no sheet 'Valid'; its sheets are 'Train', 'Test'"):
        _read(tmp_path, src, sheet="Valid")


def test_only_empty_sheets_is_a_clear_error(tmp_path: Path) -> None:
    src = _workbook(tmp_path / "empty.xlsx", {"Sheet1": [], "Sheet2": [[None, None]]})
    with pytest.raises(UnreadableTableError, match="only empty sheets \\('Sheet1', 'Sheet2'\\)"):
        _read(tmp_path, src)
    named = _workbook(tmp_path / "some.xlsx", {"A": [["x"], [1]], "B": []})
    with pytest.raises(UnreadableTableError, match="sheet 'B' is empty"):
        _read(tmp_path, named, sheet="B")


def test_header_only_sheet_and_headerless_numbers(tmp_path: Path) -> None:
    header_only = _workbook(tmp_path / "h.xlsx", {"S": [["a", "b"]]})
    with pytest.raises(UnreadableTableError, match="2 column\\(s\\) but no data rows"):
        _read(tmp_path, header_only)
    numbers = _workbook(tmp_path / "n.xlsx", {"S": [[1, 2.5], [3, 4.5]]})
    info, back = _read(tmp_path, numbers)
    assert info.columns == ["column_1", "column_2"] and back["column_1"].tolist() == [1, 3]
    info, _ = _read(tmp_path, numbers, header="true")
    assert info.columns == ["1", "2.5"] and info.n_rows == 1


def test_mixed_column_becomes_text_and_wide_rows_get_names(tmp_path: Path) -> None:
    src = _workbook(tmp_path / "m.xlsx", {"S": [["code"], [1], ["A7"], [3, "extra"]]})
    info, back = _read(tmp_path, src)
    assert back["code"].tolist() == ["1", "A7", "3"]
    assert info.columns == ["code", "column_2"] and back["column_2"].tolist()[-1] == "extra"
    assert any("mixes kinds of values" in w for w in info.warnings)


def test_damaged_xlsx(tmp_path: Path) -> None:
    src = _workbook(tmp_path / "ok.xlsx", {"S": [["a"], [1]]})
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(src.read_bytes()[:300])
    with pytest.raises(UnreadableTableError):
        _read(tmp_path, broken)


def test_legacy_xls(tmp_path: Path) -> None:
    xlwt = pytest.importorskip("xlwt", reason="xlwt writes the .xls fixture")
    book = xlwt.Workbook()
    book.add_sheet("Blank")
    sheet = book.add_sheet("Data")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for c, name in enumerate(["n", "label", "day", "flag"]):
        sheet.write(0, c, name)
    for r in range(1, 4):
        sheet.write(r, 0, r)
        sheet.write(r, 1, f"row{r}")
        sheet.write(r, 2, dt.date(2024, 1, r), date_style)
        sheet.write(r, 3, r % 2 == 0)
    src = tmp_path / "old.xls"
    book.save(str(src))
    assert detect_format(src) == "xls"
    info, back = _read(tmp_path, src)
    assert info.format == "xls" and info.columns == ["n", "label", "day", "flag"]
    assert back["n"].tolist() == [1, 2, 3] and pd.api.types.is_integer_dtype(back["n"])
    assert back["day"].iloc[2] == pd.Timestamp("2024-01-03")
    assert back["flag"].tolist() == [False, True, False]
    doc = tmp_path / "not-a-workbook.xls"
    doc.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    with pytest.raises(UnreadableTableError, match="not a readable Excel workbook"):
        _read(tmp_path, doc)
