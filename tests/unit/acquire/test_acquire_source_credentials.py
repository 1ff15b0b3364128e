"""Credentials never leak: not into logs (every logger at DEBUG, httpx and httpcore
included), exception text (with the whole chain, as the DLQ records it), returned metadata
or source.json, whether the fetch succeeds or fails."""

from __future__ import annotations

import base64
import json
import logging
import traceback
from pathlib import Path

import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, fake_host

from mlmesh_acquire.fetch import fetch_source, write_source_record

KAGGLE_KEY = "kgl-SECRET-7f3a9c1e5b"
HF_TOKEN = "hf_SECRET_4d2b8e6a0c"
OPENML_KEY = "oml-SECRET-9e1f3a5c7b"
URL_PASSWORD = "pw-SECRET-2c4e6a8b0d"
URL_TOKEN = "qs-SECRET-1b3d5f7a9c"
SECRETS = [KAGGLE_KEY, HF_TOKEN, OPENML_KEY, URL_PASSWORD, URL_TOKEN,
           base64.b64encode(f"alice:{KAGGLE_KEY}".encode()).decode()]


def test_no_secret_appears_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "mlmesh_acquire", "urllib3", "botocore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    texts: list[str] = []
    outcomes: list[str] = []

    with fake_host() as host, fake_host() as other:
        base = host.base_url
        csv = b"a,b\n1,2\n"
        # Kaggle: a good download (through a redirect), a refusal and a flaky API.
        host.redirect("/api/v1/datasets/download/alice/good", f"{other.base_url}/blob.zip"
                      f"?X-Goog-Signature={URL_TOKEN}")
        other.file("/blob.zip", csv)
        host.status("/api/v1/datasets/download/alice/denied", 401)
        host.status("/api/v1/datasets/download/alice/flaky", 503)
        host.redirect("/api/v1/datasets/download/alice/sneaky", "http://169.254.169.254/")
        # Hugging Face: a good listing and a gated one.
        host.json("/api/datasets/acme/ok/parquet", {"default": {"train": [f"{base}/shard"]}})
        host.file("/shard", b"PAR1 not really parquet")
        host.status("/api/datasets/acme/gated/parquet", 403)
        # OpenML: with an api_key in the query, found, unknown and failing.
        host.json("/api/v1/json/data/1", {"data_set_description": {
            "id": "1", "name": "d", "format": "ARFF", "url": f"{base}/d.arff",
            "default_target_attribute": "y"}})
        host.file("/d.arff", b"@RELATION d\n@ATTRIBUTE y REAL\n@DATA\n1\n")
        host.json("/api/v1/json/data/2", {"error": {"code": "111",
                                                    "message": f"Unknown {OPENML_KEY}?"}}, 412)
        host.status("/api/v1/json/data/3", 500)
        # Plain http with a password and a token in the URL: found, missing, stalled.
        host.file("/plain.csv", csv)
        host.stall("/stuck.csv", csv * 10, after_bytes=3)
        env = {"MLMESH_KAGGLE_API_URL": f"{base}/api/v1", "KAGGLE_USERNAME": "alice",
               "KAGGLE_KEY": KAGGLE_KEY, "MLMESH_HF_ENDPOINT": base, "HF_TOKEN": HF_TOKEN,
               "MLMESH_OPENML_URL": base, "OPENML_API_KEY": OPENML_KEY, "HOME": "/nonexistent"}
        userinfo = f"http://bob:{URL_PASSWORD}@{base.removeprefix('http://')}"
        uris = ["kaggle://alice/good", "kaggle://alice/denied", "kaggle://alice/flaky",
                "kaggle://alice/sneaky", "hf://datasets/acme/ok", "hf://datasets/acme/gated",
                "openml://1", "openml://2", "openml://3",
                f"{userinfo}/plain.csv?token={URL_TOKEN}",
                f"{userinfo}/missing.csv?access_token={URL_TOKEN}",
                f"{userinfo}/stuck.csv?sig={URL_TOKEN}"]
        for i, uri in enumerate(uris):
            dest = tmp_path / f"out{i}"
            try:
                fetched = fetch_source(uri, dest, env=env, policy=LOCAL_POLICY,
                                       limits=FAST_LIMITS)
            except Exception as exc:  # noqa: BLE001 - every failure's full text is checked
                outcomes.append(f"{uri[:12]}: {type(exc).__name__}")
                texts.append("".join(traceback.format_exception(exc)))
                texts.append(repr(exc))
            else:
                outcomes.append(f"{uri[:12]}: ok")
                texts.append(json.dumps(fetched.metadata, default=str))
                texts.append(repr(fetched))
                record = write_source_record(dest / "source.json", uri, fetched)
                texts.append((dest / "source.json").read_text() + json.dumps(record))
        assert host.seen[0].headers["authorization"].startswith("Basic ")  # really sent
        assert any("api_key" in s.query for s in host.seen)

    # Both kinds of outcome were exercised.
    assert sum(o.endswith(": ok") for o in outcomes) == 4, outcomes
    assert sum(not o.endswith(": ok") for o in outcomes) == 8, outcomes
    texts.append(caplog.text)
    texts.extend(r.getMessage() for r in caplog.records)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx's own log
    everything = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in everything, secret
