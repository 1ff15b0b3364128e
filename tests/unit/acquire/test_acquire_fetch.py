"""fetch_source / acquire against local files and a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mlmesh_acquire import (
    ChecksumMismatchError,
    SourceNotFoundError,
    SourceTooLargeError,
    TransientSourceError,
    UnreadableTableError,
    UnsupportedSourceError,
    acquire,
    fetch_source,
    sha256_file,
)


def _frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000, 12_000, n).round(2),
            "city": rng.choice(["Oslo", "Lyon", "Porto"], n),
            "label": rng.choice(["yes", "no"], n),
        }
    )


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/data/table.csv")
            self.end_headers()
            return
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
            return
        if self.path == "/broken":
            self.send_error(503, "Service Unavailable")
            return
        if self.path == "/forbidden":
            self.send_error(403, "Forbidden")
            return
        if self.path == "/attachment":
            body = (self.server.root / "data" / "table.csv").read_bytes()  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Disposition", 'attachment; filename="../evil name.csv"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    (root / "data").mkdir(parents=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.root = root  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_file_uri_csv_is_copied_hashed_and_converted(tmp_path: Path) -> None:
    src = tmp_path / "in" / "table.csv"
    src.parent.mkdir()
    _frame().to_csv(src, index=False)
    calls: list[tuple[int, int | None]] = []

    table = acquire(src.as_uri(), tmp_path / "work", progress=lambda d, t: calls.append((d, t)))

    assert table.source_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert table.source_bytes == src.stat().st_size
    assert table.source_path.read_bytes() == src.read_bytes()
    assert table.format == "csv"
    assert (table.n_rows, table.n_columns) == (500, 4)
    assert table.columns == ["age", "income", "city", "label"]
    assert table.parquet_sha256 == sha256_file(table.parquet_path)
    back = pd.read_parquet(table.parquet_path)
    pd.testing.assert_frame_equal(back, _frame(), check_dtype=False)
    assert calls and calls[-1] == (src.stat().st_size, src.stat().st_size)


def test_plain_absolute_path_parquet(tmp_path: Path) -> None:
    src = tmp_path / "table.parquet"
    _frame(120).to_parquet(src, index=False)

    fetched = fetch_source(str(src), tmp_path / "dest")
    assert fetched.format == "parquet"
    assert fetched.media_type == "application/vnd.apache.parquet"
    assert fetched.path.parent == tmp_path / "dest"

    table = acquire(str(src), tmp_path / "work")
    assert (table.format, table.n_rows, table.n_columns) == ("parquet", 120, 4)
    pd.testing.assert_frame_equal(pd.read_parquet(table.parquet_path), _frame(120))


def test_missing_file_and_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no file at"):
        fetch_source(str(tmp_path / "nope.csv"), tmp_path / "dest")
    with pytest.raises(UnsupportedSourceError, match=r"ftp.*file://, http://, https://"):
        fetch_source("ftp://example.org/data.csv", tmp_path / "dest")
    with pytest.raises(UnsupportedSourceError, match="relative path"):
        fetch_source("data/table.csv", tmp_path / "dest")
    assert issubclass(UnsupportedSourceError, ValueError)


def test_checksum_mismatch_names_both_digests_and_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "table.csv"
    _frame(50).to_csv(src, index=False)
    actual = hashlib.sha256(src.read_bytes()).hexdigest()
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_source(str(src), tmp_path / "dest", expected_sha256=wrong)
    assert wrong in str(info.value) and actual in str(info.value)
    assert (info.value.expected, info.value.actual) == (wrong, actual)
    assert list((tmp_path / "dest").iterdir()) == []
    # the right digest (any case, optional "sha256:" prefix) passes
    ok = fetch_source(str(src), tmp_path / "dest", expected_sha256="sha256:" + actual.upper())
    assert ok.sha256 == actual
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        fetch_source(str(src), tmp_path / "dest", expected_sha256="abc")


def test_max_bytes_is_enforced(tmp_path: Path) -> None:
    src = tmp_path / "table.csv"
    _frame(50).to_csv(src, index=False)
    with pytest.raises(SourceTooLargeError, match="limit"):
        fetch_source(str(src), tmp_path / "dest", max_bytes=100)


def test_http_download_streams_with_progress(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    src = root / "data" / "table.csv"
    _frame(3000).to_csv(src, index=False)
    calls: list[tuple[int, int | None]] = []

    fetched = fetch_source(
        f"{base}/data/table.csv", tmp_path / "dest", progress=lambda d, t: calls.append((d, t))
    )

    size = src.stat().st_size
    assert fetched.path == tmp_path / "dest" / "table.csv"
    assert fetched.path.read_bytes() == src.read_bytes()
    assert fetched.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert fetched.size_bytes == size
    assert fetched.format == "csv"
    assert fetched.declared_media_type == "text/csv"
    assert calls[-1] == (size, size)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_http_acquire_follows_redirects(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    _frame(200).to_csv(root / "data" / "table.csv", index=False)
    table = acquire(f"{base}/moved", tmp_path / "work")
    assert table.source_path.name == "table.csv"  # the name comes from the final URL
    assert (table.n_rows, table.n_columns) == (200, 4)


def test_http_content_disposition_name_is_sanitised(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = server
    _frame(20).to_csv(root / "data" / "table.csv", index=False)
    fetched = fetch_source(f"{base}/attachment", tmp_path / "dest")
    assert fetched.path == tmp_path / "dest" / "evil_name.csv"


def test_http_errors_are_classified(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(SourceNotFoundError, match="HTTP 404") as info:
        fetch_source(f"{base}/data/missing.csv", tmp_path / "dest")
    assert info.value.status == 404
    assert isinstance(info.value, ValueError)
    with pytest.raises(SourceNotFoundError, match="HTTP 403") as info:
        fetch_source(f"{base}/forbidden", tmp_path / "dest")
    assert info.value.status == 403
    with pytest.raises(TransientSourceError, match="HTTP 503") as transient:
        fetch_source(f"{base}/broken", tmp_path / "dest")
    assert transient.value.status == 503
    assert not isinstance(transient.value, ValueError)  # retried, not dead-lettered
    assert not any((tmp_path / "dest").iterdir())


def test_redirect_loop_and_bad_url(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(SourceNotFoundError, match="redirects too many times"):
        fetch_source(f"{base}/loop", tmp_path / "dest")
    with pytest.raises(UnsupportedSourceError, match="check the URL"):
        fetch_source("http://", tmp_path / "dest")


def test_file_uri_with_escaped_characters(tmp_path: Path) -> None:
    src = tmp_path / "my data" / "t 1.csv"
    src.parent.mkdir()
    src.write_text("a,b\n1,2\n")
    fetched = fetch_source(src.as_uri(), tmp_path / "dest")
    assert "%20" in src.as_uri()
    assert fetched.path.read_text() == "a,b\n1,2\n"
    assert fetched.path.name == "t_1.csv"


def test_http_connection_refused_propagates_as_transport_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # grab a free port, then close it so nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.TransportError):
        fetch_source(f"http://127.0.0.1:{port}/x.csv", tmp_path / "dest", timeout_s=2)


def test_http_gzip_csv_is_decompressed_on_conversion(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = server
    raw = _frame(300).to_csv(index=False).encode()
    (root / "data" / "table.csv.gz").write_bytes(gzip.compress(raw))
    table = acquire(f"{base}/data/table.csv.gz", tmp_path / "work")
    assert table.format == "csv.gz"
    pd.testing.assert_frame_equal(
        pd.read_parquet(table.parquet_path), _frame(300), check_dtype=False
    )


def test_http_empty_file_is_unreadable(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    (root / "data" / "empty.csv").write_bytes(b"")
    with pytest.raises(UnreadableTableError, match="empty"):
        acquire(f"{base}/data/empty.csv", tmp_path / "work")
