"""Archives: the main-table rule, the member option, nesting, zip bombs and path traversal."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlmesh_acquire import UnreadableTableError, to_parquet
from mlmesh_acquire.archives import (
    ArchiveBombError,
    ArchiveLimits,
    ArchiveMemberError,
    ArchiveTraversalError,
    UnsafeArchiveError,
    resolve_table,
)


def _csv(rows: int, tag: str = "v") -> bytes:
    return ("k,tag\n" + "".join(f"{i},{tag}\n" for i in range(rows))).encode()


def _zip(path: Path, members: dict[str, bytes], *, deflate: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar_bytes(members: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None,
               ) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return buffer.getvalue()


def _convert(tmp_path: Path, src: Path, **options: str) -> tuple[object, pd.DataFrame]:
    out = tmp_path / "out" / "dataset.parquet"
    info = to_parquet(src, out, options=options or None)
    return info, pd.read_parquet(out)


def _out_is_clean(tmp_path: Path, *expected: str) -> None:
    """Nothing but the expected files is left next to the output (no unpacked members)."""
    out = tmp_path / "out"
    found = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert found == sorted(expected)


def test_largest_table_wins_and_hidden_files_are_ignored(tmp_path: Path) -> None:
    src = _zip(tmp_path / "bundle.zip", {
        "data/big.csv": _csv(300, "big"),
        "small.csv": _csv(10, "small"),
        "__MACOSX/data/._big.csv": _csv(5000),
        ".cache/huge.csv": _csv(5000),
        "~$lock.xlsx": b"x" * 90_000,
        "README.txt": b"read me " * 10_000,
    })
    info, back = _convert(tmp_path, src)
    assert info.member == "data/big.csv" and info.format == "csv.zip"
    assert set(back["tag"]) == {"big"} and info.n_rows == 300
    assert any("holds 2 tables; read 'data/big.csv', the largest (others: small.csv)" in w
               for w in info.warnings)
    _out_is_clean(tmp_path, "dataset.parquet")


def test_ties_go_to_the_alphabetically_first_path(tmp_path: Path) -> None:
    src = _zip(tmp_path / "tie.zip", {"b.csv": _csv(20, "b"), "a.csv": _csv(20, "a")})
    info, back = _convert(tmp_path, src)
    assert info.member == "a.csv" and set(back["tag"]) == {"a"}


def test_text_files_count_only_without_real_tables(tmp_path: Path) -> None:
    uci = _zip(tmp_path / "adult.zip", {
        "adult.data": b"39,State-gov,77516\n50,Self-emp,83311\n" * 50,
        "adult.names": b"| description\n" * 10, "Index": b"index\n",
    })
    info, back = _convert(tmp_path, uci)
    assert info.member == "adult.data" and info.columns == ["column_1", "column_2", "column_3"]
    with_csv = _zip(tmp_path / "both.zip", {"notes.txt": b"a,b\n1,2\n" * 500,
                                            "t.csv": _csv(3)})
    assert _convert(tmp_path, with_csv)[0].member == "t.csv"


def test_member_option_by_path_name_and_nested_archive(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"x.csv": _csv(5, "x"), "y.csv": _csv(7, "y")})
    src = _zip(tmp_path / "outer.zip", {
        "data/small.csv": _csv(3, "small"), "big.csv": _csv(100, "big"),
        "sub/inner.zip": inner.read_bytes(),
    })
    assert _convert(tmp_path, src, member="data/small.csv")[0].n_rows == 3
    assert _convert(tmp_path, src, member="small.csv")[0].member == "data/small.csv"
    info, back = _convert(tmp_path, src, member="sub/inner.zip/y.csv")
    assert (info.member, info.format, set(back["tag"])) == ("sub/inner.zip/y.csv",
                                                            "csv.zip.zip", {"y"})
    tables = "data/small.csv, big.csv, sub/inner.zip"
    with pytest.raises(ArchiveMemberError, match=f"no member 'test.csv'; its tables: {tables}"):
        _convert(tmp_path, src, member="test.csv")


def test_ambiguous_member_name_asks_for_the_path(tmp_path: Path) -> None:
    src = _zip(tmp_path / "two.zip", {"a/t.csv": _csv(2), "b/t.csv": _csv(3)})
    with pytest.raises(ArchiveMemberError, match="more than one file has that name"):
        _convert(tmp_path, src, member="t.csv")


def test_only_nested_archive_is_unpacked_one_level(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"x.csv": _csv(4)})
    outer = _zip(tmp_path / "outer.zip", {"inner.zip": inner.read_bytes()})
    info, _ = _convert(tmp_path, outer)
    assert (info.member, info.format, info.n_rows) == ("inner.zip/x.csv", "csv.zip.zip", 4)
    third = _zip(tmp_path / "third.zip", {"outer.zip": outer.read_bytes()})
    with pytest.raises(UnsafeArchiveError, match="archive inside an archive inside an archive"):
        _convert(tmp_path, third)
    _out_is_clean(tmp_path, "dataset.parquet")


@pytest.mark.parametrize(
    ("name", "compress", "fmt"),
    [
        ("t.tar", lambda b: b, "csv.tar"),
        ("t.tar.gz", gzip.compress, "csv.tar.gz"),
        ("t.tbz2", bz2.compress, "csv.tar.bz2"),
        ("t.tar.xz", lzma.compress, "csv.tar.xz"),
    ],
)
def test_tar_archives(tmp_path: Path, name: str, compress: Callable[[bytes], bytes],
                      fmt: str) -> None:
    src = tmp_path / name
    src.write_bytes(compress(_tar_bytes({"pkg/data.csv": _csv(12), "pkg/LICENSE": b"MIT"})))
    info, _ = _convert(tmp_path, src)
    assert (info.format, info.member, info.n_rows) == (fmt, "pkg/data.csv", 12)


def test_compressed_member_workbook_member_and_parquet_folder(tmp_path: Path) -> None:
    book = tmp_path / "b.xlsx"
    pd.DataFrame({"a": [1, 2]}).to_excel(book, index=False)
    folder = tmp_path / "ds"
    pq.write_to_dataset(pa.table({"v": list(range(30)), "p": ["x", "y", "z"] * 10}), folder,
                        partition_cols=["p"])
    members = {"t.csv.gz": gzip.compress(_csv(9)), "b.xlsx": book.read_bytes()}
    for part in folder.rglob("*.parquet"):
        members[f"export/ds/{part.relative_to(folder).as_posix()}"] = part.read_bytes()
    src = _zip(tmp_path / "mix.zip", members)
    info, back = _convert(tmp_path, src, member="t.csv.gz")
    assert (info.format, info.n_rows) == ("csv.gz.zip", 9)
    assert _convert(tmp_path, src, member="b.xlsx")[0].format == "xlsx.zip"
    info, back = _convert(tmp_path, src, member="export/ds")
    assert (info.format, info.n_rows) == ("parquet.zip", 30)
    assert sorted(back["p"].unique()) == ["x", "y", "z"]


def test_archive_without_a_table(tmp_path: Path) -> None:
    src = _zip(tmp_path / "pics.zip", {"a.png": b"\x89PNG" + bytes(10), "notes.md": b"# hi"})
    with pytest.raises(ArchiveMemberError,
                       match="holds no table file \\(it contains: a.png, notes.md"):
        _convert(tmp_path, src)


def test_zip_bomb_by_ratio_is_stopped_while_unpacking(tmp_path: Path) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"data.csv": b"0" * (40 * 1024**2)})
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ArchiveBombError, match="more than 200 times its compressed size.*zip bomb"):
        _convert(tmp_path, bomb)  # default limits: ratio 200 past the first 16 MiB
    _out_is_clean(tmp_path)


def test_gzip_bomb_and_total_size_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "data.csv.gz"
    bomb.write_bytes(gzip.compress(b"1," * (20 * 1024**2)))
    with pytest.raises(ArchiveBombError, match="data.csv.gz unpacks to more than 200 times"):
        _convert(tmp_path, bomb)
    plain = _zip(tmp_path / "plain.zip", {"t.csv": _csv(100_000)}, deflate=False)
    small = ArchiveLimits(max_total_bytes=500_000)
    with pytest.raises(ArchiveBombError, match="went past 500,000 bytes in total"):
        to_parquet(plain, tmp_path / "out" / "t.parquet", limits=small)
    few = ArchiveLimits(max_members=3)
    many = _zip(tmp_path / "many.zip", {f"{i}.csv": b"a\n1\n" for i in range(5)})
    with pytest.raises(ArchiveBombError, match="more than 3 members"):
        to_parquet(many, tmp_path / "out" / "t.parquet", limits=few)
    _out_is_clean(tmp_path)


def test_compressed_too_many_times(tmp_path: Path) -> None:
    data = _csv(3)
    for _ in range(4):
        data = gzip.compress(data)
    src = tmp_path / "t.csv.gz.gz.gz.gz"
    src.write_bytes(data)
    with pytest.raises(UnsafeArchiveError, match="compressed more than 3 times"):
        _convert(tmp_path, src)


@pytest.mark.parametrize("name", ["../evil.csv", "/etc/evil.csv", "C:\\evil.csv",
                                  "ok/../../evil.csv"])
def test_zip_path_traversal_is_refused(tmp_path: Path, name: str) -> None:
    src = tmp_path / "evil.zip"
    with zipfile.ZipFile(src, "w") as zf:
        zf.writestr("good.csv", _csv(5))
        zf.writestr(zipfile.ZipInfo(name), _csv(1))
    with pytest.raises(ArchiveTraversalError, match="outside the extraction folder"):
        _convert(tmp_path, src)
    assert not (tmp_path / "evil.csv").exists() and not (tmp_path.parent / "evil.csv").exists()
    _out_is_clean(tmp_path)


def test_zip_symlink_out_is_refused_and_inside_is_skipped(tmp_path: Path) -> None:
    def with_link(target: str) -> Path:
        src = tmp_path / "links.zip"
        with zipfile.ZipFile(src, "w") as zf:
            zf.writestr("data.csv", _csv(4))
            link = zipfile.ZipInfo("big.csv")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(link, target)
        return src

    with pytest.raises(ArchiveTraversalError,
                       match="symbolic link 'big.csv' -> '../../etc/passwd'"):
        _convert(tmp_path, with_link("../../etc/passwd"))
    info, _ = _convert(tmp_path, with_link("data.csv"))
    assert info.member == "data.csv"


@pytest.mark.parametrize(
    ("links", "reason"),
    [
        ({"x.csv": (tarfile.SYMTYPE, "/etc/passwd")}, "symbolic link 'x.csv' -> '/etc/passwd'"),
        ({"d/x.csv": (tarfile.SYMTYPE, "../../x")}, "symbolic link"),
        ({"x.csv": (tarfile.LNKTYPE, "../outside.csv")}, "hard link"),
    ],
)
def test_tar_links_out_are_refused(tmp_path: Path, links: dict, reason: str) -> None:
    src = tmp_path / "links.tar"
    src.write_bytes(_tar_bytes({"data.csv": _csv(3)}, links))
    with pytest.raises(ArchiveTraversalError, match=reason):
        _convert(tmp_path, src)


def test_tar_traversal_name_and_devices(tmp_path: Path) -> None:
    src = tmp_path / "t.tar"
    src.write_bytes(_tar_bytes({"../../x.csv": _csv(2)}))
    with pytest.raises(ArchiveTraversalError, match="'../../x.csv'"):
        _convert(tmp_path, src)
    ok = tmp_path / "ok.tar"
    ok.write_bytes(_tar_bytes({"a.csv": _csv(2)}, {"dev.csv": (tarfile.FIFOTYPE, ""),
                                                   "l.csv": (tarfile.SYMTYPE, "a.csv")}))
    assert _convert(tmp_path, ok)[0].member == "a.csv"


def test_damaged_archives(tmp_path: Path) -> None:
    good = _zip(tmp_path / "g.zip", {"t.csv": _csv(1000)})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UnreadableTableError, match="cannot be"):
        _convert(tmp_path, cut)


def test_resolve_table_reports_layers_and_leaves_the_source(tmp_path: Path) -> None:
    src = tmp_path / "t.tgz"
    src.write_bytes(gzip.compress(_tar_bytes({"d/t.csv": _csv(2)})))
    work = tmp_path / "work"
    work.mkdir()
    resolved = resolve_table(src, work, limits=ArchiveLimits())
    assert resolved.layers == ("gz", "tar") and resolved.member == "d/t.csv"
    assert resolved.path.read_bytes() == _csv(2) and src.exists()
    assert [p.name for p in work.iterdir()] == [resolved.path.parent.name]  # .tar removed
