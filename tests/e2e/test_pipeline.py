"""End to end through the embedded mesh: REST and gRPC submissions run all ten services and
publish a model whose generated serving app answers like the model in-process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import grpc
import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mlmesh.events.v1.experiment_pb2 import ExperimentSpec
from mlmesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mlmesh_cli.client import GatewayClient, authorized_channel
from mlmesh_cli.demo import penguins_csv, start_serving_app

pytestmark = pytest.mark.e2e
STAGES = ["acquire", "profile", "prep", "train", "tune", "select", "docs", "git", "publish"]


def local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def assert_completed(final: dict, events: list[str]) -> dict:
    assert final["status"] == "completed", final.get("failure_reason")
    assert "mlmesh.experiment.completed" in events
    stages = {s["name"]: s["status"] for s in final["stages"]}
    assert all(stages.get(s) == "finished" for s in STAGES), stages
    result = final["result"]
    assert result["test_score"] > result["baseline_test_score"], result
    assert {row["family"] for row in result["leaderboard"]} >= {
        "dummy", "linear", "lightgbm", "xgboost", "catboost"}
    assert result["tuning"]["n_trials"] >= 1
    for key in ("report_uri", "model_card_uri", "serving_app_uri", "model_uri",
                "white_paper_uri", "executive_summary_uri", "reproduction_uri", "onnx_uri"):
        assert local(result[key]).exists(), key
    assert local(result["white_paper_uri"]).read_bytes().startswith(b"%PDF")
    git = result["git"]
    assert len(git["commit"]) == 40 and git["branch"].startswith("exp/")
    assert len(git["commits"]) >= 3 and git["commits"][-1] == git["commit"]
    assert "/model-v1." in git["release_tag"]
    assert result["registered_model"] and result["model_version"]
    assert result["registry_alias"] in ("challenger", "champion")
    return result


def test_rest_submission_over_http_source(mesh: dict, dataset_host: tuple[str, Path]) -> None:
    base_url, folder = dataset_host
    csv = penguins_csv(folder)
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()
    client = GatewayClient(mesh["gateway_url"])
    submitted = client.submit({"dataset_uri": f"{base_url}/{csv.name}", "dataset_sha256": digest,
                               "target": "species", "time_budget_s": 60, "max_trials": 4,
                               "project": "e2e-rest"})
    events, final = [], {}
    for event_type, data in client.watch(submitted["experiment_id"]):
        if event_type == "end":
            final = data
            break
        events.append(event_type)
    result = assert_completed(final, events)
    assert result["rows"] == 344 and result["problem_type"] == "PROBLEM_TYPE_MULTICLASS"
    assert result["source_sha256"] == digest

    # The generated serving app answers exactly like the selected model in-process.
    rows = pd.read_csv(csv).drop(columns=["species"]).sample(25, random_state=0)
    model = joblib.load(local(result["model_uri"]))
    expected = [str(p) for p in model.predict(rows)]
    proc, url = start_serving_app(local(result["serving_app_uri"]))
    try:
        import httpx

        payload = rows.astype(object).where(rows.notna(), None).to_dict("records")
        batch = httpx.post(f"{url}/predict/batch", json={"rows": payload}, timeout=30)
        assert batch.status_code == 200, batch.text
        assert [str(p) for p in batch.json()["predictions"]] == expected
        single = httpx.post(f"{url}/predict", json=payload[0], timeout=30)
        assert single.status_code == 200, single.text
        assert str(single.json()["prediction"]) == expected[0]
        bad = httpx.post(f"{url}/predict", json={**payload[0], "bill_length_mm": "long"},
                         timeout=30)
        assert bad.status_code == 422 and "bill_length_mm" in bad.text
    finally:
        proc.terminate()
        proc.wait(10)

    # Served with prediction logging, shifted traffic shows up as drift on the experiment.
    proc, url = start_serving_app(local(result["serving_app_uri"]),
                                  env={"MLMESH_KAFKA_BOOTSTRAP": mesh["kafka_bootstrap"]})
    try:
        import httpx

        shifted = pd.read_csv(csv).drop(columns=["species"]).dropna().head(60)
        for column in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
            shifted[column] = shifted[column] * 3 + 100
        answer = httpx.post(f"{url}/predict/batch",
                            json={"rows": shifted.astype(object).to_dict("records")}, timeout=30)
        assert answer.status_code == 200, answer.text
        drift = wait_for_event(client, submitted["experiment_id"], "mlmesh.drift.detected")
    finally:
        proc.terminate()
        proc.wait(10)
    assert drift["payload"]["dataset_drift"] is True
    assert "body_mass_g" in drift["payload"]["drifted_columns"]
    assert local(drift["payload"]["report"]["uri"]).exists()


def wait_for_event(client: GatewayClient, experiment_id: str, event_type: str,
                   timeout_s: float = 180) -> dict:
    """The first event of `event_type` in the experiment's log, waiting for it to appear."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for kind, data in client.watch(experiment_id):
            if kind == event_type:
                return data
        time.sleep(2)
    raise AssertionError(f"no {event_type} for {experiment_id} within {timeout_s}s")


def test_grpc_submission_over_file_source(mesh: dict, tmp_path: Path) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    csv = tmp_path / "breast_cancer.csv"
    frame.to_csv(csv, index=False)
    with authorized_channel(mesh["grpc_target"]) as channel:
        stub = gateway_pb2_grpc.ExperimentServiceStub(channel)
        created = stub.SubmitExperiment(gateway_pb2.SubmitExperimentRequest(
            spec=ExperimentSpec(dataset_uri=csv.as_uri(), time_budget_s=60, max_trials=4,
                                project="e2e-grpc")))
        assert created.status in ("pending", "running")
        events = [e.type for e in stub.WatchExperiment(
            gateway_pb2.WatchExperimentRequest(experiment_id=created.experiment_id),
            timeout=600)]
        final = stub.GetExperiment(gateway_pb2.GetExperimentRequest(
            experiment_id=created.experiment_id))
        listed = stub.ListExperiments(gateway_pb2.ListExperimentsRequest(project="e2e-grpc"))
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetExperiment(gateway_pb2.GetExperimentRequest(experiment_id="nope"))
        with pytest.raises(grpc.RpcError) as invalid:
            stub.SubmitExperiment(gateway_pb2.SubmitExperimentRequest(
                spec=ExperimentSpec(dataset_uri="ftp://x/y.csv")))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert created.experiment_id in [e.experiment_id for e in listed.experiments]
    as_dict = {"status": final.status, "failure_reason": final.failure_reason,
               "stages": [{"name": s.name, "status": s.status} for s in final.stages],
               "result": json.loads(final.result_json)}
    result = assert_completed(as_dict, events)
    assert result["target"] == "target"  # found by name, not given
    assert result["problem_type"] == "PROBLEM_TYPE_BINARY" and result["metric"] == "roc_auc"


def test_supervisor_restarts_a_killed_service(mesh: dict) -> None:
    import os
    import signal
    import time
    from pathlib import Path

    from mlmesh_cli import runner

    home = Path(mesh["home"])
    before = runner.read_state(home)["processes"]["docs-0"]["pid"]
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = runner.read_state(home)
        pid = state["processes"]["docs-0"]["pid"]
        if pid != before and runner.probe(state)["docs-0"] == "ready":
            break
        time.sleep(1)
    else:
        raise AssertionError("docs-0 was not restarted and ready within 90s")
    assert state["processes"]["docs-0"]["restarts"] >= 1


def test_cli_run_and_status(mesh: dict, tmp_path: Path) -> None:
    """`mlmesh run` follows an experiment to the end and prints where everything is."""
    import subprocess
    import sys

    from sklearn.datasets import load_diabetes

    csv = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(csv, index=False)
    env = {**__import__("os").environ, "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "mlmesh_cli", "run", str(csv), "--target",
                          "target", "--budget", "30", "--max-trials", "2", "--project",
                          "e2e-cli", "--home", mesh["home"]], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for expected in ("Leaderboard (rmse)", "Winner", "dummy baseline", "report", "MLflow run",
                     "git commit", "serving app"):
        assert expected in run.stdout, expected
    status = subprocess.run([sys.executable, "-m", "mlmesh_cli", "status", "--json", "--home",
                             mesh["home"]], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0
    health = json.loads(status.stdout)["health"]
    assert set(health.values()) == {"ready"} and "monitor-0" in health


def test_cli_experiments_leaderboard_and_dlq(mesh: dict) -> None:
    """The operator commands answer with --json against the running mesh."""
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlmesh_cli", *args, "--home", mesh["home"]],
                              capture_output=True, text=True, timeout=120)

    listed = cli("experiments", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    done = [e for e in json.loads(listed.stdout) if e["status"] == "completed"]
    assert done, "the earlier e2e tests completed experiments"
    shown = json.loads(cli("experiments", "show", done[0]["experiment_id"], "--json").stdout)
    assert shown["experiment_id"] == done[0]["experiment_id"]
    board = json.loads(cli("leaderboard", done[0]["experiment_id"], "--json").stdout)
    assert board and board[0]["family"] == done[0]["result"]["winner"]
    assert cli("experiments", "show", "no-such-id").returncode == 1
    cancelled = json.loads(cli("experiments", "cancel", done[0]["experiment_id"],
                               "--json").stdout)
    assert cancelled["status"] == "completed", "a finished experiment stays finished"
    dlq = cli("dlq", "list", "--status", "any", "--json")
    assert dlq.returncode == 0 and "open_by_topic" in json.loads(dlq.stdout)
    assert cli("dlq", "show", "no-such-letter").returncode == 1
