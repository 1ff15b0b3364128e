"""kaggle:// against a local server that answers like the Kaggle API: basic auth on
/api/v1/datasets/download/{owner}/{dataset}, a redirect to signed storage, a ZIP archive."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, FakeHost, fake_host

from mlmesh_acquire.fetch import fetch_source
from mlmesh_acquire.source_errors import (
    MissingCredentialsError,
    SourceNotFoundError,
    UnsafeSourceError,
    UnsupportedSourceError,
)

USER, KEY = "alice", "kaggle-key-0123456789"
CSV = b"sepal_length,species\n5.1,setosa\n6.2,virginica\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("iris.csv", CSV)
    return buffer.getvalue()


def _kaggle_api(api: FakeHost, storage: FakeHost, user: str = USER, key: str = KEY) -> None:
    """Answer like www.kaggle.com/api/v1: check basic auth, redirect to signed storage."""
    expected = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()
    storage.file("/archive/iris.zip", _zip(), content_type="application/zip")
    storage.file("/archive/iris.csv", CSV, content_type="text/csv")

    def download(h, fake) -> None:
        if h.headers.get("Authorization") != expected:
            body = json.dumps({"code": 401, "message": "Unauthenticated"}).encode()
            h.send_response(401)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        name = "iris.csv" if h.path.split("?")[0].endswith("/iris.csv") else "iris.zip"
        h.send_response(302)
        h.send_header("Location", f"{storage.base_url}/archive/{name}"
                                  "?X-Goog-Signature=deadbeef&X-Goog-Expires=30")
        h.send_header("Content-Length", "0")
        h.end_headers()

    api.route("/api/v1/datasets/download/uciml/iris", download)
    api.route("/api/v1/datasets/download/uciml/iris/iris.csv", download)
    api.status("/api/v1/datasets/download/uciml/private-one", 403)


@pytest.fixture
def kaggle():
    with fake_host() as api, fake_host() as storage:
        _kaggle_api(api, storage)
        yield api, storage


def _env(api: FakeHost, **extra: str) -> dict[str, str]:
    return {"MLMESH_KAGGLE_API_URL": api.base_url + "/api/v1", "HOME": "/nonexistent",
            **extra}


def fetch(uri: str, dest: Path, env: dict[str, str], **kw):
    return fetch_source(uri, dest, env=env, policy=kw.pop("policy", LOCAL_POLICY),
                        limits=FAST_LIMITS, **kw)


def test_dataset_downloads_as_zip_with_credentials_only_to_the_api(kaggle, tmp_path: Path) -> None:
    api, storage = kaggle
    env = _env(api, KAGGLE_USERNAME=USER, KAGGLE_KEY=KEY)
    fetched = fetch("kaggle://uciml/iris", tmp_path, env)
    assert fetched.path == tmp_path / "iris.zip" and fetched.format == "zip"
    with zipfile.ZipFile(fetched.path) as archive:
        assert archive.read("iris.csv") == CSV
    assert api.seen[0].headers["authorization"].startswith("Basic ")
    assert "authorization" not in storage.seen[0].headers  # never to the storage host
    assert fetched.metadata["owner"] == "uciml" and fetched.metadata["dataset"] == "iris"
    assert KEY not in json.dumps(fetched.metadata)


def test_one_file_and_a_version(kaggle, tmp_path: Path) -> None:
    api, _ = kaggle
    env = _env(api, KAGGLE_USERNAME=USER, KAGGLE_KEY=KEY)
    fetched = fetch("kaggle://uciml/iris/iris.csv", tmp_path, env,
                    options={"kaggle_version": "3"})
    assert fetched.path.read_bytes() == CSV and fetched.format == "csv"
    assert api.seen[0].path == "/api/v1/datasets/download/uciml/iris/iris.csv"
    assert api.seen[0].query == {"datasetVersionNumber": ["3"]}
    with pytest.raises(UnsupportedSourceError, match="kaggle_version"):
        fetch("kaggle://uciml/iris", tmp_path, env, options={"kaggle_version": "latest"})


def test_token_from_the_file_named_by_mlmesh_kaggle_config(kaggle, tmp_path: Path) -> None:
    api, _ = kaggle
    token = tmp_path / "secrets" / "kaggle.json"
    token.parent.mkdir()
    token.write_text(json.dumps({"username": USER, "key": KEY}))
    fetched = fetch("kaggle://uciml/iris", tmp_path / "out",
                    _env(api, MLMESH_KAGGLE_CONFIG=str(token)))
    assert fetched.format == "zip"


def test_token_from_home_kaggle_json(kaggle, tmp_path: Path) -> None:
    api, _ = kaggle
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": USER, "key": KEY}))
    env = _env(api, HOME=str(tmp_path))
    assert fetch("kaggle://uciml/iris", tmp_path / "out", env).format == "zip"


def test_missing_and_broken_credentials_say_what_to_set(kaggle, tmp_path: Path) -> None:
    api, _ = kaggle
    with pytest.raises(MissingCredentialsError, match="KAGGLE_USERNAME and KAGGLE_KEY"):
        fetch("kaggle://uciml/iris", tmp_path, _env(api))
    with pytest.raises(MissingCredentialsError, match="does not exist"):
        fetch("kaggle://uciml/iris", tmp_path, _env(api, MLMESH_KAGGLE_CONFIG="/no/such.json"))
    bad = tmp_path / "kaggle.json"
    bad.write_text('{"username": "alice", "key": "' + KEY + '"')  # cut short
    with pytest.raises(MissingCredentialsError) as info:
        fetch("kaggle://uciml/iris", tmp_path, _env(api, MLMESH_KAGGLE_CONFIG=str(bad)))
    assert KEY not in str(info.value)
    assert api.seen == []  # nothing was sent without a token


def test_refusals_are_explained(kaggle, tmp_path: Path) -> None:
    api, _ = kaggle
    wrong = _env(api, KAGGLE_USERNAME=USER, KAGGLE_KEY="wrong-key")
    with pytest.raises(SourceNotFoundError, match="refused the credentials.*HTTP 401") as info:
        fetch("kaggle://uciml/iris", tmp_path, wrong)
    assert info.value.status == 401 and "wrong-key" not in str(info.value)
    right = _env(api, KAGGLE_USERNAME=USER, KAGGLE_KEY=KEY)
    with pytest.raises(SourceNotFoundError, match="accept the dataset's rules"):
        fetch("kaggle://uciml/private-one", tmp_path, right)
    with pytest.raises(SourceNotFoundError, match="Kaggle has no kaggle://nobody/nothing"):
        fetch("kaggle://nobody/nothing", tmp_path, right)
    with pytest.raises(UnsupportedSourceError, match="kaggle://owner/dataset"):
        fetch("kaggle://onlyowner", tmp_path, right)


def test_a_redirect_to_an_internal_address_is_refused(tmp_path: Path) -> None:
    with fake_host() as api:
        api.redirect("/api/v1/datasets/download/evil/ds", "http://169.254.169.254/latest/")
        env = _env(api, KAGGLE_USERNAME=USER, KAGGLE_KEY=KEY)
        # The configured API host is trusted without any allowlist; where it sends us is not.
        with pytest.raises(UnsafeSourceError, match="cloud metadata"):
            fetch("kaggle://evil/ds", tmp_path, env, policy=None)
