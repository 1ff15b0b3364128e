"""The generated serving package, started with uvicorn in subprocesses and queried over
HTTP: predictions equal the registry model's (both backends), auth, rate limit, pdoc docs,
Dockerfile and Kubernetes manifests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import joblib
import mlflow
import numpy as np
import pytest
import yaml

from mlmesh_publish.artifacts import export_artifacts
from mlmesh_publish.registry import register_model
from mlmesh_publish.serving import generate_api_docs, generate_serving_app

KEYS = ("alpha-key", "beta-key")
RATE = 6  # requests per minute per key in the onnx app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--log-level", "warning"],
        cwd=folder, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait(process: subprocess.Popen, url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app exited: {process.stdout.read().decode()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"app at {url} did not become healthy in {timeout}s")


@pytest.fixture(scope="module")
def package(tmp_path_factory, mesh_binary_model):
    model_path, test, schema = mesh_binary_model
    root = tmp_path_factory.mktemp("live")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registered = register_model(
        model_path, registered_name="cancer", experiment_id="exp-live", tags={},
        input_example=test.head(5), tracking_uri=uri,
        artifact_location=(root / "artifacts").as_uri())
    model = joblib.load(model_path)
    exported = export_artifacts(model, root / "published", test)
    assert exported.onnx_status == "verified", exported.onnx_reason
    folder = generate_serving_app(
        model_path, root / "serving", model_name="cancer", model_version=registered.version,
        feature_schema=schema, problem_type="binary",
        onnx_path=root / "published" / "model.onnx", probe_rows=test.head(10).to_dict("records"))
    onnx_app = _start(folder, {"MLMESH_SERVING_API_KEYS": ",".join(KEYS),
                               "MLMESH_SERVING_RATE_LIMIT": f"{RATE}/minute"})
    sklearn_app = _start(folder, {"MLMESH_SERVING_BACKEND": "sklearn"})
    try:
        mlflow.set_tracking_uri(uri)
        registry_model = mlflow.pyfunc.load_model(registered.model_uri)
        _wait(*onnx_app)
        _wait(*sklearn_app)
        yield {"folder": folder, "test": test, "model": model, "registry": registry_model,
               "onnx": onnx_app[1], "sklearn": sklearn_app[1], "root": root}
    finally:
        for process, _ in (onnx_app, sklearn_app):
            process.terminate()
            process.wait(timeout=20)


def _rows(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_both_backends_predict_like_the_registry_model(package):
    test, model = package["test"], package["model"]
    expected = list(package["registry"].predict(test))
    assert expected == list(model.predict(test))
    expected_proba = model.predict_proba(test)
    headers = {"X-API-Key": KEYS[0]}
    for backend, url in (("onnx", package["onnx"]), ("sklearn", package["sklearn"])):
        health = httpx.get(f"{url}/health").json()
        assert health["backend"] == backend
        assert health["scoring"] == ("onnx" if backend == "onnx" else "compiled")
        batch = httpx.post(f"{url}/predict/batch", json={"rows": _rows(test)}, headers=headers)
        assert batch.status_code == 200, batch.text
        body = batch.json()
        assert body["predictions"] == expected, backend
        got = np.array([[p["benign"], p["malignant"]] for p in body["probabilities"]])
        assert np.max(np.abs(got - expected_proba)) <= 1e-4, backend
        one = httpx.post(f"{url}/predict", json=_rows(test.head(1))[0], headers=headers)
        assert one.status_code == 200, one.text
        assert one.json()["prediction"] == expected[0]


def test_api_keys_and_rate_limit(package):
    url, row = package["onnx"], _rows(package["test"].head(1))[0]
    assert httpx.get(f"{url}/health").status_code == 200  # probes need no key
    missing = httpx.post(f"{url}/predict", json=row)
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
    wrong = httpx.post(f"{url}/predict", json=row, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    assert httpx.get(f"{url}/health").json()["auth"] is True

    headers = {"X-API-Key": KEYS[1]}  # its own bucket: the other test used KEYS[0]
    statuses = [httpx.post(f"{url}/predict", json=row, headers=headers).status_code
                for _ in range(RATE)]
    assert statuses == [200] * RATE
    limited = httpx.post(f"{url}/predict", json=row, headers=headers)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # the limit is per key: the first key still has requests left
    assert httpx.post(f"{url}/predict", json=row,
                      headers={"X-API-Key": KEYS[0]}).status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'outcome="rate_limited"' in metrics and 'outcome="unauthorized"' in metrics
    # no limit configured on the sklearn app
    for _ in range(RATE + 2):
        assert httpx.post(f"{package['sklearn']}/predict", json=row).status_code == 200


def test_package_files_docs_docker_and_kubernetes(package):
    folder = package["folder"]
    assert (folder / "model.onnx").is_file() and (folder / "model.onnx.json").is_file()
    assert json.loads((folder / "model.onnx.json").read_text())["verified"] is True
    requirements = (folder / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "lightgbm==" in requirements

    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2
    assert " AS build" in dockerfile and "COPY --from=build /opt/venv /opt/venv" in dockerfile
    assert "COPY app.py fastpath.py probe_rows.json model.* ./" in dockerfile
    assert len(json.loads((folder / "probe_rows.json").read_text())) == 10

    manifests = {p.name: yaml.safe_load(p.read_text()) for p in (folder / "k8s").glob("*.yaml")}
    assert manifests["kustomization.yaml"]["resources"] == [
        "deployment.yaml", "service.yaml", "hpa.yaml"]
    deployment = manifests["deployment.yaml"]
    assert deployment["kind"] == "Deployment"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLMESH_SERVING_BACKEND"]["value"] == "onnx"
    assert env["MLMESH_SERVING_API_KEYS"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert manifests["service.yaml"]["kind"] == "Service"
    hpa = manifests["hpa.yaml"]
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]

    docs = generate_api_docs(folder, package["root"] / "docs")
    html = (docs / "app.html").read_text()
    assert "OnnxScorer" in html and "create_app" in html and "MLMESH_SERVING_API_KEYS" in html


def test_forcing_onnx_without_a_graph_fails_clearly(tmp_path, mesh_binary_model):
    model_path, _, schema = mesh_binary_model
    folder = generate_serving_app(model_path, tmp_path / "app", model_name="cancer",
                                  model_version="1", feature_schema=schema,
                                  problem_type="binary")
    completed = subprocess.run(
        [sys.executable, "-c", "import app"], cwd=folder, capture_output=True, text=True,
        env={**os.environ, "MLMESH_SERVING_BACKEND": "onnx"}, timeout=120, check=False)
    assert completed.returncode != 0
    assert "MLMESH_SERVING_BACKEND=onnx but" in completed.stderr
    assert "onnxruntime" not in (folder / "requirements.txt").read_text()
