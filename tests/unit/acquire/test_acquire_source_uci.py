"""uci://<id> against a local server that answers like the UCI repository's API:
/api/dataset?id={id} -> {"status": 200, "data": {data_url, variables with roles, ...}}."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from source_fakes import FAST_LIMITS, LOCAL_POLICY, FakeHost, fake_host

from mlmesh_acquire.fetch import SOURCE_RECORD, acquire, fetch_source
from mlmesh_acquire.source_errors import SourceNotFoundError, UnsafeSourceError

CSV = b"sample_id,sepal_length,class\n1,5.1,Iris-setosa\n2,7.0,Iris-versicolor\n"


def _api(host: FakeHost) -> None:
    datasets = {
        "53": {"uci_id": 53, "name": "Iris",
               "repository_url": "https://archive.ics.uci.edu/dataset/53/iris",
               "data_url": f"{host.base_url}/static/public/53/data.csv",
               "num_instances": 2, "num_features": 1, "tasks": ["Classification"],
               "target_col": ["class"], "dataset_doi": "10.24432/C56C76",
               "variables": [
                   {"name": "sample_id", "role": "ID", "type": "Integer"},
                   {"name": "sepal_length", "role": "Feature", "type": "Continuous"},
                   {"name": "class", "role": "Target", "type": "Categorical"}]},
        "99": {"uci_id": 99, "name": "Old Set", "data_url": None, "variables": []},
        "66": {"uci_id": 66, "name": "Sneaky", "data_url": "http://10.0.0.5/data.csv"},
    }

    def api(h, fake) -> None:
        query = h.path.split("?", 1)[1] if "?" in h.path else ""
        key = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("id", "")
        if key in datasets:
            payload = {"status": 200, "statusCode": 200, "error": None, "data": datasets[key]}
        else:
            payload = {"status": 404, "statusCode": 404, "error": "Not Found",
                       "message": "dataset not found"}
        body = json.dumps(payload).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    host.route("/api/dataset", api)
    host.file("/static/public/53/data.csv", CSV, content_type="text/csv")


@pytest.fixture
def uci():
    with fake_host() as host:
        _api(host)
        yield host


def fetch(uri: str, dest: Path, host: FakeHost):
    return fetch_source(uri, dest, env={"MLMESH_UCI_URL": host.base_url}, policy=LOCAL_POLICY,
                        limits=FAST_LIMITS)


def test_dataset_with_its_target_and_id_columns(uci, tmp_path: Path) -> None:
    fetched = fetch("uci://53", tmp_path, uci)
    assert fetched.path.read_bytes() == CSV and fetched.format == "csv"
    assert fetched.suggested_target == "class"
    assert fetched.metadata["target_columns"] == ["class"]
    assert fetched.metadata["id_columns"] == ["sample_id"]
    assert fetched.metadata["name"] == "Iris" and fetched.metadata["doi"] == "10.24432/C56C76"
    assert uci.seen[0].query == {"id": ["53"]}


def test_unknown_and_unimportable_datasets(uci, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"no dataset '12345' \(dataset not found\)"):
        fetch("uci://12345", tmp_path, uci)
    with pytest.raises(SourceNotFoundError, match="offers no importable data file"):
        fetch("uci://99", tmp_path, uci)


def test_data_url_pointing_inside_the_network_is_refused(uci, tmp_path: Path) -> None:
    with pytest.raises(UnsafeSourceError, match=r"10\.0\.0\.5, a private address"):
        fetch("uci://66", tmp_path, uci)


def test_acquire_converts_and_records(uci, tmp_path: Path) -> None:
    table = acquire("uci://53", tmp_path / "work", env={"MLMESH_UCI_URL": uci.base_url},
                    policy=LOCAL_POLICY, limits=FAST_LIMITS)
    assert (table.n_rows, table.columns) == (2, ["sample_id", "sepal_length", "class"])
    record = json.loads((tmp_path / "work" / SOURCE_RECORD).read_text())
    assert record["suggested_target"] == "class" and record["source"]["source"] == "uci"
