"""s3:// against moto in server mode (a local S3 endpoint, as MinIO would be)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from source_fakes import FAST_LIMITS

from mlmesh_acquire.fetch import acquire, fetch_source
from mlmesh_acquire.safety import FetchLimits
from mlmesh_acquire.source_errors import (
    MissingCredentialsError,
    SourceNotFoundError,
    SourceTooLargeError,
)
from mlmesh_acquire.sources import FOLDER_FORMAT

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

CSV = b"a,b\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(2000))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket="datasets")
    s3.put_object(Bucket="datasets", Key="tables/numbers.csv", Body=CSV)
    s3.put_object(Bucket="datasets", Key="part/year=2023/part-0.csv", Body=b"a,b\n1,2\n")
    s3.put_object(Bucket="datasets", Key="part/year=2024/part-0.csv", Body=b"a,b\n3,4\n")
    s3.put_object(Bucket="datasets", Key="part/.hidden", Body=b"skip me")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def env(endpoint: str) -> dict[str, str]:
    return {"MLMESH_S3_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def test_object_is_streamed_to_disk(env: dict[str, str], tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    fetched = fetch_source("s3://datasets/tables/numbers.csv", tmp_path, env=env,
                           limits=FAST_LIMITS, progress=lambda d, t: calls.append((d, t)),
                           expected_sha256=hashlib.sha256(CSV).hexdigest())
    assert fetched.path == tmp_path / "numbers.csv" and fetched.path.read_bytes() == CSV
    assert fetched.format == "csv" and calls[-1] == (len(CSV), len(CSV))
    assert fetched.metadata == {"source": "s3", "bucket": "datasets",
                                "key": "tables/numbers.csv", "endpoint": env[
                                    "MLMESH_S3_ENDPOINT_URL"]}


def test_acquire_converts_an_object(env: dict[str, str], tmp_path: Path) -> None:
    table = acquire("s3://datasets/tables/numbers.csv", tmp_path / "work", env=env,
                    limits=FAST_LIMITS)
    assert (table.n_rows, table.columns) == (2000, ["a", "b"])


def test_prefix_is_fetched_as_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    fetched = fetch_source("s3://datasets/part/", tmp_path, env=env, limits=FAST_LIMITS)
    assert fetched.format == FOLDER_FORMAT and fetched.metadata["n_files"] == 2
    files = sorted(p.relative_to(fetched.path).as_posix() for p in fetched.path.rglob("*")
                   if p.is_file())
    assert files == ["year=2023/part-0.csv", "year=2024/part-0.csv"]


def test_missing_object_bucket_and_prefix(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"s3://datasets/nope.csv does not exist"):
        fetch_source("s3://datasets/nope.csv", tmp_path, env=env, limits=FAST_LIMITS)
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        fetch_source("s3://no-such-bucket/x.csv", tmp_path, env=env, limits=FAST_LIMITS)
    with pytest.raises(SourceNotFoundError, match="no objects under"):
        fetch_source("s3://datasets/empty/", tmp_path, env=env, limits=FAST_LIMITS)
    assert not any(tmp_path.iterdir())


def test_size_cap(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(SourceTooLargeError, match="over the 1000-byte limit"):
        fetch_source("s3://datasets/tables/numbers.csv", tmp_path, env=env,
                     limits=FetchLimits(max_bytes=1000))
    assert not any(tmp_path.iterdir())


def test_missing_credentials(endpoint: str, tmp_path: Path, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                 "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(MissingCredentialsError, match="AWS_ACCESS_KEY_ID"):
        fetch_source("s3://datasets/tables/numbers.csv", tmp_path / "out",
                     env={"MLMESH_S3_ENDPOINT_URL": endpoint}, limits=FAST_LIMITS)


class _BreakingBody:
    def __init__(self, data: bytes, break_after: int | None) -> None:
        self.data, self.break_after = data, break_after

    def iter_chunks(self, size: int):
        from botocore.exceptions import ResponseStreamingError

        yield self.data[: self.break_after or len(self.data)]
        if self.break_after is not None:
            raise ResponseStreamingError(error="Connection broken: IncompleteRead")

    def close(self) -> None:
        pass


class _FlakyS3:
    """Stands in for a boto3 client whose first transfer breaks half way."""

    def __init__(self, data: bytes) -> None:
        self.data, self.calls = data, []

    def get_object(self, **kwargs):
        self.calls.append(kwargs)
        start = int(kwargs["Range"][6:-1]) if "Range" in kwargs else 0
        rest = self.data[start:]
        return {"ContentLength": len(rest), "ETag": '"e1"', "ContentType": "text/csv",
                "Body": _BreakingBody(rest, len(rest) // 2 if len(self.calls) == 1 else None)}


def test_a_broken_transfer_resumes_with_range_pinned_to_the_etag(tmp_path: Path) -> None:
    from mlmesh_acquire.sources import FetchContext
    from mlmesh_acquire.sources._s3 import _download_object

    client = _FlakyS3(CSV)
    ctx = FetchContext(dest_dir=tmp_path, limits=FAST_LIMITS)
    fetched = _download_object(client, "b", "k.csv", tmp_path / "k.csv", ctx, "s3://b/k.csv")
    assert fetched.path.read_bytes() == CSV
    assert fetched.sha256 == hashlib.sha256(CSV).hexdigest()
    assert client.calls[1] == {"Bucket": "b", "Key": "k.csv", "Range": f"bytes={len(CSV) // 2}-",
                               "IfMatch": '"e1"'}
