"""to_parquet: format detection, CSV dialects and encodings, schema drift, unreadable inputs."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from mlmesh_acquire import UnreadableTableError, detect_format, to_parquet
from mlmesh_acquire.formats import SourceOptionError, _delimited
from mlmesh_acquire.tables import media_type_for


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
    assert info.member is None and info.warnings == []
    back = pd.read_parquet(tmp_path / "out" / "t.parquet")
    pd.testing.assert_frame_equal(back, _frame(), check_dtype=False)
    assert pd.api.types.is_integer_dtype(back["id"])
    assert pd.api.types.is_float_dtype(back["height"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t.parquet"]


def test_parquet_detected_by_magic_even_when_named_csv(tmp_path: Path) -> None:
    src = tmp_path / "misnamed.csv"
    _frame(40).to_parquet(src, index=False)
    assert detect_format(src) == "parquet"
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.format, info.n_rows, info.n_columns) == ("parquet", 40, 3)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), _frame(40))


def _write_formats(folder: Path) -> dict[str, Path]:
    frame = _frame(20)
    csv_bytes = frame.to_csv(index=False).encode()
    paths = {}

    def put(name: str, data: bytes) -> None:
        paths[name] = folder / name
        paths[name].write_bytes(data)

    put("plain.csv", csv_bytes)
    put("plain.tsv", frame.to_csv(index=False, sep="\t").encode())
    put("records.json", frame.to_json(orient="records").encode())
    put("lines.jsonl", frame.to_json(orient="records", lines=True).encode())
    put("weka.arff", b"@relation r\n@attribute a numeric\n@data\n1\n")
    put("t.csv.gz", gzip.compress(csv_bytes))
    put("t.csv.bz2", bz2.compress(csv_bytes))
    put("t.csv.xz", lzma.compress(csv_bytes))
    put("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(100))
    frame.to_parquet(folder / "p.bin")
    paths["p.bin"] = folder / "p.bin"
    feather.write_feather(frame, folder / "f.dat")
    paths["f.dat"] = folder / "f.dat"
    frame.to_excel(folder / "book.xlsx", index=False)
    paths["book.xlsx"] = folder / "book.xlsx"
    frame.to_hdf(folder / "store.h5", key="t")
    paths["store.h5"] = folder / "store.h5"
    with zipfile.ZipFile(folder / "a.zip", "w") as zf:
        zf.writestr("x.csv", csv_bytes)
    paths["a.zip"] = folder / "a.zip"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        info = tarfile.TarInfo("x.csv")
        info.size = len(csv_bytes)
        tf.addfile(info, io.BytesIO(csv_bytes))
    put("a.tgz", gzip.compress(buffer.getvalue()))
    return paths


@pytest.mark.parametrize(
    ("name", "expected", "media_type"),
    [
        ("plain.csv", "csv", "text/csv"),
        ("plain.tsv", "tsv", "text/tab-separated-values"),
        ("records.json", "json", "application/json"),
        ("lines.jsonl", "jsonl", "application/x-ndjson"),
        ("weka.arff", "arff", "text/x-arff"),
        ("t.csv.gz", "csv.gz", "application/gzip"),
        ("t.csv.bz2", "csv.bz2", "application/x-bzip2"),
        ("t.csv.xz", "csv.xz", "application/x-xz"),
        ("picture.csv", "unknown", "application/octet-stream"),
        ("p.bin", "parquet", "application/vnd.apache.parquet"),
        ("f.dat", "feather", "application/vnd.apache.arrow.file"),
        ("book.xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("store.h5", "hdf5", "application/x-hdf5"),
        ("a.zip", "zip", "application/zip"),
        ("a.tgz", "tar.gz", "application/gzip"),
    ],
)
def test_detect_format_by_content_first(tmp_path: Path, name: str, expected: str,
                                        media_type: str) -> None:
    paths = _write_formats(tmp_path)
    assert detect_format(paths[name]) == expected
    # A caller may pass only the first 16 bytes (as fetch does); the file is read further.
    with open(paths[name], "rb") as fh:
        assert detect_format(paths[name], fh.read(16)) == expected
    assert media_type_for(expected) == media_type


def test_every_detected_format_converts_with_layers_in_the_format_name(tmp_path: Path) -> None:
    paths = _write_formats(tmp_path)
    expected = {"plain.tsv": "tsv", "records.json": "json", "t.csv.xz": "csv.xz",
                "f.dat": "feather", "store.h5": "hdf5", "a.zip": "csv.zip",
                "a.tgz": "csv.tar.gz", "book.xlsx": "xlsx"}
    for name, fmt in expected.items():
        info = to_parquet(paths[name], tmp_path / "out" / f"{name}.parquet")
        assert (info.format, info.n_rows, info.columns) == (fmt, 20, ["id", "height", "colour"])
        back = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, _frame(20), check_dtype=False)


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


def test_semicolon_file_with_decimal_points_keeps_them(tmp_path: Path) -> None:
    src = tmp_path / "dots.csv"
    src.write_text("a;b\n1.5;x\n2.25;y\n")
    to_parquet(src, tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["a"].tolist() == [1.5, 2.25]


def test_tab_separated_utf16_latin1_and_cp1252(tmp_path: Path) -> None:
    text = "a\tb\n1\tx\n2\ty\n"
    utf16 = tmp_path / "excel.txt"
    utf16.write_bytes(text.encode("utf-16"))
    info = to_parquet(utf16, tmp_path / "u.parquet")
    assert (info.columns, info.n_rows) == (["a", "b"], 2)

    no_bom = tmp_path / "nobom.txt"
    no_bom.write_bytes(text.encode("utf-16-le"))
    assert to_parquet(no_bom, tmp_path / "n.parquet").columns == ["a", "b"]

    latin = tmp_path / "latin.csv"
    latin.write_bytes("ville,prix\nGen\xe8ve,3\n".encode("latin-1"))
    to_parquet(latin, tmp_path / "l.parquet")
    assert pd.read_parquet(tmp_path / "l.parquet")["ville"].iloc[0] == "Genève"

    windows = tmp_path / "cp1252.csv"
    windows.write_bytes("item,price\nbook,\x8010\n".encode("latin-1"))
    to_parquet(windows, tmp_path / "w.parquet")
    assert pd.read_parquet(tmp_path / "w.parquet")["price"].iloc[0] == "€10"


def test_encoding_option_overrides_detection(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_bytes("name\nJos\xe9\n".encode("latin-1"))
    to_parquet(src, tmp_path / "t.parquet", options={"encoding": "latin-1"})
    assert pd.read_parquet(tmp_path / "t.parquet")["name"].iloc[0] == "José"
    with pytest.raises(UnreadableTableError, match="not valid utf-8"):
        to_parquet(src, tmp_path / "u.parquet", options={"encoding": "utf-8"})


def test_single_column_csv(tmp_path: Path) -> None:
    src = tmp_path / "one.csv"
    src.write_text("value\n1\n2\n3\n")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.columns, info.n_rows) == (["value"], 3)


def test_headerless_numeric_file_gets_generated_names(tmp_path: Path) -> None:
    src = tmp_path / "iris.data"
    src.write_text("5.1,3.5,Iris-setosa\n4.9,3.0,Iris-setosa\n6.2,2.9,Iris-virginica\n")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.columns == ["column_1", "column_2", "column_3"] and info.n_rows == 3
    forced = to_parquet(src, tmp_path / "f.parquet", options={"header": "true"})
    assert forced.columns == ["5.1", "3.5", "Iris-setosa"] and forced.n_rows == 2


def test_text_only_file_keeps_its_header_unless_told(tmp_path: Path) -> None:
    src = tmp_path / "names.csv"
    src.write_text("name,city\nann,oslo\nbob,rome\n")
    assert to_parquet(src, tmp_path / "t.parquet").columns == ["name", "city"]
    info = to_parquet(src, tmp_path / "n.parquet", options={"header": "false"})
    assert (info.columns, info.n_rows) == (["column_1", "column_2"], 3)


def test_dialect_options_override_sniffing(tmp_path: Path) -> None:
    src = tmp_path / "odd.txt"
    src.write_text("a|b\n'x|y'|2,5\n'z'|3,5\n")
    info = to_parquet(src, tmp_path / "t.parquet",
                      options={"delimiter": "pipe", "quotechar": "'", "decimal": "comma"})
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert info.columns == ["a", "b"]
    assert back["a"].tolist() == ["x|y", "z"] and back["b"].tolist() == [2.5, 3.5]
    with pytest.raises(UnreadableTableError, match="with 3; the delimiter '|'"):
        # without quoting, 'x|y' splits into two fields
        to_parquet(src, tmp_path / "u.parquet",
                   options={"delimiter": "|", "quotechar": "none", "format": "csv"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": "ab"}, "one character"),
        ({"quotechar": "''"}, "one character"),
        ({"encoding": "klingon-8"}, "not an encoding"),
        ({"decimal": ";"}, "must be '.' or ','"),
        ({"header": "maybe"}, "true, false or auto"),
        ({"format": "docx"}, "not a format acquire reads"),
    ],
)
def test_bad_option_values_are_refused(tmp_path: Path, options: dict[str, str],
                                       message: str) -> None:
    src = tmp_path / "t.csv"
    src.write_text("a\n1\n")
    with pytest.raises(SourceOptionError, match=message):
        to_parquet(src, tmp_path / "t.parquet", options=options)


def test_source_level_options_are_ignored(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("a\n1\n")
    info = to_parquet(src, tmp_path / "t.parquet", options={"hf_split": "train", "x": "y"})
    assert info.n_rows == 1


def test_quoted_newlines_and_escaped_quotes(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text('id,text\n1,"line one\nline two"\n2,"say ""hi"""\n3,plain\n')
    info = to_parquet(src, tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert info.n_rows == 3
    assert back["text"].tolist() == ["line one\nline two", 'say "hi"', "plain"]


def test_gzip_csv(tmp_path: Path) -> None:
    src = tmp_path / "t.csv.gz"
    src.write_bytes(gzip.compress(_frame().to_csv(index=False).encode()))
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.format, info.n_rows) == ("csv.gz", 100)
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(src.read_bytes()[:40])
    with pytest.raises(UnreadableTableError, match="gzip-compressed but cannot be decompressed"):
        to_parquet(truncated, tmp_path / "cut.parquet")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"  \n\n  \n", "no data"),
        (b"a,b,c\n", "no data rows"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
        (b'a,b\n1,2\n3,4,5,6\n"unterminated', "different number of fields"),
    ],
)
def test_unreadable_csv_inputs(tmp_path: Path, content: bytes, reason: str) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(UnreadableTableError, match=reason):
        to_parquet(src, tmp_path / "out" / "t.parquet")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_binary_junk_named_csv(tmp_path: Path) -> None:
    src = tmp_path / "junk.csv"
    src.write_bytes(np.random.default_rng(7).bytes(4096))
    with pytest.raises(UnreadableTableError, match="binary"):
        to_parquet(src, tmp_path / "t.parquet")


def test_corrupt_parquet_and_pdf(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    _frame().to_parquet(good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(UnreadableTableError, match="Parquet.*corrupt"):
        to_parquet(bad, tmp_path / "out" / "t.parquet")
    assert list((tmp_path / "out").iterdir()) == []

    pdf = tmp_path / "report.csv"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    with pytest.raises(UnreadableTableError, match="PDF"):
        to_parquet(pdf, tmp_path / "t.parquet")


def test_duplicate_and_blank_header_names_are_renamed(tmp_path: Path) -> None:
    src = tmp_path / "dupe.csv"
    src.write_text("a,b, a,,a\n1,2,3,4,5\n")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.columns == ["a", "b", "a.1", "column_4", "a.2"]
    assert pd.read_parquet(tmp_path / "t.parquet").iloc[0].tolist() == [1, 2, 3, 4, 5]
    assert any("renamed" in w and "'a.1'" in w for w in info.warnings)


def test_mixed_delimiters_fail_with_a_delimiter_hint(tmp_path: Path) -> None:
    src = tmp_path / "mixed.csv"
    src.write_text("a,b,c\n1,2,3\n4;5;6\n7,8,9\n10;11;12\n")
    with pytest.raises(UnreadableTableError, match=r"2 row\(s\).*'4;5;6'.*delimiter"):
        to_parquet(src, tmp_path / "t.parquet")


def test_a_few_malformed_rows_in_a_big_file_are_skipped_with_a_warning(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    lines = ["a,b"] + [f"{i},x" for i in range(20_000)]
    lines[500] = "oops,too,many"
    src.write_text("\n".join(lines) + "\n")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.n_rows == 19_999
    assert info.warnings == ["skipped 1 of 20000 rows whose field count differs from the "
                             "header's 2"]


def test_ten_thousand_columns(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(10_000))
    rows = [",".join(str((r * i) % 7) for i in range(10_000)) for r in range(5)]
    src.write_text("\n".join([header, *rows]) + "\n")
    info = to_parquet(src, tmp_path / "t.parquet")
    assert (info.n_rows, info.n_columns) == (5, 10_000)
    assert pq.read_table(tmp_path / "t.parquet", columns=["c9999"])["c9999"].to_pylist() == [
        (r * 9999) % 7 for r in range(5)]


@pytest.fixture
def small_type_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Infer types from the first 1 KiB only, so drift further down is exercised."""
    monkeypatch.setattr(_delimited, "TYPE_SAMPLE_BYTES", 1024)


@pytest.mark.usefixtures("small_type_sample")
def test_schema_drift_widens_columns_and_warns(tmp_path: Path) -> None:
    src = tmp_path / "drift.csv"
    lines = (["id,empty_then_text,int_then_float,int_then_text"]
             + [f"{i},,{i},{i}" for i in range(30_000)]
             + [f"{i},hello,{i}.5,{i}" for i in range(30_000, 30_010)]
             + ["30010,,1,n/a-ish"])
    src.write_text("\n".join(lines) + "\n")
    info = to_parquet(src, tmp_path / "t.parquet", chunk_bytes=64 * 1024)
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert [str(t) for t in schema.types] == ["int64", "string", "double", "string"]
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert len(back) == info.n_rows == 30_011
    assert back["empty_then_text"].iloc[30_000] == "hello"
    assert back["empty_then_text"].iloc[:30_000].isna().all()
    assert back["int_then_float"].iloc[30_001] == 30_001.5
    assert back["int_then_text"].iloc[-1] == "n/a-ish" and back["int_then_text"].iloc[5] == "5"
    joined = " | ".join(info.warnings)
    assert "'empty_then_text' held nothing in the first rows but 'hello'" in joined
    assert "stored as decimal numbers" in joined and "'int_then_text'" in joined


@pytest.mark.usefixtures("small_type_sample")
def test_non_utf8_bytes_late_in_the_file_switch_the_encoding(tmp_path: Path) -> None:
    src = tmp_path / "late.csv"
    lines = ["city,n"] + [f"plain{i},{i}" for i in range(120_000)] + ["Gen\xe8ve,1"]
    src.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    info = to_parquet(src, tmp_path / "t.parquet", chunk_bytes=64 * 1024)
    assert pd.read_parquet(tmp_path / "t.parquet")["city"].iloc[-1] == "Genève"
    assert any("read it as cp1252" in w for w in info.warnings)


def test_conversion_of_parquet_input_streams_batches(tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    table = pa.table({"a": pa.array(range(200_000)),
                      "k": pa.array(["x", "y"] * 100_000).dictionary_encode()})
    pq.write_table(table, src, row_group_size=50_000)
    info = to_parquet(src, tmp_path / "t.parquet")
    assert info.n_rows == 200_000
    result = pq.read_table(tmp_path / "t.parquet")
    assert result.schema.field("k").type == pa.string()  # dictionary decoded
    assert result.column("a").to_pylist()[-1] == 199_999


@pytest.mark.usefixtures("small_type_sample")
def test_a_first_row_without_end_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    src = tmp_path / "one-line.csv"
    src.write_text("a," * 5000)
    with pytest.raises(UnreadableTableError, match="first row does not end within"):
        to_parquet(src, tmp_path / "t.parquet")
