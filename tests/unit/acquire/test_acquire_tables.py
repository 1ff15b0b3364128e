"""to_parquet: format detection, CSV dialects and encodings, unreadable inputs."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmesh_acquire import UnreadableTableError, detect_format, to_parquet


def _frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "height": rng.normal(170, 10, n).round(1),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )


def test_csv_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    _frame().to_csv(src, index=False)
    info = to_parquet(src, tmp_path / "out" / "t.parquet")
    assert (info.n_rows, info.n_columns, info.format) == (100, 3, "csv")
    assert info.columns == ["id", "height", "colour"]
    back = pd.read_parquet(tmp_path / "out" / "t.parquet")
    pd.testing.assert_frame_equal(back, _frame(), check_dtype=False)
    assert pd.api.types.is_integer_dtype(back["id"])
    assert pd.api.types.is_float_dtype(back["height"])
    assert not (tmp_path / "out" / "t.parquet.part").exists()


def test_parquet_detected_by_magic_even_when_named_csv(tmp_path: Path) -> None:
    src = tmp_path / "misnamed.csv"
    _frame(40).to_parquet(src, index=False)
    assert detect_format(src) == "parquet"
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.format, info.n_rows, info.n_columns) == ("parquet", 40, 3)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), _frame(40))


def test_utf8_bom_is_dropped_from_first_column_name(tmp_path: Path) -> None:
    src = tmp_path / "bom.csv"
    src.write_bytes("\ufeffname,score\nÅse,1.5\nZoë,2.5\n".encode())
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.columns == ["name", "score"]
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["name"].tolist() == ["Åse", "Zoë"]
    assert back["score"].tolist() == [1.5, 2.5]


def test_semicolon_delimiter_with_decimal_comma(tmp_path: Path) -> None:
    src = tmp_path / "eu.csv"
    rows = ["stadt;temperatur;notiz"] + [f"Köln;{i},5;a, b" for i in range(30)]
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.columns == ["stadt", "temperatur", "notiz"]
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["temperatur"].iloc[3] == pytest.approx(3.5)
    assert back["notiz"].iloc[0] == "a, b"


def test_tab_separated_utf16_and_latin1(tmp_path: Path) -> None:
    text = "a\tb\n1\tx\n2\ty\n"
    utf16 = tmp_path / "excel.txt"
    utf16.write_bytes(text.encode("utf-16"))
    info = to_parquet(utf16, tmp_path / "u.parquet")
    assert (info.columns, info.n_rows) == (["a", "b"], 2)

    latin = tmp_path / "latin.csv"
    latin.write_bytes("ville,prix\nGen\xe8ve,3\n".encode("latin-1"))
    to_parquet(latin, tmp_path / "l.parquet")
    assert pd.read_parquet(tmp_path / "l.parquet")["ville"].iloc[0] == "Genève"


def test_single_column_csv(tmp_path: Path) -> None:
    src = tmp_path / "one.csv"
    src.write_text("value\n1\n2\n3\n")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.columns, info.n_rows) == (["value"], 3)


def test_gzip_csv(tmp_path: Path) -> None:
    src = tmp_path / "t.csv.gz"
    src.write_bytes(gzip.compress(_frame().to_csv(index=False).encode()))
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.format, info.n_rows) == ("csv.gz", 100)
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(src.read_bytes()[:40])
    with pytest.raises(UnreadableTableError, match="gzip"):
        to_parquet(truncated, tmp_path / "cut.parquet")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"  \n\n  \n", "no data"),
        (b"a,b,c\n", "no data rows"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
        (b'a,b\n1,2\n3,4,5,6\n"unterminated', "not valid CSV"),
    ],
)
def test_unreadable_csv_inputs(tmp_path: Path, content: bytes, reason: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(UnreadableTableError, match=reason):
        to_parquet(src, tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_binary_junk_named_csv(tmp_path: Path) -> None:
    src = tmp_path / "junk.csv"
    src.write_bytes(np.random.default_rng(7).bytes(4096))
    with pytest.raises(UnreadableTableError, match="binary"):
        to_parquet(src, tmp_path / "t.parquet")


def test_corrupt_parquet_and_zip_and_pdf(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    _frame().to_parquet(good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UnreadableTableError, match="Parquet.*corrupt"):
        to_parquet(bad, tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet.part").exists()

    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner.csv", "a,b\n1,2\n")
    with pytest.raises(UnreadableTableError, match="ZIP"):
        to_parquet(archive, tmp_path / "t.parquet")

    pdf = tmp_path / "report.csv"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    with pytest.raises(UnreadableTableError, match="PDF"):
        to_parquet(pdf, tmp_path / "t.parquet")


def test_duplicate_header_names_are_rejected(tmp_path: Path) -> None:
    src = tmp_path / "dupe.csv"
    src.write_text("a,b, a\n1,2,3\n")
    with pytest.raises(UnreadableTableError, match=r"repeats column names \['a'\]"):
        to_parquet(src, tmp_path / "t.parquet")
