"""openml://<id> against a local server that answers like the OpenML REST API:
/api/v1/json/data/{id} -> data_set_description with url, parquet_url, md5_checksum and
default_target_attribute; HTTP 412 with error code 111 for an unknown id."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, FakeHost, fake_host

from mlmesh_acquire.fetch import SOURCE_RECORD, acquire, fetch_source
from mlmesh_acquire.source_errors import (
    ChecksumMismatchError,
    SourceNotFoundError,
    UnsupportedSourceError,
)

API_KEY = "openml-api-key-fedcba9876543210"
ARFF = b"""% Iris
@RELATION iris
@ATTRIBUTE sepallength REAL
@ATTRIBUTE class {Iris-setosa,Iris-versicolor}
@DATA
5.1,Iris-setosa
7.0,Iris-versicolor
"""
FRAME = pd.DataFrame({"sepallength": [5.1, 7.0], "class": ["Iris-setosa", "Iris-versicolor"]})


def _parquet() -> bytes:
    buffer = io.BytesIO()
    FRAME.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _description(host: FakeHost, dataset_id: int, *, parquet: bool = True,
                 md5: str | None = None) -> dict:
    return {"data_set_description": {
        "id": str(dataset_id), "name": "iris", "version": "1", "format": "ARFF",
        "upload_date": "2014-04-06T23:23:39", "licence": "Public", "file_id": str(dataset_id),
        "url": f"{host.base_url}/data/v1/download/{dataset_id}/iris.arff",
        "parquet_url": (f"{host.base_url}/datasets/0000/{dataset_id:04d}/dataset_{dataset_id}.pq"
                        if parquet else None),
        "default_target_attribute": "class", "row_id_attribute": "id",
        "ignore_attribute": ["sepalcolor"], "status": "active",
        "md5_checksum": md5 or hashlib.md5(ARFF).hexdigest(),
    }}


@pytest.fixture
def openml():
    with fake_host() as host:
        host.json("/api/v1/json/data/61", _description(host, 61))
        host.file("/datasets/0000/0061/dataset_61.pq", _parquet())
        host.file("/data/v1/download/61/iris.arff", ARFF, content_type="text/plain")
        host.json("/api/v1/json/data/62", _description(host, 62))  # its .pq is missing: 404
        host.file("/data/v1/download/62/iris.arff", ARFF)
        host.json("/api/v1/json/data/63", _description(host, 63, parquet=False, md5="0" * 32))
        host.file("/data/v1/download/63/iris.arff", ARFF)
        host.json("/api/v1/json/data/999999",
                  {"error": {"code": "111", "message": "Unknown dataset"}}, status=412)
        yield host


def _env(host: FakeHost, **extra: str) -> dict[str, str]:
    return {"MLMESH_OPENML_URL": host.base_url, **extra}


def fetch(uri: str, dest: Path, env: dict[str, str], **kw):
    return fetch_source(uri, dest, env=env, policy=LOCAL_POLICY, limits=FAST_LIMITS, **kw)


def test_parquet_is_preferred_and_the_default_target_suggested(openml, tmp_path: Path) -> None:
    fetched = fetch("openml://61", tmp_path, _env(openml))
    assert fetched.format == "parquet" and fetched.path.name == "iris.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(fetched.path), FRAME)
    assert fetched.suggested_target == "class"
    meta = fetched.metadata
    assert (meta["id"], meta["name"], meta["format"], meta["licence"]) == (61, "iris",
                                                                            "parquet", "Public")
    assert meta["row_id_attribute"] == "id" and meta["ignore_attribute"] == ["sepalcolor"]
    assert [s.path for s in openml.seen] == ["/api/v1/json/data/61",
                                             "/datasets/0000/0061/dataset_61.pq"]


def test_arff_on_request_with_its_md5_checked(openml, tmp_path: Path) -> None:
    fetched = fetch("openml://61", tmp_path, _env(openml), options={"openml_format": "arff"})
    assert fetched.path.read_bytes() == ARFF and fetched.path.suffix == ".arff"
    assert fetched.metadata["format"] == "arff"
    with pytest.raises(ChecksumMismatchError, match="OpenML lists 0{32}"):
        fetch("openml://63", tmp_path / "bad", _env(openml))
    assert not any((tmp_path / "bad").iterdir())
    with pytest.raises(UnsupportedSourceError, match="openml_format"):
        fetch("openml://61", tmp_path, _env(openml), options={"openml_format": "csv"})


def test_missing_parquet_falls_back_to_arff(openml, tmp_path: Path) -> None:
    fetched = fetch("openml://62", tmp_path, _env(openml))
    assert fetched.path.read_bytes() == ARFF and fetched.metadata["format"] == "arff"


def test_unknown_id_and_bad_uri(openml, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError,
                       match=r"OpenML has no dataset 999999 \(Unknown dataset \(code 111\)\)"):
        fetch("openml://999999", tmp_path, _env(openml))
    with pytest.raises(UnsupportedSourceError, match="numeric dataset id"):
        fetch("openml://iris", tmp_path, _env(openml))


def test_api_key_is_sent_but_never_shown(openml, tmp_path: Path) -> None:
    fetched = fetch("openml://61", tmp_path / "a", _env(openml, OPENML_API_KEY=API_KEY))
    assert openml.seen[0].query["api_key"] == [API_KEY]
    assert API_KEY not in json.dumps(fetched.metadata)
    with pytest.raises(SourceNotFoundError) as info:
        fetch("openml://999999", tmp_path / "b", _env(openml, OPENML_API_KEY=API_KEY))
    assert API_KEY not in str(info.value)


def test_acquire_writes_the_target_into_source_json(openml, tmp_path: Path) -> None:
    table = acquire("openml://61", tmp_path / "work", env=_env(openml), policy=LOCAL_POLICY,
                    limits=FAST_LIMITS)
    assert table.suggested_target == "class" and table.n_rows == 2
    record = json.loads((tmp_path / "work" / SOURCE_RECORD).read_text())
    assert record["suggested_target"] == "class"
    assert record["source"]["default_target_attribute"] == "class"
    assert record["uri"] == "openml://61"
