"""fetch_source / acquire: local files and folders, checksums, caps, source.json, and one
HTTP acquire end to end through the guarded client (a local server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, fake_host

from mlmesh_acquire.fetch import (
    SOURCE_RECORD,
    SUPPORTED_SCHEMES,
    acquire,
    fetch_source,
    sha256_file,
)
from mlmesh_acquire.safety import FetchLimits
from mlmesh_acquire.source_errors import (
    ChecksumMismatchError,
    SourceNotFoundError,
    SourceTooLargeError,
    UnsupportedSourceError,
)
from mlmesh_acquire.sources import FOLDER_FORMAT


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


def test_file_uri_csv_is_copied_hashed_recorded_and_converted(tmp_path: Path) -> None:
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
    record = json.loads((tmp_path / "work" / SOURCE_RECORD).read_text())
    assert record["uri"] == src.as_uri() and record["scheme"] == "file"
    assert record["sha256"] == table.source_sha256 and record["path"] == "source/table.csv"
    assert record["source"] == {"source": "file", "path": str(src)}
    assert record["suggested_target"] is None


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


def test_folder_is_copied_without_symlinks_and_hashed_stably(tmp_path: Path) -> None:
    src = tmp_path / "table"
    for part, frame in (("year=2023", _frame(10, 1)), ("year=2024", _frame(12, 2))):
        (src / part).mkdir(parents=True)
        frame.to_parquet(src / part / "part-0.parquet", index=False)
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the dataset")
    (src / "link.txt").symlink_to(outside)
    (src / ".hidden").write_text("skipped")

    first = fetch_source(src.as_uri(), tmp_path / "a")
    second = fetch_source(str(src), tmp_path / "b")
    assert first.format == FOLDER_FORMAT and first.path.is_dir()
    copied = sorted(p.relative_to(first.path).as_posix() for p in first.path.rglob("*")
                    if p.is_file())
    assert copied == ["year=2023/part-0.parquet", "year=2024/part-0.parquet"]
    assert first.sha256 == second.sha256 and first.metadata["n_files"] == 2
    (src / "year=2024" / "part-0.parquet").write_bytes(b"changed")
    assert fetch_source(str(src), tmp_path / "c").sha256 != first.sha256


def test_missing_file_and_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no file at"):
        fetch_source(str(tmp_path / "nope.csv"), tmp_path / "dest")
    with pytest.raises(UnsupportedSourceError) as info:
        fetch_source("ftp://user:hunter2@example.org/data.csv", tmp_path / "dest")
    message = str(info.value)
    assert "'ftp' is not supported" in message and "hunter2" not in message
    for scheme in ("file", "http", "https", "s3", "kaggle", "hf", "openml", "uci"):
        assert f"{scheme}://" in message
    assert set(SUPPORTED_SCHEMES) == {"file", "http", "https", "s3", "kaggle", "hf", "openml",
                                      "uci"}
    with pytest.raises(UnsupportedSourceError, match="relative path"):
        fetch_source("data/table.csv", tmp_path / "dest")
    with pytest.raises(UnsupportedSourceError, match="only local files"):
        fetch_source("file://otherhost/data.csv", tmp_path / "dest")
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


def test_size_cap_applies_to_files_and_folders(tmp_path: Path) -> None:
    src = tmp_path / "t" / "table.csv"
    src.parent.mkdir()
    _frame(50).to_csv(src, index=False)
    small = FetchLimits(max_bytes=100)
    with pytest.raises(SourceTooLargeError, match="over the 100-byte limit"):
        fetch_source(str(src), tmp_path / "dest", limits=small)
    with pytest.raises(SourceTooLargeError, match="folder"):
        fetch_source(str(src.parent), tmp_path / "dest", limits=small)
    assert not any((tmp_path / "dest").iterdir())


def test_http_acquire_through_the_guard_with_checksum(tmp_path: Path) -> None:
    body = _frame(300).to_csv(index=False).encode()
    with fake_host() as host:
        host.file("/files/table.csv", body, content_type="text/csv")
        url = host.redirect("/dl", "/files/table.csv")
        table = acquire(url + "?token=s3cr3t-token", tmp_path / "work",
                        expected_sha256=hashlib.sha256(body).hexdigest(),
                        policy=LOCAL_POLICY, limits=FAST_LIMITS)
    assert table.source_path.name == "table.csv"
    assert (table.n_rows, table.n_columns) == (300, 4)
    record_text = (tmp_path / "work" / SOURCE_RECORD).read_text()
    assert "s3cr3t-token" not in record_text and "token=REDACTED" in record_text
    assert json.loads(record_text)["declared_media_type"] == "text/csv"


def test_a_tripped_circuit_breaker_still_names_the_problem(tmp_path: Path) -> None:
    from mlmesh_acquire.service import acquire_guarded
    from mlmesh_acquire.source_errors import TransientSourceError
    from mlmesh_common import breakers

    body = b"a,b\n" * 1000
    breakers.configure(fail_max=1, reset_timeout_s=60)
    try:
        with fake_host() as host:
            url = host.file("/cut.csv", body, honour_range=False, break_after=10, breaks=99)
            dependency = f"test-{host.base_url}"
            with pytest.raises(TransientSourceError) as tripped:
                acquire_guarded(dependency, url, tmp_path / "w1", policy=LOCAL_POLICY,
                                limits=FAST_LIMITS)
            with pytest.raises(TransientSourceError) as still_open:
                acquire_guarded(dependency, url, tmp_path / "w2", policy=LOCAL_POLICY,
                                limits=FAST_LIMITS)
            requests = len(host.requests_to("/cut.csv"))
    finally:
        breakers.configure(fail_max=5, reset_timeout_s=30)
    for info in (tripped, still_open):
        assert "after 10 of 4000 bytes" in str(info.value), str(info.value)
        assert "circuit breaker open" in str(info.value)
    assert requests == FAST_LIMITS.attempts  # the open breaker sent nothing more
