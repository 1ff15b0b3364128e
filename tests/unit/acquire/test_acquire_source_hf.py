"""hf://datasets/... against a local server that answers like the Hugging Face Hub:
/api/datasets/{repo}/parquet listings, shard URLs redirecting through /resolve/ to a CDN,
gated datasets, and repositories without a Parquet export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, FakeHost, fake_host

from mlmesh_acquire.fetch import SOURCE_RECORD, acquire, fetch_source
from mlmesh_acquire.source_errors import SourceNotFoundError, UnsupportedSourceError
from mlmesh_acquire.sources._huggingface import parse_hf_uri

TOKEN = "hf_token_abcdef0123456789"
TRAIN_0 = pd.DataFrame({"text": ["good", "bad", "fine"], "label": [1, 0, 1]})
TRAIN_1 = pd.DataFrame({"text": ["meh", "great"], "label": [0, 1]})
TEST_0 = pd.DataFrame({"text": ["ok"], "label": [1]})


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _gate(host: FakeHost, path: str, payload: object) -> None:
    """A JSON route that wants the Bearer token (401 without, 403 with a wrong one)."""
    data = json.dumps(payload).encode()

    def handler(h, fake) -> None:
        auth = h.headers.get("Authorization")
        status = 200 if auth == f"Bearer {TOKEN}" else (401 if auth is None else 403)
        body = data if status == 200 else json.dumps({"error": "Access restricted"}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    host.route(path, handler)


@pytest.fixture
def hub():
    with fake_host() as api, fake_host() as cdn:
        shards = {("default", "train", 0): TRAIN_0, ("default", "train", 1): TRAIN_1,
                  ("default", "test", 0): TEST_0, ("other", "train", 0): TEST_0}
        listing: dict[str, dict[str, list[str]]] = {}
        for (config, split, n), frame in shards.items():
            api_url = (f"{api.base_url}/api/datasets/acme/reviews/parquet/"
                       f"{config}/{split}/{n}.parquet")
            listing.setdefault(config, {}).setdefault(split, []).append(api_url)
            resolve = (f"/datasets/acme/reviews/resolve/refs%2Fconvert%2Fparquet/"
                       f"{config}/{split}/{n:04d}.parquet")
            api.redirect(api_url.removeprefix(api.base_url), resolve)
            api.redirect(resolve, f"{cdn.base_url}/blobs/{config}-{split}-{n}?X-Amz-Signature=x")
            cdn.file(f"/blobs/{config}-{split}-{n}", _parquet(frame))
        api.json("/api/datasets/acme/reviews/parquet", listing)
        _gate(api, "/api/datasets/acme/gated/parquet",
              {"default": {"train": listing["default"]["train"][:1]}})
        api.status("/api/datasets/acme/raw/parquet", 404)
        api.json("/api/datasets/acme/raw/revision/main", {"id": "acme/raw", "siblings": [
            {"rfilename": ".gitattributes"}, {"rfilename": "README.md"},
            {"rfilename": "data/train.csv"}, {"rfilename": "data/test.csv"}]})
        api.file("/datasets/acme/raw/resolve/main/data/train.csv", b"a,b\n1,2\n3,4\n")
        api.file("/datasets/acme/raw/resolve/main/data/test.csv", b"a,b\n5,6\n")
        yield api, cdn


def _env(api: FakeHost, **extra: str) -> dict[str, str]:
    return {"MLMESH_HF_ENDPOINT": api.base_url, "HOME": "/nonexistent", **extra}


def fetch(uri: str, dest: Path, env: dict[str, str], **kw):
    return fetch_source(uri, dest, env=env, policy=LOCAL_POLICY, limits=FAST_LIMITS, **kw)


def test_default_config_train_split_shards_are_joined(hub, tmp_path: Path) -> None:
    api, cdn = hub
    fetched = fetch("hf://datasets/acme/reviews", tmp_path, _env(api, HF_TOKEN=TOKEN))
    assert fetched.path == tmp_path / "default-train.parquet" and fetched.format == "parquet"
    expected = pd.concat([TRAIN_0, TRAIN_1], ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(fetched.path), expected)
    assert fetched.metadata["config"] == "default" and fetched.metadata["split"] == "train"
    assert fetched.metadata["shards"] == 2 and fetched.metadata["splits"] == ["test", "train"]
    assert fetched.metadata["configs"] == ["default", "other"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["default-train.parquet"]
    assert api.seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert all("authorization" not in s.headers for s in cdn.seen)  # never to the CDN


def test_config_and_split_from_the_uri_or_the_options(hub, tmp_path: Path) -> None:
    api, _ = hub
    env = _env(api)
    other = fetch("hf://datasets/acme/reviews/other/train", tmp_path / "a", env)
    pd.testing.assert_frame_equal(pd.read_parquet(other.path), TEST_0)
    test = fetch("hf://datasets/acme/reviews", tmp_path / "b", env, options={"hf_split": "test"})
    assert test.path.name == "default-test.parquet"
    with pytest.raises(SourceNotFoundError, match="no config 'nope'; it has default, other"):
        fetch("hf://datasets/acme/reviews/nope/train", tmp_path / "c", env)
    with pytest.raises(SourceNotFoundError, match="no split 'dev'; it has test, train"):
        fetch("hf://datasets/acme/reviews", tmp_path / "d", env, options={"hf_split": "dev"})


def test_gated_dataset_says_to_set_a_token(hub, tmp_path: Path) -> None:
    api, _ = hub
    with pytest.raises(SourceNotFoundError, match="gated or private, so set HF_TOKEN"):
        fetch("hf://datasets/acme/gated", tmp_path, _env(api))
    with pytest.raises(SourceNotFoundError, match="token in HF_TOKEN has no access") as info:
        fetch("hf://datasets/acme/gated", tmp_path, _env(api, HF_TOKEN="hf_wrong_token_value"))
    assert "hf_wrong_token_value" not in str(info.value)


def test_token_file_is_read(hub, tmp_path: Path) -> None:
    api, _ = hub
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    fetched = fetch("hf://datasets/acme/gated", tmp_path / "out",
                    _env(api, HF_TOKEN_PATH=str(token_file)))
    pd.testing.assert_frame_equal(pd.read_parquet(fetched.path), TRAIN_0)
    assert api.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_no_parquet_export_falls_back_to_the_repository_files(hub, tmp_path: Path) -> None:
    api, _ = hub
    fetched = fetch("hf://datasets/acme/raw", tmp_path / "a", _env(api))
    assert fetched.path.read_bytes() == b"a,b\n1,2\n3,4\n"
    assert fetched.metadata["file"] == "data/train.csv"
    test = fetch("hf://datasets/acme/raw", tmp_path / "b", _env(api), options={"hf_split": "test"})
    assert test.path.read_bytes() == b"a,b\n5,6\n"
    one = fetch("hf://datasets/acme/raw", tmp_path / "c", _env(api),
                options={"hf_file": "data/test.csv"})
    assert one.metadata["file"] == "data/test.csv"
    with pytest.raises(SourceNotFoundError, match="has no file 'data/none.csv'"):
        fetch("hf://datasets/acme/raw", tmp_path / "d", _env(api),
              options={"hf_file": "data/none.csv"})


def test_acquire_records_the_choice_in_source_json(hub, tmp_path: Path) -> None:
    api, _ = hub
    table = acquire("hf://datasets/acme/reviews", tmp_path / "work", env=_env(api, HF_TOKEN=TOKEN),
                    policy=LOCAL_POLICY, limits=FAST_LIMITS)
    assert (table.n_rows, table.columns) == (5, ["text", "label"])
    record_text = (tmp_path / "work" / SOURCE_RECORD).read_text()
    record = json.loads(record_text)
    assert record["source"]["config"] == "default" and record["source"]["repo"] == "acme/reviews"
    assert TOKEN not in record_text


@pytest.mark.parametrize("uri, parsed", [
    ("hf://datasets/acme/reviews", ("acme/reviews", None, None, None)),
    ("hf://datasets/acme/reviews/default/train", ("acme/reviews", None, "default", "train")),
    ("hf://datasets/imdb", ("imdb", None, None, None)),
    ("hf://datasets/imdb/plain_text/test", ("imdb", None, "plain_text", "test")),
    ("hf://datasets/acme/reviews@v2/default/train", ("acme/reviews", "v2", "default", "train")),
])
def test_uri_forms(uri: str, parsed: tuple) -> None:
    assert parse_hf_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["hf://models/acme/bert", "hf://datasets/a/b/c/d/e",
                                 "hf://datasets"])
def test_bad_uris(uri: str) -> None:
    with pytest.raises(UnsupportedSourceError):
        parse_hf_uri(uri)
