"""The artifact store on a local folder and on S3 (moto in server mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from mlmesh_common.artifacts import ArtifactStore, ChecksumError, experiment_prefix, open_store
from mlmesh_common.broker import free_port, wait_for_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, 30)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    if request.param == "local":
        return open_store(str(tmp_path / "artifacts"))
    endpoint = request.getfixturevalue("s3_endpoint")
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    bucket = f"b{tmp_path.name[-12:].lower().replace('_', '')}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return open_store(f"s3://{bucket}/root", endpoint_url=endpoint)


def test_file_round_trip_with_checksum(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(b"hello" * 1000)
    stored = store.put_file(src, f"{experiment_prefix('p', 'e', 'acquire')}/data.bin")
    assert "projects/p/experiments/e/acquire/data.bin" in stored.uri
    assert stored.size_bytes == 5000 and store.exists(stored.uri)
    out = store.get_file(stored.uri, tmp_path / "out" / "copy.bin", stored.sha256)
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(ChecksumError, match="sha256"):
        store.get_file(stored.uri, tmp_path / "x.bin", "0" * 64)


def test_folder_round_trip_with_manifest(store: ArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "prep"
    (folder / "sub").mkdir(parents=True)
    (folder / "train.parquet").write_bytes(b"t" * 10)
    (folder / "sub" / "x.json").write_text("{}")
    stored = store.put_dir(folder, "projects/p/experiments/e/prep", "prep/0.1")
    back = store.get_dir(stored.uri, tmp_path / "back", stored.sha256)
    manifest = json.loads((back / "manifest.json").read_text())
    assert manifest["producer"] == "prep/0.1"
    assert sorted(f["file"] for f in manifest["files"]) == ["sub/x.json", "train.parquet"]
    assert (back / "sub" / "x.json").read_text() == "{}"
    files = store.folder_files(stored.uri, tmp_path / "listed", stored.sha256)
    assert files == {f["file"]: f["sha256"] for f in manifest["files"]}
    one = store.get_file(f"{stored.uri}/train.parquet", tmp_path / "one", files["train.parquet"])
    assert one.read_bytes() == b"t" * 10
    with pytest.raises(ChecksumError):
        store.folder_files(stored.uri, tmp_path / "bad", "0" * 64)


def test_folders_are_write_once(store: ArtifactStore, tmp_path: Path) -> None:
    """A redo that writes other bytes must not break readers of the first output; a redo with
    the same bytes reuses the first folder and its manifest's sha256."""
    folder = tmp_path / "select"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"first")
    first = store.put_dir(folder, "projects/p/experiments/e/select", "select/0.1")
    (folder / "model.joblib").write_bytes(b"second, different bytes")
    second = store.put_dir(folder, "projects/p/experiments/e/select", "select/0.1")
    assert first.uri != second.uri and first.sha256 != second.sha256
    back = store.get_dir(first.uri, tmp_path / "first", first.sha256)
    assert (back / "model.joblib").read_bytes() == b"first"
    (folder / "model.joblib").write_bytes(b"first")
    again = store.put_dir(folder, "projects/p/experiments/e/select", "select/0.1")
    assert (again.uri, again.sha256) == (first.uri, first.sha256)


def test_versioned_files_are_write_once(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "oof.parquet"
    src.write_bytes(b"attempt 1")
    first = store.put_file(src, "projects/p/experiments/e/train/oof.parquet", versioned=True)
    src.write_bytes(b"attempt 2")
    second = store.put_file(src, "projects/p/experiments/e/train/oof.parquet", versioned=True)
    assert first.uri != second.uri and first.uri.endswith("/oof.parquet")
    assert store.get_file(first.uri, tmp_path / "a", first.sha256).read_bytes() == b"attempt 1"


def test_missing_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    uri = store.uri_for("nothing/here")
    assert not store.exists(uri)
    with pytest.raises(FileNotFoundError):
        store.get_file(uri, tmp_path / "x")


def test_local_store_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "root"))
    with pytest.raises(ValueError, match="outside"):
        store.get_file((tmp_path / "elsewhere").as_uri(), tmp_path / "x")
